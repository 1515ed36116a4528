#include "op.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

/* The arena is a list of blocks; each op's strings point into one of them, so
 * growing it never moves bytes an op already points to. */
typedef struct s_block {
    struct s_block *next;
    size_t used;
    size_t size;
    char data[];
} s_block;

struct opbatch {
    op_t *ops;        /* in order of addition */
    size_t count;
    size_t cap;
    s_block *blocks;  /* newest first */
    size_t bytes;     /* arena bytes in use */
    op_withheld *withheld; /* stand-ins, in order of addition (op.h) */
    size_t nwithheld;
    size_t withheld_cap;
};

#define S_BLOCK_SIZE (64u * 1024u)

opbatch_t *stm_opbatch_new(void)
{
    return stm_calloc(1, sizeof(opbatch_t));
}

static void s_free_blocks(s_block *b)
{
    while (b) {
        s_block *next = b->next;
        free(b);
        b = next;
    }
}

void stm_opbatch_destroy(opbatch_t **self_p)
{
    opbatch_t *b = *self_p;
    if (!b)
        return;
    s_free_blocks(b->blocks);
    free(b->ops);
    free(b->withheld);
    free(b);
    *self_p = NULL;
}

void stm_opbatch_clear(opbatch_t *b)
{
    /* Keep the newest block, which is usually the only one, unless it was made for one
     * large value. */
    if (b->blocks && b->blocks->size > S_BLOCK_SIZE) {
        s_free_blocks(b->blocks);
        b->blocks = NULL;
    }
    if (b->blocks) {
        s_free_blocks(b->blocks->next);
        b->blocks->next = NULL;
        b->blocks->used = 0;
    }
    b->count = 0;
    b->bytes = 0;
    b->nwithheld = 0;
}

static void *s_alloc(opbatch_t *b, size_t len)
{
    size_t need = (len + 7) & ~(size_t)7;
    if (!b->blocks || b->blocks->size - b->blocks->used < need) {
        size_t size = need > S_BLOCK_SIZE ? need : S_BLOCK_SIZE;
        s_block *blk = stm_malloc(sizeof *blk + size);
        blk->next = b->blocks;
        blk->used = 0;
        blk->size = size;
        b->blocks = blk;
    }
    void *p = b->blocks->data + b->blocks->used;
    b->blocks->used += need;
    b->bytes += need;
    return p;
}

static const char *s_copy_str(opbatch_t *b, const char *s)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    char *p = s_alloc(b, len + 1);
    memcpy(p, s, len + 1);
    return p;
}

static void s_copy_value(opbatch_t *b, op_value *dst, const op_value *src)
{
    *dst = *src;
    if (src->type == VALUE_TEXT || src->type == VALUE_BLOB || src->type == VALUE_KEY) {
        void *p = s_alloc(b, src->len ? src->len : 1);
        if (src->len)
            memcpy(p, src->bytes, src->len);
        dst->bytes = p;
    } else {
        dst->bytes = NULL;
        dst->len = 0;
    }
}

void stm_opbatch_add(opbatch_t *b, const op_t *op)
{
    b->ops = stm_grow(b->ops, &b->cap, b->count + 1, sizeof *b->ops);
    op_t *dst = &b->ops[b->count++];
    *dst = *op;
    dst->table = s_copy_str(b, op->table);
    dst->column = s_copy_str(b, op->column);
    s_copy_value(b, &dst->pk, &op->pk);
    s_copy_value(b, &dst->value, &op->value);
    b->bytes += sizeof *dst;
}

const char *stm_opbatch_name(opbatch_t *b, const char *name, size_t len)
{
    char *p = s_alloc(b, len + 1);
    memcpy(p, name, len);
    p[len] = '\0';
    return p;
}

void stm_opbatch_add_named(opbatch_t *b, const op_t *op)
{
    b->ops = stm_grow(b->ops, &b->cap, b->count + 1, sizeof *b->ops);
    op_t *dst = &b->ops[b->count++];
    *dst = *op;
    s_copy_value(b, &dst->pk, &op->pk);
    s_copy_value(b, &dst->value, &op->value);
    b->bytes += sizeof *dst;
}

size_t stm_opbatch_count(const opbatch_t *b)
{
    return b->count;
}

const op_t *stm_opbatch_at(const opbatch_t *b, size_t i)
{
    return &b->ops[i];
}

op_t *stm_opbatch_at_mut(opbatch_t *b, size_t i)
{
    return &b->ops[i];
}

size_t stm_opbatch_bytes(const opbatch_t *b)
{
    return b->bytes;
}

void stm_opbatch_add_withheld(opbatch_t *b, const op_withheld *w)
{
    b->withheld = stm_grow(b->withheld, &b->withheld_cap, b->nwithheld + 1, sizeof *b->withheld);
    op_withheld *dst = &b->withheld[b->nwithheld++];
    *dst = *w;
    dst->table = s_copy_str(b, w->table);
    s_copy_value(b, &dst->pk, &w->pk);
    b->bytes += sizeof *dst;
}

size_t stm_opbatch_withheld_count(const opbatch_t *b)
{
    return b->nwithheld;
}

const op_withheld *stm_opbatch_withheld_at(const opbatch_t *b, size_t i)
{
    return &b->withheld[i];
}

uint64_t stm_opbatch_covered(const opbatch_t *b)
{
    uint64_t n = b->count;
    for (size_t i = 0; i < b->nwithheld; i++)
        n += b->withheld[i].n;
    return n;
}

bool stm_op_is_delete(const op_t *op)
{
    return op->column == NULL;
}

bool stm_op_same_row_change(const op_t *a, const op_t *b)
{
    return a->hlc == b->hlc && stm_id_equal(&a->origin, &b->origin) && !stm_op_is_delete(a) &&
           !stm_op_is_delete(b) && strcmp(a->table, b->table) == 0 &&
           stm_op_value_equal(&a->pk, &b->pk);
}

int stm_op_clock_compare(uint64_t hlc_a, const stm_id *origin_a, uint64_t hlc_b,
                         const stm_id *origin_b)
{
    if (hlc_a != hlc_b)
        return hlc_a < hlc_b ? -1 : 1;
    return memcmp(origin_a->bytes, origin_b->bytes, STM_ID_BYTES);
}

int stm_op_value_bind(sqlite3_stmt *stmt, int i, const op_value *v)
{
    switch (v->type) {
    case VALUE_NULL:
        return sqlite3_bind_null(stmt, i);
    case VALUE_INTEGER:
        return sqlite3_bind_int64(stmt, i, v->i);
    case VALUE_REAL:
        return sqlite3_bind_double(stmt, i, v->r);
    case VALUE_TEXT:
        /* SQLite binds a NULL pointer as NULL: empty text must still be text. */
        return sqlite3_bind_text64(stmt, i, v->len ? v->bytes : "", v->len, SQLITE_STATIC,
                                   SQLITE_UTF8);
    case VALUE_BLOB:
    case VALUE_KEY:
        return sqlite3_bind_blob64(stmt, i, v->len ? v->bytes : "", v->len, SQLITE_STATIC);
    }
    return SQLITE_MISUSE;
}

void stm_op_value_column(sqlite3_stmt *stmt, int i, op_value *v)
{
    memset(v, 0, sizeof *v);
    switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
        v->type = VALUE_INTEGER;
        v->i = sqlite3_column_int64(stmt, i);
        break;
    case SQLITE_FLOAT:
        v->type = VALUE_REAL;
        v->r = sqlite3_column_double(stmt, i);
        break;
    case SQLITE_TEXT:
        v->type = VALUE_TEXT;
        v->bytes = sqlite3_column_text(stmt, i);
        v->len = (size_t)sqlite3_column_bytes(stmt, i);
        break;
    case SQLITE_BLOB:
        v->type = VALUE_BLOB;
        v->bytes = sqlite3_column_blob(stmt, i);
        v->len = (size_t)sqlite3_column_bytes(stmt, i);
        break;
    default:
        v->type = VALUE_NULL;
    }
}

bool stm_op_value_equal(const op_value *a, const op_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case VALUE_NULL:
        return true;
    case VALUE_INTEGER:
        return a->i == b->i;
    case VALUE_REAL:
        return memcmp(&a->r, &b->r, sizeof a->r) == 0;
    case VALUE_TEXT:
    case VALUE_BLOB:
    case VALUE_KEY:
        return a->len == b->len && (a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0);
    }
    return false;
}

void stm_op_value_describe(buf_t *b, const op_value *v)
{
    switch (v->type) {
    case VALUE_NULL:
        stm_buf_puts(b, "NULL");
        break;
    case VALUE_INTEGER:
        stm_buf_printf(b, "%lld", (long long)v->i);
        break;
    case VALUE_REAL:
        stm_buf_printf(b, "%.17g", v->r);
        break;
    case VALUE_TEXT: {
        /* Cut at a byte, which may split a character: put_printable shows it escaped. */
        size_t n = v->len > 40 ? 40 : v->len;
        char *text = stm_strndup(v->bytes, n);
        stm_buf_putc(b, '\'');
        stm_buf_put_printable(b, text);
        stm_buf_puts(b, v->len > n ? "...'" : "'");
        free(text);
        break;
    }
    case VALUE_BLOB:
        stm_buf_printf(b, "a blob of %zu bytes", v->len);
        break;
    case VALUE_KEY:
        stm_buf_printf(b, "a key of several columns (%zu bytes packed)", v->len);
        break;
    }
}

void stm_op_withheld_describe(buf_t *b, const op_withheld *w)
{
    char origin[STM_ID_SHORT_LEN + 1];
    stm_id_short(&w->origin, origin);
    if (w->n == 1)
        stm_buf_printf(b, "operation %llu", (unsigned long long)w->seq);
    else
        stm_buf_printf(b, "operations %llu-%llu", (unsigned long long)w->seq,
                       (unsigned long long)(w->seq + w->n - 1));
    if (w->pruned) {
        stm_buf_printf(b, " of origin %s, pruned", origin);
        return;
    }
    stm_buf_printf(b, " of origin %s (table ", origin);
    stm_buf_put_printable(b, w->table);
    stm_buf_puts(b, ", key ");
    stm_op_value_describe(b, &w->pk);
    stm_buf_printf(b, "), a row change of %llu bytes", (unsigned long long)w->bytes);
}
