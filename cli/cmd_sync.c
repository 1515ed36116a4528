/* cmd_sync.c - the commands that move operations without a network: changes (write a
 * bundle), vector (write a version vector) and apply (apply a bundle). */
#include "cli.h"
#include "commands.h"
#include "progress.h"
#include "node/admit.h"
#include "node/config.h"
#include "sync/apply.h"
#include "sync/bundle.h"
#include "sync/oplog.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* ---- changes ---- */

static const char *s_changes_help =
    "usage: stemma changes --db FILE [--since VECTOR_FILE] -o BUNDLE\n"
    "\n"
    "Writes the operations the other side lacks to a bundle file, for carrying to a\n"
    "database that is not on the network ('stemma apply' reads it). Without --since,\n"
    "every operation this database holds; with it, those above the other side's\n"
    "version vector (written there by 'stemma vector').\n"
    "\n"
    "  --db FILE          the database\n"
    "  --since FILE       the other side's version vector\n"
    "  -o, --output FILE  the bundle to write (replaced whole, never left half-written)\n"
    "  -h, --help         this help\n";

int cmd_changes(int argc, char **argv)
{
    static const struct option options[] = {{"db", required_argument, NULL, 'd'},
                                            {"since", required_argument, NULL, 's'},
                                            {"output", required_argument, NULL, 'o'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL, *since_path = NULL, *output = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:d:s:o:h", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 's':
            since_path = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            fputs(s_changes_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("changes", argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error("changes", "unexpected argument '%s'", argv[optind]);
    if (!db || !output)
        return cli_usage_error("changes", "--db FILE and -o BUNDLE are required");
    stm_error err = {0};
    vector_t *since = NULL;
    store_t *store = NULL;
    if (since_path && stm_bundle_read_vector(since_path, &since, &err) != STM_OK)
        return cli_fail("changes", &err);
    bundle_info info;
    stm_err rc = cli_open_db(db, &store, &err);
    if (rc == STM_OK)
        rc = stm_bundle_write(store, since, output, &info, &err);
    stm_store_destroy(&store);
    stm_vector_destroy(&since);
    if (rc != STM_OK)
        return cli_fail("changes", &err);
    printf("wrote %llu operation%s to %s (%llu bytes)\n", (unsigned long long)info.ops,
           info.ops == 1 ? "" : "s", output, (unsigned long long)info.bytes);
    if (info.withheld)
        printf("withheld %llu row change%s too large for a bundle (the warnings above name "
               "them): the bundle carries stand-ins, and its receivers will lack those "
               "writes\n",
               (unsigned long long)info.withheld, info.withheld == 1 ? "" : "s");
    return CLI_OK;
}

/* ---- vector ---- */

static const char *s_vector_help =
    "usage: stemma vector --db FILE -o VECTOR_FILE\n"
    "\n"
    "Writes the database's version vector (per origin, how many of its operations the\n"
    "database holds), for 'stemma changes --since' on the other side.\n"
    "\n"
    "  --db FILE          the database\n"
    "  -o, --output FILE  the vector file to write\n"
    "  -h, --help         this help\n";

int cmd_vector(int argc, char **argv)
{
    static const struct option options[] = {{"db", required_argument, NULL, 'd'},
                                            {"output", required_argument, NULL, 'o'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL, *output = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:d:o:h", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            fputs(s_vector_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("vector", argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error("vector", "unexpected argument '%s'", argv[optind]);
    if (!db || !output)
        return cli_usage_error("vector", "--db FILE and -o VECTOR_FILE are required");
    stm_error err = {0};
    store_t *store = NULL;
    vector_t *v = NULL;
    stm_err rc = cli_open_db(db, &store, &err);
    if (rc == STM_OK)
        rc = stm_vector_read(store, &v, &err);
    if (rc == STM_OK)
        rc = stm_bundle_write_vector(v, output, &err);
    size_t n = v ? stm_vector_count(v) : 0;
    stm_vector_destroy(&v);
    stm_store_destroy(&store);
    if (rc != STM_OK)
        return cli_fail("vector", &err);
    printf("wrote a vector of %zu origin%s to %s\n", n, n == 1 ? "" : "s", output);
    return CLI_OK;
}

/* ---- apply ---- */

static const char *s_apply_help =
    "usage: stemma apply --db FILE [--schemas DIR [--layout NAME]]\n"
    "                    [--node DIR [--writer HISTORY]] [--max-clock-ahead MS] [--quiet]\n"
    "                    BUNDLE\n"
    "\n"
    "Applies a bundle written by 'stemma changes': last writer wins per cell, deletes\n"
    "win over older writes. Operations on tables or columns this database does not have\n"
    "(they came from a newer or divergent schema), on columns of another type, or that\n"
    "a constraint refuses are parked, never dropped, and replay after 'stemma migrate'.\n"
    "The whole bundle is checked before anything is applied, and it is applied in one\n"
    "transaction: a truncated or damaged bundle, or a failure half way, changes\n"
    "nothing. Prints how many operations were applied, already present, parked and\n"
    "replayed.\n"
    "\n"
    "An operation whose clock is more than --max-clock-ahead ahead of this machine's\n"
    "clock (its writer's clock is wrong) is parked too, and applies at a later apply,\n"
    "once this machine's clock has caught up.\n"
    "\n"
    "Without --node every operation is let through as under [policy] \"full\"; with it,\n"
    "the node's [policy] judges each by the version its writer was at, as the node does\n"
    "(an operation of a version neither the schema set nor --writer describes is parked\n"
    "until the node meets a peer that does). What a policy parked is retried only under\n"
    "a policy: by the node, or an apply with --node.\n"
    "\n"
    "  --db FILE                the database\n"
    "  --schemas DIR            its schema set: operations written at another version of\n"
    "                           it apply to the columns that hold what theirs held there\n"
    "                           (renamed, rebuilt, tables renamed: history --lenses)\n"
    "                           instead of parking\n"
    "  --layout NAME            how DIR names its migrations: stemma, flyway, diesel,\n"
    "                           sqlx, dbmate, goose or golang-migrate (default: found\n"
    "                           from its files)\n"
    "  --node DIR               judge by the [policy] of DIR/node.toml (its schemas and\n"
    "                           layout when --schemas is not given)\n"
    "  --writer HISTORY         with --node: the schema history the bundle's writer is\n"
    "                           on (a directory or an exported file), which describes\n"
    "                           its versions to the policy\n"
    "  --max-clock-ahead MS     how far ahead of this machine's clock an operation's\n"
    "                           clock may be, in milliseconds (default 600000: 10 min)\n"
    "  -q, --quiet              no progress line (on a terminal, how much of BUNDLE has\n"
    "                           been applied, and how many operations, as it goes)\n"
    "  -h, --help               this help\n";

static void s_warn(void *ctx, const char *message)
{
    (void)ctx;
    /* The message names the bundle's tables and columns: control characters in them
     * are shown as \xNN, not sent to the terminal. */
    buf_t line = BUF_INIT;
    stm_buf_put_printable(&line, message);
    fprintf(stderr, "stemma apply: warning: %s\n", stm_buf_str(&line));
    stm_buf_free(&line);
}

/* The database's lineage: the set's to the version store is at. STM_EINPUT when it is
 * at none of set's versions. The caller owns *out. */
static stm_err s_db_lineage(store_t *store, const lineage_t *set, const char *db, lineage_t **out,
                            stm_error *err)
{
    stm_id id;
    stm_err rc = stm_store_version_id(store, &id, err);
    for (size_t i = 0; rc == STM_OK && i < stm_lineage_count(set); i++)
        if (stm_id_equal(&stm_lineage_version_at(set, i)->id, &id)) {
            *out = stm_lineage_prefix(set, i + 1);
            return STM_OK;
        }
    return rc != STM_OK ? rc
                        : stm_error_set(err, STM_EINPUT,
                                        "%s: at no version of the schema set, so the policy "
                                        "cannot judge by it; give its --schemas",
                                        db);
}

/* The progress line of a bundle being applied (bundle_progress_fn). */
static void s_apply_progress(void *ctx, uint64_t read, uint64_t size, uint64_t ops)
{
    char count[32];
    cli_progress_count(ops, count);
    if (size && size != UINT64_MAX)
        cli_progress_show(ctx, false, "applying: %.0f%%, %s operations", 100.0 * (double)read /
                          (double)size, count);
    else
        cli_progress_show(ctx, false, "applying: %s operations", count);
}

int cmd_apply(int argc, char **argv)
{
    static const struct option options[] = {{"db", required_argument, NULL, 'd'},
                                            {"schemas", required_argument, NULL, 's'},
                                            {"layout", required_argument, NULL, 'L'},
                                            {"max-clock-ahead", required_argument, NULL, 'a'},
                                            {"node", required_argument, NULL, 'n'},
                                            {"writer", required_argument, NULL, 'w'},
                                            {"quiet", no_argument, NULL, 'q'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL, *schemas = NULL, *node = NULL, *writer = NULL;
    schemaset_layout layout = LAYOUT_AUTO;
    bool have_layout = false;
    long long max_ahead = APPLY_MAX_CLOCK_AHEAD_MS;
    bool quiet = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:s:L:a:n:w:qh", options, NULL)) != -1) {
        switch (c) {
        case 'q':
            quiet = true;
            break;
        case 'd':
            db = optarg;
            break;
        case 'n':
            node = optarg;
            break;
        case 'w':
            writer = optarg;
            break;
        case 's':
            schemas = optarg;
            break;
        case 'L':
            if (cli_parse_layout("apply", optarg, &layout) != CLI_OK)
                return CLI_BAD_INPUT;
            have_layout = true;
            break;
        case 'a': {
            char *end = NULL;
            errno = 0;
            max_ahead = strtoll(optarg, &end, 10);
            if (errno || end == optarg || *end || max_ahead < 0 ||
                max_ahead > APPLY_MAX_CLOCK_AHEAD_LIMIT_MS)
                return cli_usage_error("apply",
                                       "--max-clock-ahead must be milliseconds, 0 to %lld",
                                       (long long)APPLY_MAX_CLOCK_AHEAD_LIMIT_MS);
            break;
        }
        case 'h':
            fputs(s_apply_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("apply", argv[optind - 1], c);
        }
    }
    if (!db)
        return cli_usage_error("apply", "--db FILE is required");
    if (argc - optind != 1)
        return cli_usage_error("apply", "expected one BUNDLE, got %d", argc - optind);
    if (writer && !node)
        return cli_usage_error("apply", "--writer describes versions to a policy: give --node");
    if (have_layout && !schemas)
        return cli_usage_error("apply", "--layout goes with --schemas DIR");
    const char *bundle = argv[optind];
    stm_error err = {0};
    node_config cfg = {0};
    char *node_schemas = NULL;
    if (node) {
        if (stm_config_load(node, &cfg, &err) != STM_OK) {
            stm_config_destroy(&cfg);
            return cli_fail("apply", &err);
        }
        if (!schemas && cfg.schemas) {
            schemas = node_schemas = stm_config_resolve(&cfg, cfg.schemas);
            if (cfg.layout) /* checked when node.toml was read */
                (void)stm_layout_from_name(cfg.layout, &layout);
        }
    }
    lineage_t *set = NULL, *at = NULL, *theirs = NULL;
    lens_set_t *lenses = NULL, *their_lenses = NULL;
    store_t *store = NULL;
    admit_t *admit = NULL;
    stm_err rc = STM_OK;
    if (node && !schemas)
        rc = stm_error_set(&err, STM_EINPUT, "%s/node.toml names no schemas: give --schemas",
                           node);
    if (rc == STM_OK && schemas && (rc = cli_load_lineage(schemas, layout, &set, &err)) == STM_OK)
        rc = cli_load_lenses(schemas, layout, &lenses, &err);
    /* The writer's history stands for its HELLO: its lineage, and its lenses when it
     * has them (an export of an older stemma has none: nothing is translated then). */
    if (rc == STM_OK && writer &&
        (rc = cli_load_lineage(writer, LAYOUT_AUTO, &theirs, &err)) == STM_OK) {
        stm_error ignored = {0};
        if (cli_load_lenses(writer, LAYOUT_AUTO, &their_lenses, &ignored) != STM_OK)
            their_lenses = NULL;
    }
    if (rc == STM_OK)
        rc = cli_open_db(db, &store, &err);
    /* The policy judges by the database's version: its lineage from the set. */
    if (rc == STM_OK && node && (rc = s_db_lineage(store, set, db, &at, &err)) == STM_OK) {
        admit = stm_admit_new(&cfg.policy);
        stm_admit_set_local(admit, at, set, lenses);
        if (theirs) {
            wire_lenses said = {0};
            if (their_lenses)
                stm_wire_lenses_of(their_lenses, stm_lineage_count(theirs), &said);
            stm_admit_learn(admit, theirs, &said);
            stm_wire_lenses_clear(&said);
        }
    }
    stm_lineage_destroy(&theirs);
    stm_lens_destroy(&their_lenses);
    stm_config_destroy(&cfg);
    free(node_schemas);
    if (rc != STM_OK) {
        stm_store_destroy(&store);
        stm_lens_destroy(&lenses);
        stm_lineage_destroy(&set);
        return cli_fail("apply", &err);
    }
    applier_t *applier = stm_applier_new(store, s_warn, NULL);
    stm_applier_set_lenses(applier, lenses, set);
    if (admit) {
        stm_applier_set_filter(applier, stm_admit_filter, admit);
        stm_applier_set_branches(applier, stm_admit_branch, admit);
    }
    stm_applier_set_max_clock_ahead(applier, max_ahead);
    apply_stats stats = {0};
    bundle_info info;
    /* A replay a migration left unfinished first (killed, disk full): it is owed. */
    bool owed = false;
    rc = stm_applier_replay_owed(applier, &stats, &owed, &err);
    /* One transaction for the whole bundle: all of it is applied, or none. */
    /* Under a policy, what a policy parked is judged again (the policy may be new). */
    if (rc == STM_OK && admit)
        rc = stm_applier_retry_policy(applier, &stats, &err);
    cli_progress line;
    cli_progress_init(&line, quiet);
    if (rc == STM_OK)
        rc = stm_bundle_apply_watched(applier, bundle, s_apply_progress, &line, &stats, &info,
                                      &err);
    cli_progress_clear(&line);
    uint64_t total = 0, parked = 0;
    if (rc == STM_OK)
        rc = stm_oplog_counts(store, &total, &parked, &err);
    stm_applier_destroy(&applier);
    stm_admit_destroy(&admit);
    stm_store_destroy(&store);
    stm_lens_destroy(&lenses);
    stm_lineage_destroy(&at);
    stm_lineage_destroy(&set);
    if (rc != STM_OK)
        return cli_fail("apply", &err);
    printf("applied %llu, already present %llu, parked %llu, replayed %llu (%llu parked in all)\n",
           (unsigned long long)stats.applied, (unsigned long long)stats.present,
           (unsigned long long)stats.parked, (unsigned long long)stats.replayed,
           (unsigned long long)parked);
    if (stats.withheld)
        printf("withheld %llu operation%s: their row changes were too large to travel, and "
               "stand-ins came in their place (the warnings above name them)\n",
               (unsigned long long)stats.withheld, stats.withheld == 1 ? "" : "s");
    if (stats.pruned)
        printf("pruned %llu operation%s: the database the bundle came from had compacted them, "
               "and the later writes of their cells came instead\n",
               (unsigned long long)stats.pruned, stats.pruned == 1 ? "" : "s");
    return CLI_OK;
}
