/* park_wake.c - wakes: the digests naming what an operation parked for a constraint
 * waits for (park.h, invariant 4), a row or a table, made from a loose form of its name
 * and key. */
#include "park_internal.h"
#include "key.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A wake is a digest of a loose form, written into a buffer and hashed once:
 *
 *   row    "row" NUL, name, u32 n, n values      table  "table" NUL, name
 *   name   u64 length, the name's bytes with ASCII letters in lower case
 *   value  "#" digits NUL    a number: an integer, or a real of integral value that
 *                            fits one, as the integer; any other real in 17 digits;
 *                            and text that reads as one between blanks, as INTEGER,
 *                            REAL and NUMERIC affinity would take it
 *        | "$" u64 len bytes other text, folded as NOCASE and RTRIM fold (ASCII
 *                            letters to lower case, trailing spaces off)
 *        | "b" u64 len bytes a blob      | "n" NULL
 *
 * so that keys SQLite may hold as one row under some affinity or collation have one
 * wake. */

static void s_put_u64(buf_t *b, uint64_t v)
{
    unsigned char bytes[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        bytes[i] = (unsigned char)v;
    stm_buf_append(b, bytes, 8);
}

/* len bytes, ASCII letters in lower case. */
static void s_put_folded(buf_t *b, const char *bytes, size_t len)
{
    s_put_u64(b, len);
    size_t at = b->len;
    stm_buf_append(b, bytes, len);
    for (size_t j = at; j < b->len; j++)
        if (b->data[j] >= 'A' && b->data[j] <= 'Z')
            b->data[j] = (char)(b->data[j] - 'A' + 'a');
}

static void s_put_number(buf_t *b, bool is_int, int64_t i, double r)
{
    if (!is_int && isfinite(r) && r >= -9223372036854775808.0 && r < 9223372036854775808.0 &&
        r == (double)(int64_t)r) {
        i = (int64_t)r;
        is_int = true;
    }
    char text[48];
    int n = is_int ? snprintf(text, sizeof text, "#%lld", (long long)i)
                   : snprintf(text, sizeof text, "#%.17g", r);
    stm_buf_append(b, text, (size_t)n + 1);
}

static bool s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Text: a number when it reads as one between blanks; else folded. */
static void s_put_text(buf_t *b, const char *bytes, size_t len)
{
    size_t from = 0, to = len;
    while (from < to && s_space(bytes[from]))
        from++;
    while (to > from && s_space(bytes[to - 1]))
        to--;
    char t[64]; /* longer text is no number any affinity keeps exactly */
    if (from < to && to - from < sizeof t &&
        (bytes[from] == '+' || bytes[from] == '-' || bytes[from] == '.' ||
         (bytes[from] >= '0' && bytes[from] <= '9'))) {
        memcpy(t, bytes + from, to - from);
        t[to - from] = '\0';
        size_t k = t[0] == '+' || t[0] == '-';
        bool digits = t[k] != '\0';
        for (size_t j = k; t[j] && digits; j++)
            digits = t[j] >= '0' && t[j] <= '9';
        char *end = NULL;
        errno = 0;
        if (digits) {
            long long i = strtoll(t, &end, 10);
            if (errno == 0 && *end == '\0') {
                s_put_number(b, true, i, 0);
                return;
            }
        }
        double r = strtod(t, &end);
        if (end != t && *end == '\0') {
            s_put_number(b, false, 0, r);
            return;
        }
    }
    while (len > 0 && bytes[len - 1] == ' ')
        len--;
    stm_buf_append(b, "$", 1);
    s_put_folded(b, bytes, len);
}

/* SipHash-2-4's key for wakes: fixed, since wakes are stored (a change is a new store
 * format). Being public it lets anyone make two keys collide, which buys nothing: an
 * operation waits for its own row, so a peer that wants a row's every write to retry
 * its operations need only send them for that row. */
static const unsigned char s_siphash_key[crypto_shorthash_siphash24_KEYBYTES] = "stemma park wake";

/* The wake of the loose form in b: a row's with the top bit clear, a table's with it
 * set (negative as SQLite holds it), so that whether any operation waits for a table
 * is one look. */
static park_wake s_wake_of(const buf_t *b, bool table)
{
    unsigned char digest[crypto_shorthash_siphash24_BYTES];
    crypto_shorthash_siphash24(digest, (const unsigned char *)b->data, b->len, s_siphash_key);
    park_wake w = 0;
    for (size_t i = 0; i < sizeof digest; i++)
        w = w << 8 | digest[i];
    w = table ? w | PARK_WAKE_TABLE : w & ~PARK_WAKE_TABLE;
    return w == PARK_WAKE_ANY ? 1 : w; /* PARK_WAKE_ANY is no digest's */
}

/* The start of a row's loose form: "row" NUL and table's name. */
void stm_park_put_row_prefix(buf_t *b, const char *table)
{
    stm_buf_append(b, "row", 4);
    s_put_folded(b, table, strlen(table));
}

/* stm_park_wake_row, its loose form made in b after the prefix b holds already. */
static park_wake s_wake_row_values(buf_t *b, const op_value *parts, size_t n)
{
    s_put_u64(b, n);
    for (size_t i = 0; i < n; i++) {
        const op_value *v = &parts[i];
        switch (v->type) {
        case VALUE_INTEGER:
            s_put_number(b, true, v->i, 0);
            break;
        case VALUE_REAL:
            s_put_number(b, false, 0, v->r);
            break;
        case VALUE_TEXT:
            s_put_text(b, v->bytes, v->len);
            break;
        case VALUE_BLOB:
        case VALUE_KEY: /* not a key column's value: its bytes, as a blob's */
            stm_buf_append(b, "b", 1);
            s_put_u64(b, v->len);
            stm_buf_append(b, v->bytes, v->len);
            break;
        case VALUE_NULL:
            stm_buf_append(b, "n", 1);
            break;
        }
    }
    return s_wake_of(b, false);
}

/* stm_park_wake_key, its loose form made in b after the prefix b holds already. */
park_wake stm_park_wake_key_values(buf_t *b, const op_value *key)
{
    op_value parts[KEY_MAX_COLUMNS];
    size_t n = 0;
    if (!stm_key_values(key, parts, KEY_MAX_COLUMNS, &n) || n > KEY_MAX_COLUMNS)
        return s_wake_row_values(b, key, 1); /* damaged: its bytes name it */
    return s_wake_row_values(b, parts, n);
}

park_wake stm_park_wake_row(const char *table, const op_value *parts, size_t n)
{
    buf_t b = BUF_INIT;
    stm_park_put_row_prefix(&b, table);
    park_wake w = s_wake_row_values(&b, parts, n);
    stm_buf_free(&b);
    return w;
}

park_wake stm_park_wake_key(const char *table, const op_value *key)
{
    buf_t b = BUF_INIT;
    stm_park_put_row_prefix(&b, table);
    park_wake w = stm_park_wake_key_values(&b, key);
    stm_buf_free(&b);
    return w;
}

park_wake stm_park_wake_table(const char *table)
{
    buf_t b = BUF_INIT;
    stm_buf_append(&b, "table", 6);
    s_put_folded(&b, table, strlen(table));
    park_wake w = s_wake_of(&b, true);
    stm_buf_free(&b);
    return w;
}
