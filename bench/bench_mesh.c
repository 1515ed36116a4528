/* bench_mesh - real nodes in several shapes; writes on one node; the time until every
 * node holds them, the bytes sent per operation, and what an idle mesh costs.
 *
 *   bench_mesh STEMMA WORKDIR [NODES] [WRITES]             # default 16 nodes, 10,000
 *   bench_mesh STEMMA WORKDIR --sparse [NODES] [WRITES]    # default 32 nodes, 10,000
 *
 * Real `stemma node` processes on loopback with CURVE, each listing its neighbours in
 * the shape as peers. The first form: a line and a random graph of degree 3, each node
 * trusting exactly its neighbours (so the shape holds: the other nodes it hears of
 * refuse it). The second (issue 14, "a sparse mesh"): a line, each node trusting its
 * neighbours, against the same line where every node trusts every key (one shared list
 * of trusted keys, as trust on first use ends up), so that each meets the nodes it hears
 * of and keeps those its [mesh] settings let it; then, idle, the processor time and
 * bytes each node spends in 10 s.
 *
 * The writes are rows of `lists` (three operations each) inserted with the sqlite3 C
 * API on node 0, in one transaction, once every node has met its configured peers.
 * Bytes are every message's bytes as handed to ZeroMQ (`stemma stats`), summed over
 * all nodes, from just before the writes until every node holds them. Not a test:
 * figures go to stdout. */
#include "benchutil.h"
#include "base/buf.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_NODES 64

static const char *s_stemma;

typedef struct {
    char dir[512], db[512], log[512], bind[64], key[41];
    int configured; /* peers its node.toml lists */
    pid_t pid;
} s_node;

/* What `stemma stats` says of a node. */
typedef struct {
    unsigned long long bytes;  /* bytes sent */
    unsigned long long hello, ack, vector; /* of those, in HELLO, ACK and VECTOR messages */
    int connected;             /* peers connected */
} s_stats;

/* (Re)writes node i's node.toml: its neighbours (adj) as peers, and as trusted keys
 * every node's when trust_all, else only the neighbours' (init --peer trusts them). */
static void s_init(s_node *nodes, int i, const int *adj, int n, bool trust_all, bool force)
{
    char *argv[16 + 4 * MAX_NODES];
    char peers[MAX_NODES][128];
    int argc = 0;
    argv[argc++] = (char *)s_stemma;
    argv[argc++] = "init";
    argv[argc++] = "--dir";
    argv[argc++] = nodes[i].dir;
    argv[argc++] = "--db";
    argv[argc++] = nodes[i].db;
    argv[argc++] = "--schemas";
    argv[argc++] = "schemas/tasks";
    argv[argc++] = "--bind";
    argv[argc++] = nodes[i].bind;
    nodes[i].configured = 0;
    for (int j = 0; adj && j < n; j++) {
        if (adj[i * n + j]) {
            snprintf(peers[j], sizeof peers[j], "%s@%s", nodes[j].key, nodes[j].bind);
            argv[argc++] = "--peer";
            argv[argc++] = peers[j];
            nodes[i].configured++;
        } else if (trust_all && j != i) {
            argv[argc++] = "--trust";
            argv[argc++] = nodes[j].key;
        }
    }
    if (force)
        argv[argc++] = "--force";
    argv[argc] = NULL;
    buf_t out = BUF_INIT;
    if (bench_run(argv, &out) != 0)
        bench_die("stemma init failed");
    const char *k = strstr(stm_buf_str(&out), "public key: ");
    if (!k)
        bench_die("no key from stemma init");
    snprintf(nodes[i].key, sizeof nodes[i].key, "%.40s", k + 12);
    stm_buf_free(&out);
}

/* Its `stemma stats`; zeros while its node has no control socket yet (not asked then,
 * so that the wait for a starting node prints nothing). */
static s_stats s_read_stats(const s_node *node)
{
    char *argv[] = {(char *)s_stemma, "stats", "--dir", (char *)node->dir, NULL};
    char sock[600];
    struct stat sb;
    snprintf(sock, sizeof sock, "%s/control.sock", node->dir);
    buf_t out = BUF_INIT;
    s_stats st = {0};
    if (stat(sock, &sb) == 0 && bench_run(argv, &out) == 0) {
        const char *b = strstr(stm_buf_str(&out), "bytes sent ");
        const char *c = strstr(stm_buf_str(&out), "(connected ");
        const char *t = strstr(stm_buf_str(&out), "bytes sent in hello ");
        st.bytes = b ? strtoull(b + 11, NULL, 10) : 0;
        st.connected = c ? atoi(c + 11) : 0;
        if (t && sscanf(t, "bytes sent in hello %llu ack %llu vector %llu", &st.hello, &st.ack,
                        &st.vector) != 3)
            st.hello = st.ack = st.vector = 0;
    }
    stm_buf_free(&out);
    return st;
}

static s_stats s_stats_all(const s_node *nodes, int n)
{
    s_stats all = {0};
    for (int i = 0; i < n; i++) {
        s_stats st = s_read_stats(&nodes[i]);
        all.bytes += st.bytes;
        all.hello += st.hello;
        all.ack += st.ack;
        all.vector += st.vector;
    }
    return all;
}

static unsigned long long s_bytes_all(const s_node *nodes, int n)
{
    return s_stats_all(nodes, n).bytes;
}

/* Until every node has met its configured peers, and the number of connections in the
 * mesh has not changed for three looks a second apart (the peers learned from peer
 * lists are met too). A benchmark's wait: it gives up after 120 s. */
static void s_wait_settled(const s_node *nodes, int n)
{
    double t0 = bench_now();
    int last = -1, same = 0;
    while (bench_now() - t0 < 120) {
        int total = 0, short_of = 0;
        for (int i = 0; i < n; i++) {
            int c = s_read_stats(&nodes[i]).connected;
            total += c;
            short_of += c < nodes[i].configured;
        }
        same = !short_of && total == last ? same + 1 : 0;
        if (same >= 3)
            return;
        last = total;
        sleep(1);
    }
    bench_die("the mesh did not settle within 120 s");
}

typedef struct {
    double seconds;     /* until every node holds the writes */
    double bytes_op;    /* bytes sent per operation, all nodes */
    int links;          /* connections, counted once per pair */
    double idle_cpu;    /* idle: mean share of a core per node */
    double idle_max;    /* and the largest */
    double idle_bytes;  /* idle: bytes sent per second per node */
    double hello_op, ack_op, vector_op; /* of bytes_op, in HELLO, ACK and VECTOR messages */
} s_result;

/* Sets up n nodes with adjacency adj, writes on node 0, waits for all; with idle, then
 * measures 10 s of the idle mesh. */
static s_result s_run_topology(const char *name, const char *work, int n, const int *adj,
                               int writes, bool trust_all, bool idle)
{
    s_node nodes[MAX_NODES];
    memset(nodes, 0, sizeof nodes);
    char topo[300];
    snprintf(topo, sizeof topo, "%s/%s", work, name);
    mkdir(topo, 0700);
    for (int i = 0; i < n; i++) {
        snprintf(nodes[i].dir, sizeof nodes[i].dir, "%s/n%d", topo, i);
        snprintf(nodes[i].db, sizeof nodes[i].db, "%s/n%d.db", topo, i);
        snprintf(nodes[i].log, sizeof nodes[i].log, "%s/n%d.log", topo, i);
        snprintf(nodes[i].bind, sizeof nodes[i].bind, "tcp://127.0.0.1:%d", bench_free_port());
        char *argv[] = {(char *)s_stemma, "migrate", "--db", nodes[i].db, "--schemas",
                        "schemas/tasks", "--no-backup", NULL};
        if (bench_run(argv, NULL) != 0)
            bench_die("stemma migrate failed");
        s_init(nodes, i, NULL, n, false, false);
    }
    for (int i = 0; i < n; i++)
        s_init(nodes, i, adj, n, trust_all, true); /* --force keeps each key */
    for (int i = 0; i < n; i++)
        nodes[i].pid = bench_start_node(s_stemma, nodes[i].dir, nodes[i].log);
    s_wait_settled(nodes, n);
    s_result r = {0};
    for (int i = 0; i < n; i++)
        r.links += s_read_stats(&nodes[i]).connected;
    r.links /= 2;
    s_stats before = s_stats_all(nodes, n);
    sqlite3 *db = NULL;
    sqlite3_open(nodes[0].db, &db);
    sqlite3_busy_timeout(db, 10000);
    char sql[256];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "INSERT INTO lists (id, name) SELECT 'l' || i, 'list ' || i FROM n",
             writes);
    double t0 = bench_now();
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        bench_die(sqlite3_errmsg(db));
    sqlite3_close(db);
    int done = 0;
    while (done < n && bench_now() - t0 < 300) {
        done = 0;
        for (int i = 0; i < n; i++)
            done += bench_count(nodes[i].db, "SELECT count(*) FROM lists") == writes;
        if (done < n)
            usleep(50000);
    }
    r.seconds = bench_now() - t0;
    s_stats after = s_stats_all(nodes, n);
    unsigned long long bytes = after.bytes - before.bytes;
    long long ops = (long long)writes * 3;
    r.bytes_op = (double)bytes / (double)ops;
    r.hello_op = (double)(after.hello - before.hello) / (double)ops;
    r.ack_op = (double)(after.ack - before.ack) / (double)ops;
    r.vector_op = (double)(after.vector - before.vector) / (double)ops;
    if (idle && done == n) {
        /* What is in flight settles (ACKs, the last vectors) before the count starts. */
        sleep(3);
        unsigned long long b0 = s_bytes_all(nodes, n);
        double c0[MAX_NODES];
        for (int i = 0; i < n; i++)
            c0[i] = bench_cpu_seconds(nodes[i].pid);
        double w0 = bench_now();
        sleep(10);
        double wall = bench_now() - w0;
        for (int i = 0; i < n; i++) {
            double share = (bench_cpu_seconds(nodes[i].pid) - c0[i]) / wall;
            r.idle_cpu += share / n;
            r.idle_max = share > r.idle_max ? share : r.idle_max;
        }
        r.idle_bytes = (double)(s_bytes_all(nodes, n) - b0) / wall / n;
    }
    for (int i = 0; i < n; i++)
        kill(nodes[i].pid, SIGTERM);
    for (int i = 0; i < n; i++)
        waitpid(nodes[i].pid, NULL, 0);
    if (done < n)
        bench_die("not every node got every write within 300 s");
    printf("%-34s %8.2f s %12.0f ops/s %10.1f bytes/op sent (all nodes), %d links\n", name,
           r.seconds, ops / r.seconds, r.bytes_op, r.links);
    printf("%-34s of those, per operation: %.1f in HELLO, %.1f in ACK, %.1f in VECTOR, %.1f "
           "in OPS and the rest\n",
           "", r.hello_op, r.ack_op, r.vector_op,
           r.bytes_op - r.hello_op - r.ack_op - r.vector_op);
    if (idle)
        printf("%-34s idle: %.1f %% of a core per node (most %.1f %%), %.0f bytes/s sent per "
               "node\n",
               "", 100 * r.idle_cpu, 100 * r.idle_max, r.idle_bytes);
    return r;
}

/* A line of n: each node's neighbours are the one before and the one after. */
static void s_line(int *adj, int n)
{
    memset(adj, 0, (size_t)(n * n) * sizeof *adj);
    for (int i = 0; i + 1 < n; i++)
        adj[i * n + i + 1] = adj[(i + 1) * n + i] = 1;
}

/* Issue 14's sparse mesh: the same line, trusting neighbours only and trusting all. */
static void s_sparse(const char *work, int n, int writes)
{
    int *adj = calloc((size_t)(n * n), sizeof *adj);
    printf("stemma sparse mesh benchmark: %d nodes configured as a line, %d writes (rows, 3 "
           "operations each) on node 0\n\n",
           n, writes);
    s_line(adj, n);
    s_result line = s_run_topology("line, neighbours trusted", work, n, adj, writes, false, true);
    s_result all = s_run_topology("line, every key trusted", work, n, adj, writes, true, true);
    free(adj);
    char fig[128], o[96], base[96], ratio[32];
    snprintf(fig, sizeof fig, "mesh of %d, every key trusted: bytes/op vs a line", n);
    snprintf(o, sizeof o, "%.0f B/op, %d links", all.bytes_op, all.links);
    snprintf(base, sizeof base, "%.0f B/op", line.bytes_op);
    snprintf(ratio, sizeof ratio, "%.2f", all.bytes_op / line.bytes_op);
    bench_row(fig, o, base, ratio, "<= 2");
    snprintf(fig, sizeof fig, "mesh of %d, every key trusted: idle CPU per node", n);
    snprintf(o, sizeof o, "%.1f %% (most %.1f %%), %.0f B/s", 100 * all.idle_cpu,
             100 * all.idle_max, all.idle_bytes);
    snprintf(base, sizeof base, "%.1f %% (line)", 100 * line.idle_cpu);
    bench_row(fig, o, base, "", "<= 5 %");
}

int main(int argc, char **argv)
{
    if (argc < 3)
        bench_die("usage: bench_mesh STEMMA WORKDIR [--sparse] [NODES] [WRITES]");
    s_stemma = argv[1];
    const char *work = argv[2];
    bool sparse = argc > 3 && strcmp(argv[3], "--sparse") == 0;
    int at = sparse ? 4 : 3;
    int n = argc > at ? atoi(argv[at]) : sparse ? 32 : 16;
    int writes = argc > at + 1 ? atoi(argv[at + 1]) : 10000;
    if (n < 2 || n > MAX_NODES)
        bench_die("NODES must be 2 to 64");
    mkdir(work, 0700);
    if (sparse) {
        s_sparse(work, n, writes);
        return 0;
    }
    int *adj = calloc((size_t)(n * n), sizeof *adj);
    printf("stemma mesh benchmark: %d nodes, %d writes (rows, 3 operations each) on node 0\n\n",
           n, writes);
    s_line(adj, n);
    s_result r = s_run_topology("line", work, n, adj, writes, false, false);
    char fig[96], o[64];
    snprintf(fig, sizeof fig, "mesh of %d, %s: %d writes reach all", n, "line", writes);
    snprintf(o, sizeof o, "%.2f s, %.0f B/op sent", r.seconds, r.bytes_op);
    bench_row(fig, o, "", "", "reported");
    /* A random connected graph where every node has degree 3 or a little more: a ring
     * for connectedness, plus random chords up to degree 3. */
    memset(adj, 0, (size_t)(n * n) * sizeof *adj);
    srand(7);
    for (int i = 0; i < n; i++)
        adj[i * n + (i + 1) % n] = adj[((i + 1) % n) * n + i] = 1;
    for (int i = 0; i < n; i++) {
        int degree = 0;
        for (int j = 0; j < n; j++)
            degree += adj[i * n + j];
        for (int tries = 0; degree < 3 && tries < 100; tries++) {
            int j = rand() % n;
            if (j == i || adj[i * n + j])
                continue;
            adj[i * n + j] = adj[j * n + i] = 1;
            degree++;
        }
    }
    r = s_run_topology("random, degree 3", work, n, adj, writes, false, false);
    snprintf(fig, sizeof fig, "mesh of %d, %s: %d writes reach all", n, "random, degree 3",
             writes);
    snprintf(o, sizeof o, "%.2f s, %.0f B/op sent", r.seconds, r.bytes_op);
    bench_row(fig, o, "", "", "reported");
    free(adj);
    return 0;
}
