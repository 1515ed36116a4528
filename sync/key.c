#include "key.h"
#include "codec.h"
#include "lineage/sqlscript.h"

#include <msgpack.h>
#include <string.h>

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
        stm_sqlscript_quote_ident(sql, stm_catalog_table_key(t, k)->name);
        stm_buf_printf(sql, " = ?%zu", k + 1);
    }
}
