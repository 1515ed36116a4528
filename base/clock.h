/* clock.h - the two clocks stemma reads, in milliseconds.
 *
 * The monotonic clock (CLOCK_MONOTONIC, from an arbitrary start) is what every deadline
 * of the node is measured on: never set back by the wall clock changing, so a deadline
 * computed from it cannot be skipped or repeated. The wall clock (CLOCK_REALTIME, since
 * the Unix epoch) is what operations' hybrid logical clocks are made from and checked
 * against; it may jump, which the hybrid clock absorbs (sync/capture.h). */
#ifndef STM_CLOCK_H
#define STM_CLOCK_H

#include <stdint.h>

/* Now, in milliseconds on the monotonic clock. */
int64_t stm_monotime_ms(void);

/* Now, in milliseconds since the Unix epoch on the wall clock. */
int64_t stm_wall_ms(void);

#endif
