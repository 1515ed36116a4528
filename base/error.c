#include "base/error.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *stm_strerror(stm_err code)
{
    switch (code) {
    case STM_OK:
        return "success";
    case STM_EUSAGE:
        return "bad usage";
    case STM_EINPUT:
        return "bad input";
    case STM_ECORRUPT:
        return "corrupt data";
    case STM_EPROTO:
        return "protocol error";
    case STM_EDB:
        return "database error";
    case STM_ESYS:
        return "system error";
    }
    return "unknown error";
}

stm_err stm_error_set(stm_error *err, stm_err code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

stm_err stm_error_prefix(stm_error *err, const char *fmt, ...)
{
    if (!err)
        return STM_OK;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Truncation is fine: a long message loses its tail, never its start. */
    size_t plen = strlen(prefix);
    if (plen + 2 >= sizeof err->msg)
        plen = sizeof err->msg - 3;
    memmove(err->msg + plen + 2, err->msg, sizeof err->msg - plen - 2);
    memcpy(err->msg, prefix, plen);
    memcpy(err->msg + plen, ": ", 2);
    err->msg[sizeof err->msg - 1] = '\0';
    return err->code;
}

stm_err stm_error_append(stm_error *err, const char *fmt, ...)
{
    if (!err)
        return STM_OK;
    size_t len = strlen(err->msg);
    if (len + 3 >= sizeof err->msg)
        return err->code;
    memcpy(err->msg + len, "; ", 3);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + len + 2, sizeof err->msg - len - 2, fmt, ap);
    va_end(ap);
    return err->code;
}

stm_err stm_error_db(stm_error *err, sqlite3 *db, const char *path, const char *fmt, ...)
{
    if (!err)
        return STM_EDB;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = STM_EDB;
    size_t len = strlen(err->msg);
    snprintf(err->msg + len, sizeof err->msg - len, ": %s", sqlite3_errmsg(db));
    return path ? stm_error_prefix(err, "%s", path) : STM_EDB;
}

void stm_error_clear(stm_error *err)
{
    if (err) {
        err->code = STM_OK;
        err->msg[0] = '\0';
    }
}
