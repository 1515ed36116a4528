#include "base/log.h"
#include "base/buf.h"
#include "base/jsonw.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static bool s_json;

void log_set_json(bool json)
{
    s_json = json;
}

void log_event(log_level level, const char *event, const char *peer, const char *fmt, ...)
{
    static const char *const levels[] = {"info", "warn", "error"};
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
    buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    buf_t line = BUF_INIT;
    if (s_json) {
        jsonw_t w;
        jsonw_init(&w, &line, false);
        jsonw_object_begin(&w);
        jsonw_key(&w, "time");
        jsonw_string(&w, stamp);
        jsonw_key(&w, "level");
        jsonw_string(&w, levels[level]);
        jsonw_key(&w, "event");
        jsonw_string(&w, event);
        jsonw_key(&w, "peer");
        jsonw_string(&w, peer);
        jsonw_key(&w, "message");
        jsonw_string(&w, buf_str(&msg));
        jsonw_object_end(&w);
    } else {
        /* One event, one line: a newline or an escape in a name a peer or a file gave
         * is written as \xNN (JSON escapes them itself). */
        buf_printf(&line, "%s %-5s %s%s%s: ", stamp, levels[level], event, peer ? " " : "",
                   peer ? peer : "");
        buf_put_printable(&line, buf_str(&msg));
    }
    fprintf(stderr, "%s\n", buf_str(&line));
    fflush(stderr);
    buf_free(&msg);
    buf_free(&line);
}
