#include "node.h"
#include "config.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"
#include "base/log.h"
#include "report.h"
#include "sync/apply.h"
#include "sync/codec.h"
#include "sync/migrate.h"
#include "sync/oplog.h"
#include "sync/store.h"
#include "wire.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

typedef enum { PS_CONNECTING, PS_CONNECTED, PS_GONE, PS_REFUSED } s_state;

/* One peer: how to reach it, what it said, what we have sent it. */
typedef struct {
    stm_id id;              /* its node id (public key); zero until known when insecure */
    bool id_known;
    char *endpoint;         /* where its inbox listens */
    char short_id[13];      /* for logs */
    void *outbox;           /* DEALER connected to it; NULL until needed */
    s_state state;
    bool configured;        /* from node.toml (else learned from a peer list) */
    wire_hello hello;       /* its last HELLO (lineage, vector, peers) */
    bool have_hello;
    peer_verdict verdict;   /* our judgement of that HELLO */
    char *refused_by_peer;  /* the reason it gave in a REFUSE, or NULL */
    vector_t *theirs;       /* what it holds (HELLO, then each ACK) */
    vector_t *sent;         /* what we have sent it (at least theirs) */
    bool more;              /* it may lack operations we have not sent yet */
    uint64_t batch_seq;     /* OPS messages sent */
    uint64_t reset_seq;     /* OPS up to this one were forgotten by s_reset_send: their
                               ACKs still say what it holds, but free no window place */
    int in_flight;          /* OPS not acknowledged */
    int64_t last_send_ms;   /* when the oldest unacknowledged OPS left */
    uint64_t ops_sent, ops_received, parked;
    uint64_t bytes_sent;    /* every message's bytes, as handed to ZeroMQ (before CURVE) */
    int64_t last_seen_ms;   /* monotonic time of its last message; 0: never */
    time_t last_seen_wall;  /* the same, wall clock, for reports */
    int64_t next_hello_ms;  /* when to say HELLO again while not connected */
    int backoff_ms;
} s_peer;

/* Storing what peers send (s_store_inbound). Every OPS received is kept here until
 * the transaction that stores it commits, and acknowledged only then: an ACK sent
 * before the commit could promise operations a crash then loses, and a batch dropped
 * on a failed attempt would wait for its sender's timeout. So an attempt that fails
 * (another program holds the write lock past busy_timeout_ms; the disk is full; the
 * file is read-only) rolls back, keeps every batch, answers nothing, and is tried
 * again: soon when the database was busy, backing off up to NODE_RETRY_MAX_MS
 * otherwise. Between attempts the loop serves peers and the control socket. What is
 * held is bounded; past the bounds an OPS is dropped unacknowledged (counted as
 * deferred) and its sender sends it again after peer_timeout_ms. */
#define NODE_INBOUND_MAX_BATCHES 64
#define NODE_INBOUND_MAX_BYTES (64u << 20) /* encoded bytes of the batches held */
#define NODE_RETRY_MIN_MS 100
#define NODE_RETRY_MAX_MS 5000

/* What made the last attempt to store fail. */
typedef enum { FAULT_NONE, FAULT_BUSY, FAULT_IO } s_fault;

/* An OPS received and not stored yet. */
typedef struct {
    s_peer *peer;      /* peers live as long as the node */
    uint64_t seq;      /* its batch number, for the ACK */
    opbatch_t *batch;  /* decoded; owned */
    size_t bytes;      /* its encoded size, for NODE_INBOUND_MAX_BYTES */
    apply_stats stats; /* what the attempt that stored it counted */
} s_inbound;

struct node {
    char *dir, *db_path, *schemas_dir, *control_endpoint;
    char endpoint[256];      /* the inbox's endpoint, port resolved */
    bool insecure, tofu;
    stm_id *trusted;         /* keys allowed to connect: the first nsorted sorted (those
                                of the configuration), then those added while running */
    size_t ntrusted, trusted_cap, nsorted;
    peer_policy policy;
    int heartbeat_ms, peer_timeout_ms, reconnect_min_ms, reconnect_max_ms, batch_ops, window,
        local_poll_ms, busy_timeout_ms;
    stm_id id;               /* our public key */
    char id_z85[41];
    unsigned char *secret;   /* sodium_malloc'd, 32 bytes */
    char short_id[13];
    store_t *store;
    applier_t *applier;
    lineage_t *lineage;      /* the database's lineage (the schema set's, to its version) */
    int version;             /* the database's version */
    int schema_cookie;       /* to notice a migration made while running */
    int data_version;        /* PRAGMA data_version: changes when another connection commits */
    bool collect_failing;    /* collecting the application's changes failed (logged once) */
    void *ctx, *inbox, *zap, *control;
    s_peer **peers;
    size_t npeers, peers_cap;
    int64_t next_heartbeat_ms, next_local_poll_ms;
    s_inbound *inbound;      /* OPS received and not stored yet, oldest first */
    size_t ninbound, inbound_cap, inbound_bytes;
    int64_t retry_at_ms;     /* after a failed attempt, when to try storing again */
    int retry_backoff_ms;    /* the wait after the next failure of the same kind */
    s_fault fault;           /* what failed the last attempt; FAULT_NONE when it worked */
    int64_t busy_since_ms;   /* when the busy handler started waiting */
    bool busy_gave_up;       /* it gave up during this attempt: the database was busy */
    uint64_t malformed, refused_keys, unknown_senders;
    uint64_t dropped[REPORT_DROP_KINDS]; /* malformed and unknown senders, by why */
    uint64_t apply_busy, apply_io, batches_deferred; /* report.h says what each counts */
    time_t started;
};

/* ---- small things ---- */

/* Counts a message dropped from the mesh, by why (stemma stats). */
static void s_drop(node_t *n, report_drop why)
{
    n->dropped[why]++;
    if (why == REPORT_DROP_IMPOSTOR || why == REPORT_DROP_UNKNOWN)
        n->unknown_senders++;
    else
        n->malformed++;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_short(const stm_id *id, char out[13])
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(id, hex);
    memcpy(out, hex, 12);
    out[12] = '\0';
}

/* A key in Z85 (40 characters) or hex (64). */
static bool s_parse_key(const char *text, size_t len, stm_id *out)
{
    char tmp[80];
    if (len == 40) {
        memcpy(tmp, text, 40);
        tmp[40] = '\0';
        return zmq_z85_decode(out->bytes, tmp) != NULL;
    }
    if (len == 64) {
        memcpy(tmp, text, 64);
        tmp[64] = '\0';
        return stm_id_from_hex(tmp, out);
    }
    return false;
}

static stm_err s_zmq_error(stm_error *err, const char *what)
{
    return stm_error_set(err, STM_ESYS, "%s: %s", what, zmq_strerror(zmq_errno()));
}

/* ---- the database ---- */

/* Reads where the database stands and makes the lineage it is at. */
static stm_err s_load_lineage(node_t *n, stm_error *err)
{
    migrate_t *m = NULL;
    stm_err rc = migrate_open(n->db_path, n->schemas_dir, &m, err);
    if (rc != STM_OK)
        return rc;
    if (migrate_drift_count(m))
        log_event(LOG_WARN, "drift", NULL, "%s", migrate_drift_at(m, 0));
    lineage_destroy(&n->lineage);
    n->version = migrate_version(m);
    n->lineage = lineage_prefix(migrate_lineage(m), (size_t)n->version);
    migrate_destroy(&m);
    /* A HELLO beyond the protocol's limits would be dropped by every peer. */
    if ((rc = wire_check_lineage(n->lineage, err)) != STM_OK)
        return rc;
    n->schema_cookie = sqlscript_schema_cookie(store_db(n->store));
    return STM_OK;
}

static int s_data_version(node_t *n)
{
    sqlite3_stmt *stmt = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(store_db(n->store), "PRAGMA data_version", -1, &stmt, NULL) ==
            SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        v = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* ---- peers ---- */

static s_peer *s_find_peer(node_t *n, const stm_id *id)
{
    for (size_t i = 0; i < n->npeers; i++)
        if (n->peers[i]->id_known && stm_id_equal(&n->peers[i]->id, id))
            return n->peers[i];
    return NULL;
}

static s_peer *s_find_peer_by_endpoint(node_t *n, const char *endpoint)
{
    for (size_t i = 0; i < n->npeers; i++)
        if (strcmp(n->peers[i]->endpoint, endpoint) == 0)
            return n->peers[i];
    return NULL;
}

static s_peer *s_add_peer(node_t *n, const stm_id *id, const char *endpoint, bool configured)
{
    s_peer *p = stm_calloc(1, sizeof *p);
    if (id) {
        p->id = *id;
        p->id_known = true;
        s_short(id, p->short_id);
    } else {
        snprintf(p->short_id, sizeof p->short_id, "?");
    }
    p->endpoint = stm_strdup(endpoint);
    p->configured = configured;
    p->state = PS_CONNECTING;
    p->theirs = vector_new();
    p->sent = vector_new();
    p->backoff_ms = n->reconnect_min_ms;
    n->peers = stm_grow(n->peers, &n->peers_cap, n->npeers + 1, sizeof *n->peers);
    n->peers[n->npeers++] = p;
    return p;
}

static void s_close_outbox(s_peer *p)
{
    if (p->outbox) {
        zmq_close(p->outbox);
        p->outbox = NULL;
    }
}

static void s_free_peer(s_peer *p)
{
    s_close_outbox(p);
    free(p->endpoint);
    wire_hello_clear(&p->hello);
    peer_verdict_clear(&p->verdict);
    free(p->refused_by_peer);
    vector_destroy(&p->theirs);
    vector_destroy(&p->sent);
    free(p);
}

/* Opens the DEALER to p's inbox. */
static stm_err s_open_outbox(node_t *n, s_peer *p, stm_error *err)
{
    if (p->outbox)
        return STM_OK;
    void *s = zmq_socket(n->ctx, ZMQ_DEALER);
    if (!s)
        return s_zmq_error(err, "creating a socket");
    int zero = 0, hwm = 1000, one = 1;
    /* Nothing ever comes back on a DEALER (the protocol answers through the peer's own
     * DEALER), but libzmq queues what the other end sends, unread, up to the receive
     * high-water mark: a peer (or an endpoint a peer list names) could park gigabytes
     * here. A small limit (room for CURVE's handshake commands) and a queue of one. */
    int64_t max = WIRE_MAX_TO_DEALER;
    zmq_setsockopt(s, ZMQ_RCVHWM, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    /* Messages wait for the connection to come up (a HELLO sent right after connecting
     * must not be lost). The queue stays small: only connected peers are sent
     * operations, at most a window of them, and HELLO retries back off. */
    zmq_setsockopt(s, ZMQ_IMMEDIATE, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof max);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &n->reconnect_min_ms, sizeof n->reconnect_min_ms);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &n->reconnect_max_ms, sizeof n->reconnect_max_ms);
    if (n->insecure) {
        /* Without CURVE the inbox knows a sender only by its routing id: make it stable
         * (it survives reconnections) and say who we are, "N" and our id in hex. */
        char rid[1 + STM_ID_HEX_LEN + 1];
        rid[0] = 'N';
        stm_id_to_hex(&n->id, rid + 1);
        zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, 1 + STM_ID_HEX_LEN);
    } else {
        if (!p->id_known) {
            zmq_close(s);
            return stm_error_set(err, STM_EINPUT, "peer %s: its key is needed (KEY@ENDPOINT)",
                                 p->endpoint);
        }
        char server[41], public_z85[41], secret_z85[41];
        zmq_z85_encode(server, p->id.bytes, 32);
        zmq_z85_encode(public_z85, n->id.bytes, 32);
        zmq_z85_encode(secret_z85, n->secret, 32);
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, public_z85, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret_z85, 40);
        sodium_memzero(secret_z85, sizeof secret_z85);
    }
    if (zmq_connect(s, p->endpoint) != 0) {
        stm_err rc = stm_error_set(err, STM_EINPUT, "peer %s: cannot connect: %s", p->endpoint,
                                   zmq_strerror(zmq_errno()));
        zmq_close(s);
        return rc;
    }
    p->outbox = s;
    return STM_OK;
}

/* Sends a whole message to p; false when it could not leave now. */
static bool s_send(s_peer *p, const buf_t *msg)
{
    if (!p->outbox || zmq_send(p->outbox, msg->data, msg->len, ZMQ_DONTWAIT) != (int)msg->len)
        return false;
    p->bytes_sent += msg->len;
    return true;
}

/* The connected peers we can name to others. */
static wire_peer *s_peer_list(node_t *n, const s_peer *except, size_t *count)
{
    wire_peer *list = stm_calloc(n->npeers + 1, sizeof *list);
    size_t k = 0;
    for (size_t i = 0; i < n->npeers; i++) {
        s_peer *p = n->peers[i];
        if (p == except || !p->id_known || p->state != PS_CONNECTED)
            continue;
        list[k].id = p->id;
        list[k].endpoint = p->endpoint;
        k++;
    }
    *count = k;
    return list;
}

static void s_send_hello(node_t *n, s_peer *p, bool reply)
{
    vector_t *v = NULL;
    stm_error err = {0};
    if (vector_read(n->store, &v, &err) != STM_OK) {
        log_event(LOG_ERROR, "database", NULL, "%s", err.msg);
        return;
    }
    size_t npeers;
    wire_peer *list = s_peer_list(n, p, &npeers);
    buf_t msg = BUF_INIT;
    wire_encode_hello(&msg, &n->id, n->endpoint, n->lineage, v, n->policy.min_supported_version,
                      list, npeers, reply);
    s_send(p, &msg);
    buf_free(&msg);
    free(list);
    vector_destroy(&v);
}

static void s_set_state(s_peer *p, s_state state)
{
    p->state = state;
}

/* Starts sending p what it lacks again from what it says it holds. */
static void s_reset_send(s_peer *p)
{
    vector_destroy(&p->sent);
    p->sent = vector_new();
    for (size_t i = 0; i < vector_count(p->theirs); i++)
        vector_set(p->sent, &vector_at(p->theirs, i)->origin, vector_at(p->theirs, i)->seq);
    p->in_flight = 0;
    p->reset_seq = p->batch_seq;
    p->more = true;
}

static void s_mark_all_more(node_t *n)
{
    for (size_t i = 0; i < n->npeers; i++)
        n->peers[i]->more = true;
}

/* Peers named in peer lists are met until the node knows this many: each takes a
 * socket (libzmq allows 1,023 by default), and a peer list is another node's claim. */
#define S_MAX_LEARNED 1000

static void s_learn_peers(node_t *n, const wire_hello *h)
{
    for (size_t i = 0; i < h->npeers; i++) {
        const wire_peer *wp = &h->peers[i];
        if (stm_id_equal(&wp->id, &n->id) || s_find_peer(n, &wp->id))
            continue;
        if (n->npeers >= S_MAX_LEARNED) {
            log_event(LOG_WARN, "peer", NULL,
                      "a peer list names more peers than this node meets (%d known): "
                      "the rest are not met", S_MAX_LEARNED);
            return;
        }
        s_peer *known = s_find_peer_by_endpoint(n, wp->endpoint);
        if (known && !known->id_known) {
            known->id = wp->id;
            known->id_known = true;
            s_short(&wp->id, known->short_id);
            continue;
        }
        if (known)
            continue;
        s_peer *p = s_add_peer(n, &wp->id, wp->endpoint, false);
        p->next_hello_ms = s_now_ms();
        log_event(LOG_INFO, "peer-learned", p->short_id, "from a peer list: %s", p->endpoint);
    }
}

static void s_on_hello(node_t *n, s_peer *p, const stm_id *verified, const void *data,
                       size_t len)
{
    wire_hello h;
    stm_error err = {0};
    if (wire_decode_hello(data, len, &h, &err) != STM_OK) {
        s_drop(n, REPORT_DROP_HELLO);
        log_event(LOG_WARN, "malformed", p ? p->short_id : NULL, "%s", err.msg);
        return;
    }
    if (verified && !stm_id_equal(verified, &h.node_id)) {
        s_drop(n, REPORT_DROP_IMPOSTOR);
        log_event(LOG_WARN, "impostor", NULL,
                  "a HELLO claims another node id than the key it connected with; dropped");
        wire_hello_clear(&h);
        return;
    }
    if (stm_id_equal(&h.node_id, &n->id)) {
        wire_hello_clear(&h);
        return;
    }
    if (!p)
        p = s_find_peer(n, &h.node_id);
    if (!p)
        p = s_find_peer_by_endpoint(n, h.endpoint);
    if (!p)
        p = s_add_peer(n, &h.node_id, h.endpoint, false);
    if (!p->id_known) {
        p->id = h.node_id;
        p->id_known = true;
        s_short(&p->id, p->short_id);
    }
    if (strcmp(p->endpoint, h.endpoint) != 0 && !p->configured) {
        free(p->endpoint);
        p->endpoint = stm_strdup(h.endpoint);
    }
    p->last_seen_ms = s_now_ms();
    p->last_seen_wall = time(NULL);
    wire_hello_clear(&p->hello);
    p->hello = h;
    p->have_hello = true;
    /* A peer that refused us answers our HELLOs and then refuses again: its answer does
     * not undo the refusal. A HELLO of its own (it migrated, or restarted) does. */
    if (!h.reply) {
        free(p->refused_by_peer);
        p->refused_by_peer = NULL;
    }
    peer_verdict_clear(&p->verdict);
    judge_hello(n->lineage, h.lineage, &n->policy, &p->verdict);
    vector_destroy(&p->theirs);
    p->theirs = vector_new();
    for (size_t i = 0; i < vector_count(h.vector); i++)
        vector_set(p->theirs, &vector_at(h.vector, i)->origin, vector_at(h.vector, i)->seq);
    s_reset_send(p);
    if (!p->refused_by_peer)
        p->backoff_ms = n->reconnect_min_ms; /* a refusing peer is asked less and less often */
    if (s_open_outbox(n, p, &err) != STM_OK)
        log_event(LOG_WARN, "peer", p->short_id, "%s", err.msg);
    const comparison_t *c = p->verdict.cmp;
    if (p->verdict.sync == PEER_SYNC_REFUSED) {
        s_set_state(p, PS_REFUSED);
        log_event(LOG_WARN, "peer-refused", p->short_id, "%s v%d (%s): %s",
                  lineage_name(h.lineage), c->remote_version, relation_name(c->relation),
                  p->verdict.reason);
        buf_t msg = BUF_INIT;
        wire_encode_refuse(&msg, p->verdict.reason);
        s_send(p, &msg);
        buf_free(&msg);
    } else if (p->refused_by_peer) {
        s_set_state(p, PS_REFUSED); /* it answered us, but its refusal stands */
    } else {
        bool was = p->state == PS_CONNECTED;
        s_set_state(p, PS_CONNECTED);
        if (!was) {
            log_event(LOG_INFO, "peer-connected", p->short_id, "%s %s v%d, %s, sync %s: %s",
                      p->endpoint, lineage_name(h.lineage), c->remote_version,
                      relation_name(c->relation), peer_sync_name(p->verdict.sync),
                      p->verdict.reason);
            /* The other peers hear of it (peer lists travel in HELLOs); flagged as a reply
             * so that they do not answer. */
            for (size_t i = 0; i < n->npeers; i++)
                if (n->peers[i] != p && n->peers[i]->state == PS_CONNECTED)
                    s_send_hello(n, n->peers[i], true);
        }
    }
    if (p->verdict.warning[0])
        log_event(LOG_WARN, "version-gap", p->short_id, "%s", p->verdict.warning);
    /* The answer goes after a REFUSE: the refused side keeps the refusal through
     * answers (they carry reply), so it ends refused, not connected. */
    if (!p->hello.reply)
        s_send_hello(n, p, true);
    s_learn_peers(n, &p->hello);
}

static void s_on_refuse(node_t *n, s_peer *p, const void *data, size_t len)
{
    char *reason = NULL;
    stm_error err = {0};
    if (wire_decode_refuse(data, len, &reason, &err) != STM_OK) {
        s_drop(n, REPORT_DROP_REFUSE);
        log_event(LOG_WARN, "malformed", p->short_id, "%s", err.msg);
        return;
    }
    bool news = !p->refused_by_peer || strcmp(p->refused_by_peer, reason) != 0;
    free(p->refused_by_peer);
    p->refused_by_peer = reason;
    s_set_state(p, PS_REFUSED);
    if (news)
        log_event(LOG_WARN, "refused-by-peer", p->short_id, "%s", reason);
}

/* ---- storing what peers send ---- */

static bool s_inbound_full(const node_t *n, size_t more_bytes)
{
    return n->ninbound >= NODE_INBOUND_MAX_BATCHES ||
           (n->ninbound && n->inbound_bytes + more_bytes > NODE_INBOUND_MAX_BYTES);
}

static void s_inbound_clear(node_t *n)
{
    for (size_t i = 0; i < n->ninbound; i++)
        opbatch_destroy(&n->inbound[i].batch);
    n->ninbound = 0;
    n->inbound_bytes = 0;
}

/* SQLite's busy handler: while another program holds the write lock, waits in short
 * sleeps, at most busy_timeout_ms from the first; then gives up, and notes that it
 * did, which is how a busy database is told from one that refused the write. */
static int s_busy(void *ctx, int count)
{
    node_t *n = ctx;
    static const int sleeps_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    int64_t now = s_now_ms();
    if (count == 0)
        n->busy_since_ms = now;
    int64_t left = n->busy_timeout_ms - (now - n->busy_since_ms);
    if (left <= 0) {
        n->busy_gave_up = true;
        return 0;
    }
    int64_t ms = count < (int)(sizeof sleeps_ms / sizeof sleeps_ms[0]) ? sleeps_ms[count] : 100;
    if (ms > left)
        ms = left;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

static void s_store_setup(node_t *n)
{
    sqlite3_busy_handler(store_db(n->store), s_busy, n);
}

/* A connection SQLite opened read-only (the file was not writable) stays so until it
 * is opened again: reopen it once the file is writable, so that fixing the file is
 * enough. The old store and applier are kept when that fails. */
static void s_reopen_if_readonly(node_t *n)
{
    if (sqlite3_db_readonly(store_db(n->store), "main") != 1)
        return;
    store_t *fresh = NULL;
    stm_error err = {0};
    if (store_open(n->db_path, STORE_OPEN_EXISTING, &fresh, &err) != STM_OK)
        return;
    if (sqlite3_db_readonly(store_db(fresh), "main") == 1) {
        store_destroy(&fresh);
        return;
    }
    applier_destroy(&n->applier);
    store_destroy(&n->store);
    n->store = fresh;
    s_store_setup(n);
    n->applier = applier_new(n->store, NULL, NULL);
    n->data_version = s_data_version(n);
    log_event(LOG_INFO, "database", NULL, "%s is writable again: reopened", n->db_path);
}

/* A failed attempt: everything is rolled back and every batch still waits. Said once
 * per run of failures of one kind; counted every time. */
static void s_store_failed(node_t *n, const stm_error *err)
{
    s_fault fault = n->busy_gave_up ? FAULT_BUSY : FAULT_IO;
    if (fault != n->fault)
        n->retry_backoff_ms = NODE_RETRY_MIN_MS;
    if (fault == FAULT_BUSY) {
        n->apply_busy++;
        if (n->fault != FAULT_BUSY)
            log_event(LOG_WARN, "busy", NULL,
                      "another program holds the database's write lock (waited %d ms): "
                      "received batches wait (%zu), unacknowledged, and are tried again",
                      n->busy_timeout_ms, n->ninbound);
    } else {
        n->apply_io++;
        if (n->fault != FAULT_IO)
            log_event(LOG_ERROR, "apply", NULL,
                      "%s: received batches wait (%zu), unacknowledged, and are tried again "
                      "until the database takes them",
                      err->msg, n->ninbound);
    }
    n->fault = fault;
    /* A busy handler has waited already: try again soon. Otherwise back off. */
    n->retry_at_ms = s_now_ms() + n->retry_backoff_ms;
    if (fault == FAULT_IO)
        n->retry_backoff_ms = n->retry_backoff_ms * 2 > NODE_RETRY_MAX_MS ? NODE_RETRY_MAX_MS
                                                                          : n->retry_backoff_ms * 2;
}

/* Stores every batch waiting, in one transaction, then acknowledges each with the
 * vector after the commit; what came in travels on to the other peers. */
static void s_store_inbound(node_t *n)
{
    if (!n->ninbound)
        return;
    if (n->fault == FAULT_IO)
        s_reopen_if_readonly(n);
    stm_error err = {0};
    n->busy_gave_up = false;
    stm_err rc = applier_begin(n->applier, &err);
    for (size_t i = 0; i < n->ninbound && rc == STM_OK; i++) {
        n->inbound[i].stats = (apply_stats){0};
        rc = applier_apply(n->applier, n->inbound[i].batch, &n->inbound[i].stats, &err);
    }
    if (rc == STM_OK)
        rc = applier_commit(n->applier, &err);
    else
        applier_rollback(n->applier);
    if (rc != STM_OK) {
        s_store_failed(n, &err);
        return;
    }
    if (n->fault != FAULT_NONE)
        log_event(LOG_INFO, "apply", NULL, "the database takes writes again: stored the "
                  "received batches that waited (%zu)", n->ninbound);
    n->fault = FAULT_NONE;
    n->retry_at_ms = 0;
    vector_t *v = NULL;
    if (vector_read(n->store, &v, &err) != STM_OK) {
        /* Stored but not acknowledged: their senders send them again, which changes
         * nothing. */
        log_event(LOG_ERROR, "database", NULL, "%s", err.msg);
        s_inbound_clear(n);
        return;
    }
    buf_t msg = BUF_INIT;
    for (size_t i = 0; i < n->ninbound; i++) {
        s_inbound *b = &n->inbound[i];
        b->peer->ops_received += opbatch_count(b->batch);
        b->peer->parked += b->stats.parked;
        buf_reset(&msg);
        wire_encode_ack(&msg, b->seq, v);
        s_send(b->peer, &msg);
    }
    buf_free(&msg);
    vector_destroy(&v);
    s_inbound_clear(n);
    s_mark_all_more(n);
}

static void s_on_ops(node_t *n, s_peer *p, const void *data, size_t len)
{
    uint64_t seq;
    const void *batch_bytes;
    size_t batch_len;
    stm_error err = {0};
    if (wire_decode_ops(data, len, &seq, &batch_bytes, &batch_len, &err) != STM_OK) {
        s_drop(n, REPORT_DROP_OPS);
        log_event(LOG_WARN, "malformed", p->short_id, "%s", err.msg);
        return;
    }
    if (p->state != PS_CONNECTED) {
        /* It judged our HELLO before we had its answer: ask again. It starts sending
         * from our vector when it gets this, so nothing is lost by ignoring these. */
        if (p->state == PS_CONNECTING || p->state == PS_GONE) {
            s_send_hello(n, p, false);
            p->next_hello_ms = s_now_ms() + p->backoff_ms;
        }
        return;
    }
    opbatch_t *batch = opbatch_new();
    if (codec_decode_ops(batch_bytes, batch_len, batch, &err) != STM_OK) {
        s_drop(n, REPORT_DROP_BATCH);
        log_event(LOG_WARN, "malformed", p->short_id, "%s", err.msg);
        opbatch_destroy(&batch);
        return;
    }
    /* Batches received in one pass of the loop are stored in one transaction before the
     * loop sleeps (s_store_inbound): each changed page is written once. When too many
     * wait already, store them now; if that fails, this one is left to its sender. */
    if (s_inbound_full(n, batch_len) && n->fault == FAULT_NONE)
        s_store_inbound(n);
    if (s_inbound_full(n, batch_len)) {
        n->batches_deferred++;
        opbatch_destroy(&batch);
        return;
    }
    n->inbound = stm_grow(n->inbound, &n->inbound_cap, n->ninbound + 1, sizeof *n->inbound);
    n->inbound[n->ninbound++] = (s_inbound){p, seq, batch, batch_len, {0}};
    n->inbound_bytes += batch_len;
}

static void s_on_ack(node_t *n, s_peer *p, const void *data, size_t len)
{
    uint64_t seq;
    vector_t *v = NULL;
    stm_error err = {0};
    if (wire_decode_ack(data, len, &seq, &v, &err) != STM_OK) {
        s_drop(n, REPORT_DROP_ACK);
        log_event(LOG_WARN, "malformed", p->short_id, "%s", err.msg);
        return;
    }
    if (seq > p->reset_seq && p->in_flight > 0)
        p->in_flight--;
    p->last_send_ms = s_now_ms();
    vector_destroy(&p->theirs);
    p->theirs = v;
    for (size_t i = 0; i < vector_count(v); i++) {
        const vector_entry *e = vector_at(v, i);
        if (vector_get(p->sent, &e->origin) < e->seq)
            vector_set(p->sent, &e->origin, e->seq);
    }
}

/* ---- sockets ---- */

/* Which peer sent a message: by its verified key, or (insecure) by routing id. */
static s_peer *s_sender(node_t *n, zmq_msg_t *msg, const char *rid, size_t rid_len,
                        stm_id *verified, bool *have_verified)
{
    *have_verified = false;
    if (!n->insecure) {
        const char *user = zmq_msg_gets(msg, "User-Id");
        if (user && s_parse_key(user, strlen(user), verified)) {
            *have_verified = true;
            return s_find_peer(n, verified);
        }
        return NULL;
    }
    /* Insecure: the routing id our peers set ("N" + hex id); a claim, not a proof. */
    char hex[STM_ID_HEX_LEN + 1];
    if (rid_len == 1 + STM_ID_HEX_LEN && rid[0] == 'N') {
        memcpy(hex, rid + 1, STM_ID_HEX_LEN);
        hex[STM_ID_HEX_LEN] = '\0';
        stm_id id;
        if (stm_id_from_hex(hex, &id))
            return s_find_peer(n, &id);
    }
    return NULL;
}

static void s_handle_inbox(node_t *n)
{
    for (int budget = 0; budget < 256; budget++) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, n->inbox, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            return;
        }
        zmq_msg_init(&body);
        int more = zmq_msg_more(&rid);
        if (!more || zmq_msg_recv(&body, n->inbox, 0) < 0) {
            zmq_msg_close(&rid);
            zmq_msg_close(&body);
            continue;
        }
        /* Anything after the body is not ours: read and drop it. */
        while (zmq_msg_more(&body)) {
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            zmq_msg_recv(&extra, n->inbox, 0);
            int again = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
            if (!again)
                break;
        }
        const char *data = zmq_msg_data(&body);
        size_t len = zmq_msg_size(&body);
        stm_id verified;
        bool have_verified;
        s_peer *p = s_sender(n, &body, zmq_msg_data(&rid), zmq_msg_size(&rid), &verified,
                             &have_verified);
        int version, type;
        stm_error err = {0};
        if (wire_header(data, len, &version, &type, &err) != STM_OK) {
            s_drop(n, REPORT_DROP_NOT_STEMMA);
            log_event(LOG_WARN, "malformed", p ? p->short_id : NULL, "%s", err.msg);
        } else if (version != WIRE_VERSION) {
            s_drop(n, REPORT_DROP_VERSION);
            log_event(LOG_WARN, "protocol-version", p ? p->short_id : NULL,
                      "a message of protocol version %d (this node speaks %d): ignored", version,
                      WIRE_VERSION);
        } else if (type == WIRE_HELLO) {
            s_on_hello(n, p, have_verified ? &verified : NULL, data, len);
        } else if (!p) {
            s_drop(n, REPORT_DROP_UNKNOWN);
        } else {
            p->last_seen_ms = s_now_ms();
            p->last_seen_wall = time(NULL);
            if (p->state == PS_GONE && p->have_hello && p->verdict.sync != PEER_SYNC_REFUSED)
                s_set_state(p, PS_CONNECTED);
            switch (type) {
            case WIRE_REFUSE:
                s_on_refuse(n, p, data, len);
                break;
            case WIRE_OPS:
                s_on_ops(n, p, data, len);
                break;
            case WIRE_ACK:
                s_on_ack(n, p, data, len);
                break;
            case WIRE_BYE:
                if (p->state == PS_CONNECTED) {
                    s_set_state(p, PS_GONE);
                    p->next_hello_ms = s_now_ms() + n->reconnect_min_ms;
                    log_event(LOG_INFO, "peer-left", p->short_id, "said BYE");
                }
                break;
            default:
                break; /* PING, and types of later versions: ignored */
            }
        }
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
    }
}

static int s_key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(stm_id));
}

static bool s_is_trusted(node_t *n, const stm_id *key)
{
    if (n->nsorted && bsearch(key, n->trusted, n->nsorted, sizeof *n->trusted, s_key_cmp))
        return true;
    for (size_t i = n->nsorted; i < n->ntrusted; i++)
        if (stm_id_equal(&n->trusted[i], key))
            return true;
    return false;
}

static void s_trust(node_t *n, const stm_id *key)
{
    n->trusted = stm_grow(n->trusted, &n->trusted_cap, n->ntrusted + 1, sizeof *n->trusted);
    n->trusted[n->ntrusted++] = *key;
}

/* Answers libzmq's questions about connecting keys (ZAP, RFC 27). */
static void s_handle_zap(node_t *n)
{
    for (;;) {
        zmq_msg_t frames[8];
        int nframes = 0;
        for (;;) {
            zmq_msg_t *m = &frames[nframes < 7 ? nframes : 7];
            zmq_msg_init(m);
            if (zmq_msg_recv(m, n->zap, nframes == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(m);
                if (nframes == 0)
                    return;
                break;
            }
            int more = zmq_msg_more(m);
            if (nframes < 7)
                nframes++;
            else
                zmq_msg_close(m);
            if (!more)
                break;
        }
        /* version, request id, domain, address, routing id, mechanism, credentials */
        bool ok = false;
        stm_id key = {{0}};
        if (nframes >= 7 && zmq_msg_size(&frames[5]) == 5 &&
            memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0 && zmq_msg_size(&frames[6]) == 32) {
            memcpy(key.bytes, zmq_msg_data(&frames[6]), 32);
            ok = s_is_trusted(n, &key);
            if (!ok && n->tofu) {
                ok = true;
                s_trust(n, &key);
                char z85[41];
                zmq_z85_encode(z85, key.bytes, 32);
                config_key remembered;
                memcpy(remembered.bytes, key.bytes, 32);
                stm_error err = {0};
                if (config_known_peer_add(n->dir, &remembered, &err) != STM_OK)
                    log_event(LOG_ERROR, "known-peers", NULL, "%s", err.msg);
                log_event(LOG_INFO, "trust-on-first-use", NULL, "now trusting %s", z85);
            }
        }
        char user[41] = "";
        if (ok)
            zmq_z85_encode(user, key.bytes, 32);
        else {
            n->refused_keys++;
            char z85[41] = "(none)";
            if (nframes >= 7 && zmq_msg_size(&frames[6]) == 32)
                zmq_z85_encode(z85, key.bytes, 32);
            log_event(LOG_WARN, "key-refused", NULL, "a connection with key %s: not trusted",
                      z85);
        }
        const char *status = ok ? "200" : "400";
        const char *text = ok ? "OK" : "key not trusted";
        zmq_send(n->zap, "1.0", 3, ZMQ_SNDMORE);
        if (nframes >= 2)
            zmq_send(n->zap, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), ZMQ_SNDMORE);
        else
            zmq_send(n->zap, "", 0, ZMQ_SNDMORE);
        zmq_send(n->zap, status, 3, ZMQ_SNDMORE);
        zmq_send(n->zap, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(n->zap, user, strlen(user), ZMQ_SNDMORE);
        zmq_send(n->zap, "", 0, 0);
        for (int i = 0; i < nframes; i++)
            zmq_msg_close(&frames[i]);
    }
}

/* ---- sending what peers lack ---- */

static void s_pump(node_t *n, s_peer *p)
{
    if (p->state != PS_CONNECTED || !p->more || p->in_flight >= n->window || !p->outbox)
        return;
    oplog_reader_t *reader = NULL;
    stm_error err = {0};
    if (oplog_reader_new(n->store, p->sent, &reader, &err) != STM_OK) {
        log_event(LOG_ERROR, "database", NULL, "%s", err.msg);
        return;
    }
    opbatch_t *batch = opbatch_new();
    buf_t enc = BUF_INIT, msg = BUF_INIT;
    while (p->in_flight < n->window) {
        size_t got = 0;
        opbatch_clear(batch);
        if (oplog_reader_next(reader, batch, (size_t)n->batch_ops, 4u * 1024u * 1024u, &got,
                              &err) != STM_OK) {
            log_event(LOG_ERROR, "database", NULL, "%s", err.msg);
            break;
        }
        if (got == 0) {
            p->more = false;
            break;
        }
        buf_reset(&enc);
        buf_reset(&msg);
        codec_encode_ops(batch, 0, got, &enc);
        wire_encode_ops(&msg, ++p->batch_seq, enc.data, enc.len);
        if (!s_send(p, &msg))
            break; /* the connection is down: this is sent again from its vector */
        for (size_t i = 0; i < got; i++) {
            const op_t *op = opbatch_at(batch, i);
            if (vector_get(p->sent, &op->origin) < op->seq)
                vector_set(p->sent, &op->origin, op->seq);
        }
        if (p->in_flight++ == 0)
            p->last_send_ms = s_now_ms();
        p->ops_sent += got;
    }
    buf_free(&enc);
    buf_free(&msg);
    opbatch_destroy(&batch);
    oplog_reader_destroy(&reader);
}

/* ---- reports ---- */

/* The reports' view of the peer states: the names are report.h's, so node.c keeps its
 * own enum for the state machine and says here how each state is shown. */
static report_state s_report_state(s_state s)
{
    switch (s) {
    case PS_CONNECTING:
        return REPORT_CONNECTING;
    case PS_CONNECTED:
        return REPORT_CONNECTED;
    case PS_GONE:
        return REPORT_GONE;
    case PS_REFUSED:
        return REPORT_REFUSED;
    }
    return REPORT_REFUSED;
}

/* Fills r from the node for one render: strings, lineages and verdicts are lent by n
 * and must not outlive the next change to it; r->peers is the caller's to free, and
 * r->parked_reasons too (oplog_parked_reasons_free). The
 * database is read once here (counts, and the vector each peer's lag is measured
 * against), not once per peer. */
static void s_report_fill(node_t *n, report_node *r)
{
    stm_error err = {0};
    memset(r, 0, sizeof *r);
    r->id = n->id;
    r->lineage = n->lineage;
    r->version = n->version;
    r->endpoint = n->endpoint;
    r->secure = !n->insecure;
    oplog_counts(n->store, &r->operations, &r->parked, &err);
    r->malformed = n->malformed;
    r->apply_busy = n->apply_busy;
    r->apply_io = n->apply_io;
    r->batches_waiting = n->ninbound;
    r->batches_deferred = n->batches_deferred;
    r->refused_keys = n->refused_keys;
    r->unknown_senders = n->unknown_senders;
    memcpy(r->dropped, n->dropped, sizeof r->dropped);
    oplog_parked_reason *reasons = NULL;
    size_t nreasons = 0;
    if (oplog_parked_reasons(n->store, 20, &reasons, &nreasons, &err) == STM_OK) {
        r->parked_reasons = reasons;
        r->nparked_reasons = nreasons;
    }
    for (size_t i = 0; i < n->npeers; i++)
        r->bytes_sent += n->peers[i]->bytes_sent;
    vector_t *mine = NULL;
    if (vector_read(n->store, &mine, &err) != STM_OK)
        mine = NULL; /* a lag of 0 rather than no report */
    report_peer *peers = stm_calloc(n->npeers + 1, sizeof *peers);
    for (size_t i = 0; i < n->npeers; i++) {
        const s_peer *p = n->peers[i];
        report_peer *rp = &peers[i];
        rp->id = p->id;
        rp->id_known = p->id_known;
        rp->endpoint = p->endpoint;
        rp->state = s_report_state(p->state);
        if (p->have_hello) {
            rp->schema_set = p->hello.schema_set;
            rp->lineage = p->hello.lineage;
            rp->verdict = &p->verdict;
        }
        rp->refused_by_peer = p->refused_by_peer;
        rp->ops_sent = p->ops_sent;
        rp->ops_received = p->ops_received;
        rp->parked = p->parked;
        rp->last_seen = p->last_seen_wall;
        for (size_t k = 0; p->have_hello && mine && k < vector_count(mine); k++) {
            const vector_entry *e = vector_at(mine, k);
            uint64_t theirs = vector_get(p->theirs, &e->origin);
            if (e->seq > theirs)
                rp->behind += e->seq - theirs;
        }
    }
    vector_destroy(&mine);
    r->peers = peers;
    r->npeers = n->npeers;
}

static void s_handle_control(node_t *n)
{
    char req[64];
    int len = zmq_recv(n->control, req, sizeof req - 1, ZMQ_DONTWAIT);
    if (len < 0)
        return;
    if (len > (int)sizeof req - 1)
        len = (int)sizeof req - 1;
    req[len] = '\0';
    int more = 0;
    size_t more_size = sizeof more;
    while (zmq_getsockopt(n->control, ZMQ_RCVMORE, &more, &more_size) == 0 && more)
        zmq_recv(n->control, req + len, 0, 0);
    static const struct {
        const char *request;
        char *(*render)(const report_node *r);
    } requests[] = {{"report text", report_text}, {"report json", report_json},
                    {"report toml", report_toml}, {"report dot", report_dot},
                    {"peers", report_peers_text}, {"stats", report_stats_text}};
    char *reply = NULL;
    for (size_t i = 0; i < sizeof requests / sizeof requests[0] && !reply; i++) {
        if (strcmp(req, requests[i].request) != 0)
            continue;
        report_node r;
        s_report_fill(n, &r);
        reply = requests[i].render(&r);
        free((void *)r.peers);
        oplog_parked_reason *reasons = (oplog_parked_reason *)r.parked_reasons;
        oplog_parked_reasons_free(&reasons, r.nparked_reasons);
    }
    if (!reply)
        reply = stm_strdup("error: unknown request (report text|json|toml|dot, peers, stats)\n");
    zmq_send(n->control, reply, strlen(reply), 0);
    free(reply);
}

/* ---- timers ---- */

static void s_timers(node_t *n, int64_t now)
{
    if (now >= n->next_local_poll_ms) {
        n->next_local_poll_ms = now + n->local_poll_ms;
        int dv = s_data_version(n);
        if (dv != n->data_version) {
            /* The application wrote: its queued changes become operations to send. */
            stm_error err = {0};
            if (applier_catch_up(n->applier, &err) != STM_OK) {
                if (!n->collect_failing)
                    log_event(LOG_WARN, "capture", NULL,
                              "%s: the application's changes wait in the queue; trying again",
                              err.msg);
                n->collect_failing = true;
            } else {
                n->collect_failing = false;
                n->data_version = dv;
                s_mark_all_more(n);
            }
        }
        int cookie = sqlscript_schema_cookie(store_db(n->store));
        if (cookie != n->schema_cookie) {
            int before = n->version;
            stm_error err = {0};
            if (s_load_lineage(n, &err) != STM_OK) {
                log_event(LOG_ERROR, "schema", NULL, "%s", err.msg);
                n->schema_cookie = cookie;
            } else if (n->version != before) {
                log_event(LOG_INFO, "migrated", NULL, "the database is now at v%d: telling peers",
                          n->version);
                /* Peers judge us again, and we them. */
                for (size_t i = 0; i < n->npeers; i++) {
                    s_peer *p = n->peers[i];
                    if (p->have_hello) {
                        peer_verdict_clear(&p->verdict);
                        judge_hello(n->lineage, p->hello.lineage, &n->policy, &p->verdict);
                        s_set_state(p, p->verdict.sync == PEER_SYNC_REFUSED ? PS_REFUSED
                                                                             : PS_CONNECTED);
                    }
                    s_send_hello(n, p, false);
                }
                s_mark_all_more(n);
            }
        }
    }
    if (now >= n->next_heartbeat_ms) {
        n->next_heartbeat_ms = now + n->heartbeat_ms;
        buf_t ping = BUF_INIT;
        wire_encode_empty(&ping, WIRE_PING);
        for (size_t i = 0; i < n->npeers; i++)
            if (n->peers[i]->state == PS_CONNECTED)
                s_send(n->peers[i], &ping);
        buf_free(&ping);
    }
    for (size_t i = 0; i < n->npeers; i++) {
        s_peer *p = n->peers[i];
        if (p->state == PS_CONNECTED && now - p->last_seen_ms > n->peer_timeout_ms) {
            s_set_state(p, PS_GONE);
            p->next_hello_ms = now;
            p->backoff_ms = n->reconnect_min_ms;
            log_event(LOG_WARN, "peer-gone", p->short_id, "silent for %d ms", n->peer_timeout_ms);
        }
        if (p->state == PS_CONNECTED && p->in_flight && now - p->last_send_ms > n->peer_timeout_ms)
            s_reset_send(p); /* unacknowledged: send again from what it holds */
        bool retry = p->state == PS_CONNECTING || p->state == PS_GONE ||
                     (p->state == PS_REFUSED && p->refused_by_peer);
        if (retry && now >= p->next_hello_ms) {
            stm_error err = {0};
            if (s_open_outbox(n, p, &err) == STM_OK)
                s_send_hello(n, p, false);
            else
                log_event(LOG_WARN, "peer", p->short_id, "%s", err.msg);
            p->next_hello_ms = now + p->backoff_ms;
            p->backoff_ms = p->backoff_ms * 2 > n->reconnect_max_ms ? n->reconnect_max_ms
                                                                    : p->backoff_ms * 2;
        }
    }
}

/* ---- life ---- */

static stm_err s_bind_sockets(node_t *n, const char *bind, stm_error *err)
{
    n->ctx = zmq_ctx_new();
    if (!n->ctx)
        return s_zmq_error(err, "creating the ZeroMQ context");
    int zero = 0;
    if (!n->insecure) {
        /* The ZAP handler has to be there before the first CURVE connection. */
        n->zap = zmq_socket(n->ctx, ZMQ_REP);
        zmq_setsockopt(n->zap, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_bind(n->zap, "inproc://zeromq.zap.01") != 0)
            return s_zmq_error(err, "binding the ZAP handler");
    }
    n->inbox = zmq_socket(n->ctx, ZMQ_ROUTER);
    int64_t max = WIRE_MAX_MESSAGE;
    int one = 1, hwm = 10000;
    zmq_setsockopt(n->inbox, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(n->inbox, ZMQ_MAXMSGSIZE, &max, sizeof max);
    zmq_setsockopt(n->inbox, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(n->inbox, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    if (!n->insecure) {
        char secret_z85[41];
        zmq_z85_encode(secret_z85, n->secret, 32);
        zmq_setsockopt(n->inbox, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(n->inbox, ZMQ_CURVE_SECRETKEY, secret_z85, 40);
        sodium_memzero(secret_z85, sizeof secret_z85);
        zmq_setsockopt(n->inbox, ZMQ_ZAP_DOMAIN, "stemma", 6);
    }
    if (zmq_bind(n->inbox, bind) != 0)
        return stm_error_set(err, STM_EINPUT, "cannot bind the mesh endpoint %s: %s", bind,
                             zmq_strerror(zmq_errno()));
    size_t size = sizeof n->endpoint;
    zmq_getsockopt(n->inbox, ZMQ_LAST_ENDPOINT, n->endpoint, &size);
    /* The control socket answers anyone who reaches it: never let the mesh reach it. */
    if (strncmp(n->control_endpoint, "ipc://", 6) != 0 &&
        strncmp(n->control_endpoint, "tcp://127.0.0.1:", 16) != 0 &&
        strncmp(n->control_endpoint, "tcp://localhost:", 16) != 0 &&
        strncmp(n->control_endpoint, "tcp://[::1]:", 12) != 0)
        return stm_error_set(err, STM_EINPUT,
                             "the control endpoint %s must be ipc:// or loopback TCP "
                             "(tcp://127.0.0.1:PORT): it has no authentication",
                             n->control_endpoint);
    n->control = zmq_socket(n->ctx, ZMQ_REP);
    zmq_setsockopt(n->control, ZMQ_LINGER, &zero, sizeof zero);
    int64_t small = 4096;
    zmq_setsockopt(n->control, ZMQ_MAXMSGSIZE, &small, sizeof small);
    if (strncmp(n->control_endpoint, "ipc://", 6) == 0)
        unlink(n->control_endpoint + 6); /* a socket file left by a node that died */
    /* The socket file is made 0600 from the start (the bind happens in this thread),
     * not only by the chmod after it: no moment when another user may connect. */
    mode_t umask_was = umask(0177);
    int bound = zmq_bind(n->control, n->control_endpoint);
    umask(umask_was);
    if (bound != 0)
        return stm_error_set(err, STM_EINPUT, "cannot bind the control endpoint %s: %s",
                             n->control_endpoint, zmq_strerror(zmq_errno()));
    if (strncmp(n->control_endpoint, "ipc://", 6) == 0)
        chmod(n->control_endpoint + 6, 0600); /* only this node's user may ask */
    return STM_OK;
}

stm_err node_new(const node_options *o, node_t **out, stm_error *err)
{
    node_t *n = stm_calloc(1, sizeof *n);
    n->dir = stm_strdup(o->dir);
    n->db_path = stm_strdup(o->db_path);
    n->schemas_dir = stm_strdup(o->schemas_dir);
    n->control_endpoint = stm_strdup(o->control);
    n->insecure = o->insecure;
    n->tofu = o->trust_on_first_use;
    n->policy = o->policy;
    n->heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : 1000;
    n->peer_timeout_ms = o->peer_timeout_ms > 0 ? o->peer_timeout_ms : 5000;
    n->reconnect_min_ms = o->reconnect_min_ms > 0 ? o->reconnect_min_ms : 100;
    n->reconnect_max_ms = o->reconnect_max_ms > 0 ? o->reconnect_max_ms : 5000;
    n->batch_ops = o->batch_ops > 0 ? o->batch_ops : 2000;
    n->window = o->window > 0 ? o->window : 4;
    n->local_poll_ms = o->local_poll_ms > 0 ? o->local_poll_ms : 200;
    n->busy_timeout_ms = o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 1000;
    memcpy(n->id.bytes, o->public_key, 32);
    zmq_z85_encode(n->id_z85, n->id.bytes, 32);
    s_short(&n->id, n->short_id);
    n->secret = sodium_malloc(32);
    memcpy(n->secret, o->secret_key, 32);
    sodium_mprotect_readonly(n->secret);
    n->started = time(NULL);
    stm_err rc = STM_OK;
    /* Sorted, repeats dropped: checking each key against those before it cost n squared
     * (26 s to start with 100,000 trusted keys); each connection is then a binary search. */
    n->trusted = stm_calloc(o->ntrusted + 1, sizeof *n->trusted);
    n->trusted_cap = o->ntrusted + 1;
    if (o->ntrusted)
        memcpy(n->trusted, o->trusted, o->ntrusted * sizeof *n->trusted);
    qsort(n->trusted, o->ntrusted, sizeof *n->trusted, s_key_cmp);
    for (size_t i = 0; i < o->ntrusted; i++)
        if (n->ntrusted == 0 || s_key_cmp(&n->trusted[n->ntrusted - 1], &n->trusted[i]) != 0)
            n->trusted[n->ntrusted++] = n->trusted[i];
    n->nsorted = n->ntrusted;
    if (rc == STM_OK && (rc = store_open(n->db_path, STORE_OPEN_EXISTING, &n->store, err)) ==
                            STM_OK)
        s_store_setup(n);
    if (rc == STM_OK && !store_is_prepared(n->store))
        rc = stm_error_set(err, STM_EINPUT, "%s: not set up for stemma; run stemma migrate first",
                           n->db_path);
    if (rc == STM_OK) {
        /* The node's operations carry its public key as their origin. */
        stm_id current;
        rc = store_check_format(n->store, err);
        if (rc == STM_OK)
            rc = store_node_id(n->store, &current, err);
        if (rc == STM_OK && !stm_id_equal(&current, &n->id)) {
            /* Changes made so far are the old id's: they become its operations first. */
            applier_t *applier = applier_new(n->store, NULL, NULL);
            rc = applier_catch_up(applier, err);
            applier_destroy(&applier);
            if (rc == STM_OK && (rc = store_exec(n->store, "BEGIN IMMEDIATE", err)) == STM_OK &&
                (rc = store_set_node_id(n->store, &n->id, err)) == STM_OK)
                rc = store_exec(n->store, "COMMIT", err);
            else
                store_exec(n->store, "ROLLBACK", NULL);
        }
    }
    if (rc == STM_OK)
        rc = s_load_lineage(n, err);
    if (rc == STM_OK) {
        n->applier = applier_new(n->store, NULL, NULL);
        /* Writes made while no node ran are still queued: the first look collects them. */
        n->data_version = -1;
        rc = s_bind_sockets(n, o->bind, err);
    }
    for (size_t i = 0; i < o->npeers && rc == STM_OK; i++) {
        const node_peer_spec *spec = &o->peers[i];
        if (!spec->has_key && !n->insecure) {
            rc = stm_error_set(err, STM_EINPUT,
                               "peer %s: give its public key as KEY@ENDPOINT (or run insecure)",
                               spec->endpoint);
            break;
        }
        s_peer *p = s_add_peer(n, spec->has_key ? &spec->key : NULL, spec->endpoint, true);
        p->next_hello_ms = 0;
        if (spec->has_key && !s_is_trusted(n, &spec->key))
            s_trust(n, &spec->key); /* a peer we were told to reach may reach us */
    }
    if (rc != STM_OK) {
        node_destroy(&n);
        return rc;
    }
    *out = n;
    return STM_OK;
}

const char *node_endpoint(const node_t *n)
{
    return n->endpoint;
}

stm_err node_run(node_t *n, volatile sig_atomic_t *stop, stm_error *err)
{
    (void)err;
    log_event(LOG_INFO, "started", n->short_id, "%s v%d on %s, control %s, %s",
              lineage_name(n->lineage), n->version, n->endpoint, n->control_endpoint,
              n->insecure ? "INSECURE (plain TCP)" : "CURVE");
    if (sqlite3_db_readonly(store_db(n->store), "main") == 1)
        log_event(LOG_ERROR, "database", NULL,
                  "%s is read-only: operations from peers cannot be stored until it is "
                  "writable (they wait, and are tried again); reports and sending go on",
                  n->db_path);
    while (!*stop) {
        int64_t now = s_now_ms();
        s_timers(n, now);
        for (size_t i = 0; i < n->npeers; i++)
            s_pump(n, n->peers[i]);
        /* Sleep until the earliest timer. */
        int64_t next = n->next_heartbeat_ms < n->next_local_poll_ms ? n->next_heartbeat_ms
                                                                    : n->next_local_poll_ms;
        for (size_t i = 0; i < n->npeers; i++) {
            s_peer *p = n->peers[i];
            if ((p->state == PS_CONNECTING || p->state == PS_GONE) && p->next_hello_ms < next)
                next = p->next_hello_ms;
        }
        if (n->ninbound && n->retry_at_ms < next)
            next = n->retry_at_ms; /* batches wait to be stored again */
        long timeout = (long)(next - s_now_ms());
        if (timeout < 0)
            timeout = 0;
        if (timeout > 1000)
            timeout = 1000;
        zmq_pollitem_t items[3] = {{n->inbox, 0, ZMQ_POLLIN, 0},
                                   {n->control, 0, ZMQ_POLLIN, 0},
                                   {n->zap, 0, ZMQ_POLLIN, 0}};
        int nitems = n->zap ? 3 : 2;
        if (zmq_poll(items, nitems, timeout) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return s_zmq_error(err, "polling");
        }
        if (n->zap && (items[2].revents & ZMQ_POLLIN))
            s_handle_zap(n);
        if (items[0].revents & ZMQ_POLLIN)
            s_handle_inbox(n);
        if (items[1].revents & ZMQ_POLLIN)
            s_handle_control(n);
        if (n->ninbound && s_now_ms() >= n->retry_at_ms)
            s_store_inbound(n);
    }
    buf_t bye = BUF_INIT;
    wire_encode_empty(&bye, WIRE_BYE);
    for (size_t i = 0; i < n->npeers; i++)
        if (n->peers[i]->state == PS_CONNECTED)
            s_send(n->peers[i], &bye);
    buf_free(&bye);
    log_event(LOG_INFO, "stopped", n->short_id, "stopped cleanly");
    return STM_OK;
}

void node_destroy(node_t **self_p)
{
    node_t *n = *self_p;
    if (!n)
        return;
    for (size_t i = 0; i < n->npeers; i++)
        s_free_peer(n->peers[i]);
    free(n->peers);
    if (n->inbox)
        zmq_close(n->inbox);
    if (n->control)
        zmq_close(n->control);
    if (n->zap)
        zmq_close(n->zap);
    if (n->ctx)
        zmq_ctx_term(n->ctx);
    if (n->control_endpoint && strncmp(n->control_endpoint, "ipc://", 6) == 0)
        unlink(n->control_endpoint + 6);
    /* Batches never stored were never acknowledged: their senders send them again. */
    s_inbound_clear(n);
    free(n->inbound);
    applier_destroy(&n->applier);
    store_destroy(&n->store);
    lineage_destroy(&n->lineage);
    if (n->secret)
        sodium_free(n->secret);
    free(n->trusted);
    free(n->dir);
    free(n->db_path);
    free(n->schemas_dir);
    free(n->control_endpoint);
    free(n);
    *self_p = NULL;
}
