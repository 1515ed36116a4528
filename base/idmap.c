#include "idmap.h"
#include "mem.h"

#include <stdlib.h>
#include <string.h>

uint64_t stm_idmap_hash_id(const stm_id *id)
{
    uint64_t h;
    memcpy(&h, id->bytes, sizeof h);
    return h;
}

uint64_t stm_idmap_hash_int(int64_t v)
{
    uint64_t x = (uint64_t)v;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull; /* MurmurHash3's finaliser */
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

int64_t stm_idmap_find(const idmap_t *m, uint64_t h, idmap_eq eq, const void *ctx)
{
    if (!m->cap)
        return -1;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const idmap_slot *s = &m->slots[i];
        if (!s->pos1)
            return -1;
        if (s->hash == h && eq(ctx, s->pos1 - 1))
            return (int64_t)(s->pos1 - 1);
    }
}

static void s_insert(idmap_slot *slots, size_t cap, uint64_t h, uint32_t pos1)
{
    size_t i = h & (cap - 1);
    while (slots[i].pos1)
        i = (i + 1) & (cap - 1);
    slots[i] = (idmap_slot){h, pos1};
}

void stm_idmap_put(idmap_t *m, uint64_t h, uint32_t pos)
{
    /* At most half full: probes stay short. */
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        idmap_slot *slots = stm_calloc(cap, sizeof *slots);
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].pos1)
                s_insert(slots, cap, m->slots[i].hash, m->slots[i].pos1);
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    s_insert(m->slots, m->cap, h, pos + 1);
    m->n++;
}

void stm_idmap_clear(idmap_t *m)
{
    if (m->cap)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->n = 0;
}

void stm_idmap_free(idmap_t *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}
