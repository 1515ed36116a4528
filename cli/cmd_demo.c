/* cmd_demo.c - stemma demo: three nodes on loopback, end to end.
 *
 * A phone on schemas/tasks v2, a laptop on v3 and a customer box on the fork (v3 of
 * schemas/tasks-fork) each get a database (stemma migrate), a node directory and keys
 * (stemma init), and a running node (stemma node, as child processes on free loopback
 * ports, logging to files). Rows are written into each database with the sqlite3
 * shell; the demo waits until every node holds every task, prints each node's report,
 * migrates the phone to v3 while its node runs (its parked tags replay), prints its
 * report again, and stops every node cleanly. It uses this same stemma binary for
 * every step, so what it shows is what a user would type. */
#include "cli.h"
#include "commands.h"
#include "base/buf.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *s_demo_help =
    "usage: stemma demo [--schemas-root DIR] [--keep DIR]\n"
    "\n"
    "Runs three nodes on loopback: a phone on schemas/tasks v2, a laptop on v3 and a\n"
    "customer box on the fork schemas/tasks-fork v3. Writes rows into each database with\n"
    "the sqlite3 shell, lets them sync, prints each node's report, migrates the phone to\n"
    "v3 while it runs (what it parked replays), and stops everything. Under a minute;\n"
    "nothing is left running.\n"
    "\n"
    "  --schemas-root DIR  where the bundled schema sets are (default: schemas, else\n"
    "                      those installed with stemma, PREFIX/share/stemma/schemas)\n"
    "  --keep DIR          work in DIR and keep it afterwards (default: a temporary\n"
    "                      directory, removed at the end)\n"
    "  -h, --help          this help\n";

typedef struct {
    const char *name;  /* phone, laptop, box */
    const char *set;   /* tasks or tasks-fork */
    int version;
    char dir[600], db[600], log[600], endpoint[64], key[64];
    pid_t pid;
} s_demo_node;

static volatile sig_atomic_t s_interrupted;

static void s_on_signal(int sig)
{
    (void)sig;
    s_interrupted = 1;
}

/* Runs argv (argv[0] a program name found on PATH, or this stemma) and waits. With
 * capture, its stdout goes there; otherwise it is shown. Returns its exit status. */
static int s_run(char *const argv[], buf_t *capture)
{
    int fds[2] = {-1, -1};
    if (capture && pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (capture) {
            dup2(fds[1], STDOUT_FILENO);
            close(fds[0]);
            close(fds[1]);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "stemma demo: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (capture) {
        close(fds[1]);
        char chunk[4096];
        ssize_t n;
        while ((n = read(fds[0], chunk, sizeof chunk)) > 0)
            stm_buf_append(capture, chunk, (size_t)n);
        close(fds[0]);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char s_self[4096];

/* Runs this stemma with the arguments (NULL-terminated), showing the command line. */
static int s_stemma(bool show, buf_t *capture, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = s_self;
    va_list ap;
    va_start(ap, capture);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL && argc < 31)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    if (show) {
        printf("\n$ stemma");
        for (int i = 1; i < argc; i++)
            printf(" %s", argv[i]);
        printf("\n");
        fflush(stdout);
    }
    return s_run(argv, capture);
}

static int s_sqlite(const char *db, const char *sql)
{
    printf("\n$ sqlite3 %s \"%s\"\n", db, sql);
    fflush(stdout);
    char *argv[] = {"sqlite3", "-bail", "-cmd", ".timeout 10000", (char *)db, (char *)sql, NULL};
    return s_run(argv, NULL);
}

static int s_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

static pid_t s_start_node(s_demo_node *n)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *log = fopen(n->log, "a");
        if (log)
            dup2(fileno(log), STDERR_FILENO);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        execl(s_self, s_self, "node", "--dir", n->dir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void s_stop_nodes(s_demo_node *nodes, int count)
{
    for (int i = 0; i < count; i++)
        if (nodes[i].pid > 0)
            kill(nodes[i].pid, SIGTERM);
    for (int i = 0; i < count; i++) {
        if (nodes[i].pid <= 0)
            continue;
        /* A node stops within a poll interval; give it ten seconds, then insist. */
        for (int t = 0; t < 100; t++) {
            if (waitpid(nodes[i].pid, NULL, WNOHANG) == nodes[i].pid) {
                nodes[i].pid = 0;
                break;
            }
            usleep(100000);
        }
        if (nodes[i].pid > 0) {
            kill(nodes[i].pid, SIGKILL);
            waitpid(nodes[i].pid, NULL, 0);
            nodes[i].pid = 0;
        }
    }
}

/* The number a query returns from db, -1 on failure. */
static long s_count(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    long v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(h, 2000);
        sqlite3_stmt *stmt = NULL;
        if (sqlite3_prepare_v2(h, sql, -1, &stmt, NULL) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW)
            v = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
    }
    sqlite3_close(h);
    return v;
}

static int s_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Waits until every node's database holds `want` tasks; false after the timeout. */
static bool s_wait_tasks(s_demo_node *nodes, int count, long want, int seconds)
{
    for (int t = 0; t < seconds * 10 && !s_interrupted; t++) {
        int done = 0;
        for (int i = 0; i < count; i++)
            done += s_count(nodes[i].db, "SELECT count(*) FROM tasks") == want;
        if (done == count)
            return true;
        usleep(100000);
    }
    return false;
}

int cmd_demo(int argc, char **argv)
{
    static const struct option options[] = {{"schemas-root", required_argument, NULL, 's'},
                                            {"keep", required_argument, NULL, 'k'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *root = "schemas", *keep = NULL;
    bool root_given = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:s:k:h", options, NULL)) != -1) {
        switch (c) {
        case 's':
            root = optarg;
            root_given = true;
            break;
        case 'k':
            keep = optarg;
            break;
        case 'h':
            fputs(s_demo_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("demo", argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    ssize_t self_len = readlink("/proc/self/exe", s_self, sizeof s_self - 1);
    if (self_len <= 0)
        return cli_usage_error("demo", "cannot find this program's path (/proc/self/exe)");
    s_self[self_len] = '\0';
    /* Not in a source tree and not told: the schema sets installed beside this program
     * (PREFIX/bin/stemma, PREFIX/share/stemma/schemas), wherever it was installed. */
    struct stat st;
    char installed[sizeof s_self + 32];
    if (!root_given && stat(root, &st) != 0) {
        snprintf(installed, sizeof installed, "%s", s_self);
        char *slash = strrchr(installed, '/');
        if (slash) {
            snprintf(slash, sizeof installed - (size_t)(slash - installed),
                     "/../share/stemma/schemas");
            root = installed;
        }
    }
    char tasks[sizeof installed + 32], fork_set[sizeof installed + 32];
    snprintf(tasks, sizeof tasks, "%s/tasks", root);
    snprintf(fork_set, sizeof fork_set, "%s/tasks-fork", root);
    if (stat(tasks, &st) != 0 || stat(fork_set, &st) != 0)
        return cli_usage_error("demo",
                               "no schema sets at %s/tasks and %s/tasks-fork: run it from the "
                               "source tree, install stemma, or give --schemas-root",
                               root, root);
    char *sqlite_argv[] = {"sqlite3", "-version", NULL};
    buf_t ignored = BUF_INIT;
    if (s_run(sqlite_argv, &ignored) != 0) {
        stm_buf_free(&ignored);
        return cli_usage_error("demo", "the sqlite3 shell is needed (apt-get install sqlite3)");
    }
    stm_buf_free(&ignored);

    char work[400];
    if (keep) {
        snprintf(work, sizeof work, "%s", keep);
        if (mkdir(work, 0700) != 0 && errno != EEXIST)
            return cli_usage_error("demo", "cannot make %s: %s", work, strerror(errno));
    } else {
        snprintf(work, sizeof work, "/tmp/stemma-demo-XXXXXX");
        if (!mkdtemp(work))
            return cli_usage_error("demo", "cannot make a temporary directory: %s",
                                   strerror(errno));
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    s_demo_node nodes[3] = {{.name = "laptop", .set = tasks, .version = 3},
                            {.name = "box", .set = fork_set, .version = 3},
                            {.name = "phone", .set = tasks, .version = 2}};
    int code = CLI_OK;
    printf("stemma demo in %s\n", work);
    printf("\n=== Three databases: a laptop at tasks v3, a customer box on the fork, a phone "
           "at tasks v2 ===\n");
    for (int i = 0; i < 3 && code == CLI_OK; i++) {
        s_demo_node *n = &nodes[i];
        snprintf(n->dir, sizeof n->dir, "%s/%s", work, n->name);
        snprintf(n->db, sizeof n->db, "%s/%s.db", work, n->name);
        snprintf(n->log, sizeof n->log, "%s/%s.log", work, n->name);
        snprintf(n->endpoint, sizeof n->endpoint, "tcp://127.0.0.1:%d", s_free_port());
        char to[16];
        snprintf(to, sizeof to, "%d", n->version);
        if (s_stemma(true, NULL, "migrate", "--db", n->db, "--schemas", n->set, "--to", to,
                     "--no-backup", (char *)NULL) != 0) {
            code = CLI_FAILED;
            break;
        }
        /* Each node knows the ones set up before it; the rest they learn from HELLOs. */
        char peer1[160] = "", peer2[160] = "";
        if (i >= 1)
            snprintf(peer1, sizeof peer1, "%s@%s", nodes[0].key, nodes[0].endpoint);
        if (i >= 2)
            snprintf(peer2, sizeof peer2, "%s@%s", nodes[1].key, nodes[1].endpoint);
        buf_t out = BUF_INIT;
        int rc = i == 0
                     ? s_stemma(true, &out, "init", "--dir", n->dir, "--db", n->db, "--schemas",
                                n->set, "--bind", n->endpoint, "--trust-on-first-use", (char *)NULL)
                 : i == 1 ? s_stemma(true, &out, "init", "--dir", n->dir, "--db", n->db,
                                     "--schemas", n->set, "--bind", n->endpoint, "--peer", peer1,
                                     "--trust-on-first-use", (char *)NULL)
                          : s_stemma(true, &out, "init", "--dir", n->dir, "--db", n->db,
                                     "--schemas", n->set, "--bind", n->endpoint, "--peer", peer1,
                                     "--peer", peer2, "--trust-on-first-use", (char *)NULL);
        fputs(stm_buf_str(&out), stdout);
        const char *key = strstr(stm_buf_str(&out), "public key: ");
        if (rc != 0 || !key) {
            stm_buf_free(&out);
            code = CLI_FAILED;
            break;
        }
        snprintf(n->key, sizeof n->key, "%.40s", key + strlen("public key: "));
        stm_buf_free(&out);
    }
    if (code == CLI_OK) {
        printf("\n=== The nodes start (logs in %s/*.log) ===\n", work);
        for (int i = 0; i < 3; i++) {
            nodes[i].pid = s_start_node(&nodes[i]);
            printf("$ stemma node --dir %s &    (pid %d)\n", nodes[i].dir, (int)nodes[i].pid);
        }
        usleep(500000);
        printf("\n=== Each device writes with the sqlite3 shell ===\n");
        s_sqlite(nodes[0].db, "INSERT INTO lists (id, name) VALUES ('l1', 'groceries');"
                              " INSERT INTO tasks (id, list_id, title, tags)"
                              " VALUES ('t1', 'l1', 'milk', '[\"dairy\"]')");
        s_sqlite(nodes[1].db, "INSERT INTO tasks (id, list_id, title, due_at)"
                              " VALUES ('t2', 'l1', 'invoice', '2026-12-01')");
        s_sqlite(nodes[2].db, "INSERT INTO tasks (id, list_id, title, priority)"
                              " VALUES ('t3', 'l1', 'call mum', 2)");
        printf("\n=== Waiting until every node holds all three tasks ===\n");
        if (!s_wait_tasks(nodes, 3, 3, 30)) {
            fprintf(stderr, "stemma demo: the nodes did not converge within 30 s (see %s/*.log)\n",
                    work);
            code = CLI_FAILED;
        } else {
            printf("every node holds 3 tasks\n");
        }
    }
    if (code == CLI_OK && !s_interrupted) {
        printf("\n=== What each node says about its peers ===\n");
        for (int i = 0; i < 3; i++)
            s_stemma(true, NULL, "report", "--dir", nodes[i].dir, (char *)NULL);
        s_sqlite(nodes[2].db, "SELECT id, title, priority FROM tasks ORDER BY id");
        printf("\n=== The phone upgrades to v3 while its node runs: its parked tags replay "
               "===\n");
        s_stemma(true, NULL, "migrate", "--db", nodes[2].db, "--schemas", tasks, "--to", "3",
                 (char *)NULL);
        s_sqlite(nodes[2].db, "SELECT id, title, tags FROM tasks ORDER BY id");
        usleep(1000000); /* the node notices the migration and says HELLO again */
        s_stemma(true, NULL, "peers", "--dir", nodes[2].dir, (char *)NULL);
    }
    printf("\n=== Stopping the nodes ===\n");
    s_stop_nodes(nodes, 3);
    printf("all nodes stopped\n");
    if (!keep)
        nftw(work, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    if (s_interrupted)
        return CLI_FAILED;
    return code;
}
