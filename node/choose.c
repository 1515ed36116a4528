/* choose.c - which learned peers a node dials (choose.h). */
#include "choose.h"
#include "base/mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int stm_choose_bucket(const stm_id *self, const stm_id *other)
{
    for (int i = 0; i < (int)sizeof self->bytes; i++) {
        unsigned x = self->bytes[i] ^ other->bytes[i];
        if (!x)
            continue;
        int lead = 0;
        while (!(x & 0x80u)) {
            x <<= 1;
            lead++;
        }
        return i * 8 + lead;
    }
    return CHOOSE_SAME;
}

/* splitmix64's finaliser: every bit of x moves every bit of the result. */
static uint64_t s_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static uint64_t s_word(const stm_id *id, size_t at)
{
    uint64_t w = 0;
    for (size_t i = 0; i < 8; i++)
        w = w << 8 | id->bytes[at + i];
    return w;
}

/* Where other ranks among the candidates of a bucket, for self: a hash of both ids. The
 * nearest id in a bucket would be the same for every node of the other half that shares
 * its next bits, and such a peer would be picked by many; a hash spreads the picks. */
static uint64_t s_rank(const stm_id *self, const stm_id *other)
{
    return s_mix(s_word(self, 0) ^ s_mix(s_word(other, 0) ^ s_mix(s_word(other, 8))));
}

size_t stm_choose_pick(const stm_id *self, const stm_id *have, size_t nhave, const stm_id *cand,
                       size_t ncand, size_t want, size_t *picks)
{
    size_t kept[CHOOSE_BUCKETS] = {0};
    for (size_t i = 0; i < nhave; i++) {
        int b = stm_choose_bucket(self, &have[i]);
        if (b < CHOOSE_BUCKETS)
            kept[b]++;
    }
    bool *taken = stm_calloc(ncand ? ncand : 1, sizeof *taken);
    size_t count = 0;
    while (count < want) {
        size_t best = ncand;
        int best_b = CHOOSE_SAME;
        for (size_t i = 0; i < ncand; i++) {
            int b = stm_choose_bucket(self, &cand[i]);
            if (taken[i] || b == CHOOSE_SAME)
                continue;
            bool better = best == ncand || kept[b] < kept[best_b] ||
                          (kept[b] == kept[best_b] &&
                           (b < best_b ||
                            (b == best_b && s_rank(self, &cand[i]) < s_rank(self, &cand[best]))));
            if (better) {
                best = i;
                best_b = b;
            }
        }
        if (best == ncand)
            break;
        taken[best] = true;
        kept[best_b]++;
        picks[count++] = best;
    }
    free(taken);
    return count;
}
