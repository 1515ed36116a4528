#include "wire.h"
#include "base/mem.h"
#include "lineage/schemaset.h"
#include "sync/capture.h"
#include "sync/msgread.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static const char s_magic[4] = {'S', 'T', 'M', 'W'};

_Static_assert(WIRE_MAX_VERSIONS == SCHEMASET_MAX_VERSIONS,
               "a database's every version fits in a HELLO");
_Static_assert(WIRE_MAX_BATCH == 268435456u, "the messages quote WIRE_MAX_BATCH");
_Static_assert(WIRE_PART_BYTES + WIRE_OPS_OVERHEAD <= WIRE_MAX_MESSAGE,
               "a part fits in a message");

/* A limit in a message: "10000" from WIRE_MAX_FAMILIES. */
#define S_STR(x) S_STR2(x)
#define S_STR2(x) #x

/* ---- encoding ---- */

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

static void s_header(buf_t *out, wire_type type, msgpack_packer *pk)
{
    stm_buf_append(out, s_magic, 4);
    stm_buf_putc(out, (char)WIRE_VERSION);
    stm_buf_putc(out, (char)type);
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

void stm_wire_encode_empty(buf_t *out, wire_type type)
{
    msgpack_packer pk;
    s_header(out, type, &pk);
    msgpack_pack_map(&pk, 0);
}

static void s_pack_family(msgpack_packer *pk, const family_t *f)
{
    msgpack_pack_array(pk, 3);
    s_str(pk, stm_family_name(f));
    msgpack_pack_array(pk, stm_family_count(f));
    for (size_t i = 0; i < stm_family_count(f); i++)
        s_id(pk, &stm_family_entry_at(f, i)->head);
    const catalog_table *t = stm_family_table(f);
    if (!t) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_array(pk, stm_catalog_table_count(t));
    for (size_t i = 0; i < stm_catalog_table_count(t); i++) {
        const catalog_column *c = stm_catalog_table_column(t, i);
        msgpack_pack_array(pk, 4);
        s_str(pk, c->name);
        msgpack_pack_uint8(pk, (uint8_t)stm_capture_affinity_code(c->affinity));
        msgpack_pack_uint32(pk, (uint32_t)c->pk);
        msgpack_pack_uint32(pk, (uint32_t)c->hidden);
    }
}

void stm_wire_encode_hello(buf_t *out, const stm_id *node_id, const char *endpoint,
                           const char *name, const lineage_t *lineage, const vector_t *vector,
                           int min_supported, const wire_peer *peers, size_t npeers, bool reply,
                           const lens_set_t *lenses)
{
    msgpack_packer pk;
    s_header(out, WIRE_HELLO, &pk);
    msgpack_pack_map(&pk, lenses ? 12 : 11);
    s_key(&pk, "reply");
    if (reply)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    s_key(&pk, "node");
    s_id(&pk, node_id);
    s_key(&pk, "endpoint");
    s_str(&pk, endpoint);
    s_key(&pk, "name");
    s_str(&pk, name);
    s_key(&pk, "schema_set");
    s_str(&pk, stm_lineage_name(lineage));
    s_key(&pk, "lineage");
    msgpack_pack_array(&pk, stm_lineage_count(lineage));
    for (size_t i = 0; i < stm_lineage_count(lineage); i++)
        s_id(&pk, &stm_lineage_version_at(lineage, i)->id);
    s_key(&pk, "families");
    msgpack_pack_array(&pk, stm_lineage_family_count(lineage));
    for (size_t i = 0; i < stm_lineage_family_count(lineage); i++)
        s_pack_family(&pk, stm_lineage_family_at(lineage, i));
    s_key(&pk, "vector");
    stm_vector_encode(vector, out); /* the packer writes straight into out, so this follows */
    s_key(&pk, "min_supported_version");
    msgpack_pack_uint32(&pk, (uint32_t)(min_supported > 0 ? min_supported : 0));
    s_key(&pk, "capabilities");
    msgpack_pack_array(&pk, 3);
    s_str(&pk, "ops.v1");
    s_str(&pk, WIRE_CAP_ROUTE);
    s_str(&pk, WIRE_CAP_PARTS);
    s_key(&pk, "peers");
    msgpack_pack_array(&pk, npeers);
    for (size_t i = 0; i < npeers; i++) {
        msgpack_pack_array(&pk, 2);
        s_id(&pk, &peers[i].id);
        s_str(&pk, peers[i].endpoint);
    }
    if (lenses) {
        s_key(&pk, "lenses");
        stm_wire_pack_lenses(&pk, lenses, stm_lineage_count(lineage));
    }
}

void stm_wire_encode_refuse(buf_t *out, const char *reason)
{
    msgpack_packer pk;
    s_header(out, WIRE_REFUSE, &pk);
    msgpack_pack_map(&pk, 1);
    s_key(&pk, "reason");
    s_str(&pk, reason);
}

void stm_wire_encode_ops(buf_t *out, uint64_t seq, const void *batch, size_t batch_len)
{
    msgpack_packer pk;
    s_header(out, WIRE_OPS, &pk);
    msgpack_pack_map(&pk, 2);
    s_key(&pk, "seq");
    msgpack_pack_uint64(&pk, seq);
    s_key(&pk, "batch");
    msgpack_pack_bin_with_body(&pk, batch, batch_len);
}

void stm_wire_encode_ops_part(buf_t *out, uint64_t seq, uint64_t part, uint64_t parts,
                              uint64_t bytes, const void *slice, size_t part_len)
{
    msgpack_packer pk;
    s_header(out, WIRE_OPS, &pk);
    msgpack_pack_map(&pk, 5);
    s_key(&pk, "seq");
    msgpack_pack_uint64(&pk, seq);
    s_key(&pk, "part");
    msgpack_pack_uint64(&pk, part);
    s_key(&pk, "parts");
    msgpack_pack_uint64(&pk, parts);
    s_key(&pk, "bytes");
    msgpack_pack_uint64(&pk, bytes);
    s_key(&pk, "batch");
    msgpack_pack_bin_with_body(&pk, slice, part_len);
}

void stm_wire_encode_received(buf_t *out, uint64_t seq, uint64_t bytes)
{
    msgpack_packer pk;
    s_header(out, WIRE_RECEIVED, &pk);
    msgpack_pack_map(&pk, 2);
    s_key(&pk, "seq");
    msgpack_pack_uint64(&pk, seq);
    s_key(&pk, "bytes");
    msgpack_pack_uint64(&pk, bytes);
}

void stm_wire_encode_ack(buf_t *out, uint64_t seq, const vector_t *vector)
{
    msgpack_packer pk;
    s_header(out, WIRE_ACK, &pk);
    msgpack_pack_map(&pk, 2);
    s_key(&pk, "seq");
    msgpack_pack_uint64(&pk, seq);
    s_key(&pk, "vector");
    stm_vector_encode(vector, out);
}

/* ---- decoding ---- */

static stm_err s_bad(stm_error *err, const char *what)
{
    return stm_error_set(err, STM_EPROTO, "malformed message: %s", what);
}

stm_err stm_wire_header(const void *data, size_t len, int *version, int *type, stm_error *err)
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
    stm_err rc = stm_wire_header(data, len, &version, &got, err);
    if (rc != STM_OK)
        return rc;
    if (version != WIRE_VERSION || got != (int)type)
        return s_bad(err, "unexpected version or type");
    stm_msgread_init(r, (const char *)data + WIRE_HEADER_BYTES, len - WIRE_HEADER_BYTES);
    if (!stm_msgread_map(r, nkeys))
        return s_bad(err, "the body is not a map");
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
static int s_next_key(msgread_t *r, char *key, size_t size)
{
    int kr = s_read_key(r, key, size);
    if (kr == 0)
        return stm_msgread_skip(r) ? 0 : -1;
    return kr;
}

/* True when s holds a control character (NUL, newline, escape, ... DEL): a peer's
 * text goes into log lines, reports and terminals, where one could forge a line or
 * drive the terminal. */
static bool s_has_control(const char *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

static bool s_read_text(msgread_t *r, char **out)
{
    const char *s;
    uint32_t n;
    if (!stm_msgread_str(r, &s, &n) || n > WIRE_MAX_TEXT || s_has_control(s, n))
        return false;
    free(*out);
    *out = stm_strndup(s, n);
    return true;
}

static bool s_read_id(msgread_t *r, stm_id *id)
{
    const void *p;
    uint32_t n;
    if (!stm_msgread_bin(r, &p, &n) || n != STM_ID_BYTES)
        return false;
    memcpy(id->bytes, p, STM_ID_BYTES);
    return true;
}

/* A vector embedded in a body: its extent is found by skipping it. */
static stm_err s_read_vector(msgread_t *r, vector_t **out, stm_error *err)
{
    const unsigned char *start = r->p;
    if (!stm_msgread_skip(r))
        return s_bad(err, "the vector is malformed");
    stm_vector_destroy(out);
    return stm_vector_decode(start, (size_t)(r->p - start), out, err);
}

/* An array header announcing at most max elements, each of which takes at least
 * min_bytes of what is left: every count is checked against the limit and against the
 * bytes that would have to follow before anything is sized by it. */
static bool s_array(msgread_t *r, uint32_t max, size_t min_bytes, uint32_t *n)
{
    msgread_t save = *r;
    if (!stm_msgread_array(r, n) || *n > max || (uint64_t)*n * min_bytes > stm_msgread_left(r)) {
        *r = save;
        return false;
    }
    return true;
}

/* What one HELLO may still cost: versions, family heads and columns count against
 * WIRE_MAX_ITEMS together. */
typedef struct {
    size_t items; /* counted so far */
} s_budget;

static bool s_spend(s_budget *b, size_t n)
{
    if (n > WIRE_MAX_ITEMS - b->items)
        return false;
    b->items += n;
    return true;
}

/* Each reader below returns NULL, or what is wrong, for the error message. */

static const char *s_read_lineage(msgread_t *r, lineage_t *l, s_budget *b)
{
    uint32_t n;
    if (!s_array(r, WIRE_MAX_VERSIONS, WIRE_MIN_ID_BYTES, &n))
        return "its lineage is not an array of at most " S_STR(WIRE_MAX_VERSIONS) " ids";
    if (!s_spend(b, n))
        return "it describes more than " S_STR(WIRE_MAX_ITEMS) " versions, heads and columns";
    stm_lineage_reserve(l, n);
    stm_id parent = {{0}}, zero = {{0}};
    for (uint32_t i = 0; i < n; i++) {
        stm_id id;
        if (!s_read_id(r, &id) ||
            stm_lineage_add_version(l, (int)i + 1, &id, &parent, &zero, "", NULL) != STM_OK)
            return "a version id in its lineage is not 32 bytes of bin";
        parent = id;
    }
    return NULL;
}

static const char *s_read_columns(msgread_t *r, catalog_table *t, s_budget *b)
{
    uint32_t n;
    if (!s_array(r, WIRE_MAX_COLUMNS, WIRE_MIN_COLUMN_BYTES, &n))
        return "a family's columns are not an array of at most " S_STR(WIRE_MAX_COLUMNS);
    if (!s_spend(b, n))
        return "it describes more than " S_STR(WIRE_MAX_ITEMS) " versions, heads and columns";
    stm_catalog_table_reserve(t, n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fields;
        const char *name;
        uint32_t name_len;
        uint64_t aff, pk, hidden;
        if (!stm_msgread_array(r, &fields) || fields < 4 || !stm_msgread_str(r, &name, &name_len) ||
            name_len == 0 || name_len > WIRE_MAX_TEXT || s_has_control(name, name_len) ||
            !stm_msgread_uint(r, &aff) || !stm_msgread_uint(r, &pk) ||
            !stm_msgread_uint(r, &hidden) || pk > WIRE_MAX_COLUMNS || hidden > 3)
            return "a column is not [name, affinity, pk, hidden] within their limits (a name "
                   "of 1 to " S_STR(WIRE_MAX_TEXT) " bytes and no control character)";
        for (uint32_t k = 4; k < fields; k++)
            if (!stm_msgread_skip(r))
                return "a column's extra field is malformed";
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
            return "a column's affinity is not one of T N I R B";
        char *col_name = stm_strndup(name, name_len);
        catalog_column c = {.name = col_name, .decltype = "", .affinity = codes[found].a,
                            .pk = (int)pk, .hidden = (int)hidden};
        stm_catalog_table_add_column(t, &c);
        free(col_name);
    }
    /* Sorted, so a peer's widest table costs n log n: looking each name up as it came
     * cost n squared (tests/data/fuzz/judge/dup-column-case). */
    return stm_catalog_table_duplicate(t) ? "a column name comes twice in a family" : NULL;
}

/* One family: [name, heads, columns | nil, ...]. *out is the caller's on success. */
static const char *s_read_family(msgread_t *r, size_t nversions, s_budget *b, family_t **out)
{
    uint32_t fields, nheads;
    char *name = NULL;
    if (!stm_msgread_array(r, &fields) || fields < 3 || !s_read_text(r, &name) || !*name) {
        free(name);
        return "a family is not [name, heads, columns] with a name of 1 to "
               S_STR(WIRE_MAX_TEXT) " bytes and no control character";
    }
    /* Each head is a version at which the table changed: never more than the versions. */
    if (!s_array(r, (uint32_t)nversions, WIRE_MIN_ID_BYTES, &nheads) || nheads == 0) {
        free(name);
        return "a family's heads are not an array of 1 id to as many as its lineage has "
               "versions";
    }
    if (!s_spend(b, nheads)) {
        free(name);
        return "it describes more than " S_STR(WIRE_MAX_ITEMS) " versions, heads and columns";
    }
    stm_id *heads = stm_malloc(nheads * sizeof *heads);
    const char *why = NULL;
    for (uint32_t k = 0; k < nheads && !why; k++)
        if (!s_read_id(r, &heads[k]))
            why = "a family head is not 32 bytes of bin";
    catalog_table *t = NULL;
    if (!why && !stm_msgread_nil(r)) {
        t = stm_catalog_table_new(name, false);
        why = s_read_columns(r, t, b);
    }
    for (uint32_t k = 3; k < fields && !why; k++)
        if (!stm_msgread_skip(r))
            why = "a family's extra field is malformed";
    if (why)
        stm_catalog_table_destroy(&t);
    else
        *out = stm_family_from_heads(name, heads, nheads, t);
    free(heads);
    free(name);
    return why;
}

static int s_family_cmp(const void *a, const void *b)
{
    return sqlite3_stricmp(stm_family_name(*(family_t *const *)a),
                           stm_family_name(*(family_t *const *)b));
}

static const char *s_read_families(msgread_t *r, lineage_t *l, s_budget *b)
{
    uint32_t n;
    if (!s_array(r, WIRE_MAX_FAMILIES, WIRE_MIN_FAMILY_BYTES, &n))
        return "its families are not an array of at most " S_STR(WIRE_MAX_FAMILIES);
    family_t **fs = stm_calloc(n + 1, sizeof *fs);
    const char *why = NULL;
    size_t count = 0;
    for (; count < n && !why; count++)
        why = s_read_family(r, stm_lineage_count(l), b, &fs[count]);
    /* Sorted first, then added in order: each goes at the end of the lineage's sorted
     * list, where adding them as they came would move n squared pointers. */
    if (!why) {
        qsort(fs, count, sizeof *fs, s_family_cmp);
        for (size_t i = 1; i < count && !why; i++)
            if (s_family_cmp(&fs[i - 1], &fs[i]) == 0)
                why = "a family name comes twice (ignoring ASCII case)";
    }
    for (size_t i = 0; i < count; i++) {
        if (!why && stm_lineage_add_family(l, fs[i], NULL) != STM_OK)
            why = "a family name comes twice (ignoring ASCII case)"; /* f was taken */
        else if (why)
            stm_family_destroy(&fs[i]);
    }
    free(fs);
    return why;
}

static const char *s_read_peers(msgread_t *r, wire_hello *h)
{
    uint32_t n;
    if (!s_array(r, WIRE_MAX_PEERS, WIRE_MIN_PEER_BYTES, &n))
        return "its peers are not an array of at most " S_STR(WIRE_MAX_PEERS);
    h->peers = stm_calloc(n + 1, sizeof *h->peers);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fields;
        if (!stm_msgread_array(r, &fields) || fields < 2 || !s_read_id(r, &h->peers[i].id) ||
            !s_read_text(r, &h->peers[i].endpoint))
            return "a peer is not [id, endpoint]";
        h->npeers++;
        for (uint32_t k = 2; k < fields; k++)
            if (!stm_msgread_skip(r))
                return "a peer's extra field is malformed";
    }
    return NULL;
}

static const char *s_read_capabilities(msgread_t *r, wire_hello *h)
{
    uint32_t n;
    if (!s_array(r, WIRE_MAX_CAPABILITIES, 1, &n))
        return "its capabilities are not an array of at most " S_STR(WIRE_MAX_CAPABILITIES);
    h->capabilities = stm_calloc(n + 1, sizeof *h->capabilities);
    for (uint32_t i = 0; i < n; i++) {
        if (!s_read_text(r, &h->capabilities[i]))
            return "a capability is not a text";
        h->ncapabilities++;
    }
    return NULL;
}

stm_err stm_wire_decode_hello(const void *data, size_t len, wire_hello *h, stm_error *err)
{
    memset(h, 0, sizeof *h);
    msgread_t r;
    uint32_t nkeys;
    stm_err rc = s_body(data, len, WIRE_HELLO, &r, &nkeys, err);
    if (rc != STM_OK)
        return rc;
    bool have_node = false, have_vector = false;
    char *schema_set = NULL;
    /* The lineage and the families are read after the map: the lineage needs the
     * schema set's name, and the families the lineage, which may come in any order. */
    const unsigned char *lineage_at = NULL, *families_at = NULL, *lenses_at = NULL;
    const char *why = NULL;
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
        else if (strcmp(key, "name") == 0)
            ok = s_read_text(&r, &h->name) && strlen(h->name) <= WIRE_MAX_NAME;
        else if ((strcmp(key, "lineage") == 0 && !lineage_at) ||
                 (strcmp(key, "families") == 0 && !families_at) ||
                 (strcmp(key, "lenses") == 0 && !lenses_at)) {
            *(key[0] == 'f' ? &families_at : key[1] == 'i' ? &lineage_at : &lenses_at) = r.p;
            ok = stm_msgread_skip(&r);
        } else if (strcmp(key, "vector") == 0)
            ok = have_vector = s_read_vector(&r, &h->vector, err) == STM_OK;
        else if (strcmp(key, "min_supported_version") == 0) {
            uint64_t v;
            ok = stm_msgread_uint(&r, &v) && v <= SCHEMASET_MAX_VERSIONS;
            h->min_supported_version = (int)v;
        } else if (strcmp(key, "capabilities") == 0 && !h->capabilities)
            ok = !(why = s_read_capabilities(&r, h));
        else if (strcmp(key, "peers") == 0 && !h->peers)
            ok = !(why = s_read_peers(&r, h));
        else if (strcmp(key, "reply") == 0)
            ok = stm_msgread_bool(&r, &h->reply);
        else
            ok = stm_msgread_skip(&r);
        if (!ok && why)
            rc = stm_error_set(err, STM_EPROTO, "malformed message: a HELLO: %s", why);
        else if (!ok)
            rc = stm_error_set(err, STM_EPROTO,
                               "malformed message: a HELLO's %s is malformed or out of its "
                               "limits", key);
    }
    if (rc == STM_OK && (!have_node || !lineage_at || !have_vector || !h->endpoint))
        rc = s_bad(err, "a HELLO lacks node, endpoint, lineage or vector");
    if (rc == STM_OK) {
        s_budget budget = {0};
        h->lineage = stm_lineage_new(schema_set ? schema_set : "");
        msgread_t lr, fr;
        stm_msgread_init(&lr, lineage_at, (size_t)(r.end - lineage_at));
        why = s_read_lineage(&lr, h->lineage, &budget);
        if (!why && families_at) {
            stm_msgread_init(&fr, families_at, (size_t)(r.end - families_at));
            why = s_read_families(&fr, h->lineage, &budget);
        }
        if (!why && lenses_at) {
            msgread_t xr;
            stm_msgread_init(&xr, lenses_at, (size_t)(r.end - lenses_at));
            why = stm_wire_read_lenses(&xr, stm_lineage_count(h->lineage), &h->lenses);
        }
        if (why)
            rc = stm_error_set(err, STM_EPROTO, "malformed message: a HELLO: %s", why);
        h->schema_set = schema_set;
        schema_set = NULL;
    }
    free(schema_set);
    if (rc != STM_OK)
        stm_wire_hello_clear(h);
    return rc;
}

stm_err stm_wire_check_lineage(const lineage_t *l, stm_error *err)
{
    size_t items = stm_lineage_count(l), nfamilies = stm_lineage_family_count(l);
    const char *what = NULL;
    size_t limit = 0;
    if (items > WIRE_MAX_VERSIONS)
        what = "versions", limit = WIRE_MAX_VERSIONS;
    else if (nfamilies > WIRE_MAX_FAMILIES)
        what = "tables", limit = WIRE_MAX_FAMILIES;
    for (size_t i = 0; i < nfamilies && !what; i++) {
        const family_t *f = stm_lineage_family_at(l, i);
        const catalog_table *t = stm_family_table(f);
        items += stm_family_count(f) + (t ? stm_catalog_table_count(t) : 0);
        if (t && stm_catalog_table_count(t) > WIRE_MAX_COLUMNS)
            what = "columns in one table", limit = WIRE_MAX_COLUMNS;
    }
    if (!what && items > WIRE_MAX_ITEMS)
        what = "versions, table history entries and columns together", limit = WIRE_MAX_ITEMS;
    if (what)
        return stm_error_set(err, STM_EINPUT,
                             "the schema history is too large for the mesh protocol: more than "
                             "%zu %s (docs/protocol.md, \"HELLO\")",
                             limit, what);
    return STM_OK;
}

void stm_wire_hello_clear(wire_hello *h)
{
    free(h->endpoint);
    free(h->schema_set);
    free(h->name);
    stm_lineage_destroy(&h->lineage);
    stm_vector_destroy(&h->vector);
    for (size_t i = 0; i < h->ncapabilities; i++)
        free(h->capabilities[i]);
    free(h->capabilities);
    for (size_t i = 0; i < h->npeers; i++)
        free(h->peers[i].endpoint);
    free(h->peers);
    stm_wire_lenses_clear(&h->lenses);
    memset(h, 0, sizeof *h);
}

stm_err stm_wire_decode_refuse(const void *data, size_t len, char **reason, stm_error *err)
{
    msgread_t r;
    uint32_t nkeys;
    stm_err rc = s_body(data, len, WIRE_REFUSE, &r, &nkeys, err);
    *reason = NULL;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        int kr = s_next_key(&r, key, sizeof key);
        bool ok = kr == 0 || (kr > 0 && (strcmp(key, "reason") == 0 ? s_read_text(&r, reason)
                                                                    : stm_msgread_skip(&r)));
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

stm_err stm_wire_decode_ops(const void *data, size_t len, wire_ops *m, stm_error *err)
{
    memset(m, 0, sizeof *m);
    msgread_t r;
    uint32_t nkeys;
    stm_err rc = s_body(data, len, WIRE_OPS, &r, &nkeys, err);
    bool have_seq = false, have_batch = false, have_part = false, have_parts = false,
         have_bytes = false;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        bool ok;
        int kr = s_next_key(&r, key, sizeof key);
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
            rc = s_bad(err, "an OPS field is malformed");
    }
    if (rc == STM_OK && (!have_seq || !have_batch))
        rc = s_bad(err, "an OPS lacks seq or batch");
    if (rc == STM_OK && (have_part || have_parts || have_bytes)) {
        if (!have_part || !have_parts || !have_bytes)
            rc = s_bad(err, "an OPS part lacks part, parts or bytes");
        else if (m->parts < 2 || m->parts > WIRE_MAX_PARTS || m->part >= m->parts)
            rc = s_bad(err, "an OPS part's number is not below parts, 2 to "
                            S_STR(WIRE_MAX_PARTS));
        else if (m->bytes > WIRE_MAX_BATCH || m->bytes < m->parts)
            rc = s_bad(err, "an OPS part's batch is over 268435456 bytes or has fewer bytes "
                            "than parts");
        else if (m->batch_len == 0 || m->batch_len > m->bytes)
            rc = s_bad(err, "an OPS part's slice is empty or longer than its batch");
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
    stm_err rc = s_body(data, len, WIRE_RECEIVED, &r, &nkeys, err);
    bool have_seq = false, have_bytes = false;
    for (uint32_t k = 0; k < nkeys && rc == STM_OK; k++) {
        char key[32];
        bool ok;
        int kr = s_next_key(&r, key, sizeof key);
        if (kr <= 0)
            ok = kr == 0;
        else if (strcmp(key, "seq") == 0)
            ok = have_seq = stm_msgread_uint(&r, seq);
        else if (strcmp(key, "bytes") == 0)
            ok = have_bytes = stm_msgread_uint(&r, bytes);
        else
            ok = stm_msgread_skip(&r);
        if (!ok)
            rc = s_bad(err, "a RECEIVED field is malformed");
    }
    if (rc == STM_OK && (!have_seq || !have_bytes))
        rc = s_bad(err, "a RECEIVED lacks seq or bytes");
    return rc;
}

stm_err stm_wire_decode_ack(const void *data, size_t len, uint64_t *seq, vector_t **vector,
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
            if (!(have_seq = stm_msgread_uint(&r, seq)))
                rc = s_bad(err, "an ACK's seq is not a number");
        } else if (strcmp(key, "vector") == 0) {
            rc = s_read_vector(&r, vector, err);
        } else if (!stm_msgread_skip(&r)) {
            rc = s_bad(err, "an ACK field is malformed");
        }
    }
    if (rc == STM_OK && (!have_seq || !*vector))
        rc = s_bad(err, "an ACK lacks seq or vector");
    if (rc != STM_OK)
        stm_vector_destroy(vector);
    return rc;
}
