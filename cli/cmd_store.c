/* cmd_store.c - the commands that change or inspect a device's database: migrate,
 * status, rollback, restore. The work is sync/migrate's and sync/backup's; this file
 * parses options and formats reports (migrate_text.h those of migrate and rollback). */
#include "cli.h"
#include "commands.h"
#include "migrate_text.h"
#include "unsynced_text.h"
#include "base/buf.h"
#include "base/jsonw.h"
#include "base/mem.h"
#include "sync/backup.h"
#include "sync/migrate.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses a version number for --to: decimal digits only, 0 up to the schema-set limit. */
static int s_parse_version(const char *arg, int *out)
{
    if (!*arg || strspn(arg, "0123456789") != strlen(arg))
        return 0;
    errno = 0;
    long v = strtol(arg, NULL, 10);
    if (errno || v > SCHEMASET_MAX_VERSIONS)
        return 0;
    *out = (int)v;
    return 1;
}

/* ---- migrate ---- */

static const char *s_migrate_help =
    "usage: stemma migrate --db FILE --schemas DIR [--layout NAME] [--to N] [--dry-run]\n"
    "                      [--no-backup] [--exclude TABLE]...\n"
    "                      [--baseline [--baseline-version N]] [--quiet]\n"
    "\n"
    "Brings the database FILE to version N of the schema set DIR (default: its newest),\n"
    "applying each pending migration in its own transaction and recording it in the\n"
    "schema_version table with its version id and checksum. FILE is created when it\n"
    "does not exist. Every migration is first run on an in-memory database, so bad SQL\n"
    "is refused before FILE is touched. After each migration stemma sets up the\n"
    "triggers that capture changes for sync. Last, it names every table of the version\n"
    "reached that it does not sync, each with why (no primary key, a key of more than\n"
    "32 columns, a virtual table, excluded), the database's own tables outside the\n"
    "schema set included; a dry run names those of the target.\n"
    "\n"
    "Before the first change FILE is copied, with SQLite's online backup API, to\n"
    "FILE.vFROM-YYYYMMDDTHHMMSSZ.bak beside it, and the copy's path is printed\n"
    "('stemma restore' puts it back). A schema_version table made by an older tool\n"
    "(version, applied_at, description) is adopted: its versions are checked against\n"
    "DIR and stemma's columns added.\n"
    "\n"
    "A FILE with no schema_version that holds tables of DIR was made without stemma:\n"
    "migrate refuses it, unless given --baseline. Then stemma finds the version whose\n"
    "schema FILE has exactly (tables, columns, types, keys, as the migrations make\n"
    "them), records versions 1 to N in schema_version as if it had applied them, sets\n"
    "up capture, makes every row FILE holds an operation (clocked so that any later\n"
    "write beats it: the first sync carries the rows to the other devices), and\n"
    "migrates on. When the schema is no version's, it names each table and column that\n"
    "differs from the closest version; when several versions have that schema (one\n"
    "that changed only data), it names them, and --baseline-version N says which.\n"
    "\n"
    "migrate refuses, changing nothing, when a migration file changed since it was\n"
    "applied (its checksum differs), FILE holds versions DIR lacks, or FILE's tables\n"
    "and columns are not those of its version; 'stemma status' lists every such\n"
    "problem. A failing migration is rolled back: FILE stays at the version before\n"
    "it, and the message names the file, line and statement.\n"
    "\n"
    "  --db FILE        the application's SQLite database\n"
    "  --schemas DIR    the directory of numbered migrations (NNN_description.sql)\n"
    "  --layout NAME    how DIR names its migrations: stemma, flyway, diesel, sqlx,\n"
    "                   dbmate, goose or golang-migrate (default: found from its files)\n"
    "  --to N           stop at version N (going back is 'stemma rollback')\n"
    "  --dry-run        print what would run, with its SQL, and the drift check, and\n"
    "                   run the migrations on a private copy of FILE, so that a\n"
    "                   migration FILE's rows would make fail (a UNIQUE index they\n"
    "                   break, say) is refused as the run would refuse it; FILE is left\n"
    "                   byte for byte as it was (and not created)\n"
    "  --no-backup      do not copy FILE first\n"
    "  --exclude TABLE  keep TABLE out of sync (repeatable); kept in the database\n"
    "  --baseline       take over a FILE made without stemma at the version its\n"
    "                   schema is (no effect on a FILE with schema_version)\n"
    "  --baseline-version N\n"
    "                   ... at version N, which its schema must be too (implies\n"
    "                   --baseline)\n"
    "  -q, --quiet      no progress line (on a terminal, a step running over a second\n"
    "                   shows its time and the rows it has written so far)\n"
    "  -h, --help       this help\n"
    "\n"
    "Exit status: 0 done or nothing to do, 2 bad usage or bad input (drift, a failing\n"
    "migration), 1 any other failure.\n";

int cmd_migrate(int argc, char **argv)
{
    static const struct option options[] = {{"db", required_argument, NULL, 'd'},
                                            {"schemas", required_argument, NULL, 's'},
                                            {"to", required_argument, NULL, 't'},
                                            {"dry-run", no_argument, NULL, 'n'},
                                            {"no-backup", no_argument, NULL, 'B'},
                                            {"exclude", required_argument, NULL, 'x'},
                                            {"baseline", no_argument, NULL, 'b'},
                                            {"baseline-version", required_argument, NULL, 'V'},
                                            {"layout", required_argument, NULL, 'L'},
                                            {"quiet", no_argument, NULL, 'q'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL, *schemas = NULL;
    schemaset_layout layout = LAYOUT_AUTO;
    migrate_options opts = MIGRATE_OPTIONS_INIT;
    bool dry_run = false, quiet = false;
    const char **exclude = NULL;
    size_t nexclude = 0, exclude_cap = 0;
    int c, code = CLI_OK;
    opterr = 0;
    while (code == CLI_OK &&
           (c = getopt_long(argc, argv, "+:d:s:L:t:nBx:bV:qh", options, NULL)) != -1) {
        switch (c) {
        case 'q':
            quiet = true;
            break;
        case 'd':
            db = optarg;
            break;
        case 's':
            schemas = optarg;
            break;
        case 'L':
            code = cli_parse_layout("migrate", optarg, &layout);
            break;
        case 't':
            if (!s_parse_version(optarg, &opts.to))
                code =
                    cli_usage_error("migrate", "--to must be a version number, not '%s'", optarg);
            break;
        case 'n':
            dry_run = true;
            break;
        case 'B':
            opts.backup = false;
            break;
        case 'b':
            opts.baseline = true;
            break;
        case 'V':
            if (!s_parse_version(optarg, &opts.baseline_version) || opts.baseline_version < 1)
                code = cli_usage_error("migrate", "--baseline-version must be a version number "
                                                  "from 1, not '%s'",
                                       optarg);
            opts.baseline = true;
            break;
        case 'x':
            exclude = stm_grow(exclude, &exclude_cap, nexclude + 1, sizeof *exclude);
            exclude[nexclude++] = optarg;
            break;
        case 'h':
            fputs(s_migrate_help, stdout);
            free(exclude);
            return CLI_OK;
        default:
            code = cli_bad_option("migrate", argv[optind - 1], c);
        }
    }
    if (code == CLI_OK && optind < argc)
        code = cli_usage_error("migrate", "unexpected argument '%s'", argv[optind]);
    else if (code == CLI_OK && (!db || !schemas))
        code = cli_usage_error("migrate", "--db FILE and --schemas DIR are required");
    if (code != CLI_OK) {
        free(exclude);
        return code;
    }
    opts.exclude = exclude;
    opts.nexclude = nexclude;
    stm_error err = {0};
    migrate_t *m = NULL;
    stm_err rc = cli_migrate_open(db, schemas, layout, &m, &err);
    if (rc == STM_OK)
        rc = dry_run ? migrate_text_plan(m, &opts, MIGRATE_UP, stdout, &err)
                     : migrate_text_run(m, &opts, MIGRATE_UP, stdout, quiet, &err);
    if (rc != STM_OK)
        code = cli_fail("migrate", &err);
    if (rc != STM_OK && m)
        migrate_text_baseline_diffs(m, &opts, stderr);
    stm_migrate_destroy(&m);
    free(exclude);
    return code;
}

/* ---- status ---- */

static const char *s_status_help =
    "usage: stemma status --db FILE --schemas DIR [--layout NAME] [--format text|json]\n"
    "\n"
    "Says which version of the schema set DIR the database FILE is at (number and\n"
    "id), which migrations are pending, and any drift: a migration file changed since\n"
    "it was applied, a version FILE holds that DIR lacks, or tables and columns that\n"
    "are not those of FILE's version (a down file that did not undo its migration, a\n"
    "change by hand; tables DIR never had are the application's own and not counted).\n"
    "'stemma migrate' refuses to run until drift is resolved. Then the tables of that\n"
    "version stemma syncs, and every one it does not, each with why: no primary key,\n"
    "a key of more than 32 columns, a virtual table (and the tables its module keeps),\n"
    "or excluded; FILE's own tables, which no migration of DIR made, are named too. A\n"
    "FILE made without stemma (no schema_version, tables of DIR) is said to be so,\n"
    "with the version its schema is, the versions it cannot tell apart, or how it\n"
    "differs from the closest ('stemma migrate --baseline'). Nothing is written; a\n"
    "FILE that does not exist is reported at version 0 with everything pending, and is\n"
    "not created.\n"
    "\n"
    "  --db FILE       the application's SQLite database\n"
    "  --schemas DIR   the directory of numbered migrations\n"
    "  --layout NAME   how DIR names its migrations: stemma, flyway, diesel, sqlx,\n"
    "                  dbmate, goose or golang-migrate (default: found from its files)\n"
    "  --format F      text (default) or json\n"
    "  -h, --help      this help\n"
    "\n"
    "JSON carries database, exists, schemas, version, id (null at version 0), head\n"
    "({version, id}), pending ([{version, file, description}]), drift (messages),\n"
    "prepared (stemma's tables are present), adopt (schema_version was made by an\n"
    "older tool and will be adopted), untracked (made without stemma), baseline (null,\n"
    "or {versions, closest, differences}), synced (the tables synced, by name), unsynced\n"
    "([{table, kind, reason, in_schema_set}]: kind is no_key, wide_key, collation,\n"
    "virtual, excluded or uncaptured, reason the words; a virtual table's shadow_tables\n"
    "the pattern of its module's tables) and keys_per_device.\n"
    "\n"
    "Exit status: 0 whatever was found, 2 bad usage or bad input, 1 otherwise.\n";

static char *s_hex(const stm_id *id)
{
    char *hex = stm_malloc(STM_ID_HEX_LEN + 1);
    stm_id_to_hex(id, hex);
    return hex;
}

/* The origin of the database's own operations (sync/origin.h), read without writing;
 * false when it has none yet (not set up). */
static bool s_origin(const migrate_t *m, stm_id *out)
{
    if (!stm_migrate_is_prepared(m))
        return false;
    store_t *store = NULL;
    bool ok = stm_store_open(stm_migrate_db_path(m), STORE_OPEN_READONLY, &store, NULL) ==
                  STM_OK &&
              stm_store_node_id(store, out, NULL) == STM_OK;
    stm_store_destroy(&store);
    return ok;
}

/* The status as text; NULL, err set, when the database cannot be read. */
static char *s_status_text(migrate_t *m, stm_error *err)
{
    buf_t b = BUF_INIT;
    const lineage_t *l = stm_migrate_lineage(m);
    const schemaset_t *set = stm_migrate_schemaset(m);
    int version = stm_migrate_version(m);
    stm_id id;
    char sid[STM_ID_SHORT_LEN + 1];
    if (!stm_migrate_db_exists(m)) {
        stm_buf_printf(&b, "database  %s: does not exist yet (version 0)\n",
                       stm_migrate_db_path(m));
    } else if (stm_migrate_untracked(m)) {
        stm_buf_printf(&b,
                       "database  %s: no schema_version, yet tables of the schema set (made "
                       "without stemma)\n",
                       stm_migrate_db_path(m));
    } else if (stm_migrate_version_id(m, &id)) {
        stm_id_short(&id, sid);
        stm_buf_printf(&b, "database  %s: version %d, id %s\n", stm_migrate_db_path(m), version,
                       sid);
    } else {
        stm_buf_printf(&b, "database  %s: version %d\n", stm_migrate_db_path(m), version);
    }
    const lineage_version *head = stm_lineage_head(l);
    if (head) {
        stm_id_short(&head->id, sid);
        stm_buf_printf(&b, "schemas   %s: %zu migration%s, head v%d %s\n", stm_schemaset_dir(set),
                       stm_lineage_count(l), stm_lineage_count(l) == 1 ? "" : "s", head->number,
                       sid);
    } else {
        stm_buf_printf(&b, "schemas   %s: no migrations\n", stm_schemaset_dir(set));
    }
    size_t count = stm_lineage_count(l);
    size_t npending = (size_t)version < count ? count - (size_t)version : 0;
    stm_buf_printf(&b, "pending   %zu\n", npending);
    for (size_t i = (size_t)version; i < count; i++) {
        const schemaset_migration *mg = stm_schemaset_at(set, i);
        stm_buf_printf(&b, "  v%d  %s/%s  %s\n", mg->number, stm_schemaset_dir(set), mg->file,
                       mg->description);
    }
    if (stm_migrate_drift_count(m) == 0) {
        stm_buf_puts(&b, "drift     none\n");
    } else {
        stm_buf_printf(&b, "drift     %zu problem%s; 'stemma migrate' refuses until resolved\n",
                       stm_migrate_drift_count(m), stm_migrate_drift_count(m) == 1 ? "" : "s");
        for (size_t i = 0; i < stm_migrate_drift_count(m); i++)
            stm_buf_printf(&b, "  %s\n", stm_migrate_drift_at(m, i));
    }
    if (migrate_text_baseline_status(m, &b, NULL, err) != STM_OK) {
        stm_buf_free(&b);
        return NULL;
    }
    stm_buf_printf(&b, "capture   %s\n",
                   stm_migrate_is_prepared(m) ? "set up (stemma's tables and triggers are present)"
                                              : "not set up ('stemma migrate' sets it up)");
    stm_id origin;
    if (s_origin(m, &origin)) {
        stm_id_short(&origin, sid);
        stm_buf_printf(&b, "origin    %s (its own operations carry it; a copy or a restore "
                           "takes a new one)\n",
                       sid);
    }
    char **synced = NULL;
    size_t nsynced = stm_migrate_synced(m, &synced);
    stm_buf_printf(&b, "synced    %zu table%s%s", nsynced, nsynced == 1 ? "" : "s",
                   nsynced ? ": " : "\n");
    for (size_t i = 0; i < nsynced; i++) {
        stm_buf_printf(&b, "%s%s", i ? ", " : "", synced[i]);
        /* Captured by the same rule, but made outside the migrations: said, so that
         * no table syncs unnoticed either. */
        if (!stm_lineage_family_find(l, synced[i]))
            stm_buf_puts(&b, " (not in the schema set)");
    }
    if (nsynced)
        stm_buf_putc(&b, '\n');
    stm_syncable_names_free(synced, nsynced);
    syncable_table *unsynced = NULL;
    size_t nunsynced = stm_migrate_unsynced(m, &unsynced);
    if (nunsynced)
        stm_buf_printf(&b, "unsynced  %zu table%s\n", nunsynced, nunsynced == 1 ? "" : "s");
    else
        stm_buf_puts(&b, "unsynced  none\n");
    unsynced_text_lines(&b, "  ", unsynced, nunsynced);
    stm_syncable_tables_free(unsynced, nunsynced);
    char **per_device = NULL;
    size_t nper_device = stm_migrate_per_device(m, &per_device);
    if (nper_device) {
        stm_buf_printf(&b, "keys      chosen per device in %zu table%s: ", nper_device,
                       nper_device == 1 ? "" : "s");
        unsynced_text_names(&b, per_device, nper_device);
        stm_buf_puts(&b, "\n  " UNSYNCED_TEXT_PER_DEVICE "\n");
    }
    stm_syncable_names_free(per_device, nper_device);
    if (stm_migrate_needs_adoption(m))
        stm_buf_puts(&b, "note      schema_version was made by an older tool; 'stemma migrate' "
                         "will adopt it\n");
    return stm_buf_detach(&b);
}

/* "key": [names...] */
static void s_json_names(jsonw_t *w, const char *key, char *const *names, size_t n)
{
    stm_jsonw_key(w, key);
    stm_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++)
        stm_jsonw_string(w, names[i]);
    stm_jsonw_array_end(w);
}

/* The status as JSON; NULL, err set, when the database cannot be read. */
static char *s_status_json(migrate_t *m, stm_error *err)
{
    buf_t b = BUF_INIT;
    jsonw_t w;
    stm_jsonw_init(&w, &b, true);
    const lineage_t *l = stm_migrate_lineage(m);
    const schemaset_t *set = stm_migrate_schemaset(m);
    int version = stm_migrate_version(m);
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "database");
    stm_jsonw_string(&w, stm_migrate_db_path(m));
    stm_jsonw_key(&w, "exists");
    stm_jsonw_bool(&w, stm_migrate_db_exists(m));
    stm_jsonw_key(&w, "schemas");
    stm_jsonw_string(&w, stm_schemaset_dir(set));
    stm_jsonw_key(&w, "version");
    stm_jsonw_int(&w, version);
    stm_id id;
    char *hex = stm_migrate_version_id(m, &id) ? s_hex(&id) : NULL;
    stm_jsonw_key(&w, "id");
    stm_jsonw_string(&w, hex);
    free(hex);
    const lineage_version *head = stm_lineage_head(l);
    stm_jsonw_key(&w, "head");
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "version");
    stm_jsonw_int(&w, head ? head->number : 0);
    hex = head ? s_hex(&head->id) : NULL;
    stm_jsonw_key(&w, "id");
    stm_jsonw_string(&w, hex);
    free(hex);
    stm_jsonw_object_end(&w);
    stm_jsonw_key(&w, "pending");
    stm_jsonw_array_begin(&w);
    for (size_t i = (size_t)version; i < stm_lineage_count(l); i++) {
        const schemaset_migration *mg = stm_schemaset_at(set, i);
        buf_t path = BUF_INIT;
        stm_buf_printf(&path, "%s/%s", stm_schemaset_dir(set), mg->file);
        stm_jsonw_object_begin(&w);
        stm_jsonw_key(&w, "version");
        stm_jsonw_int(&w, mg->number);
        stm_jsonw_key(&w, "file");
        stm_jsonw_string(&w, stm_buf_str(&path));
        stm_jsonw_key(&w, "description");
        stm_jsonw_string(&w, mg->description);
        stm_jsonw_object_end(&w);
        stm_buf_free(&path);
    }
    stm_jsonw_array_end(&w);
    stm_jsonw_key(&w, "drift");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < stm_migrate_drift_count(m); i++)
        stm_jsonw_string(&w, stm_migrate_drift_at(m, i));
    stm_jsonw_array_end(&w);
    stm_jsonw_key(&w, "prepared");
    stm_jsonw_bool(&w, stm_migrate_is_prepared(m));
    stm_id origin;
    stm_jsonw_key(&w, "origin");
    if (s_origin(m, &origin)) {
        char *origin_hex = s_hex(&origin);
        stm_jsonw_string(&w, origin_hex);
        free(origin_hex);
    } else {
        stm_jsonw_null(&w);
    }
    stm_jsonw_key(&w, "adopt");
    stm_jsonw_bool(&w, stm_migrate_needs_adoption(m));
    stm_jsonw_key(&w, "untracked");
    stm_jsonw_bool(&w, stm_migrate_untracked(m));
    if (migrate_text_baseline_status(m, NULL, &w, err) != STM_OK) {
        stm_buf_free(&b);
        return NULL;
    }
    char **synced = NULL;
    size_t nsynced = stm_migrate_synced(m, &synced);
    s_json_names(&w, "synced", synced, nsynced);
    stm_syncable_names_free(synced, nsynced);
    syncable_table *unsynced = NULL;
    size_t nunsynced = stm_migrate_unsynced(m, &unsynced);
    stm_jsonw_key(&w, "unsynced");
    unsynced_text_json(&w, unsynced, nunsynced);
    stm_syncable_tables_free(unsynced, nunsynced);
    char **per_device = NULL;
    size_t nper_device = stm_migrate_per_device(m, &per_device);
    s_json_names(&w, "keys_per_device", per_device, nper_device);
    stm_syncable_names_free(per_device, nper_device);
    stm_jsonw_object_end(&w);
    return stm_buf_detach(&b);
}

int cmd_status(int argc, char **argv)
{
    static const struct option options[] = {{"db", required_argument, NULL, 'd'},
                                            {"schemas", required_argument, NULL, 's'},
                                            {"layout", required_argument, NULL, 'L'},
                                            {"format", required_argument, NULL, 'f'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL, *schemas = NULL;
    schemaset_layout layout = LAYOUT_AUTO;
    cli_format format = CLI_FORMAT_TEXT;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:d:s:L:f:h", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 's':
            schemas = optarg;
            break;
        case 'L':
            if (cli_parse_layout("status", optarg, &layout) != CLI_OK)
                return CLI_BAD_INPUT;
            break;
        case 'f':
            if (!cli_parse_format(optarg, 3u, &format))
                return cli_usage_error("status", "--format must be text or json, not '%s'", optarg);
            break;
        case 'h':
            fputs(s_status_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("status", argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
    if (!db || !schemas)
        return cli_usage_error("status", "--db FILE and --schemas DIR are required");
    stm_error err = {0};
    migrate_t *m = NULL;
    if (cli_migrate_open(db, schemas, layout, &m, &err) != STM_OK)
        return cli_fail("status", &err);
    char *text = format == CLI_FORMAT_JSON ? s_status_json(m, &err) : s_status_text(m, &err);
    stm_migrate_destroy(&m);
    stm_err rc = text ? cli_write_output(NULL, text, &err) : err.code;
    free(text);
    return rc == STM_OK ? CLI_OK : cli_fail("status", &err);
}

/* ---- rollback ---- */

static const char *s_rollback_help =
    "usage: stemma rollback --db FILE --schemas DIR --to N [--layout NAME] [--dry-run]\n"
    "                       [--no-backup] [--quiet]\n"
    "\n"
    "Takes the database FILE back to version N by running the rollback files of DIR\n"
    "(NNN_description.down.sql, or where DIR's layout keeps them: Flyway's undo files,\n"
    "Diesel's down.sql, a goose or dbmate file's Down section) from its current version\n"
    "down to N + 1, each in its own transaction, after copying FILE to\n"
    "FILE.vFROM-YYYYMMDDTHHMMSSZ.bak (the path is printed). Before changing anything it\n"
    "checks that there is no drift, that every rollback file is there (naming the first\n"
    "one missing), and, on an in-memory copy of the schema, that each runs and leaves\n"
    "the schema the migrations make for the version below it (naming the file and what\n"
    "differs: a column, a table, an index, a constraint, a trigger, a view; column\n"
    "order aside). The values of the columns and tables a rollback drops are kept as\n"
    "parked operations, and come back when a migration adds them again.\n"
    "\n"
    "  --db FILE       the application's SQLite database\n"
    "  --schemas DIR   the directory of numbered migrations and their .down.sql files\n"
    "  --layout NAME   how DIR names its migrations: stemma, flyway, diesel, sqlx,\n"
    "                  dbmate, goose or golang-migrate (default: found from its files)\n"
    "  --to N          the version to go back to (0: before the first migration)\n"
    "  --dry-run       print what would run, with its SQL; change nothing\n"
    "  --no-backup     do not copy FILE first\n"
    "  -q, --quiet     no progress line (on a terminal, a step running over a second\n"
    "                  shows its time and the rows it has written so far)\n"
    "  -h, --help      this help\n"
    "\n"
    "Exit status: 0 done or nothing to do, 2 bad usage or bad input, 1 otherwise.\n";

int cmd_rollback(int argc, char **argv)
{
    static const struct option options[] = {{"db", required_argument, NULL, 'd'},
                                            {"schemas", required_argument, NULL, 's'},
                                            {"to", required_argument, NULL, 't'},
                                            {"dry-run", no_argument, NULL, 'n'},
                                            {"no-backup", no_argument, NULL, 'B'},
                                            {"layout", required_argument, NULL, 'L'},
                                            {"quiet", no_argument, NULL, 'q'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL, *schemas = NULL;
    schemaset_layout layout = LAYOUT_AUTO;
    migrate_options opts = MIGRATE_OPTIONS_INIT;
    bool have_to = false, dry_run = false, quiet = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:d:s:L:t:nBqh", options, NULL)) != -1) {
        switch (c) {
        case 'q':
            quiet = true;
            break;
        case 'd':
            db = optarg;
            break;
        case 's':
            schemas = optarg;
            break;
        case 'L':
            if (cli_parse_layout("rollback", optarg, &layout) != CLI_OK)
                return CLI_BAD_INPUT;
            break;
        case 't':
            if (!s_parse_version(optarg, &opts.to))
                return cli_usage_error("rollback", "--to must be a version number, not '%s'",
                                       optarg);
            have_to = true;
            break;
        case 'n':
            dry_run = true;
            break;
        case 'B':
            opts.backup = false;
            break;
        case 'h':
            fputs(s_rollback_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("rollback", argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error("rollback", "unexpected argument '%s'", argv[optind]);
    if (!db || !schemas || !have_to)
        return cli_usage_error("rollback", "--db FILE, --schemas DIR and --to N are required");
    stm_error err = {0};
    migrate_t *m = NULL;
    int code = CLI_OK;
    stm_err rc = cli_migrate_open(db, schemas, layout, &m, &err);
    if (rc == STM_OK)
        rc = dry_run ? migrate_text_plan(m, &opts, MIGRATE_DOWN, stdout, &err)
                     : migrate_text_run(m, &opts, MIGRATE_DOWN, stdout, quiet, &err);
    if (rc != STM_OK)
        code = cli_fail("rollback", &err);
    stm_migrate_destroy(&m);
    return code;
}

/* ---- restore ---- */

static const char *s_restore_help =
    "usage: stemma restore --db FILE --from BACKUP\n"
    "\n"
    "Puts a backup made by 'stemma migrate' or 'stemma rollback' (or any SQLite\n"
    "database) back as the database FILE. BACKUP must open as SQLite and pass\n"
    "PRAGMA integrity_check. FILE as it is now is first copied to\n"
    "FILE.vN-YYYYMMDDTHHMMSSZ.bak, whose path is printed, so nothing is lost. The copy\n"
    "uses SQLite's backup API, so an application holding FILE open sees the restored\n"
    "content, never a half-written file.\n"
    "\n"
    "  --db FILE       the database to restore (created when missing)\n"
    "  --from BACKUP   the backup to restore from\n"
    "  -h, --help      this help\n"
    "\n"
    "Exit status: 0 restored, 2 bad usage or a bad backup, 1 otherwise.\n";

int cmd_restore(int argc, char **argv)
{
    static const struct option options[] = {{"db", required_argument, NULL, 'd'},
                                            {"from", required_argument, NULL, 'f'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL, *from = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:d:f:h", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'f':
            from = optarg;
            break;
        case 'h':
            fputs(s_restore_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("restore", argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error("restore", "unexpected argument '%s'", argv[optind]);
    if (!db || !from)
        return cli_usage_error("restore", "--db FILE and --from BACKUP are required");
    stm_error err = {0};
    backup_restored r;
    stm_err rc = stm_backup_restore(db, from, &r, &err);
    /* The copy of what was replaced is named even when the restore then failed. */
    if (r.saved_path)
        printf("backup of the database as it was: %s\n", r.saved_path);
    if (rc == STM_OK)
        printf("restored %s from %s: now at version %d\n", db, from, r.version);
    if (rc == STM_OK && r.new_origin)
        printf("its writes from now on carry a new origin, so that none is mistaken for one "
               "its peers hold already\n");
    stm_backup_restored_free(&r);
    if (rc != STM_OK)
        return cli_fail("restore", &err);
    return CLI_OK;
}
