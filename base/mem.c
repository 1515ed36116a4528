#include "base/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_out_of_memory(size_t size)
{
    fprintf(stderr, "stemma: out of memory (asked for %zu bytes)\n", size);
    abort();
}

void *stm_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        s_out_of_memory(size);
    return p;
}

void *stm_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        s_out_of_memory(count * size);
    return p;
}

void *stm_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        s_out_of_memory(size);
    return p;
}

void *stm_grow(void *array, size_t *cap, size_t need, size_t elem_size)
{
    if (need <= *cap)
        return array;
    size_t next = *cap ? *cap : 8;
    while (next < need) {
        if (next > SIZE_MAX / 2)
            s_out_of_memory(SIZE_MAX);
        next *= 2;
    }
    if (next > SIZE_MAX / elem_size)
        s_out_of_memory(SIZE_MAX);
    array = stm_realloc(array, next * elem_size);
    *cap = next;
    return array;
}

char *stm_strdup(const char *s)
{
    return stm_strndup(s, strlen(s));
}

char *stm_strndup(const char *s, size_t n)
{
    char *p = stm_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
