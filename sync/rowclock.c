#include "rowclock.h"
#include "base/mem.h"
#include "msgread.h"

#include <msgpack.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

void stm_rowclock_clear(rowclock_t *c)
{
    c->count = 0;
    stm_buf_reset(&c->names);
}

void stm_rowclock_free(rowclock_t *c)
{
    free(c->entries);
    stm_buf_free(&c->names);
    memset(c, 0, sizeof *c);
}

static rowclock_entry *s_add(rowclock_t *c)
{
    c->entries = stm_grow(c->entries, &c->cap, c->count + 1, sizeof *c->entries);
    rowclock_entry *e = &c->entries[c->count++];
    memset(e, 0, sizeof *e);
    return e;
}

/* The encoding (rowclock.h): the distinct writes first, then each entry naming one. */
typedef struct {
    uint64_t hlc;
    int64_t origin;
    uint64_t seq; /* the lowest sequence of an entry written by it */
} s_write_ref;

bool stm_rowclock_decode(rowclock_t *c, const void *data, size_t len)
{
    stm_rowclock_clear(c);
    msgread_t r;
    stm_msgread_init(&r, data, len);
    uint64_t nwrites;
    if (!stm_msgread_uint(&r, &nwrites) || nwrites > stm_msgread_left(&r))
        return false;
    /* Each write takes three bytes at least: the count is bounded by the bytes. */
    s_write_ref stack[8], *writes = nwrites <= 8 ? stack : stm_calloc(nwrites, sizeof *writes);
    bool ok = true;
    for (uint64_t i = 0; i < nwrites && ok; i++)
        ok = stm_msgread_uint(&r, &writes[i].hlc) && stm_msgread_int(&r, &writes[i].origin) &&
             stm_msgread_uint(&r, &writes[i].seq);
    uint64_t nentries = 0;
    ok = ok && stm_msgread_uint(&r, &nentries) && nentries <= stm_msgread_left(&r);
    for (uint64_t k = 0; ok && k < nentries; k++) {
        rowclock_entry *e = s_add(c);
        if (stm_msgread_peek(&r) == MSG_STR) {
            const char *name;
            uint32_t n;
            if (!stm_msgread_str(&r, &name, &n) || memchr(name, '\0', n)) {
                ok = false;
                break;
            }
            e->kind = ROWCLOCK_CELL;
            e->name = c->names.len;
            stm_buf_append(&c->names, name, n);
            stm_buf_putc(&c->names, '\0');
        } else {
            uint64_t key;
            if (!stm_msgread_uint(&r, &key) || key > 2) {
                ok = false;
                break;
            }
            e->kind = key == 0 ? ROWCLOCK_DELETE : key == 1 ? ROWCLOCK_PARKED : ROWCLOCK_BORN;
        }
        uint64_t which, offset;
        ok = stm_msgread_uint(&r, &which) && which < nwrites && stm_msgread_uint(&r, &offset) &&
             offset <= UINT64_MAX - writes[which].seq;
        if (ok) {
            e->hlc = writes[which].hlc;
            e->origin = writes[which].origin;
            e->seq = writes[which].seq + offset;
        }
    }
    if (writes != stack)
        free(writes);
    return ok && stm_msgread_left(&r) == 0;
}

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

void stm_rowclock_encode(const rowclock_t *c, buf_t *out)
{
    /* A row change writes its cells with one clock and consecutive sequences: they
     * share one write, and each entry holds its sequence's offset from it. */
    s_write_ref stack[8], *writes = c->count <= 8 ? stack : stm_calloc(c->count, sizeof *writes);
    size_t *which = stm_calloc(c->count + 1, sizeof *which);
    size_t nwrites = 0;
    for (size_t i = 0; i < c->count; i++) {
        const rowclock_entry *e = &c->entries[i];
        size_t w = 0;
        while (w < nwrites && !(writes[w].hlc == e->hlc && writes[w].origin == e->origin))
            w++;
        if (w == nwrites)
            writes[nwrites++] = (s_write_ref){e->hlc, e->origin, e->seq};
        else if (e->seq < writes[w].seq)
            writes[w].seq = e->seq;
        which[i] = w;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_write);
    msgpack_pack_uint64(&pk, nwrites);
    for (size_t w = 0; w < nwrites; w++) {
        msgpack_pack_uint64(&pk, writes[w].hlc);
        msgpack_pack_int64(&pk, writes[w].origin);
        msgpack_pack_uint64(&pk, writes[w].seq);
    }
    msgpack_pack_uint64(&pk, c->count);
    for (size_t i = 0; i < c->count; i++) {
        const rowclock_entry *e = &c->entries[i];
        if (e->kind == ROWCLOCK_CELL) {
            const char *name = stm_rowclock_name(c, e);
            msgpack_pack_str_with_body(&pk, name, strlen(name));
        } else {
            msgpack_pack_uint8(&pk, e->kind == ROWCLOCK_DELETE   ? 0
                                    : e->kind == ROWCLOCK_PARKED ? 1
                                                                 : 2);
        }
        msgpack_pack_uint64(&pk, which[i]);
        msgpack_pack_uint64(&pk, e->seq - writes[which[i]].seq);
    }
    if (writes != stack)
        free(writes);
    free(which);
}

const char *stm_rowclock_name(const rowclock_t *c, const rowclock_entry *e)
{
    return c->names.data + e->name;
}

rowclock_entry *stm_rowclock_find(rowclock_t *c, rowclock_kind kind, const char *column)
{
    for (size_t i = 0; i < c->count; i++) {
        rowclock_entry *e = &c->entries[i];
        if (e->kind == kind &&
            (kind != ROWCLOCK_CELL || sqlite3_stricmp(stm_rowclock_name(c, e), column) == 0))
            return e;
    }
    return NULL;
}

void stm_rowclock_set(rowclock_t *c, rowclock_kind kind, const char *column, uint64_t hlc,
                      int64_t origin, uint64_t seq)
{
    rowclock_entry *e = stm_rowclock_find(c, kind, column);
    if (!e) {
        size_t name = c->names.len;
        if (kind == ROWCLOCK_CELL) {
            stm_buf_puts(&c->names, column);
            stm_buf_putc(&c->names, '\0');
        }
        e = s_add(c);
        e->kind = kind;
        e->name = name;
    }
    e->hlc = hlc;
    e->origin = origin;
    e->seq = seq;
}
