/* monotime.c - the monotonic clock in milliseconds (monotime.h). */
#include "base/monotime.h"

#include <time.h>

int64_t stm_monotime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
