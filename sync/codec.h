/* codec.h - operations in MessagePack, as they travel in bundles and on the wire.
 *
 * A batch is one MessagePack map (docs/protocol.md gives the grammar):
 *
 *   { "origins":  [bin32, ...],   node ids, each once
 *     "versions": [bin32, ...],   schema version ids, each once
 *     "tables":   [str, ...],     table names, each once
 *     "columns":  [str, ...],     column names, each once
 *     "ops":      [op, ...],
 *     "withheld": [standin, ...] }  only when there are any (op.h)
 *   op    = [origin_index, seq, hlc, version_index, table_index, key, column_index | nil,
 *            affinity | nil, value, (born_back, born_origin_index)]
 *   born_back, born_origin_index: the row's incarnation (identity.h), hlc - born_hlc and
 *            its origin in "origins"; only in tables whose keys devices pick, and not
 *            for a row there before stemma (born_hlc 0)
 *   key   = value | [value, value, ...]         (a key of 2 to 32 columns, in key order:
 *                                                sync/key.h)
 *   value = nil | int | float | str | bin       (SQLite's null, integer, real, text, blob)
 *   standin = [origin_index, seq, n, hlc, version_index, table_index, key, bytes, (kind)]:
 *            the operations seq .. seq + n - 1 of a row change of `bytes` bytes, too large
 *            to travel, which the receiver records as withheld (op.h); with kind 1
 *            (CODEC_STANDIN_PRUNED), operations pruned, which name no row (op.h)
 *
 * The names and ids that repeat in every operation are sent once per batch. Unknown
 * map keys and extra trailing op fields are skipped, so a later version may add some;
 * a key given twice, or bytes after the map, make the batch malformed (no reader has to
 * guess which copy counts). Decoding checks every length against the limits in op.h and
 * every index against its list before anything is allocated, and never trusts a count it
 * cannot see bytes for. */
#ifndef STM_CODEC_H
#define STM_CODEC_H

#include "base/buf.h"
#include "base/error.h"
#include "msgread.h"
#include "op.h"

#include <msgpack.h>

/* Most operations one batch may hold. */
#define CODEC_MAX_BATCH_OPS 100000u
/* A stand-in's kind, its ninth field: withheld (also when there is none), pruned. */
#define CODEC_STANDIN_WITHHELD 0u
#define CODEC_STANDIN_PRUNED 1u

/* Appends the encoding of operations [from, from + count) of b, and of all its
 * stand-ins, to out. */
void stm_codec_encode_ops(const opbatch_t *b, size_t from, size_t count, buf_t *out);

/* Decodes one batch from data and appends its operations and stand-ins to out. On
 * malformed input returns STM_EPROTO with what is wrong, and out is left as it was. */
STM_NODISCARD stm_err stm_codec_decode_ops(const void *data, size_t len, opbatch_t *out,
                                           stm_error *err);

/* Packs one value as the grammar above has it (nil, int, float, str or bin). */
void stm_codec_pack_value(msgpack_packer *pk, const op_value *v);
/* Reads one value; text and blob bytes point into r's buffer. False when the next
 * value is of another type, malformed, or longer than OP_MAX_VALUE_BYTES. */
bool stm_codec_read_value(msgread_t *r, op_value *v);

#endif
