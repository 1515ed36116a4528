/* seqmark.h - how far this node may have sent its database's own operations, kept in
 * NODE_DIR/seqmark, so that a database put back in time under a running node's feet
 * (the sqlite3 shell's .restore, a filesystem snapshot rolled back: the same file, the
 * same machine, which sync/origin.h cannot tell from the original) does not reuse
 * (origin, seq) pairs its peers hold already.
 *
 * The mark is "ORIGIN_HEX SEQ\n": at most SEQ of the database's operations of ORIGIN
 * have left this node. It is written before any send could pass it, SEQMARK_AHEAD
 * beyond the database's sequence, so that it is written once per that many writes,
 * and exactly at a clean stop. A node that starts on a database of that origin whose
 * sequence is below the mark takes a new origin before it collects anything. After a
 * crash the mark may be ahead of a database that went back nowhere: it takes a new
 * origin then too, which costs its peers one vector entry and loses nothing. */
#ifndef STM_SEQMARK_H
#define STM_SEQMARK_H

#include "base/error.h"
#include "base/id.h"

#include <stdbool.h>
#include <stdint.h>

#define SEQMARK_FILE "seqmark"
#define SEQMARK_AHEAD 1000

/* Reads NODE_DIR's mark: *found false (nothing else set) when there is none; a mark
 * that does not parse counts as none, and is written again at the next send. */
STM_NODISCARD stm_err stm_seqmark_read(const char *dir, stm_id *origin, uint64_t *seq,
                                       bool *found, stm_error *err);
/* Writes the mark (fsynced, replacing the old one whole). */
STM_NODISCARD stm_err stm_seqmark_write(const char *dir, const stm_id *origin, uint64_t seq,
                                        stm_error *err);

#endif
