/* api_base.c - the public API's errors, versions and memory (include/stemma.h). */
#include "api_internal.h"
#include "node/wire.h"
#include "sync/bundle.h"
#include "sync/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define S_STR(x) #x
#define S_XSTR(x) S_STR(x)

STEMMA_API const char *stemma_version(void)
{
    return S_XSTR(STEMMA_VERSION_MAJOR) "." S_XSTR(STEMMA_VERSION_MINOR) "." S_XSTR(
        STEMMA_VERSION_PATCH);
}

STEMMA_API int stemma_format_version(stemma_format which)
{
    switch (which) {
    case STEMMA_FORMAT_WIRE:
        return WIRE_VERSION;
    case STEMMA_FORMAT_BUNDLE:
        return BUNDLE_VERSION;
    case STEMMA_FORMAT_VECTOR:
        return VECTOR_VERSION;
    case STEMMA_FORMAT_STORE:
        return STORE_FORMAT;
    }
    return 0;
}

STEMMA_API const char *stemma_strerror(stemma_code code)
{
    return stm_strerror((stm_err)code);
}

STEMMA_API void stemma_free(void *p)
{
    free(p);
}

stemma_code stm_api_error(stemma_error *out, const stm_error *in)
{
    if (out) {
        out->code = (stemma_code)in->code;
        snprintf(out->message, sizeof out->message, "%s",
                 in->msg[0] ? in->msg : stm_strerror(in->code));
    }
    return (stemma_code)in->code;
}

stemma_code stm_api_fail(stemma_error *out, stemma_code code, const char *fmt, ...)
{
    if (out) {
        out->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out->message, sizeof out->message, fmt, ap);
        va_end(ap);
    }
    return code;
}
