/* cmd_conflicts.c - stemma conflicts: the rows kept aside when two devices created
 * rows under one key (sync/identity.h), listed, discarded or kept under a new key. */
#include "cli.h"
#include "commands.h"
#include "base/jsonw.h"
#include "base/mem.h"
#include "sync/apply.h"
#include "sync/identity.h"
#include "sync/key.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *s_help =
    "usage: stemma conflicts --db FILE [--format text|json]\n"
    "       stemma conflicts discard --db FILE TABLE KEY INCARNATION\n"
    "       stemma conflicts keep --db FILE [--as VALUE]... TABLE KEY INCARNATION\n"
    "\n"
    "In a table whose keys each device picks (INTEGER PRIMARY KEY, or a table whose\n"
    "CREATE TABLE says -- stemma: keys per-device), two devices that insert while\n"
    "apart pick the same key for different rows. stemma never merges them: on every\n"
    "database the row created first keeps the key, and the other is kept aside,\n"
    "whole. A row that lost a unique value to an earlier one is kept aside too. This\n"
    "lists the rows kept aside (the same on every database once they have synced).\n"
    "discard drops one; keep inserts its values as a new row, then drops it. Either\n"
    "choice syncs to every peer.\n"
    "\n"
    "  --db FILE      the database\n"
    "  --format F     text (default) or json\n"
    "  --as VALUE     keep: the new row's key, once per key column in key order;\n"
    "                 without it SQLite picks the key (INTEGER PRIMARY KEY only)\n"
    "  KEY            the key as the list shows it: 1, 'ann@x.org' (or ann@x.org),\n"
    "                 (1, 'a') for a key of several columns\n"
    "  INCARNATION    the row kept aside, as the list names it (ORIGIN.CLOCK)\n"
    "  (a KEY that starts with '-' goes after '--': stemma conflicts discard --db F -- t -5 I)\n"
    "  -h, --help     this help\n";

/* "ORIGIN.CLOCK": the first 12 hex digits of the origin, the clock in decimal. */
static void s_token(const op_t *c, char *out, size_t len)
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&c->born_origin, hex);
    snprintf(out, len, "%.12s.%" PRIu64, hex, c->born_hlc);
}

/* When the incarnation was made: its clock's milliseconds, as UTC; "before stemma" for
 * a row the database held when stemma took it over (migrate --baseline clocks them 1). */
static void s_created(uint64_t hlc, char *out, size_t len)
{
    if ((hlc >> 16) == 0) {
        snprintf(out, len, "before stemma");
        return;
    }
    time_t t = (time_t)((hlc >> 16) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A value as SQL writes it: 'text', 42, 1.5, X'00FF', NULL, and a key of several
 * columns as (1, 'a'). Unprintable bytes of text are shown as \xNN. */
static void s_sql_value(buf_t *b, const op_value *v)
{
    switch (v->type) {
    case VALUE_KEY: {
        op_value parts[KEY_MAX_COLUMNS];
        size_t n = 0;
        if (!stm_key_values(v, parts, KEY_MAX_COLUMNS, &n) || n > KEY_MAX_COLUMNS)
            n = 0;
        stm_buf_putc(b, '(');
        for (size_t i = 0; i < n; i++) {
            stm_buf_puts(b, i ? ", " : "");
            s_sql_value(b, &parts[i]);
        }
        stm_buf_putc(b, ')');
        break;
    }
    case VALUE_INTEGER:
        stm_buf_printf(b, "%" PRId64, v->i);
        break;
    case VALUE_REAL:
        stm_buf_printf(b, "%.17g", v->r);
        break;
    case VALUE_TEXT: {
        char *s = stm_strndup(v->bytes, v->len);
        buf_t q = BUF_INIT;
        stm_buf_putc(&q, '\'');
        for (const char *p = s; *p; p++) {
            if (*p == '\'')
                stm_buf_putc(&q, '\'');
            stm_buf_putc(&q, *p);
        }
        stm_buf_putc(&q, '\'');
        stm_buf_put_printable(b, stm_buf_str(&q));
        stm_buf_free(&q);
        free(s);
        break;
    }
    case VALUE_BLOB:
        stm_buf_puts(b, "X'");
        for (size_t i = 0; i < v->len; i++)
            stm_buf_printf(b, "%02X", ((const unsigned char *)v->bytes)[i]);
        stm_buf_putc(b, '\'');
        break;
    default:
        stm_buf_puts(b, "NULL");
    }
}

/* A value as JSON has it; a key of several columns is an array of its values. */
static void s_json_value(jsonw_t *w, const op_value *v)
{
    switch (v->type) {
    case VALUE_KEY: {
        op_value parts[KEY_MAX_COLUMNS];
        size_t n = 0;
        if (!stm_key_values(v, parts, KEY_MAX_COLUMNS, &n) || n > KEY_MAX_COLUMNS)
            n = 0;
        stm_jsonw_array_begin(w);
        for (size_t i = 0; i < n; i++)
            s_json_value(w, &parts[i]);
        stm_jsonw_array_end(w);
        break;
    }
    case VALUE_INTEGER:
        stm_jsonw_int(w, v->i);
        break;
    case VALUE_REAL:
        stm_jsonw_double(w, v->r);
        break;
    case VALUE_TEXT:
        stm_jsonw_string_len(w, v->bytes, v->len);
        break;
    case VALUE_BLOB: {
        /* JSON has no bytes: {"blob": "HEX"}. */
        buf_t hex = BUF_INIT;
        for (size_t i = 0; i < v->len; i++)
            stm_buf_printf(&hex, "%02X", ((const unsigned char *)v->bytes)[i]);
        stm_jsonw_object_begin(w);
        stm_jsonw_key(w, "blob");
        stm_jsonw_string(w, stm_buf_str(&hex));
        stm_jsonw_object_end(w);
        stm_buf_free(&hex);
        break;
    }
    default:
        stm_jsonw_null(w);
    }
}

/* True when cells i and j (stm_conflicts_rows) are cells of one kept row. */
static bool s_same_row(const opbatch_t *kept, size_t i, size_t j)
{
    const op_t *a = stm_opbatch_at(kept, i), *b = stm_opbatch_at(kept, j);
    return strcmp(a->table, b->table) == 0 && stm_op_value_equal(&a->pk, &b->pk) &&
           a->born_hlc == b->born_hlc && stm_id_equal(&a->born_origin, &b->born_origin);
}

static void s_render_text(const opbatch_t *kept, buf_t *out)
{
    size_t rows = 0, n = stm_opbatch_count(kept);
    for (size_t i = 0; i < n; rows++) {
        const op_t *c = stm_opbatch_at(kept, i);
        char token[64], created[32], origin[STM_ID_SHORT_LEN + 1];
        s_token(c, token, sizeof token);
        s_created(c->born_hlc, created, sizeof created);
        stm_id_short(&c->born_origin, origin);
        stm_buf_put_printable(out, c->table);
        stm_buf_putc(out, ' ');
        s_sql_value(out, &c->pk);
        stm_buf_printf(out, "  %s  created %s by %s\n", token, created, origin);
        size_t j = i;
        for (; j < n && s_same_row(kept, i, j); j++) {
            const op_t *cell = stm_opbatch_at(kept, j);
            if (!cell->column) {
                stm_buf_puts(out, "    (no value of it is held here: its writes are parked)\n");
                continue;
            }
            stm_buf_puts(out, "    ");
            stm_buf_put_printable(out, cell->column);
            stm_buf_puts(out, " = ");
            s_sql_value(out, &cell->value);
            stm_buf_putc(out, '\n');
        }
        i = j;
    }
    if (rows)
        stm_buf_printf(out,
                       "%zu row%s kept aside; 'stemma conflicts keep' or 'discard' "
                       "resolves one\n",
                       rows, rows == 1 ? "" : "s");
    else
        stm_buf_puts(out, "no conflicts: no row is kept aside\n");
}

static void s_render_json(const opbatch_t *kept, buf_t *out)
{
    jsonw_t w;
    stm_jsonw_init(&w, out, true);
    stm_jsonw_array_begin(&w);
    size_t n = stm_opbatch_count(kept);
    for (size_t i = 0; i < n;) {
        const op_t *c = stm_opbatch_at(kept, i);
        char token[64], created[32], origin[STM_ID_HEX_LEN + 1];
        s_token(c, token, sizeof token);
        s_created(c->born_hlc, created, sizeof created);
        stm_id_to_hex(&c->born_origin, origin);
        stm_jsonw_object_begin(&w);
        stm_jsonw_key(&w, "table");
        stm_jsonw_string(&w, c->table);
        stm_jsonw_key(&w, "key");
        s_json_value(&w, &c->pk);
        stm_jsonw_key(&w, "incarnation");
        stm_jsonw_string(&w, token);
        stm_jsonw_key(&w, "origin");
        stm_jsonw_string(&w, origin);
        stm_jsonw_key(&w, "created");
        stm_jsonw_string(&w, created);
        stm_jsonw_key(&w, "row");
        stm_jsonw_object_begin(&w);
        size_t j = i;
        for (; j < n && s_same_row(kept, i, j); j++) {
            if (!stm_opbatch_at(kept, j)->column)
                continue;
            stm_jsonw_key(&w, stm_opbatch_at(kept, j)->column);
            s_json_value(&w, &stm_opbatch_at(kept, j)->value);
        }
        stm_jsonw_object_end(&w);
        stm_jsonw_object_end(&w);
        i = j;
    }
    stm_jsonw_array_end(&w);
    stm_buf_putc(out, '\n');
}

/* Finds the kept row (table, key, token) among kept: its incarnation into *inc and
 * its key into *key (lent by kept). */
static bool s_find(const opbatch_t *kept, const char *table, const char *key, const char *token,
                   identity_stamp *inc, const op_value **pk)
{
    for (size_t i = 0; i < stm_opbatch_count(kept); i++) {
        const op_t *c = stm_opbatch_at(kept, i);
        char mine[64];
        s_token(c, mine, sizeof mine);
        /* The key as the list shows it, or a text key's bare text. */
        buf_t k = BUF_INIT;
        s_sql_value(&k, &c->pk);
        bool key_match = strcmp(stm_buf_str(&k), key) == 0 ||
                         (c->pk.type == VALUE_TEXT && strlen(key) == c->pk.len &&
                          memcmp(c->pk.bytes, key, c->pk.len) == 0);
        bool match =
            sqlite3_stricmp(c->table, table) == 0 && key_match && strcmp(mine, token) == 0;
        stm_buf_free(&k);
        if (match) {
            inc->hlc = c->born_hlc;
            inc->origin = c->born_origin;
            *pk = &c->pk;
            return true;
        }
    }
    return false;
}

/* discard or keep; new_key[0 .. nnew_key): keep's --as values. */
static int s_resolve(const char *what, const char *db, const char *const *new_key,
                     size_t nnew_key, int argc, char **argv)
{
    char cmd[32];
    snprintf(cmd, sizeof cmd, "conflicts %s", what);
    if (argc != 3)
        return cli_usage_error("conflicts", "%s expects TABLE KEY INCARNATION, got %d arguments",
                               what, argc);
    stm_error err = {0};
    store_t *store = NULL;
    if (cli_open_db(db, &store, &err) != STM_OK)
        return cli_fail(cmd, &err);
    opbatch_t *kept = stm_opbatch_new();
    stm_err rc = stm_conflicts_rows(store, kept, &err);
    identity_stamp inc;
    const op_value *pk = NULL;
    if (rc == STM_OK && !s_find(kept, argv[0], argv[1], argv[2], &inc, &pk))
        rc = stm_error_set(&err, STM_EINPUT,
                           "%s: no row of %s with key %s is kept aside as %s ('stemma conflicts "
                           "--db %s' lists them)",
                           db, argv[0], argv[1], argv[2], db);
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    int64_t rowid = 0;
    if (rc == STM_OK)
        rc = strcmp(what, "keep") == 0
                 ? stm_applier_keep(applier, argv[0], pk, &inc, new_key, nnew_key, &rowid, &err)
                 : stm_applier_discard(applier, argv[0], pk, &inc, &err);
    stm_applier_destroy(&applier);
    stm_opbatch_destroy(&kept);
    stm_store_destroy(&store);
    if (rc == STM_EUSAGE) /* the new key: say how to give it */
        return cli_usage_error("conflicts", "%s (give them with --as VALUE)", err.msg);
    if (rc != STM_OK)
        return cli_fail(cmd, &err);
    if (strcmp(what, "keep") == 0 && nnew_key) {
        printf("kept: inserted into %s as key ", argv[0]);
        for (size_t k = 0; k < nnew_key; k++)
            printf(k ? ", %s" : "%s", new_key[k]);
        printf("; the row aside is discarded\n");
    } else if (strcmp(what, "keep") == 0)
        printf("kept: inserted into %s as key %" PRId64 "; the row aside is discarded\n", argv[0],
               rowid);
    else
        printf("discarded: the row of %s kept aside as %s is deleted\n", argv[0], argv[2]);
    return CLI_OK;
}

int cmd_conflicts(int argc, char **argv)
{
    static const struct option options[] = {{"db", required_argument, NULL, 'd'},
                                            {"format", required_argument, NULL, 'f'},
                                            {"as", required_argument, NULL, 'a'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *db = NULL;
    cli_format format = CLI_FORMAT_TEXT;
    /* Never more --as values than arguments. */
    const char **new_key = stm_calloc((size_t)argc + 1, sizeof *new_key);
    size_t nnew_key = 0;
    int c, status = -1;
    opterr = 0;
    while (status < 0 && (c = getopt_long(argc, argv, ":d:f:a:h", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'a':
            new_key[nnew_key++] = optarg;
            break;
        case 'f':
            if (!cli_parse_format(optarg, 1u << CLI_FORMAT_TEXT | 1u << CLI_FORMAT_JSON, &format))
                status = cli_usage_error("conflicts", "--format must be text or json");
            break;
        case 'h':
            fputs(s_help, stdout);
            status = CLI_OK;
            break;
        default:
            status = cli_bad_option("conflicts", argv[optind - 1], c);
        }
    }
    const char *what = optind < argc ? argv[optind] : NULL;
    if (status >= 0)
        ;
    else if (!db)
        status = cli_usage_error("conflicts", "--db FILE is required");
    else if (what && strcmp(what, "discard") != 0 && strcmp(what, "keep") != 0)
        status = cli_usage_error("conflicts", "unknown action '%s' (discard or keep)", what);
    else if (nnew_key && !(what && strcmp(what, "keep") == 0))
        status = cli_usage_error("conflicts", "--as gives a kept row's new key: only with keep");
    else if (what)
        status = s_resolve(what, db, new_key, nnew_key, argc - optind - 1, argv + optind + 1);
    free(new_key);
    if (status >= 0)
        return status;
    stm_error err = {0};
    store_t *store = NULL;
    if (cli_open_db(db, &store, &err) != STM_OK)
        return cli_fail("conflicts", &err);
    opbatch_t *kept = stm_opbatch_new();
    stm_err rc = stm_conflicts_rows(store, kept, &err);
    stm_store_destroy(&store);
    if (rc != STM_OK) {
        stm_opbatch_destroy(&kept);
        return cli_fail("conflicts", &err);
    }
    buf_t out = BUF_INIT;
    if (format == CLI_FORMAT_JSON)
        s_render_json(kept, &out);
    else
        s_render_text(kept, &out);
    fputs(stm_buf_str(&out), stdout);
    stm_buf_free(&out);
    stm_opbatch_destroy(&kept);
    return CLI_OK;
}
