/* cmd_lineage.c - the commands that read schema histories: history, export, compare. */
#include "cli.h"
#include "lens_text.h"
#include "commands.h"
#include "base/buf.h"
#include "lineage/export.h"
#include "base/jsonw.h"
#include "base/mem.h"
#include "lineage/relation.h"
#include "lineage/syncable.h"
#include "toml/toml.h"
#include "sync/migrate.h"
#include "unsynced_text.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- history ---- */

static const char *s_history_help =
    "usage: stemma history --schemas DIR [--lenses] [--format text|json|toml]\n"
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

static void s_json_id(jsonw_t *w, const char *key, const stm_id *id)
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(id, hex);
    stm_jsonw_key(w, key);
    stm_jsonw_string(w, hex);
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
        s_json_id(&w, "id", &v->id);
        s_json_id(&w, "parent", &v->parent);
        stm_jsonw_key(&w, "description");
        stm_jsonw_string(&w, v->description);
        s_json_id(&w, "checksum", &v->checksum);
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
            s_json_id(&w, "id", &r[i].id);
        } else {
            stm_jsonw_key(&w, "id");
            stm_jsonw_null(&w);
        }
        if (r[i].has_checksum) {
            s_json_id(&w, "checksum", &r[i].checksum);
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
                                            {"db", required_argument, NULL, 'd'},
                                            {"format", required_argument, NULL, 'f'},
                                            {"lenses", no_argument, NULL, 'l'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *schemas = NULL, *db = NULL;
    bool want_lenses = false;
    cli_format format = CLI_FORMAT_TEXT;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:s:d:f:lh", options, NULL)) != -1) {
        switch (c) {
        case 's':
            schemas = optarg;
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
    if (db)
        return s_db_history(db, format);
    if (!schemas)
        return cli_usage_error("history", "--schemas DIR is required (or --db FILE)");
    if (want_lenses && format == CLI_FORMAT_TOML)
        return cli_usage_error("history", "--lenses is shown as text or json, not toml");
    stm_error err = {0};
    lineage_t *l = NULL;
    if (cli_load_lineage(schemas, &l, &err) != STM_OK)
        return cli_fail("history", &err);
    lens_set_t *lenses = NULL;
    if (want_lenses && cli_load_lenses(schemas, &lenses, &err) != STM_OK) {
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
    "usage: stemma export --schemas DIR [-o FILE]\n"
    "\n"
    "Writes the whole history of a schema set as TOML: every version (number, id,\n"
    "parent, description, checksum) and every table's family history with the columns\n"
    "added, removed and changed. 'stemma compare' reads such files as it reads\n"
    "directories. The layout is described in docs/toml-format.md.\n"
    "\n"
    "  --schemas DIR   the directory of numbered migrations\n"
    "  -o, --output F  write to F instead of standard output (F is replaced whole,\n"
    "                  never left half-written)\n"
    "  -h, --help      this help\n";

int cmd_export(int argc, char **argv)
{
    static const struct option options[] = {{"schemas", required_argument, NULL, 's'},
                                            {"output", required_argument, NULL, 'o'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *schemas = NULL, *output = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:s:o:h", options, NULL)) != -1) {
        switch (c) {
        case 's':
            schemas = optarg;
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
    if (cli_load_lineage(schemas, &l, &err) != STM_OK)
        return cli_fail("export", &err);
    char *text = stm_export_lineage(l);
    stm_lineage_destroy(&l);
    stm_err rc = cli_write_output(output, text, &err);
    free(text);
    return rc == STM_OK ? CLI_OK : cli_fail("export", &err);
}

/* ---- compare ---- */

static const char *s_compare_help =
    "usage: stemma compare LOCAL REMOTE [--format text|json]\n"
    "\n"
    "Compares two schema histories and says how they relate: same, ancestor (LOCAL is\n"
    "older than REMOTE), descendant (LOCAL is newer), divergent (they parted; the\n"
    "common ancestor is named) or unrelated (no common ancestor). The same is said for\n"
    "each table (family), with its columns sorted into shared, local_only,\n"
    "remote_only and conflicting, and the text form says what will and will not sync,\n"
    "naming the tables of each side stemma cannot sync, each with why (no primary key,\n"
    "a key of more than 32 columns, a virtual table).\n"
    "\n"
    "  LOCAL, REMOTE   each a schema directory or a file written by 'stemma export'\n"
    "  --format F      text (default) or json\n"
    "  -h, --help      this help\n"
    "\n"
    "Exit status: 0 whatever the relation, 2 for bad usage or bad input, 1 otherwise.\n";

/* A growing list of "what (why)" phrases for the text summary. */
typedef struct {
    buf_t text;
    size_t count;
} s_phrases;

static void s_phrase(s_phrases *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_phrase(s_phrases *p, const char *fmt, ...)
{
    if (p->count++)
        stm_buf_puts(&p->text, ", ");
    va_list ap;
    va_start(ap, fmt);
    stm_buf_vprintf(&p->text, fmt, ap);
    va_end(ap);
}

static void s_join_names(buf_t *b, const char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        stm_buf_printf(b, "%s%s", i ? ", " : "", names[i]);
}

/* The "columns" cell of a family's row. */
static void s_family_cell(buf_t *b, const comparison_family *f)
{
    if (!f->local_live && !f->remote_live) {
        stm_buf_puts(b, "dropped on both sides");
        return;
    }
    if (f->renamed_table) {
        stm_buf_printf(b, "table renamed: %s %s", f->renamed_table, f->local_live ? "there" : "here");
        for (size_t k = 0; k < f->nrenamed; k++)
            stm_buf_printf(b, "%s%s here = %s there", k ? ", " : "; renamed: ", f->renamed[k].here,
                           f->renamed[k].there);
        return;
    }
    const char *sep = "";
    if (f->ncolumns[COLUMN_SHARED]) {
        stm_buf_printf(b, "%zu shared", f->ncolumns[COLUMN_SHARED]);
        sep = "; ";
    }
    static const struct {
        column_relation r;
        const char *label;
    } parts[] = {{COLUMN_LOCAL_ONLY, "only here: "},
                 {COLUMN_REMOTE_ONLY, "only there: "},
                 {COLUMN_CONFLICTING, "conflicting: "}};
    for (size_t k = 0; k < 3; k++) {
        if (!f->ncolumns[parts[k].r])
            continue;
        stm_buf_printf(b, "%s%s", sep, parts[k].label);
        s_join_names(b, f->columns[parts[k].r], f->ncolumns[parts[k].r]);
        sep = "; ";
    }
    if (f->nrenamed) {
        stm_buf_printf(b, "%srenamed: ", sep);
        for (size_t k = 0; k < f->nrenamed; k++)
            stm_buf_printf(b, "%s%s here = %s there", k ? ", " : "", f->renamed[k].here,
                           f->renamed[k].there);
    }
    if (f->local_live != f->remote_live)
        stm_buf_printf(b, " (table %s)", f->local_live ? "only here" : "only there");
}

/* The tables of each side's head that stemma cannot sync, each with why: the schema's
 * own reasons (lineage/syncable.h), since compare has no database to exclude any. */
typedef struct {
    syncable_table *local; /* in order of name */
    size_t nlocal;
    syncable_table *remote;
    size_t nremote;
    char **local_per_device; /* synced tables whose keys each device picks, by name */
    size_t nlocal_per_device;
    char **remote_per_device;
    size_t nremote_per_device;
} s_unsynced;

static void s_unsynced_read(s_unsynced *u, const lineage_t *local, const lineage_t *remote)
{
    int lv = (int)stm_lineage_count(local), rv = (int)stm_lineage_count(remote);
    u->nlocal = stm_syncable_unsynced(local, lv, NULL, 0, &u->local);
    u->nremote = stm_syncable_unsynced(remote, rv, NULL, 0, &u->remote);
    u->nlocal_per_device = stm_syncable_per_device(local, lv, NULL, 0, &u->local_per_device);
    u->nremote_per_device = stm_syncable_per_device(remote, rv, NULL, 0, &u->remote_per_device);
}

static void s_unsynced_free(s_unsynced *u)
{
    stm_syncable_tables_free(u->local, u->nlocal);
    stm_syncable_tables_free(u->remote, u->nremote);
    stm_syncable_names_free(u->local_per_device, u->nlocal_per_device);
    stm_syncable_names_free(u->remote_per_device, u->nremote_per_device);
}

/* The tables whose keys each device picks, on each side, and what stemma does with them. */
static void s_per_device_summary(buf_t *b, const s_unsynced *u)
{
    if (!u->nlocal_per_device && !u->nremote_per_device)
        return;
    stm_buf_puts(b, "  Keys chosen per device (" UNSYNCED_TEXT_PER_DEVICE "):\n");
    if (u->nlocal_per_device) {
        stm_buf_puts(b, "    here:  ");
        unsynced_text_names(b, u->local_per_device, u->nlocal_per_device);
        stm_buf_putc(b, '\n');
    }
    if (u->nremote_per_device) {
        stm_buf_puts(b, "    there: ");
        unsynced_text_names(b, u->remote_per_device, u->nremote_per_device);
        stm_buf_putc(b, '\n');
    }
}

/* True when f's table syncs on every side that has it. */
static bool s_syncs(const comparison_family *f, const s_unsynced *u)
{
    return !(f->local_live && stm_syncable_find(u->local, u->nlocal, f->name)) &&
           !(f->remote_live && stm_syncable_find(u->remote, u->nremote, f->name));
}

/* Collects, across the families that can sync, the shared tables and what exists on
 * one side only. */
static void s_collect(const comparison_t *c, const s_unsynced *u, s_phrases *syncs,
                      s_phrases *one_sided, s_phrases *conflicts, s_phrases *translated)
{
    for (size_t i = 0; i < c->nfamilies; i++) {
        const comparison_family *f = &c->families[i];
        if (!s_syncs(f, u))
            continue;
        /* Renamed (lineage/lens.h): the operations are translated, not parked. */
        if (f->renamed_table && f->local_live)
            s_phrase(translated, "%s here = %s there", f->name, f->renamed_table);
        const char *there = f->renamed_table ? f->renamed_table : f->name;
        for (size_t k = 0; k < f->nrenamed; k++)
            s_phrase(translated, "%s.%s here = %s.%s there", f->name, f->renamed[k].here,
                     there, f->renamed[k].there);
        if (f->local_live && f->remote_live && f->ncolumns[COLUMN_SHARED] + f->nrenamed) {
            size_t total =
                f->ncolumns[0] + f->ncolumns[1] + f->ncolumns[2] + f->ncolumns[3] + f->nrenamed;
            size_t both = f->ncolumns[COLUMN_SHARED] + f->nrenamed;
            if (total == both)
                s_phrase(syncs, "%s (%zu columns)", f->name, total);
            else
                s_phrase(syncs, "%s (%zu of %zu columns)", f->name, both, total);
        }
        if (f->renamed_table)
            continue;
        if (f->local_live != f->remote_live) {
            s_phrase(one_sided, "%s (table only %s)", f->name, f->local_live ? "here" : "there");
            continue;
        }
        for (size_t k = 0; k < f->ncolumns[COLUMN_LOCAL_ONLY]; k++)
            s_phrase(one_sided, "%s.%s (only here)", f->name, f->columns[COLUMN_LOCAL_ONLY][k]);
        for (size_t k = 0; k < f->ncolumns[COLUMN_REMOTE_ONLY]; k++)
            s_phrase(one_sided, "%s.%s (only there)", f->name, f->columns[COLUMN_REMOTE_ONLY][k]);
        for (size_t k = 0; k < f->ncolumns[COLUMN_CONFLICTING]; k++)
            s_phrase(conflicts, "%s.%s", f->name, f->columns[COLUMN_CONFLICTING][k]);
    }
}

/* True when both sides leave the same tables unsynced, for the same reasons. */
static bool s_unsynced_alike(const s_unsynced *u)
{
    if (u->nlocal != u->nremote)
        return false;
    for (size_t i = 0; i < u->nlocal; i++)
        if (strcmp(u->local[i].name, u->remote[i].name) != 0 ||
            u->local[i].reason != u->remote[i].reason)
            return false;
    return true;
}

/* Names the tables stemma cannot sync on each side, each with why. */
static void s_unsynced_summary(buf_t *b, const s_unsynced *u)
{
    if (u->nlocal && s_unsynced_alike(u)) {
        stm_buf_puts(b, "  Never synced, on either side:\n");
        unsynced_text_lines(b, "    ", u->local, u->nlocal);
        return;
    }
    if (u->nlocal) {
        stm_buf_puts(b, "  Never synced here:\n");
        unsynced_text_lines(b, "    ", u->local, u->nlocal);
    }
    if (u->nremote) {
        stm_buf_puts(b, "  Never synced there:\n");
        unsynced_text_lines(b, "    ", u->remote, u->nremote);
    }
}

static void s_compare_summary(buf_t *b, const comparison_t *c, const s_unsynced *u)
{
    s_phrases syncs = {BUF_INIT, 0}, one_sided = {BUF_INIT, 0}, conflicts = {BUF_INIT, 0},
              translated = {BUF_INIT, 0};
    s_collect(c, u, &syncs, &one_sided, &conflicts, &translated);
    /* Not "everything" when some table can never sync. */
    const char *all = u->nlocal || u->nremote ? "Every table stemma can sync" : "Everything";
    stm_buf_puts(b, "\nWhat syncs, under the default policy:\n");
    switch (c->relation) {
    case RELATION_SAME:
        stm_buf_printf(b, "  %s: both sides have the same schema history.\n", all);
        break;
    case RELATION_ANCESTOR:
    case RELATION_DESCENDANT: {
        bool local_older = c->relation == RELATION_ANCESTOR;
        stm_buf_printf(b, "  %s. %s is newer (v%d against v%d).\n", all,
                       local_older ? "The remote" : "This side",
                       local_older ? c->remote_version : c->stm_local_version,
                       local_older ? c->stm_local_version : c->remote_version);
        if (one_sided.count)
            stm_buf_printf(b, "  Parked, not lost, %s until %s migrates, then replayed:\n    %s\n",
                           local_older ? "here" : "on the remote",
                           local_older ? "this side" : "the remote", stm_buf_str(&one_sided.text));
        break;
    }
    case RELATION_DIVERGENT:
        stm_buf_printf(b, "  Shared columns only: the histories parted after v%zu.\n", c->common);
        stm_buf_printf(b, "  Syncs:          %s\n",
                       syncs.count ? stm_buf_str(&syncs.text) : "nothing");
        if (one_sided.count)
            stm_buf_printf(b, "  Does not sync:  %s\n", stm_buf_str(&one_sided.text));
        break;
    case RELATION_UNRELATED:
        stm_buf_puts(b, "  Nothing: the histories have no common ancestor (different schemas).\n");
        break;
    }
    if (translated.count)
        stm_buf_printf(b, "  Translated between the versions (renamed, history --lenses):\n    %s\n",
                       stm_buf_str(&translated.text));
    if (conflicts.count && c->relation != RELATION_UNRELATED)
        stm_buf_printf(b,
                       "  Never synced, same name but a different type or key role (operations "
                       "are parked):\n    %s\n",
                       stm_buf_str(&conflicts.text));
    /* Between unrelated histories nothing syncs at all (the JSON still names them). */
    if (c->relation != RELATION_UNRELATED) {
        s_unsynced_summary(b, u);
        s_per_device_summary(b, u);
    }
    stm_buf_free(&syncs.text);
    stm_buf_free(&one_sided.text);
    stm_buf_free(&conflicts.text);
    stm_buf_free(&translated.text);
}

static void s_side_line(buf_t *b, const char *label, int width, const lineage_t *l)
{
    const lineage_version *h = stm_lineage_head(l);
    if (!h) {
        stm_buf_printf(b, "%-6s  %-*s  (no versions)\n", label, width, stm_lineage_name(l));
        return;
    }
    char id[STM_ID_SHORT_LEN + 1];
    stm_id_short(&h->id, id);
    stm_buf_printf(b, "%-6s  %-*s  v%-4d %s\n", label, width, stm_lineage_name(l), h->number, id);
}

static char *s_compare_text(const comparison_t *c, const lineage_t *local, const lineage_t *remote,
                            const s_unsynced *u)
{
    buf_t b = BUF_INIT;
    int width = (int)strlen(stm_lineage_name(local));
    if ((int)strlen(stm_lineage_name(remote)) > width)
        width = (int)strlen(stm_lineage_name(remote));
    s_side_line(&b, "local", width, local);
    s_side_line(&b, "remote", width, remote);
    stm_buf_printf(&b, "\nrelation: %s", stm_relation_name(c->relation));
    if (c->relation == RELATION_DIVERGENT) {
        char id[STM_ID_SHORT_LEN + 1];
        stm_id_short(&c->common_id, id);
        stm_buf_printf(&b, " (common ancestor v%zu %s)", c->common, id);
    }
    stm_buf_puts(&b, "\n\n");
    int name_width = 5;
    for (size_t i = 0; i < c->nfamilies; i++)
        if ((int)strlen(c->families[i].name) > name_width)
            name_width = (int)strlen(c->families[i].name);
    stm_buf_printf(&b, "%-*s  %-10s  %s\n", name_width, "table", "history", "columns");
    for (size_t i = 0; i < c->nfamilies; i++) {
        const comparison_family *f = &c->families[i];
        stm_buf_printf(&b, "%-*s  %-10s  ", name_width, f->name, stm_relation_name(f->relation));
        s_family_cell(&b, f);
        stm_buf_putc(&b, '\n');
    }
    s_compare_summary(&b, c, u);
    return stm_buf_detach(&b);
}

static void s_json_head(jsonw_t *w, const char *key, const lineage_t *l)
{
    const lineage_version *h = stm_lineage_head(l);
    stm_jsonw_key(w, key);
    stm_jsonw_object_begin(w);
    stm_jsonw_key(w, "schema_set");
    stm_jsonw_string(w, stm_lineage_name(l));
    stm_jsonw_key(w, "version");
    stm_jsonw_int(w, h ? h->number : 0);
    if (h) {
        s_json_id(w, "id", &h->id);
    } else {
        stm_jsonw_key(w, "id");
        stm_jsonw_null(w);
    }
    stm_jsonw_object_end(w);
}

static char *s_compare_json(const comparison_t *c, const lineage_t *local, const lineage_t *remote,
                            const s_unsynced *u)
{
    buf_t b = BUF_INIT;
    jsonw_t w;
    stm_jsonw_init(&w, &b, true);
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "relation");
    stm_jsonw_string(&w, stm_relation_name(c->relation));
    stm_jsonw_key(&w, "common_ancestor");
    if (c->common) {
        stm_jsonw_object_begin(&w);
        stm_jsonw_key(&w, "version");
        stm_jsonw_int(&w, (int64_t)c->common);
        s_json_id(&w, "id", &c->common_id);
        stm_jsonw_object_end(&w);
    } else {
        stm_jsonw_null(&w);
    }
    s_json_head(&w, "local", local);
    s_json_head(&w, "remote", remote);
    stm_jsonw_key(&w, "families");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < c->nfamilies; i++) {
        const comparison_family *f = &c->families[i];
        stm_jsonw_object_begin(&w);
        stm_jsonw_key(&w, "name");
        stm_jsonw_string(&w, f->name);
        stm_jsonw_key(&w, "relation");
        stm_jsonw_string(&w, stm_relation_name(f->relation));
        stm_jsonw_key(&w, "local_live");
        stm_jsonw_bool(&w, f->local_live);
        stm_jsonw_key(&w, "remote_live");
        stm_jsonw_bool(&w, f->remote_live);
        for (int r = COLUMN_SHARED; r <= COLUMN_CONFLICTING; r++) {
            stm_jsonw_key(&w, stm_column_relation_name((column_relation)r));
            stm_jsonw_array_begin(&w);
            for (size_t k = 0; k < f->ncolumns[r]; k++)
                stm_jsonw_string(&w, f->columns[r][k]);
            stm_jsonw_array_end(&w);
        }
        stm_jsonw_key(&w, "renamed");
        stm_jsonw_array_begin(&w);
        for (size_t k = 0; k < f->nrenamed; k++) {
            stm_jsonw_object_begin(&w);
            stm_jsonw_key(&w, "here");
            stm_jsonw_string(&w, f->renamed[k].here);
            stm_jsonw_key(&w, "there");
            stm_jsonw_string(&w, f->renamed[k].there);
            stm_jsonw_object_end(&w);
        }
        stm_jsonw_array_end(&w);
        stm_jsonw_key(&w, "renamed_table");
        stm_jsonw_string(&w, f->renamed_table);
        stm_jsonw_object_end(&w);
    }
    stm_jsonw_array_end(&w);
    stm_jsonw_key(&w, "unsynced");
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "local");
    unsynced_text_json(&w, u->local, u->nlocal);
    stm_jsonw_key(&w, "remote");
    unsynced_text_json(&w, u->remote, u->nremote);
    stm_jsonw_object_end(&w);
    stm_jsonw_key(&w, "keys_per_device");
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "local");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < u->nlocal_per_device; i++)
        stm_jsonw_string(&w, u->local_per_device[i]);
    stm_jsonw_array_end(&w);
    stm_jsonw_key(&w, "remote");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < u->nremote_per_device; i++)
        stm_jsonw_string(&w, u->remote_per_device[i]);
    stm_jsonw_array_end(&w);
    stm_jsonw_object_end(&w);
    stm_jsonw_object_end(&w);
    return stm_buf_detach(&b);
}

int cmd_compare(int argc, char **argv)
{
    static const struct option options[] = {{"format", required_argument, NULL, 'f'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    cli_format format = CLI_FORMAT_TEXT;
    int c;
    opterr = 0;
    /* Options may come before or after the two paths. */
    while ((c = getopt_long(argc, argv, ":f:h", options, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (!cli_parse_format(optarg, 3u, &format))
                return cli_usage_error("compare", "--format must be text or json, not '%s'",
                                       optarg);
            break;
        case 'h':
            fputs(s_compare_help, stdout);
            return CLI_OK;
        default:
            return cli_bad_option("compare", argv[optind - 1], c);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("compare", "expected two histories, LOCAL and REMOTE, got %d",
                               argc - optind);
    stm_error err = {0};
    lineage_t *local = NULL, *remote = NULL;
    if (cli_load_lineage(argv[optind], &local, &err) != STM_OK)
        return cli_fail("compare", &err);
    if (cli_load_lineage(argv[optind + 1], &remote, &err) != STM_OK) {
        stm_lineage_destroy(&local);
        return cli_fail("compare", &err);
    }
    comparison_t *cmp = stm_relation_compare(local, remote);
    /* Renames followed through the lenses of a side whose migrations are here to run
     * (a directory) and hold both heads. */
    for (int side = 0; side < 2; side++) {
        lens_set_t *lenses = NULL;
        stm_error ignored = {0};
        if (cli_load_lenses(argv[optind + side], &lenses, &ignored) == STM_OK)
            stm_comparison_follow(cmp, lenses, side ? remote : local);
        stm_lens_destroy(&lenses);
    }
    s_unsynced u;
    s_unsynced_read(&u, local, remote);
    char *text = format == CLI_FORMAT_JSON ? s_compare_json(cmp, local, remote, &u)
                                           : s_compare_text(cmp, local, remote, &u);
    s_unsynced_free(&u);
    stm_comparison_destroy(&cmp);
    stm_lineage_destroy(&local);
    stm_lineage_destroy(&remote);
    stm_err rc = cli_write_output(NULL, text, &err);
    free(text);
    return rc == STM_OK ? CLI_OK : cli_fail("compare", &err);
}
