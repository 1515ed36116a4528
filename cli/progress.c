/* progress.c - a line of progress on a terminal (progress.h). */
#include "progress.h"
#include "base/clock.h"

#include <stdarg.h>
#include <unistd.h>

/* Redrawn at most this often, so that a fast loop does not spend its time drawing. */
#define S_EVERY_MS 200

void cli_progress_init(cli_progress *p, bool quiet)
{
    p->to = !quiet && isatty(fileno(stderr)) ? stderr : NULL;
    p->drawn = false;
    p->last_ms = 0;
}

void cli_progress_show(cli_progress *p, bool force, const char *fmt, ...)
{
    if (!p->to)
        return;
    int64_t now = stm_monotime_ms();
    if (!force && p->drawn && now - p->last_ms < S_EVERY_MS)
        return;
    p->last_ms = now;
    /* Back to the line's start, and the rest of the line cleared (ECMA-48 EL). */
    fputs("\r\033[K", p->to);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->to, fmt, ap);
    va_end(ap);
    fflush(p->to);
    p->drawn = true;
}

void cli_progress_clear(cli_progress *p)
{
    if (!p->drawn)
        return;
    fputs("\r\033[K", p->to);
    fflush(p->to);
    p->drawn = false;
}

const char *cli_progress_count(uint64_t n, char *buf)
{
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
    int out = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            buf[out++] = ',';
        buf[out++] = digits[i];
    }
    buf[out] = '\0';
    return buf;
}
