/* mem.h - the allocation wrappers. Out of memory is not an error a caller can act on
 * in this program, so these never return NULL: they print one line and abort. Every
 * allocation in stemma goes through them. What they return is the caller's to free(). */
#ifndef STM_MEM_H
#define STM_MEM_H

#include <stddef.h>

void *stm_malloc(size_t size);
void *stm_calloc(size_t count, size_t size);
void *stm_realloc(void *ptr, size_t size);
/* Grows an array of elements of elem_size to hold at least need elements; *cap is the
 * current capacity in elements and is updated. Returns the (maybe moved) array. */
void *stm_grow(void *array, size_t *cap, size_t need, size_t elem_size);
char *stm_strdup(const char *s);
char *stm_strndup(const char *s, size_t n);

#endif
