/* monotime.h - the monotonic clock every deadline of the node is measured on.
 *
 * Milliseconds since an arbitrary start (CLOCK_MONOTONIC): never set back by the wall
 * clock changing, so a deadline computed from it cannot be skipped or repeated. Wall
 * time (for reports) is time(). */
#ifndef STM_MONOTIME_H
#define STM_MONOTIME_H

#include <stdint.h>

/* Now, in milliseconds on the monotonic clock. */
int64_t stm_monotime_ms(void);

#endif
