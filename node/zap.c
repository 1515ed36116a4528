/* zap.c - the trusted keys and the ZAP handler (zap.h has the invariants). */
#include "zap.h"
#include "known_peers.h"
#include "zsock.h"
#include "base/log.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct zap {
    stm_id *trusted; /* the first nsorted sorted (the configuration's), then those
                        added while running */
    size_t ntrusted, cap, nsorted;
    bool tofu;       /* trust any key on first use, and remember it */
    char *dir;       /* the node directory, for known_peers */
    stm_id *learned; /* keys trusted on first use, not written to known_peers yet */
    size_t nlearned, learned_cap;
    void *sock; /* REP on inproc://zeromq.zap.01; NULL until bound */
    uint64_t refused_keys;
};

static int s_key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(stm_id));
}

zap_t *stm_zap_new(const stm_id *trusted, size_t ntrusted, bool tofu, const char *dir)
{
    zap_t *z = stm_calloc(1, sizeof *z);
    z->tofu = tofu;
    z->dir = stm_strdup(dir);
    /* Sorted, repeats dropped: checking each key against those before it cost n squared
     * (26 s to start with 100,000 trusted keys); each connection is then a binary search. */
    z->trusted = stm_calloc(ntrusted + 1, sizeof *z->trusted);
    z->cap = ntrusted + 1;
    if (ntrusted)
        memcpy(z->trusted, trusted, ntrusted * sizeof *z->trusted);
    qsort(z->trusted, ntrusted, sizeof *z->trusted, s_key_cmp);
    for (size_t i = 0; i < ntrusted; i++)
        if (z->ntrusted == 0 || s_key_cmp(&z->trusted[z->ntrusted - 1], &z->trusted[i]) != 0)
            z->trusted[z->ntrusted++] = z->trusted[i];
    z->nsorted = z->ntrusted;
    return z;
}

void stm_zap_destroy(zap_t **self_p)
{
    zap_t *z = *self_p;
    if (!z)
        return;
    stm_zap_flush(z); /* a key trusted is remembered, even when the node stops at once */
    stm_zsock_close(&z->sock);
    free(z->trusted);
    free(z->learned);
    free(z->dir);
    free(z);
    *self_p = NULL;
}

stm_err stm_zap_bind(zap_t *z, void *ctx, stm_error *err)
{
    stm_err rc = stm_zsock_new(ctx, ZMQ_REP, "the ZAP handler", &z->sock, err);
    if (rc == STM_OK && zmq_bind(z->sock, "inproc://zeromq.zap.01") != 0)
        rc = stm_zsock_error(err, "binding the ZAP handler");
    return rc;
}

void *stm_zap_socket(zap_t *z)
{
    return z->sock;
}

bool stm_zap_is_trusted(const zap_t *z, const stm_id *key)
{
    if (z->nsorted && bsearch(key, z->trusted, z->nsorted, sizeof *z->trusted, s_key_cmp))
        return true;
    for (size_t i = z->nsorted; i < z->ntrusted; i++)
        if (stm_id_equal(&z->trusted[i], key))
            return true;
    return false;
}

void stm_zap_trust(zap_t *z, const stm_id *key)
{
    if (stm_zap_is_trusted(z, key))
        return;
    z->trusted = stm_grow(z->trusted, &z->cap, z->ntrusted + 1, sizeof *z->trusted);
    z->trusted[z->ntrusted++] = *key;
}

void stm_zap_flush(zap_t *z)
{
    for (size_t i = 0; i < z->nlearned; i++) {
        stm_error err = {0};
        if (stm_known_peers_add(z->dir, &z->learned[i], &err) != STM_OK)
            stm_log_event(STM_LOG_ERROR, "known-peers", NULL, "%s", err.msg);
    }
    z->nlearned = 0;
}

/* Decides on one request: version, request id, domain, address, routing id,
 * mechanism, credentials. *key is the client key when there is one. */
static bool s_decide(zap_t *z, zmq_msg_t *frames, int nframes, stm_id *key, bool *has_key)
{
    *has_key = nframes >= 7 && zmq_msg_size(&frames[6]) == 32;
    if (*has_key)
        memcpy(key->bytes, zmq_msg_data(&frames[6]), 32);
    if (!*has_key || zmq_msg_size(&frames[5]) != 5 ||
        memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) != 0)
        return false;
    if (stm_zap_is_trusted(z, key))
        return true;
    if (!z->tofu)
        return false;
    stm_zap_trust(z, key);
    /* Written after dispatch (invariant 2). */
    z->learned = stm_grow(z->learned, &z->learned_cap, z->nlearned + 1, sizeof *z->learned);
    z->learned[z->nlearned++] = *key;
    char z85[41];
    zmq_z85_encode(z85, key->bytes, 32);
    stm_log_event(STM_LOG_INFO, "trust-on-first-use", NULL, "now trusting %s", z85);
    return true;
}

/* One frame of the reply; false when libzmq would not take it. */
static bool s_reply(zap_t *z, const void *data, size_t len, bool more)
{
    return zmq_send(z->sock, data, len, more ? ZMQ_SNDMORE : 0) == (int)len;
}

void stm_zap_handle(zap_t *z)
{
    for (;;) {
        zmq_msg_t frames[8];
        int nframes = 0;
        for (;;) {
            zmq_msg_t *m = &frames[nframes < 7 ? nframes : 7];
            zmq_msg_init(m);
            if (zmq_msg_recv(m, z->sock, nframes == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(m);
                if (nframes == 0)
                    return;
                break;
            }
            int more = zmq_msg_more(m);
            if (nframes < 7)
                nframes++;
            else
                zmq_msg_close(m); /* frames past the seventh are not ours */
            if (!more)
                break;
        }
        stm_id key = {{0}};
        bool has_key;
        bool ok = s_decide(z, frames, nframes, &key, &has_key);
        char user[41] = "";
        if (ok)
            zmq_z85_encode(user, key.bytes, 32);
        else {
            z->refused_keys++;
            char z85[41] = "(none)";
            if (has_key)
                zmq_z85_encode(z85, key.bytes, 32);
            stm_log_event(STM_LOG_WARN, "key-refused", NULL,
                          "a connection with key %s: not trusted", z85);
        }
        const char *status = ok ? "200" : "400";
        const char *text = ok ? "OK" : "key not trusted";
        bool sent =
            s_reply(z, "1.0", 3, true) &&
            (nframes >= 2 ? s_reply(z, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), true)
                          : s_reply(z, "", 0, true)) &&
            s_reply(z, status, 3, true) && s_reply(z, text, strlen(text), true) &&
            s_reply(z, user, strlen(user), true) && s_reply(z, "", 0, false);
        if (!sent)
            stm_log_event(STM_LOG_ERROR, "zap", NULL, "answering libzmq's ZAP request: %s",
                          zmq_strerror(zmq_errno()));
        for (int i = 0; i < nframes; i++)
            zmq_msg_close(&frames[i]);
    }
}

uint64_t stm_zap_refused_keys(const zap_t *z)
{
    return z->refused_keys;
}
