/* toml.c - TOML 1.0: a single-pass parser into a value tree, and a deterministic emitter.
 *
 * The parser walks the text once with a cursor. Nothing is allocated per character:
 * strings and keys are decoded into two scratch buffers that live as long as the parse
 * (a string without escapes is taken straight from the text), and the values, keys and
 * string bytes of the tree come from a bump arena owned by the root, so the heap is only
 * asked for the growing entry and element arrays of tables and arrays. The line is
 * counted as newlines are consumed; the column is counted from the start of the line,
 * with a cache so that the positions recorded for the values of a long line cost linear
 * time in all.
 *
 * Invariants of the tree while parsing:
 *  1. Every value hangs from exactly one table entry or array slot under the parser's
 *     root, except the one value under construction, which the function building it
 *     frees before returning an error. So one toml_destroy of the root cleans up after
 *     an error anywhere.
 *  2. A table flagged S_INLINE (an inline table) and an array not flagged S_AOT (an
 *     array value) are frozen: no header and no dotted key may add to them or to
 *     anything inside them.
 *  3. A table flagged S_HEADER was defined by a [header] or is an element a [[header]]
 *     appended; no header may define it again and no dotted key may extend it.
 *  4. A table flagged S_DOTTED was defined by dotted keys in the section numbered
 *     `section` (every header and every inline table opens a new section). Dotted keys
 *     of that same section may add to it; a [header] naming it is a redefinition; a
 *     [header] naming a table below it is allowed (TOML 1.0, "Table" section).
 *  5. A table with none of S_INLINE, S_HEADER, S_DOTTED was created implicitly by a
 *     header ([a.b] creates a): one later [a] header may define it, and dotted keys
 *     reaching it define it as in 4.
 *  6. A table holding more than S_INDEX_MIN keys has a hash index over its entries
 *     (linear probing, at most half full), so finding a key is O(1) in a huge table.
 *  7. Every table and array has depth <= TOML_MAX_DEPTH (the root has depth 0), so the
 *     recursive parse, emit, compare and destroy run in a small, fixed stack.
 *
 * Memory, at all times: a value flagged S_ARENA (and an entry whose key is flagged
 * arena) lives in the arena of the document it was parsed into, which the root (flagged
 * S_DOC) frees last; everything else is on the heap and freed one by one. Entry and
 * element arrays are always on the heap, so building into a parsed tree just works.
 *
 * S_INLINE doubles as the emitter's style hint (toml_set_inline); the other flags only
 * mean something to the parser. */
#include "toml.h"

#include "buf.h"
#include "mem.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    S_INLINE = 1u << 0, /* inline table or array value; emitted inline */
    S_HEADER = 1u << 1, /* table defined by a [header], or an element of a [[header]] */
    S_DOTTED = 1u << 2, /* table defined by dotted keys in section `section` */
    S_AOT = 1u << 3,    /* array made by [[header]]: later [[header]]s may append to it */
    S_ARENA = 1u << 4,  /* the value's memory belongs to its document's arena */
    S_DOC = 1u << 5,    /* the root of a parsed document: an s_doc, owning the arena */
};

#define S_INDEX_MIN 8       /* tables with more keys than this get a hash index */
#define S_INDEX_FIRST 32    /* slots in a table's first index (a power of two) */
#define S_FIRST_CAP 4       /* entries or elements in a table's or array's first block */
#define S_CHUNK_MIN 1024    /* bytes in a document arena's first chunk */
#define S_CHUNK_MAX 1048576 /* chunks double up to this; bigger requests get their own */

/* One slot of a table's hash index. */
typedef struct {
    uint32_t hash; /* the key's hash, so that probing rarely touches the entries */
    uint32_t idx;  /* entry number + 1; 0 for an empty slot */
} s_slot;

/* One key of a table. */
typedef struct {
    char *key;            /* NUL-terminated, may hold NULs; owned unless arena is set */
    toml_value *val;      /* owned */
    uint32_t keylen : 31; /* bytes in key (documents are far smaller than 2 GiB) */
    uint32_t arena : 1;   /* key lives in the document's arena, not on the heap */
    uint32_t hash;        /* s_hash of the key, kept for rebuilding the index */
} s_entry;

struct toml_value {
    uint8_t type;     /* a toml_type: which member of u is in use */
    uint8_t flags;    /* S_* */
    uint16_t depth;   /* tables and arrays made by the parser: containers above this one */
    uint32_t section; /* S_DOTTED tables: the section whose dotted keys defined it */
    int32_t line;     /* where the value started in the source, 0 if built */
    int32_t column;   /* same, in characters */
    union {
        struct {
            char *s;    /* NUL-terminated, may hold NULs; allocated with the value */
            size_t len; /* bytes in s */
        } str;
        int64_t i;
        double f;
        bool b;
        toml_datetime dt;
        struct {
            s_entry *items;  /* in insertion order, on the heap */
            s_slot *slots;   /* hash index over items; NULL while the table is small */
            uint32_t count;  /* entries in use */
            uint32_t cap;    /* entries allocated */
            uint32_t nslots; /* slots allocated, a power of two */
        } tab;
        struct {
            toml_value **items; /* owned; the array itself is on the heap */
            uint32_t count;     /* elements in use */
            uint32_t cap;       /* elements allocated */
        } arr;
    } u;
};

/* ------------------------------------------------------------------ memory */

/* A parsed document's values, keys and string bytes come from one bump allocator that
 * is freed with the root: a document costs a few times its text instead of an
 * allocation per value. Values built later with toml_new_* (even when put into a parsed
 * tree) are on the heap, and a value replaced in a parsed tree just stays in the arena
 * until the document goes. */
typedef struct s_chunk {
    struct s_chunk *next; /* the chunk allocated before */
    size_t size;          /* bytes in data */
    size_t used;          /* bytes handed out, a multiple of 8 */
    uint64_t data[];      /* 8-byte aligned, enough for every member of a value */
} s_chunk;

typedef struct {
    s_chunk *head;    /* the chunk being filled; older chunks follow */
    size_t next_size; /* bytes in the next chunk */
} s_arena;

/* The root of a parsed document: flagged S_DOC, freed with its arena. */
typedef struct {
    toml_value root; /* first, so a toml_value * to the root is an s_doc * */
    s_arena arena;   /* everything in the tree flagged S_ARENA */
} s_doc;

static void *s_arena_alloc(s_arena *a, size_t n)
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

static void s_free(toml_value *v)
{
    if (!v)
        return;
    switch (v->type) {
    case TOML_TABLE:
        for (size_t i = 0; i < v->u.tab.count; i++) {
            if (!v->u.tab.items[i].arena)
                free(v->u.tab.items[i].key);
            s_free(v->u.tab.items[i].val);
        }
        free(v->u.tab.items);
        free(v->u.tab.slots);
        break;
    case TOML_ARRAY:
        for (size_t i = 0; i < v->u.arr.count; i++)
            s_free(v->u.arr.items[i]);
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

void toml_destroy(toml_value **v)
{
    if (v && *v) {
        s_free(*v);
        *v = NULL;
    }
}

/* FNV-1a with a final mix, so that the low bits the index uses depend on every byte.
 * Not keyed: a document built to collide only makes its own parse slow. */
static uint32_t s_hash(const char *key, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    return h;
}

static s_entry *s_find(const toml_value *t, const char *key, size_t len, uint32_t hash)
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
static void s_append(toml_value *t, char *key, size_t len, bool arena, uint32_t hash, toml_value *v)
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

static void s_push(toml_value *a, toml_value *v)
{
    a->u.arr.items = s_grow(a->u.arr.items, &a->u.arr.cap, a->u.arr.count + 1, sizeof v);
    a->u.arr.items[a->u.arr.count++] = v;
}

toml_type toml_type_of(const toml_value *v)
{
    assert(v);
    return (toml_type)v->type;
}

const char *toml_type_name(toml_type t)
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

int toml_line(const toml_value *v)
{
    assert(v);
    return v->line;
}

int toml_column(const toml_value *v)
{
    assert(v);
    return v->column;
}

size_t toml_table_count(const toml_value *t)
{
    assert(t && t->type == TOML_TABLE);
    return t->u.tab.count;
}

const char *toml_table_key(const toml_value *t, size_t i)
{
    assert(t && t->type == TOML_TABLE && i < t->u.tab.count);
    return t->u.tab.items[i].key;
}

size_t toml_table_key_len(const toml_value *t, size_t i)
{
    assert(t && t->type == TOML_TABLE && i < t->u.tab.count);
    return t->u.tab.items[i].keylen;
}

toml_value *toml_table_at(const toml_value *t, size_t i)
{
    assert(t && t->type == TOML_TABLE && i < t->u.tab.count);
    return t->u.tab.items[i].val;
}

toml_value *toml_table_get(const toml_value *t, const char *key)
{
    assert(t && t->type == TOML_TABLE && key);
    size_t len = strlen(key);
    s_entry *e = s_find(t, key, len, s_hash(key, len));
    return e ? e->val : NULL;
}

size_t toml_array_count(const toml_value *a)
{
    assert(a && a->type == TOML_ARRAY);
    return a->u.arr.count;
}

toml_value *toml_array_at(const toml_value *a, size_t i)
{
    assert(a && a->type == TOML_ARRAY && i < a->u.arr.count);
    return a->u.arr.items[i];
}

const char *toml_string(const toml_value *v, size_t *len)
{
    assert(v && v->type == TOML_STRING);
    if (len)
        *len = v->u.str.len;
    return v->u.str.s;
}

int64_t toml_integer(const toml_value *v)
{
    assert(v && v->type == TOML_INTEGER);
    return v->u.i;
}

double toml_float(const toml_value *v)
{
    assert(v && v->type == TOML_FLOAT);
    return v->u.f;
}

bool toml_bool(const toml_value *v)
{
    assert(v && v->type == TOML_BOOL);
    return v->u.b;
}

static bool s_is_datetime(toml_type t)
{
    return t == TOML_DATETIME || t == TOML_DATETIME_LOCAL || t == TOML_DATE_LOCAL ||
           t == TOML_TIME_LOCAL;
}

const toml_datetime *toml_datetime_of(const toml_value *v)
{
    assert(v && s_is_datetime(v->type));
    return &v->u.dt;
}

toml_value *toml_new_table(void)
{
    return s_new(TOML_TABLE);
}

toml_value *toml_new_array(void)
{
    return s_new(TOML_ARRAY);
}

toml_value *toml_new_string(const char *s, size_t len)
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

toml_value *toml_new_integer(int64_t i)
{
    toml_value *v = s_new(TOML_INTEGER);
    v->u.i = i;
    return v;
}

toml_value *toml_new_float(double d)
{
    toml_value *v = s_new(TOML_FLOAT);
    v->u.f = d;
    return v;
}

toml_value *toml_new_bool(bool b)
{
    toml_value *v = s_new(TOML_BOOL);
    v->u.b = b;
    return v;
}

static bool s_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int s_days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && s_leap(y) ? 29 : days[m - 1];
}

toml_value *toml_new_datetime(toml_type type, const toml_datetime *dt)
{
    assert(s_is_datetime(type) && dt);
    toml_datetime d = {0};
    if (type != TOML_TIME_LOCAL) {
        assert(dt->year >= 0 && dt->year <= 9999 && dt->month >= 1 && dt->month <= 12);
        assert(dt->day >= 1 && dt->day <= s_days_in_month(dt->year, dt->month));
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

void toml_table_set(toml_value *t, const char *key, toml_value *v)
{
    assert(t && t->type == TOML_TABLE && key && v && v != t);
    size_t len = strlen(key);
    uint32_t hash = s_hash(key, len);
    s_entry *e = s_find(t, key, len, hash);
    if (e) {
        if (e->val != v)
            s_free(e->val);
        e->val = v;
        return;
    }
    s_append(t, stm_strndup(key, len), len, false, hash, v);
}

void toml_array_push(toml_value *a, toml_value *v)
{
    assert(a && a->type == TOML_ARRAY && v && v != a);
    s_push(a, v);
}

void toml_set_inline(toml_value *v, bool is_inline)
{
    assert(v && (v->type == TOML_TABLE || v->type == TOML_ARRAY));
    if (is_inline)
        v->flags |= S_INLINE;
    else
        v->flags &= ~(unsigned)S_INLINE;
}

bool toml_equal(const toml_value *a, const toml_value *b)
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
            const s_entry *f = s_find(b, e->key, e->keylen, e->hash);
            if (!f || !toml_equal(e->val, f->val))
                return false;
        }
        return true;
    case TOML_ARRAY:
        if (a->u.arr.count != b->u.arr.count)
            return false;
        for (size_t i = 0; i < a->u.arr.count; i++)
            if (!toml_equal(a->u.arr.items[i], b->u.arr.items[i]))
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

/* ------------------------------------------------------------------ characters */

static bool s_isdigit(char c)
{
    return c >= '0' && c <= '9';
}

static bool s_isbare(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || s_isdigit(c) || c == '_' || c == '-';
}

static bool s_isdigit_in(char c, int base)
{
    switch (base) {
    case 2:
        return c == '0' || c == '1';
    case 8:
        return c >= '0' && c <= '7';
    case 16:
        return s_isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    default:
        return s_isdigit(c);
    }
}

static int s_digit_value(char c)
{
    if (s_isdigit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

/* Printable ASCII or tab: what every kind of string and comment takes as it is. */
static bool s_isplain(unsigned char c)
{
    return (unsigned char)(c - 0x20) < 0x5F || c == '\t';
}

/* Length (1-4) of the well-formed UTF-8 sequence at s, or 0 if it is malformed
 * (overlong, a surrogate, beyond U+10FFFF, or cut short by end). */
static int s_utf8(const char *s, const char *end, uint32_t *cp_out)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0];
    if (c < 0x80) {
        if (cp_out)
            *cp_out = c;
        return 1;
    }
    int n;
    uint32_t cp;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (end - s < n || u[1] < lo || u[1] > hi)
        return 0;
    cp = (cp << 6) | (u[1] & 0x3F);
    for (int i = 2; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (u[i] & 0x3F);
    }
    if (cp_out)
        *cp_out = cp;
    return n;
}

static void s_put_utf8(buf_t *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(b, out, n);
}

/* ------------------------------------------------------------------ the parser */

/* One part of a dotted key, as decoded into the parser's kbuf. */
typedef struct {
    size_t off;     /* where the part starts in kbuf */
    size_t len;     /* its length in bytes */
    const char *at; /* where it starts in the source, for positions and messages */
} s_keypart;

typedef struct {
    const char *text;       /* the document, after any byte order mark */
    const char *cur;        /* the cursor */
    const char *end;        /* one past the last byte */
    const char *name;       /* for messages */
    int line;               /* 1-based line of cur */
    const char *line_start; /* first byte of that line */
    int col_line;           /* s_column's cache: the line it is for, ... */
    const char *col_at;     /* ... a position on that line, ... */
    int col_n;              /* ... and the characters from line_start to col_at */
    unsigned sections;      /* sections opened so far (headers and inline tables) */
    unsigned section;       /* the section the document's key/value lines belong to */
    toml_value *root;       /* the tree being built, owned */
    toml_value *table;      /* where the current section's key/value lines go */
    buf_t sbuf;             /* scratch for decoding a string */
    buf_t kbuf;             /* scratch for the decoded parts of one key */
    s_keypart *parts;       /* the parts of the key parsed last */
    size_t nparts;          /* parts in use */
    size_t partcap;         /* parts allocated */
    s_arena *arena;         /* where the document's values, keys and strings go */
    char decimal_point;     /* the C library's, which strtod and printf use */
    char secname[256];      /* the dotted name of the current section's table, for messages */
    stm_error *err;         /* where errors go, may be NULL */
} s_parser;

static toml_value *s_pnew(s_parser *p, toml_type type)
{
    toml_value *v = s_arena_alloc(p->arena, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = (uint8_t)type;
    v->flags = S_ARENA;
    return v;
}

static char *s_pstrdup(s_parser *p, const char *s, size_t len)
{
    char *d = s_arena_alloc(p->arena, len + 1);
    if (len)
        memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* The column (1-based, in characters) of at, which is on the cursor's line. */
static int s_column(s_parser *p, const char *at)
{
    if (p->col_line != p->line || p->col_at < p->line_start || p->col_at > at) {
        p->col_line = p->line;
        p->col_at = p->line_start;
        p->col_n = 0;
    }
    int n = p->col_n;
    for (const char *q = p->col_at; q < at; q++)
        n += ((unsigned char)*q & 0xC0) != 0x80;
    p->col_at = at;
    p->col_n = n;
    return n + 1;
}

static void s_locate(s_parser *p, const char *at, int *line, int *col)
{
    if (at >= p->line_start) {
        *line = p->line;
        *col = s_column(p, at);
        return;
    }
    int l = 1, n = 0;
    const char *ls = p->text;
    for (const char *q = p->text; q < at; q++)
        if (*q == '\n') {
            l++;
            ls = q + 1;
        }
    for (const char *q = ls; q < at; q++)
        n += ((unsigned char)*q & 0xC0) != 0x80;
    *line = l;
    *col = n + 1;
}

static stm_err s_fail(s_parser *p, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static stm_err s_fail(s_parser *p, const char *at, const char *fmt, ...)
{
    int line, col;
    s_locate(p, at, &line, &col);
    char what[sizeof p->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return stm_error_set(p->err, STM_EINPUT, "%s:%d:%d: %s", p->name, line, col, what);
}

/* Describes the character at at for a message. */
static const char *s_what(const s_parser *p, const char *at, char *out, size_t size)
{
    if (at >= p->end)
        return "end of file";
    unsigned char c = (unsigned char)*at;
    uint32_t cp;
    int n;
    if (c == '\n' || (c == '\r' && at + 1 < p->end && at[1] == '\n'))
        return "end of line";
    if (c >= 0x20 && c < 0x7F)
        snprintf(out, size, "'%c'", c);
    else if (c < 0x80)
        snprintf(out, size, "control character U+%04X", c);
    else if ((n = s_utf8(at, p->end, &cp)))
        snprintf(out, size, "'%.*s' (U+%04X)", n, at, (unsigned)cp);
    else
        snprintf(out, size, "invalid UTF-8 byte 0x%02X", c);
    return out;
}

static stm_err s_expected(s_parser *p, const char *at, const char *what)
{
    char buf[48];
    return s_fail(p, at, "expected %s, found %s", what, s_what(p, at, buf, sizeof buf));
}

/* The message for a byte a string or comment may not hold. */
static stm_err s_bad_char(s_parser *p, const char *at, const char *where)
{
    unsigned char c = (unsigned char)*at;
    if (c >= 0x80)
        return s_fail(p, at, "invalid UTF-8 (byte 0x%02X) in %s", c, where);
    if (c == '\r')
        return s_fail(p, at, "carriage return not followed by a newline in %s", where);
    if (c == '\n')
        return s_fail(p, at, "newline in %s", where);
    return s_fail(p, at, "control character U+%04X in %s (it must be escaped, if at all allowed)",
                  c, where);
}

/* The dotted name of the first n parts of the key just parsed, after prefix (NULL or a
 * dotted name), for messages; quoted parts show unprintable bytes as '?'. Truncated. */
static const char *s_keyname(const s_parser *p, const char *prefix, size_t n, char *out,
                             size_t size)
{
    size_t o = 0;
    for (; prefix && *prefix && o + 2 < size; prefix++)
        out[o++] = *prefix;
    if (o && n)
        out[o++] = '.';
#define S_PUT(ch)                                                                                  \
    do {                                                                                           \
        if (o + 1 < size)                                                                          \
            out[o++] = (ch);                                                                       \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        const s_keypart *k = &p->parts[i];
        const char *s = p->kbuf.data + k->off;
        bool bare = k->len > 0;
        for (size_t j = 0; j < k->len; j++)
            bare = bare && s_isbare(s[j]);
        if (i)
            S_PUT('.');
        if (!bare)
            S_PUT('"');
        for (size_t j = 0; j < k->len; j++) {
            unsigned char c = (unsigned char)s[j];
            S_PUT(s_isplain(c) || c >= 0x80 ? s[j] : '?');
        }
        if (!bare)
            S_PUT('"');
    }
#undef S_PUT
    out[o] = '\0';
    return out;
}

/* "a" or "an", for a value of type t. */
static const char *s_a(toml_type t)
{
    return t == TOML_ARRAY || t == TOML_INTEGER ? "an" : "a";
}

static void s_newline(s_parser *p)
{
    p->line++;
    p->line_start = p->cur;
}

static void s_skip_ws(s_parser *p)
{
    while (p->cur < p->end && (*p->cur == ' ' || *p->cur == '\t'))
        p->cur++;
}

/* At '#': skips the comment up to, not including, the end of the line. */
static stm_err s_comment(s_parser *p)
{
    p->cur++;
    while (p->cur < p->end) {
        unsigned char c = (unsigned char)*p->cur;
        if (s_isplain(c)) {
            p->cur++;
        } else if (c == '\n' || (c == '\r' && p->cur + 1 < p->end && p->cur[1] == '\n')) {
            break;
        } else if (c >= 0x80) {
            int n = s_utf8(p->cur, p->end, NULL);
            if (!n)
                return s_bad_char(p, p->cur, "a comment");
            p->cur += n;
        } else {
            return s_bad_char(p, p->cur, "a comment");
        }
    }
    return STM_OK;
}

/* Consumes a newline (LF or CRLF) at the cursor if there is one. */
static bool s_eat_newline(s_parser *p)
{
    if (p->cur < p->end && *p->cur == '\n') {
        p->cur++;
    } else if (p->end - p->cur >= 2 && p->cur[0] == '\r' && p->cur[1] == '\n') {
        p->cur += 2;
    } else {
        return false;
    }
    s_newline(p);
    return true;
}

/* After a key/value pair or a header: whitespace, maybe a comment, then a newline or
 * the end of the document. */
static stm_err s_eol(s_parser *p)
{
    s_skip_ws(p);
    if (p->cur < p->end && *p->cur == '#') {
        stm_err rc = s_comment(p);
        if (rc)
            return rc;
    }
    if (p->cur >= p->end || s_eat_newline(p))
        return STM_OK;
    return s_expected(p, p->cur, "end of line");
}

/* Whitespace, newlines and comments, as allowed between the elements of an array. */
static stm_err s_skip_ws_nl(s_parser *p)
{
    for (;;) {
        s_skip_ws(p);
        if (p->cur < p->end && *p->cur == '#') {
            stm_err rc = s_comment(p);
            if (rc)
                return rc;
        }
        if (!s_eat_newline(p))
            return STM_OK;
    }
}

/* At a backslash in a basic string: decodes the escape into sbuf. */
static stm_err s_escape(s_parser *p)
{
    const char *at = p->cur;
    if (p->end - at < 2)
        return s_fail(p, at + 1, "unterminated string");
    char c = at[1], out = 0;
    switch (c) {
    case 'b':
        out = '\b';
        break;
    case 't':
        out = '\t';
        break;
    case 'n':
        out = '\n';
        break;
    case 'f':
        out = '\f';
        break;
    case 'r':
        out = '\r';
        break;
    case '"':
    case '\\':
        out = c;
        break;
    }
    if (out) {
        buf_putc(&p->sbuf, out);
        p->cur += 2;
        return STM_OK;
    }
    if (c != 'u' && c != 'U') {
        char buf[32];
        return s_fail(p, at, "invalid escape sequence: backslash followed by %s",
                      s_what(p, at + 1, buf, sizeof buf));
    }
    int ndigits = c == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (int i = 0; i < ndigits; i++) {
        const char *d = at + 2 + i;
        if (d >= p->end || !s_isdigit_in(*d, 16)) {
            char buf[32];
            return s_fail(p, d, "invalid \\%c escape: expected %d hex digits, found %s", c, ndigits,
                          s_what(p, d, buf, sizeof buf));
        }
        cp = (cp << 4) | (uint32_t)s_digit_value(*d);
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return s_fail(p, at, "invalid \\%c escape: %.*s is not a Unicode scalar value", c,
                      ndigits + 2, at);
    s_put_utf8(&p->sbuf, cp);
    p->cur += 2 + ndigits;
    return STM_OK;
}

/* Ends the decoded string: the text between seg and end, after whatever sbuf holds if
 * copied is set, otherwise straight from the source. */
static void s_string_done(s_parser *p, bool copied, const char *seg, const char *end,
                          const char **s, size_t *len)
{
    if (copied) {
        buf_append(&p->sbuf, seg, (size_t)(end - seg));
        *s = p->sbuf.data;
        *len = p->sbuf.len;
    } else {
        *s = seg;
        *len = (size_t)(end - seg);
    }
}

/* At a quote: any of the four kinds of string (multi-line ones only if multiline is
 * set). The result is lent: it points into the source or into sbuf. */
static stm_err s_string(s_parser *p, bool multiline, const char **s, size_t *len)
{
    const char *open = p->cur;
    char q = *open;
    bool basic = q == '"';
    bool triple = p->end - open >= 3 && open[1] == q && open[2] == q;
    const char *where = basic ? (triple ? "a multi-line string" : "a string")
                              : (triple ? "a multi-line literal string" : "a literal string");
    bool copied = false;
    stm_err rc;
    buf_reset(&p->sbuf);
    if (triple && !multiline)
        return s_fail(p, open, "a key cannot be a multi-line string");
    if (!triple) {
        const char *seg = ++p->cur;
        for (;;) {
            while (p->cur < p->end && s_isplain((unsigned char)*p->cur) && *p->cur != q &&
                   *p->cur != '\\')
                p->cur++;
            if (p->cur >= p->end)
                return s_fail(p, p->cur, "%s opened at column %d is never closed", where,
                              s_column(p, open));
            unsigned char c = (unsigned char)*p->cur;
            if (c == (unsigned char)q) {
                s_string_done(p, copied, seg, p->cur, s, len);
                p->cur++;
                return STM_OK;
            }
            if (c == '\\') {
                if (!basic) {
                    p->cur++;
                    continue;
                }
                buf_append(&p->sbuf, seg, (size_t)(p->cur - seg));
                copied = true;
                if ((rc = s_escape(p)))
                    return rc;
                seg = p->cur;
            } else if (c >= 0x80) {
                int n = s_utf8(p->cur, p->end, NULL);
                if (!n)
                    return s_bad_char(p, p->cur, where);
                p->cur += n;
            } else if (c == '\n' || c == '\r') {
                return s_fail(p, p->cur, "end of line in %s (no closing %c)", where, q);
            } else {
                return s_bad_char(p, p->cur, where);
            }
        }
    }
    int open_line = p->line, open_col = s_column(p, open);
    p->cur += 3;
    s_eat_newline(p); /* a newline right after the opening delimiter is trimmed */
    const char *seg = p->cur;
    for (;;) {
        while (p->cur < p->end && s_isplain((unsigned char)*p->cur) && *p->cur != q &&
               *p->cur != '\\')
            p->cur++;
        if (p->cur >= p->end)
            return s_fail(p, p->cur, "%s opened at line %d, column %d is never closed", where,
                          open_line, open_col);
        unsigned char c = (unsigned char)*p->cur;
        if (c == (unsigned char)q) {
            const char *run = p->cur;
            while (p->cur < p->end && *p->cur == q)
                p->cur++;
            size_t n = (size_t)(p->cur - run);
            if (n < 3)
                continue;
            if (n > 5)
                return s_fail(p, run + 5, "too many %c after the end of %s", q, where);
            s_string_done(p, copied, seg, run + (n - 3), s, len);
            return STM_OK;
        }
        if (c == '\\' && basic) {
            buf_append(&p->sbuf, seg, (size_t)(p->cur - seg));
            copied = true;
            const char *t = p->cur + 1;
            while (t < p->end && (*t == ' ' || *t == '\t'))
                t++;
            if (t < p->end && (*t == '\n' || (*t == '\r' && t + 1 < p->end && t[1] == '\n'))) {
                /* line-ending backslash: drop all whitespace and newlines up to the next
                 * character */
                p->cur = t;
                for (;;) {
                    s_skip_ws(p);
                    if (!s_eat_newline(p))
                        break;
                }
            } else if ((rc = s_escape(p))) {
                return rc;
            }
            seg = p->cur;
        } else if (c == '\\') {
            p->cur++;
        } else if (c == '\n') {
            p->cur++;
            s_newline(p);
        } else if (c == '\r' && p->cur + 1 < p->end && p->cur[1] == '\n') {
            /* CRLF becomes LF */
            buf_append(&p->sbuf, seg, (size_t)(p->cur - seg));
            buf_putc(&p->sbuf, '\n');
            copied = true;
            p->cur += 2;
            s_newline(p);
            seg = p->cur;
        } else if (c >= 0x80) {
            int n = s_utf8(p->cur, p->end, NULL);
            if (!n)
                return s_bad_char(p, p->cur, where);
            p->cur += n;
        } else {
            return s_bad_char(p, p->cur, where);
        }
    }
}

/* A key: simple keys joined by dots, into p->parts; skips the whitespace after it. */
static stm_err s_key(s_parser *p)
{
    p->nparts = 0;
    buf_reset(&p->kbuf);
    for (;;) {
        const char *at = p->cur;
        const char *s;
        size_t len;
        if (at < p->end && s_isbare(*at)) {
            while (p->cur < p->end && s_isbare(*p->cur))
                p->cur++;
            s = at;
            len = (size_t)(p->cur - at);
        } else if (at < p->end && (*at == '"' || *at == '\'')) {
            stm_err rc = s_string(p, false, &s, &len);
            if (rc)
                return rc;
        } else {
            return s_expected(p, at, "a key");
        }
        p->parts = stm_grow(p->parts, &p->partcap, p->nparts + 1, sizeof *p->parts);
        p->parts[p->nparts++] = (s_keypart){p->kbuf.len, len, at};
        buf_append(&p->kbuf, s, len);
        s_skip_ws(p);
        if (p->cur >= p->end || *p->cur != '.')
            return STM_OK;
        p->cur++;
        s_skip_ws(p);
    }
}

static s_entry *s_find_part(const s_parser *p, const toml_value *t, size_t i, uint32_t *hash)
{
    const s_keypart *k = &p->parts[i];
    *hash = s_hash(p->kbuf.data + k->off, k->len);
    return s_find(t, p->kbuf.data + k->off, k->len, *hash);
}

/* Makes a table under t for key part i. */
static stm_err s_new_table(s_parser *p, toml_value *t, size_t i, uint32_t hash, unsigned flags,
                           const char *at, toml_value **out)
{
    if (t->depth >= TOML_MAX_DEPTH)
        return s_fail(p, p->parts[i].at, "tables nest deeper than %d levels", TOML_MAX_DEPTH);
    const s_keypart *k = &p->parts[i];
    toml_value *v = s_pnew(p, TOML_TABLE);
    v->flags |= (uint8_t)flags;
    v->depth = (uint16_t)(t->depth + 1);
    v->line = p->line;
    v->column = s_column(p, at);
    s_append(t, s_pstrdup(p, p->kbuf.data + k->off, k->len), k->len, true, hash, v);
    *out = v;
    return STM_OK;
}

static stm_err s_value(s_parser *p, int depth, toml_value **out);

/* key = value, into table t, whose dotted keys belong to section; prefix is t's dotted
 * name for messages, NULL in an inline table. */
static stm_err s_keyval(s_parser *p, toml_value *t, unsigned section, const char *prefix)
{
    char name[256] = "";
    uint32_t hash;
    stm_err rc = s_key(p);
    if (rc)
        return rc;
    if (p->cur >= p->end || *p->cur != '=')
        return s_expected(p, p->cur, "'=' after the key");
    p->cur++;
    s_skip_ws(p);
    for (size_t i = 0; i + 1 < p->nparts; i++) {
        s_entry *e = s_find_part(p, t, i, &hash);
        if (!e) {
            if ((rc = s_new_table(p, t, i, hash, S_DOTTED, p->parts[i].at, &t)))
                return rc;
            t->section = section;
            continue;
        }
        toml_value *v = e->val;
        if (v->type != TOML_TABLE)
            return s_fail(p, p->parts[i].at, "'%s' is %s %s (line %d), not a table",
                          s_keyname(p, prefix, i + 1, name, sizeof name), s_a(v->type),
                          toml_type_name(v->type), v->line);
        if (v->flags & S_INLINE)
            return s_fail(p, p->parts[i].at,
                          "'%s' is an inline table (line %d), which cannot be extended",
                          s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        if ((v->flags & S_HEADER) || ((v->flags & S_DOTTED) && v->section != section))
            return s_fail(p, p->parts[i].at,
                          "table '%s' is already defined (line %d); dotted keys cannot add to it",
                          s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        v->flags |= S_DOTTED;
        v->section = section;
        t = v;
    }
    const s_keypart *last = &p->parts[p->nparts - 1];
    s_entry *e = s_find_part(p, t, p->nparts - 1, &hash);
    if (e)
        return s_fail(p, last->at, "duplicate key '%s' (first defined at line %d)",
                      s_keyname(p, prefix, p->nparts, name, sizeof name), e->val->line);
    size_t len = last->len;
    char *key = s_pstrdup(p, p->kbuf.data + last->off, len);
    toml_value *v;
    if ((rc = s_value(p, t->depth + 1, &v)))
        return rc;
    s_append(t, key, len, true, hash, v);
    return STM_OK;
}

/* At '[': a [table] or [[array of tables]] header. */
static stm_err s_header(s_parser *p)
{
    char name[256] = "";
    uint32_t hash;
    const char *prefix = NULL;
    const char *open = p->cur++;
    bool aot = p->cur < p->end && *p->cur == '[';
    if (aot)
        p->cur++;
    s_skip_ws(p);
    stm_err rc = s_key(p);
    if (rc)
        return rc;
    if (p->cur >= p->end || *p->cur != ']')
        return s_expected(p, p->cur,
                          aot ? "']]' after the table name" : "']' after the table name");
    p->cur++;
    if (aot) {
        if (p->cur >= p->end || *p->cur != ']')
            return s_expected(p, p->cur, "']]' after the table name");
        p->cur++;
    }
    toml_value *t = p->root;
    for (size_t i = 0; i + 1 < p->nparts; i++) {
        s_entry *e = s_find_part(p, t, i, &hash);
        if (!e) {
            if ((rc = s_new_table(p, t, i, hash, 0, p->parts[i].at, &t)))
                return rc;
            continue;
        }
        toml_value *v = e->val;
        if (v->type == TOML_TABLE && !(v->flags & S_INLINE)) {
            t = v;
        } else if (v->type == TOML_ARRAY && (v->flags & S_AOT)) {
            t = v->u.arr.items[v->u.arr.count - 1];
        } else if (v->type == TOML_TABLE) {
            return s_fail(p, p->parts[i].at,
                          "'%s' is an inline table (line %d), which cannot be extended",
                          s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        } else if (v->type == TOML_ARRAY) {
            return s_fail(p, p->parts[i].at,
                          "'%s' is an array value (line %d), which cannot be extended",
                          s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        } else {
            return s_fail(p, p->parts[i].at, "'%s' is %s %s (line %d), not a table",
                          s_keyname(p, prefix, i + 1, name, sizeof name), s_a(v->type),
                          toml_type_name(v->type), v->line);
        }
    }
    size_t li = p->nparts - 1;
    const char *at = p->parts[li].at;
    s_entry *e = s_find_part(p, t, li, &hash);
    toml_value *v = e ? e->val : NULL;
    if (v)
        s_keyname(p, prefix, p->nparts, name, sizeof name);
    if (!aot) {
        if (!v) {
            if ((rc = s_new_table(p, t, li, hash, S_HEADER, open, &t)))
                return rc;
        } else if (v->type == TOML_TABLE && !(v->flags & (S_INLINE | S_HEADER | S_DOTTED))) {
            v->flags |= S_HEADER;
            v->line = p->line;
            v->column = s_column(p, open);
            t = v;
        } else if (v->type == TOML_TABLE) {
            return s_fail(p, at, "table '%s' is already defined (line %d)", name, v->line);
        } else {
            return s_fail(p, at, "'%s' is already defined as %s %s (line %d)", name, s_a(v->type),
                          toml_type_name(v->type), v->line);
        }
    } else {
        toml_value *a = v;
        if (!a) {
            if (t->depth + 1 >= TOML_MAX_DEPTH)
                return s_fail(p, at, "tables nest deeper than %d levels", TOML_MAX_DEPTH);
            a = s_pnew(p, TOML_ARRAY);
            a->flags |= S_AOT;
            a->depth = (uint16_t)(t->depth + 1);
            a->line = p->line;
            a->column = s_column(p, open);
            const s_keypart *k = &p->parts[li];
            s_append(t, s_pstrdup(p, p->kbuf.data + k->off, k->len), k->len, true, hash, a);
        } else if (a->type != TOML_ARRAY) {
            return s_fail(p, at, "'%s' is already defined as %s %s (line %d)", name, s_a(a->type),
                          toml_type_name(a->type), a->line);
        } else if (!(a->flags & S_AOT)) {
            return s_fail(p, at, "'%s' is an array value (line %d), which cannot be extended", name,
                          a->line);
        }
        t = s_pnew(p, TOML_TABLE);
        t->flags |= S_HEADER;
        t->depth = (uint16_t)(a->depth + 1);
        t->line = p->line;
        t->column = s_column(p, open);
        s_push(a, t);
    }
    p->table = t;
    p->section = ++p->sections;
    s_keyname(p, NULL, p->nparts, p->secname, sizeof p->secname);
    return STM_OK;
}

/* At '[': an array value of the given depth. */
static stm_err s_array(s_parser *p, int depth, toml_value **out)
{
    if (depth > TOML_MAX_DEPTH)
        return s_fail(p, p->cur, "arrays and tables nest deeper than %d levels", TOML_MAX_DEPTH);
    toml_value *a = s_pnew(p, TOML_ARRAY);
    a->flags |= S_INLINE;
    a->depth = (uint16_t)depth;
    stm_err rc;
    p->cur++;
    for (;;) {
        if ((rc = s_skip_ws_nl(p)))
            goto fail;
        if (p->cur < p->end && *p->cur == ']')
            break;
        toml_value *v;
        if ((rc = s_value(p, depth + 1, &v)))
            goto fail;
        s_push(a, v);
        if ((rc = s_skip_ws_nl(p)))
            goto fail;
        if (p->cur < p->end && *p->cur == ',') {
            p->cur++;
            continue;
        }
        if (p->cur < p->end && *p->cur == ']')
            break;
        rc = s_expected(p, p->cur, "',' or ']' in the array");
        goto fail;
    }
    p->cur++;
    *out = a;
    return STM_OK;
fail:
    s_free(a);
    return rc;
}

/* At '{': an inline table of the given depth. */
static stm_err s_inline_table(s_parser *p, int depth, toml_value **out)
{
    if (depth > TOML_MAX_DEPTH)
        return s_fail(p, p->cur, "arrays and tables nest deeper than %d levels", TOML_MAX_DEPTH);
    toml_value *t = s_pnew(p, TOML_TABLE);
    t->depth = (uint16_t)depth;
    unsigned section = ++p->sections;
    stm_err rc;
    p->cur++;
    s_skip_ws(p);
    if (p->cur < p->end && *p->cur == '}') {
        p->cur++;
        t->flags |= S_INLINE;
        *out = t;
        return STM_OK;
    }
    for (;;) {
        if ((rc = s_keyval(p, t, section, NULL)))
            goto fail;
        s_skip_ws(p);
        if (p->cur < p->end && *p->cur == '}')
            break;
        if (p->cur >= p->end || *p->cur != ',') {
            rc = s_expected(p, p->cur, "',' or '}' in the inline table");
            goto fail;
        }
        p->cur++;
        s_skip_ws(p);
        if (p->cur < p->end && *p->cur == '}') {
            rc = s_fail(p, p->cur, "trailing comma in an inline table");
            goto fail;
        }
    }
    p->cur++;
    t->flags |= S_INLINE;
    *out = t;
    return STM_OK;
fail:
    s_free(t);
    return rc;
}

/* Reads exactly n digits at *q into *v, advancing *q; false (with *q at the offending
 * character) if they are not there. */
static bool s_fixed(const char **q, const char *end, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++, (*q)++) {
        if (*q >= end || !s_isdigit(**q))
            return false;
        x = x * 10 + (**q - '0');
    }
    *v = x;
    return true;
}

/* HH:MM:SS[.fraction] at *q. */
static stm_err s_time(s_parser *p, const char **q, toml_datetime *dt)
{
    const char *f = *q;
    if (!s_fixed(q, p->end, 2, &dt->hour))
        return s_expected(p, *q, "a digit in the time (HH:MM:SS)");
    if (dt->hour > 23)
        return s_fail(p, f, "hour %02d is out of range", dt->hour);
    if (*q >= p->end || **q != ':')
        return s_expected(p, *q, "':' in the time (HH:MM:SS)");
    f = ++*q;
    if (!s_fixed(q, p->end, 2, &dt->minute))
        return s_expected(p, *q, "a digit in the time (HH:MM:SS)");
    if (dt->minute > 59)
        return s_fail(p, f, "minute %02d is out of range", dt->minute);
    if (*q >= p->end || **q != ':')
        return s_expected(p, *q, "':' in the time (HH:MM:SS)");
    f = ++*q;
    if (!s_fixed(q, p->end, 2, &dt->second))
        return s_expected(p, *q, "a digit in the time (HH:MM:SS)");
    if (dt->second > 60)
        return s_fail(p, f, "second %02d is out of range", dt->second);
    if (*q < p->end && **q == '.') {
        ++*q;
        if (*q >= p->end || !s_isdigit(**q))
            return s_expected(p, *q, "a digit after the decimal point");
        int ns = 0, n = 0;
        for (; *q < p->end && s_isdigit(**q); ++*q)
            if (n < 9) {
                ns = ns * 10 + (**q - '0');
                n++;
            }
        for (; n < 9; n++)
            ns *= 10;
        dt->nanosecond = ns;
    }
    return STM_OK;
}

/* A date, date-time or time (time_only: starts HH:). */
static stm_err s_datetime(s_parser *p, bool time_only, toml_value **out)
{
    const char *q = p->cur, *f = q;
    toml_datetime dt = {0};
    toml_type type = TOML_TIME_LOCAL;
    stm_err rc;
    if (!time_only) {
        if (!s_fixed(&q, p->end, 4, &dt.year))
            return s_expected(p, q, "a digit in the date (YYYY-MM-DD)");
        if (q >= p->end || *q != '-')
            return s_expected(p, q, "'-' in the date (YYYY-MM-DD)");
        f = ++q;
        if (!s_fixed(&q, p->end, 2, &dt.month))
            return s_expected(p, q, "a digit in the date (YYYY-MM-DD)");
        if (dt.month < 1 || dt.month > 12)
            return s_fail(p, f, "month %02d is out of range", dt.month);
        if (q >= p->end || *q != '-')
            return s_expected(p, q, "'-' in the date (YYYY-MM-DD)");
        f = ++q;
        if (!s_fixed(&q, p->end, 2, &dt.day))
            return s_expected(p, q, "a digit in the date (YYYY-MM-DD)");
        if (dt.day < 1 || dt.day > s_days_in_month(dt.year, dt.month))
            return s_fail(p, f, "day %02d is out of range for %04d-%02d", dt.day, dt.year,
                          dt.month);
        type = TOML_DATE_LOCAL;
        if (q < p->end &&
            (*q == 'T' || *q == 't' || (*q == ' ' && q + 1 < p->end && s_isdigit(q[1])))) {
            q++;
            type = TOML_DATETIME_LOCAL;
        }
    }
    if (type != TOML_DATE_LOCAL) {
        if ((rc = s_time(p, &q, &dt)))
            return rc;
        if (type == TOML_DATETIME_LOCAL && q < p->end && (*q == 'Z' || *q == 'z')) {
            q++;
            type = TOML_DATETIME;
        } else if (type == TOML_DATETIME_LOCAL && q < p->end && (*q == '+' || *q == '-')) {
            int sign = *q++ == '-' ? -1 : 1, h, m;
            f = q;
            if (!s_fixed(&q, p->end, 2, &h))
                return s_expected(p, q, "a digit in the time offset (+HH:MM)");
            if (h > 23)
                return s_fail(p, f, "offset hour %02d is out of range", h);
            if (q >= p->end || *q != ':')
                return s_expected(p, q, "':' in the time offset (+HH:MM)");
            f = ++q;
            if (!s_fixed(&q, p->end, 2, &m))
                return s_expected(p, q, "a digit in the time offset (+HH:MM)");
            if (m > 59)
                return s_fail(p, f, "offset minute %02d is out of range", m);
            dt.offset_minutes = sign * (h * 60 + m);
            type = TOML_DATETIME;
        }
    }
    p->cur = q;
    toml_value *v = s_pnew(p, type);
    v->u.dt = dt;
    *out = v;
    return STM_OK;
}

/* Scans DIGIT *(DIGIT / "_" DIGIT) in base from q; returns the end, or NULL with *bad at
 * the offending character. */
static const char *s_scan_digits(const char *q, const char *e, int base, const char **bad)
{
    if (q >= e || !s_isdigit_in(*q, base)) {
        *bad = q;
        return NULL;
    }
    for (q++; q < e;) {
        if (*q == '_') {
            if (q + 1 >= e || !s_isdigit_in(q[1], base)) {
                *bad = q;
                return NULL;
            }
            q += 2;
        } else if (s_isdigit_in(*q, base)) {
            q++;
        } else {
            break;
        }
    }
    return q;
}

/* The float in [s, e), already checked against the grammar, when it can be computed
 * exactly: a mantissa of at most 2^53 times or divided by a power of ten of at most
 * 10^22 (both exact doubles) is one correctly rounded operation. False otherwise. */
static bool s_fast_float(const char *s, const char *e, double *out)
{
#if FLT_EVAL_METHOD == 0
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    bool neg = *s == '-';
    if (*s == '+' || *s == '-')
        s++;
    uint64_t w = 0;
    int digits = 0, scale = 0;
    bool frac = false;
    for (; s < e && *s != 'e' && *s != 'E'; s++) {
        if (*s == '_')
            continue;
        if (*s == '.') {
            frac = true;
            continue;
        }
        if (w == 0 && *s == '0') {
            if (frac)
                scale--;
            continue;
        }
        if (++digits > 19)
            return false;
        w = w * 10 + (uint64_t)(*s - '0');
        if (frac)
            scale--;
    }
    if (s < e) {
        bool eneg = *++s == '-';
        if (*s == '+' || *s == '-')
            s++;
        int x = 0;
        for (; s < e; s++)
            if (*s != '_' && (x = x * 10 + (*s - '0')) > 1000)
                return false;
        scale += eneg ? -x : x;
    }
    if (w == 0) {
        *out = neg ? -0.0 : 0.0;
        return true;
    }
    if (w > (1ull << 53) || scale < -22 || scale > 22)
        return false;
    double d = (double)w;
    if (scale < 0)
        d /= pow10[-scale];
    else if (scale > 0)
        d *= pow10[scale];
    *out = neg ? -d : d;
    return true;
#else
    (void)s, (void)e, (void)out;
    return false;
#endif
}

static bool s_isnumchar(char c)
{
    return s_isbare(c) || c == '.' || c == '+';
}

static stm_err s_bad_number(s_parser *p, const char *at)
{
    char buf[32];
    if (at < p->end && *at == '_')
        return s_fail(p, at, "invalid number: '_' must sit between two digits");
    return s_fail(p, at, "invalid number: unexpected %s", s_what(p, at, buf, sizeof buf));
}

/* An integer, a float, or (by its shape) a date or time. */
static stm_err s_number(s_parser *p, toml_value **out)
{
    const char *s = p->cur, *e = s, *q = s, *bad;
    size_t avail = (size_t)(p->end - s);
    if (avail >= 3 && s_isdigit(s[0]) && s_isdigit(s[1]) && s[2] == ':')
        return s_datetime(p, true, out);
    if (avail >= 5 && s_isdigit(s[0]) && s_isdigit(s[1]) && s_isdigit(s[2]) && s_isdigit(s[3]) &&
        s[4] == '-')
        return s_datetime(p, false, out);
    while (e < p->end && s_isnumchar(*e))
        e++;
    bool neg = false, sign = *q == '+' || *q == '-';
    if (sign)
        neg = *q++ == '-';
    if (e - q == 3 && (memcmp(q, "inf", 3) == 0 || memcmp(q, "nan", 3) == 0)) {
        toml_value *v = s_pnew(p, TOML_FLOAT);
        v->u.f = q[0] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        p->cur = e;
        *out = v;
        return STM_OK;
    }
    if (q >= e || !s_isdigit(*q)) {
        if (q < e && (*q == 'i' || *q == 'n'))
            return s_fail(p, q, "invalid value (did you mean inf or nan?)");
        return s_bad_number(p, q);
    }
    int base = 10;
    if (!sign && q[0] == '0' && e - q >= 2 && (q[1] == 'x' || q[1] == 'o' || q[1] == 'b')) {
        base = q[1] == 'x' ? 16 : q[1] == 'o' ? 8 : 2;
        q += 2;
    } else if (q[0] == '0' && e - q >= 2 && (s_isdigit(q[1]) || q[1] == '_')) {
        return s_fail(p, q, "invalid number: leading zeros are not allowed");
    }
    const char *digits = q;
    if (!(q = s_scan_digits(q, e, base, &bad)))
        return s_bad_number(p, bad);
    bool is_float = false;
    if (base == 10 && q < e && *q == '.') {
        if (!(q = s_scan_digits(q + 1, e, 10, &bad)))
            return s_bad_number(p, bad);
        is_float = true;
    }
    if (base == 10 && q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-'))
            q++;
        if (!(q = s_scan_digits(q, e, 10, &bad)))
            return s_bad_number(p, bad);
        is_float = true;
    }
    if (q != e)
        return s_bad_number(p, q);
    toml_value *v;
    double f;
    if (is_float && s_fast_float(s, e, &f)) {
        v = s_pnew(p, TOML_FLOAT);
        v->u.f = f;
    } else if (is_float) {
        char small[64], *tmp = small;
        if ((size_t)(e - s) >= sizeof small) {
            buf_reset(&p->sbuf);
            buf_append(&p->sbuf, s, (size_t)(e - s));
            tmp = p->sbuf.data;
        }
        size_t n = 0;
        for (const char *c = s; c < e; c++)
            if (*c != '_')
                tmp[n++] = *c == '.' ? p->decimal_point : *c;
        tmp[n] = '\0';
        f = strtod(tmp, NULL);
        if (isinf(f))
            return s_fail(p, s, "float %.*s is out of range", (int)(e - s), s);
        v = s_pnew(p, TOML_FLOAT);
        v->u.f = f;
    } else {
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
        uint64_t cutoff = limit / (unsigned)base, cutlim = limit % (unsigned)base;
        for (const char *c = digits; c < e; c++) {
            if (*c == '_')
                continue;
            unsigned d = (unsigned)s_digit_value(*c);
            if (acc > cutoff || (acc == cutoff && d > cutlim))
                return s_fail(p, s, "integer %.*s does not fit in 64 bits", (int)(e - s), s);
            acc = acc * (unsigned)base + d;
        }
        v = s_pnew(p, TOML_INTEGER);
        v->u.i = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
    }
    p->cur = e;
    *out = v;
    return STM_OK;
}

static bool s_match(s_parser *p, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(p->end - p->cur) < n || memcmp(p->cur, word, n) != 0)
        return false;
    p->cur += n;
    return true;
}

/* Any value, which will have the given depth. */
static stm_err s_value(s_parser *p, int depth, toml_value **out)
{
    const char *at = p->cur;
    if (at >= p->end)
        return s_expected(p, at, "a value");
    int line = p->line, col = s_column(p, at);
    toml_value *v = NULL;
    stm_err rc = STM_OK;
    switch (*at) {
    case '"':
    case '\'': {
        const char *s;
        size_t len;
        if (!(rc = s_string(p, true, &s, &len))) {
            v = s_pnew(p, TOML_STRING);
            v->u.str.s = s_pstrdup(p, s, len);
            v->u.str.len = len;
        }
        break;
    }
    case 't':
    case 'f':
        if (s_match(p, "true") || s_match(p, "false")) {
            v = s_pnew(p, TOML_BOOL);
            v->u.b = *at == 't';
        } else
            rc = s_fail(p, at, "invalid value (booleans are true and false, in lower case)");
        break;
    case '[':
        rc = s_array(p, depth, &v);
        break;
    case '{':
        rc = s_inline_table(p, depth, &v);
        break;
    default:
        if (s_isdigit(*at) || *at == '+' || *at == '-' || *at == 'i' || *at == 'n')
            rc = s_number(p, &v);
        else
            rc = s_expected(p, at, "a value");
    }
    if (rc)
        return rc;
    v->line = line;
    v->column = col;
    *out = v;
    return STM_OK;
}

static stm_err s_document(s_parser *p)
{
    for (;;) {
        s_skip_ws(p);
        if (p->cur >= p->end)
            return STM_OK;
        char c = *p->cur;
        stm_err rc = STM_OK;
        if (c == '[')
            rc = s_header(p);
        else if (c != '#' && c != '\n' && c != '\r')
            rc = s_keyval(p, p->table, p->section, p->secname);
        if (rc || (rc = s_eol(p)))
            return rc;
    }
}

stm_err toml_parse(const char *text, size_t len, const char *name, toml_value **root,
                   stm_error *err)
{
    assert(root && (text || len == 0));
    if (!name)
        name = "<toml>";
    if (len > TOML_MAX_INPUT)
        return stm_error_set(err, STM_EINPUT, "%s: the document is larger than %u bytes", name,
                             TOML_MAX_INPUT);
    if (!text)
        text = "";
    s_parser p = {0};
    p.text = text;
    p.end = text + len;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        p.text += 3;
    p.cur = p.line_start = p.col_at = p.text;
    p.line = p.col_line = 1;
    p.name = name;
    p.err = err;
    const char *dp = localeconv()->decimal_point;
    p.decimal_point = dp && dp[0] && !dp[1] ? dp[0] : '.';
    s_doc *doc = stm_calloc(1, sizeof *doc);
    doc->root.type = TOML_TABLE;
    doc->root.flags = S_DOC;
    doc->root.line = doc->root.column = 1;
    p.root = p.table = &doc->root;
    p.arena = &doc->arena;
    stm_err rc = s_document(&p);
    buf_free(&p.sbuf);
    buf_free(&p.kbuf);
    free(p.parts);
    if (rc) {
        toml_destroy(&p.root);
        return rc;
    }
    *root = p.root;
    return STM_OK;
}

stm_err toml_parse_file(const char *path, toml_value **root, stm_error *err)
{
    assert(path && root);
    FILE *f = fopen(path, "rb");
    if (!f)
        return stm_error_set(err, STM_ESYS, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > (off_t)TOML_MAX_INPUT) {
        fclose(f);
        return stm_error_set(err, STM_EINPUT, "%s: the document is larger than %u bytes", path,
                             TOML_MAX_INPUT);
    }
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        data = stm_grow(data, &cap, len + 65536, 1);
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (len > TOML_MAX_INPUT) {
            fclose(f);
            free(data);
            return stm_error_set(err, STM_EINPUT, "%s: the document is larger than %u bytes", path,
                                 TOML_MAX_INPUT);
        }
        if (n == 0)
            break;
    }
    int failed = ferror(f), saved = errno;
    fclose(f);
    if (failed) {
        free(data);
        return stm_error_set(err, STM_ESYS, "%s: cannot read: %s", path, strerror(saved));
    }
    stm_err rc = toml_parse(data, len, path, root, err);
    free(data);
    return rc;
}

/* ------------------------------------------------------------------ the emitter */

static bool s_is_bare_key(const char *k, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_isbare(k[i]))
            return false;
    return true;
}

/* A basic string: escapes quote, backslash and control characters; invalid UTF-8 (which
 * only a built string can hold) becomes U+FFFD so the output stays TOML. */
static void s_emit_string(buf_t *b, const char *s, size_t len)
{
    const char *end = s + len, *seg = s;
    buf_putc(b, '"');
    while (s < end) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            s++;
            continue;
        }
        int n = c >= 0x80 ? s_utf8(s, end, NULL) : 0;
        if (n) {
            s += n;
            continue;
        }
        buf_append(b, seg, (size_t)(s - seg));
        switch (c) {
        case '"':
            buf_puts(b, "\\\"");
            break;
        case '\\':
            buf_puts(b, "\\\\");
            break;
        case '\b':
            buf_puts(b, "\\b");
            break;
        case '\t':
            buf_puts(b, "\\t");
            break;
        case '\n':
            buf_puts(b, "\\n");
            break;
        case '\f':
            buf_puts(b, "\\f");
            break;
        case '\r':
            buf_puts(b, "\\r");
            break;
        default:
            buf_printf(b, "\\u%04X", c >= 0x80 ? 0xFFFD : c);
        }
        seg = ++s;
    }
    buf_append(b, seg, (size_t)(s - seg));
    buf_putc(b, '"');
}

static void s_emit_key(buf_t *b, const char *k, size_t len)
{
    if (s_is_bare_key(k, len))
        buf_append(b, k, len);
    else
        s_emit_string(b, k, len);
}

/* The shortest of %.15g, %.16g, %.17g that reads back as d, always looking like a float. */
static void s_emit_float(buf_t *b, double d)
{
    if (isnan(d)) {
        buf_puts(b, "nan");
        return;
    }
    if (isinf(d)) {
        buf_puts(b, d < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[40];
    const char *dp = localeconv()->decimal_point;
    char point = dp && dp[0] && !dp[1] ? dp[0] : '.';
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    bool looks_float = false;
    for (char *c = tmp; *c; c++) {
        if (*c == point)
            *c = '.';
        if (*c == '.' || *c == 'e')
            looks_float = true;
    }
    buf_puts(b, tmp);
    if (!looks_float)
        buf_puts(b, ".0");
}

static void s_emit_datetime(buf_t *b, toml_type type, const toml_datetime *dt)
{
    if (type != TOML_TIME_LOCAL)
        buf_printf(b, "%04d-%02d-%02d", dt->year, dt->month, dt->day);
    if (type == TOML_DATE_LOCAL)
        return;
    if (type != TOML_TIME_LOCAL)
        buf_putc(b, 'T');
    buf_printf(b, "%02d:%02d:%02d", dt->hour, dt->minute, dt->second);
    if (dt->nanosecond) {
        char frac[16];
        snprintf(frac, sizeof frac, "%09d", dt->nanosecond);
        size_t n = strlen(frac);
        while (n > 1 && frac[n - 1] == '0')
            n--;
        buf_putc(b, '.');
        buf_append(b, frac, n);
    }
    if (type == TOML_DATETIME) {
        int off = dt->offset_minutes;
        if (off == 0)
            buf_putc(b, 'Z');
        else
            buf_printf(b, "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
    }
}

/* A non-empty array of nothing but tables. */
static bool s_is_table_array(const toml_value *v)
{
    if (v->type != TOML_ARRAY || v->u.arr.count == 0)
        return false;
    for (size_t i = 0; i < v->u.arr.count; i++)
        if (v->u.arr.items[i]->type != TOML_TABLE)
            return false;
    return true;
}

/* Written as a [header] section. */
static bool s_is_section(const toml_value *v)
{
    return v->type == TOML_TABLE && !(v->flags & S_INLINE);
}

/* Written as [[header]] sections. */
static bool s_is_aot(const toml_value *v)
{
    return !(v->flags & S_INLINE) && s_is_table_array(v);
}

/* Any value, on one line. */
static void s_emit_inline(buf_t *b, const toml_value *v)
{
    switch (v->type) {
    case TOML_TABLE:
        if (v->u.tab.count == 0) {
            buf_puts(b, "{}");
            return;
        }
        buf_puts(b, "{ ");
        for (size_t i = 0; i < v->u.tab.count; i++) {
            const s_entry *e = &v->u.tab.items[i];
            if (i)
                buf_puts(b, ", ");
            s_emit_key(b, e->key, e->keylen);
            buf_puts(b, " = ");
            s_emit_inline(b, e->val);
        }
        buf_puts(b, " }");
        return;
    case TOML_ARRAY:
        buf_putc(b, '[');
        for (size_t i = 0; i < v->u.arr.count; i++) {
            if (i)
                buf_puts(b, ", ");
            s_emit_inline(b, v->u.arr.items[i]);
        }
        buf_putc(b, ']');
        return;
    case TOML_STRING:
        s_emit_string(b, v->u.str.s, v->u.str.len);
        return;
    case TOML_INTEGER:
        buf_printf(b, "%" PRId64, v->u.i);
        return;
    case TOML_FLOAT:
        s_emit_float(b, v->u.f);
        return;
    case TOML_BOOL:
        buf_puts(b, v->u.b ? "true" : "false");
        return;
    default:
        s_emit_datetime(b, v->type, &v->u.dt);
    }
}

/* Before a header: a blank line, unless at the top or after one already. */
static void s_emit_blank(buf_t *b)
{
    if (b->len > 0 && !(b->len >= 2 && b->data[b->len - 1] == '\n' && b->data[b->len - 2] == '\n'))
        buf_putc(b, '\n');
}

static void s_path_push(buf_t *path, const s_entry *e)
{
    if (path->len)
        buf_putc(path, '.');
    s_emit_key(path, e->key, e->keylen);
}

/* The body of table t, whose header (if any) is written: its key/value lines, then its
 * sub-tables, then its arrays of tables. path is t's dotted name. */
static void s_emit_body(buf_t *b, const toml_value *t, buf_t *path)
{
    for (size_t i = 0; i < t->u.tab.count; i++) {
        const s_entry *e = &t->u.tab.items[i];
        const toml_value *v = e->val;
        if (s_is_section(v) || s_is_aot(v))
            continue;
        s_emit_key(b, e->key, e->keylen);
        buf_puts(b, " = ");
        if (v->type == TOML_ARRAY && s_is_table_array(v)) {
            buf_puts(b, "[\n");
            for (size_t j = 0; j < v->u.arr.count; j++) {
                buf_puts(b, "  ");
                s_emit_inline(b, v->u.arr.items[j]);
                buf_puts(b, ",\n");
            }
            buf_putc(b, ']');
        } else {
            s_emit_inline(b, v);
        }
        buf_putc(b, '\n');
    }
    for (size_t i = 0; i < t->u.tab.count; i++) {
        const s_entry *e = &t->u.tab.items[i];
        const toml_value *v = e->val;
        if (!s_is_section(v))
            continue;
        size_t mark = path->len;
        s_path_push(path, e);
        bool has_kv = v->u.tab.count == 0;
        for (size_t j = 0; j < v->u.tab.count && !has_kv; j++)
            has_kv = !s_is_section(v->u.tab.items[j].val) && !s_is_aot(v->u.tab.items[j].val);
        if (has_kv) {
            s_emit_blank(b);
            buf_printf(b, "[%s]\n", buf_str(path));
        }
        s_emit_body(b, v, path);
        path->len = mark;
        path->data[mark] = '\0';
    }
    for (size_t i = 0; i < t->u.tab.count; i++) {
        const s_entry *e = &t->u.tab.items[i];
        const toml_value *v = e->val;
        if (!s_is_aot(v))
            continue;
        size_t mark = path->len;
        s_path_push(path, e);
        for (size_t j = 0; j < v->u.arr.count; j++) {
            s_emit_blank(b);
            buf_printf(b, "[[%s]]\n", buf_str(path));
            s_emit_body(b, v->u.arr.items[j], path);
        }
        path->len = mark;
        path->data[mark] = '\0';
    }
}

/* Each line of header as a comment; control characters and invalid UTF-8 become spaces
 * so that the result stays TOML. */
static void s_emit_comment(buf_t *b, const char *header)
{
    const char *s = header, *end = header + strlen(header);
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        if (le > s && le[-1] == '\r')
            le--;
        buf_putc(b, '#');
        if (le > s)
            buf_putc(b, ' ');
        while (s < le) {
            int n = (unsigned char)*s >= 0x80 ? s_utf8(s, le, NULL) : 1;
            if (n > 1) {
                buf_append(b, s, (size_t)n);
                s += n;
            } else {
                buf_putc(b, s_isplain((unsigned char)*s) ? *s : ' ');
                s++;
            }
        }
        buf_putc(b, '\n');
        s = nl ? nl + 1 : end;
    }
}

char *toml_emit(const toml_value *root, const char *header)
{
    assert(root && root->type == TOML_TABLE);
    buf_t b = BUF_INIT, path = BUF_INIT;
    if (header && *header) {
        s_emit_comment(&b, header);
        if (root->u.tab.count)
            buf_putc(&b, '\n');
    }
    s_emit_body(&b, root, &path);
    buf_free(&path);
    return buf_detach(&b);
}
