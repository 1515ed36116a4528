/* zap.c - the trusted keys and the ZAP handler (zap.h has the invariants). */
#include "zap.h"
#include "keys.h"
#include "known_peers.h"
#include "zsock.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* One trusted key and where its trust comes from. */
typedef struct {
    stm_id key;    /* the public key */
    zap_from from; /* the highest source naming it */
} zap_key;

struct zap {
    zap_key *trusted; /* sorted by key, each key once (invariant 1) */
    size_t ntrusted, cap;
    bool tofu;       /* trust any key on first use, and remember it */
    char *dir;       /* the node directory, for known_peers */
    stm_id *learned; /* keys trusted on first use, not written to known_peers yet */
    size_t nlearned, learned_cap;
    void *sock; /* REP on inproc://zeromq.zap.01; NULL until bound */
    uint64_t refused_keys;
};

static int s_key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(stm_id)); /* the key is a zap_key's first member */
}

/* Where key is, or where it would go (*found false). */
static size_t s_find(const zap_t *z, const stm_id *key, bool *found)
{
    size_t lo = 0, hi = z->ntrusted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = s_key_cmp(&z->trusted[mid].key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const char *stm_zap_from_name(zap_from from)
{
    switch (from) {
    case ZAP_FROM_KNOWN:
        return "known_peers";
    case ZAP_FROM_PEER:
        return "node.toml [peers]";
    case ZAP_FROM_CONFIG:
        return "node.toml [security] trusted";
    }
    return "?";
}

zap_t *stm_zap_new(const node_config *config, const stm_id *known, size_t nknown)
{
    zap_t *z = stm_calloc(1, sizeof *z);
    z->tofu = config->trust_on_first_use;
    z->dir = stm_strdup(config->dir);
    size_t n = config->ntrusted + config->npeers + nknown;
    z->trusted = stm_calloc(n + 1, sizeof *z->trusted);
    z->cap = n + 1;
    size_t k = 0;
    for (size_t i = 0; i < config->ntrusted; i++)
        z->trusted[k++] = (zap_key){config->trusted[i], ZAP_FROM_CONFIG};
    for (size_t i = 0; i < config->npeers; i++)
        if (config->peers[i].has_key)
            z->trusted[k++] = (zap_key){config->peers[i].key, ZAP_FROM_PEER};
    for (size_t i = 0; i < nknown; i++)
        z->trusted[k++] = (zap_key){known[i], ZAP_FROM_KNOWN};
    /* Sorted, repeats dropped keeping the highest source: checking each key against
     * those before it cost n squared (26 s to start with 100,000 trusted keys). */
    qsort(z->trusted, k, sizeof *z->trusted, s_key_cmp);
    for (size_t i = 0; i < k; i++) {
        zap_key *last = z->ntrusted ? &z->trusted[z->ntrusted - 1] : NULL;
        if (last && s_key_cmp(&last->key, &z->trusted[i].key) == 0) {
            if (z->trusted[i].from > last->from)
                last->from = z->trusted[i].from;
        } else {
            z->trusted[z->ntrusted++] = z->trusted[i];
        }
    }
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

bool stm_zap_lookup(const zap_t *z, const stm_id *key, zap_from *from)
{
    bool found;
    size_t at = s_find(z, key, &found);
    if (found && from)
        *from = z->trusted[at].from;
    return found;
}

bool stm_zap_is_trusted(const zap_t *z, const stm_id *key)
{
    return stm_zap_lookup(z, key, NULL);
}

/* Trusts key from a source; a key trusted already keeps the higher source. */
static void s_trust(zap_t *z, const stm_id *key, zap_from from)
{
    bool found;
    size_t at = s_find(z, key, &found);
    if (found) {
        if (from > z->trusted[at].from)
            z->trusted[at].from = from;
        return;
    }
    z->trusted = stm_grow(z->trusted, &z->cap, z->ntrusted + 1, sizeof *z->trusted);
    memmove(&z->trusted[at + 1], &z->trusted[at], (z->ntrusted - at) * sizeof *z->trusted);
    z->trusted[at] = (zap_key){*key, from};
    z->ntrusted++;
}

void stm_zap_trust_as(zap_t *z, const stm_id *key, zap_from from)
{
    s_trust(z, key, from);
}

/* Drops the key at at, and any copy not yet written to known_peers. */
static void s_untrust_at(zap_t *z, size_t at)
{
    stm_id key = z->trusted[at].key;
    memmove(&z->trusted[at], &z->trusted[at + 1], (z->ntrusted - at - 1) * sizeof *z->trusted);
    z->ntrusted--;
    /* Trusted on first use in this pass and not written yet: not written at all. */
    for (size_t i = 0; i < z->nlearned;)
        if (stm_id_equal(&z->learned[i], &key))
            z->learned[i] = z->learned[--z->nlearned];
        else
            i++;
}

void stm_zap_untrust(zap_t *z, const stm_id *key)
{
    bool found;
    size_t at = s_find(z, key, &found);
    if (found)
        s_untrust_at(z, at);
}

stm_err stm_zap_add(zap_t *z, const stm_id *key, bool *added, stm_error *err)
{
    *added = false;
    if (stm_zap_is_trusted(z, key))
        return STM_OK;
    stm_err rc = stm_known_peers_add(z->dir, key, err);
    if (rc != STM_OK)
        return rc;
    s_trust(z, key, ZAP_FROM_KNOWN);
    *added = true;
    return STM_OK;
}

stm_err stm_zap_remove(zap_t *z, const stm_id *key, stm_error *err)
{
    char z85[KEYS_Z85_LEN + 1];
    stm_keys_to_z85(key, z85);
    bool found;
    size_t at = s_find(z, key, &found);
    if (!found)
        return stm_error_set(err, STM_EINPUT, "%s is not trusted", z85);
    if (z->trusted[at].from != ZAP_FROM_KNOWN)
        return stm_error_set(err, STM_EINPUT,
                             "%s is trusted by %s, which this command leaves alone (it "
                             "would be trusted again at the next start): remove a peer with "
                             "'stemma peer remove', or edit node.toml and restart the node",
                             z85, stm_zap_from_name(z->trusted[at].from));
    bool removed;
    stm_err rc = stm_known_peers_remove(z->dir, key, &removed, err);
    if (rc != STM_OK)
        return rc;
    s_untrust_at(z, at);
    return STM_OK;
}

void stm_zap_reload(zap_t *z, const node_config *config, const stm_id *known, size_t nknown,
                    void (*changed)(void *ctx, const stm_id *key, bool added), void *ctx)
{
    stm_zap_flush(z); /* known_peers holds every key trusted so far */
    zap_t *fresh = stm_zap_new(config, known, nknown);
    /* Both sorted: one walk finds what each lacks. */
    size_t i = 0, j = 0;
    while (i < z->ntrusted || j < fresh->ntrusted) {
        int c = i == z->ntrusted       ? 1
                : j == fresh->ntrusted ? -1
                                       : s_key_cmp(&z->trusted[i].key, &fresh->trusted[j].key);
        if (c < 0)
            changed(ctx, &z->trusted[i++].key, false);
        else if (c > 0)
            changed(ctx, &fresh->trusted[j++].key, true);
        else
            i++, j++;
    }
    zap_key *old = z->trusted;
    z->trusted = fresh->trusted;
    z->ntrusted = fresh->ntrusted;
    z->cap = fresh->cap;
    z->tofu = fresh->tofu;
    fresh->trusted = old;
    stm_zap_destroy(&fresh);
}

char *stm_zap_list_text(const zap_t *z)
{
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < z->ntrusted; i++) {
        char z85[KEYS_Z85_LEN + 1];
        stm_keys_to_z85(&z->trusted[i].key, z85);
        stm_buf_printf(&b, "%s %s\n", z85, stm_zap_from_name(z->trusted[i].from));
    }
    stm_buf_printf(&b, "# %zu keys trusted; trust on first use is %s\n", z->ntrusted,
                   z->tofu ? "on: any other key is trusted when it first connects" : "off");
    return stm_buf_detach(&b);
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
    return stm_zap_admit(z, key);
}

bool stm_zap_admit(zap_t *z, const stm_id *key)
{
    if (stm_zap_is_trusted(z, key))
        return true;
    if (!z->tofu)
        return false;
    s_trust(z, key, ZAP_FROM_KNOWN);
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
            /* ZAP's fourth frame is the peer's address (RFC 27). */
            char address[64] = "an unknown address";
            if (nframes >= 4 && zmq_msg_size(&frames[3]) > 0) {
                size_t n = zmq_msg_size(&frames[3]);
                n = n < sizeof address - 1 ? n : sizeof address - 1;
                memcpy(address, zmq_msg_data(&frames[3]), n);
                address[n] = '\0';
                for (size_t i = 0; i < n; i++)
                    if ((unsigned char)address[i] < 0x20 || address[i] == 0x7f)
                        address[i] = '?';
            }
            if (has_key) {
                char z85[41], short_id[STM_ID_SHORT_LEN + 1];
                zmq_z85_encode(z85, key.bytes, 32);
                stm_id_short(&key, short_id);
                stm_log_event(STM_LOG_WARN, "key-refused", short_id,
                              "a connection from %s with key %s: not trusted; to let it "
                              "in: stemma trust add '%s' --dir %s",
                              address, z85, z85, z->dir);
            } else {
                stm_log_event(STM_LOG_WARN, "key-refused", NULL,
                              "a connection from %s with no key: not trusted", address);
            }
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

char *stm_zap_request(zap_t *z, const char *request, zap_change *change, stm_id *key)
{
    *change = ZAP_CHANGED_NOTHING;
    if (strcmp(request, "trust list") == 0)
        return stm_zap_list_text(z);
    bool add = strncmp(request, "trust add ", 10) == 0;
    bool remove = strncmp(request, "trust remove ", 13) == 0;
    if (!add && !remove)
        return strncmp(request, "trust", 5) == 0 && (request[5] == ' ' || !request[5])
                   ? stm_strdup("error: a trust request is 'trust add KEY', 'trust remove "
                                "KEY' or 'trust list'\n")
                   : NULL;
    const char *text = request + (add ? 10 : 13);
    if (!stm_keys_parse(text, key))
        return stm_strdup("error: not a key (40 Z85 characters or 64 hex digits)\n");
    char z85[KEYS_Z85_LEN + 1];
    stm_keys_to_z85(key, z85);
    stm_error err = {0};
    buf_t b = BUF_INIT;
    if (add) {
        bool added;
        zap_from from = ZAP_FROM_KNOWN;
        if (stm_zap_add(z, key, &added, &err) != STM_OK)
            stm_buf_printf(&b, "error: %s\n", err.msg);
        else if (!added && stm_zap_lookup(z, key, &from))
            stm_buf_printf(&b, "%s is trusted already (%s)\n", z85, stm_zap_from_name(from));
        else {
            *change = ZAP_CHANGED_ADDED;
            stm_buf_printf(&b, "trusting %s: added to %s/%s\n", z85, z->dir, KNOWN_PEERS_FILE);
        }
    } else if (stm_zap_remove(z, key, &err) != STM_OK) {
        stm_buf_printf(&b, "error: %s\n", err.msg);
    } else {
        *change = ZAP_CHANGED_REMOVED;
        stm_buf_printf(&b, "no longer trusting %s: removed from %s/%s\n", z85, z->dir,
                       KNOWN_PEERS_FILE);
        if (z->tofu)
            stm_buf_printf(&b, "warning: trust_on_first_use is on: the key is trusted again "
                               "when it next connects\n");
    }
    return stm_buf_detach(&b);
}

bool stm_zap_tofu(const zap_t *z)
{
    return z->tofu;
}
