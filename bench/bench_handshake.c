/* bench_handshake - how long a handshake with a node takes: connect, HELLO both ways,
 * the peer judged; p50 and p99 over 1,000. Against a bare ZeroMQ round trip on the
 * same kind of sockets (a new CURVE DEALER connecting to a CURVE ROUTER, one message
 * there and back), and the same with a ZAP handler admitting every key (as the node's
 * inbox asks about every connection), measured in the same run.
 *
 *   bench_handshake STEMMA WORKDIR [COUNT]
 *
 * A real `stemma node` (tasks v4, trust on first use) runs as a process. This program
 * plays a peer: for each handshake it opens a new DEALER to the node's inbox, sends
 * a HELLO carrying a real lineage (tasks v4), and waits on its own inbox for the
 * node's answering HELLO, which the node sends after judging it. The node keeps its
 * connection back to us between handshakes (it is the same peer each time), so from
 * the second handshake on, one side connects. Not a test: figures go to stdout. */
#include "benchutil.h"
#include "base/buf.h"
#include "lineage/lineage.h"
#include "node/wire.h"
#include "sync/vector.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static const char *s_stemma;

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A CURVE client DEALER to endpoint. */
static void *s_dealer(void *ctx, const char *endpoint, const char *server_pub, const char *pub,
                      const char *sec)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
    zmq_connect(s, endpoint);
    return s;
}

/* A CURVE server ROUTER bound on a free port; its endpoint in endpoint. */
static void *s_router(void *ctx, const char *sec, char *endpoint, size_t size)
{
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0)
        bench_die("bind");
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &size);
    return s;
}

typedef struct {
    void *ctx;
    char sec[41];
    char endpoint[128];
    volatile int ready, stop;
} s_echo;

/* count round trips, each on a new CURVE DEALER to endpoint: one message there and
 * back; the times in out. */
static void s_round_trips(void *ctx, const char *endpoint, const char *server_pub,
                          const char *pub, const char *sec, int count, double *out)
{
    int timeout = 5000;
    for (int i = 0; i < count; i++) {
        double t0 = bench_now();
        void *d = s_dealer(ctx, endpoint, server_pub, pub, sec);
        zmq_send(d, "ping", 4, 0);
        char back[8];
        zmq_setsockopt(d, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        if (zmq_recv(d, back, sizeof back, 0) < 0)
            bench_die("no echo");
        out[i] = bench_now() - t0;
        zmq_close(d);
    }
}

/* A ZAP handler (RFC 27) admitting every key, on its own thread: what the node's own
 * handler does for a trusted key, without its loop. */
static void *s_zap_main(void *arg)
{
    s_echo *e = arg;
    void *rep = zmq_socket(e->ctx, ZMQ_REP);
    int timeout = 100, zero = 0;
    zmq_setsockopt(rep, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(rep, "inproc://zeromq.zap.01") != 0)
        bench_die("zap bind");
    while (!e->stop) {
        char frames[7][64];
        int n = 0, more = 1;
        size_t len = sizeof more;
        while (more && n < 7) {
            int got = zmq_recv(rep, frames[n], sizeof frames[n] - 1, 0);
            if (got < 0)
                break;
            frames[n][got < 63 ? got : 63] = '\0';
            n++;
            zmq_getsockopt(rep, ZMQ_RCVMORE, &more, &len);
        }
        if (n < 2)
            continue;
        zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(rep, frames[1], strlen(frames[1]), ZMQ_SNDMORE);
        zmq_send(rep, "200", 3, ZMQ_SNDMORE);
        zmq_send(rep, "OK", 2, ZMQ_SNDMORE);
        zmq_send(rep, "peer", 4, ZMQ_SNDMORE);
        zmq_send(rep, "", 0, 0);
    }
    zmq_close(rep);
    return NULL;
}

/* The baseline's other end: echoes every message back, on its own thread. */
static void *s_echo_main(void *arg)
{
    s_echo *e = arg;
    void *r = s_router(e->ctx, e->sec, e->endpoint, sizeof e->endpoint);
    int timeout = 100;
    zmq_setsockopt(r, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    e->ready = 1;
    while (!e->stop) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, r, 0) >= 0 && zmq_msg_recv(&body, r, 0) >= 0) {
            zmq_msg_send(&id, r, ZMQ_SNDMORE);
            zmq_msg_send(&body, r, 0);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
    zmq_close(r);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        bench_die("usage: bench_handshake STEMMA WORKDIR [COUNT]");
    s_stemma = argv[1];
    const char *work = argv[2];
    int count = argc > 3 ? atoi(argv[3]) : 1000;
    mkdir(work, 0700);
    char db[600], dir[600], log[600], bind[64];
    snprintf(db, sizeof db, "%s/n.db", work);
    snprintf(dir, sizeof dir, "%s/n", work);
    snprintf(log, sizeof log, "%s/n.log", work);
    snprintf(bind, sizeof bind, "tcp://127.0.0.1:%d", bench_free_port());
    bench_stemma(s_stemma, NULL, "migrate", "--db", db, "--schemas", "schemas/tasks", "--no-backup", (char *)NULL);
    buf_t out = BUF_INIT;
    bench_stemma(s_stemma, &out, "init", "--dir", dir, "--db", db, "--schemas", "schemas/tasks", "--bind", bind,
          "--trust-on-first-use", (char *)NULL);
    const char *k = strstr(stm_buf_str(&out), "public key: ");
    if (!k)
        bench_die("no key from stemma init");
    char node_pub[41];
    snprintf(node_pub, sizeof node_pub, "%.40s", k + 12);
    stm_buf_free(&out);
    pid_t pid = bench_start_node(s_stemma, dir, log);
    usleep(300000);

    /* This program as a peer: a key pair, an inbox, a HELLO with a real lineage. */
    void *ctx = zmq_ctx_new();
    char pub[41], sec[41];
    zmq_curve_keypair(pub, sec);
    char inbox_ep[128];
    void *inbox = s_router(ctx, sec, inbox_ep, sizeof inbox_ep);
    schemaset_t *set = NULL;
    lineage_t *lineage = NULL;
    stm_error err = {0};
    if (stm_schemaset_load("schemas/tasks", &set, &err) || stm_lineage_build(set, &lineage, &err))
        bench_die(err.msg);
    stm_id id;
    zmq_z85_decode(id.bytes, pub);
    vector_out v = {.entries = BUF_INIT, .has_digest = true}; /* empty, digest 0 */
    stm_buf_putc(&v.entries, (char)0x90); /* an empty MessagePack array */
    buf_t hello = BUF_INIT;
    wire_hello_out ho = {.endpoint = inbox_ep, .name = "bench", .lineage = lineage, .vector = &v};
    stm_wire_encode_hello(&hello, &id, &ho);
    double *hs = calloc((size_t)count, sizeof *hs), *rt = calloc((size_t)count, sizeof *rt);
    int timeout = 5000;
    zmq_setsockopt(inbox, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    for (int i = 0; i < count; i++) {
        double t0 = bench_now();
        void *d = s_dealer(ctx, bind, node_pub, pub, sec);
        zmq_setsockopt(d, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        zmq_send(d, hello.data, hello.len, 0);
        /* Wait for the node's HELLO (it may send a PING first: skip those). Our HELLO
         * lists route.v1, so the node answers on this connection (docs/protocol.md). */
        for (;;) {
            zmq_msg_t body;
            zmq_msg_init(&body);
            if (zmq_msg_recv(&body, d, 0) < 0)
                bench_die("no HELLO from the node within 5 s");
            int version, type;
            bool is_hello = stm_wire_header(zmq_msg_data(&body), zmq_msg_size(&body), &version,
                                            &type, &err) == STM_OK &&
                            type == WIRE_HELLO;
            zmq_msg_close(&body);
            if (is_hello)
                break;
        }
        hs[i] = bench_now() - t0;
        zmq_close(d);
    }

    /* The baseline: a new CURVE DEALER, one message to an echoing ROUTER and back. */
    s_echo echo = {.ctx = ctx};
    char echo_pub[41];
    zmq_curve_keypair(echo_pub, echo.sec);
    pthread_t thread;
    pthread_create(&thread, NULL, s_echo_main, &echo);
    while (!echo.ready)
        usleep(1000);
    s_round_trips(ctx, echo.endpoint, echo_pub, pub, sec, count, rt);
    echo.stop = 1;
    pthread_join(thread, NULL);

    /* The same with a ZAP handler asked about every connecting key, as the node's is:
     * the echo in a context of its own, whose handler answers on another thread. */
    double *rz = calloc((size_t)count, sizeof *rz);
    s_echo zecho = {.ctx = zmq_ctx_new()};
    char zecho_pub[41];
    zmq_curve_keypair(zecho_pub, zecho.sec);
    pthread_t zap_thread, zecho_thread;
    pthread_create(&zap_thread, NULL, s_zap_main, &zecho);
    usleep(50000);
    pthread_create(&zecho_thread, NULL, s_echo_main, &zecho);
    while (!zecho.ready)
        usleep(1000);
    s_round_trips(ctx, zecho.endpoint, zecho_pub, pub, sec, count, rz);
    zecho.stop = 1;
    pthread_join(zecho_thread, NULL);
    pthread_join(zap_thread, NULL);
    zmq_ctx_term(zecho.ctx);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    qsort(rz, (size_t)count, sizeof *rz, s_cmp);

    qsort(hs, (size_t)count, sizeof *hs, s_cmp);
    qsort(rt, (size_t)count, sizeof *rt, s_cmp);
    printf("stemma handshake benchmark: %d handshakes with a running node, CURVE on\n\n", count);
    printf("%-48s %10s %10s\n", "figure", "p50 ms", "p99 ms");
    printf("%-48s %10.3f %10.3f   (target p50 <= 2 ms)\n",
           "connect, HELLO both ways, judged (stemma)", hs[count / 2] * 1e3,
           hs[count * 99 / 100] * 1e3);
    printf("%-48s %10.3f %10.3f\n", "new CURVE DEALER, one round trip (ZeroMQ)",
           rt[count / 2] * 1e3, rt[count * 99 / 100] * 1e3);
    printf("%-48s %10.3f %10.3f\n", "the same with a ZAP handler (ZeroMQ)", rz[count / 2] * 1e3,
           rz[count * 99 / 100] * 1e3);
    printf("%-48s %10.2f\n", "ratio of p50s (stemma / ZeroMQ)", hs[count / 2] / rt[count / 2]);
    char fig[96], o[48], b[48], r[32];
    snprintf(fig, sizeof fig, "handshake p50 (p99), %d with CURVE / bare ZeroMQ round trip", count);
    snprintf(o, sizeof o, "%.2f (%.2f) ms", hs[count / 2] * 1e3, hs[count * 99 / 100] * 1e3);
    snprintf(b, sizeof b, "%.2f (%.2f) ms", rt[count / 2] * 1e3, rt[count * 99 / 100] * 1e3);
    snprintf(r, sizeof r, "%.2f", hs[count / 2] / rt[count / 2]);
    bench_row(fig, o, b, r, "p50 <= 2 ms");
    snprintf(fig, sizeof fig, "... bare round trip with a ZAP handler / without");
    snprintf(o, sizeof o, "%.2f (%.2f) ms", rz[count / 2] * 1e3, rz[count * 99 / 100] * 1e3);
    snprintf(r, sizeof r, "%.2f", rz[count / 2] / rt[count / 2]);
    bench_row(fig, o, b, r, "reported");
    free(rz);
    zmq_close(inbox);
    zmq_ctx_term(ctx);
    stm_buf_free(&hello);
    stm_buf_free(&v.entries);
    stm_lineage_destroy(&lineage);
    stm_schemaset_destroy(&set);
    free(hs);
    free(rt);
    return 0;
}
