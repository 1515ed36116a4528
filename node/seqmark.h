/* seqmark.h - how far this node may have sent its database's own operations, kept in
 * NODE_DIR/seqmark, so that a database put back in time under a running node's feet
 * (the sqlite3 shell's .restore, a filesystem snapshot rolled back: the same file, the
 * same machine, which sync/origin.h cannot tell from the original) does not reuse
 * (origin, seq) pairs its peers hold already.
 *
 * The mark is "ORIGIN_HEX SEQ\n": the database's sequence of ORIGIN as it was committed
 * when the node last sent its own operations, which it writes (fsynced) before a send
 * could pass it: at most once per look that collected writes. Operations are sent only
 * once committed, so a database that was not put back holds at least the mark, crash
 * or not; a node that starts on a database of that origin whose sequence is below the
 * mark takes a new origin before it collects anything. (A power cut that loses the
 * last commits under synchronous=NORMAL looks the same, and a new origin is right
 * then too: what was sent from them is lost here, not at the peers.) */
#ifndef STM_SEQMARK_H
#define STM_SEQMARK_H

#include "base/error.h"
#include "base/id.h"

#include <stdbool.h>
#include <stdint.h>

#define SEQMARK_FILE "seqmark"

/* Reads NODE_DIR's mark: *found false (nothing else set) when there is none; a mark
 * that does not parse counts as none, and is written again at the next send. */
STM_NODISCARD stm_err stm_seqmark_read(const char *dir, stm_id *origin, uint64_t *seq,
                                       bool *found, stm_error *err);
/* Writes the mark (fsynced, replacing the old one whole). */
STM_NODISCARD stm_err stm_seqmark_write(const char *dir, const stm_id *origin, uint64_t seq,
                                        stm_error *err);

#endif
