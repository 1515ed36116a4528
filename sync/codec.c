#include "codec.h"
#include "base/mem.h"
#include "key.h"
#include "msgread.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding ---- */

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

/* A list of distinct byte strings, found by a small open-addressing hash, so that
 * building a batch's dictionaries stays linear. Entries are lent by the batch. */
typedef struct {
    const void **items;
    size_t *lens;
    size_t count;
    size_t cap;
    uint32_t *slots; /* index + 1, 0 = empty */
    size_t nslots;   /* a power of two */
} s_dict;

static uint32_t s_hash(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static void s_dict_rehash(s_dict *d)
{
    size_t n = d->nslots ? d->nslots * 2 : 64;
    free(d->slots);
    d->slots = stm_calloc(n, sizeof *d->slots);
    d->nslots = n;
    for (size_t i = 0; i < d->count; i++) {
        size_t s = s_hash(d->items[i], d->lens[i]) & (n - 1);
        while (d->slots[s])
            s = (s + 1) & (n - 1);
        d->slots[s] = (uint32_t)i + 1;
    }
}

static uint32_t s_dict_index(s_dict *d, const void *p, size_t len)
{
    if ((d->count + 1) * 2 > d->nslots)
        s_dict_rehash(d);
    size_t s = s_hash(p, len) & (d->nslots - 1);
    while (d->slots[s]) {
        uint32_t i = d->slots[s] - 1;
        if (d->lens[i] == len && memcmp(d->items[i], p, len) == 0)
            return i;
        s = (s + 1) & (d->nslots - 1);
    }
    size_t cap = d->cap;
    d->items = stm_grow(d->items, &cap, d->count + 1, sizeof *d->items);
    d->lens = stm_grow(d->lens, &d->cap, d->count + 1, sizeof *d->lens);
    d->items[d->count] = p;
    d->lens[d->count] = len;
    d->slots[s] = (uint32_t)d->count + 1;
    return (uint32_t)d->count++;
}

static void s_dict_free(s_dict *d)
{
    free(d->items);
    free(d->lens);
    free(d->slots);
}

static void s_pack_dict(msgpack_packer *pk, const char *key, const s_dict *d, bool binary)
{
    msgpack_pack_str_with_body(pk, key, strlen(key));
    msgpack_pack_array(pk, d->count);
    for (size_t i = 0; i < d->count; i++) {
        if (binary)
            msgpack_pack_bin_with_body(pk, d->items[i], d->lens[i]);
        else
            msgpack_pack_str_with_body(pk, d->items[i], d->lens[i]);
    }
}

void stm_codec_pack_value(msgpack_packer *pk, const op_value *v)
{
    switch (v->type) {
    case VALUE_NULL:
        msgpack_pack_nil(pk);
        break;
    case VALUE_INTEGER:
        msgpack_pack_int64(pk, v->i);
        break;
    case VALUE_REAL:
        msgpack_pack_double(pk, v->r);
        break;
    case VALUE_TEXT:
        msgpack_pack_str_with_body(pk, v->bytes, v->len);
        break;
    case VALUE_BLOB:
        msgpack_pack_bin_with_body(pk, v->bytes, v->len);
        break;
    case VALUE_KEY:
        /* Packed already: an array of values (key.h). */
        pk->callback(pk->data, v->bytes, v->len);
        break;
    }
}

void stm_codec_encode_ops(const opbatch_t *b, size_t from, size_t count, buf_t *out)
{
    s_dict origins = {0}, versions = {0}, tables = {0}, columns = {0};
    uint32_t (*idx)[5] = stm_malloc((count ? count : 1) * sizeof *idx);
    for (size_t k = 0; k < count; k++) {
        const op_t *op = stm_opbatch_at(b, from + k);
        idx[k][0] = s_dict_index(&origins, op->origin.bytes, STM_ID_BYTES);
        idx[k][1] = s_dict_index(&versions, op->version_id.bytes, STM_ID_BYTES);
        idx[k][2] = s_dict_index(&tables, op->table, strlen(op->table));
        idx[k][3] = op->column ? s_dict_index(&columns, op->column, strlen(op->column)) : 0;
        idx[k][4] = op->born_hlc ? s_dict_index(&origins, op->born_origin.bytes, STM_ID_BYTES) : 0;
    }
    size_t nwithheld = stm_opbatch_withheld_count(b);
    uint32_t (*widx)[3] = stm_malloc((nwithheld ? nwithheld : 1) * sizeof *widx);
    for (size_t k = 0; k < nwithheld; k++) {
        const op_withheld *w = stm_opbatch_withheld_at(b, k);
        widx[k][0] = s_dict_index(&origins, w->origin.bytes, STM_ID_BYTES);
        widx[k][1] = s_dict_index(&versions, w->version_id.bytes, STM_ID_BYTES);
        widx[k][2] = s_dict_index(&tables, w->table, strlen(w->table));
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_write);
    /* "withheld" only when there are stand-ins: a batch without is the same bytes as
     * before they existed. */
    size_t nderived = 0;
    for (size_t k = 0; k < count; k++)
        nderived += stm_opbatch_at(b, from + k)->derived;
    msgpack_pack_map(&pk, 5 + (nwithheld > 0) + (nderived > 0));
    s_pack_dict(&pk, "origins", &origins, true);
    s_pack_dict(&pk, "versions", &versions, true);
    s_pack_dict(&pk, "tables", &tables, false);
    s_pack_dict(&pk, "columns", &columns, false);
    /* "derived" only when some operation is (before "ops", which a reader decodes at
     * once when it comes last). */
    if (nderived) {
        msgpack_pack_str_with_body(&pk, "derived", 7);
        msgpack_pack_array(&pk, nderived);
        for (size_t k = 0; k < count; k++)
            if (stm_opbatch_at(b, from + k)->derived)
                msgpack_pack_uint32(&pk, (uint32_t)k);
    }
    msgpack_pack_str_with_body(&pk, "ops", 3);
    msgpack_pack_array(&pk, count);
    for (size_t k = 0; k < count; k++) {
        const op_t *op = stm_opbatch_at(b, from + k);
        msgpack_pack_array(&pk, op->born_hlc ? 11 : 9);
        msgpack_pack_uint32(&pk, idx[k][0]);
        msgpack_pack_uint64(&pk, op->seq);
        msgpack_pack_uint64(&pk, op->hlc);
        msgpack_pack_uint32(&pk, idx[k][1]);
        msgpack_pack_uint32(&pk, idx[k][2]);
        stm_codec_pack_value(&pk, &op->pk);
        if (op->column) {
            msgpack_pack_uint32(&pk, idx[k][3]);
            msgpack_pack_uint8(&pk, (uint8_t)op->affinity);
        } else {
            msgpack_pack_nil(&pk);
            msgpack_pack_nil(&pk);
        }
        stm_codec_pack_value(&pk, &op->value);
        if (op->born_hlc) {
            /* As the distance back from the op's own clock: 0, one byte, for the row
             * change that created the row, most of them. */
            msgpack_pack_uint64(&pk, op->hlc - op->born_hlc);
            msgpack_pack_uint32(&pk, idx[k][4]);
        }
    }
    if (nwithheld) {
        msgpack_pack_str_with_body(&pk, "withheld", 8);
        msgpack_pack_array(&pk, nwithheld);
        for (size_t k = 0; k < nwithheld; k++) {
            const op_withheld *w = stm_opbatch_withheld_at(b, k);
            /* A ninth field only for a pruned one: a withheld one is the same bytes as
             * before pruning existed. */
            msgpack_pack_array(&pk, w->pruned ? 9 : 8);
            msgpack_pack_uint32(&pk, widx[k][0]);
            msgpack_pack_uint64(&pk, w->seq);
            msgpack_pack_uint64(&pk, w->n);
            msgpack_pack_uint64(&pk, w->hlc);
            msgpack_pack_uint32(&pk, widx[k][1]);
            msgpack_pack_uint32(&pk, widx[k][2]);
            stm_codec_pack_value(&pk, &w->pk);
            msgpack_pack_uint64(&pk, w->bytes);
            if (w->pruned)
                msgpack_pack_uint8(&pk, CODEC_STANDIN_PRUNED);
        }
    }
    free(widx);
    free(idx);
    s_dict_free(&origins);
    s_dict_free(&versions);
    s_dict_free(&tables);
    s_dict_free(&columns);
}

/* ---- decoding ---- */

/* One dictionary as read: pointers into the input. */
typedef struct {
    const void **items;
    uint32_t *lens;
    uint32_t count;
} s_list;

static stm_err s_bad(stm_error *err, const char *what)
{
    return stm_error_set(err, STM_EPROTO, "malformed operation batch: %s", what);
}

static bool s_valid_name(const char *p, uint32_t len)
{
    if (len == 0 || len > OP_MAX_NAME_BYTES)
        return false;
    return memchr(p, '\0', len) == NULL;
}

/* Reads a list of ids (bin of 32 bytes) or names (str). Its count is checked against
 * the limit and against the bytes its entries need (34 for an id, 2 for a name) before
 * the list is sized by it. */
static stm_err s_read_list(msgread_t *r, bool ids, s_list *list, stm_error *err)
{
    uint32_t n;
    if (!stm_msgread_array(r, &n) || n > CODEC_MAX_BATCH_OPS ||
        (uint64_t)n * (ids ? 2 + STM_ID_BYTES : 2) > stm_msgread_left(r))
        return s_bad(err, ids ? "the id list is not an array of at most 100000 ids"
                              : "the name list is not an array of at most 100000 names");
    list->items = stm_malloc((n ? n : 1) * sizeof *list->items);
    list->lens = stm_malloc((n ? n : 1) * sizeof *list->lens);
    list->count = n;
    for (uint32_t i = 0; i < n; i++) {
        if (ids) {
            if (!stm_msgread_bin(r, &list->items[i], &list->lens[i]) ||
                list->lens[i] != STM_ID_BYTES)
                return s_bad(err, "an id is not 32 bytes of bin");
        } else {
            const char *s;
            if (!stm_msgread_str(r, &s, &list->lens[i]) || !s_valid_name(s, list->lens[i]))
                return s_bad(err, "a name is not a string of 1 to 1024 bytes without NUL");
            list->items[i] = s;
        }
    }
    return STM_OK;
}

static void s_list_free(s_list *l)
{
    free(l->items);
    free(l->lens);
    memset(l, 0, sizeof *l);
}

bool stm_codec_read_value(msgread_t *r, op_value *v)
{
    memset(v, 0, sizeof *v);
    const void *data;
    uint32_t len;
    switch (stm_msgread_peek(r)) {
    case MSG_NIL:
        v->type = VALUE_NULL;
        return stm_msgread_nil(r);
    case MSG_INT:
        v->type = VALUE_INTEGER;
        return stm_msgread_int(r, &v->i);
    case MSG_FLOAT:
        v->type = VALUE_REAL;
        return stm_msgread_double(r, &v->r);
    case MSG_STR:
        v->type = VALUE_TEXT;
        if (!stm_msgread_str(r, (const char **)&data, &len) || len > OP_MAX_VALUE_BYTES)
            return false;
        v->bytes = data;
        v->len = len;
        return true;
    case MSG_BIN:
        v->type = VALUE_BLOB;
        if (!stm_msgread_bin(r, &data, &len) || len > OP_MAX_VALUE_BYTES)
            return false;
        v->bytes = data;
        v->len = len;
        return true;
    default:
        return false;
    }
}

/* lists: origins, versions, tables, columns as read; names: the tables' and the
 * columns' names as the batch holds them (stm_opbatch_name), each once. */
static stm_err s_read_op(msgread_t *r, const s_list *lists, const char *const *names[2],
                         buf_t *key, opbatch_t *out, stm_error *err)
{
    uint32_t fields;
    if (!stm_msgread_array(r, &fields) || fields < 9)
        return s_bad(err, "an operation is not an array of at least 9 fields");
    uint64_t origin_i, version_i, table_i, seq, hlc;
    if (!stm_msgread_uint(r, &origin_i) || !stm_msgread_uint(r, &seq) ||
        !stm_msgread_uint(r, &hlc) || !stm_msgread_uint(r, &version_i) ||
        !stm_msgread_uint(r, &table_i))
        return s_bad(err, "an operation's origin, seq, hlc, version or table is not an integer");
    if (origin_i >= lists[0].count || version_i >= lists[1].count || table_i >= lists[2].count)
        return s_bad(err, "an operation's index is beyond its list");
    if (seq == 0 || seq > OP_MAX_SEQ || hlc > OP_MAX_HLC)
        return s_bad(err, "an operation's seq or hlc is out of range");
    op_t op;
    memset(&op, 0, sizeof op);
    if (!stm_key_read(r, key, &op.pk))
        return s_bad(err, "an operation's key is not a value or an array of 2 to 32 values");
    uint64_t column_i, affinity;
    if (stm_msgread_nil(r)) {
        if (!stm_msgread_nil(r))
            return s_bad(err, "a row delete carries an affinity");
    } else {
        if (!stm_msgread_uint(r, &column_i) || column_i >= lists[3].count)
            return s_bad(err, "an operation's column index is not in the column list");
        if (!stm_msgread_uint(r, &affinity) || affinity > 127 || !memchr("TNIRB", (int)affinity, 5))
            return s_bad(err, "an operation's affinity is not one of T N I R B");
        op.column = names[1][column_i];
        op.affinity = (char)affinity;
    }
    if (!stm_codec_read_value(r, &op.value))
        return s_bad(err, "an operation's value is not a valid value");
    if (!op.column && op.value.type != VALUE_NULL)
        return s_bad(err, "a row delete carries a value");
    uint32_t k = 9;
    if (fields >= 11) {
        uint64_t back, born_i;
        if (!stm_msgread_uint(r, &back) || back >= hlc || !stm_msgread_uint(r, &born_i) ||
            born_i >= lists[0].count)
            return s_bad(err, "an operation's incarnation is not a clock before its own and an "
                              "origin index");
        op.born_hlc = hlc - back;
        memcpy(op.born_origin.bytes, lists[0].items[born_i], STM_ID_BYTES);
        k = 11;
    }
    for (; k < fields; k++)
        if (!stm_msgread_skip(r))
            return s_bad(err, "an operation's extra field is malformed");
    memcpy(op.origin.bytes, lists[0].items[origin_i], STM_ID_BYTES);
    memcpy(op.version_id.bytes, lists[1].items[version_i], STM_ID_BYTES);
    op.table = names[0][table_i];
    op.seq = seq;
    op.hlc = hlc;
    /* The names are the batch's already: a 1,000-byte name in every one of 100,000
     * operations is held once, not 100,000 times. */
    stm_opbatch_add_named(out, &op);
    return STM_OK;
}

/* Reads the array of ops at r into out. */
static stm_err s_read_ops(msgread_t *r, const s_list *lists, opbatch_t *out, stm_error *err)
{
    uint32_t n;
    if (!stm_msgread_array(r, &n))
        return s_bad(err, "\"ops\" is not an array");
    if (n > CODEC_MAX_BATCH_OPS)
        return s_bad(err, "more operations than a batch may hold");
    /* Table and column names are held once by the batch, and lent to its ops. */
    const char **names[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        const s_list *l = &lists[2 + k];
        names[k] = stm_malloc((l->count ? l->count : 1) * sizeof *names[k]);
        for (uint32_t i = 0; i < l->count; i++)
            names[k][i] = stm_opbatch_name(out, l->items[i], l->lens[i]);
    }
    const char *const *lent[2] = {names[0], names[1]};
    stm_err rc = STM_OK;
    buf_t key = BUF_INIT; /* a key of several columns, re-packed (key.h) */
    for (uint32_t i = 0; rc == STM_OK && i < n; i++)
        rc = s_read_op(r, lists, lent, &key, out, err);
    stm_buf_free(&key);
    free(names[0]);
    free(names[1]);
    return rc;
}

/* The fewest bytes a stand-in takes: [o, seq, n, hlc, v, t, key, bytes], one byte each
 * and the array's header. */
#define S_MIN_WITHHELD_BYTES 9

/* Reads the array of stand-ins at r into out (op.h, "withheld" in docs/protocol.md). */
static stm_err s_read_withheld(msgread_t *r, const s_list *lists, opbatch_t *out, stm_error *err)
{
    uint32_t n;
    if (!stm_msgread_array(r, &n) || n > CODEC_MAX_BATCH_OPS ||
        (uint64_t)n * S_MIN_WITHHELD_BYTES > stm_msgread_left(r))
        return s_bad(err, "\"withheld\" is not an array of at most 100000 stand-ins");
    buf_t key = BUF_INIT; /* a key of several columns, re-packed (key.h) */
    char *table = NULL;
    stm_err rc = STM_OK;
    for (uint32_t i = 0; i < n && rc == STM_OK; i++) {
        uint32_t fields;
        uint64_t origin_i, seq, count, hlc, version_i, table_i, bytes;
        op_withheld w;
        memset(&w, 0, sizeof w);
        if (!stm_msgread_array(r, &fields) || fields < 8 || !stm_msgread_uint(r, &origin_i) ||
            !stm_msgread_uint(r, &seq) || !stm_msgread_uint(r, &count) ||
            !stm_msgread_uint(r, &hlc) || !stm_msgread_uint(r, &version_i) ||
            !stm_msgread_uint(r, &table_i)) {
            rc = s_bad(err, "a stand-in is not [origin, seq, n, hlc, version, table, key, bytes]");
            break;
        }
        if (origin_i >= lists[0].count || version_i >= lists[1].count ||
            table_i >= lists[2].count) {
            rc = s_bad(err, "a stand-in's index is beyond its list");
            break;
        }
        /* n is at most what a batch may hold, so seq + n cannot overflow. */
        if (seq == 0 || count == 0 || count > CODEC_MAX_BATCH_OPS || seq > OP_MAX_SEQ ||
            seq + count - 1 > OP_MAX_SEQ || hlc > OP_MAX_HLC) {
            rc = s_bad(err, "a stand-in's seq, n or hlc is out of range");
            break;
        }
        if (!stm_key_read(r, &key, &w.pk)) {
            rc = s_bad(err, "a stand-in's key is not a value or an array of 2 to 32 values");
            break;
        }
        if (!stm_msgread_uint(r, &bytes)) {
            rc = s_bad(err, "a stand-in's bytes is not an integer");
            break;
        }
        /* Its kind: withheld (0, or none), pruned; one of a later version is held the
         * same way (nothing of it applied). */
        uint64_t kind = CODEC_STANDIN_WITHHELD;
        if (fields > 8 && !stm_msgread_uint(r, &kind))
            rc = s_bad(err, "a stand-in's kind is not an integer");
        for (uint32_t k = 9; k < fields && rc == STM_OK; k++)
            if (!stm_msgread_skip(r))
                rc = s_bad(err, "a stand-in's extra field is malformed");
        w.pruned = kind == CODEC_STANDIN_PRUNED;
        if (rc != STM_OK)
            break;
        memcpy(w.origin.bytes, lists[0].items[origin_i], STM_ID_BYTES);
        memcpy(w.version_id.bytes, lists[1].items[version_i], STM_ID_BYTES);
        free(table);
        table = stm_strndup(lists[2].items[table_i], lists[2].lens[table_i]);
        w.table = table;
        w.seq = seq;
        w.n = count;
        w.hlc = hlc;
        w.bytes = bytes;
        stm_opbatch_add_withheld(out, &w);
    }
    free(table);
    stm_buf_free(&key);
    return rc;
}

/* "derived": the positions in "ops" (of the operations read into out after `before`)
 * of those a migration wrote, each marked so. */
static stm_err s_read_derived(msgread_t *r, opbatch_t *out, size_t before, stm_error *err)
{
    uint32_t n;
    if (!stm_msgread_array(r, &n) || n > stm_msgread_left(r))
        return s_bad(err, "\"derived\" is not an array of operation positions");
    size_t count = stm_opbatch_count(out) - before;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t at;
        if (!stm_msgread_uint(r, &at) || at >= count)
            return s_bad(err, "a \"derived\" position is not one of the batch's operations");
        stm_opbatch_at_mut(out, before + (size_t)at)->derived = true;
    }
    return STM_OK;
}

stm_err stm_codec_decode_ops(const void *data, size_t len, opbatch_t *out, stm_error *err)
{
    static const char *const keys[] = {"origins", "versions", "tables", "columns"};
    msgread_t r;
    stm_msgread_init(&r, data, len);
    uint32_t nkeys;
    if (!stm_msgread_map(&r, &nkeys))
        return s_bad(err, "not a map");
    s_list lists[4] = {{0}};
    bool seen[4] = {false};
    msgread_t ops_at = {0}, withheld_at = {0}, derived_at = {0};
    bool have_ops = false, decoded = false, have_withheld = false, have_derived = false;
    size_t before = stm_opbatch_count(out), withheld_before = stm_opbatch_withheld_count(out);
    stm_err rc = STM_OK;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        const char *key;
        uint32_t klen;
        if (!stm_msgread_str(&r, &key, &klen)) {
            rc = s_bad(err, "a key is not a string");
            break;
        }
        int which = -1;
        for (int i = 0; i < 4; i++)
            if (klen == strlen(keys[i]) && memcmp(key, keys[i], klen) == 0)
                which = i;
        if (which >= 0) {
            if (seen[which]) {
                rc = s_bad(err, "a key comes twice");
                break;
            }
            seen[which] = true;
            rc = s_read_list(&r, which < 2, &lists[which], err);
        } else if (klen == 3 && memcmp(key, "ops", 3) == 0) {
            if (have_ops) {
                rc = s_bad(err, "a key comes twice");
                break;
            }
            have_ops = true;
            if (k + 1 == nkeys) {
                /* Last, as stemma writes them: every list is known, read them now. */
                rc = s_read_ops(&r, lists, out, err);
                decoded = true;
            } else {
                /* The lists may come after the ops: remember where the ops are. */
                ops_at = r;
                if (!stm_msgread_skip(&r))
                    rc = s_bad(err, "the ops are malformed or cut short");
            }
        } else if (klen == 7 && memcmp(key, "derived", 7) == 0) {
            if (have_derived) {
                rc = s_bad(err, "a key comes twice");
                break;
            }
            have_derived = true;
            derived_at = r;
            if (!stm_msgread_skip(&r))
                rc = s_bad(err, "the derived list is malformed or cut short");
        } else if (klen == 8 && memcmp(key, "withheld", 8) == 0) {
            if (have_withheld) {
                rc = s_bad(err, "a key comes twice");
                break;
            }
            /* Read once every list is known, like the ops. */
            have_withheld = true;
            withheld_at = r;
            if (!stm_msgread_skip(&r))
                rc = s_bad(err, "the stand-ins are malformed or cut short");
        } else if (!stm_msgread_skip(&r)) {
            rc = s_bad(err, "an unknown key's value is malformed or cut short");
        }
    }
    if (rc == STM_OK && !have_ops)
        rc = s_bad(err, "no \"ops\"");
    if (rc == STM_OK && stm_msgread_left(&r) != 0)
        rc = s_bad(err, "bytes follow the batch");
    if (rc == STM_OK && !decoded)
        rc = s_read_ops(&ops_at, lists, out, err);
    if (rc == STM_OK && have_derived)
        rc = s_read_derived(&derived_at, out, before, err);
    if (rc == STM_OK && have_withheld)
        rc = s_read_withheld(&withheld_at, lists, out, err);
    if (rc != STM_OK && (stm_opbatch_count(out) != before ||
                         stm_opbatch_withheld_count(out) != withheld_before)) {
        /* Leave the batch as it was: rebuild it from what it held before. */
        opbatch_t *keep = stm_opbatch_new();
        for (size_t i = 0; i < before; i++)
            stm_opbatch_add(keep, stm_opbatch_at(out, i));
        for (size_t i = 0; i < withheld_before; i++)
            stm_opbatch_add_withheld(keep, stm_opbatch_withheld_at(out, i));
        stm_opbatch_clear(out);
        for (size_t i = 0; i < before; i++)
            stm_opbatch_add(out, stm_opbatch_at(keep, i));
        for (size_t i = 0; i < withheld_before; i++)
            stm_opbatch_add_withheld(out, stm_opbatch_withheld_at(keep, i));
        stm_opbatch_destroy(&keep);
    }
    for (int i = 0; i < 4; i++)
        s_list_free(&lists[i]);
    return rc;
}
