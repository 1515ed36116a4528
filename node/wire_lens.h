/* wire_lens.h - a HELLO's "lenses": what each of the sender's migrations did to the
 * data (lineage/lens.h), so that a peer on another branch of the schema set can follow
 * the sender's operations back to the version both share and on to its own
 * (sync/apply.h, invariant 8; docs/protocol.md, "HELLO").
 *
 *   lenses = array of step                   at most as many as "lineage" has
 *   step   = array [ version: uint           1 .. the lineage's count, ascending
 *                    probed:  bool           false: its changes are not known
 *                    changes: array of change ]
 *   change = array [ kind: text, table: text, column: text | nil,
 *                    from_table: text | nil, from_column: text | nil ]
 *
 * Only versions with changes, or whose changes are not known, are listed. A kind this
 * stemma does not know makes its step not known (a later stemma may say more), never
 * the HELLO malformed. */
#ifndef STM_WIRE_LENS_H
#define STM_WIRE_LENS_H

#include "base/buf.h"
#include "lineage/lens.h"
#include "sync/msgread.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

/* The most changes one HELLO carries, all steps together. */
#define WIRE_MAX_LENS_CHANGES 100000
/* The fewest bytes a change takes: [one-byte kind, one-byte table, nil, nil, nil]. */
#define WIRE_MIN_CHANGE_BYTES 9
/* The fewest bytes a step takes: [version, probed, []]. */
#define WIRE_MIN_STEP_BYTES 4

/* One version's changes, as a HELLO said them. Strings owned (stm_wire_lenses_clear). */
typedef struct {
    size_t version;
    bool probed;
    lens_change *changes;
    size_t count;
} wire_lens_step;

typedef struct {
    wire_lens_step *steps; /* by version, ascending */
    size_t count;
} wire_lenses;

/* How many steps stm_wire_pack_lenses writes for versions 1 .. nversions of lenses. */
size_t stm_wire_lens_step_count(const lens_set_t *lenses, size_t nversions);
/* Packs "lenses"' value for versions 1 .. nversions (at most lenses' count) of lenses:
 * an array of stm_wire_lens_step_count steps. */
void stm_wire_pack_lenses(msgpack_packer *pk, const lens_set_t *lenses, size_t nversions);
/* Reads "lenses"' value into *out (zeroed first; the caller clears it) for a lineage of
 * nversions. NULL, or why it is malformed (static text). */
const char *stm_wire_read_lenses(msgread_t *r, size_t nversions, wire_lenses *out);
void stm_wire_lenses_clear(wire_lenses *l);
/* What a HELLO would say of versions 1 .. nversions of lenses, into *out (zeroed
 * first; the caller clears it): for `stemma apply --writer`, whose history stands for
 * a peer's HELLO. */
void stm_wire_lenses_of(const lens_set_t *lenses, size_t nversions, wire_lenses *out);

#endif
