/* progress.h - one line of progress a person can follow on a terminal, redrawn in
 * place (a long migration, a big bundle applied).
 *
 * Drawn on stderr only when stderr is a terminal and the command was not asked to be
 * quiet (--quiet): a script or a log never gets the carriage returns. The line is
 * erased before the command's own output is printed, so nothing of it stays. */
#ifndef STM_CLI_PROGRESS_H
#define STM_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *to;        /* stderr, or NULL: nothing is drawn */
    bool drawn;      /* a line is on the terminal now */
    int64_t last_ms; /* when it was last drawn (stm_monotime_ms) */
} cli_progress;

/* Sets p up: drawing when stderr is a terminal and quiet is false. */
void cli_progress_init(cli_progress *p, bool quiet);
/* Draws the line fmt says in place of the last, at most five times a second (always
 * when force). */
void cli_progress_show(cli_progress *p, bool force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Erases the line, if one is drawn. */
void cli_progress_clear(cli_progress *p);

/* n with thousands separated by commas into buf (at least 32 bytes); returns buf. */
const char *cli_progress_count(uint64_t n, char *buf);

#endif
