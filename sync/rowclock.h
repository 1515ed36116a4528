/* rowclock.h - the clocks of one row, as stemma_clock.cells holds them.
 *
 * For every row written here, stemma_clock keeps one row: per cell the (hlc, origin,
 * seq) of its latest applied write, the row's latest delete, and its latest write
 * that was parked because this schema lacks the column (which still counts as a
 * write when deciding whether the row exists; apply.h, invariant 2). cells is a
 * MessagePack sequence: the distinct writes, then the entries, each naming one:
 *
 *   writes, writes x (hlc, origin, seq), entries, then per entry:
 *   key (str: a column name | 0: the delete | 1: the parked write | 2: the row change
 *   that created the row's incarnation), write, offset
 *
 * where origin is a stemma_ids number (store.h), write an index into the writes and
 * the entry's sequence is the write's seq + offset. A row change writes its cells
 * with one clock and consecutive sequences, so a row written once costs one write and
 * a few bytes a column. One lookup and one write per row change, whatever its width. */
#ifndef STM_ROWCLOCK_H
#define STM_ROWCLOCK_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ROWCLOCK_BORN: the row change that created the row's current incarnation (identity.h);
 * absent when it has none. */
typedef enum { ROWCLOCK_CELL, ROWCLOCK_DELETE, ROWCLOCK_PARKED, ROWCLOCK_BORN } rowclock_kind;

typedef struct {
    rowclock_kind kind;
    size_t name;     /* ROWCLOCK_CELL: offset of the column name in the clock's names */
    uint64_t hlc;
    int64_t origin;  /* stemma_ids number */
    uint64_t seq;
} rowclock_entry;

/* A row's clocks; zero-initialise, stm_rowclock_free when done. */
typedef struct {
    rowclock_entry *entries;
    size_t count, cap;
    buf_t names;     /* NUL-terminated names, back to back */
} rowclock_t;

/* Empties c (keeping its memory) and reads the entries of a stemma_clock.cells
 * value into it. False when the bytes are not a valid sequence of entries. */
bool stm_rowclock_decode(rowclock_t *c, const void *data, size_t len);
/* Appends the encoding of c to out. */
void stm_rowclock_encode(const rowclock_t *c, buf_t *out);
void stm_rowclock_clear(rowclock_t *c);
void stm_rowclock_free(rowclock_t *c);

/* The entry of kind (for ROWCLOCK_CELL, of column, compared without case), or NULL. */
rowclock_entry *stm_rowclock_find(rowclock_t *c, rowclock_kind kind, const char *column);
/* Sets the entry of kind (and column) to the write (hlc, origin, seq), adding it
 * when missing. */
void stm_rowclock_set(rowclock_t *c, rowclock_kind kind, const char *column, uint64_t hlc,
                      int64_t origin, uint64_t seq);
/* The name of a cell entry, lent until c changes. */
const char *stm_rowclock_name(const rowclock_t *c, const rowclock_entry *e);

#endif
