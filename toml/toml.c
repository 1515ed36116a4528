/* toml.c - TOML 1.0: the value tree behind toml.h. This file owns what a value is and how
 * it lives: the per-document arena that parsed trees are allocated from, freeing, the
 * insertion-ordered entries of a table and their hash index, the builders (toml_new_*,
 * stm_toml_table_set, stm_toml_array_push, stm_toml_set_inline), the accessors, stm_toml_equal and
 * stm_toml_type_name. The parser (toml_parse.c) and the emitter (toml_emit.c) reach the
 * layout and the helpers they share with this file through toml_internal.h, which also
 * says how a tree's memory is owned. */
#include "toml/toml.h"
#include "toml/toml_internal.h"

#include "base/mem.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_INDEX_MIN 8       /* tables with more keys than this get a hash index */
#define S_INDEX_FIRST 32    /* slots in a table's first index (a power of two) */
#define S_FIRST_CAP 4       /* entries or elements in a table's or array's first block */
#define S_CHUNK_MIN 1024    /* bytes in a document arena's first chunk */
#define S_CHUNK_MAX 1048576 /* chunks double up to this; bigger requests get their own */

/* ------------------------------------------------------------------ memory */

/* One block of a document arena (s_arena, in toml_internal.h). */
struct s_chunk {
    struct s_chunk *next; /* the chunk allocated before */
    size_t size;          /* bytes in data */
    size_t used;          /* bytes handed out, a multiple of 8 */
    uint64_t data[];      /* 8-byte aligned, enough for every member of a value */
};

void *stm_toml_arena_alloc(s_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    s_chunk *c = a->head;
    if (c && c->size - c->used >= n) {
        void *p = (char *)c->data + c->used;
        c->used += n;
        return p;
    }
    if (n > S_CHUNK_MAX / 4) {
        /* its own chunk, behind the head, which goes on being filled */
        s_chunk *big = stm_malloc(sizeof *big + n);
        big->size = big->used = n;
        big->next = c ? c->next : NULL;
        if (c)
            c->next = big;
        else
            a->head = big;
        return big->data;
    }
    size_t size = a->next_size ? a->next_size : S_CHUNK_MIN;
    while (size < n)
        size *= 2;
    a->next_size = size < S_CHUNK_MAX ? size * 2 : S_CHUNK_MAX;
    c = stm_malloc(sizeof *c + size);
    c->size = size;
    c->used = n;
    c->next = a->head;
    a->head = c;
    return c->data;
}

static void s_arena_free(s_arena *a)
{
    while (a->head) {
        s_chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* Grows a heap array of elem-sized elements to hold need; *cap counts elements. */
static void *s_grow(void *items, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return items;
    assert(need < UINT32_MAX / 2);
    uint32_t next = *cap ? *cap : S_FIRST_CAP;
    while (next < need)
        next *= 2;
    *cap = next;
    return stm_realloc(items, (size_t)next * elem);
}

/* ------------------------------------------------------------------ values */

static toml_value *s_new(toml_type type)
{
    toml_value *v = stm_calloc(1, sizeof *v);
    v->type = (uint8_t)type;
    return v;
}

void stm_toml_free(toml_value *v)
{
    if (!v)
        return;
    switch (v->type) {
    case TOML_TABLE:
        for (size_t i = 0; i < v->u.tab.count; i++) {
            if (!v->u.tab.items[i].arena)
                free(v->u.tab.items[i].key);
            stm_toml_free(v->u.tab.items[i].val);
        }
        free(v->u.tab.items);
        free(v->u.tab.slots);
        break;
    case TOML_ARRAY:
        for (size_t i = 0; i < v->u.arr.count; i++)
            stm_toml_free(v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    default:
        break;
    }
    if (v->flags & S_DOC) {
        s_arena_free(&((s_doc *)v)->arena);
        free(v);
    } else if (!(v->flags & S_ARENA)) {
        free(v);
    }
}

void stm_toml_destroy(toml_value **v)
{
    if (v && *v) {
        stm_toml_free(*v);
        *v = NULL;
    }
}

/* Invariant of every table, parsed or built: one holding more than S_INDEX_MIN keys has
 * a hash index over its entries (linear probing, at most half full), so finding a key is
 * O(1) in a huge table. stm_toml_append, the one way keys go in, keeps it; the probe below
 * relies on the index being at most half full to meet an empty slot. */
s_entry *stm_toml_find(const toml_value *t, const char *key, size_t len, uint32_t hash)
{
    if (t->u.tab.slots) {
        size_t mask = t->u.tab.nslots - 1;
        for (size_t j = hash & mask;; j = (j + 1) & mask) {
            const s_slot *slot = &t->u.tab.slots[j];
            if (!slot->idx)
                return NULL;
            if (slot->hash != hash)
                continue;
            s_entry *e = &t->u.tab.items[slot->idx - 1];
            if (e->keylen == len && memcmp(e->key, key, len) == 0)
                return e;
        }
    }
    for (size_t i = 0; i < t->u.tab.count; i++) {
        s_entry *e = &t->u.tab.items[i];
        if (e->hash == hash && e->keylen == len && memcmp(e->key, key, len) == 0)
            return e;
    }
    return NULL;
}

static void s_index_put(toml_value *t, size_t i)
{
    size_t mask = t->u.tab.nslots - 1;
    uint32_t hash = t->u.tab.items[i].hash;
    size_t j = hash & mask;
    while (t->u.tab.slots[j].idx)
        j = (j + 1) & mask;
    t->u.tab.slots[j] = (s_slot){hash, (uint32_t)(i + 1)};
}

static void s_index_build(toml_value *t, uint32_t nslots)
{
    free(t->u.tab.slots);
    t->u.tab.slots = stm_calloc(nslots, sizeof *t->u.tab.slots);
    t->u.tab.nslots = nslots;
    for (size_t i = 0; i < t->u.tab.count; i++)
        s_index_put(t, i);
}

/* Appends a key the caller has checked is absent; takes key (from the arena if arena is
 * set, else from the heap) and v. */
void stm_toml_append(toml_value *t, char *key, size_t len, bool arena, uint32_t hash, toml_value *v)
{
    assert(len < (1u << 31));
    t->u.tab.items = s_grow(t->u.tab.items, &t->u.tab.cap, t->u.tab.count + 1, sizeof(s_entry));
    t->u.tab.items[t->u.tab.count++] = (s_entry){key, v, (uint32_t)len, arena, hash};
    if (t->u.tab.slots) {
        if (t->u.tab.count * 2 > t->u.tab.nslots)
            s_index_build(t, t->u.tab.nslots * 2);
        else
            s_index_put(t, t->u.tab.count - 1);
    } else if (t->u.tab.count > S_INDEX_MIN) {
        s_index_build(t, S_INDEX_FIRST);
    }
}

void stm_toml_push(toml_value *a, toml_value *v)
{
    a->u.arr.items = s_grow(a->u.arr.items, &a->u.arr.cap, a->u.arr.count + 1, sizeof v);
    a->u.arr.items[a->u.arr.count++] = v;
}

toml_type stm_toml_type_of(const toml_value *v)
{
    assert(v);
    return (toml_type)v->type;
}

const char *stm_toml_type_name(toml_type t)
{
    switch (t) {
    case TOML_TABLE:
        return "table";
    case TOML_ARRAY:
        return "array";
    case TOML_STRING:
        return "string";
    case TOML_INTEGER:
        return "integer";
    case TOML_FLOAT:
        return "float";
    case TOML_BOOL:
        return "bool";
    case TOML_DATETIME:
        return "datetime";
    case TOML_DATETIME_LOCAL:
        return "datetime-local";
    case TOML_DATE_LOCAL:
        return "date-local";
    case TOML_TIME_LOCAL:
        return "time-local";
    }
    return "unknown";
}

int stm_toml_line(const toml_value *v)
{
    assert(v);
    return v->line;
}

int stm_toml_column(const toml_value *v)
{
    assert(v);
    return v->column;
}

size_t stm_toml_table_count(const toml_value *t)
{
    assert(t && t->type == TOML_TABLE);
    return t->u.tab.count;
}

const char *stm_toml_table_key(const toml_value *t, size_t i)
{
    assert(t && t->type == TOML_TABLE && i < t->u.tab.count);
    return t->u.tab.items[i].key;
}

size_t stm_toml_table_key_len(const toml_value *t, size_t i)
{
    assert(t && t->type == TOML_TABLE && i < t->u.tab.count);
    return t->u.tab.items[i].keylen;
}

toml_value *stm_toml_table_at(const toml_value *t, size_t i)
{
    assert(t && t->type == TOML_TABLE && i < t->u.tab.count);
    return t->u.tab.items[i].val;
}

toml_value *stm_toml_table_get(const toml_value *t, const char *key)
{
    assert(t && t->type == TOML_TABLE && key);
    size_t len = strlen(key);
    s_entry *e = stm_toml_find(t, key, len, toml_hash(key, len));
    return e ? e->val : NULL;
}

size_t stm_toml_array_count(const toml_value *a)
{
    assert(a && a->type == TOML_ARRAY);
    return a->u.arr.count;
}

toml_value *stm_toml_array_at(const toml_value *a, size_t i)
{
    assert(a && a->type == TOML_ARRAY && i < a->u.arr.count);
    return a->u.arr.items[i];
}

const char *stm_toml_string(const toml_value *v, size_t *len)
{
    assert(v && v->type == TOML_STRING);
    if (len)
        *len = v->u.str.len;
    return v->u.str.s;
}

int64_t stm_toml_integer(const toml_value *v)
{
    assert(v && v->type == TOML_INTEGER);
    return v->u.i;
}

double stm_toml_float(const toml_value *v)
{
    assert(v && v->type == TOML_FLOAT);
    return v->u.f;
}

bool stm_toml_bool(const toml_value *v)
{
    assert(v && v->type == TOML_BOOL);
    return v->u.b;
}

static bool s_is_datetime(toml_type t)
{
    return t == TOML_DATETIME || t == TOML_DATETIME_LOCAL || t == TOML_DATE_LOCAL ||
           t == TOML_TIME_LOCAL;
}

const toml_datetime *stm_toml_datetime_of(const toml_value *v)
{
    assert(v && s_is_datetime(v->type));
    return &v->u.dt;
}

toml_value *stm_toml_new_table(void)
{
    return s_new(TOML_TABLE);
}

toml_value *stm_toml_new_array(void)
{
    return s_new(TOML_ARRAY);
}

toml_value *stm_toml_new_string(const char *s, size_t len)
{
    assert(s || len == 0);
    assert(len < SIZE_MAX - sizeof(toml_value) - 1);
    /* one allocation: the value, then its bytes */
    toml_value *v = stm_malloc(sizeof *v + len + 1);
    memset(v, 0, sizeof *v);
    v->type = TOML_STRING;
    v->u.str.s = (char *)(v + 1);
    if (len)
        memcpy(v->u.str.s, s, len);
    v->u.str.s[len] = '\0';
    v->u.str.len = len;
    return v;
}

toml_value *stm_toml_new_integer(int64_t i)
{
    toml_value *v = s_new(TOML_INTEGER);
    v->u.i = i;
    return v;
}

toml_value *stm_toml_new_float(double d)
{
    toml_value *v = s_new(TOML_FLOAT);
    v->u.f = d;
    return v;
}

toml_value *stm_toml_new_bool(bool b)
{
    toml_value *v = s_new(TOML_BOOL);
    v->u.b = b;
    return v;
}

static bool s_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int stm_toml_days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && s_leap(y) ? 29 : days[m - 1];
}

toml_value *stm_toml_new_datetime(toml_type type, const toml_datetime *dt)
{
    assert(s_is_datetime(type) && dt);
    toml_datetime d = {0};
    if (type != TOML_TIME_LOCAL) {
        assert(dt->year >= 0 && dt->year <= 9999 && dt->month >= 1 && dt->month <= 12);
        assert(dt->day >= 1 && dt->day <= stm_toml_days_in_month(dt->year, dt->month));
        d.year = dt->year;
        d.month = dt->month;
        d.day = dt->day;
    }
    if (type != TOML_DATE_LOCAL) {
        assert(dt->hour >= 0 && dt->hour <= 23 && dt->minute >= 0 && dt->minute <= 59);
        assert(dt->second >= 0 && dt->second <= 60);
        assert(dt->nanosecond >= 0 && dt->nanosecond <= 999999999);
        d.hour = dt->hour;
        d.minute = dt->minute;
        d.second = dt->second;
        d.nanosecond = dt->nanosecond;
    }
    if (type == TOML_DATETIME) {
        assert(dt->offset_minutes > -24 * 60 && dt->offset_minutes < 24 * 60);
        d.offset_minutes = dt->offset_minutes;
    }
    toml_value *v = s_new(type);
    v->u.dt = d;
    return v;
}

void stm_toml_table_set(toml_value *t, const char *key, toml_value *v)
{
    assert(t && t->type == TOML_TABLE && key && v && v != t);
    size_t len = strlen(key);
    uint32_t hash = toml_hash(key, len);
    s_entry *e = stm_toml_find(t, key, len, hash);
    if (e) {
        if (e->val != v)
            stm_toml_free(e->val);
        e->val = v;
        return;
    }
    stm_toml_append(t, stm_strndup(key, len), len, false, hash, v);
}

void stm_toml_array_push(toml_value *a, toml_value *v)
{
    assert(a && a->type == TOML_ARRAY && v && v != a);
    stm_toml_push(a, v);
}

void stm_toml_set_inline(toml_value *v, bool is_inline)
{
    assert(v && (v->type == TOML_TABLE || v->type == TOML_ARRAY));
    if (is_inline)
        v->flags |= S_INLINE;
    else
        v->flags &= ~(unsigned)S_INLINE;
}

bool stm_toml_equal(const toml_value *a, const toml_value *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->type != b->type)
        return false;
    switch (a->type) {
    case TOML_TABLE:
        if (a->u.tab.count != b->u.tab.count)
            return false;
        for (size_t i = 0; i < a->u.tab.count; i++) {
            const s_entry *e = &a->u.tab.items[i];
            const s_entry *f = stm_toml_find(b, e->key, e->keylen, e->hash);
            if (!f || !stm_toml_equal(e->val, f->val))
                return false;
        }
        return true;
    case TOML_ARRAY:
        if (a->u.arr.count != b->u.arr.count)
            return false;
        for (size_t i = 0; i < a->u.arr.count; i++)
            if (!stm_toml_equal(a->u.arr.items[i], b->u.arr.items[i]))
                return false;
        return true;
    case TOML_STRING:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case TOML_INTEGER:
        return a->u.i == b->u.i;
    case TOML_FLOAT:
        return (isnan(a->u.f) && isnan(b->u.f)) || a->u.f == b->u.f;
    case TOML_BOOL:
        return a->u.b == b->u.b;
    default:
        return s_is_datetime(a->type) && a->u.dt.year == b->u.dt.year &&
               a->u.dt.month == b->u.dt.month && a->u.dt.day == b->u.dt.day &&
               a->u.dt.hour == b->u.dt.hour && a->u.dt.minute == b->u.dt.minute &&
               a->u.dt.second == b->u.dt.second && a->u.dt.nanosecond == b->u.dt.nanosecond &&
               a->u.dt.offset_minutes == b->u.dt.offset_minutes;
    }
}
