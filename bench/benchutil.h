/* benchutil.h - what the benchmark programs that run real stemma processes share:
 * a monotonic clock, running stemma and capturing its output, free loopback ports,
 * and counting rows in a database. Benchmarks only: failures print and exit. */
#ifndef STM_BENCHUTIL_H
#define STM_BENCHUTIL_H

#include "base/buf.h"

/* Seconds on a monotonic clock. */
double bench_now(void);
/* Prints "PROGRAM: what" and exits 1. */
void bench_die(const char *what) __attribute__((noreturn));
/* Runs argv (argv[0] the program, NULL-terminated), waits, and returns its exit
 * status (-1 if it did not exit); its stdout goes into out when out is not NULL. */
int bench_run(char *const argv[], buf_t *out);
/* Runs the stemma binary with the arguments after it (NULL-terminated), exiting on
 * failure; stdout into out when not NULL. */
void bench_stemma(const char *stemma, buf_t *out, const char *arg, ...);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int bench_free_port(void);
/* The integer sql returns from db (read-only), -1 on failure. */
long long bench_count(const char *db, const char *sql);

/* Starts `stemma node --dir dir` in the background, its log (stderr) appended to log;
 * its pid. */
int bench_start_node(const char *stemma, const char *dir, const char *log);
/* Sets `key = value` in dir's node.toml (the line that starts with key; value as TOML
 * text, e.g. "20" or "\"x\""); exits when there is no such line. */
void bench_set_toml(const char *dir, const char *key, const char *value);
/* The peak resident memory (VmHWM) of a running process, in KiB; -1 when unknown. */
long bench_peak_kib(int pid);
/* Processor time (user and system) a running process has used, in seconds; 0 when it
 * is gone. */
double bench_cpu_seconds(int pid);
/* Its resident memory now (VmRSS), in KiB; -1 when unknown. */
long bench_rss_kib(int pid);

/* Prints one line for scripts/bench's summary table:
 * "row|FIGURE|STEMMA|BASELINE|RATIO|TARGET" (any of the last four may be ""). */
void bench_row(const char *figure, const char *stemma, const char *baseline, const char *ratio,
               const char *target);

#endif
