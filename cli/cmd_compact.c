/* cmd_compact.c - stemma compact: a compaction pass (sync/compact.h), by the running node
 * (asked on its control socket, then waited for) or on a database file no node runs
 * on. */
#include "cli.h"
#include "commands.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"
#include "sync/compact.h"
#include "sync/horizon.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *s_help =
    "usage: stemma compact (--dir NODE_DIR | --control ENDPOINT)\n"
    "       stemma compact --db FILE [--schemas DIR [--layout NAME]]\n"
    "                      [--known-peer-hours H]\n"
    "\n"
    "Prunes from the oplog the operations whose cells later writes replaced, once every\n"
    "peer still counted as known holds the later write. What stays: the latest write of\n"
    "every cell, deletes, anything parked or kept aside. A peer that lacks what was\n"
    "pruned receives the current cells instead of the history (docs/user-guide.md,\n"
    "\"Compaction\").\n"
    "\n"
    "  --dir NODE_DIR, --control ENDPOINT   the running node does a pass at once; this\n"
    "                 waits for it and prints what `stemma stats` says of compaction\n"
    "  --db FILE      a database no node runs on: a pass here, held back by the peers a\n"
    "                 node noted in it ([compaction] known_peer_hours)\n"
    "  --schemas DIR  its schema set: operations of other versions are weighed under\n"
    "                 their names here (without it, they are kept)\n"
    "  --layout NAME  how DIR names its migrations: stemma, flyway, diesel, sqlx,\n"
    "                 dbmate, goose or golang-migrate (default: found from its files)\n"
    "  --known-peer-hours H   how long a peer noted there still counts (default 168)\n"
    "  -h, --help     this help\n";

/* How long the client waits for the node's pass. */
#define S_WAIT_MS (30 * 60 * 1000)

/* The number after "after " in the node's answer to "compact". */
static long long s_passes_in(const char *reply)
{
    const char *at = strstr(reply, "after ");
    return at ? atoll(at + 6) : -1;
}

/* The number on the stats line "compaction passes N". */
static long long s_passes_of_stats(const char *stats)
{
    const char *at = strstr(stats, "\ncompaction passes ");
    return at ? atoll(at + 19) : -1;
}

/* Asks the node for a pass and waits until its count of passes moves past the one it
 * started after; then prints compaction's lines of its stats. */
static int s_by_node(const char *dir, const char *control)
{
    char *reply = NULL;
    size_t len;
    int code = cli_ask_node("compact", dir, control, "compact", &reply, &len);
    if (code != CLI_OK)
        return code;
    long long before = s_passes_in(reply);
    if (before < 0) {
        fprintf(stderr, "stemma compact: the node answered: %s", reply);
        free(reply);
        return CLI_FAILED;
    }
    free(reply);
    int64_t until = stm_monotime_ms() + S_WAIT_MS;
    while (code == CLI_OK) {
        char *stats = NULL;
        code = cli_ask_node("compact", dir, control, "stats", &stats, &len);
        if (code != CLI_OK)
            break;
        if (s_passes_of_stats(stats) > before) {
            for (const char *line = stats; line && *line;) {
                const char *end = strchr(line, '\n');
                size_t n = end ? (size_t)(end - line) : strlen(line);
                if (strncmp(line, "operations ", 11) == 0 || strncmp(line, "pruned ", 7) == 0 ||
                    strncmp(line, "compaction ", 11) == 0)
                    printf("%.*s\n", (int)n, line);
                line = end ? end + 1 : NULL;
            }
            free(stats);
            return CLI_OK;
        }
        free(stats);
        if (stm_monotime_ms() > until) {
            fprintf(stderr, "stemma compact: the node's pass has not finished in %d minutes; "
                            "'stemma stats' tells when it has\n",
                    S_WAIT_MS / 60000);
            return CLI_FAILED;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return code;
}

/* A pass on db, under the horizon of the peers noted in it. */
static int s_on_file(const char *db, const char *schemas, schemaset_layout layout, long hours)
{
    stm_error err = {0};
    store_t *store = NULL;
    lineage_t *set = NULL;
    lens_set_t *lenses = NULL;
    stm_err rc = STM_OK;
    if (schemas && (rc = cli_load_lineage(schemas, layout, &set, &err)) == STM_OK)
        rc = cli_load_lenses(schemas, layout, &lenses, &err);
    if (rc == STM_OK)
        rc = cli_open_db(db, &store, &err);
    vector_t *horizon = NULL;
    size_t known = 0;
    store_counts before = {0}, after = {0};
    if (rc == STM_OK && (rc = stm_store_exec(store, "BEGIN IMMEDIATE", &err)) == STM_OK) {
        rc = stm_horizon_read(store, stm_wall_ms(), (int64_t)hours * 3600 * 1000, &horizon,
                              &known, &err);
        if (rc == STM_OK)
            rc = stm_store_exec(store, "COMMIT", &err);
        else if (stm_store_exec(store, "ROLLBACK", NULL) != STM_OK) {
            /* err says what failed; closing the store ends the transaction */
        }
    }
    if (rc == STM_OK)
        rc = stm_store_counts(store, &before, &err);
    compact_stats st = {0};
    int64_t start = stm_monotime_ms();
    if (rc == STM_OK) {
        applier_t *a = stm_applier_new(store, NULL, NULL);
        stm_applier_set_lenses(a, lenses, set);
        rc = stm_applier_compact_all(a, horizon, &st, &err);
        stm_applier_destroy(&a);
    }
    int64_t took = stm_monotime_ms() - start;
    if (rc == STM_OK)
        rc = stm_store_counts(store, &after, &err);
    stm_vector_destroy(&horizon);
    stm_store_destroy(&store);
    stm_lens_destroy(&lenses);
    stm_lineage_destroy(&set);
    if (rc != STM_OK)
        return cli_fail("compact", &err);
    printf("pruned %llu operations (%llu kept for %zu known peers that lack what replaced "
           "them); the oplog held %llu, holds %llu; %llu rows in %lld ms\n",
           (unsigned long long)st.pruned, (unsigned long long)st.waiting, known,
           (unsigned long long)before.operations, (unsigned long long)after.operations,
           (unsigned long long)st.rows, (long long)took);
    return CLI_OK;
}

int cmd_compact(int argc, char **argv)
{
    static const struct option options[] = {{"dir", required_argument, NULL, 'd'},
                                            {"control", required_argument, NULL, 'c'},
                                            {"db", required_argument, NULL, 'b'},
                                            {"schemas", required_argument, NULL, 's'},
                                            {"layout", required_argument, NULL, 'L'},
                                            {"known-peer-hours", required_argument, NULL, 'k'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *dir = NULL, *control = NULL, *db = NULL, *schemas = NULL;
    schemaset_layout layout = LAYOUT_AUTO;
    bool have_layout = false;
    long hours = 168;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:d:c:b:s:L:k:h", options, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        case 'b':
            db = optarg;
            break;
        case 's':
            schemas = optarg;
            break;
        case 'L':
            if (cli_parse_layout("compact", optarg, &layout) != CLI_OK)
                return CLI_BAD_INPUT;
            have_layout = true;
            break;
        case 'k':
            hours = strtol(optarg, &end, 10);
            if (!*optarg || *end || hours < 0 || hours > 87600)
                return cli_usage_error("compact",
                                       "--known-peer-hours must be a whole number of hours, 0 "
                                       "to 87600, not '%s'",
                                       optarg);
            break;
        case 'h':
            fputs(s_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("compact", argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error("compact", "unexpected argument '%s'", argv[optind]);
    if ((dir != NULL) + (control != NULL) + (db != NULL) != 1)
        return cli_usage_error("compact",
                               "give --dir NODE_DIR, --control ENDPOINT or --db FILE (one of them)");
    if (!db && (schemas || hours != 168))
        return cli_usage_error("compact", "--schemas and --known-peer-hours go with --db (a "
                                          "running node has its own)");
    if (have_layout && !schemas)
        return cli_usage_error("compact", "--layout goes with --schemas DIR");
    return db ? s_on_file(db, schemas, layout, hours) : s_by_node(dir, control);
}
