#include "report.h"
#include "report_internal.h"
#include "base/buf.h"
#include "base/jsonw.h"
#include "base/mem.h"
#include "lineage/relation.h"
#include "toml/toml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

const char *stm_report_state_name(report_state s)
{
    switch (s) {
    case REPORT_CONNECTING:
        return "connecting";
    case REPORT_CONNECTED:
        return "connected";
    case REPORT_GONE:
        return "gone";
    case REPORT_REFUSED:
        return "refused";
    }
    return "refused";
}

const char *stm_report_drop_name(report_drop d)
{
    static const char *const names[REPORT_DROP_KINDS] = {
        "not-stemma", "protocol-version", "hello",          "refuse",    "ops",    "batch",
        "ack",        "impostor",         "unknown-sender", "untrusted", "beacon", "received",
        "parts",      "vector"};
    return d < REPORT_DROP_KINDS ? names[d] : "unknown";
}

/* The same name as a JSON or TOML key: "not_stemma". */
static void s_drop_key(report_drop d, char key[24])
{
    snprintf(key, 24, "%s", stm_report_drop_name(d));
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
}

/* ---- what every format says the same way ---- */

/* The short id, as the logs name nodes; "?" for a peer not known yet. */
void stm_report_short(const stm_id *id, bool known, char out[STM_ID_SHORT_LEN + 1])
{
    if (known)
        stm_id_short(id, out);
    else
        strcpy(out, "?");
}

/* Keys are shown in Z85 everywhere (keys.h), so a key from a report pastes into node.toml. */
void stm_report_z85(const stm_id *id, char out[41])
{
    zmq_z85_encode(out, id->bytes, STM_ID_BYTES);
}

const comparison_t *stm_report_cmp(const report_peer *p)
{
    return p->verdict ? p->verdict->cmp : NULL;
}

/* "refused" whoever refused (the peer's refusal does not change our verdict); NULL
 * before its HELLO. */
const char *stm_report_sync(const report_peer *p)
{
    if (p->state == REPORT_REFUSED)
        return "refused";
    return stm_report_cmp(p) ? stm_peer_sync_name(p->verdict->sync) : NULL;
}

/* The peer's own reason wins: it is why nothing syncs, whatever we thought of it. */
static const char *s_reason(const report_peer *p)
{
    if (p->distrusted)
        return p->distrusted;
    if (p->refused_by_peer)
        return p->refused_by_peer;
    return stm_report_cmp(p) ? p->verdict->reason : "no HELLO from it yet";
}

static const char *s_refused_by(const report_peer *p)
{
    if (p->distrusted)
        return "this node";
    if (p->refused_by_peer)
        return "peer";
    return p->state == REPORT_REFUSED ? "this node" : NULL;
}

static const char *s_warning(const report_peer *p)
{
    return stm_report_cmp(p) && p->verdict->warning[0] ? p->verdict->warning : NULL;
}

static void s_wall(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- JSON ---- */

static void s_json_id(jsonw_t *w, const char *key, const stm_id *id)
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(id, hex);
    stm_jsonw_key(w, key);
    stm_jsonw_string(w, hex);
}

static void s_json_names(jsonw_t *w, const char *key, const char **names, size_t n)
{
    stm_jsonw_key(w, key);
    stm_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++)
        stm_jsonw_string(w, names[i]);
    stm_jsonw_array_end(w);
}

static void s_json_uint(jsonw_t *w, const char *key, uint64_t v)
{
    stm_jsonw_key(w, key);
    stm_jsonw_int(w, (int64_t)v);
}

static void s_json_node(jsonw_t *w, const report_node *r)
{
    char z85[41];
    stm_report_z85(&r->id, z85);
    stm_jsonw_object_begin(w);
    stm_jsonw_key(w, "id");
    stm_jsonw_string(w, z85);
    stm_jsonw_key(w, "schema_set");
    stm_jsonw_string(w, stm_lineage_name(r->lineage));
    stm_jsonw_key(w, "version");
    stm_jsonw_int(w, r->version);
    const lineage_version *head = stm_lineage_head(r->lineage);
    if (head) {
        s_json_id(w, "head", &head->id);
    } else {
        stm_jsonw_key(w, "head");
        stm_jsonw_null(w);
    }
    stm_jsonw_key(w, "endpoint");
    stm_jsonw_string(w, r->endpoint);
    stm_jsonw_key(w, "name");
    stm_jsonw_string(w, r->name);
    stm_jsonw_key(w, "secure");
    stm_jsonw_bool(w, r->secure);
    s_json_uint(w, "operations", r->operations);
    s_json_uint(w, "parked", r->parked);
    s_json_uint(w, "withheld", r->withheld);
    s_json_uint(w, "conflicts", r->conflicts);
    stm_jsonw_key(w, "compaction");
    stm_jsonw_object_begin(w);
    stm_jsonw_key(w, "enabled");
    stm_jsonw_bool(w, r->compaction.enabled);
    stm_jsonw_key(w, "running");
    stm_jsonw_bool(w, r->compaction.running);
    s_json_uint(w, "passes", r->compact_passes);
    s_json_uint(w, "pruned", r->pruned);
    s_json_uint(w, "last_pruned", r->compaction.last_pruned);
    s_json_uint(w, "last_waiting", r->compaction.last_waiting);
    s_json_uint(w, "last_rows", r->compaction.last_rows);
    stm_jsonw_key(w, "last_ms");
    if (r->compaction.has_last)
        stm_jsonw_int(w, r->compaction.last_ms);
    else
        stm_jsonw_null(w);
    s_json_uint(w, "last_slice_ms", (uint64_t)r->compaction.last_slice_ms);
    s_json_uint(w, "known_peers", r->compaction.known_peers);
    stm_jsonw_object_end(w);
    s_json_uint(w, "malformed_messages", r->malformed);
    s_json_uint(w, "refused_keys", r->refused_keys);
    s_json_uint(w, "unknown_senders", r->unknown_senders);
    s_json_uint(w, "bytes_sent", r->bytes_sent);
    s_json_uint(w, "bytes_hello", r->bytes_hello);
    s_json_uint(w, "bytes_ack", r->bytes_ack);
    s_json_uint(w, "bytes_vector", r->bytes_vector);
    s_json_uint(w, "origins", r->origins);
    s_json_uint(w, "vector_entries_cut", r->vector_cut);
    s_json_uint(w, "apply_failures_busy", r->apply_busy);
    s_json_uint(w, "apply_failures_io", r->apply_io);
    s_json_uint(w, "batches_waiting", r->batches_waiting);
    s_json_uint(w, "batches_deferred", r->batches_deferred);
    stm_jsonw_key(w, "discovery");
    if (r->discovery_port) {
        stm_jsonw_object_begin(w);
        s_json_uint(w, "port", (uint64_t)r->discovery_port);
        stm_jsonw_key(w, "sending");
        stm_jsonw_bool(w, r->beacons_sending);
        s_json_uint(w, "beacons_sent", r->beacons_sent);
        s_json_uint(w, "beacons_heard", r->beacons_heard);
        s_json_uint(w, "beacons_untrusted", r->beacons_untrusted);
        s_json_uint(w, "beacons_other_mode", r->beacons_other_mode);
        s_json_uint(w, "peers_discovered", r->peers_discovered);
        stm_jsonw_object_end(w);
    } else {
        stm_jsonw_null(w);
    }
    stm_jsonw_key(w, "dropped");
    stm_jsonw_object_begin(w);
    for (int d = 0; d < REPORT_DROP_KINDS; d++) {
        char key[24];
        s_drop_key((report_drop)d, key);
        s_json_uint(w, key, r->dropped[d]);
    }
    stm_jsonw_object_end(w);
    stm_jsonw_key(w, "parked_reasons");
    stm_jsonw_array_begin(w);
    for (size_t i = 0; i < r->nparked_reasons; i++) {
        stm_jsonw_object_begin(w);
        stm_jsonw_key(w, "reason");
        stm_jsonw_string(w, r->parked_reasons[i].reason);
        s_json_uint(w, "count", r->parked_reasons[i].count);
        stm_jsonw_object_end(w);
    }
    stm_jsonw_array_end(w);
    stm_jsonw_object_end(w);
}

static void s_json_peer(jsonw_t *w, const report_peer *p)
{
    const comparison_t *c = stm_report_cmp(p);
    stm_jsonw_object_begin(w);
    stm_jsonw_key(w, "id");
    if (p->id_known) {
        char z85[41];
        stm_report_z85(&p->id, z85);
        stm_jsonw_string(w, z85);
    } else {
        stm_jsonw_null(w);
    }
    stm_jsonw_key(w, "endpoint");
    stm_jsonw_string(w, p->endpoint);
    stm_jsonw_key(w, "dialled_in_from");
    stm_jsonw_string(w, p->dialled_in_from);
    stm_jsonw_key(w, "name");
    stm_jsonw_string(w, p->name);
    stm_jsonw_key(w, "state");
    stm_jsonw_string(w, stm_report_state_name(p->state));
    stm_jsonw_key(w, "role");
    stm_jsonw_string(w, p->role);
    stm_jsonw_key(w, "link");
    stm_jsonw_string(w, p->link);
    stm_jsonw_key(w, "schema_set");
    stm_jsonw_string(w, p->schema_set);
    stm_jsonw_key(w, "version");
    if (c)
        stm_jsonw_int(w, c->remote_version);
    else
        stm_jsonw_null(w);
    stm_jsonw_key(w, "relation");
    stm_jsonw_string(w, c ? stm_relation_name(c->relation) : NULL);
    stm_jsonw_key(w, "common_ancestor");
    if (c && c->common) {
        stm_jsonw_object_begin(w);
        stm_jsonw_key(w, "version");
        stm_jsonw_int(w, (int64_t)c->common);
        s_json_id(w, "id", &c->common_id);
        stm_jsonw_object_end(w);
    } else {
        stm_jsonw_null(w);
    }
    stm_jsonw_key(w, "sync");
    stm_jsonw_string(w, stm_report_sync(p));
    stm_jsonw_key(w, "reason");
    stm_jsonw_string(w, s_reason(p));
    stm_jsonw_key(w, "refused_by");
    stm_jsonw_string(w, s_refused_by(p));
    stm_jsonw_key(w, "warnings");
    stm_jsonw_array_begin(w);
    if (s_warning(p))
        stm_jsonw_string(w, s_warning(p));
    stm_jsonw_array_end(w);
    stm_jsonw_key(w, "families");
    stm_jsonw_array_begin(w);
    for (size_t k = 0; c && k < c->nfamilies; k++) {
        const comparison_family *f = &c->families[k];
        stm_jsonw_object_begin(w);
        stm_jsonw_key(w, "name");
        stm_jsonw_string(w, f->name);
        stm_jsonw_key(w, "relation");
        stm_jsonw_string(w, stm_relation_name(f->relation));
        for (int cr = COLUMN_SHARED; cr <= COLUMN_CONFLICTING; cr++)
            s_json_names(w, stm_column_relation_name((column_relation)cr), f->columns[cr],
                         f->ncolumns[cr]);
        stm_jsonw_object_end(w);
    }
    stm_jsonw_array_end(w);
    s_json_uint(w, "ops_sent", p->ops_sent);
    s_json_uint(w, "ops_received", p->ops_received);
    s_json_uint(w, "parked", p->parked);
    s_json_uint(w, "withheld", p->withheld);
    s_json_uint(w, "behind", p->behind);
    stm_jsonw_key(w, "last_seen");
    if (p->last_seen) {
        char when[32];
        s_wall(p->last_seen, when);
        stm_jsonw_string(w, when);
    } else {
        stm_jsonw_null(w);
    }
    stm_jsonw_object_end(w);
}

char *stm_report_json(const report_node *r)
{
    buf_t b = BUF_INIT;
    jsonw_t w;
    stm_jsonw_init(&w, &b, true);
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "node");
    s_json_node(&w, r);
    stm_jsonw_key(&w, "peers");
    stm_jsonw_array_begin(&w);
    for (size_t i = 0; i < r->npeers; i++)
        s_json_peer(&w, &r->peers[i]);
    stm_jsonw_array_end(&w);
    stm_jsonw_object_end(&w);
    return stm_buf_detach(&b);
}

/* ---- TOML: the JSON's keys and values; what JSON gives as null is left out ---- */

static void s_toml_str(toml_value *t, const char *key, const char *s)
{
    if (s)
        stm_toml_table_set(t, key, stm_toml_new_string(s, strlen(s)));
}

static void s_toml_int(toml_value *t, const char *key, int64_t v)
{
    stm_toml_table_set(t, key, stm_toml_new_integer(v));
}

static void s_toml_id(toml_value *t, const char *key, const stm_id *id)
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(id, hex);
    s_toml_str(t, key, hex);
}

static toml_value *s_toml_names(const char **names, size_t n)
{
    toml_value *a = stm_toml_new_array();
    for (size_t i = 0; i < n; i++)
        stm_toml_array_push(a, stm_toml_new_string(names[i], strlen(names[i])));
    return a;
}

static toml_value *s_toml_node(const report_node *r)
{
    toml_value *t = stm_toml_new_table();
    char z85[41];
    stm_report_z85(&r->id, z85);
    s_toml_str(t, "id", z85);
    s_toml_str(t, "schema_set", stm_lineage_name(r->lineage));
    s_toml_int(t, "version", r->version);
    const lineage_version *head = stm_lineage_head(r->lineage);
    if (head)
        s_toml_id(t, "head", &head->id);
    s_toml_str(t, "endpoint", r->endpoint);
    s_toml_str(t, "name", r->name);
    stm_toml_table_set(t, "secure", stm_toml_new_bool(r->secure));
    s_toml_int(t, "operations", (int64_t)r->operations);
    s_toml_int(t, "parked", (int64_t)r->parked);
    s_toml_int(t, "withheld", (int64_t)r->withheld);
    s_toml_int(t, "conflicts", (int64_t)r->conflicts);
    toml_value *c = stm_toml_new_table();
    stm_toml_table_set(c, "enabled", stm_toml_new_bool(r->compaction.enabled));
    stm_toml_table_set(c, "running", stm_toml_new_bool(r->compaction.running));
    s_toml_int(c, "passes", (int64_t)r->compact_passes);
    s_toml_int(c, "pruned", (int64_t)r->pruned);
    s_toml_int(c, "last_pruned", (int64_t)r->compaction.last_pruned);
    s_toml_int(c, "last_waiting", (int64_t)r->compaction.last_waiting);
    s_toml_int(c, "last_rows", (int64_t)r->compaction.last_rows);
    if (r->compaction.has_last)
        s_toml_int(c, "last_ms", r->compaction.last_ms);
    s_toml_int(c, "last_slice_ms", r->compaction.last_slice_ms);
    s_toml_int(c, "known_peers", (int64_t)r->compaction.known_peers);
    stm_toml_table_set(t, "compaction", c);
    s_toml_int(t, "malformed_messages", (int64_t)r->malformed);
    s_toml_int(t, "refused_keys", (int64_t)r->refused_keys);
    s_toml_int(t, "unknown_senders", (int64_t)r->unknown_senders);
    s_toml_int(t, "bytes_sent", (int64_t)r->bytes_sent);
    s_toml_int(t, "bytes_hello", (int64_t)r->bytes_hello);
    s_toml_int(t, "bytes_ack", (int64_t)r->bytes_ack);
    s_toml_int(t, "bytes_vector", (int64_t)r->bytes_vector);
    s_toml_int(t, "origins", (int64_t)r->origins);
    s_toml_int(t, "vector_entries_cut", (int64_t)r->vector_cut);
    s_toml_int(t, "apply_failures_busy", (int64_t)r->apply_busy);
    s_toml_int(t, "apply_failures_io", (int64_t)r->apply_io);
    s_toml_int(t, "batches_waiting", (int64_t)r->batches_waiting);
    s_toml_int(t, "batches_deferred", (int64_t)r->batches_deferred);
    if (r->discovery_port) {
        toml_value *d = stm_toml_new_table();
        s_toml_int(d, "port", r->discovery_port);
        stm_toml_table_set(d, "sending", stm_toml_new_bool(r->beacons_sending));
        s_toml_int(d, "beacons_sent", (int64_t)r->beacons_sent);
        s_toml_int(d, "beacons_heard", (int64_t)r->beacons_heard);
        s_toml_int(d, "beacons_untrusted", (int64_t)r->beacons_untrusted);
        s_toml_int(d, "beacons_other_mode", (int64_t)r->beacons_other_mode);
        s_toml_int(d, "peers_discovered", (int64_t)r->peers_discovered);
        stm_toml_table_set(t, "discovery", d);
    }
    toml_value *dropped = stm_toml_new_table();
    for (int d = 0; d < REPORT_DROP_KINDS; d++) {
        char key[24];
        s_drop_key((report_drop)d, key);
        s_toml_int(dropped, key, (int64_t)r->dropped[d]);
    }
    stm_toml_table_set(t, "dropped", dropped);
    toml_value *reasons = stm_toml_new_array();
    for (size_t i = 0; i < r->nparked_reasons; i++) {
        toml_value *one = stm_toml_new_table();
        s_toml_str(one, "reason", r->parked_reasons[i].reason);
        s_toml_int(one, "count", (int64_t)r->parked_reasons[i].count);
        stm_toml_array_push(reasons, one);
    }
    stm_toml_table_set(t, "parked_reasons", reasons);
    return t;
}

static toml_value *s_toml_peer(const report_peer *p)
{
    const comparison_t *c = stm_report_cmp(p);
    toml_value *t = stm_toml_new_table();
    if (p->id_known) {
        char z85[41];
        stm_report_z85(&p->id, z85);
        s_toml_str(t, "id", z85);
    }
    s_toml_str(t, "endpoint", p->endpoint);
    s_toml_str(t, "dialled_in_from", p->dialled_in_from);
    s_toml_str(t, "name", p->name);
    s_toml_str(t, "state", stm_report_state_name(p->state));
    s_toml_str(t, "role", p->role);
    s_toml_str(t, "link", p->link);
    s_toml_str(t, "schema_set", p->schema_set);
    if (c) {
        s_toml_int(t, "version", c->remote_version);
        s_toml_str(t, "relation", stm_relation_name(c->relation));
    }
    if (c && c->common) {
        toml_value *common = stm_toml_new_table();
        s_toml_int(common, "version", (int64_t)c->common);
        s_toml_id(common, "id", &c->common_id);
        stm_toml_table_set(t, "common_ancestor", common);
    }
    s_toml_str(t, "sync", stm_report_sync(p));
    s_toml_str(t, "reason", s_reason(p));
    s_toml_str(t, "refused_by", s_refused_by(p));
    toml_value *warnings = stm_toml_new_array();
    if (s_warning(p))
        stm_toml_array_push(warnings, stm_toml_new_string(s_warning(p), strlen(s_warning(p))));
    stm_toml_table_set(t, "warnings", warnings);
    toml_value *families = stm_toml_new_array();
    for (size_t k = 0; c && k < c->nfamilies; k++) {
        const comparison_family *f = &c->families[k];
        toml_value *ft = stm_toml_new_table();
        s_toml_str(ft, "name", f->name);
        s_toml_str(ft, "relation", stm_relation_name(f->relation));
        for (int cr = COLUMN_SHARED; cr <= COLUMN_CONFLICTING; cr++)
            stm_toml_table_set(ft, stm_column_relation_name((column_relation)cr),
                               s_toml_names(f->columns[cr], f->ncolumns[cr]));
        stm_toml_array_push(families, ft);
    }
    stm_toml_table_set(t, "families", families);
    s_toml_int(t, "ops_sent", (int64_t)p->ops_sent);
    s_toml_int(t, "ops_received", (int64_t)p->ops_received);
    s_toml_int(t, "parked", (int64_t)p->parked);
    s_toml_int(t, "withheld", (int64_t)p->withheld);
    s_toml_int(t, "behind", (int64_t)p->behind);
    if (p->last_seen) {
        /* A string, as in the JSON and in `stemma history --format toml`, so a program
         * reading either format gets the same type. */
        char when[32];
        s_wall(p->last_seen, when);
        s_toml_str(t, "last_seen", when);
    }
    return t;
}

char *stm_report_toml(const report_node *r)
{
    toml_value *root = stm_toml_new_table();
    stm_toml_table_set(root, "node", s_toml_node(r));
    toml_value *peers = stm_toml_new_array();
    for (size_t i = 0; i < r->npeers; i++)
        stm_toml_array_push(peers, s_toml_peer(&r->peers[i]));
    stm_toml_table_set(root, "peers", peers);
    char *text = stm_toml_emit(root, NULL);
    stm_toml_destroy(&root);
    return text;
}

/* ---- text ---- */

static char *s_text(const report_node *r, bool brief)
{
    buf_t b = BUF_INIT;
    const lineage_version *head = stm_lineage_head(r->lineage);
    char self[STM_ID_SHORT_LEN + 1], hid[STM_ID_SHORT_LEN + 1] = "-";
    stm_report_short(&r->id, true, self);
    if (head)
        stm_report_short(&head->id, true, hid);
    stm_buf_printf(&b, "node %s", self);
    if (r->name && r->name[0])
        stm_buf_printf(&b, " \"%s\"", r->name);
    stm_buf_printf(&b, "  %s v%d (%s)  %s%s\n", stm_lineage_name(r->lineage), r->version, hid,
                   r->endpoint[0] ? r->endpoint : "(bound nowhere)", r->secure ? "" : "  INSECURE");
    if (r->discovery_port && !brief)
        stm_buf_printf(&b, "discovery on UDP %d: %s\n", r->discovery_port,
                       r->beacons_sending ? "sending beacons and listening"
                                          : "listening only (this node cannot be dialled from "
                                            "the network, so it sends no beacon)");
    if (r->withheld && !brief)
        stm_buf_printf(&b,
                       "withheld: %llu operations are held only as stand-ins: their row "
                       "changes were too large to travel, and this database lacks them (the "
                       "log names them)\n",
                       (unsigned long long)r->withheld);
    if (!r->npeers)
        stm_buf_puts(&b, "no peers\n");
    for (size_t i = 0; i < r->npeers; i++) {
        const report_peer *p = &r->peers[i];
        const comparison_t *c = stm_report_cmp(p);
        char sid[STM_ID_SHORT_LEN + 1];
        stm_report_short(&p->id, p->id_known, sid);
        stm_buf_printf(&b, "\npeer %s", sid);
        if (p->name)
            stm_buf_printf(&b, " \"%s\"", p->name);
        stm_buf_printf(&b, "  %s", p->endpoint[0] ? p->endpoint : "(no endpoint)");
        if (p->dialled_in_from)
            stm_buf_printf(&b, " (dialled in from %s)", p->dialled_in_from);
        stm_buf_printf(&b, "  %s", stm_report_state_name(p->state));
        if (p->role)
            stm_buf_printf(&b, " (%s)", strcmp(p->role, "known") == 0 ? "known, not kept" : p->role);
        if (c)
            stm_buf_printf(&b, "  %s v%d  %s  sync %s", p->schema_set ? p->schema_set : "?",
                           c->remote_version, stm_relation_name(c->relation), stm_report_sync(p));
        stm_buf_putc(&b, '\n');
        if (brief)
            continue;
        if (p->distrusted)
            stm_buf_printf(&b, "  refused by this node: %s\n", p->distrusted);
        else if (p->refused_by_peer)
            stm_buf_printf(&b, "  refused by the peer: %s\n", p->refused_by_peer);
        else if (c)
            stm_buf_printf(&b, "  %s\n", p->verdict->reason);
        if (s_warning(p))
            stm_buf_printf(&b, "  warning: %s\n", s_warning(p));
        stm_buf_printf(&b, "  sent %llu, received %llu, parked %llu, it lacks %llu\n",
                       (unsigned long long)p->ops_sent, (unsigned long long)p->ops_received,
                       (unsigned long long)p->parked, (unsigned long long)p->behind);
        if (p->withheld)
            stm_buf_printf(&b,
                           "  withheld: %llu row change%s too large to send it; stand-ins went "
                           "in their place (the log names them)\n",
                           (unsigned long long)p->withheld, p->withheld == 1 ? "" : "s");
    }
    return stm_buf_detach(&b);
}

char *stm_report_text(const report_node *r)
{
    return s_text(r, false);
}

char *stm_report_peers_text(const report_node *r)
{
    return s_text(r, true);
}

char *stm_report_stats_text(const report_node *r)
{
    size_t connected = 0, kept = 0;
    uint64_t sent = 0, received = 0, withheld_from = 0;
    for (size_t i = 0; i < r->npeers; i++) {
        connected += r->peers[i].state == REPORT_CONNECTED;
        kept += !r->peers[i].role || strcmp(r->peers[i].role, "known") != 0;
        sent += r->peers[i].ops_sent;
        received += r->peers[i].ops_received;
        withheld_from += r->peers[i].withheld;
    }
    buf_t b = BUF_INIT;
    stm_buf_printf(&b,
                   "peers %zu (connected %zu)\noperations %llu (parked %llu)\n"
                   "conflicts %llu\nsent %llu\n"
                   "received %llu\nbytes sent %llu\nmalformed messages %llu\n",
                   r->npeers, connected, (unsigned long long)r->operations,
                   (unsigned long long)r->parked, (unsigned long long)r->conflicts,
                   (unsigned long long)sent,
                   (unsigned long long)received, (unsigned long long)r->bytes_sent,
                   (unsigned long long)r->malformed);
    stm_buf_printf(&b,
                   "refused keys %llu\nunknown senders %llu\napply failures %llu (busy %llu, "
                   "io %llu)\nbatches waiting %llu (deferred %llu)\n",
                   (unsigned long long)r->refused_keys, (unsigned long long)r->unknown_senders,
                   (unsigned long long)(r->apply_busy + r->apply_io),
                   (unsigned long long)r->apply_busy, (unsigned long long)r->apply_io,
                   (unsigned long long)r->batches_waiting, (unsigned long long)r->batches_deferred);
    stm_buf_printf(&b,
                   "beacons sent %llu\nbeacons heard %llu (untrusted %llu, other mode %llu)\n"
                   "peers discovered %llu\n",
                   (unsigned long long)r->beacons_sent, (unsigned long long)r->beacons_heard,
                   (unsigned long long)r->beacons_untrusted,
                   (unsigned long long)r->beacons_other_mode,
                   (unsigned long long)r->peers_discovered);
    stm_buf_printf(&b, "peers kept %zu (known, not kept %zu)\n", kept, r->npeers - kept);
    stm_buf_printf(&b, "withheld %llu\nwithheld from peers %llu\n",
                   (unsigned long long)r->withheld, (unsigned long long)withheld_from);
    const report_compaction *c = &r->compaction;
    stm_buf_printf(&b, "pruned %llu\ncompaction passes %llu%s\n", (unsigned long long)r->pruned,
                   (unsigned long long)r->compact_passes,
                   c->running ? " (one under way)" : !c->enabled ? " (off)" : "");
    if (c->has_last)
        stm_buf_printf(&b,
                       "compaction last pass %llu pruned, %llu kept for %llu known peers, %llu "
                       "rows, %lld ms (longest slice %lld ms)\n",
                       (unsigned long long)c->last_pruned, (unsigned long long)c->last_waiting,
                       (unsigned long long)c->known_peers, (unsigned long long)c->last_rows,
                       (long long)c->last_ms, (long long)c->last_slice_ms);
    stm_buf_printf(&b,
                   "origins %llu\nbytes sent in hello %llu ack %llu vector %llu\n"
                   "vector entries cut %llu\n",
                   (unsigned long long)r->origins, (unsigned long long)r->bytes_hello,
                   (unsigned long long)r->bytes_ack, (unsigned long long)r->bytes_vector,
                   (unsigned long long)r->vector_cut);
    /* By kind: "parked COUNT REASON" for what is parked now, "dropped KIND COUNT" for
     * every kind of message dropped, zeros included, so scripts find each line. */
    for (size_t i = 0; i < r->nparked_reasons; i++)
        stm_buf_printf(&b, "parked %llu %s\n", (unsigned long long)r->parked_reasons[i].count,
                       r->parked_reasons[i].reason);
    for (int d = 0; d < REPORT_DROP_KINDS; d++)
        stm_buf_printf(&b, "dropped %s %llu\n", stm_report_drop_name((report_drop)d),
                       (unsigned long long)r->dropped[d]);
    return stm_buf_detach(&b);
}
