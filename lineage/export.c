#include "export.h"
#include "lens.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/readfile.h"
#include "toml/toml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ---- */

static void s_set_id(toml_value *t, const char *key, const stm_id *id)
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(id, hex);
    stm_toml_table_set(t, key, stm_toml_new_string(hex, STM_ID_HEX_LEN));
}

static void s_set_str(toml_value *t, const char *key, const char *s)
{
    stm_toml_table_set(t, key, stm_toml_new_string(s, strlen(s)));
}

static toml_value *s_name_array(char **names, size_t n)
{
    toml_value *a = stm_toml_new_array();
    for (size_t i = 0; i < n; i++)
        stm_toml_array_push(a, stm_toml_new_string(names[i], strlen(names[i])));
    return a;
}

static toml_value *s_columns(const catalog_table *t)
{
    toml_value *cols = stm_toml_new_array();
    stm_toml_set_inline(cols, true);
    for (size_t i = 0; i < stm_catalog_table_count(t); i++) {
        const catalog_column *c = stm_catalog_table_column(t, i);
        toml_value *col = stm_toml_new_table();
        stm_toml_set_inline(col, true);
        s_set_str(col, "name", c->name);
        s_set_str(col, "type", c->decltype);
        s_set_str(col, "affinity", stm_catalog_affinity_name(c->affinity));
        stm_toml_table_set(col, "not_null", stm_toml_new_bool(c->not_null));
        if (c->default_sql)
            s_set_str(col, "default", c->default_sql);
        stm_toml_table_set(col, "pk", stm_toml_new_integer(c->pk));
        if (c->hidden)
            stm_toml_table_set(col, "hidden", stm_toml_new_integer(c->hidden));
        if (c->key_collation) /* not in the head: a format-1 reader may skip it */
            s_set_str(col, "collation", c->key_collation);
        stm_toml_array_push(cols, col);
    }
    return cols;
}

/* *format2: set when a table says something format 1 could not (a keys setting),
 * which a format-1 reader would drop and then find the head wrong. */
static toml_value *s_family(const family_t *f, bool *format2)
{
    toml_value *t = stm_toml_new_table();
    size_t n = stm_family_count(f);
    const family_entry *last = n ? stm_family_entry_at(f, n - 1) : NULL;
    stm_toml_table_set(t, "current_version", stm_toml_new_integer(last ? last->version : 0));
    stm_id head = stm_family_head(f);
    s_set_id(t, "head", &head);
    s_set_str(t, "status", stm_family_table(f) ? "live" : "dropped");
    toml_value *versions = stm_toml_new_array();
    for (size_t i = 0; i < n; i++) {
        const family_entry *e = stm_family_entry_at(f, i);
        toml_value *v = stm_toml_new_table();
        stm_toml_table_set(v, "version", stm_toml_new_integer(e->version));
        s_set_id(v, "id", &e->version_id);
        s_set_str(v, "action", stm_family_action_name(e->action));
        s_set_id(v, "head", &e->head);
        stm_toml_table_set(v, "added_fields", s_name_array(e->added, e->nadded));
        stm_toml_table_set(v, "removed_fields", s_name_array(e->removed, e->nremoved));
        stm_toml_table_set(v, "changed_fields", s_name_array(e->changed, e->nchanged));
        if (e->table) {
            stm_toml_table_set(v, "without_rowid",
                               stm_toml_new_bool(stm_catalog_table_without_rowid(e->table)));
            const char *keys = stm_directive_keys_name(stm_catalog_table_keys(e->table));
            if (keys) {
                s_set_str(v, "keys", keys);
                *format2 = true;
            }
            stm_toml_table_set(v, "columns", s_columns(e->table));
        }
        stm_toml_array_push(versions, v);
    }
    stm_toml_table_set(t, "versions", versions);
    return t;
}

/* What version's migration does to the data (lens.h): `lenses`, its changes, or
 * `lenses_unknown`, why they are not known. Nothing for a version with neither. */
static void s_version_lenses(toml_value *t, const lens_set_t *lenses, int version)
{
    const char *why = NULL;
    if (!stm_lens_probed(lenses, version, &why)) {
        s_set_str(t, "lenses_unknown", why ? why : "not probed");
        return;
    }
    size_t n = 0;
    const lens_change *ch = stm_lens_changes(lenses, version, &n);
    if (!n)
        return;
    toml_value *a = stm_toml_new_array();
    for (size_t i = 0; i < n; i++) {
        toml_value *c = stm_toml_new_table();
        stm_toml_set_inline(c, true);
        s_set_str(c, "kind", stm_lens_kind_name(ch[i].kind));
        s_set_str(c, "table", ch[i].table);
        if (ch[i].column)
            s_set_str(c, "column", ch[i].column);
        if (ch[i].from_table)
            s_set_str(c, "from_table", ch[i].from_table);
        if (ch[i].from_column)
            s_set_str(c, "from_column", ch[i].from_column);
        stm_toml_array_push(a, c);
    }
    stm_toml_table_set(t, "lenses", a);
}

char *stm_export_lineage(const lineage_t *l)
{
    return stm_export_lineage_lenses(l, NULL);
}

char *stm_export_lineage_lenses(const lineage_t *l, const lens_set_t *lenses)
{
    if (lenses && stm_lens_count(lenses) != stm_lineage_count(l))
        lenses = NULL; /* not this lineage's */
    toml_value *root = stm_toml_new_table();
    stm_toml_table_set(root, "format", stm_toml_new_integer(EXPORT_FORMAT));
    s_set_str(root, "schema_set", stm_lineage_name(l));
    const lineage_version *head = stm_lineage_head(l);
    stm_toml_table_set(root, "head_version", stm_toml_new_integer(head ? head->number : 0));
    stm_id zero = {{0}};
    s_set_id(root, "head_id", head ? &head->id : &zero);

    toml_value *versions = stm_toml_new_array();
    for (size_t i = 0; i < stm_lineage_count(l); i++) {
        const lineage_version *v = stm_lineage_version_at(l, i);
        toml_value *t = stm_toml_new_table();
        stm_toml_table_set(t, "number", stm_toml_new_integer(v->number));
        s_set_id(t, "id", &v->id);
        s_set_id(t, "parent", &v->parent);
        s_set_str(t, "description", v->description);
        s_set_id(t, "checksum", &v->checksum);
        if (lenses)
            s_version_lenses(t, lenses, v->number);
        stm_toml_array_push(versions, t);
    }
    stm_toml_table_set(root, "versions", versions);
    /* Whether the versions say what their migrations do (absent: not known here). */
    if (lenses)
        stm_toml_table_set(root, "lenses", stm_toml_new_bool(true));

    /* Left out when there are none, so that the files of schema sets without virtual
     * tables are what format 1 always wrote. */
    if (stm_lineage_virtual_count(l)) {
        toml_value *virtuals = stm_toml_new_array();
        for (size_t i = 0; i < stm_lineage_virtual_count(l); i++) {
            const lineage_virtual *v = stm_lineage_virtual_at(l, i);
            toml_value *t = stm_toml_new_table();
            s_set_str(t, "name", v->name);
            stm_toml_table_set(t, "created", stm_toml_new_integer(v->created));
            if (v->dropped)
                stm_toml_table_set(t, "dropped", stm_toml_new_integer(v->dropped));
            stm_toml_array_push(virtuals, t);
        }
        stm_toml_table_set(root, "virtual_tables", virtuals);
    }

    toml_value *families = stm_toml_new_table();
    bool format2 = false;
    for (size_t i = 0; i < stm_lineage_family_count(l); i++) {
        const family_t *f = stm_lineage_family_at(l, i);
        stm_toml_table_set(families, stm_family_name(f), s_family(f, &format2));
    }
    stm_toml_table_set(root, "families", families);
    /* Format 1 where it says all: older readers still read those files. */
    if (!format2)
        stm_toml_table_set(root, "format", stm_toml_new_integer(1));

    buf_t header = BUF_INIT;
    stm_buf_printf(&header,
                   "stemma lineage export of schema set \"%s\": %zu versions, %zu families.\n"
                   "Layout: docs/toml-format.md. Ids are BLAKE2b-256 digests in lowercase hex.",
                   stm_lineage_name(l), stm_lineage_count(l), stm_lineage_family_count(l));
    char *text = stm_toml_emit(root, stm_buf_str(&header));
    stm_buf_free(&header);
    stm_toml_destroy(&root);
    return text;
}

/* ---- reading ---- */

/* What the reader needs to name a place in the file. */
typedef struct {
    const char *name; /* the file name, for messages */
    stm_error *err;
} s_reader;

static stm_err s_bad(const s_reader *r, const toml_value *at, const char *path, const char *what)
{
    return stm_error_set(r->err, STM_EINPUT, "%s:%d:%d: %s: %s", r->name, stm_toml_line(at),
                         stm_toml_column(at), path, what);
}

/* Fetches key from table t with the given type; a missing key or a wrong type is an
 * error that names the path. */
static stm_err s_get(const s_reader *r, const toml_value *t, const char *path, const char *key,
                     toml_type type, const toml_value **out)
{
    const toml_value *v = stm_toml_table_get(t, key);
    if (v && stm_toml_type_of(v) == type) {
        *out = v;
        return STM_OK;
    }
    /* The key's whole name, for the message only: a cached history reads thousands. */
    char full[256];
    snprintf(full, sizeof full, "%s%s%s", path, *path ? "." : "", key);
    if (!v)
        return s_bad(r, t, full, "missing");
    char what[96];
    snprintf(what, sizeof what, "expected a %s, found a %s", stm_toml_type_name(type),
             stm_toml_type_name(stm_toml_type_of(v)));
    return s_bad(r, v, full, what);
}

static stm_err s_get_string(const s_reader *r, const toml_value *t, const char *path,
                            const char *key, const char **out)
{
    const toml_value *v;
    stm_err rc = s_get(r, t, path, key, TOML_STRING, &v);
    if (rc == STM_OK) {
        size_t len;
        *out = stm_toml_string(v, &len);
        if (strlen(*out) != len)
            return s_bad(r, v, key, "holds a NUL character");
    }
    return rc;
}

static stm_err s_get_int(const s_reader *r, const toml_value *t, const char *path, const char *key,
                         int64_t min, int64_t max, int64_t *out)
{
    const toml_value *v;
    stm_err rc = s_get(r, t, path, key, TOML_INTEGER, &v);
    if (rc != STM_OK)
        return rc;
    *out = stm_toml_integer(v);
    if (*out < min || *out > max) {
        char what[96];
        snprintf(what, sizeof what, "%lld is out of range (%lld to %lld)", (long long)*out,
                 (long long)min, (long long)max);
        return s_bad(r, v, key, what);
    }
    return STM_OK;
}

static stm_err s_get_bool(const s_reader *r, const toml_value *t, const char *path, const char *key,
                          bool *out)
{
    const toml_value *v;
    stm_err rc = s_get(r, t, path, key, TOML_BOOL, &v);
    if (rc == STM_OK)
        *out = stm_toml_bool(v);
    return rc;
}

static stm_err s_get_id(const s_reader *r, const toml_value *t, const char *path, const char *key,
                        stm_id *out)
{
    const char *hex;
    stm_err rc = s_get_string(r, t, path, key, &hex);
    if (rc == STM_OK && !stm_id_from_hex(hex, out))
        return s_bad(r, stm_toml_table_get(t, key), key, "expected 64 hexadecimal digits");
    return rc;
}

/* Turns a lower layer's STM_ECORRUPT message into one that names the file and place. */
static stm_err s_corrupt_at(const s_reader *r, const toml_value *at, stm_err rc)
{
    if (rc != STM_OK)
        stm_error_prefix(r->err, "%s:%d:%d", r->name, stm_toml_line(at), stm_toml_column(at));
    return rc;
}

/* Entry i of array, which must be a table; path is set to "NAME[i]" for messages. */
static stm_err s_entry(const s_reader *r, const toml_value *array, const char *name, size_t i,
                       char *path, size_t size, const toml_value **out)
{
    *out = stm_toml_array_at(array, i);
    snprintf(path, size, "%s[%zu]", name, i);
    return stm_toml_type_of(*out) == TOML_TABLE ? STM_OK : s_bad(r, *out, path, "expected a table");
}

static stm_err s_read_versions(const s_reader *r, const toml_value *root, lineage_t *l)
{
    const toml_value *versions;
    stm_err rc = s_get(r, root, "", "versions", TOML_ARRAY, &versions);
    for (size_t i = 0; rc == STM_OK && i < stm_toml_array_count(versions); i++) {
        const toml_value *v;
        char path[48];
        if ((rc = s_entry(r, versions, "versions", i, path, sizeof path, &v)))
            return rc;
        int64_t number;
        stm_id id, parent, checksum;
        const char *description;
        if ((rc = s_get_int(r, v, path, "number", 1, SCHEMASET_MAX_VERSIONS, &number)) ||
            (rc = s_get_id(r, v, path, "id", &id)) ||
            (rc = s_get_id(r, v, path, "parent", &parent)) ||
            (rc = s_get_string(r, v, path, "description", &description)) ||
            (rc = s_get_id(r, v, path, "checksum", &checksum)))
            return rc;
        rc = s_corrupt_at(
            r, v,
            stm_lineage_add_version(l, (int)number, &id, &parent, &checksum, description, r->err));
    }
    return rc;
}

/* The optional virtual_tables array (a file without it holds none). */
static stm_err s_read_virtuals(const s_reader *r, const toml_value *root, lineage_t *l)
{
    const toml_value *virtuals = stm_toml_table_get(root, "virtual_tables");
    if (!virtuals)
        return STM_OK;
    if (stm_toml_type_of(virtuals) != TOML_ARRAY)
        return s_bad(r, virtuals, "virtual_tables", "expected an array");
    stm_err rc = STM_OK;
    for (size_t i = 0; rc == STM_OK && i < stm_toml_array_count(virtuals); i++) {
        const toml_value *v;
        char path[48];
        if ((rc = s_entry(r, virtuals, "virtual_tables", i, path, sizeof path, &v)))
            return rc;
        const char *name;
        int64_t created, dropped = 0;
        if ((rc = s_get_string(r, v, path, "name", &name)) ||
            (rc = s_get_int(r, v, path, "created", 1, SCHEMASET_MAX_VERSIONS, &created)))
            return rc;
        if (stm_toml_table_get(v, "dropped") &&
            (rc = s_get_int(r, v, path, "dropped", 1, SCHEMASET_MAX_VERSIONS, &dropped)))
            return rc;
        rc = s_corrupt_at(r, v,
                          stm_lineage_add_virtual(l, name, (int)created, (int)dropped, r->err));
    }
    return rc;
}

static stm_err s_read_columns(const s_reader *r, const toml_value *entry, const char *path,
                              catalog_table *t)
{
    const toml_value *cols;
    stm_err rc = s_get(r, entry, path, "columns", TOML_ARRAY, &cols);
    if (rc == STM_OK && stm_toml_array_count(cols) == 0)
        return s_bad(r, cols, path, "a table needs at least one column");
    for (size_t i = 0; rc == STM_OK && i < stm_toml_array_count(cols); i++) {
        const toml_value *c = stm_toml_array_at(cols, i);
        char cpath[320];
        snprintf(cpath, sizeof cpath, "%s.columns[%zu]", path, i);
        if (stm_toml_type_of(c) != TOML_TABLE)
            return s_bad(r, c, cpath, "expected a table");
        const char *name, *decltype, *affinity, *dflt = NULL, *collation = NULL;
        bool not_null;
        int64_t pk, hidden = 0;
        catalog_column col = {0};
        if ((rc = s_get_string(r, c, cpath, "name", &name)) ||
            (rc = s_get_string(r, c, cpath, "type", &decltype)) ||
            (rc = s_get_string(r, c, cpath, "affinity", &affinity)) ||
            (rc = s_get_bool(r, c, cpath, "not_null", &not_null)) ||
            (rc = s_get_int(r, c, cpath, "pk", 0, 32767, &pk)))
            return rc;
        if (stm_toml_table_get(c, "default") && (rc = s_get_string(r, c, cpath, "default", &dflt)))
            return rc;
        if (stm_toml_table_get(c, "hidden") &&
            (rc = s_get_int(r, c, cpath, "hidden", 0, 3, &hidden)))
            return rc;
        if (stm_toml_table_get(c, "collation") &&
            (rc = s_get_string(r, c, cpath, "collation", &collation)))
            return rc;
        if (collation && (pk == 0 || !*collation))
            return s_bad(r, stm_toml_table_get(c, "collation"), cpath,
                         "only a key column has a collation here, and it has a name");
        if (!stm_catalog_affinity_parse(affinity, &col.affinity))
            return s_bad(r, stm_toml_table_get(c, "affinity"), cpath,
                         "affinity must be TEXT, NUMERIC, INTEGER, REAL or BLOB");
        col.name = (char *)name;
        col.decltype = (char *)decltype;
        col.not_null = not_null;
        col.default_sql = (char *)dflt;
        col.pk = (int)pk;
        col.hidden = (int)hidden;
        col.key_collation = (char *)collation;
        stm_catalog_table_add_column(t, &col);
    }
    /* Checked once all are read, sorted: looking each name up among those before it
     * cost n squared for a file's wide table. */
    const catalog_column *dup = rc == STM_OK ? stm_catalog_table_duplicate(t) : NULL;
    if (dup) {
        size_t i = (size_t)(dup - stm_catalog_table_column(t, 0));
        char cpath[320];
        snprintf(cpath, sizeof cpath, "%s.columns[%zu]", path, i);
        return s_bad(r, stm_toml_array_at(cols, i), cpath, "a column of that name comes twice");
    }
    return rc;
}

static stm_err s_read_family(const s_reader *r, lineage_t *l, const char *name,
                             const toml_value *ft)
{
    char path[160];
    snprintf(path, sizeof path, "families.%s", name);
    if (stm_toml_type_of(ft) != TOML_TABLE)
        return s_bad(r, ft, path, "expected a table");
    const toml_value *entries;
    stm_err rc = s_get(r, ft, path, "versions", TOML_ARRAY, &entries);
    family_t *f = stm_family_new(name);
    for (size_t i = 0; rc == STM_OK && i < stm_toml_array_count(entries); i++) {
        const toml_value *e = stm_toml_array_at(entries, i);
        char epath[200];
        snprintf(epath, sizeof epath, "%s.versions[%zu]", path, i);
        if (stm_toml_type_of(e) != TOML_TABLE) {
            rc = s_bad(r, e, epath, "expected a table");
            break;
        }
        int64_t version;
        stm_id version_id, head;
        const char *action_name;
        family_action action;
        if ((rc = s_get_int(r, e, epath, "version", 1, SCHEMASET_MAX_VERSIONS, &version)) ||
            (rc = s_get_id(r, e, epath, "id", &version_id)) ||
            (rc = s_get_string(r, e, epath, "action", &action_name)) ||
            (rc = s_get_id(r, e, epath, "head", &head)))
            break;
        if (!stm_family_action_parse(action_name, &action)) {
            rc = s_bad(r, stm_toml_table_get(e, "action"), epath,
                       "action must be created, changed or dropped");
            break;
        }
        if ((size_t)version > stm_lineage_count(l) ||
            !stm_id_equal(&stm_lineage_version_at(l, (size_t)version - 1)->id, &version_id)) {
            rc = stm_error_set(r->err, STM_ECORRUPT,
                               "%s:%d:%d: %s: names version %lld, which this lineage does not "
                               "hold with that id",
                               r->name, stm_toml_line(e), stm_toml_column(e), epath,
                               (long long)version);
            break;
        }
        catalog_table *table = NULL;
        if (action != FAMILY_DROPPED) {
            bool without_rowid = false;
            if (stm_toml_table_get(e, "without_rowid") &&
                (rc = s_get_bool(r, e, epath, "without_rowid", &without_rowid)))
                break;
            const char *keys_name = NULL;
            directive_keys keys = DIRECTIVE_KEYS_DEFAULT;
            if (stm_toml_table_get(e, "keys") &&
                (rc = s_get_string(r, e, epath, "keys", &keys_name)))
                break;
            if (keys_name && !stm_directive_keys_parse(keys_name, &keys)) {
                rc = s_bad(r, stm_toml_table_get(e, "keys"), epath,
                           "keys must be per-device or shared");
                break;
            }
            table = stm_catalog_table_new(name, without_rowid);
            stm_catalog_table_set_keys(table, keys);
            if ((rc = s_read_columns(r, e, epath, table)) != STM_OK) {
                stm_catalog_table_destroy(&table);
                break;
            }
        }
        rc = s_corrupt_at(
            r, e, stm_family_append(f, (int)version, &version_id, action, table, &head, r->err));
    }
    if (rc != STM_OK) {
        stm_family_destroy(&f);
        return rc;
    }
    return s_corrupt_at(r, ft, stm_lineage_add_family(l, f, r->err));
}

stm_err stm_export_parse(const char *text, size_t len, const char *name, lineage_t **out,
                         stm_error *err)
{
    toml_value *root = NULL;
    stm_err rc = stm_toml_parse(text, len, name, &root, err);
    if (rc != STM_OK)
        return rc;
    s_reader r = {name, err};
    int64_t format, head_version;
    const char *set_name;
    stm_id head_id;
    lineage_t *l = NULL;
    if ((rc = s_get_int(&r, root, "", "format", 1, INT32_MAX, &format)))
        goto done;
    if (format > EXPORT_FORMAT) {
        rc = stm_error_set(err, STM_EINPUT,
                           "%s: format %lld was written by a newer stemma (this one reads format "
                           "%d)",
                           name, (long long)format, EXPORT_FORMAT);
        goto done;
    }
    if ((rc = s_get_string(&r, root, "", "schema_set", &set_name)) ||
        (rc = s_get_int(&r, root, "", "head_version", 0, SCHEMASET_MAX_VERSIONS, &head_version)) ||
        (rc = s_get_id(&r, root, "", "head_id", &head_id)))
        goto done;
    l = stm_lineage_new(set_name);
    if ((rc = s_read_versions(&r, root, l)))
        goto done;
    const lineage_version *head = stm_lineage_head(l);
    stm_id zero = {{0}};
    if ((size_t)head_version != stm_lineage_count(l) ||
        !stm_id_equal(&head_id, head ? &head->id : &zero)) {
        rc = stm_error_set(err, STM_ECORRUPT,
                           "%s: head_version and head_id do not match the last of the versions",
                           name);
        goto done;
    }
    if ((rc = s_read_virtuals(&r, root, l)))
        goto done;
    const toml_value *families = stm_toml_table_get(root, "families");
    if (families && stm_toml_type_of(families) != TOML_TABLE) {
        rc = s_bad(&r, families, "families", "expected a table");
        goto done;
    }
    for (size_t i = 0; families && i < stm_toml_table_count(families) && rc == STM_OK; i++)
        rc = s_read_family(&r, l, stm_toml_table_key(families, i), stm_toml_table_at(families, i));
done:
    stm_toml_destroy(&root);
    if (rc != STM_OK)
        stm_lineage_destroy(&l);
    else
        *out = l;
    return rc;
}

/* The lenses versions[] hold, assembled with l (lens.h). */
static stm_err s_read_lenses(const s_reader *r, const toml_value *root, const lineage_t *l,
                             lens_set_t **out)
{
    const toml_value *versions = stm_toml_table_get(root, "versions");
    lens_set_t *s = stm_lens_assemble_new(stm_lineage_count(l));
    stm_err rc = STM_OK;
    for (size_t i = 0; rc == STM_OK && i < stm_toml_array_count(versions); i++) {
        const toml_value *v = stm_toml_array_at(versions, i);
        char path[64];
        snprintf(path, sizeof path, "versions[%zu]", i);
        if (stm_toml_table_get(v, "lenses_unknown")) {
            const char *why;
            if ((rc = s_get_string(r, v, path, "lenses_unknown", &why)) == STM_OK)
                stm_lens_assemble_unprobed(s, (int)i + 1, why);
            continue;
        }
        const toml_value *changes = stm_toml_table_get(v, "lenses");
        if (!changes)
            continue;
        if (stm_toml_type_of(changes) != TOML_ARRAY) {
            rc = s_bad(r, changes, path, "lenses: expected an array");
            break;
        }
        for (size_t k = 0; rc == STM_OK && k < stm_toml_array_count(changes); k++) {
            char cpath[96];
            const toml_value *c;
            if ((rc = s_entry(r, changes, "lenses", k, cpath, sizeof cpath, &c)) != STM_OK)
                break;
            const char *kind, *table;
            lens_change ch = {0};
            if ((rc = s_get_string(r, c, cpath, "kind", &kind)) ||
                (rc = s_get_string(r, c, cpath, "table", &table)))
                break;
            bool known = false;
            for (int kk = 0; kk < LENS_KINDS && !known; kk++)
                if (strcmp(kind, stm_lens_kind_name((lens_kind)kk)) == 0)
                    ch.kind = (lens_kind)kk, known = true;
            if (!known) {
                rc = s_bad(r, stm_toml_table_get(c, "kind"), cpath,
                           "kind: not one of renamed, cast, filled, computed, added, copied, "
                           "dropped, emptied, replaced");
                break;
            }
            ch.table = table;
            static const char *const keys[] = {"column", "from_table", "from_column"};
            const char **slots[] = {&ch.column, &ch.from_table, &ch.from_column};
            for (size_t kk = 0; kk < 3 && rc == STM_OK; kk++)
                if (stm_toml_table_get(c, keys[kk]))
                    rc = s_get_string(r, c, cpath, keys[kk], slots[kk]);
            /* What each kind names (lens.h): a change that says less is no change. */
            bool from = ch.kind == LENS_RENAMED || ch.kind == LENS_CAST || ch.kind == LENS_FILLED ||
                        ch.kind == LENS_COPIED;
            if (rc == STM_OK && from && (!ch.column || !ch.from_table || !ch.from_column))
                rc = s_bad(r, c, cpath,
                           "a change of this kind names column, from_table and "
                           "from_column");
            if (rc == STM_OK)
                stm_lens_assemble_change(s, (int)i + 1, &ch);
        }
    }
    if (rc != STM_OK) {
        stm_lens_destroy(&s);
        return rc;
    }
    stm_lens_assemble_finish(s, l);
    *out = s;
    return STM_OK;
}

stm_err stm_export_parse_lenses(const char *text, size_t len, const char *name, lineage_t **out,
                                lens_set_t **lenses, stm_error *err)
{
    *lenses = NULL;
    stm_err rc = stm_export_parse(text, len, name, out, err);
    if (rc != STM_OK)
        return rc;
    toml_value *root = NULL;
    if ((rc = stm_toml_parse(text, len, name, &root, err)) != STM_OK) {
        stm_lineage_destroy(out);
        return rc;
    }
    s_reader r = {name, err};
    const toml_value *has = stm_toml_table_get(root, "lenses");
    bool with = false;
    if (has && (rc = s_get_bool(&r, root, "", "lenses", &with)) == STM_OK && with)
        rc = s_read_lenses(&r, root, *out, lenses);
    stm_toml_destroy(&root);
    if (rc != STM_OK)
        stm_lineage_destroy(out);
    return rc;
}

stm_err stm_export_read_file_lenses(const char *path, lineage_t **out, lens_set_t **lenses,
                                    stm_error *err)
{
    char *text;
    size_t len;
    stm_err rc = stm_readfile_all(path, EXPORT_MAX_BYTES, &text, &len, err);
    if (rc != STM_OK)
        return rc;
    rc = stm_export_parse_lenses(text, len, path, out, lenses, err);
    free(text);
    return rc;
}

stm_err stm_export_read_file(const char *path, lineage_t **out, stm_error *err)
{
    char *text;
    size_t len;
    stm_err rc = stm_readfile_all(path, EXPORT_MAX_BYTES, &text, &len, err);
    if (rc != STM_OK)
        return rc;
    rc = stm_export_parse(text, len, path, out, err);
    free(text);
    return rc;
}
