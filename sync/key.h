/* key.h - a row's primary key, as operations carry it.
 *
 * A table's key is its PRIMARY KEY columns in key order (PRIMARY KEY (b, a) puts b
 * first), whatever their affinity, in a rowid table or a WITHOUT ROWID one. An
 * operation carries a key of one column as that column's value (op_t.pk), and a key
 * of several columns as one value of type VALUE_KEY whose bytes are the values
 * packed:
 *
 *   packed = MessagePack array of n values, 2 <= n <= KEY_MAX_COLUMNS
 *   value  = nil | int | float64 | str | bin      (codec.h's grammar)
 *
 * each in its shortest MessagePack form (msgpack-c's packer writes that), so one key
 * always packs to the same bytes: keys are compared and looked up byte for byte
 * (stemma_clock, the collector's sort). A key read from a peer is re-packed, so no
 * peer can spell one key two ways.
 *
 * Stored, a packed key is a BLOB (stemma_oplog, stemma_clock); the oplog marks which
 * of its keys are packed (store.h). */
#ifndef STM_KEY_H
#define STM_KEY_H

#include "base/buf.h"
#include "lineage/catalog.h"
#include "lineage/syncable.h"
#include "msgread.h"
#include "op.h"

#include <stdbool.h>
#include <stddef.h>

/* The most columns a synced table's key may have; a wider one is not synced
 * (lineage/syncable.h holds the rule, and the number). */
#define KEY_MAX_COLUMNS SYNCABLE_MAX_KEY_COLUMNS

/* Appends the packed key of values[0..n) (2 <= n <= KEY_MAX_COLUMNS) to out. */
void stm_key_pack(const op_value *values, size_t n, buf_t *out);

/* The key's column values: for a VALUE_KEY its n packed values (their text and blob
 * bytes point into key's bytes), for any other value the value itself (n = 1). At
 * most cap are written; *n is how many the key has. False when a VALUE_KEY's bytes
 * are not a packed key. */
bool stm_key_values(const op_value *key, op_value *values, size_t cap, size_t *n);

/* Reads a key stored in column i of stmt's row (stemma_clock, stemma_conflicts) for a
 * table whose key has `columns` columns: a key of several is stored as its packed
 * bytes, a BLOB, and read back as the VALUE_KEY it is. Bytes lent as
 * stm_op_value_column's. */
void stm_key_column(sqlite3_stmt *stmt, int i, size_t columns, op_value *out);

/* How many columns the key names: 1 for a plain value, n for a packed key (0 when its
 * bytes are damaged). */
size_t stm_key_columns(const op_value *key);

/* True when some column of the key is NULL: no row anyone can address by it. */
bool stm_key_has_null(const op_value *key);

/* How a key column compares text: SQLite's own collations (lineage/syncable.h). */
typedef enum { KEY_BINARY, KEY_NOCASE, KEY_RTRIM } key_collation;

/* The collation of key column c (catalog_column.key_collation; unknown ones are not
 * synced, and count as BINARY here). */
key_collation stm_key_collation_of(const catalog_column *c);

/* The key as the table compares it: text parts folded the way their column's
 * collation folds them (NOCASE: ASCII letters to lower case; RTRIM: trailing spaces
 * off), so that keys the table holds as one row are one key to stemma's clocks
 * ("Ann@x.org" and "ann@x.org" under NOCASE). colls[0 .. n) are the key's columns'
 * collations. *out is key itself when nothing folds, else points into scratch. */
void stm_key_canonical(const op_value *key, const key_collation *colls, size_t n, buf_t *scratch,
                       op_value *out);

/* True when v is key's column i (0-based), compared under coll: a write to a key
 * column names its own row, in any spelling the column's collation takes as equal. */
bool stm_key_part_is(const op_value *key, size_t i, const op_value *v, key_collation coll);

/* Appends " COLLATE NOCASE" or " COLLATE RTRIM" when key column c compares so;
 * nothing for BINARY. */
void stm_key_collate_sql(buf_t *sql, const catalog_column *c);

/* Appends "k1 = ?1 AND k2 = ?2 ...": t's row whose key columns are parameters 1 .. k,
 * each compared by the key's collation. */
void stm_key_match_sql(buf_t *sql, const catalog_table *t);

/* Reads a key as codec.h's grammar puts it in an operation: a value, or an array of
 * 2..KEY_MAX_COLUMNS values, which is re-packed into scratch (emptied first) and
 * returned as a VALUE_KEY pointing into it. False when malformed. */
bool stm_key_read(msgread_t *r, buf_t *scratch, op_value *key);

#endif
