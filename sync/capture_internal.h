/* capture_internal.h - private to the capture module: only capture.c and
 * capture_collect.c include it. What the triggers and the collector must agree on. */
#ifndef STM_CAPTURE_INTERNAL_H
#define STM_CAPTURE_INTERNAL_H

#include "capture.h"

#include <sqlite3.h>
#include <stdbool.h>

/* Whether column c is captured: generated (hidden) columns are not; they are computed
 * wherever the row lands. Mask bit i is the i-th captured column. */
bool stm_capture_captured(const catalog_column *c);
/* How many of t's columns are captured. */
int stm_capture_captured_count(const catalog_table *t);

/* How many key columns stemma_pending has (pk, pk2, ...): a key of more columns than
 * any synced table had when the triggers were installed is never queued. 0 when it
 * cannot be read. */
size_t stm_capture_pending_key_columns(store_t *store);

/* Called with each marked table and its stemma_mark row (tbl, mark, at), lent. */
typedef stm_err (*capture_mark_fn)(store_t *store, const catalog_table *t, sqlite3_stmt *row,
                                   void *ctx, stm_error *err);
/* Calls fn for each marked table of catalog (a synced table whose key has INTEGER
 * affinity) that has a stemma_mark row; stops at fn's first error. */
STM_NODISCARD stm_err stm_capture_each_mark(store_t *store, const catalog_t *catalog,
                                            capture_mark_fn fn, void *ctx, stm_error *err);

/* A marked table a slice of collecting took only part of the rows above the mark of
 * (capture_collect.c): its mark moves only to the last key taken. */
typedef struct {
    const catalog_table *t;
    sqlite3_int64 last;
} capture_cut;

/* Raises every mark of catalog to its table's rows now (stm_capture_mark), but those of
 * the n tables in cuts (lent), which move to the last key taken and keep the time the
 * first insert above recorded, for the rows still above them. */
STM_NODISCARD stm_err stm_capture_mark_cut(store_t *store, const catalog_t *catalog,
                                           const capture_cut *cuts, size_t n, stm_error *err);

#endif
