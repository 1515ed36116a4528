/* wire.c - the mesh messages (docs/protocol.md): the framing, the fields every message
 * uses (the vector part among them), and every message but the HELLO, which is
 * wire_hello.c's. */
#include "wire_internal.h"
#include "base/mem.h"
#include "lineage/schemaset.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static const char s_magic[4] = {'S', 'T', 'M', 'W'};

_Static_assert(WIRE_MAX_VERSIONS == SCHEMASET_MAX_VERSIONS,
               "a database's every version fits in a HELLO");
_Static_assert(WIRE_MAX_BATCH == 268435456u, "the messages quote WIRE_MAX_BATCH");
_Static_assert(WIRE_PART_BYTES + WIRE_OPS_OVERHEAD <= WIRE_MAX_MESSAGE,
               "a part fits in a message");

/* ---- encoding ---- */

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

void stm_wire_put_header(buf_t *out, wire_type type, msgpack_packer *pk)
{
    stm_buf_append(out, s_magic, 4);
    stm_buf_putc(out, (char)WIRE_VERSION);
    stm_buf_putc(out, (char)type);
    msgpack_packer_init(pk, out, s_write);
}

void stm_wire_put_key(msgpack_packer *pk, const char *key)
{
    msgpack_pack_str_with_body(pk, key, strlen(key));
}

void stm_wire_put_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

void stm_wire_put_id(msgpack_packer *pk, const stm_id *id)
{
    msgpack_pack_bin_with_body(pk, id->bytes, STM_ID_BYTES);
}

void stm_wire_encode_empty(buf_t *out, wire_type type)
{
    msgpack_packer pk;
    stm_wire_put_header(out, type, &pk);
    msgpack_pack_map(&pk, 0);
}

void stm_wire_encode_refuse(buf_t *out, const char *reason)
{
    msgpack_packer pk;
    stm_wire_put_header(out, WIRE_REFUSE, &pk);
    msgpack_pack_map(&pk, 1);
    stm_wire_put_key(&pk, "reason");
    stm_wire_put_str(&pk, reason);
}

void stm_wire_encode_ops(buf_t *out, uint64_t seq, const void *batch, size_t batch_len)
{
    msgpack_packer pk;
    stm_wire_put_header(out, WIRE_OPS, &pk);
    msgpack_pack_map(&pk, 2);
    stm_wire_put_key(&pk, "seq");
    msgpack_pack_uint64(&pk, seq);
    stm_wire_put_key(&pk, "batch");
    msgpack_pack_bin_with_body(&pk, batch, batch_len);
}

void stm_wire_encode_ops_part(buf_t *out, uint64_t seq, uint64_t part, uint64_t parts,
                              uint64_t bytes, const void *slice, size_t part_len)
{
    msgpack_packer pk;
    stm_wire_put_header(out, WIRE_OPS, &pk);
    msgpack_pack_map(&pk, 5);
    stm_wire_put_key(&pk, "seq");
    msgpack_pack_uint64(&pk, seq);
    stm_wire_put_key(&pk, "part");
    msgpack_pack_uint64(&pk, part);
    stm_wire_put_key(&pk, "parts");
    msgpack_pack_uint64(&pk, parts);
    stm_wire_put_key(&pk, "bytes");
    msgpack_pack_uint64(&pk, bytes);
    stm_wire_put_key(&pk, "batch");
    msgpack_pack_bin_with_body(&pk, slice, part_len);
}

void stm_wire_encode_received(buf_t *out, uint64_t seq, uint64_t bytes)
{
    msgpack_packer pk;
    stm_wire_put_header(out, WIRE_RECEIVED, &pk);
    msgpack_pack_map(&pk, 2);
    stm_wire_put_key(&pk, "seq");
    msgpack_pack_uint64(&pk, seq);
    stm_wire_put_key(&pk, "bytes");
    msgpack_pack_uint64(&pk, bytes);
}

uint32_t stm_wire_vector_keys(const vector_out *v)
{
    return 1u + v->delta + v->has_digest + v->more + v->part;
}

static void s_digest(msgpack_packer *pk, const vector_digest *d)
{
    unsigned char b[VECTOR_DIGEST_BYTES];
    stm_vector_digest_bytes(d, b);
    msgpack_pack_bin_with_body(pk, b, sizeof b);
}

void stm_wire_put_vector(msgpack_packer *pk, buf_t *out, const vector_out *v)
{
    stm_wire_put_key(pk, "vector");
    /* The packer writes straight into out, so the encoded entries follow. */
    stm_buf_append(out, v->entries.data, v->entries.len);
    if (v->delta) {
        stm_wire_put_key(pk, "vbase");
        s_digest(pk, &v->base);
    }
    if (v->has_digest) {
        stm_wire_put_key(pk, "vdigest");
        s_digest(pk, &v->digest);
    }
    if (v->more) {
        stm_wire_put_key(pk, "vmore");
        msgpack_pack_true(pk);
    }
    if (v->part) {
        stm_wire_put_key(pk, "vpart");
        msgpack_pack_true(pk);
    }
}

void stm_wire_encode_ack(buf_t *out, uint64_t seq, const vector_out *vector)
{
    msgpack_packer pk;
    stm_wire_put_header(out, WIRE_ACK, &pk);
    msgpack_pack_map(&pk, 1 + stm_wire_vector_keys(vector));
    stm_wire_put_key(&pk, "seq");
    msgpack_pack_uint64(&pk, seq);
    stm_wire_put_vector(&pk, out, vector);
}

void stm_wire_encode_graft(buf_t *out, const vector_out *vector)
{
    msgpack_packer pk;
    stm_wire_put_header(out, WIRE_GRAFT, &pk);
    msgpack_pack_map(&pk, stm_wire_vector_keys(vector));
    stm_wire_put_vector(&pk, out, vector);
}

void stm_wire_encode_vector(buf_t *out, const vector_out *vector, bool need)
{
    msgpack_packer pk;
    stm_wire_put_header(out, WIRE_VECTOR, &pk);
    msgpack_pack_map(&pk, (vector ? stm_wire_vector_keys(vector) : 0) + need);
    if (vector)
        stm_wire_put_vector(&pk, out, vector);
    if (need) {
        stm_wire_put_key(&pk, "vneed");
        msgpack_pack_true(&pk);
    }
}

/* ---- decoding ---- */

stm_err stm_wire_bad(stm_error *err, const char *what)
{
    return stm_error_set(err, STM_EPROTO, "malformed message: %s", what);
}

stm_err stm_wire_header(const void *data, size_t len, int *version, int *type, stm_error *err)
{
    if (len < WIRE_HEADER_BYTES || memcmp(data, s_magic, 4) != 0)
        return stm_wire_bad(err, "not a stemma message (wrong magic)");
    const unsigned char *p = data;
    *version = p[4];
    *type = p[5];
    return STM_OK;
}

/* Opens the body of a message of the given type: the map and its key count. */
stm_err stm_wire_body(const void *data, size_t len, wire_type type, msgread_t *r, uint32_t *nkeys,
                      stm_error *err)
{
    int version = 0, got = 0;
    stm_err rc = stm_wire_header(data, len, &version, &got, err);
    if (rc != STM_OK)
        return rc;
    if (version != WIRE_VERSION || got != (int)type)
        return stm_wire_bad(err, "unexpected version or type");
    stm_msgread_init(r, (const char *)data + WIRE_HEADER_BYTES, len - WIRE_HEADER_BYTES);
    if (!stm_msgread_map(r, nkeys))
        return stm_wire_bad(err, "the body is not a map");
    return STM_OK;
}

/* Reads a map key into a small buffer: 1 when it fits; 0 for a longer key (read, so
 * a key no field has; its value is still to be skipped); -1 when it is not a string. */
static int s_read_key(msgread_t *r, char *key, size_t size)
{
    const char *k;
    uint32_t n;
    if (!stm_msgread_str(r, &k, &n))
        return -1;
    if (n >= size)
        return 0;
    memcpy(key, k, n);
    key[n] = '\0';
    return 1;
}

/* The common start of each field: reads the key, or skips a field no one knows.
 * Returns 1 for a key to look at, 0 for a field skipped, -1 for malformed input. */
int stm_wire_next_key(msgread_t *r, char *key, size_t size)
{
    int kr = s_read_key(r, key, size);
    if (kr == 0)
        return stm_msgread_skip(r) ? 0 : -1;
    return kr;
}

/* True when s holds a control character (NUL, newline, escape, ... DEL): a peer's
 * text goes into log lines, reports and terminals, where one could forge a line or
 * drive the terminal. */
bool stm_wire_has_control(const char *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

bool stm_wire_read_text(msgread_t *r, char **out)
{
    const char *s;
    uint32_t n;
    if (!stm_msgread_str(r, &s, &n) || n > WIRE_MAX_TEXT || stm_wire_has_control(s, n))
        return false;
    free(*out);
    *out = stm_strndup(s, n);
    return true;
}

bool stm_wire_read_id(msgread_t *r, stm_id *id)
{
    const void *p;
    uint32_t n;
    if (!stm_msgread_bin(r, &p, &n) || n != STM_ID_BYTES)
        return false;
    memcpy(id->bytes, p, STM_ID_BYTES);
    return true;
}

bool stm_wire_read_digest(msgread_t *r, vector_digest *d)
{
    const void *p;
    uint32_t n;
    if (!stm_msgread_bin(r, &p, &n) || n != VECTOR_DIGEST_BYTES)
        return false;
    stm_vector_digest_from(d, p);
    return true;
}

int stm_wire_read_vector_key(const char *key, msgread_t *r, vector_msg *m, bool *have_vector,
                             stm_error *err)
{
    bool ok;
    if (strcmp(key, "vector") == 0) {
        /* Its extent is found by skipping it; a vector longer than one message may carry
         * (an older peer's) is cut, never refused: refusing it partitioned the mesh. */
        const unsigned char *start = r->p;
        if (!stm_msgread_skip(r)) {
            stm_error_set(err, STM_EPROTO, "malformed message: the vector is malformed");
            return -1;
        }
        stm_vector_destroy(&m->entries);
        m->cut = 0;
        if (stm_vector_decode_max(start, (size_t)(r->p - start), VECTOR_MAX_ENTRIES, &m->entries,
                                  &m->cut, err) != STM_OK)
            return -1;
        *have_vector = true;
        return 1;
    } else if (strcmp(key, "vbase") == 0) {
        ok = m->delta = stm_wire_read_digest(r, &m->base);
    } else if (strcmp(key, "vdigest") == 0) {
        ok = m->has_digest = stm_wire_read_digest(r, &m->digest);
    } else if (strcmp(key, "vmore") == 0) {
        ok = stm_msgread_bool(r, &m->more);
    } else if (strcmp(key, "vpart") == 0) {
        ok = stm_msgread_bool(r, &m->part);
    } else {
        return 0;
    }
    if (ok)
        return 1;
    stm_error_set(err, STM_EPROTO,
                  "malformed message: its %s is not a digest of %d bytes (or not a bool)", key,
                  VECTOR_DIGEST_BYTES);
    return -1;
}

/* An array header announcing at most max elements, each of which takes at least
 * min_bytes of what is left: every count is checked against the limit and against the
 * bytes that would have to follow before anything is sized by it. */
bool stm_wire_array(msgread_t *r, uint32_t max, size_t min_bytes, uint32_t *n)
{
    msgread_t save = *r;
    if (!stm_msgread_array(r, n) || *n > max || (uint64_t)*n * min_bytes > stm_msgread_left(r)) {
        *r = save;
        return false;
    }
    return true;
}

stm_err stm_wire_decode_refuse(const void *data, size_t len, char **reason, stm_error *err)
{
    msgread_t r;
    uint32_t nkeys;
    stm_err rc = stm_wire_body(data, len, WIRE_REFUSE, &r, &nkeys, err);
    *reason = NULL;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        int kr = stm_wire_next_key(&r, key, sizeof key);
        bool ok = kr == 0 || (kr > 0 && (strcmp(key, "reason") == 0 ? stm_wire_read_text(&r, reason)
                                                                    : stm_msgread_skip(&r)));
        if (!ok)
            rc = stm_wire_bad(err, "a REFUSE field is malformed");
    }
    if (rc == STM_OK && !*reason)
        *reason = stm_strdup("(no reason given)");
    if (rc != STM_OK) {
        free(*reason);
        *reason = NULL;
    }
    return rc;
}

stm_err stm_wire_decode_ops(const void *data, size_t len, wire_ops *m, stm_error *err)
{
    memset(m, 0, sizeof *m);
    msgread_t r;
    uint32_t nkeys;
    stm_err rc = stm_wire_body(data, len, WIRE_OPS, &r, &nkeys, err);
    bool have_seq = false, have_batch = false, have_part = false, have_parts = false,
         have_bytes = false;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        bool ok;
        int kr = stm_wire_next_key(&r, key, sizeof key);
        if (kr <= 0)
            ok = kr == 0;
        else if (strcmp(key, "seq") == 0)
            ok = have_seq = stm_msgread_uint(&r, &m->seq);
        else if (strcmp(key, "batch") == 0) {
            uint32_t n;
            ok = have_batch = stm_msgread_bin(&r, &m->batch, &n);
            m->batch_len = n;
        } else if (strcmp(key, "part") == 0)
            ok = have_part = stm_msgread_uint(&r, &m->part);
        else if (strcmp(key, "parts") == 0)
            ok = have_parts = stm_msgread_uint(&r, &m->parts);
        else if (strcmp(key, "bytes") == 0)
            ok = have_bytes = stm_msgread_uint(&r, &m->bytes);
        else
            ok = stm_msgread_skip(&r);
        if (!ok)
            rc = stm_wire_bad(err, "an OPS field is malformed");
    }
    if (rc == STM_OK && (!have_seq || !have_batch))
        rc = stm_wire_bad(err, "an OPS lacks seq or batch");
    if (rc == STM_OK && (have_part || have_parts || have_bytes)) {
        if (!have_part || !have_parts || !have_bytes)
            rc = stm_wire_bad(err, "an OPS part lacks part, parts or bytes");
        else if (m->parts < 2 || m->parts > WIRE_MAX_PARTS || m->part >= m->parts)
            rc = stm_wire_bad(err, "an OPS part's number is not below parts, 2 to "
                            S_STR(WIRE_MAX_PARTS));
        else if (m->bytes > WIRE_MAX_BATCH || m->bytes < m->parts)
            rc = stm_wire_bad(err, "an OPS part's batch is over 268435456 bytes or has fewer bytes "
                            "than parts");
        else if (m->batch_len == 0 || m->batch_len > m->bytes)
            rc = stm_wire_bad(err, "an OPS part's slice is empty or longer than its batch");
    }
    if (rc != STM_OK)
        memset(m, 0, sizeof *m);
    return rc;
}

stm_err stm_wire_decode_received(const void *data, size_t len, uint64_t *seq, uint64_t *bytes,
                                 stm_error *err)
{
    msgread_t r;
    uint32_t nkeys;
    stm_err rc = stm_wire_body(data, len, WIRE_RECEIVED, &r, &nkeys, err);
    bool have_seq = false, have_bytes = false;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        bool ok;
        int kr = stm_wire_next_key(&r, key, sizeof key);
        if (kr <= 0)
            ok = kr == 0;
        else if (strcmp(key, "seq") == 0)
            ok = have_seq = stm_msgread_uint(&r, seq);
        else if (strcmp(key, "bytes") == 0)
            ok = have_bytes = stm_msgread_uint(&r, bytes);
        else
            ok = stm_msgread_skip(&r);
        if (!ok)
            rc = stm_wire_bad(err, "a RECEIVED field is malformed");
    }
    if (rc == STM_OK && (!have_seq || !have_bytes))
        rc = stm_wire_bad(err, "a RECEIVED lacks seq or bytes");
    return rc;
}

stm_err stm_wire_decode_ack(const void *data, size_t len, uint64_t *seq, vector_msg *vector,
                            stm_error *err)
{
    msgread_t r;
    uint32_t nkeys;
    memset(vector, 0, sizeof *vector);
    stm_err rc = stm_wire_body(data, len, WIRE_ACK, &r, &nkeys, err);
    bool have_seq = false, have_vector = false;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        int kr = stm_wire_next_key(&r, key, sizeof key);
        if (kr <= 0) {
            if (kr < 0)
                rc = stm_wire_bad(err, "an ACK field is malformed");
        } else if (strcmp(key, "seq") == 0) {
            if (!(have_seq = stm_msgread_uint(&r, seq)))
                rc = stm_wire_bad(err, "an ACK's seq is not a number");
        } else {
            int vr = stm_wire_read_vector_key(key, &r, vector, &have_vector, err);
            if (vr < 0)
                rc = STM_EPROTO;
            else if (vr == 0 && !stm_msgread_skip(&r))
                rc = stm_wire_bad(err, "an ACK field is malformed");
        }
    }
    if (rc == STM_OK && (!have_seq || !have_vector))
        rc = stm_wire_bad(err, "an ACK lacks seq or vector");
    if (rc != STM_OK)
        stm_vector_msg_clear(vector);
    return rc;
}

/* A VECTOR's body, or a GRAFT's (type), which has no vneed. */
static stm_err s_decode_vector(const void *data, size_t len, int type, vector_msg *vector,
                               bool *has_vector, bool *need, stm_error *err)
{
    const char *name = type == WIRE_GRAFT ? "GRAFT" : "VECTOR";
    msgread_t r;
    uint32_t nkeys;
    memset(vector, 0, sizeof *vector);
    *has_vector = *need = false;
    stm_err rc = stm_wire_body(data, len, type, &r, &nkeys, err);
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        int kr = stm_wire_next_key(&r, key, sizeof key);
        if (kr <= 0) {
            if (kr < 0)
                rc = stm_error_set(err, STM_EPROTO, "malformed message: a %s field is malformed",
                                   name);
        } else if (type == WIRE_VECTOR && strcmp(key, "vneed") == 0) {
            if (!stm_msgread_bool(&r, need))
                rc = stm_wire_bad(err, "a VECTOR's vneed is not a bool");
        } else {
            int vr = stm_wire_read_vector_key(key, &r, vector, has_vector, err);
            if (vr < 0)
                rc = STM_EPROTO;
            else if (vr == 0 && !stm_msgread_skip(&r))
                rc = stm_error_set(err, STM_EPROTO, "malformed message: a %s field is malformed",
                                   name);
        }
    }
    if (rc == STM_OK && type == WIRE_GRAFT && !*has_vector)
        rc = stm_wire_bad(err, "a GRAFT lacks its vector");
    if (rc == STM_OK && !*has_vector && !*need)
        rc = stm_wire_bad(err, "a VECTOR has neither vector nor vneed");
    if (rc == STM_OK && !*has_vector && (vector->delta || vector->has_digest))
        rc = stm_wire_bad(err, "a VECTOR has vbase or vdigest without vector");
    if (rc != STM_OK)
        stm_vector_msg_clear(vector);
    return rc;
}

stm_err stm_wire_decode_vector(const void *data, size_t len, vector_msg *vector, bool *has_vector,
                               bool *need, stm_error *err)
{
    return s_decode_vector(data, len, WIRE_VECTOR, vector, has_vector, need, err);
}

stm_err stm_wire_decode_graft(const void *data, size_t len, vector_msg *vector, stm_error *err)
{
    bool has_vector, need;
    return s_decode_vector(data, len, WIRE_GRAFT, vector, &has_vector, &need, err);
}
