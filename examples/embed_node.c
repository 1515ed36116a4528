/* embed_node.c - an application that runs a stemma node inside its own process.
 *
 * The application owns its SQLite database and its event loop. It opens the node that
 * `stemma init` set up in NODE_DIR and either drives it from its own poll(2) loop
 * (stemma_node_fd, stemma_node_step: the default) or lets it run on a thread of its own
 * (--thread), hearing of it through callbacks either way. Its loop also watches stdin:
 * the program runs until stdin is closed.
 *
 *   embed_node --dir NODE_DIR --db FILE [--thread] [--write SQL] [--until SQL]
 *
 *   --write SQL  run SQL on the database first, as the application's own write (the
 *                node's capture triggers make it operations, and peers get them)
 *   --until SQL  a query of one number: when it is non-zero (the rows the application
 *                waits for have arrived) the program prints "synced"
 *
 * It prints one line per event ("event peer-judged ...", "event applied ..."); the
 * node's log lines go to stderr. Build it with
 *
 *   cc embed_node.c $(pkg-config --cflags --libs stemma sqlite3) -o embed_node */
#include <stemma.h>

#include <errno.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int events[2]; /* with --thread: the node's thread writes a byte here per event */
} app;

static void on_log(void *user, stemma_log_level level, const char *event, const char *peer,
                   const char *message)
{
    (void)user;
    static const char *const names[] = {"info", "warn", "error"};
    fprintf(stderr, "node %s %s%s%s: %s\n", names[level], event, peer ? " " : "", peer ? peer : "",
            message);
}

/* Called on the thread that runs the node: here it only prints, and (--thread) tells the
 * main loop, which owns the database, to look at it again. */
static void on_event(void *user, const stemma_event *ev)
{
    app *a = user;
    switch (ev->kind) {
    case STEMMA_EVENT_PEER_JUDGED:
        printf("event peer-judged %s relation=%s sync=%s version=%d\n", ev->peer_key,
               stemma_relation_name(ev->relation),
               ev->sync == STEMMA_SYNC_FULL      ? "full"
               : ev->sync == STEMMA_SYNC_PARTIAL ? "partial"
                                                 : "refused",
               ev->peer_version);
        break;
    case STEMMA_EVENT_APPLIED:
        printf("event applied applied=%llu present=%llu parked=%llu replayed=%llu "
               "parked_total=%llu conflicts_total=%llu\n",
               (unsigned long long)ev->applied, (unsigned long long)ev->present,
               (unsigned long long)ev->parked, (unsigned long long)ev->replayed,
               (unsigned long long)ev->parked_total, (unsigned long long)ev->conflicts_total);
        break;
    case STEMMA_EVENT_MIGRATED:
        printf("event migrated version=%d\n", ev->version);
        break;
    }
    fflush(stdout);
    if (a->events[1] >= 0 && write(a->events[1], "e", 1) < 0) {
        /* full: the main loop has a wake-up waiting already */
    }
}

/* The number `sql` returns, or -1 (said on stderr) when it fails. */
static long long query_number(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    long long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    else
        fprintf(stderr, "embed_node: --until: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(q);
    return n;
}

static int usage(const char *why)
{
    fprintf(stderr,
            "embed_node: %s\n"
            "usage: embed_node --dir NODE_DIR --db FILE [--thread] [--write SQL] [--until SQL]\n",
            why);
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *dbpath = NULL, *write_sql = NULL, *until = NULL;
    int threaded = 0;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--thread") == 0) {
            threaded = 1;
            continue;
        }
        if (i + 1 >= argc)
            return usage("an option needs a value, or is unknown");
        if (strcmp(opt, "--dir") == 0)
            dir = argv[++i];
        else if (strcmp(opt, "--db") == 0)
            dbpath = argv[++i];
        else if (strcmp(opt, "--write") == 0)
            write_sql = argv[++i];
        else if (strcmp(opt, "--until") == 0)
            until = argv[++i];
        else
            return usage("unknown option");
    }
    if (!dir || !dbpath)
        return usage("--dir and --db are required");
    printf("libstemma %s (wire %d, bundle %d, store %d)\n", stemma_version(),
           stemma_format_version(STEMMA_FORMAT_WIRE), stemma_format_version(STEMMA_FORMAT_BUNDLE),
           stemma_format_version(STEMMA_FORMAT_STORE));

    /* The application's own connection to its own database. */
    sqlite3 *db = NULL;
    if (sqlite3_open(dbpath, &db) != SQLITE_OK) {
        fprintf(stderr, "embed_node: %s: %s\n", dbpath, sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    sqlite3_busy_timeout(db, 5000);
    char *sqlerr = NULL;
    if (write_sql && sqlite3_exec(db, write_sql, NULL, NULL, &sqlerr) != SQLITE_OK) {
        fprintf(stderr, "embed_node: --write: %s\n", sqlerr);
        sqlite3_free(sqlerr);
        sqlite3_close(db);
        return 1;
    }

    app a = {{-1, -1}};
    if (threaded && pipe(a.events) != 0) {
        perror("embed_node: pipe");
        sqlite3_close(db);
        return 1;
    }
    stemma_node_options opts = STEMMA_NODE_OPTIONS_INIT;
    opts.on_log = on_log;
    opts.on_event = on_event;
    opts.user = &a;
    stemma_error err;
    stemma_node *node = NULL;
    if (stemma_node_open(dir, &opts, &node, &err) != STEMMA_OK) {
        fprintf(stderr, "embed_node: %s\n", err.message);
        sqlite3_close(db);
        return err.code == STEMMA_EINPUT || err.code == STEMMA_EUSAGE ? 2 : 1;
    }
    printf("node %s on %s\n", stemma_node_key(node), stemma_node_endpoint(node));
    fflush(stdout);

    /* The loop: stdin (closed: stop), and the node's descriptor, or (--thread) the pipe
     * its events arrive on. */
    int code = 0, node_fd = -1, timeout = 0, synced = 0;
    if (threaded ? stemma_node_start(node, &err) : stemma_node_fd(node, &node_fd, &err)) {
        fprintf(stderr, "embed_node: %s\n", err.message);
        code = 1;
    }
    while (code == 0) {
        if (until && !synced && query_number(db, until) > 0) {
            synced = 1;
            printf("synced\n");
            fflush(stdout);
        }
        struct pollfd fds[2] = {{.fd = 0, .events = POLLIN},
                                {.fd = threaded ? a.events[0] : node_fd, .events = POLLIN}};
        if (poll(fds, 2, threaded ? -1 : timeout) < 0 && errno != EINTR) {
            perror("embed_node: poll");
            code = 1;
            break;
        }
        if (fds[0].revents) {
            char buf[256];
            if (read(0, buf, sizeof buf) <= 0)
                break; /* stdin closed: the application quits */
        }
        if (threaded) {
            char buf[64];
            if (fds[1].revents && read(a.events[0], buf, sizeof buf) < 0)
                code = 1;
        } else if (stemma_node_step(node, &timeout, &err) != STEMMA_OK) {
            fprintf(stderr, "embed_node: %s\n", err.message);
            code = 1;
        }
    }
    /* Before it closes, what the node says about itself (as `stemma stats` asks). */
    char *stats = NULL;
    if (stemma_node_request(node, "stats", &stats, &err) == STEMMA_OK)
        fprintf(stderr, "%s", stats);
    stemma_free(stats);
    if (threaded && stemma_node_stop(node, &err) != STEMMA_OK) {
        fprintf(stderr, "embed_node: %s\n", err.message);
        code = 1;
    }
    stemma_node_close(&node);
    sqlite3_close(db);
    if (a.events[0] >= 0) {
        close(a.events[0]);
        close(a.events[1]);
    }
    return code;
}
