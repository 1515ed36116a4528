/* carry.h - a migration's renames carried into stemma's own tables.
 *
 * stemma keeps a row's clocks (stemma_clock, stemma_conflicts) under the names of its
 * table and columns here. When a migration renames a column or a table (directly, or by
 * a rebuild under another name: lineage/lens.h), the clocks follow, in the transaction
 * the migration runs in: the column keeps its history under its new name, so that a late write
 * from a device at the older version, translated to the new name (apply.h, invariant 8),
 * is compared with the writes the column already had and never beats a later one.
 * A table the migration drops and makes anew under its name (LENS_REPLACED) is another
 * table: its clocks are forgotten in the same transaction (going up; its rollback parks
 * them as a dropped table's: dropped.h). */
#ifndef STM_CARRY_H
#define STM_CARRY_H

#include "store.h"
#include "base/error.h"
#include "lineage/lens.h"

/* Moves the clocks of every table and column of version from that lenses say is held
 * under another name at version to (either way, one step apart) to that name, and
 * forgets those of a table the step replaced, inside the open transaction. STM_EDB naming the database when SQLite fails. */
STM_NODISCARD stm_err stm_carry_renames(store_t *store, const lens_set_t *lenses, int from, int to,
                                        stm_error *err);

#endif
