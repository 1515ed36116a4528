/* unsynced_text.h - the tables stemma does not sync, as migrate, rollback, status and
 * compare show them: all at once, one a line, each with why (lineage/syncable.h says
 * the rule and words the reasons), so that every command says it the same way. */
#ifndef STM_UNSYNCED_TEXT_H
#define STM_UNSYNCED_TEXT_H

#include "base/buf.h"
#include "base/jsonw.h"
#include "lineage/syncable.h"

/* What is said of a virtual table's shadow tables, its name for %s: the tables its
 * module keeps (FTS5's NAME_data, NAME_idx, NAME_content, NAME_docsize, NAME_config;
 * R*Tree's NAME_node, NAME_parent, NAME_rowid) hold its index, not the user's rows. */
#define UNSYNCED_TEXT_SHADOW                                                                       \
    "nor are the tables its module keeps (%s_*): each device keeps its own, which triggers "   \
    "that feed it from synced tables keep in step as their rows arrive"

/* Said of a table the schema set never had, after its reason. */
#define UNSYNCED_TEXT_OUTSIDE "(not in the schema set: the database's own)"

/* Appends one line per table, "INDENTname: reason\n", in the order given; a virtual
 * table's line names its shadow tables too (UNSYNCED_TEXT_SHADOW). */
void unsynced_text_lines(buf_t *b, const char *indent, const syncable_table *tables, size_t n);

/* Appends the block migrate, rollback and status end with, nothing when n is 0:
 * "not synced at version V (N tables):" then the lines, indented by two. */
void unsynced_text_block(buf_t *b, int version, const syncable_table *tables, size_t n);

/* What stemma does with rows of the tables whose keys each device picks, in words. */
#define UNSYNCED_TEXT_PER_DEVICE                                                                   \
    "rows two devices create apart under one key are never merged: the first made keeps the "    \
    "key, the other is kept aside (stemma conflicts)"

/* Appends names[0 .. n) as "a, b, c". */
void unsynced_text_names(buf_t *b, char *const *names, size_t n);

/* Appends the block migrate, rollback and status give the synced tables whose keys
 * are chosen per device (lineage/syncable.h), nothing when n is 0: "keys chosen per
 * device at version V (N tables): a, b" and what that means, indented by two. */
void unsynced_text_per_device(buf_t *b, int version, char *const *names, size_t n);

/* Appends the block migrate and rollback give the synced tables whose keys change rule
 * between versions from and to (stm_syncable_keys_changed), nothing when n is 0. */
void unsynced_text_keys_changed(buf_t *b, int from, int to, char *const *names, size_t n);

/* Writes the tables as a JSON array of {"table", "kind", "reason", "in_schema_set"}:
 * kind is the reason's name for programs (no_key, wide_key, virtual, excluded), reason
 * its words, in_schema_set false for a table the schema set never had;
 * a virtual table's has "shadow_tables", the pattern of its module's ("NAME_*"). */
void unsynced_text_json(jsonw_t *w, const syncable_table *tables, size_t n);

#endif
