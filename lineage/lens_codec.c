/* lens_codec.c - a lens set to bytes and back (lens.h: stm_lens_encode, stm_lens_decode),
 * for the cache of derived lineages (cache.h).
 *
 * The bytes, every integer a u32 little-endian, a string its length (u32) and its
 * bytes, a missing string the length ffffffff:
 *
 *   lenses  = "STMLENS1" count next_id npool string{npool} step{count}
 *   step    = probed(u8) why changes columns
 *   changes = n (kind(u8) table column from_table from_column){n}
 *   columns = n (table_ref column_ref id){n}       refs index the pool
 *
 * Reading checks everything a question about the set relies on: the count the
 * caller expects, known kinds, the strings each kind has, refs inside the pool, the
 * columns in the order they are searched in, nothing after the last step. */
#include "lens_internal.h"
#include "base/buf.h"
#include "base/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char s_magic[8] = {'S', 'T', 'M', 'L', 'E', 'N', 'S', '1'};
#define S_NULL UINT32_MAX

static void s_u32(buf_t *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    stm_buf_append(b, x, 4);
}

static void s_str(buf_t *b, const char *s)
{
    if (!s) {
        s_u32(b, S_NULL);
        return;
    }
    size_t n = strlen(s);
    s_u32(b, (uint32_t)n);
    stm_buf_append(b, s, n);
}

/* A pool name's pointer and its index, to find the index of a column's name. */
typedef struct {
    const char *p;
    uint32_t i;
} s_ref;

static int s_ref_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const s_ref *)a)->p, y = (uintptr_t)((const s_ref *)b)->p;
    return x < y ? -1 : x > y;
}

static uint32_t s_ref_of(const s_ref *refs, size_t n, const char *p)
{
    s_ref key = {p, 0};
    const s_ref *r = bsearch(&key, refs, n, sizeof key, s_ref_cmp);
    return r ? r->i : S_NULL; /* every column name is pooled: never S_NULL */
}

void stm_lens_encode(const lens_set_t *s, buf_t *out)
{
    stm_buf_append(out, s_magic, sizeof s_magic);
    s_u32(out, (uint32_t)s->count);
    s_u32(out, s->next_id);
    s_u32(out, (uint32_t)s->npool);
    s_ref *refs = stm_calloc(s->npool + 1, sizeof *refs);
    for (size_t i = 0; i < s->npool; i++) {
        s_str(out, s->pool[i]);
        refs[i] = (s_ref){s->pool[i], (uint32_t)i};
    }
    qsort(refs, s->npool, sizeof *refs, s_ref_cmp);
    for (size_t i = 0; i < s->count; i++) {
        const lens_step *st = &s->steps[i];
        stm_buf_putc(out, st->probed ? 1 : 0);
        s_str(out, st->why);
        s_u32(out, (uint32_t)st->count);
        for (size_t k = 0; k < st->count; k++) {
            const lens_change *c = &st->changes[k];
            stm_buf_putc(out, (char)c->kind);
            s_str(out, c->table);
            s_str(out, c->column);
            s_str(out, c->from_table);
            s_str(out, c->from_column);
        }
        s_u32(out, (uint32_t)st->ncolumns);
        for (size_t k = 0; k < st->ncolumns; k++) {
            s_u32(out, s_ref_of(refs, s->npool, st->columns[k].table));
            s_u32(out, s_ref_of(refs, s->npool, st->columns[k].column));
            s_u32(out, st->columns[k].id);
        }
    }
    free(refs);
}

/* ---- reading ---- */

typedef struct {
    const unsigned char *p, *end; /* what is left */
    bool bad;                     /* ran past the end, or read something impossible */
} s_in;

static uint32_t s_get_u32(s_in *in)
{
    if (in->end - in->p < 4) {
        in->bad = true;
        return 0;
    }
    uint32_t v = (uint32_t)in->p[0] | (uint32_t)in->p[1] << 8 | (uint32_t)in->p[2] << 16 |
                 (uint32_t)in->p[3] << 24;
    in->p += 4;
    return v;
}

static unsigned s_get_u8(s_in *in)
{
    if (in->p >= in->end) {
        in->bad = true;
        return 0;
    }
    return *in->p++;
}

/* A string of its own (NULL for a missing one, or when the input is bad). */
static char *s_get_str(s_in *in)
{
    uint32_t n = s_get_u32(in);
    if (in->bad || n == S_NULL)
        return NULL;
    if ((size_t)(in->end - in->p) < n || memchr(in->p, '\0', n)) {
        in->bad = true;
        return NULL;
    }
    char *s = stm_malloc((size_t)n + 1);
    memcpy(s, in->p, n);
    s[n] = '\0';
    in->p += n;
    return s;
}

/* A count of items of at least min bytes each, checked against what is left before
 * anything is allocated for them. */
static size_t s_get_count(s_in *in, size_t min)
{
    uint32_t n = s_get_u32(in);
    if (!in->bad && (size_t)(in->end - in->p) / min < n)
        in->bad = true;
    return in->bad ? 0 : n;
}

/* True when a change has the strings its kind has (lens.h). */
static bool s_change_ok(const lens_change *c)
{
    if (c->kind >= LENS_KINDS || !c->table || (!c->from_table != !c->from_column))
        return false;
    bool from = c->kind == LENS_RENAMED || c->kind == LENS_CAST || c->kind == LENS_FILLED ||
                c->kind == LENS_COPIED;
    bool whole = c->kind == LENS_DROPPED || c->kind == LENS_EMPTIED || c->kind == LENS_REPLACED;
    return from == (c->from_table != NULL) && (c->column || whole);
}

static void s_read_step(s_in *in, lens_set_t *s, lens_step *st)
{
    unsigned probed = s_get_u8(in);
    st->probed = probed == 1;
    st->why = s_get_str(in);
    if (probed > 1 || st->probed == (st->why != NULL))
        in->bad = true;
    size_t n = s_get_count(in, 1 + 4 * 4);
    st->changes = stm_calloc(n + 1, sizeof *st->changes);
    st->cap = n + 1;
    for (size_t k = 0; k < n && !in->bad; k++) {
        lens_change *c = &st->changes[st->count++];
        c->kind = (lens_kind)s_get_u8(in);
        c->table = s_get_str(in);
        c->column = s_get_str(in);
        c->from_table = s_get_str(in);
        c->from_column = s_get_str(in);
        if (!in->bad && !s_change_ok(c))
            in->bad = true;
    }
    n = s_get_count(in, 3 * 4);
    st->columns = stm_calloc(n + 1, sizeof *st->columns);
    for (size_t k = 0; k < n && !in->bad; k++) {
        uint32_t t = s_get_u32(in), c = s_get_u32(in), id = s_get_u32(in);
        if (in->bad || t >= s->npool || c >= s->npool || id >= s->next_id) {
            in->bad = true;
            break;
        }
        lens_column_id *col = &st->columns[st->ncolumns++];
        *col = (lens_column_id){s->pool[t], s->pool[c], id};
        /* Searched by bsearch: strictly in order, or a question could miss its column. */
        if (k > 0 && stm_lens_column_id_cmp(col - 1, col) >= 0)
            in->bad = true;
    }
}

stm_err stm_lens_decode(const void *data, size_t len, size_t count, lens_set_t **out,
                        stm_error *err)
{
    s_in in = {data, (const unsigned char *)data + len, false};
    if (len < sizeof s_magic || memcmp(data, s_magic, sizeof s_magic) != 0)
        return stm_error_set(err, STM_ECORRUPT, "the lenses are not in a format this stemma reads");
    in.p += sizeof s_magic;
    lens_set_t *s = stm_calloc(1, sizeof *s);
    uint32_t n = s_get_u32(&in);
    s->next_id = s_get_u32(&in);
    if (!in.bad && n != count) {
        stm_lens_destroy(&s);
        return stm_error_set(err, STM_ECORRUPT, "the lenses are of %u migrations, not %zu", n,
                             count);
    }
    size_t npool = s_get_count(&in, 4);
    s->pool = stm_calloc(npool + 1, sizeof *s->pool);
    s->pool_cap = npool + 1;
    for (size_t i = 0; i < npool && !in.bad; i++) {
        char *name = s_get_str(&in);
        if (!name)
            in.bad = true;
        else
            s->pool[s->npool++] = name;
    }
    s->steps = stm_calloc(count + 1, sizeof *s->steps);
    s->count = in.bad ? 0 : count;
    for (size_t i = 0; i < s->count && !in.bad; i++)
        s_read_step(&in, s, &s->steps[i]);
    if (in.bad || in.p != in.end) {
        stm_lens_destroy(&s);
        return stm_error_set(err, STM_ECORRUPT, "the lenses are damaged");
    }
    *out = s;
    return STM_OK;
}
