/* control.c - the control socket, its requests, and the report each is answered from
 * (control.h). */
#include "control.h"
#include "peer.h"
#include "zsock.h"
#include "base/log.h"
#include "base/mem.h"
#include "sync/identity.h"
#include "sync/oplog.h"
#include "sync/park.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

struct control {
    char *endpoint; /* as configured */
    void *sock;     /* REP */
    bool made_file; /* an ipc socket file was bound: the one dev and ino name */
    dev_t dev;      /* the socket file this node made, so that it removes that one only */
    ino_t ino;
};

static bool s_is_ipc(const char *endpoint)
{
    return strncmp(endpoint, "ipc://", 6) == 0;
}

/* What is at an ipc control path, found without ZeroMQ (which would unlink a file in
 * the way when binding, and retry a refused connection silently when asking). */
typedef enum {
    IPC_ABSENT,     /* nothing there */
    IPC_LIVE,       /* a socket that takes connections: a node answers there */
    IPC_STALE,      /* a socket nobody listens on: left by a process that died */
    IPC_NOT_SOCKET, /* something else, not ours to remove */
    IPC_UNKNOWN,    /* could not tell (a path too long for a Unix socket, say): ZeroMQ says */
} ipc_state;

static ipc_state s_ipc_probe(const char *path, int *why)
{
    *why = 0;
    struct stat st;
    if (lstat(path, &st) != 0) {
        *why = errno;
        return errno == ENOENT ? IPC_ABSENT : IPC_UNKNOWN;
    }
    if (!S_ISSOCK(st.st_mode))
        return IPC_NOT_SOCKET;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return IPC_UNKNOWN;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *why = errno;
        return IPC_UNKNOWN;
    }
    int rc;
    while ((rc = connect(fd, (struct sockaddr *)&addr, sizeof addr)) != 0 && errno == EINTR)
        ;
    *why = rc == 0 ? 0 : errno;
    close(fd);
    if (rc == 0)
        return IPC_LIVE;
    return *why == ECONNREFUSED ? IPC_STALE : *why == ENOENT ? IPC_ABSENT : IPC_UNKNOWN;
}

/* Before binding path: a stale socket file is removed (NODE_DIR's lock says no other
 * node runs there: dirlock.h); a live one, or a file that is not a socket, is refused,
 * left as it is (a control path that two node directories share, say). */
static stm_err s_ipc_clear(const char *path, stm_error *err)
{
    int why;
    switch (s_ipc_probe(path, &why)) {
    case IPC_LIVE:
        return stm_error_set(err, STM_EINPUT,
                             "the control socket %s answers already: another node uses it "
                             "(do two node directories name one control endpoint?)",
                             path);
    case IPC_NOT_SOCKET:
        return stm_error_set(err, STM_EINPUT,
                             "the control endpoint %s is a file that is not a socket: "
                             "not removed (move it, or choose another control endpoint)",
                             path);
    case IPC_STALE:
        if (unlink(path) == 0)
            stm_log_event(STM_LOG_INFO, "control", NULL,
                          "removed %s, left by a node that did not stop cleanly", path);
        return STM_OK;
    case IPC_ABSENT:
    case IPC_UNKNOWN:
        break;
    }
    return STM_OK;
}

/* The control socket answers anyone who reaches it: never let the mesh reach it. */
static bool s_is_local(const char *endpoint)
{
    return s_is_ipc(endpoint) || strncmp(endpoint, "tcp://127.0.0.1:", 16) == 0 ||
           strncmp(endpoint, "tcp://localhost:", 16) == 0 ||
           strncmp(endpoint, "tcp://[::1]:", 12) == 0;
}

stm_err stm_control_new(void *ctx, const char *endpoint, control_t **out, stm_error *err)
{
    if (!s_is_local(endpoint))
        return stm_error_set(err, STM_EINPUT,
                             "the control endpoint %s must be ipc:// or loopback TCP "
                             "(tcp://127.0.0.1:PORT): it has no authentication",
                             endpoint);
    control_t *c = stm_calloc(1, sizeof *c);
    c->endpoint = stm_strdup(endpoint);
    const char *name = "the control socket";
    stm_err rc = stm_zsock_new(ctx, ZMQ_REP, name, &c->sock, err);
    if (rc == STM_OK)
        rc = stm_zsock_set_int64(c->sock, ZMQ_MAXMSGSIZE, 4096, name, err);
    if (rc == STM_OK && s_is_ipc(endpoint))
        rc = s_ipc_clear(endpoint + 6, err);
    if (rc == STM_OK) {
        /* The socket file is made 0600 from the start (the bind happens in this thread),
         * not only by the chmod after it: no moment when another user may connect. */
        mode_t umask_was = umask(0177);
        int bound = zmq_bind(c->sock, endpoint);
        umask(umask_was);
        if (bound != 0)
            rc = stm_error_set(err, STM_EINPUT, "cannot bind the control endpoint %s: %s", endpoint,
                               zmq_strerror(zmq_errno()));
    }
    struct stat st;
    if (rc == STM_OK && s_is_ipc(endpoint) && stat(endpoint + 6, &st) == 0) {
        c->made_file = true;
        c->dev = st.st_dev;
        c->ino = st.st_ino;
    }
    if (rc == STM_OK && s_is_ipc(endpoint) && chmod(endpoint + 6, 0600) != 0)
        stm_log_event(STM_LOG_WARN, "control", NULL,
                      "%s: cannot make it mode 0600 (it is made so "
                      "at creation already)",
                      endpoint + 6);
    if (rc != STM_OK) {
        stm_zsock_close(&c->sock);
        free(c->endpoint);
        free(c);
        return rc;
    }
    *out = c;
    return STM_OK;
}

void stm_control_destroy(control_t **self_p)
{
    control_t *c = *self_p;
    if (!c)
        return;
    stm_zsock_close(&c->sock);
    /* Only the file this node bound: were another in its place (a node of another
     * directory that shares the path), it is that node's. */
    struct stat st;
    if (c->made_file && stat(c->endpoint + 6, &st) == 0 && st.st_dev == c->dev &&
        st.st_ino == c->ino)
        unlink(c->endpoint + 6);
    free(c->endpoint);
    free(c);
    *self_p = NULL;
}

void *stm_control_socket(control_t *c)
{
    return c->sock;
}

const char *stm_control_endpoint(const control_t *c)
{
    return c->endpoint;
}

void stm_control_drop(control_drops *d, report_drop why)
{
    d->by_kind[why]++;
    if (why == REPORT_DROP_IMPOSTOR || why == REPORT_DROP_UNKNOWN || why == REPORT_DROP_UNTRUSTED)
        d->unknown_senders++;
    else if (why != REPORT_DROP_PARTS) /* parts out of order are not damaged */
        d->malformed++;
}

/* Fills r for one answer: strings, lineages and verdicts are lent by the node's parts
 * until they change; r->peers and r->parked_reasons are s_report_free's. */
static void s_report_fill(const control_view *v, report_node *r)
{
    store_t *store = stm_local_store(v->local);
    stm_error err = {0};
    memset(r, 0, sizeof *r);
    r->id = *v->id;
    r->lineage = stm_local_lineage(v->local);
    r->version = stm_local_version(v->local);
    r->endpoint = v->endpoint;
    r->name = v->name;
    r->secure = v->secure;
    /* A report goes out even when the database cannot be read (locked past its busy
     * timeout, say): its counts are then zero, and the log says why. */
    /* Counters kept as the data changes (sync/store.h): one row, whatever the oplog's
     * size. */
    store_counts counts;
    if (stm_store_counts(store, &counts, &err) == STM_OK) {
        r->operations = counts.operations;
        r->parked = counts.parked;
        r->withheld = counts.withheld;
        r->conflicts = counts.conflicts;
        r->pruned = counts.pruned;
        r->compact_passes = counts.compact_passes;
    } else {
        stm_log_event(STM_LOG_WARN, "database", NULL, "counting operations for a report: %s",
                      err.msg);
    }
    if (v->compactor) {
        compactor_figures cf;
        stm_compactor_figures(v->compactor, &cf);
        r->compaction = (report_compaction){.enabled = cf.enabled,
                                            .running = cf.running,
                                            .has_last = cf.last_ms >= 0,
                                            .last_pruned = cf.last_pruned,
                                            .last_waiting = cf.last_waiting,
                                            .last_rows = cf.last_rows,
                                            .last_ms = cf.last_ms,
                                            .last_slice_ms = cf.last_slice_ms,
                                            .known_peers = cf.known_peers};
    }
    r->malformed = v->drops->malformed;
    r->unknown_senders = v->drops->unknown_senders;
    memcpy(r->dropped, v->drops->by_kind, sizeof r->dropped);
    r->apply_busy = stm_inbound_busy_failures(v->inbound);
    r->apply_io = stm_inbound_io_failures(v->inbound);
    r->batches_waiting = stm_inbound_count(v->inbound);
    r->batches_deferred = stm_inbound_deferred(v->inbound);
    r->refused_keys = stm_zap_refused_keys(v->zap);
    if (v->beacon) {
        const beacon_counts *bc = stm_beacon_counts(v->beacon);
        r->discovery_port = stm_beacon_port(v->beacon);
        r->beacons_sending = stm_beacon_sending(v->beacon);
        r->beacons_sent = bc->sent;
        r->beacons_heard = bc->heard;
        r->beacons_untrusted = bc->untrusted;
        r->beacons_other_mode = bc->other_mode;
        r->peers_discovered = bc->met;
    }
    park_reason *reasons = NULL;
    size_t nreasons = 0;
    if (stm_park_reasons(store, 20, &reasons, &nreasons, &err) == STM_OK) {
        r->parked_reasons = reasons;
        r->nparked_reasons = nreasons;
    }
    /* The vector the node keeps (sync/feed.h): a report reads no row per origin. */
    const vtrack_t *mine = stm_feed_vector(stm_local_feed(v->local));
    r->origins = stm_vtrack_count(mine);
    size_t count = stm_mesh_count(v->mesh);
    report_peer *peers = stm_calloc(count + 1, sizeof *peers);
    for (size_t i = 0; i < count; i++) {
        peer_t *p = stm_mesh_at(v->mesh, i);
        stm_peer_report(p, &peers[i], mine);
        peers[i].role = stm_mesh_role_name(stm_mesh_role_at(v->mesh, i));
        r->bytes_sent += stm_peer_bytes_sent(p);
        r->bytes_hello += stm_peer_bytes_of(p, WIRE_HELLO);
        r->bytes_ack += stm_peer_bytes_of(p, WIRE_ACK);
        r->bytes_vector += stm_peer_bytes_of(p, WIRE_VECTOR);
        r->vector_cut += stm_session_vectors_cut(stm_peer_session(p));
    }
    r->peers = peers;
    r->npeers = count;
}

static void s_report_free(report_node *r)
{
    free((void *)r->peers);
    park_reason *reasons = (park_reason *)r->parked_reasons;
    stm_park_reasons_free(&reasons, r->nparked_reasons);
}

char *stm_control_answer(const control_view *view, const char *request)
{
    static const struct {
        const char *request;
        char *(*render)(const report_node *r);
    } requests[] = {{"report text", stm_report_text}, {"report json", stm_report_json},
                    {"report toml", stm_report_toml}, {"report dot", stm_report_dot},
                    {"peers", stm_report_peers_text}, {"stats", stm_report_stats_text}};
    char *reply = NULL;
    for (size_t i = 0; i < sizeof requests / sizeof requests[0] && !reply; i++) {
        if (strcmp(request, requests[i].request) != 0)
            continue;
        report_node r;
        s_report_fill(view, &r);
        reply = requests[i].render(&r);
        s_report_free(&r);
    }
    if (!reply && view->change)
        reply = view->change(view->change_ctx, request);
    if (!reply)
        reply = stm_strdup(
            "error: unknown request (report text|json|toml|dot, peers, stats, compact, "
            "trust add|remove KEY, trust list, peer add KEY@ENDPOINT, peer remove KEY)\n");
    return reply;
}

void stm_control_handle(control_t *c, const control_view *view)
{
    char req[CONTROL_MAX_REQUEST + 1];
    int len = zmq_recv(c->sock, req, sizeof req - 1, ZMQ_DONTWAIT);
    if (len < 0)
        return;
    if (len > (int)sizeof req - 1)
        len = (int)sizeof req - 1;
    req[len] = '\0';
    /* Further frames are read and dropped: a REP answers a whole request. */
    int more = 0;
    size_t more_size = sizeof more;
    while (zmq_getsockopt(c->sock, ZMQ_RCVMORE, &more, &more_size) == 0 && more)
        if (zmq_recv(c->sock, req + len, 0, 0) < 0)
            break;
    char *reply = stm_control_answer(view, req);
    size_t reply_len = strlen(reply);
    if (zmq_send(c->sock, reply, reply_len, 0) != (int)reply_len)
        stm_log_event(STM_LOG_WARN, "control", NULL, "answering a request: %s",
                      zmq_strerror(zmq_errno()));
    free(reply);
}

stm_err stm_control_ask(const char *endpoint, const char *name, const char *request, char **reply,
                        size_t *len, stm_error *err)
{
    *reply = NULL;
    *len = 0;
    if (!name)
        name = endpoint;
    /* No socket, or one nobody listens on: no node runs, and ZeroMQ would wait. */
    int why;
    ipc_state state = s_is_ipc(endpoint) ? s_ipc_probe(endpoint + 6, &why) : IPC_UNKNOWN;
    if (state == IPC_ABSENT)
        return stm_error_set(err, STM_ESYS, "no node is running on %s (no control socket)", name);
    if (state == IPC_STALE)
        return stm_error_set(err, STM_ESYS,
                             "no node is running on %s (its control socket %s was left by a "
                             "node that did not stop cleanly)",
                             name, endpoint + 6);
    if (state == IPC_NOT_SOCKET)
        return stm_error_set(err, STM_EUSAGE, "the control endpoint %s is not a socket", endpoint);
    void *ctx = zmq_ctx_new();
    if (!ctx)
        return stm_zsock_error(err, "creating the ZeroMQ context");
    void *req = NULL;
    stm_err rc = stm_zsock_new(ctx, ZMQ_REQ, "the control client", &req, err);
    if (rc == STM_OK)
        rc =
            stm_zsock_set_int(req, ZMQ_RCVTIMEO, CONTROL_ASK_TIMEOUT_MS, "the control client", err);
    if (rc == STM_OK)
        rc =
            stm_zsock_set_int(req, ZMQ_SNDTIMEO, CONTROL_ASK_TIMEOUT_MS, "the control client", err);
    if (rc == STM_OK && zmq_connect(req, endpoint) != 0)
        rc = stm_error_set(err, STM_EUSAGE, "cannot use the control endpoint %s: %s", endpoint,
                           zmq_strerror(zmq_errno()));
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (rc == STM_OK &&
        (zmq_send(req, request, strlen(request), 0) < 0 || zmq_msg_recv(&msg, req, 0) < 0))
        rc = stm_error_set(err, STM_ESYS, "no node answers on %s (is 'stemma node' running?)",
                           endpoint);
    if (rc == STM_OK) {
        *len = zmq_msg_size(&msg);
        *reply = stm_malloc(*len + 1);
        memcpy(*reply, zmq_msg_data(&msg), *len);
        (*reply)[*len] = '\0';
    }
    zmq_msg_close(&msg);
    stm_zsock_close(&req);
    while (zmq_ctx_term(ctx) != 0 && zmq_errno() == EINTR)
        ;
    return rc;
}
