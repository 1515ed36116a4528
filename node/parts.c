/* parts.c - an OPS batch sent in parts, put together again (parts.h has the invariants). */
#include "parts.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

struct parts {
    uint64_t seq;   /* the batch being put together */
    uint64_t parts; /* how many parts it was cut into; 0: no assembly */
    uint64_t next;  /* the part expected next */
    uint64_t bytes; /* the whole batch's size, as part 0 announced it */
    uint64_t have;  /* bytes here so far */
    char *data;     /* bytes of them: sized by part 0, at most WIRE_MAX_BATCH */
    bool done;      /* data is a whole batch */
};

parts_t *stm_parts_new(void)
{
    return stm_calloc(1, sizeof(parts_t));
}

void stm_parts_destroy(parts_t **self_p)
{
    parts_t *a = *self_p;
    if (!a)
        return;
    free(a->data);
    free(a);
    *self_p = NULL;
}

void stm_parts_clear(parts_t *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* The parts an unfinished assembly held, which its end drops. */
static uint64_t s_unfinished(const parts_t *a)
{
    return a->parts && !a->done ? a->next : 0;
}

parts_result stm_parts_add(parts_t *a, const wire_ops *m, uint64_t *dropped, const char **why)
{
    *dropped = 0;
    *why = NULL;
    if (m->part == 0) {
        *dropped = s_unfinished(a);
        stm_parts_clear(a);
        a->seq = m->seq;
        a->parts = m->parts;
        a->bytes = m->bytes;
        /* The whole at once: pages are only touched as parts fill them, so what a peer
         * makes this node hold is what it sent, never more than it announced. */
        a->data = stm_malloc((size_t)m->bytes);
    } else if (!a->parts || a->done || m->seq != a->seq || m->part != a->next ||
               m->parts != a->parts || m->bytes != a->bytes) {
        *why = a->parts && !a->done && m->seq == a->seq ? "a part came out of order"
                                                         : "a part of no batch being received";
        *dropped = s_unfinished(a) + 1;
        stm_parts_clear(a);
        return PARTS_DROPPED;
    }
    bool last = m->part + 1 == m->parts;
    if (m->batch_len > a->bytes - a->have || (last && a->have + m->batch_len != a->bytes)) {
        *why = "its parts do not add up to the bytes announced";
        *dropped += s_unfinished(a) + 1;
        stm_parts_clear(a);
        return PARTS_DROPPED;
    }
    memcpy(a->data + a->have, m->batch, m->batch_len);
    a->have += m->batch_len;
    a->next++;
    if (!last)
        return PARTS_MORE;
    a->done = true;
    return PARTS_DONE;
}

const void *stm_parts_batch(const parts_t *a, size_t *len)
{
    *len = a->done ? (size_t)a->bytes : 0;
    return a->done ? a->data : NULL;
}

uint64_t stm_parts_seq(const parts_t *a)
{
    return a->seq;
}

uint64_t stm_parts_received(const parts_t *a)
{
    return a->have;
}
