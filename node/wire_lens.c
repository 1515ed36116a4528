/* wire_lens.c - a HELLO's "lenses", packed and read (wire_lens.h). */
#include "wire_lens.h"
#include "wire.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

static void s_str_or_nil(msgpack_packer *pk, const char *s)
{
    if (s)
        msgpack_pack_str_with_body(pk, s, strlen(s));
    else
        msgpack_pack_nil(pk);
}

/* Whether version v's step is sent: it has changes, or they are not known. */
static bool s_sent(const lens_set_t *lenses, int v)
{
    size_t n;
    stm_lens_changes(lenses, v, &n);
    return n || !stm_lens_probed(lenses, v, NULL);
}

size_t stm_wire_lens_step_count(const lens_set_t *lenses, size_t nversions)
{
    size_t steps = 0, count = stm_lens_count(lenses);
    for (size_t v = 2; v <= nversions && v <= count; v++)
        steps += s_sent(lenses, (int)v);
    return steps;
}

void stm_wire_pack_lenses(msgpack_packer *pk, const lens_set_t *lenses, size_t nversions)
{
    size_t count = stm_lens_count(lenses);
    msgpack_pack_array(pk, stm_wire_lens_step_count(lenses, nversions));
    /* Version 1 makes the database: it has no changes to follow. */
    for (size_t v = 2; v <= nversions && v <= count; v++) {
        if (!s_sent(lenses, (int)v))
            continue;
        size_t n;
        const lens_change *c = stm_lens_changes(lenses, (int)v, &n);
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint64(pk, v);
        if (stm_lens_probed(lenses, (int)v, NULL))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++) {
            msgpack_pack_array(pk, 5);
            s_str_or_nil(pk, stm_lens_kind_name(c[i].kind));
            s_str_or_nil(pk, c[i].table);
            s_str_or_nil(pk, c[i].column);
            s_str_or_nil(pk, c[i].from_table);
            s_str_or_nil(pk, c[i].from_column);
        }
    }
}

/* A name: text of 1 to WIRE_MAX_TEXT bytes with no control character, copied; or nil
 * when nil_ok (*out NULL). */
static bool s_name(msgread_t *r, bool nil_ok, char **out)
{
    *out = NULL;
    if (nil_ok && stm_msgread_peek(r) == MSG_NIL)
        return stm_msgread_nil(r);
    const char *s;
    uint32_t n;
    if (!stm_msgread_str(r, &s, &n) || n == 0 || n > WIRE_MAX_TEXT)
        return false;
    for (uint32_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    *out = stm_strndup(s, n);
    return true;
}

/* One change into *c; *known false for a kind this stemma does not know. */
static const char *s_read_change(msgread_t *r, lens_change *c, bool *known)
{
    uint32_t fields;
    const char *kind;
    uint32_t klen;
    memset(c, 0, sizeof *c);
    if (!stm_msgread_array(r, &fields) || fields < 5 || !stm_msgread_str(r, &kind, &klen))
        return "a lens change is not [kind, table, column, from_table, from_column]";
    char *table = NULL, *column = NULL, *from_table = NULL, *from_column = NULL;
    bool names = s_name(r, false, &table) && s_name(r, true, &column) &&
                 s_name(r, true, &from_table) && s_name(r, true, &from_column);
    c->table = table;
    c->column = column;
    c->from_table = from_table;
    c->from_column = from_column;
    if (!names)
        return "a lens change's table, column or source is not a name (or nil)";
    for (uint32_t k = 5; k < fields; k++)
        if (!stm_msgread_skip(r))
            return "a lens change's extra field is malformed";
    *known = false;
    for (int k = 0; k < LENS_KINDS && !*known; k++) {
        const char *name = stm_lens_kind_name((lens_kind)k);
        if (strlen(name) == klen && memcmp(name, kind, klen) == 0) {
            c->kind = (lens_kind)k;
            *known = true;
        }
    }
    if (!*known)
        return NULL;
    /* What each kind names (lens.h): a change that says less is none this stemma
     * can follow. */
    bool from = c->kind == LENS_RENAMED || c->kind == LENS_CAST || c->kind == LENS_FILLED ||
                c->kind == LENS_COPIED;
    bool whole = c->kind == LENS_DROPPED || c->kind == LENS_EMPTIED || c->kind == LENS_REPLACED;
    if (from != (c->from_table && c->from_column) || (!c->from_table != !c->from_column) ||
        (!c->column && !whole))
        return "a lens change does not name what its kind names";
    return NULL;
}

const char *stm_wire_read_lenses(msgread_t *r, size_t nversions, wire_lenses *out)
{
    memset(out, 0, sizeof *out);
    uint32_t n;
    if (!stm_msgread_array(r, &n) || n > nversions ||
        (uint64_t)n * WIRE_MIN_STEP_BYTES > stm_msgread_left(r))
        return "its lenses are not an array of at most one step a version";
    out->steps = stm_calloc(n + 1, sizeof *out->steps);
    size_t total = 0, last = 0;
    for (uint32_t i = 0; i < n; i++) {
        wire_lens_step *st = &out->steps[out->count++];
        uint32_t fields, nc;
        uint64_t v;
        if (!stm_msgread_array(r, &fields) || fields < 3 || !stm_msgread_uint(r, &v) ||
            !stm_msgread_bool(r, &st->probed) || !stm_msgread_array(r, &nc))
            return "a lens step is not [version, probed, changes]";
        if (v <= last || v < 2 || v > nversions)
            return "a lens step's version is not in its lineage, or out of order";
        last = st->version = (size_t)v;
        total += nc;
        if (total > WIRE_MAX_LENS_CHANGES ||
            (uint64_t)nc * WIRE_MIN_CHANGE_BYTES > stm_msgread_left(r))
            return "its lenses hold more changes than 100000";
        st->changes = stm_calloc(nc + 1, sizeof *st->changes);
        for (uint32_t k = 0; k < nc; k++) {
            bool known = true;
            lens_change c;
            const char *why = s_read_change(r, &c, &known);
            if (why || !known) {
                stm_lens_change_free(&c);
                if (why)
                    return why;
                st->probed = false; /* a kind of a later stemma: not followed */
                continue;
            }
            st->changes[st->count++] = c;
        }
        for (uint32_t k = 3; k < fields; k++)
            if (!stm_msgread_skip(r))
                return "a lens step's extra field is malformed";
    }
    return NULL;
}

void stm_wire_lenses_clear(wire_lenses *l)
{
    for (size_t i = 0; i < l->count; i++) {
        for (size_t k = 0; k < l->steps[i].count; k++)
            stm_lens_change_free(&l->steps[i].changes[k]);
        free(l->steps[i].changes);
    }
    free(l->steps);
    memset(l, 0, sizeof *l);
}

void stm_wire_lenses_of(const lens_set_t *lenses, size_t nversions, wire_lenses *out)
{
    memset(out, 0, sizeof *out);
    size_t n = stm_wire_lens_step_count(lenses, nversions), count = stm_lens_count(lenses);
    out->steps = stm_calloc(n + 1, sizeof *out->steps);
    for (size_t v = 2; v <= nversions && v <= count; v++) {
        if (!s_sent(lenses, (int)v))
            continue;
        size_t nc;
        const lens_change *c = stm_lens_changes(lenses, (int)v, &nc);
        wire_lens_step *st = &out->steps[out->count++];
        st->version = v;
        st->probed = stm_lens_probed(lenses, (int)v, NULL);
        st->changes = stm_calloc(nc + 1, sizeof *st->changes);
        for (size_t k = 0; k < nc; k++)
            st->changes[st->count++] = stm_lens_change_copy(&c[k]);
    }
}
