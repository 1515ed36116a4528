/* dropped.h - what a rollback step drops, kept to come back.
 *
 * A rollback that drops a column or a table drops values this database holds as the
 * result of operations it keeps in its oplog and counts in its version vector: no
 * peer will send them again. Left so, the migration that adds the column back fills
 * it with its default for good, and this replica never agrees with the others again.
 *
 * So, in the transaction the rollback step runs in, the operation behind every cell the step
 * drops (the latest applied write of the cell: stemma_clock's entry, which is what the
 * cell held) is parked (park.h, kind 'schema', "the rollback of version N dropped its
 * column"), and the cell's entry leaves stemma_clock; the write counts as the row's
 * latest write parked for a missing column instead (apply.h, invariant 3). That is
 * exactly the state the database would be in had it been at the lower version when the
 * operation arrived. The migration that adds the column or table again replays every
 * parked operation (migrate.h): with no clock of the cell left, each wins over the
 * default ALTER TABLE ADD gave, by the same last-writer-wins rule as any other, and a
 * later write received meanwhile, parked too, still beats it. A row's delete stays in
 * stemma_clock, so a row deleted before the rollback is not brought back.
 *
 * A table the migration itself dropped and made anew under its name (lens.h
 * LENS_REPLACED) is another table than the one its rollback makes again: all of its
 * cells go as a dropped table's do, and come back when the migration runs again.
 *
 * Not covered: rows a down file deletes otherwise (DELETE FROM, or a table dropped and
 * created again that its migration did not replace) and values it rewrites (UPDATE);
 * like a migration's own writes, those are not operations, and the cells keep their
 * clocks. */
#ifndef STM_DROPPED_H
#define STM_DROPPED_H

#include "store.h"
#include "base/error.h"
#include "lineage/catalog.h"
#include "lineage/lens.h"

#include <stdint.h>

/* In the open transaction of the rollback of `version`, after its SQL ran (and the
 * clocks of what it renamed were carried: carry.h): parks the operation behind every
 * cell of a table of before (the catalog before the step's SQL) that is no longer in
 * the database, whose column is not, or that the migration replaced (lenses, lent;
 * NULL: none is known), and takes the cell's clock out, as above. *parked is how many
 * were parked. STM_EDB naming the database when SQLite fails. */
STM_NODISCARD stm_err stm_dropped_park(store_t *store, const catalog_t *before, int version,
                                       const lens_set_t *lenses, uint64_t *parked,
                                       stm_error *err);

#endif
