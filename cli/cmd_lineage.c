/* cmd_lineage.c - the commands that read schema histories: history and export (compare
 * is cmd_compare.c). */
#include "cli.h"
#include "lens_text.h"
#include "commands.h"
#include "base/buf.h"
#include "lineage/export.h"
#include "base/jsonw.h"
#include "base/mem.h"
#include "toml/toml.h"
#include "sync/migrate.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* ---- history ---- */

static const char *s_history_help =
    "usage: stemma history --schemas DIR [--layout NAME] [--lenses]\n"
    "                      [--format text|json|toml]\n"
    "       stemma history --db FILE [--format text|json|toml]\n"
    "\n"
    "With --schemas, lists the versions of a schema set: number, id and description.\n"
    "The migrations are run on an in-memory database to check them; nothing is written.\n"
    "\n"
    "With --db, lists the versions applied to a database (its schema_version table):\n"
    "number, when it was applied (UTC), id and description. The file is only read.\n"
    "\n"
    "  --schemas DIR   the directory of numbered migrations (NNN_description.sql),\n"
    "                  or a file written by 'stemma export'\n"
    "  --layout NAME   how DIR names its migrations: stemma, flyway, diesel, sqlx,\n"
    "                  dbmate, goose or golang-migrate (default: found from its files)\n"
    "  --db FILE       an application's SQLite database (give one of --schemas, --db)\n"
    "  --lenses        with --schemas DIR, under each version what its migration does to\n"
    "                  the data already there: columns renamed (or carried through a\n"
    "                  rebuilt or renamed table), cast, filled, computed, added, dropped;\n"
    "                  found by running each migration on marked rows (text, json)\n"
    "  --format F      text (default), json or toml\n"
    "  -h, --help      this help\n";

static char *s_history_text(const lineage_t *l, const lens_set_t *lenses)
{
    buf_t b = BUF_INIT;
    const lineage_version *head = stm_lineage_head(l);
    if (!head) {
        stm_buf_printf(&b, "schema set %s: no migrations\n", stm_lineage_name(l));
        return stm_buf_detach(&b);
    }
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&head->id, hex);
    stm_buf_printf(&b, "schema set %s: %zu version%s, head v%d %s\n\n", stm_lineage_name(l),
                   stm_lineage_count(l), stm_lineage_count(l) == 1 ? "" : "s", head->number, hex);
    int width = snprintf(NULL, 0, "v%d", head->number);
    for (size_t i = 0; i < stm_lineage_count(l); i++) {
        const lineage_version *v = stm_lineage_version_at(l, i);
        char id[STM_ID_SHORT_LEN + 1];
        stm_id_short(&v->id, id);
        char num[16];
        snprintf(num, sizeof num, "v%d", v->number);
        stm_buf_printf(&b, "  %-*s  %s  %s\n", width, num, id, v->description);
        if (lenses)
            cli_lens_text(&b, lenses, v->number);
    }
    return stm_buf_detach(&b);
}

static char *s_history_json(const lineage_t *l, const lens_set_t *lenses)
{
    buf_t b = BUF_INIT;
    jsonw_t w;
    stm_jsonw_init(&w, &b, true);
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "schema_set");
    stm_jsonw_string(&w, stm_lineage_name(l));
    stm_jsonw_key(&w, "versions");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < stm_lineage_count(l); i++) {
        const lineage_version *v = stm_lineage_version_at(l, i);
        stm_jsonw_object_begin(&w);
        stm_jsonw_key(&w, "number");
        stm_jsonw_int(&w, v->number);
        cli_json_id(&w, "id", &v->id);
        cli_json_id(&w, "parent", &v->parent);
        stm_jsonw_key(&w, "description");
        stm_jsonw_string(&w, v->description);
        cli_json_id(&w, "checksum", &v->checksum);
        if (lenses)
            cli_lens_json(&w, lenses, v->number);
        stm_jsonw_object_end(&w);
    }
    stm_jsonw_array_end(&w);
    stm_jsonw_object_end(&w);
    return stm_buf_detach(&b);
}

static void s_toml_id(toml_value *t, const char *key, const stm_id *id)
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(id, hex);
    stm_toml_table_set(t, key, stm_toml_new_string(hex, STM_ID_HEX_LEN));
}

static char *s_history_toml(const lineage_t *l)
{
    toml_value *root = stm_toml_new_table();
    stm_toml_table_set(root, "schema_set",
                       stm_toml_new_string(stm_lineage_name(l), strlen(stm_lineage_name(l))));
    toml_value *versions = stm_toml_new_array();
    for (size_t i = 0; i < stm_lineage_count(l); i++) {
        const lineage_version *v = stm_lineage_version_at(l, i);
        toml_value *t = stm_toml_new_table();
        stm_toml_table_set(t, "number", stm_toml_new_integer(v->number));
        s_toml_id(t, "id", &v->id);
        s_toml_id(t, "parent", &v->parent);
        stm_toml_table_set(t, "description",
                           stm_toml_new_string(v->description, strlen(v->description)));
        s_toml_id(t, "checksum", &v->checksum);
        stm_toml_array_push(versions, t);
    }
    stm_toml_table_set(root, "versions", versions);
    char *text = stm_toml_emit(root, NULL);
    stm_toml_destroy(&root);
    return text;
}

/* The applied versions of a database, for people. */
static char *s_db_history_text(const char *db, const migrate_record *r, size_t n)
{
    buf_t b = BUF_INIT;
    if (n == 0) {
        stm_buf_printf(&b, "database %s: no migrations applied\n", db);
        return stm_buf_detach(&b);
    }
    stm_buf_printf(&b, "database %s: %zu version%s applied, now at v%d\n\n", db, n,
                   n == 1 ? "" : "s", r[n - 1].version);
    int width = snprintf(NULL, 0, "v%d", r[n - 1].version);
    for (size_t i = 0; i < n; i++) {
        char num[16], id[STM_ID_SHORT_LEN + 1] = "(no id)";
        snprintf(num, sizeof num, "v%d", r[i].version);
        if (r[i].has_id)
            stm_id_short(&r[i].id, id);
        stm_buf_printf(&b, "  %-*s  %-24s  %-12s  %s\n", width, num, r[i].applied_at, id,
                       r[i].description);
    }
    return stm_buf_detach(&b);
}

static char *s_db_history_json(const char *db, const migrate_record *r, size_t n)
{
    buf_t b = BUF_INIT;
    jsonw_t w;
    stm_jsonw_init(&w, &b, true);
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "database");
    stm_jsonw_string(&w, db);
    stm_jsonw_key(&w, "versions");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < n; i++) {
        stm_jsonw_object_begin(&w);
        stm_jsonw_key(&w, "version");
        stm_jsonw_int(&w, r[i].version);
        stm_jsonw_key(&w, "applied_at");
        stm_jsonw_string(&w, r[i].applied_at);
        stm_jsonw_key(&w, "description");
        stm_jsonw_string(&w, r[i].description);
        if (r[i].has_id) {
            cli_json_id(&w, "id", &r[i].id);
        } else {
            stm_jsonw_key(&w, "id");
            stm_jsonw_null(&w);
        }
        if (r[i].has_checksum) {
            cli_json_id(&w, "checksum", &r[i].checksum);
        } else {
            stm_jsonw_key(&w, "checksum");
            stm_jsonw_null(&w);
        }
        stm_jsonw_object_end(&w);
    }
    stm_jsonw_array_end(&w);
    stm_jsonw_object_end(&w);
    return stm_buf_detach(&b);
}

/* TOML has no null: an id an older tool did not record is left out. */
static char *s_db_history_toml(const char *db, const migrate_record *r, size_t n)
{
    toml_value *root = stm_toml_new_table();
    stm_toml_table_set(root, "database", stm_toml_new_string(db, strlen(db)));
    toml_value *versions = stm_toml_new_array();
    for (size_t i = 0; i < n; i++) {
        toml_value *t = stm_toml_new_table();
        stm_toml_table_set(t, "version", stm_toml_new_integer(r[i].version));
        stm_toml_table_set(t, "applied_at",
                           stm_toml_new_string(r[i].applied_at, strlen(r[i].applied_at)));
        stm_toml_table_set(t, "description",
                           stm_toml_new_string(r[i].description, strlen(r[i].description)));
        if (r[i].has_id)
            s_toml_id(t, "id", &r[i].id);
        if (r[i].has_checksum)
            s_toml_id(t, "checksum", &r[i].checksum);
        stm_toml_array_push(versions, t);
    }
    stm_toml_table_set(root, "versions", versions);
    char *text = stm_toml_emit(root, NULL);
    stm_toml_destroy(&root);
    return text;
}

static int s_db_history(const char *db, cli_format format)
{
    stm_error err = {0};
    migrate_record *records = NULL;
    size_t n = 0;
    if (stm_migrate_history_read(db, &records, &n, &err) != STM_OK)
        return cli_fail("history", &err);
    char *text = format == CLI_FORMAT_JSON   ? s_db_history_json(db, records, n)
                 : format == CLI_FORMAT_TOML ? s_db_history_toml(db, records, n)
                                             : s_db_history_text(db, records, n);
    stm_migrate_records_free(&records, n);
    stm_err rc = cli_write_output(NULL, text, &err);
    free(text);
    return rc == STM_OK ? CLI_OK : cli_fail("history", &err);
}

int cmd_history(int argc, char **argv)
{
    static const struct option options[] = {{"schemas", required_argument, NULL, 's'},
                                            {"layout", required_argument, NULL, 'L'},
                                            {"db", required_argument, NULL, 'd'},
                                            {"format", required_argument, NULL, 'f'},
                                            {"lenses", no_argument, NULL, 'l'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *schemas = NULL, *db = NULL;
    schemaset_layout layout = LAYOUT_AUTO;
    bool want_lenses = false, have_layout = false;
    cli_format format = CLI_FORMAT_TEXT;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:s:L:d:f:lh", options, NULL)) != -1) {
        switch (c) {
        case 's':
            schemas = optarg;
            break;
        case 'L':
            if (cli_parse_layout("history", optarg, &layout) != CLI_OK)
                return CLI_BAD_INPUT;
            have_layout = true;
            break;
        case 'l':
            want_lenses = true;
            break;
        case 'd':
            db = optarg;
            break;
        case 'f':
            if (!cli_parse_format(optarg, 7u, &format))
                return cli_usage_error("history", "--format must be text, json or toml, not '%s'",
                                       optarg);
            break;
        case 'h':
            fputs(s_history_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("history", argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error("history", "unexpected argument '%s'", argv[optind]);
    if (schemas && db)
        return cli_usage_error("history", "give --schemas DIR or --db FILE, not both");
    if (db && want_lenses)
        return cli_usage_error("history", "--lenses needs --schemas DIR, not --db FILE");
    if (db && have_layout)
        return cli_usage_error("history", "--layout goes with --schemas DIR, not --db FILE");
    if (db)
        return s_db_history(db, format);
    if (!schemas)
        return cli_usage_error("history", "--schemas DIR is required (or --db FILE)");
    if (want_lenses && format == CLI_FORMAT_TOML)
        return cli_usage_error("history", "--lenses is shown as text or json, not toml");
    stm_error err = {0};
    lineage_t *l = NULL;
    if (cli_load_lineage(schemas, layout, &l, &err) != STM_OK)
        return cli_fail("history", &err);
    lens_set_t *lenses = NULL;
    if (want_lenses && cli_load_lenses(schemas, layout, &lenses, &err) != STM_OK) {
        stm_lineage_destroy(&l);
        return cli_fail("history", &err);
    }
    char *text = format == CLI_FORMAT_JSON   ? s_history_json(l, lenses)
                 : format == CLI_FORMAT_TOML ? s_history_toml(l)
                                             : s_history_text(l, lenses);
    stm_lens_destroy(&lenses);
    stm_lineage_destroy(&l);
    stm_err rc = cli_write_output(NULL, text, &err);
    free(text);
    return rc == STM_OK ? CLI_OK : cli_fail("history", &err);
}

/* ---- export ---- */

static const char *s_export_help =
    "usage: stemma export --schemas DIR [--layout NAME] [-o FILE]\n"
    "\n"
    "Writes the whole history of a schema set as TOML: every version (number, id,\n"
    "parent, description, checksum) and every table's family history with the columns\n"
    "added, removed and changed, and what each migration does to the data (its\n"
    "lenses: 'stemma history --lenses'). 'stemma compare' reads such files as it reads\n"
    "directories, and follows renames through them; 'history --lenses' and 'apply\n"
    "--schemas' read them too. The layout is described in docs/toml-format.md.\n"
    "\n"
    "  --schemas DIR   the directory of numbered migrations\n"
    "  --layout NAME   how DIR names its migrations: stemma, flyway, diesel, sqlx,\n"
    "                  dbmate, goose or golang-migrate (default: found from its files)\n"
    "  -o, --output F  write to F instead of standard output (F is replaced whole,\n"
    "                  never left half-written)\n"
    "  -h, --help      this help\n";

int cmd_export(int argc, char **argv)
{
    static const struct option options[] = {{"schemas", required_argument, NULL, 's'},
                                            {"layout", required_argument, NULL, 'L'},
                                            {"output", required_argument, NULL, 'o'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *schemas = NULL, *output = NULL;
    schemaset_layout layout = LAYOUT_AUTO;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:s:L:o:h", options, NULL)) != -1) {
        switch (c) {
        case 's':
            schemas = optarg;
            break;
        case 'L':
            if (cli_parse_layout("export", optarg, &layout) != CLI_OK)
                return CLI_BAD_INPUT;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            fputs(s_export_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("export", argv[optind - 1], c);
        }
    }
    if (optind < argc)
        return cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    if (!schemas)
        return cli_usage_error("export", "--schemas DIR is required");
    stm_error err = {0};
    lineage_t *l = NULL;
    lens_set_t *lenses = NULL;
    if (cli_load_lineage(schemas, layout, &l, &err) != STM_OK ||
        cli_load_lenses(schemas, layout, &lenses, &err) != STM_OK) {
        stm_lineage_destroy(&l);
        return cli_fail("export", &err);
    }
    char *text = stm_export_lineage_lenses(l, lenses);
    stm_lens_destroy(&lenses);
    stm_lineage_destroy(&l);
    stm_err rc = cli_write_output(output, text, &err);
    free(text);
    return rc == STM_OK ? CLI_OK : cli_fail("export", &err);
}
