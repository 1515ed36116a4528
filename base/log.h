/* log.h - the node's log: one line per event on stderr, for people, or JSON lines
 * (--log-format json) for programs; or, for a node an application embeds (include/
 * stemma.h), each event handed to a sink the application gave instead.
 *
 * The sink is per thread: a node logs on the thread that runs it, so two nodes in one
 * process, each stepped or run on its own thread, each reach their own application
 * callback. Library code never prints but through here. */
#ifndef STM_LOG_H
#define STM_LOG_H

#include <stdbool.h>

typedef enum { STM_LOG_INFO, STM_LOG_WARN, STM_LOG_ERROR } log_level;

/* Chooses JSON lines (true) or text (false, the default). */
void stm_log_set_json(bool json);
/* Where a thread's events go instead of stderr: fn gets each event (its message formatted,
 * every argument lent for the call). */
typedef void (*log_sink_fn)(void *ctx, log_level level, const char *event, const char *peer,
                            const char *message);
typedef struct {
    log_sink_fn fn; /* NULL: stderr, as the command line logs */
    void *ctx;      /* fn's first argument */
    log_level min;  /* events below this level are not logged at all */
} log_sink;

/* Sets the calling thread's sink and returns the one it replaces, for putting back
 * (a node stepped on the application's thread sets its own for the step). */
log_sink stm_log_set_sink(log_sink sink);

/* Sets the calling thread's least level logged to min, whatever it was; returns the one
 * it replaces, for putting back. */
log_level stm_log_set_min(log_level min);
/* Raises it to min when it is lower (a node's own log_level over what its embedder
 * asked); returns the one it replaces, for putting back with stm_log_set_min. */
log_level stm_log_raise_min(log_level min);

/* Logs one event: `event` is a short word ("peer-connected"), peer the peer's short id
 * or NULL, and the message printf-style. */
void stm_log_event(log_level level, const char *event, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
