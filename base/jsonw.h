/* jsonw.h - a small streaming JSON writer for the CLI's --format json outputs.
 *
 * It writes into a buf_t, puts the commas where they belong and, when pretty,
 * indents by two spaces. Strings are escaped per RFC 8259 (control characters as
 * \uXXXX; other bytes pass through, so valid UTF-8 stays valid). A plain value type;
 * nesting deeper than JSONW_MAX_DEPTH is API misuse and asserts. */
#ifndef STM_JSONW_H
#define STM_JSONW_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>

#define JSONW_MAX_DEPTH 32

typedef struct {
    buf_t *out;                    /* where the text goes, lent */
    bool pretty;                   /* newlines and indentation */
    int depth;                     /* open objects and arrays */
    bool has_items[JSONW_MAX_DEPTH]; /* per level: something written already (needs a comma) */
    bool after_key;                /* a key was written; its value comes next */
} jsonw_t;

void stm_jsonw_init(jsonw_t *w, buf_t *out, bool pretty);
void stm_jsonw_object_begin(jsonw_t *w);
void stm_jsonw_object_end(jsonw_t *w);
void stm_jsonw_array_begin(jsonw_t *w);
void stm_jsonw_array_end(jsonw_t *w);
void stm_jsonw_key(jsonw_t *w, const char *key);
void stm_jsonw_string(jsonw_t *w, const char *s); /* NULL writes null */
/* A string of len bytes, which may hold NUL bytes (written as \u0000). */
void stm_jsonw_string_len(jsonw_t *w, const char *s, size_t len);
void stm_jsonw_int(jsonw_t *w, int64_t v);
/* A number that reads back as v; infinities and NaN, which JSON lacks, as null. */
void stm_jsonw_double(jsonw_t *w, double v);
void stm_jsonw_bool(jsonw_t *w, bool v);
void stm_jsonw_null(jsonw_t *w);
/* Writes s escaped, with its quotes, into b (for callers that build JSON by hand). */
void stm_jsonw_escape(buf_t *b, const char *s);
void stm_jsonw_escape_len(buf_t *b, const char *s, size_t len);

#endif
