#include "base/log.h"
#include "base/buf.h"
#include "base/jsonw.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static bool s_json;
static _Thread_local log_sink s_sink;

log_sink stm_log_set_sink(log_sink sink)
{
    log_sink was = s_sink;
    s_sink = sink;
    return was;
}

log_level stm_log_set_min(log_level min)
{
    log_level was = s_sink.min;
    s_sink.min = min;
    return was;
}

log_level stm_log_raise_min(log_level min)
{
    log_level was = s_sink.min;
    if (min > was)
        s_sink.min = min;
    return was;
}

void stm_log_set_json(bool json)
{
    s_json = json;
}

void stm_log_event(log_level level, const char *event, const char *peer, const char *fmt, ...)
{
    static const char *const levels[] = {"info", "warn", "error"};
    if (level < s_sink.min)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char stamp[96];
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(tv.tv_usec / 1000));
    buf_t msg = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    stm_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (s_sink.fn) {
        s_sink.fn(s_sink.ctx, level, event, peer, stm_buf_str(&msg));
        stm_buf_free(&msg);
        return;
    }
    buf_t line = BUF_INIT;
    if (s_json) {
        jsonw_t w;
        stm_jsonw_init(&w, &line, false);
        stm_jsonw_object_begin(&w);
        stm_jsonw_key(&w, "time");
        stm_jsonw_string(&w, stamp);
        stm_jsonw_key(&w, "level");
        stm_jsonw_string(&w, levels[level]);
        stm_jsonw_key(&w, "event");
        stm_jsonw_string(&w, event);
        stm_jsonw_key(&w, "peer");
        stm_jsonw_string(&w, peer);
        stm_jsonw_key(&w, "message");
        stm_jsonw_string(&w, stm_buf_str(&msg));
        stm_jsonw_object_end(&w);
    } else {
        /* One event, one line: a newline or an escape in a name a peer or a file gave
         * is written as \xNN (JSON escapes them itself). */
        stm_buf_printf(&line, "%s %-5s %s%s%s: ", stamp, levels[level], event, peer ? " " : "",
                       peer ? peer : "");
        stm_buf_put_printable(&line, stm_buf_str(&msg));
    }
    fprintf(stderr, "%s\n", stm_buf_str(&line));
    fflush(stderr);
    stm_buf_free(&msg);
    stm_buf_free(&line);
}
