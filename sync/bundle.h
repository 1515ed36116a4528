/* bundle.h - operations and version vectors in files, for air-gapped transfer.
 *
 * A bundle holds the operations one database has and another lacks, in the batch
 * encoding of the wire protocol (codec.h), framed and sealed:
 *
 *   bundle  = "STMB" version:u8 0:u8 0:u8 0:u8  frame*  end
 *   frame   = length:u32be (1 .. BUNDLE_MAX_FRAME)  batch (length bytes, codec.h)
 *   end     = 0:u32be  ops:u64be  digest
 *   digest  = BLAKE2b-256 of every byte before it
 *
 * A vector file holds one version vector the same way:
 *
 *   vecfile = "STMV" version:u8 0:u8 0:u8 0:u8  length:u32be  vector (vector.h)  digest
 *
 * Reading checks the whole file (magic, version, frames, count, digest, and that every
 * batch decodes) before it hands out the first batch, so a truncated or damaged file
 * is refused before anything is changed. Files are written beside their final name
 * and renamed into place. */
#ifndef STM_BUNDLE_H
#define STM_BUNDLE_H

#include "apply.h"
#include "op.h"
#include "store.h"
#include "vector.h"

/* Format 2: an operation's key may be an array, a key of several columns (key.h);
 * a format 1 reader would take it for damage, so format 1 files are refused.
 * Format 3: a batch may say which operations a migration wrote ("derived", codec.h),
 * which a format 2 reader would skip and apply as the application's, where they may
 * break a migration still to run (apply.h, invariant 11): it refuses format 3 instead.
 * Bundles of format 2 are still read. Vector files did not change: still format 2. */
#define BUNDLE_VERSION 3
#define BUNDLE_VERSION_OLDEST 2 /* the oldest bundle format read */
#define VECTOR_VERSION 2
#define BUNDLE_BATCH_OPS 10000u                   /* operations per frame written */
#define BUNDLE_BATCH_BYTES (8u * 1024u * 1024u)   /* about how many bytes per frame written */
#define BUNDLE_MAX_FRAME OP_MAX_CHANGE_BYTES      /* the largest frame read (256 MiB) */
#define BUNDLE_MAX_VECTOR (16u * 1024u * 1024u)   /* the largest vector read */

typedef struct {
    uint64_t ops;     /* operations in the bundle */
    uint64_t batches; /* frames */
    uint64_t bytes;   /* file size */
    uint64_t withheld; /* written: row changes of the database too large for a frame,
                          carried as stand-ins (op.h), each logged */
} bundle_info;

/* Writes the operations of store above since (NULL: all) to path, after turning the
 * application's queued changes into operations (stm_applier_catch_up) unless store is
 * read-only. */
STM_NODISCARD stm_err stm_bundle_write(store_t *store, const vector_t *since, const char *path,
                                       bundle_info *info, stm_error *err);

/* Called for each batch of a verified bundle; a non-OK return stops the reading. */
typedef stm_err (*bundle_batch_fn)(void *ctx, const opbatch_t *batch, stm_error *err);

/* Verifies path whole, then hands each batch to fn in order. STM_ECORRUPT (naming
 * the file and what is wrong) for a damaged or truncated bundle, before any call.
 * The second reading checks the digest again: a file changed in place between the two
 * fails at its end, after some calls, so a caller that applies should do so in one
 * transaction (stm_applier_begin) and roll back on failure, as `stemma apply` does. */
STM_NODISCARD stm_err stm_bundle_read(const char *path, bundle_batch_fn fn, void *ctx,
                                      bundle_info *info, stm_error *err);
/* Reads path once, handing each batch to fn as it is decoded, and checks the count
 * and digest at the end: a damaged bundle fails after some calls. For a caller that
 * applies in one transaction and rolls back on any failure (`stemma apply`): the same
 * guarantee as stm_bundle_read for half the reading. */
STM_NODISCARD stm_err stm_bundle_read_once(const char *path, bundle_batch_fn fn, void *ctx,
                                           bundle_info *info, stm_error *err);

/* Applies the bundle at path through applier, in one transaction: all of it, or (on any
 * failure, a damaged file included) none. What it did is added to *stats; *info
 * describes the bundle. */
STM_NODISCARD stm_err stm_bundle_apply(applier_t *applier, const char *path, apply_stats *stats,
                                       bundle_info *info, stm_error *err);
/* Told after each batch applied: bytes of the file read so far of its size (UINT64_MAX
 * when it is not a regular file), and the operations read so far. */
typedef void (*bundle_progress_fn)(void *ctx, uint64_t read, uint64_t size, uint64_t ops);
/* stm_bundle_apply, telling progress (NULL: no one) after each batch. */
STM_NODISCARD stm_err stm_bundle_apply_watched(applier_t *applier, const char *path,
                                               bundle_progress_fn progress, void *ctx,
                                               apply_stats *stats, bundle_info *info,
                                               stm_error *err);

STM_NODISCARD stm_err stm_bundle_write_vector(const vector_t *v, const char *path, stm_error *err);
/* *out is the caller's. STM_ECORRUPT for a damaged file. */
STM_NODISCARD stm_err stm_bundle_read_vector(const char *path, vector_t **out, stm_error *err);

/* ---- the same in memory (the SQLite extension's blobs: ext/) ----
 *
 * The bytes are a file's, exactly: a blob written here read from a file and the other
 * way round. Messages name them "a bundle" or "a vector" where a file's name goes. */

/* stm_bundle_write into *out (*len bytes; the caller frees it; NULL on failure). */
STM_NODISCARD stm_err stm_bundle_write_mem(store_t *store, const vector_t *since, char **out,
                                           size_t *len, bundle_info *info, stm_error *err);
/* stm_bundle_read of data[0 .. len) (lent for the call). */
STM_NODISCARD stm_err stm_bundle_read_mem(const void *data, size_t len, bundle_batch_fn fn,
                                          void *ctx, bundle_info *info, stm_error *err);
/* stm_bundle_apply of data[0 .. len). */
STM_NODISCARD stm_err stm_bundle_apply_mem(applier_t *applier, const void *data, size_t len,
                                           apply_stats *stats, bundle_info *info, stm_error *err);
/* stm_bundle_write_vector into *out (*len bytes; the caller frees it). */
STM_NODISCARD stm_err stm_bundle_write_vector_mem(const vector_t *v, char **out, size_t *len,
                                                  stm_error *err);
/* stm_bundle_read_vector of data[0 .. len); *out is the caller's. */
STM_NODISCARD stm_err stm_bundle_read_vector_mem(const void *data, size_t len, vector_t **out,
                                                 stm_error *err);

#endif
