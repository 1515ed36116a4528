#include "bundle.h"
#include "origin.h"
#include "apply.h"
#include "codec.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "oplog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char s_bundle_magic[4] = {'S', 'T', 'M', 'B'};
static const unsigned char s_vector_magic[4] = {'S', 'T', 'M', 'V'};

/* ---- writing ---- */

/* A file being written beside its final name, hashed as it goes; or, with tmp NULL,
 * bytes in memory (open_memstream: *mem and *mem_len once closed). */
typedef struct {
    FILE *f;
    char *tmp;        /* the temporary name; NULL: in memory */
    const char *path; /* the final name, or what the bytes are called in messages */
    char **mem;       /* in memory: where they go */
    size_t *mem_len;
    stm_hasher hash;
    uint64_t bytes;
    bool failed;
} s_out;

static stm_err s_out_open_mem(s_out *o, const char *name, char **mem, size_t *len, stm_error *err)
{
    memset(o, 0, sizeof *o);
    o->path = name;
    o->mem = mem;
    o->mem_len = len;
    *mem = NULL;
    *len = 0;
    o->f = open_memstream(mem, len);
    if (!o->f)
        return stm_error_set(err, STM_ESYS, "%s: %s", name, strerror(errno));
    stm_hasher_init(&o->hash);
    return STM_OK;
}

static stm_err s_out_open(s_out *o, const char *path, stm_error *err)
{
    memset(o, 0, sizeof *o);
    buf_t tmp = BUF_INIT;
    stm_buf_printf(&tmp, "%s.tmp%ld", path, (long)getpid());
    o->tmp = stm_buf_detach(&tmp);
    o->path = path;
    o->f = fopen(o->tmp, "wb");
    if (!o->f) {
        stm_err rc = stm_error_set(err, STM_ESYS, "%s: cannot write: %s", path, strerror(errno));
        free(o->tmp);
        return rc;
    }
    stm_hasher_init(&o->hash);
    return STM_OK;
}

static void s_out_write(s_out *o, const void *data, size_t len)
{
    if (o->failed)
        return;
    if (fwrite(data, 1, len, o->f) != len)
        o->failed = true;
    stm_hasher_update(&o->hash, data, len);
    o->bytes += len;
}

static void s_out_be(s_out *o, uint64_t v, int n)
{
    unsigned char b[8];
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        b[i] = (unsigned char)v;
    s_out_write(o, b, (size_t)n);
}

/* Writes the digest and renames into place, or removes the temporary file; in memory,
 * hands the bytes over (freed on failure). */
static stm_err s_out_close(s_out *o, stm_err rc, stm_error *err)
{
    if (rc == STM_OK) {
        stm_id digest;
        stm_hasher_final(&o->hash, &digest);
        s_out_write(o, digest.bytes, STM_ID_BYTES);
    }
    if (!o->tmp) {
        if (fclose(o->f) != 0 || o->failed) /* memory ran out */
            rc = rc != STM_OK ? rc : stm_error_set(err, STM_ESYS, "%s: out of memory", o->path);
        if (rc != STM_OK) {
            free(*o->mem);
            *o->mem = NULL;
            *o->mem_len = 0;
        }
        return rc;
    }
    /* On disk before it takes the final name, so a crash cannot leave a short file
     * where a complete one (or the one it replaces) was. */
    if (rc == STM_OK && !o->failed && (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0))
        o->failed = true;
    if (fclose(o->f) != 0)
        o->failed = true;
    if (rc == STM_OK && o->failed)
        rc = stm_error_set(err, STM_ESYS, "%s: cannot write: %s", o->path, strerror(errno));
    if (rc == STM_OK && rename(o->tmp, o->path) != 0)
        rc = stm_error_set(err, STM_ESYS, "%s: cannot write: %s", o->path, strerror(errno));
    if (rc != STM_OK)
        unlink(o->tmp);
    free(o->tmp);
    return rc;
}

static void s_header(s_out *o, const unsigned char magic[4], unsigned version)
{
    unsigned char h[8] = {magic[0], magic[1], magic[2], magic[3], (unsigned char)version, 0, 0, 0};
    s_out_write(o, h, sizeof h);
}

/* The bundle of store's operations above since into o (closed here). */
static stm_err s_write_bundle(store_t *store, const vector_t *since, s_out *o, bundle_info *info,
                              stm_error *err);

stm_err stm_bundle_write(store_t *store, const vector_t *since, const char *path, bundle_info *info,
                         stm_error *err)
{
    s_out o;
    stm_err rc = s_out_open(&o, path, err);
    return rc == STM_OK ? s_write_bundle(store, since, &o, info, err) : rc;
}

stm_err stm_bundle_write_mem(store_t *store, const vector_t *since, char **out, size_t *len,
                             bundle_info *info, stm_error *err)
{
    s_out o;
    stm_err rc = s_out_open_mem(&o, "a bundle", out, len, err);
    return rc == STM_OK ? s_write_bundle(store, since, &o, info, err) : rc;
}

static stm_err s_write_bundle(store_t *store, const vector_t *since, s_out *o, bundle_info *info,
                              stm_error *err)
{
    const char *path = o->path;
    /* The application's changes still queued are operations this database holds
     * (a read-only connection cannot make them so, and leaves them queued). */
    stm_err rc = STM_OK;
    if (sqlite3_db_readonly(stm_store_db(store), "main") == 0) {
        applier_t *applier = stm_applier_new(store, NULL, NULL);
        rc = stm_applier_catch_up(applier, err);
        stm_applier_destroy(&applier);
        /* Its own operations leave it in this file: a restore in place is told from
         * then on (origin.h). */
        stm_id origin;
        if (rc == STM_OK)
            rc = stm_origin_mark_sent(store, &origin, err);
        if (rc != STM_OK)
            return s_out_close(o, rc, err);
    }
    oplog_reader_t *reader = NULL;
    rc = stm_oplog_reader_new(store, since, &reader, err);
    if (rc != STM_OK)
        return s_out_close(o, rc, err);
    memset(info, 0, sizeof *info);
    s_header(o, s_bundle_magic, BUNDLE_VERSION);
    opbatch_t *batch = stm_opbatch_new();
    buf_t frame = BUF_INIT;
    for (;;) {
        size_t got;
        stm_opbatch_clear(batch);
        rc = stm_oplog_reader_next(reader, batch, BUNDLE_BATCH_OPS, BUNDLE_BATCH_BYTES, &got, err);
        if (rc != STM_OK || got == 0)
            break;
        stm_buf_reset(&frame);
        stm_codec_encode_ops(batch, 0, stm_opbatch_count(batch), &frame);
        /* The reader reads a row change over the limit as a stand-in: this is a bug. */
        if (frame.len > BUNDLE_MAX_FRAME) {
            rc = stm_error_set(err, STM_EINPUT, "%s: a batch of %zu bytes is over the frame limit",
                               path, frame.len);
            break;
        }
        /* Those too large for a frame go as stand-ins, named here, once each. */
        for (size_t i = 0; i < stm_opbatch_withheld_count(batch); i++) {
            const op_withheld *w = stm_opbatch_withheld_at(batch, i);
            if (!w->here)
                continue;
            buf_t what = BUF_INIT;
            stm_op_withheld_describe(&what, w);
            stm_log_event(STM_LOG_WARN, "withheld", NULL,
                          "%s: too large for a bundle (at most %u bytes): the bundle carries "
                          "a stand-in for it, and its receivers will lack that write",
                          stm_buf_str(&what), BUNDLE_MAX_FRAME);
            stm_buf_free(&what);
            info->withheld++;
        }
        s_out_be(o, frame.len, 4);
        s_out_write(o, frame.data, frame.len);
        /* The count at the end is of operations: stand-ins are not, so a reader that
         * skips them (an older one) counts the same. */
        info->ops += stm_opbatch_count(batch);
        info->batches++;
    }
    stm_buf_free(&frame);
    stm_opbatch_destroy(&batch);
    stm_oplog_reader_destroy(&reader);
    s_out_be(o, 0, 4);
    s_out_be(o, info->ops, 8);
    info->bytes = o->bytes + STM_ID_BYTES;
    return s_out_close(o, rc, err);
}

/* The vector file of v into o (closed here). */
static stm_err s_write_vector(const vector_t *v, s_out *o, stm_error *err)
{
    buf_t body = BUF_INIT;
    stm_vector_encode(v, &body);
    s_header(o, s_vector_magic, VECTOR_VERSION);
    s_out_be(o, body.len, 4);
    s_out_write(o, body.data, body.len);
    stm_buf_free(&body);
    return s_out_close(o, STM_OK, err);
}

stm_err stm_bundle_write_vector_mem(const vector_t *v, char **out, size_t *len, stm_error *err)
{
    s_out o;
    stm_err rc = s_out_open_mem(&o, "a vector", out, len, err);
    return rc == STM_OK ? s_write_vector(v, &o, err) : rc;
}

stm_err stm_bundle_write_vector(const vector_t *v, const char *path, stm_error *err)
{
    s_out o;
    stm_err rc = s_out_open(&o, path, err);
    return rc == STM_OK ? s_write_vector(v, &o, err) : rc;
}

/* ---- reading ---- */

typedef struct {
    FILE *f;
    const char *path;
    stm_hasher hash;
    stm_error *err;
    uint64_t size; /* the file's size, UINT64_MAX when unknown (not a regular file) */
    uint64_t pos;  /* bytes read */
} s_in;

static stm_err s_corrupt(s_in *in, const char *what)
{
    return stm_error_set(in->err, STM_ECORRUPT, "%s: %s", in->path, what);
}

/* Reads exactly len bytes (hashed); false at the end of the file. */
static bool s_in_read(s_in *in, void *data, size_t len)
{
    if (len && fread(data, 1, len, in->f) != len)
        return false;
    stm_hasher_update(&in->hash, data, len);
    in->pos += len;
    return true;
}

/* False when fewer than len bytes are left in the file: a length read from the file
 * is checked against what is there before anything is allocated for it. */
static bool s_in_has(const s_in *in, uint64_t len)
{
    return in->pos <= in->size && len <= in->size - in->pos;
}

static bool s_in_be(s_in *in, uint64_t *v, int n)
{
    unsigned char b[8];
    if (!s_in_read(in, b, (size_t)n))
        return false;
    *v = 0;
    for (int i = 0; i < n; i++)
        *v = *v << 8 | b[i];
    return true;
}

/* Where a bundle or vector is read from: a file, or bytes in memory (data, len; path
 * then names them in messages). */
typedef struct {
    const char *path;
    const void *data;
    size_t len;
    bundle_progress_fn progress; /* told after each batch handed out (may be NULL) */
    void *progress_ctx;
} s_src;

static stm_err s_in_open(s_in *in, const s_src *src, const unsigned char magic[4],
                         const char *kind, stm_error *err)
{
    const char *path = src->path;
    in->path = path;
    in->err = err;
    if (src->data) {
        /* fmemopen takes no empty buffer: what is empty is no bundle either. */
        in->f = src->len ? fmemopen((void *)src->data, src->len, "rb") : NULL;
        if (!in->f && src->len)
            return stm_error_set(err, STM_ESYS, "%s: %s", path, strerror(errno));
        if (!in->f) {
            char what[96];
            snprintf(what, sizeof what, "not a stemma %s (empty)", kind);
            return s_corrupt(in, what);
        }
        in->size = src->len;
    } else {
        in->f = fopen(path, "rb");
        if (!in->f)
            return stm_error_set(err, STM_EINPUT, "%s: cannot read: %s", path, strerror(errno));
        struct stat st;
        in->size = fstat(fileno(in->f), &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size
                                                                         : UINT64_MAX;
    }
    in->pos = 0;
    stm_hasher_init(&in->hash);
    unsigned char h[8];
    if (!s_in_read(in, h, sizeof h) || memcmp(h, magic, 4) != 0) {
        char what[96];
        snprintf(what, sizeof what, "not a stemma %s (wrong magic)", kind);
        stm_err rc = s_corrupt(in, what);
        fclose(in->f);
        return rc;
    }
    if (h[5] || h[6] || h[7]) {
        stm_err rc = s_corrupt(in, "damaged: the header's reserved bytes are not zero");
        fclose(in->f);
        return rc;
    }
    bool vector = memcmp(magic, s_vector_magic, 4) == 0;
    unsigned oldest = vector ? VECTOR_VERSION : BUNDLE_VERSION_OLDEST;
    unsigned newest = vector ? VECTOR_VERSION : BUNDLE_VERSION;
    if (h[4] < oldest || h[4] > newest) {
        char reads[48];
        if (oldest == newest)
            snprintf(reads, sizeof reads, "format %u", newest);
        else
            snprintf(reads, sizeof reads, "formats %u to %u", oldest, newest);
        stm_err rc = stm_error_set(err, STM_EINPUT, "%s: %s format %u; this stemma reads %s",
                                   path, kind, h[4], reads);
        fclose(in->f);
        return rc;
    }
    return STM_OK;
}

/* Checks the digest at the current position and that nothing follows it. */
static stm_err s_in_check_digest(s_in *in)
{
    stm_id want, got;
    stm_hasher_final(&in->hash, &want);
    if (fread(got.bytes, 1, STM_ID_BYTES, in->f) != STM_ID_BYTES)
        return s_corrupt(in, "cut short (no digest at the end)");
    if (!stm_id_equal(&want, &got))
        return s_corrupt(in, "damaged: the digest does not match the contents");
    if (fgetc(in->f) != EOF)
        return s_corrupt(in, "damaged: bytes follow the digest");
    return STM_OK;
}

/* One pass over a bundle: with fn NULL, checks every frame decodes; otherwise hands
 * each batch to fn. */
static stm_err s_bundle_pass(const s_src *src, bundle_batch_fn fn, void *ctx, bundle_info *info,
                             stm_error *err)
{
    const char *path = src->path;
    s_in in;
    stm_err rc = s_in_open(&in, src, s_bundle_magic, "bundle", err);
    if (rc != STM_OK)
        return rc;
    memset(info, 0, sizeof *info);
    opbatch_t *batch = stm_opbatch_new();
    char *frame = NULL;
    size_t frame_cap = 0;
    for (;;) {
        uint64_t len;
        if (!s_in_be(&in, &len, 4)) {
            rc = s_corrupt(&in, "cut short (a frame or the end marker is missing)");
            break;
        }
        if (len == 0)
            break;
        if (len > BUNDLE_MAX_FRAME) {
            rc = s_corrupt(&in, "damaged: a frame is longer than the limit");
            break;
        }
        if (!s_in_has(&in, len)) {
            rc = s_corrupt(&in, "cut short in the middle of a frame");
            break;
        }
        frame = stm_grow(frame, &frame_cap, len, 1);
        if (!s_in_read(&in, frame, len)) {
            rc = s_corrupt(&in, "cut short in the middle of a frame");
            break;
        }
        stm_opbatch_clear(batch);
        if (stm_codec_decode_ops(frame, len, batch, err) != STM_OK) {
            stm_error_prefix(err, "%s: damaged: batch %llu", path,
                             (unsigned long long)info->batches + 1);
            rc = STM_ECORRUPT;
            if (err)
                err->code = rc;
            break;
        }
        info->ops += stm_opbatch_count(batch);
        info->batches++;
        if (fn && (rc = fn(ctx, batch, err)) != STM_OK)
            break;
        if (fn && src->progress)
            src->progress(src->progress_ctx, in.pos, in.size, info->ops);
    }
    uint64_t count = 0;
    if (rc == STM_OK && !s_in_be(&in, &count, 8))
        rc = s_corrupt(&in, "cut short (no operation count)");
    if (rc == STM_OK && count != info->ops)
        rc = s_corrupt(&in, "damaged: the operation count does not match the frames");
    if (rc == STM_OK)
        rc = s_in_check_digest(&in);
    if (rc == STM_OK)
        info->bytes = (uint64_t)ftell(in.f);
    free(frame);
    stm_opbatch_destroy(&batch);
    fclose(in.f);
    return rc;
}

stm_err stm_bundle_read_once(const char *path, bundle_batch_fn fn, void *ctx, bundle_info *info,
                             stm_error *err)
{
    s_src src = {.path = path};
    return s_bundle_pass(&src, fn, ctx, info, err);
}

/* First the whole bundle is checked, then it is read again for real: nothing is handed
 * out of a bundle that turns out to be damaged further on. */
static stm_err s_read_checked(const s_src *src, bundle_batch_fn fn, void *ctx, bundle_info *info,
                              stm_error *err)
{
    stm_err rc = s_bundle_pass(src, NULL, NULL, info, err);
    if (rc == STM_OK && fn)
        rc = s_bundle_pass(src, fn, ctx, info, err);
    return rc;
}

stm_err stm_bundle_read(const char *path, bundle_batch_fn fn, void *ctx, bundle_info *info,
                        stm_error *err)
{
    s_src src = {.path = path};
    return s_read_checked(&src, fn, ctx, info, err);
}

stm_err stm_bundle_read_mem(const void *data, size_t len, bundle_batch_fn fn, void *ctx,
                            bundle_info *info, stm_error *err)
{
    s_src src = {.path = "a bundle", .data = data ? data : "", .len = len};
    return s_read_checked(&src, fn, ctx, info, err);
}

static stm_err s_read_vector(const s_src *src, vector_t **out, stm_error *err)
{
    const char *path = src->path;
    s_in in;
    stm_err rc = s_in_open(&in, src, s_vector_magic, "vector file", err);
    if (rc != STM_OK)
        return rc;
    uint64_t len = 0;
    char *body = NULL;
    if (!s_in_be(&in, &len, 4))
        rc = s_corrupt(&in, "cut short");
    else if (len > BUNDLE_MAX_VECTOR)
        rc = s_corrupt(&in, "damaged: the vector is longer than the limit");
    else if (!s_in_has(&in, len))
        rc = s_corrupt(&in, "cut short");
    else {
        body = stm_malloc(len ? len : 1);
        if (!s_in_read(&in, body, len))
            rc = s_corrupt(&in, "cut short");
    }
    if (rc == STM_OK)
        rc = s_in_check_digest(&in);
    if (rc == STM_OK && stm_vector_decode(body, len, out, err) != STM_OK) {
        stm_error_prefix(err, "%s: damaged", path);
        rc = STM_ECORRUPT;
        if (err)
            err->code = rc;
    }
    free(body);
    fclose(in.f);
    return rc;
}

stm_err stm_bundle_read_vector(const char *path, vector_t **out, stm_error *err)
{
    s_src src = {.path = path};
    return s_read_vector(&src, out, err);
}

stm_err stm_bundle_read_vector_mem(const void *data, size_t len, vector_t **out, stm_error *err)
{
    s_src src = {.path = "a vector", .data = data ? data : "", .len = len};
    return s_read_vector(&src, out, err);
}

/* One batch of a bundle being applied: args are the applier and the stats. */
static stm_err s_apply_batch(void *ctx, const opbatch_t *batch, stm_error *err)
{
    void **args = ctx;
    return stm_applier_apply(args[0], batch, args[1], err);
}

/* Applies the bundle src in one transaction (stm_bundle_apply). */
static stm_err s_apply(applier_t *applier, const s_src *src, apply_stats *stats,
                       bundle_info *info, stm_error *err)
{
    void *args[2] = {applier, stats};
    stm_err rc = stm_applier_begin(applier, err);
    if (rc != STM_OK)
        return rc;
    rc = s_bundle_pass(src, s_apply_batch, args, info, err);
    if (rc == STM_OK)
        rc = stm_applier_commit(applier, err);
    else
        stm_applier_rollback(applier);
    return rc;
}

stm_err stm_bundle_apply(applier_t *applier, const char *path, apply_stats *stats,
                         bundle_info *info, stm_error *err)
{
    return stm_bundle_apply_watched(applier, path, NULL, NULL, stats, info, err);
}

stm_err stm_bundle_apply_watched(applier_t *applier, const char *path, bundle_progress_fn progress,
                                 void *ctx, apply_stats *stats, bundle_info *info, stm_error *err)
{
    s_src src = {.path = path, .progress = progress, .progress_ctx = ctx};
    return s_apply(applier, &src, stats, info, err);
}

stm_err stm_bundle_apply_mem(applier_t *applier, const void *data, size_t len, apply_stats *stats,
                             bundle_info *info, stm_error *err)
{
    s_src src = {.path = "a bundle", .data = data ? data : "", .len = len};
    return s_apply(applier, &src, stats, info, err);
}
