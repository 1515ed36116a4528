#include "wire.h"
#include "lineage/mem.h"
#include "lineage/schemaset.h"
#include "sync/capture.h"
#include "sync/msgread.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static const char s_magic[4] = {'S', 'T', 'M', 'W'};

/* ---- encoding ---- */

static int s_write(void *data, const char *bytes, size_t len)
{
    buf_append(data, bytes, len);
    return 0;
}

static void s_header(buf_t *out, wire_type type, msgpack_packer *pk)
{
    buf_append(out, s_magic, 4);
    buf_putc(out, (char)WIRE_VERSION);
    buf_putc(out, (char)type);
    msgpack_packer_init(pk, out, s_write);
}

static void s_key(msgpack_packer *pk, const char *key)
{
    msgpack_pack_str_with_body(pk, key, strlen(key));
}

static void s_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void s_id(msgpack_packer *pk, const stm_id *id)
{
    msgpack_pack_bin_with_body(pk, id->bytes, STM_ID_BYTES);
}

void wire_encode_empty(buf_t *out, wire_type type)
{
    msgpack_packer pk;
    s_header(out, type, &pk);
    msgpack_pack_map(&pk, 0);
}

static void s_pack_family(msgpack_packer *pk, const family_t *f)
{
    msgpack_pack_array(pk, 3);
    s_str(pk, family_name(f));
    msgpack_pack_array(pk, family_count(f));
    for (size_t i = 0; i < family_count(f); i++)
        s_id(pk, &family_entry_at(f, i)->head);
    const catalog_table *t = family_table(f);
    if (!t) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_array(pk, catalog_table_count(t));
    for (size_t i = 0; i < catalog_table_count(t); i++) {
        const catalog_column *c = catalog_table_column(t, i);
        msgpack_pack_array(pk, 4);
        s_str(pk, c->name);
        msgpack_pack_uint8(pk, (uint8_t)capture_affinity_code(c->affinity));
        msgpack_pack_uint32(pk, (uint32_t)c->pk);
        msgpack_pack_uint32(pk, (uint32_t)c->hidden);
    }
}

void wire_encode_hello(buf_t *out, const stm_id *node_id, const char *endpoint,
                       const lineage_t *lineage, const vector_t *vector, int min_supported,
                       const wire_peer *peers, size_t npeers, bool reply)
{
    msgpack_packer pk;
    s_header(out, WIRE_HELLO, &pk);
    msgpack_pack_map(&pk, 10);
    s_key(&pk, "reply");
    if (reply)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    s_key(&pk, "node");
    s_id(&pk, node_id);
    s_key(&pk, "endpoint");
    s_str(&pk, endpoint);
    s_key(&pk, "schema_set");
    s_str(&pk, lineage_name(lineage));
    s_key(&pk, "lineage");
    msgpack_pack_array(&pk, lineage_count(lineage));
    for (size_t i = 0; i < lineage_count(lineage); i++)
        s_id(&pk, &lineage_version_at(lineage, i)->id);
    s_key(&pk, "families");
    msgpack_pack_array(&pk, lineage_family_count(lineage));
    for (size_t i = 0; i < lineage_family_count(lineage); i++)
        s_pack_family(&pk, lineage_family_at(lineage, i));
    s_key(&pk, "vector");
    vector_encode(vector, out); /* the packer writes straight into out, so this follows */
    s_key(&pk, "min_supported_version");
    msgpack_pack_uint32(&pk, (uint32_t)(min_supported > 0 ? min_supported : 0));
    s_key(&pk, "capabilities");
    msgpack_pack_array(&pk, 1);
    s_str(&pk, "ops.v1");
    s_key(&pk, "peers");
    msgpack_pack_array(&pk, npeers);
    for (size_t i = 0; i < npeers; i++) {
        msgpack_pack_array(&pk, 2);
        s_id(&pk, &peers[i].id);
        s_str(&pk, peers[i].endpoint);
    }
}

void wire_encode_refuse(buf_t *out, const char *reason)
{
    msgpack_packer pk;
    s_header(out, WIRE_REFUSE, &pk);
    msgpack_pack_map(&pk, 1);
    s_key(&pk, "reason");
    s_str(&pk, reason);
}

void wire_encode_ops(buf_t *out, uint64_t seq, const void *batch, size_t batch_len)
{
    msgpack_packer pk;
    s_header(out, WIRE_OPS, &pk);
    msgpack_pack_map(&pk, 2);
    s_key(&pk, "seq");
    msgpack_pack_uint64(&pk, seq);
    s_key(&pk, "batch");
    msgpack_pack_bin_with_body(&pk, batch, batch_len);
}

void wire_encode_ack(buf_t *out, uint64_t seq, const vector_t *vector)
{
    msgpack_packer pk;
    s_header(out, WIRE_ACK, &pk);
    msgpack_pack_map(&pk, 2);
    s_key(&pk, "seq");
    msgpack_pack_uint64(&pk, seq);
    s_key(&pk, "vector");
    vector_encode(vector, out);
}

/* ---- decoding ---- */

static stm_err s_bad(stm_error *err, const char *what)
{
    return stm_error_set(err, STM_EPROTO, "malformed message: %s", what);
}

stm_err wire_header(const void *data, size_t len, int *version, int *type, stm_error *err)
{
    if (len < WIRE_HEADER_BYTES || memcmp(data, s_magic, 4) != 0)
        return s_bad(err, "not a stemma message (wrong magic)");
    const unsigned char *p = data;
    *version = p[4];
    *type = p[5];
    return STM_OK;
}

/* Opens the body of a message of the given type: the map and its key count. */
static stm_err s_body(const void *data, size_t len, wire_type type, msgread_t *r, uint32_t *nkeys,
                      stm_error *err)
{
    int version = 0, got = 0;
    stm_err rc = wire_header(data, len, &version, &got, err);
    if (rc != STM_OK)
        return rc;
    if (version != WIRE_VERSION || got != (int)type)
        return s_bad(err, "unexpected version or type");
    msgread_init(r, (const char *)data + WIRE_HEADER_BYTES, len - WIRE_HEADER_BYTES);
    if (!msgread_map(r, nkeys))
        return s_bad(err, "the body is not a map");
    return STM_OK;
}

/* Reads a map key into a small buffer: 1 when it fits; 0 for a longer key (read, so
 * a key no field has; its value is still to be skipped); -1 when it is not a string. */
static int s_read_key(msgread_t *r, char *key, size_t size)
{
    const char *k;
    uint32_t n;
    if (!msgread_str(r, &k, &n))
        return -1;
    if (n >= size)
        return 0;
    memcpy(key, k, n);
    key[n] = '\0';
    return 1;
}

/* The common start of each field: reads the key, or skips a field no one knows.
 * Returns 1 for a key to look at, 0 for a field skipped, -1 for malformed input. */
static int s_next_key(msgread_t *r, char *key, size_t size)
{
    int kr = s_read_key(r, key, size);
    if (kr == 0)
        return msgread_skip(r) ? 0 : -1;
    return kr;
}

static bool s_read_text(msgread_t *r, char **out)
{
    const char *s;
    uint32_t n;
    if (!msgread_str(r, &s, &n) || n > WIRE_MAX_TEXT || memchr(s, '\0', n))
        return false;
    free(*out);
    *out = stm_strndup(s, n);
    return true;
}

static bool s_read_id(msgread_t *r, stm_id *id)
{
    const void *p;
    uint32_t n;
    if (!msgread_bin(r, &p, &n) || n != STM_ID_BYTES)
        return false;
    memcpy(id->bytes, p, STM_ID_BYTES);
    return true;
}

/* A vector embedded in a body: its extent is found by skipping it. */
static stm_err s_read_vector(msgread_t *r, vector_t **out, stm_error *err)
{
    const unsigned char *start = r->p;
    if (!msgread_skip(r))
        return s_bad(err, "the vector is malformed");
    vector_destroy(out);
    return vector_decode(start, (size_t)(r->p - start), out, err);
}

static bool s_read_lineage(msgread_t *r, lineage_t *l)
{
    uint32_t n;
    if (!msgread_array(r, &n) || n > SCHEMASET_MAX_VERSIONS)
        return false;
    stm_id parent = {{0}}, zero = {{0}};
    for (uint32_t i = 0; i < n; i++) {
        stm_id id;
        if (!s_read_id(r, &id) ||
            lineage_add_version(l, (int)i + 1, &id, &parent, &zero, "", NULL) != STM_OK)
            return false;
        parent = id;
    }
    return true;
}

static int s_name_cmp(const void *a, const void *b)
{
    return sqlite3_stricmp(*(const char *const *)a, *(const char *const *)b);
}

/* True when two columns of t have the same name (case folded, as catalog_table_find
 * compares them). Sorted, so a peer's WIRE_MAX_COLUMNS columns cost n log n: looking
 * each up as it came cost n squared, seconds of the node's loop for one message. */
static bool s_has_duplicate_column(const catalog_table *t)
{
    size_t n = catalog_table_count(t);
    const char **names = stm_malloc((n ? n : 1) * sizeof *names);
    for (size_t i = 0; i < n; i++)
        names[i] = catalog_table_column(t, i)->name;
    qsort(names, n, sizeof *names, s_name_cmp);
    bool dup = false;
    for (size_t i = 1; i < n && !dup; i++)
        dup = sqlite3_stricmp(names[i - 1], names[i]) == 0;
    free(names);
    return dup;
}

static bool s_read_columns(msgread_t *r, catalog_table *t)
{
    uint32_t n;
    if (!msgread_array(r, &n) || n > WIRE_MAX_COLUMNS)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fields;
        const char *name;
        uint32_t name_len;
        uint64_t aff, pk, hidden;
        if (!msgread_array(r, &fields) || fields < 4 || !msgread_str(r, &name, &name_len) ||
            name_len == 0 || name_len > WIRE_MAX_TEXT || memchr(name, '\0', name_len) ||
            !msgread_uint(r, &aff) || !msgread_uint(r, &pk) || !msgread_uint(r, &hidden) ||
            pk > WIRE_MAX_COLUMNS || hidden > 3)
            return false;
        for (uint32_t k = 4; k < fields; k++)
            if (!msgread_skip(r))
                return false;
        static const struct {
            char code;
            catalog_affinity a;
        } codes[] = {{'T', AFFINITY_TEXT}, {'N', AFFINITY_NUMERIC}, {'I', AFFINITY_INTEGER},
                     {'R', AFFINITY_REAL}, {'B', AFFINITY_BLOB}};
        int found = -1;
        for (int k = 0; k < 5; k++)
            if ((uint64_t)(unsigned char)codes[k].code == aff)
                found = k;
        if (found < 0)
            return false;
        char *col_name = stm_strndup(name, name_len);
        catalog_column c = {.name = col_name, .decltype = "", .affinity = codes[found].a,
                            .pk = (int)pk, .hidden = (int)hidden};
        catalog_table_add_column(t, &c);
        free(col_name);
    }
    return !s_has_duplicate_column(t);
}

static bool s_read_families(msgread_t *r, lineage_t *l)
{
    uint32_t n;
    if (!msgread_array(r, &n) || n > WIRE_MAX_FAMILIES)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fields, nheads;
        char *name = NULL;
        if (!msgread_array(r, &fields) || fields < 3 || !s_read_text(r, &name) || !*name ||
            !msgread_array(r, &nheads) || nheads > SCHEMASET_MAX_VERSIONS) {
            free(name);
            return false;
        }
        stm_id *heads = stm_malloc((nheads ? nheads : 1) * sizeof *heads);
        bool ok = true;
        for (uint32_t k = 0; k < nheads && ok; k++)
            ok = s_read_id(r, &heads[k]);
        catalog_table *t = NULL;
        if (ok && !msgread_nil(r)) {
            t = catalog_table_new(name, false);
            ok = s_read_columns(r, t);
        }
        for (uint32_t k = 3; k < fields && ok; k++)
            ok = msgread_skip(r);
        if (ok && nheads == 0)
            ok = false; /* a family without history is not sent */
        if (!ok) {
            catalog_table_destroy(&t);
            free(heads);
            free(name);
            return false;
        }
        family_t *f = family_from_heads(name, heads, nheads, t);
        free(heads);
        free(name);
        if (lineage_add_family(l, f, NULL) != STM_OK)
            return false;
    }
    return true;
}

static bool s_read_peers(msgread_t *r, wire_hello *h)
{
    uint32_t n;
    if (!msgread_array(r, &n) || n > WIRE_MAX_PEERS)
        return false;
    h->peers = stm_calloc(n + 1, sizeof *h->peers);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fields;
        if (!msgread_array(r, &fields) || fields < 2 || !s_read_id(r, &h->peers[i].id) ||
            !s_read_text(r, &h->peers[i].endpoint))
            return false;
        h->npeers++;
        for (uint32_t k = 2; k < fields; k++)
            if (!msgread_skip(r))
                return false;
    }
    return true;
}

static bool s_read_capabilities(msgread_t *r, wire_hello *h)
{
    uint32_t n;
    if (!msgread_array(r, &n) || n > 64)
        return false;
    h->capabilities = stm_calloc(n + 1, sizeof *h->capabilities);
    for (uint32_t i = 0; i < n; i++) {
        if (!s_read_text(r, &h->capabilities[i]))
            return false;
        h->ncapabilities++;
    }
    return true;
}

stm_err wire_decode_hello(const void *data, size_t len, wire_hello *h, stm_error *err)
{
    memset(h, 0, sizeof *h);
    msgread_t r;
    uint32_t nkeys;
    stm_err rc = s_body(data, len, WIRE_HELLO, &r, &nkeys, err);
    if (rc != STM_OK)
        return rc;
    bool have_node = false, have_lineage = false, have_vector = false;
    char *schema_set = NULL;
    lineage_t *lineage = NULL;
    const unsigned char *families_at = NULL;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        int kr = s_next_key(&r, key, sizeof key);
        if (kr <= 0) {
            if (kr < 0)
                rc = s_bad(err, "a HELLO key is malformed");
            continue;
        }
        bool ok = true;
        if (strcmp(key, "node") == 0)
            ok = have_node = s_read_id(&r, &h->node_id);
        else if (strcmp(key, "endpoint") == 0)
            ok = s_read_text(&r, &h->endpoint);
        else if (strcmp(key, "schema_set") == 0)
            ok = s_read_text(&r, &schema_set);
        else if (strcmp(key, "lineage") == 0 && !lineage) {
            lineage = lineage_new("");
            ok = have_lineage = s_read_lineage(&r, lineage);
        } else if (strcmp(key, "families") == 0 && !families_at) {
            /* Families go into the lineage, which may come later in the map. */
            families_at = r.p;
            ok = msgread_skip(&r);
        } else if (strcmp(key, "vector") == 0)
            ok = have_vector = s_read_vector(&r, &h->vector, err) == STM_OK;
        else if (strcmp(key, "min_supported_version") == 0) {
            uint64_t v;
            ok = msgread_uint(&r, &v) && v <= SCHEMASET_MAX_VERSIONS;
            h->min_supported_version = (int)v;
        } else if (strcmp(key, "capabilities") == 0 && !h->capabilities)
            ok = s_read_capabilities(&r, h);
        else if (strcmp(key, "peers") == 0 && !h->peers)
            ok = s_read_peers(&r, h);
        else if (strcmp(key, "reply") == 0)
            ok = msgread_bool(&r, &h->reply);
        else
            ok = msgread_skip(&r);
        if (!ok)
            rc = s_bad(err, "a HELLO field is missing its value or out of its limits");
    }
    if (rc == STM_OK && (!have_node || !have_lineage || !have_vector || !h->endpoint))
        rc = s_bad(err, "a HELLO lacks node, endpoint, lineage or vector");
    if (rc == STM_OK) {
        /* The lineage was made before its name was known: rebuild it with the name. */
        lineage_t *named = lineage_new(schema_set ? schema_set : "");
        for (size_t i = 0; i < lineage_count(lineage); i++) {
            const lineage_version *v = lineage_version_at(lineage, i);
            lineage_add_version(named, v->number, &v->id, &v->parent, &v->checksum, "", NULL);
        }
        if (families_at) {
            msgread_t fr;
            msgread_init(&fr, families_at, (size_t)(r.end - families_at));
            if (!s_read_families(&fr, named))
                rc = s_bad(err, "a HELLO's families are malformed or out of their limits");
        }
        h->lineage = named;
        h->schema_set = schema_set;
        schema_set = NULL;
    }
    lineage_destroy(&lineage);
    free(schema_set);
    if (rc != STM_OK)
        wire_hello_clear(h);
    return rc;
}

void wire_hello_clear(wire_hello *h)
{
    free(h->endpoint);
    free(h->schema_set);
    lineage_destroy(&h->lineage);
    vector_destroy(&h->vector);
    for (size_t i = 0; i < h->ncapabilities; i++)
        free(h->capabilities[i]);
    free(h->capabilities);
    for (size_t i = 0; i < h->npeers; i++)
        free(h->peers[i].endpoint);
    free(h->peers);
    memset(h, 0, sizeof *h);
}

stm_err wire_decode_refuse(const void *data, size_t len, char **reason, stm_error *err)
{
    msgread_t r;
    uint32_t nkeys;
    stm_err rc = s_body(data, len, WIRE_REFUSE, &r, &nkeys, err);
    *reason = NULL;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        int kr = s_next_key(&r, key, sizeof key);
        bool ok = kr == 0 || (kr > 0 && (strcmp(key, "reason") == 0 ? s_read_text(&r, reason)
                                                                      : msgread_skip(&r)));
        if (!ok)
            rc = s_bad(err, "a REFUSE field is malformed");
    }
    if (rc == STM_OK && !*reason)
        *reason = stm_strdup("(no reason given)");
    if (rc != STM_OK) {
        free(*reason);
        *reason = NULL;
    }
    return rc;
}

stm_err wire_decode_ops(const void *data, size_t len, uint64_t *seq, const void **batch,
                        size_t *batch_len, stm_error *err)
{
    msgread_t r;
    uint32_t nkeys;
    stm_err rc = s_body(data, len, WIRE_OPS, &r, &nkeys, err);
    bool have_seq = false, have_batch = false;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        bool ok;
        int kr = s_next_key(&r, key, sizeof key);
        if (kr <= 0)
            ok = kr == 0;
        else if (strcmp(key, "seq") == 0)
            ok = have_seq = msgread_uint(&r, seq);
        else if (strcmp(key, "batch") == 0) {
            uint32_t n;
            ok = have_batch = msgread_bin(&r, batch, &n);
            *batch_len = n;
        } else
            ok = msgread_skip(&r);
        if (!ok)
            rc = s_bad(err, "an OPS field is malformed");
    }
    if (rc == STM_OK && (!have_seq || !have_batch))
        rc = s_bad(err, "an OPS lacks seq or batch");
    return rc;
}

stm_err wire_decode_ack(const void *data, size_t len, uint64_t *seq, vector_t **vector,
                        stm_error *err)
{
    msgread_t r;
    uint32_t nkeys;
    *vector = NULL;
    stm_err rc = s_body(data, len, WIRE_ACK, &r, &nkeys, err);
    bool have_seq = false;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        int kr = s_next_key(&r, key, sizeof key);
        if (kr <= 0) {
            if (kr < 0)
                rc = s_bad(err, "an ACK field is malformed");
        } else if (strcmp(key, "seq") == 0) {
            if (!(have_seq = msgread_uint(&r, seq)))
                rc = s_bad(err, "an ACK's seq is not a number");
        } else if (strcmp(key, "vector") == 0) {
            rc = s_read_vector(&r, vector, err);
        } else if (!msgread_skip(&r)) {
            rc = s_bad(err, "an ACK field is malformed");
        }
    }
    if (rc == STM_OK && (!have_seq || !*vector))
        rc = s_bad(err, "an ACK lacks seq or vector");
    if (rc != STM_OK)
        vector_destroy(vector);
    return rc;
}
