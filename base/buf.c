#include "base/buf.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_reserve(buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need > b->cap)
        b->data = stm_grow(b->data, &b->cap, need, 1);
}

void stm_buf_append(buf_t *b, const void *data, size_t len)
{
    s_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void stm_buf_puts(buf_t *b, const char *s)
{
    stm_buf_append(b, s, strlen(s));
}

void stm_buf_putc(buf_t *b, char c)
{
    stm_buf_append(b, &c, 1);
}

void stm_buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return;
    s_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void stm_buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stm_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void stm_buf_put_printable(buf_t *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            stm_buf_printf(b, "\\x%02x", c);
        else
            stm_buf_putc(b, (char)c);
    }
}

void stm_buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

const char *stm_buf_str(const buf_t *b)
{
    return b->data ? b->data : "";
}

char *stm_buf_detach(buf_t *b)
{
    char *s = b->data ? b->data : stm_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

void stm_buf_free(buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* text as roff shows it: backslashes escaped, and a line never starting a request. */
void stm_buf_put_roff(buf_t *b, const char *text)
{
    if (text[0] == '.' || text[0] == '\'')
        stm_buf_puts(b, "\\&");
    for (const char *c = text; *c; c++) {
        if (*c == '\\')
            stm_buf_puts(b, "\\e");
        else if (*c == '-')
            stm_buf_puts(b, "\\-");
        else
            stm_buf_putc(b, *c);
    }
}
