/* buf.h - a growable byte buffer, always NUL-terminated so it can be used as a string.
 *
 * A plain value type: `buf_t b = BUF_INIT;` ... `stm_buf_free(&b);`. The buffer owns its
 * bytes; stm_buf_detach hands them to the caller. Growth aborts on out of memory (mem.h). */
#ifndef STM_BUF_H
#define STM_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data; /* the bytes, NUL-terminated; NULL until the first append */
    size_t len; /* bytes in use, not counting the terminating NUL */
    size_t cap; /* bytes allocated */
} buf_t;

#define BUF_INIT {NULL, 0, 0}

void stm_buf_append(buf_t *b, const void *data, size_t len);
void stm_buf_puts(buf_t *b, const char *s);
void stm_buf_putc(buf_t *b, char c);
void stm_buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void stm_buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Appends s with every control character (below 0x20, and 0x7f) written as \xNN, for
 * one line of text a terminal or a log shows: names that came from a peer or a file
 * cannot break the line or drive the terminal. */
void stm_buf_put_printable(buf_t *b, const char *s);
/* Appends one line of text (no newline in it) as a manual page (roff) shows it: '\' and
 * '-' escaped, and a leading '.' or '\'' kept from starting a request. */
void stm_buf_put_roff(buf_t *b, const char *text);
/* Empties the buffer but keeps its memory. */
void stm_buf_reset(buf_t *b);
/* Returns the contents (never NULL, "" when empty), lent: valid until the next change. */
const char *stm_buf_str(const buf_t *b);
/* Returns the contents as a string the caller owns and frees; the buffer is emptied. */
char *stm_buf_detach(buf_t *b);
void stm_buf_free(buf_t *b);

#endif
