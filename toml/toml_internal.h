/* toml_internal.h - private to the toml module: only the files in toml/ include it, and
 * nothing outside toml/ may.
 *
 * The module is one job split along its seams into files that can each be held in mind:
 * the value tree (toml.c), the parser (toml_parse.c, with toml_lex.c and toml_scalar.c,
 * which share its state through toml_parser.h) and the emitter (toml_emit.c). All of
 * them need what toml.h keeps opaque: the parser builds values in a document's arena
 * and inserts keys the way the builders do, and the emitter walks table entries and reads
 * the style flag. This header holds just what they share (the layout of toml_value, the
 * document arena, table insertion and lookup, and the character classes), so the layout
 * stays inside the module as STYLE asks. Its functions are prefixed toml_ but are not API;
 * each says it is internal.
 *
 * Memory, at all times: a value flagged S_ARENA (and an entry whose key is flagged
 * arena) lives in the arena of the document it was parsed into, which the root (flagged
 * S_DOC) frees last; everything else is on the heap and freed one by one. Entry and
 * element arrays are always on the heap, so building into a parsed tree just works.
 *
 * S_INLINE doubles as the emitter's style hint (stm_toml_set_inline); the other flags only
 * mean something to the parser. What they guarantee is written down with the parser's
 * invariants, at the top of toml_parse.c. */
#ifndef STM_TOML_INTERNAL_H
#define STM_TOML_INTERNAL_H

#include "toml/toml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    S_INLINE = 1u << 0, /* inline table or array value; emitted inline */
    S_HEADER = 1u << 1, /* table defined by a [header], or an element of a [[header]] */
    S_DOTTED = 1u << 2, /* table defined by dotted keys in section `section` */
    S_AOT = 1u << 3,    /* array made by [[header]]: later [[header]]s may append to it */
    S_ARENA = 1u << 4,  /* the value's memory belongs to its document's arena */
    S_DOC = 1u << 5,    /* the root of a parsed document: an s_doc, owning the arena */
};

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
    uint32_t hash;        /* toml_hash of the key, kept for rebuilding the index */
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

/* ------------------------------------------------------------------ memory (toml.c) */

/* A parsed document's values, keys and string bytes come from one bump allocator that
 * is freed with the root: a document costs a few times its text instead of an
 * allocation per value. Values built later with toml_new_* (even when put into a parsed
 * tree) are on the heap, and a value replaced in a parsed tree just stays in the arena
 * until the document goes. */
typedef struct s_chunk s_chunk; /* one block of an arena; laid out in toml.c */

typedef struct {
    s_chunk *head;    /* the chunk being filled; older chunks follow */
    size_t next_size; /* bytes in the next chunk */
} s_arena;

/* The root of a parsed document: flagged S_DOC, freed with its arena. */
typedef struct {
    toml_value root; /* first, so a toml_value * to the root is an s_doc * */
    s_arena arena;   /* everything in the tree flagged S_ARENA */
} s_doc;

/* Internal: n bytes, 8-byte aligned, from arena a; they go when the arena does. The parser
 * takes a document's values, keys and string bytes from it. */
void *stm_toml_arena_alloc(s_arena *a, size_t n);

/* ------------------------------------------------------------------ values (toml.c) */

/* Internal: frees v and everything it owns; safe on NULL. Unlike stm_toml_destroy it leaves
 * the caller's pointer alone: the parser frees with it the value it was building when an
 * error stops it. */
void stm_toml_free(toml_value *v);

/* FNV-1a with a final mix, so that the low bits the index uses depend on every byte.
 * Not keyed: a document built to collide only makes its own parse slow.
 * Internal, and inline because the parser hashes every key it reads. */
static inline uint32_t toml_hash(const char *key, size_t len)
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

/* Internal: the entry for key (len bytes, whose toml_hash is hash) in table t, or NULL. */
s_entry *stm_toml_find(const toml_value *t, const char *key, size_t len, uint32_t hash);

/* Internal: appends a key the caller has checked is absent (with stm_toml_find) to table t;
 * takes key (from the arena if arena is set, else from the heap) and v. */
void stm_toml_append(toml_value *t, char *key, size_t len, bool arena, uint32_t hash,
                     toml_value *v);

/* Internal: appends v to array a, which takes it (stm_toml_array_push, less its asserts). */
void stm_toml_push(toml_value *a, toml_value *v);

/* Internal: days in month m (1-12) of year y; the builders assert dates with it and the
 * parser checks them. */
int stm_toml_days_in_month(int y, int m);

/* ------------------------------------------------------------------ characters */

/* Internal, and inline because the lexer asks them of nearly every byte: a decimal digit,
 * and a character of a bare key (the emitter uses the second to decide on quoting). */
static inline bool toml_isdigit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool toml_isbare(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || toml_isdigit(c) || c == '_' ||
           c == '-';
}

/* Printable ASCII or tab: what every kind of string and comment takes as it is.
 * Internal, and inline for the same reason; the emitter uses it for comments. */
static inline bool toml_isplain(unsigned char c)
{
    return (unsigned char)(c - 0x20) < 0x5F || c == '\t';
}

/* Internal (defined in toml_lex.c; the emitter uses it too): length (1-4) of the
 * well-formed UTF-8 sequence at s, or 0 if it is malformed (overlong, a surrogate, beyond
 * U+10FFFF, or cut short by end); the code point goes to *cp_out unless that is NULL. */
int stm_toml_utf8(const char *s, const char *end, uint32_t *cp_out);

#endif
