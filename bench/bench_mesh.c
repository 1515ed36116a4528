/* bench_mesh - 16 nodes in a line and in a random graph of degree 3; 10,000 writes on
 * one node; the time until every node holds them, and the bytes sent per operation.
 *
 *   bench_mesh STEMMA WORKDIR [NODES] [WRITES]
 *
 * Real `stemma node` processes on loopback with CURVE. Each node trusts exactly its
 * neighbours in the topology (so the shape holds: the other nodes it hears of refuse
 * it), and lists them as peers. The writes are rows of `lists` (three operations each)
 * inserted with the sqlite3 C API on node 0, in one transaction. Bytes are every
 * message's bytes as handed to ZeroMQ, summed over all nodes (`stemma stats`). Not a
 * test: figures go to stdout. */
#include "benchutil.h"
#include "base/buf.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 64

static const char *s_stemma;

typedef struct {
    char dir[512], db[512], log[512], bind[64], key[41];
    pid_t pid;
} s_node;

/* (Re)writes node i's node.toml with its neighbours as peers and trusted keys. */
static void s_init(s_node *nodes, int i, const int *adj, int n, bool force)
{
    char *argv[64];
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
    for (int j = 0; adj && j < n && argc < 56; j++) {
        if (!adj[i * n + j])
            continue;
        snprintf(peers[j], sizeof peers[j], "%s@%s", nodes[j].key, nodes[j].bind);
        argv[argc++] = "--peer";
        argv[argc++] = peers[j];
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

static unsigned long long s_bytes_sent(const s_node *node)
{
    char *argv[] = {(char *)s_stemma, "stats", "--dir", (char *)node->dir, NULL};
    buf_t out = BUF_INIT;
    bench_run(argv, &out);
    const char *at = strstr(stm_buf_str(&out), "bytes sent ");
    unsigned long long bytes = at ? strtoull(at + 11, NULL, 10) : 0;
    stm_buf_free(&out);
    return bytes;
}

/* Sets up the nodes with adjacency adj, writes on node 0, waits for all. */
static void s_run_topology(const char *name, const char *work, int n, const int *adj, int writes)
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
        s_init(nodes, i, NULL, n, false);
    }
    for (int i = 0; i < n; i++)
        s_init(nodes, i, adj, n, true); /* --force keeps each key; peers are trusted */
    for (int i = 0; i < n; i++) {
        nodes[i].pid = fork();
        if (nodes[i].pid == 0) {
            int fd = open(nodes[i].log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            dup2(fd, STDERR_FILENO);
            execl(s_stemma, s_stemma, "node", "--dir", nodes[i].dir, (char *)NULL);
            _exit(127);
        }
    }
    sleep(2); /* every link up (HELLO retries back off from 100 ms) */
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
    double t = bench_now() - t0;
    unsigned long long bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += s_bytes_sent(&nodes[i]);
    for (int i = 0; i < n; i++)
        kill(nodes[i].pid, SIGTERM);
    for (int i = 0; i < n; i++)
        waitpid(nodes[i].pid, NULL, 0);
    if (done < n)
        bench_die("not every node got every write within 300 s");
    long long ops = (long long)writes * 3;
    printf("%-30s %8.2f s %12.0f ops/s %10.1f bytes/op sent (all nodes)\n", name, t, ops / t,
           (double)bytes / (double)ops);
    char fig[96], o[64];
    snprintf(fig, sizeof fig, "mesh of %d, %s: %d writes reach all", n, name, writes);
    snprintf(o, sizeof o, "%.2f s, %.0f B/op sent", t, (double)bytes / (double)ops);
    bench_row(fig, o, "", "", "reported");
}

int main(int argc, char **argv)
{
    if (argc < 3)
        bench_die("usage: bench_mesh STEMMA WORKDIR [NODES] [WRITES]");
    s_stemma = argv[1];
    const char *work = argv[2];
    int n = argc > 3 ? atoi(argv[3]) : 16, writes = argc > 4 ? atoi(argv[4]) : 10000;
    if (n < 2 || n > MAX_NODES)
        bench_die("NODES must be 2 to 64");
    mkdir(work, 0700);
    int *adj = calloc((size_t)(n * n), sizeof *adj);
    printf("stemma mesh benchmark: %d nodes, %d writes (rows, 3 operations each) on node 0\n\n",
           n, writes);
    for (int i = 0; i + 1 < n; i++)
        adj[i * n + i + 1] = adj[(i + 1) * n + i] = 1;
    s_run_topology("line", work, n, adj, writes);
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
    s_run_topology("random, degree 3", work, n, adj, writes);
    free(adj);
    return 0;
}
