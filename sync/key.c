#include "key.h"
#include "codec.h"
#include "lineage/sqlscript.h"

#include <msgpack.h>
#include <string.h>
#include <strings.h>

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

void stm_key_pack(const op_value *values, size_t n, buf_t *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_write);
    msgpack_pack_array(&pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        stm_codec_pack_value(&pk, &values[i]);
}

bool stm_key_values(const op_value *key, op_value *values, size_t cap, size_t *n)
{
    if (key->type != VALUE_KEY) {
        if (cap)
            values[0] = *key;
        *n = 1;
        return true;
    }
    msgread_t r;
    stm_msgread_init(&r, key->bytes, key->len);
    uint32_t count;
    if (!stm_msgread_array(&r, &count) || count < 2 || count > KEY_MAX_COLUMNS)
        return false;
    for (uint32_t i = 0; i < count; i++) {
        op_value v;
        if (!stm_codec_read_value(&r, &v))
            return false;
        if (i < cap)
            values[i] = v;
    }
    *n = count;
    return stm_msgread_left(&r) == 0;
}

size_t stm_key_columns(const op_value *key)
{
    size_t n = 0;
    return stm_key_values(key, NULL, 0, &n) ? n : 0;
}

bool stm_key_has_null(const op_value *key)
{
    op_value values[KEY_MAX_COLUMNS];
    size_t n = 0;
    if (!stm_key_values(key, values, KEY_MAX_COLUMNS, &n))
        return true;
    for (size_t i = 0; i < n; i++)
        if (values[i].type == VALUE_NULL)
            return true;
    return false;
}

bool stm_key_read(msgread_t *r, buf_t *scratch, op_value *key)
{
    if (stm_msgread_peek(r) != MSG_ARRAY)
        return stm_codec_read_value(r, key);
    msgread_t at = *r;
    uint32_t count;
    if (!stm_msgread_array(&at, &count) || count < 2 || count > KEY_MAX_COLUMNS)
        return false;
    op_value values[KEY_MAX_COLUMNS];
    for (uint32_t i = 0; i < count; i++)
        if (!stm_codec_read_value(&at, &values[i]))
            return false;
    stm_buf_reset(scratch);
    stm_key_pack(values, count, scratch);
    *r = at;
    memset(key, 0, sizeof *key);
    key->type = VALUE_KEY;
    key->bytes = scratch->data;
    key->len = scratch->len;
    return true;
}

void stm_key_match_sql(buf_t *sql, const catalog_table *t)
{
    for (size_t k = 0; k < stm_catalog_table_key_count(t); k++) {
        if (k)
            stm_buf_puts(sql, " AND ");
        const catalog_column *c = stm_catalog_table_key(t, k);
        stm_sqlscript_quote_ident(sql, c->name);
        stm_buf_printf(sql, " = ?%zu", k + 1);
        /* As the key compares: a collation given in PRIMARY KEY (...) is the key's, not
         * the column's, which "=" would use. */
        stm_key_collate_sql(sql, c);
    }
}

void stm_key_column(sqlite3_stmt *stmt, int i, size_t columns, op_value *out)
{
    stm_op_value_column(stmt, i, out);
    if (columns >= 2 && out->type == VALUE_BLOB)
        out->type = VALUE_KEY;
}

key_collation stm_key_collation_of(const catalog_column *c)
{
    if (c->key_collation && strcasecmp(c->key_collation, "NOCASE") == 0)
        return KEY_NOCASE;
    if (c->key_collation && strcasecmp(c->key_collation, "RTRIM") == 0)
        return KEY_RTRIM;
    return KEY_BINARY;
}

/* Appends text folded by coll to b. */
static void s_fold(buf_t *b, const op_value *v, key_collation coll)
{
    const unsigned char *p = v->bytes;
    size_t len = v->len;
    if (coll == KEY_RTRIM)
        while (len && p[len - 1] == ' ')
            len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = p[i];
        /* NOCASE folds ASCII only, as SQLite's does. */
        stm_buf_putc(b, (char)(coll == KEY_NOCASE && ch >= 'A' && ch <= 'Z' ? ch + 32 : ch));
    }
}

void stm_key_canonical(const op_value *key, const key_collation *colls, size_t n, buf_t *scratch,
                       op_value *out)
{
    *out = *key;
    op_value values[KEY_MAX_COLUMNS];
    size_t count = 0;
    if (!stm_key_values(key, values, KEY_MAX_COLUMNS, &count) || count != n)
        return;
    bool folds = false;
    for (size_t i = 0; i < n; i++)
        folds |= colls[i] != KEY_BINARY && values[i].type == VALUE_TEXT;
    if (!folds)
        return;
    /* The folded texts first, then (for several columns) the key packed again. */
    stm_buf_reset(scratch);
    size_t at[KEY_MAX_COLUMNS], len[KEY_MAX_COLUMNS];
    bool folded[KEY_MAX_COLUMNS];
    for (size_t i = 0; i < n; i++) {
        folded[i] = colls[i] != KEY_BINARY && values[i].type == VALUE_TEXT;
        at[i] = scratch->len;
        if (folded[i])
            s_fold(scratch, &values[i], colls[i]);
        len[i] = scratch->len - at[i];
    }
    if (n == 1) {
        out->type = VALUE_TEXT;
        out->bytes = scratch->data;
        out->len = len[0];
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (folded[i]) {
            values[i].bytes = scratch->data + at[i];
            values[i].len = len[i];
        }
    buf_t packed = BUF_INIT;
    stm_key_pack(values, n, &packed);
    stm_buf_reset(scratch);
    stm_buf_append(scratch, packed.data, packed.len);
    stm_buf_free(&packed);
    out->type = VALUE_KEY;
    out->bytes = scratch->data;
    out->len = scratch->len;
}

bool stm_key_part_is(const op_value *key, size_t i, const op_value *v, key_collation coll)
{
    op_value values[KEY_MAX_COLUMNS];
    size_t n = 0;
    if (!stm_key_values(key, values, KEY_MAX_COLUMNS, &n) || i >= n)
        return false;
    if (coll == KEY_BINARY || v->type != VALUE_TEXT || values[i].type != VALUE_TEXT)
        return stm_op_value_equal(&values[i], v);
    buf_t a = BUF_INIT, b = BUF_INIT;
    s_fold(&a, &values[i], coll);
    s_fold(&b, v, coll);
    bool same = a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
    stm_buf_free(&a);
    stm_buf_free(&b);
    return same;
}

void stm_key_collate_sql(buf_t *sql, const catalog_column *c)
{
    switch (stm_key_collation_of(c)) {
    case KEY_NOCASE:
        stm_buf_puts(sql, " COLLATE NOCASE");
        break;
    case KEY_RTRIM:
        stm_buf_puts(sql, " COLLATE RTRIM");
        break;
    case KEY_BINARY:
        break;
    }
}
