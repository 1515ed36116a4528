/* api_internal.h - what the files of the public API (include/stemma.h) share: the
 * handles' bodies that more than one of them reads, and the error hand-over. Nothing
 * here is exported. */
#ifndef STM_API_INTERNAL_H
#define STM_API_INTERNAL_H

#include "stemma.h"
#include "base/error.h"
#include "lineage/lens.h"
#include "lineage/lineage.h"

#include <stdatomic.h>

/* A lineage, shared by the comparisons made of it (they lend its names). */
struct stemma_lineage {
    lineage_t *lineage; /* owned */
    lens_set_t *lenses; /* owned; NULL when the file said nothing of them */
    atomic_int refs;    /* the caller's handle, and each comparison alive */
};

/* Copies a library error into the caller's (out may be NULL) and returns its code. */
stemma_code stm_api_error(stemma_error *out, const stm_error *in);
/* Sets the caller's error (out may be NULL) to code and a message; returns code. */
stemma_code stm_api_fail(stemma_error *out, stemma_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The lineage handle made of l and lenses (both taken), with one reference. */
stemma_lineage *stm_api_lineage_wrap(lineage_t *l, lens_set_t *lenses);

#endif
