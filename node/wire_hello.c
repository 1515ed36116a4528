/* wire_hello.c - the HELLO (docs/protocol.md, "HELLO"): who a node is, its lineage,
 * families, vector and peers, encoded and decoded with every limit checked; the other
 * messages and the helpers both use are wire.c's. */
#include "wire_internal.h"
#include "base/mem.h"
#include "lineage/schemaset.h"
#include "sync/capture.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static void s_pack_family(msgpack_packer *pk, const family_t *f)
{
    msgpack_pack_array(pk, 3);
    stm_wire_put_str(pk, stm_family_name(f));
    msgpack_pack_array(pk, stm_family_count(f));
    for (size_t i = 0; i < stm_family_count(f); i++)
        stm_wire_put_id(pk, &stm_family_entry_at(f, i)->head);
    const catalog_table *t = stm_family_table(f);
    if (!t) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_array(pk, stm_catalog_table_count(t));
    for (size_t i = 0; i < stm_catalog_table_count(t); i++) {
        const catalog_column *c = stm_catalog_table_column(t, i);
        msgpack_pack_array(pk, 4);
        stm_wire_put_str(pk, c->name);
        msgpack_pack_uint8(pk, (uint8_t)stm_capture_affinity_code(c->affinity));
        msgpack_pack_uint32(pk, (uint32_t)c->pk);
        msgpack_pack_uint32(pk, (uint32_t)c->hidden);
    }
}

void stm_wire_encode_hello(buf_t *out, const stm_id *node_id, const wire_hello_out *h)
{
    msgpack_packer pk;
    stm_wire_put_header(out, WIRE_HELLO, &pk);
    msgpack_pack_map(&pk, 10 + stm_wire_vector_keys(h->vector) + (h->know != NULL) +
                              (h->lenses != NULL) + h->listed + h->full);
    stm_wire_put_key(&pk, "reply");
    if (h->reply)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    /* Said only when true: a HELLO without them is what an older stemma sends. */
    if (h->listed) {
        stm_wire_put_key(&pk, "listed");
        msgpack_pack_true(&pk);
    }
    if (h->full) {
        stm_wire_put_key(&pk, "full");
        msgpack_pack_true(&pk);
    }
    stm_wire_put_key(&pk, "node");
    stm_wire_put_id(&pk, node_id);
    stm_wire_put_key(&pk, "endpoint");
    stm_wire_put_str(&pk, h->endpoint);
    stm_wire_put_key(&pk, "name");
    stm_wire_put_str(&pk, h->name);
    stm_wire_put_key(&pk, "schema_set");
    stm_wire_put_str(&pk, stm_lineage_name(h->lineage));
    stm_wire_put_key(&pk, "lineage");
    msgpack_pack_array(&pk, stm_lineage_count(h->lineage));
    for (size_t i = 0; i < stm_lineage_count(h->lineage); i++)
        stm_wire_put_id(&pk, &stm_lineage_version_at(h->lineage, i)->id);
    stm_wire_put_key(&pk, "families");
    msgpack_pack_array(&pk, stm_lineage_family_count(h->lineage));
    for (size_t i = 0; i < stm_lineage_family_count(h->lineage); i++)
        s_pack_family(&pk, stm_lineage_family_at(h->lineage, i));
    stm_wire_put_vector(&pk, out, h->vector);
    if (h->know) {
        unsigned char b[VECTOR_DIGEST_BYTES];
        stm_vector_digest_bytes(h->know, b);
        stm_wire_put_key(&pk, "vknow");
        msgpack_pack_bin_with_body(&pk, b, sizeof b);
    }
    stm_wire_put_key(&pk, "min_supported_version");
    msgpack_pack_uint32(&pk, (uint32_t)(h->min_supported > 0 ? h->min_supported : 0));
    stm_wire_put_key(&pk, "capabilities");
    msgpack_pack_array(&pk, h->deltas ? 5 : 4);
    stm_wire_put_str(&pk, "ops.v1");
    stm_wire_put_str(&pk, WIRE_CAP_ROUTE);
    stm_wire_put_str(&pk, WIRE_CAP_PARTS);
    if (h->deltas)
        stm_wire_put_str(&pk, WIRE_CAP_VDELTA);
    stm_wire_put_str(&pk, WIRE_CAP_MESH);
    stm_wire_put_key(&pk, "peers");
    msgpack_pack_array(&pk, h->npeers);
    for (size_t i = 0; i < h->npeers; i++) {
        msgpack_pack_array(&pk, 2);
        stm_wire_put_id(&pk, &h->peers[i].id);
        stm_wire_put_str(&pk, h->peers[i].endpoint);
    }
    if (h->lenses) {
        stm_wire_put_key(&pk, "lenses");
        stm_wire_pack_lenses(&pk, h->lenses, stm_lineage_count(h->lineage));
    }
}

/* ---- decoding ---- */

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
    if (!stm_wire_array(r, WIRE_MAX_VERSIONS, WIRE_MIN_ID_BYTES, &n))
        return "its lineage is not an array of at most " S_STR(WIRE_MAX_VERSIONS) " ids";
    if (!s_spend(b, n))
        return "it describes more than " S_STR(WIRE_MAX_ITEMS) " versions, heads and columns";
    stm_lineage_reserve(l, n);
    stm_id parent = {{0}}, zero = {{0}};
    for (uint32_t i = 0; i < n; i++) {
        stm_id id;
        if (!stm_wire_read_id(r, &id) ||
            stm_lineage_add_version(l, (int)i + 1, &id, &parent, &zero, "", NULL) != STM_OK)
            return "a version id in its lineage is not 32 bytes of bin";
        parent = id;
    }
    return NULL;
}

static const char *s_read_columns(msgread_t *r, catalog_table *t, s_budget *b)
{
    uint32_t n;
    if (!stm_wire_array(r, WIRE_MAX_COLUMNS, WIRE_MIN_COLUMN_BYTES, &n))
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
            name_len == 0 || name_len > WIRE_MAX_TEXT || stm_wire_has_control(name, name_len) ||
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
    if (!stm_msgread_array(r, &fields) || fields < 3 || !stm_wire_read_text(r, &name) || !*name) {
        free(name);
        return "a family is not [name, heads, columns] with a name of 1 to "
               S_STR(WIRE_MAX_TEXT) " bytes and no control character";
    }
    /* Each head is a version at which the table changed: never more than the versions. */
    if (!stm_wire_array(r, (uint32_t)nversions, WIRE_MIN_ID_BYTES, &nheads) || nheads == 0) {
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
        if (!stm_wire_read_id(r, &heads[k]))
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
    if (!stm_wire_array(r, WIRE_MAX_FAMILIES, WIRE_MIN_FAMILY_BYTES, &n))
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
    if (!stm_wire_array(r, WIRE_MAX_PEERS, WIRE_MIN_PEER_BYTES, &n))
        return "its peers are not an array of at most " S_STR(WIRE_MAX_PEERS);
    h->peers = stm_calloc(n + 1, sizeof *h->peers);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fields;
        if (!stm_msgread_array(r, &fields) || fields < 2 || !stm_wire_read_id(r, &h->peers[i].id) ||
            !stm_wire_read_text(r, &h->peers[i].endpoint))
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
    if (!stm_wire_array(r, WIRE_MAX_CAPABILITIES, 1, &n))
        return "its capabilities are not an array of at most " S_STR(WIRE_MAX_CAPABILITIES);
    h->capabilities = stm_calloc(n + 1, sizeof *h->capabilities);
    for (uint32_t i = 0; i < n; i++) {
        if (!stm_wire_read_text(r, &h->capabilities[i]))
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
    stm_err rc = stm_wire_body(data, len, WIRE_HELLO, &r, &nkeys, err);
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
        int kr = stm_wire_next_key(&r, key, sizeof key);
        if (kr <= 0) {
            if (kr < 0)
                rc = stm_wire_bad(err, "a HELLO key is malformed");
            continue;
        }
        bool ok = true;
        int vr;
        if (strcmp(key, "node") == 0)
            ok = have_node = stm_wire_read_id(&r, &h->node_id);
        else if (strcmp(key, "endpoint") == 0)
            ok = stm_wire_read_text(&r, &h->endpoint);
        else if (strcmp(key, "schema_set") == 0)
            ok = stm_wire_read_text(&r, &schema_set);
        else if (strcmp(key, "name") == 0)
            ok = stm_wire_read_text(&r, &h->name) && strlen(h->name) <= WIRE_MAX_NAME;
        else if ((strcmp(key, "lineage") == 0 && !lineage_at) ||
                 (strcmp(key, "families") == 0 && !families_at) ||
                 (strcmp(key, "lenses") == 0 && !lenses_at)) {
            *(key[0] == 'f' ? &families_at : key[1] == 'i' ? &lineage_at : &lenses_at) = r.p;
            ok = stm_msgread_skip(&r);
        } else if (strcmp(key, "vknow") == 0) {
            ok = h->has_know = stm_wire_read_digest(&r, &h->know);
        } else if ((vr = stm_wire_read_vector_key(key, &r, &h->vector, &have_vector, err)) != 0) {
            if (vr < 0)
                rc = STM_EPROTO;
        } else if (strcmp(key, "min_supported_version") == 0) {
            uint64_t v;
            ok = stm_msgread_uint(&r, &v) && v <= SCHEMASET_MAX_VERSIONS;
            h->min_supported_version = (int)v;
        } else if (strcmp(key, "capabilities") == 0 && !h->capabilities)
            ok = !(why = s_read_capabilities(&r, h));
        else if (strcmp(key, "peers") == 0 && !h->peers)
            ok = !(why = s_read_peers(&r, h));
        else if (strcmp(key, "reply") == 0)
            ok = stm_msgread_bool(&r, &h->reply);
        else if (strcmp(key, "listed") == 0)
            ok = stm_msgread_bool(&r, &h->listed);
        else if (strcmp(key, "full") == 0)
            ok = stm_msgread_bool(&r, &h->full);
        else
            ok = stm_msgread_skip(&r);
        if (rc != STM_OK)
            ; /* the vector part said why */
        else if (!ok && why)
            rc = stm_error_set(err, STM_EPROTO, "malformed message: a HELLO: %s", why);
        else if (!ok)
            rc = stm_error_set(err, STM_EPROTO,
                               "malformed message: a HELLO's %s is malformed or out of its "
                               "limits", key);
    }
    if (rc == STM_OK && (!have_node || !lineage_at || !have_vector || !h->endpoint))
        rc = stm_wire_bad(err, "a HELLO lacks node, endpoint, lineage or vector");
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
    stm_vector_msg_clear(&h->vector);
    for (size_t i = 0; i < h->ncapabilities; i++)
        free(h->capabilities[i]);
    free(h->capabilities);
    for (size_t i = 0; i < h->npeers; i++)
        free(h->peers[i].endpoint);
    free(h->peers);
    stm_wire_lenses_clear(&h->lenses);
    memset(h, 0, sizeof *h);
}

