#include "rowclock.h"
#include "lineage/mem.h"
#include "msgread.h"

#include <msgpack.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

void rowclock_clear(rowclock_t *c)
{
    c->count = 0;
    buf_reset(&c->names);
}

void rowclock_free(rowclock_t *c)
{
    free(c->entries);
    buf_free(&c->names);
    memset(c, 0, sizeof *c);
}

static rowclock_entry *s_add(rowclock_t *c)
{
    c->entries = stm_grow(c->entries, &c->cap, c->count + 1, sizeof *c->entries);
    rowclock_entry *e = &c->entries[c->count++];
    memset(e, 0, sizeof *e);
    return e;
}

bool rowclock_decode(rowclock_t *c, const void *data, size_t len)
{
    rowclock_clear(c);
    msgread_t r;
    msgread_init(&r, data, len);
    while (msgread_left(&r)) {
        rowclock_entry *e = s_add(c);
        if (msgread_peek(&r) == MSG_STR) {
            const char *name;
            uint32_t n;
            if (!msgread_str(&r, &name, &n) || memchr(name, '\0', n))
                return false;
            e->kind = ROWCLOCK_CELL;
            e->name = c->names.len;
            buf_append(&c->names, name, n);
            buf_putc(&c->names, '\0');
        } else {
            uint64_t key;
            if (!msgread_uint(&r, &key) || key > 1)
                return false;
            e->kind = key == 0 ? ROWCLOCK_DELETE : ROWCLOCK_PARKED;
        }
        if (!msgread_uint(&r, &e->hlc) || !msgread_int(&r, &e->origin) ||
            !msgread_uint(&r, &e->seq))
            return false;
    }
    return true;
}

static int s_write(void *data, const char *bytes, size_t len)
{
    buf_append(data, bytes, len);
    return 0;
}

void rowclock_encode(const rowclock_t *c, buf_t *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_write);
    for (size_t i = 0; i < c->count; i++) {
        const rowclock_entry *e = &c->entries[i];
        if (e->kind == ROWCLOCK_CELL) {
            const char *name = rowclock_name(c, e);
            msgpack_pack_str_with_body(&pk, name, strlen(name));
        } else {
            msgpack_pack_uint8(&pk, e->kind == ROWCLOCK_DELETE ? 0 : 1);
        }
        msgpack_pack_uint64(&pk, e->hlc);
        msgpack_pack_int64(&pk, e->origin);
        msgpack_pack_uint64(&pk, e->seq);
    }
}

const char *rowclock_name(const rowclock_t *c, const rowclock_entry *e)
{
    return c->names.data + e->name;
}

rowclock_entry *rowclock_find(rowclock_t *c, rowclock_kind kind, const char *column)
{
    for (size_t i = 0; i < c->count; i++) {
        rowclock_entry *e = &c->entries[i];
        if (e->kind == kind &&
            (kind != ROWCLOCK_CELL || sqlite3_stricmp(rowclock_name(c, e), column) == 0))
            return e;
    }
    return NULL;
}

void rowclock_set(rowclock_t *c, rowclock_kind kind, const char *column, uint64_t hlc,
                  int64_t origin, uint64_t seq)
{
    rowclock_entry *e = rowclock_find(c, kind, column);
    if (!e) {
        size_t name = c->names.len;
        if (kind == ROWCLOCK_CELL) {
            buf_puts(&c->names, column);
            buf_putc(&c->names, '\0');
        }
        e = s_add(c);
        e->kind = kind;
        e->name = name;
    }
    e->hlc = hlc;
    e->origin = origin;
    e->seq = seq;
}
