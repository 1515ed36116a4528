/* report_internal.h - private to the renderers of report.h: report.c (text, JSON, TOML)
 * and report_dot.c (DOT) name peers and verdicts alike. */
#ifndef STM_REPORT_INTERNAL_H
#define STM_REPORT_INTERNAL_H

#include "report.h"

/* A peer's short id into out, or "?" while it is not known. */
void stm_report_short(const stm_id *id, bool known, char out[STM_ID_SHORT_LEN + 1]);
/* A key in Z85 (keys.h) into out, so that a key from a report pastes into node.toml. */
void stm_report_z85(const stm_id *id, char out[41]);
/* The comparison behind a peer's verdict, lent; NULL before its HELLO. */
const comparison_t *stm_report_cmp(const report_peer *p);
/* "full", "partial" or "refused" (whoever refused), static; NULL before its HELLO. */
const char *stm_report_sync(const report_peer *p);

#endif
