/* bench_origins - what many origins cost a node (issue 14, item 3): a handshake, a sync
 * of 10,002 new operations, the bytes of HELLOs and ACKs, and the nodes' memory, at each
 * count of origins given, against the same with 10 origins in the same run.
 *
 *   bench_origins STEMMA WORKDIR [ORIGINS...]     default: 10 1000 10000 100000
 *
 * For each count N: a database holding one row change from each of N origins (every
 * device that ever wrote is one), made by build/make_origins in a few seconds rather
 * than by N processes, and a copy of it; two real `stemma node` processes (CURVE) on the two,
 * peers of each other, connected and idle before anything is timed. Then:
 *
 *  - handshake: this program plays a third peer, holding the same vector, with the
 *    session code a node runs (sync/session.h): a new CURVE DEALER to node a, a HELLO,
 *    and the time until it holds a's vector (a's HELLO, and the VECTOR parts after it
 *    when there are any). The first is a first contact (whole vectors both ways); the
 *    next ones are reconnections (deltas, digests), of which the p50 is shown;
 *  - sync: 3,334 rows (10,002 operations) written to a's database as an application
 *    writes them, timed until b's vector holds them all;
 *  - bytes: the HELLOs of the handshakes as measured here; the ACKs b sent during the
 *    sync (`stemma stats`: "bytes sent in hello .. ack ..", or all of b's bytes for a
 *    stemma without that line);
 *  - memory: each node's peak resident memory (VmHWM) at the end.
 *
 * STEMMA may be an older stemma: its nodes are measured the same way (the peer played
 * here then sends whole vectors, as it does to any peer without vdelta.v1). Not a test:
 * figures go to stdout, rows for scripts/bench too. */
#include "benchutil.h"
#include "base/buf.h"
#include "lineage/lineage.h"
#include "lineage/schemaset.h"
#include "node/wire.h"
#include "sync/apply.h"
#include "sync/session.h"
#include "sync/vtrack.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define SYNC_ROWS 3334 /* 10,002 operations: three columns a row */
#define RECONNECTS 20

static const char *s_stemma;
static const char *s_self; /* argv[0]: make_origins is beside it */

static void s_check(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK)
        bench_die(err->msg);
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A database at the tasks schema's head holding one row change from each of n origins
 * (build/make_origins, beside this program). */
static void s_build(const char *db, int n)
{
    bench_stemma(s_stemma, NULL, "migrate", "--db", db, "--schemas", "schemas/tasks", "--no-backup",
                 (char *)NULL);
    char tool[4200], count[32];
    snprintf(tool, sizeof tool, "%s", s_self);
    char *slash = strrchr(tool, '/');
    snprintf(slash ? slash + 1 : tool, sizeof tool - (size_t)(slash ? slash + 1 - tool : 0),
             "make_origins");
    snprintf(count, sizeof count, "%d", n);
    char *argv[] = {tool, (char *)db, count, NULL};
    if (bench_run(argv, NULL) != 0)
        bench_die("make_origins failed");
}

static void s_copy(const char *from, const char *to)
{
    char *argv[] = {"/bin/cp", (char *)from, (char *)to, NULL};
    if (bench_run(argv, NULL) != 0)
        bench_die("cp");
}

/* node.toml's local_poll_ms set to 20: the sync is timed, not the wait to notice it. */
static void s_poll_fast(const char *dir)
{
    bench_set_toml(dir, "local_poll_ms", "20");
}

/* `stemma stats --dir dir`: the count after key (in the line starting with line, or in
 * any: NULL), or -1 when it is not there (or the node does not answer yet). */
static long long s_stat_in(const char *dir, const char *line, const char *key)
{
    char sock[700];
    struct stat st;
    snprintf(sock, sizeof sock, "%s/control.sock", dir);
    if (stat(sock, &st) != 0)
        return -1;
    char *argv[] = {(char *)s_stemma, "stats", "--dir", (char *)dir, NULL};
    buf_t out = BUF_INIT;
    long long v = -1;
    if (bench_run(argv, &out) == 0) {
        const char *from = line ? strstr(stm_buf_str(&out), line) : stm_buf_str(&out);
        const char *end = from ? strchr(from, '\n') : NULL;
        const char *at = from ? strstr(from, key) : NULL;
        if (at && (!end || at < end || !line))
            v = strtoll(at + strlen(key), NULL, 10);
    }
    stm_buf_free(&out);
    return v;
}

static long long s_stat(const char *dir, const char *key)
{
    return s_stat_in(dir, NULL, key);
}

/* ---- the peer this program plays ---- */

typedef struct {
    void *ctx;
    char pub[41], sec[41];
    stm_id id;
    const char *node_endpoint;
    char node_pub[41];
    lineage_t *lineage;
    vtrack_t *mine;     /* the vector it holds: node a's own, read from its database */
    session_t *session; /* what it and node a hold of each other's */
    size_t hello_bytes; /* the last HELLO the node sent it */
    bool node_deltas;   /* the node lists vdelta.v1 */
} s_peer;

static void *s_dealer(s_peer *p)
{
    void *s = zmq_socket(p->ctx, ZMQ_DEALER);
    int zero = 0, timeout = 20000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, p->node_pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, p->pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, p->sec, 40);
    zmq_connect(s, p->node_endpoint);
    return s;
}

static void s_send(void *d, const buf_t *msg)
{
    if (zmq_send(d, msg->data, msg->len, 0) != (int)msg->len)
        bench_die("send");
}

/* Our vector's parts after the first, as VECTOR messages. */
static void s_send_parts(void *d, const vector_out *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf_t msg = BUF_INIT;
        stm_wire_encode_vector(&msg, &parts[i], false);
        s_send(d, &msg);
        stm_buf_free(&msg);
    }
}

static bool s_lists(const wire_hello *h, const char *cap)
{
    for (size_t i = 0; i < h->ncapabilities; i++)
        if (strcmp(h->capabilities[i], cap) == 0)
            return true;
    return false;
}

/* One handshake on a new connection, as a node meets a peer: our HELLO, then the node's,
 * and VECTOR messages until we hold its vector. Seconds taken. */
static double s_handshake(s_peer *p)
{
    double t0 = bench_now();
    void *d = s_dealer(p);
    const vector_out *parts;
    size_t nparts = stm_session_vector_out(p->session, p->mine, &parts);
    vector_digest know;
    bool knows = stm_session_knows_theirs(p->session, &know);
    wire_hello_out h = {.endpoint = "", .name = "bench", .lineage = p->lineage,
                        .vector = &parts[0], .know = knows ? &know : NULL, .deltas = true};
    buf_t msg = BUF_INIT;
    stm_wire_encode_hello(&msg, &p->id, &h);
    s_send(d, &msg);
    stm_buf_free(&msg);
    s_send_parts(d, parts + 1, nparts - 1);
    bool have_hello = false, done = false;
    while (!done) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, d, 0) < 0)
            bench_die("no answer from the node within 20 s");
        int version, type;
        stm_error err = {0};
        const void *data = zmq_msg_data(&m);
        size_t len = zmq_msg_size(&m);
        if (stm_wire_header(data, len, &version, &type, &err) != STM_OK)
            bench_die(err.msg);
        if (type == WIRE_HELLO) {
            wire_hello in;
            s_check(stm_wire_decode_hello(data, len, &in, &err), &err);
            p->hello_bytes = len;
            p->node_deltas = s_lists(&in, WIRE_CAP_VDELTA);
            stm_session_set_deltas(p->session, p->node_deltas);
            stm_session_take_vector(p->session, &in.vector);
            stm_session_told_knows(p->session, p->node_deltas && in.has_know ? &in.know : NULL);
            stm_session_on_hello(p->session);
            /* Its answer is not answered: when it does not hold ours, ours goes whole. */
            if (p->node_deltas && !stm_session_vector_synced(p->session)) {
                stm_session_vector_lost(p->session);
                nparts = stm_session_vector_out(p->session, p->mine, &parts);
                s_send_parts(d, parts, nparts);
            }
            stm_wire_hello_clear(&in);
            have_hello = true;
        } else if (type == WIRE_VECTOR) {
            vector_msg v;
            bool has, need;
            s_check(stm_wire_decode_vector(data, len, &v, &has, &need, &err), &err);
            if (has)
                stm_session_take_vector(p->session, &v);
            stm_vector_msg_clear(&v);
            if (need) {
                stm_session_vector_lost(p->session);
                nparts = stm_session_vector_out(p->session, p->mine, &parts);
                s_send_parts(d, parts, nparts);
            }
        }
        zmq_msg_close(&m);
        vector_digest ignored;
        done = have_hello && (!p->node_deltas || stm_session_knows_theirs(p->session, &ignored));
    }
    double took = bench_now() - t0;
    zmq_close(d);
    return took;
}

/* What a first contact cannot take less than, measured here in one process: each side's
 * whole vector encoded in parts, decoded, merged and its digest counted by the other, as
 * the node and its peer do (twice: both ways), without sockets. Seconds. */
static double s_first_contact_floor(const vtrack_t *mine)
{
    double t0 = bench_now();
    for (int way = 0; way < 2; way++) {
        session_t *from = stm_session_new(4, 2000), *to = stm_session_new(4, 2000);
        stm_session_set_deltas(from, true);
        stm_session_set_deltas(to, true);
        const vector_out *parts;
        size_t n = stm_session_vector_out(from, mine, &parts);
        for (size_t i = 0; i < n; i++) {
            vector_msg m = {0};
            m.delta = parts[i].delta;
            m.base = parts[i].base;
            m.has_digest = parts[i].has_digest;
            m.digest = parts[i].digest;
            m.more = parts[i].more;
            stm_error err = {0};
            s_check(stm_vector_decode_max(parts[i].entries.data, parts[i].entries.len,
                                          VECTOR_MAX_ENTRIES, &m.entries, &m.cut, &err),
                    &err);
            stm_session_take_vector(to, &m);
        }
        vector_digest d;
        if (!stm_session_knows_theirs(to, &d))
            bench_die("the floor's vector did not arrive whole");
        stm_session_destroy(&from);
        stm_session_destroy(&to);
    }
    return bench_now() - t0;
}

/* ---- one count of origins ---- */

typedef struct {
    int origins;
    double first_ms, reconnect_ms; /* handshakes: the first, and the p50 of the others */
    double floor_ms;                 /* a first contact's vectors moved in one process */
    size_t hello_first, hello_again; /* bytes of the node's HELLO then */
    double sync_s;                   /* 10,002 operations, until b holds them */
    long long ack_bytes;             /* b's ACKs during the sync (-1: not told) */
    long long b_bytes;               /* all b sent during the sync */
    long peak_a, peak_b;             /* KiB */
    bool deltas;                     /* the nodes list vdelta.v1 */
} s_result;

static void s_run(const char *work, int n, s_result *r)
{
    memset(r, 0, sizeof *r);
    r->origins = n;
    char dir[600], a_db[700], b_db[700], a_dir[700], b_dir[700], log_a[700], log_b[700];
    snprintf(dir, sizeof dir, "%s/o%d", work, n);
    mkdir(dir, 0700);
    snprintf(a_db, sizeof a_db, "%s/a.db", dir);
    snprintf(b_db, sizeof b_db, "%s/b.db", dir);
    snprintf(a_dir, sizeof a_dir, "%s/a", dir);
    snprintf(b_dir, sizeof b_dir, "%s/b", dir);
    snprintf(log_a, sizeof log_a, "%s/a.log", dir);
    snprintf(log_b, sizeof log_b, "%s/b.log", dir);
    double t0 = bench_now();
    s_build(a_db, n);
    s_copy(a_db, b_db); /* the copy takes an origin of its own at its first write */
    fprintf(stderr, "origins %d: databases made in %.1f s\n", n, bench_now() - t0);

    char bind_a[64], bind_b[64], peer[160];
    snprintf(bind_a, sizeof bind_a, "tcp://127.0.0.1:%d", bench_free_port());
    snprintf(bind_b, sizeof bind_b, "tcp://127.0.0.1:%d", bench_free_port());
    buf_t out = BUF_INIT;
    bench_stemma(s_stemma, &out, "init", "--dir", a_dir, "--db", a_db, "--schemas", "schemas/tasks",
                 "--bind", bind_a, "--trust-on-first-use", (char *)NULL);
    const char *key = strstr(stm_buf_str(&out), "public key: ");
    if (!key)
        bench_die("no key from stemma init");
    s_peer p = {.node_endpoint = bind_a};
    snprintf(p.node_pub, sizeof p.node_pub, "%.40s", key + 12);
    snprintf(peer, sizeof peer, "%.40s@%s", key + 12, bind_a);
    stm_buf_free(&out);
    bench_stemma(s_stemma, NULL, "init", "--dir", b_dir, "--db", b_db, "--schemas", "schemas/tasks",
                 "--bind", bind_b, "--peer", peer, "--trust-on-first-use", (char *)NULL);
    s_poll_fast(a_dir);
    s_poll_fast(b_dir);

    /* The peer played here holds what a holds. */
    store_t *sa = NULL;
    stm_error err = {0};
    s_check(stm_store_open(a_db, STORE_OPEN_READONLY, &sa, &err), &err);
    p.mine = stm_vtrack_new();
    s_check(stm_vtrack_load(p.mine, sa, NULL, NULL, &err), &err);
    stm_id a_origin;
    s_check(stm_store_node_id(sa, &a_origin, &err), &err);
    stm_store_destroy(&sa);

    pid_t pa = bench_start_node(s_stemma, a_dir, log_a), pb = bench_start_node(s_stemma, b_dir, log_b);
    /* Connected, and b's first walk of a's feed done: idle. */
    t0 = bench_now();
    while (s_stat(b_dir, "peers 1 (connected ") != 1 || s_stat(a_dir, "peers 1 (connected ") != 1) {
        if (bench_now() - t0 > 120)
            bench_die("the nodes did not connect within 2 minutes");
        usleep(20000);
    }
    usleep(300000);
    fprintf(stderr, "origins %d: connected, idle: RSS a %.1f MiB, b %.1f MiB\n", n,
            bench_rss_kib(pa) / 1024.0, bench_rss_kib(pb) / 1024.0);

    /* Handshakes, as a third peer. */
    p.ctx = zmq_ctx_new();
    zmq_curve_keypair(p.pub, p.sec);
    zmq_z85_decode(p.id.bytes, p.pub);
    schemaset_t *set = NULL;
    s_check(stm_schemaset_load("schemas/tasks", &set, &err), &err);
    s_check(stm_lineage_build(set, &p.lineage, &err), &err);
    p.session = stm_session_new(4, 2000);
    r->floor_ms = s_first_contact_floor(p.mine) * 1e3;
    r->first_ms = s_handshake(&p) * 1e3;
    r->hello_first = p.hello_bytes;
    r->deltas = p.node_deltas;
    fprintf(stderr, "origins %d: after a first contact: RSS a %.1f MiB (peak %.1f)\n", n,
            bench_rss_kib(pa) / 1024.0, bench_peak_kib(pa) / 1024.0);
    double again[RECONNECTS];
    for (int i = 0; i < RECONNECTS; i++)
        again[i] = s_handshake(&p) * 1e3;
    qsort(again, RECONNECTS, sizeof again[0], s_cmp);
    r->reconnect_ms = again[RECONNECTS / 2];
    r->hello_again = p.hello_bytes;

    fprintf(stderr, "origins %d: after %d reconnections: RSS a %.1f MiB (peak %.1f)\n", n,
            RECONNECTS, bench_rss_kib(pa) / 1024.0, bench_peak_kib(pa) / 1024.0);

    /* 10,002 new operations on a, until b holds them. */
    long long before_ack = s_stat_in(b_dir, "bytes sent in hello", " ack "),
              before_b = s_stat(b_dir, "bytes sent ");
    sqlite3 *h = NULL;
    sqlite3_open(a_db, &h);
    sqlite3_busy_timeout(h, 10000);
    char sql[300];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %d) "
             "INSERT INTO lists (id, name) SELECT 'new' || i, 'new list ' || i FROM k",
             SYNC_ROWS);
    /* a's node collects them under its origin (its database's; kept, as it is no copy). */
    char want_sql[200], hex[65];
    stm_id_to_hex(&a_origin, hex);
    snprintf(want_sql, sizeof want_sql,
             "SELECT coalesce((SELECT seq FROM stemma_vector WHERE origin = x'%s'), 0)", hex);
    long long had = bench_count(b_db, want_sql);
    t0 = bench_now();
    if (sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK)
        bench_die(sqlite3_errmsg(h));
    sqlite3_close(h);
    long long want = had + 3LL * SYNC_ROWS, got = had;
    while (got < want && bench_now() - t0 < 300) {
        double pause = (bench_now() - t0) / 50;
        usleep((useconds_t)(1e6 * (pause < 0.002 ? 0.002 : pause > 0.1 ? 0.1 : pause)));
        got = bench_count(b_db, want_sql);
    }
    r->sync_s = bench_now() - t0;
    if (got < want)
        bench_die("b did not get the 10,002 operations within 5 minutes");
    usleep(200000); /* the last ACKs leave */
    long long after_ack = s_stat_in(b_dir, "bytes sent in hello", " ack "),
              after_b = s_stat(b_dir, "bytes sent ");
    r->ack_bytes = before_ack >= 0 && after_ack >= 0 ? after_ack - before_ack : -1;
    r->b_bytes = after_b - before_b;
    r->peak_a = bench_peak_kib(pa);
    r->peak_b = bench_peak_kib(pb);
    kill(pa, SIGTERM);
    kill(pb, SIGTERM);
    waitpid(pa, NULL, 0);
    waitpid(pb, NULL, 0);
    stm_session_destroy(&p.session);
    stm_vtrack_destroy(&p.mine);
    stm_lineage_destroy(&p.lineage);
    stm_schemaset_destroy(&set);
    zmq_ctx_term(p.ctx);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        bench_die("usage: bench_origins STEMMA WORKDIR [ORIGINS...]");
    s_stemma = argv[1];
    s_self = argv[0];
    const char *work = argv[2];
    mkdir(work, 0700);
    int counts[16] = {10, 1000, 10000, 100000}, ncounts = 4;
    if (argc > 3) {
        ncounts = 0;
        for (int i = 3; i < argc && ncounts < 16; i++)
            counts[ncounts++] = atoi(argv[i]);
    }
    /* The baseline first: 10 origins, in the same run. */
    s_result base;
    s_run(work, 10, &base);
    printf("stemma origins benchmark: handshake, sync of %d operations, bytes, memory\n\n",
           3 * SYNC_ROWS);
    printf("%-9s %13s %11s %13s %11s %11s %9s %12s %12s %8s %8s\n", "origins", "hs first ms",
           "floor ms", "hs again ms", "HELLO B 1st", "HELLO B", "sync s", "ACK B/batch",
           "b sent B", "RSS a", "RSS b");
    for (int i = 0; i < ncounts; i++) {
        s_result r;
        if (counts[i] == 10)
            r = base;
        else
            s_run(work, counts[i], &r);
        long long batches = (3 * SYNC_ROWS + 1999) / 2000;
        printf("%-9d %13.2f %11.2f %13.2f %11zu %11zu %9.3f %12lld %12lld %6.1fMi %6.1fMi\n",
               r.origins, r.first_ms, r.floor_ms, r.reconnect_ms, r.hello_first, r.hello_again,
               r.sync_s,
               r.ack_bytes >= 0 ? r.ack_bytes / batches : -1, r.b_bytes, r.peak_a / 1024.0,
               r.peak_b / 1024.0);
        char fig[128], o[64], b[64], ratio[32];
        snprintf(fig, sizeof fig, "origins %d: handshake, first contact / again p50", r.origins);
        snprintf(o, sizeof o, "%.1f / %.2f ms", r.first_ms, r.reconnect_ms);
        snprintf(b, sizeof b, "%.1f / %.2f ms (10)", base.first_ms, base.reconnect_ms);
        snprintf(ratio, sizeof ratio, "%.2f", r.reconnect_ms / base.reconnect_ms);
        bench_row(fig, o, b, ratio, "<= 100 ms");
        snprintf(fig, sizeof fig, "origins %d: first contact / its vectors moved in-process",
                 r.origins);
        snprintf(o, sizeof o, "%.1f ms", r.first_ms);
        snprintf(b, sizeof b, "%.1f ms", r.floor_ms);
        snprintf(ratio, sizeof ratio, "%.2f", r.first_ms / r.floor_ms);
        bench_row(fig, o, b, ratio, "reported");
        snprintf(fig, sizeof fig, "origins %d: sync 10,002 new ops / with 10 origins", r.origins);
        snprintf(o, sizeof o, "%.3f s", r.sync_s);
        snprintf(b, sizeof b, "%.3f s", base.sync_s);
        snprintf(ratio, sizeof ratio, "%.2f", r.sync_s / base.sync_s);
        bench_row(fig, o, b, ratio, "<= 2");
        snprintf(fig, sizeof fig, "origins %d: HELLO bytes first / again; ACK bytes a batch",
                 r.origins);
        snprintf(o, sizeof o, "%zu / %zu; %lld", r.hello_first, r.hello_again,
                 r.ack_bytes >= 0 ? r.ack_bytes / batches : r.b_bytes / batches);
        snprintf(b, sizeof b, "%zu / %zu; %lld", base.hello_first, base.hello_again,
                 base.ack_bytes >= 0 ? base.ack_bytes / batches : base.b_bytes / batches);
        bench_row(fig, o, b, "", "reported");
        snprintf(fig, sizeof fig, "origins %d: peak RSS a / b", r.origins);
        snprintf(o, sizeof o, "%.1f / %.1f MiB", r.peak_a / 1024.0, r.peak_b / 1024.0);
        snprintf(b, sizeof b, "%.1f / %.1f MiB", base.peak_a / 1024.0, base.peak_b / 1024.0);
        bench_row(fig, o, b, "", "<= 64 MiB");
    }
    return 0;
}
