/* log.h - the node's log: one line per event on stderr, for people, or JSON lines
 * (--log-format json) for programs. */
#ifndef STM_LOG_H
#define STM_LOG_H

#include <stdbool.h>

typedef enum { STM_LOG_INFO, STM_LOG_WARN, STM_LOG_ERROR } log_level;

/* Chooses JSON lines (true) or text (false, the default). */
void stm_log_set_json(bool json);
/* Logs one event: `event` is a short word ("peer-connected"), peer the peer's short id
 * or NULL, and the message printf-style. */
void stm_log_event(log_level level, const char *event, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
