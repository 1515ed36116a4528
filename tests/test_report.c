/* Tests of node/report: snapshots built by hand from the bundled schema sets (this node
 * at tasks v3; peers on the fork, on tasks v4, on an unrelated schema set, and one not
 * heard from yet) rendered in every format. The JSON has the keys programs rely on; the
 * TOML parses and holds exactly the JSON's values (null left out); the DOT has one node
 * per distinct version, the parent -> child edges, each box joined to its head, and
 * labels that text from a peer cannot break; the text names every peer. */
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/relation.h"
#include "toml/toml.h"
#include "json_min.h"
#include "node/report.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* A schema set name a peer might send to break a label or a document. */
#define NASTY_NAME "no\"tes\\N\n} x"

/* ---- the mesh the tests describe ---- */

/* Why two operations are parked here (one a name that needs quoting in every format). */
static park_reason s_reasons[2] = {{"column not in this database", 1},
                                           {NASTY_NAME, 1}};

typedef struct {
    lineage_t *tasks4, *tasks3, *fork, *notes, *empty;
    peer_verdict verdicts[3];
    report_peer peers[4];
    report_node node;
} s_fixture;

static stm_id s_key(unsigned char seed)
{
    stm_id id;
    for (int i = 0; i < STM_ID_BYTES; i++)
        id.bytes[i] = (unsigned char)(seed + i * 7);
    return id;
}

static void s_verdict(peer_verdict *v, const lineage_t *local, const lineage_t *remote,
                      peer_sync sync, const char *reason, const char *warning)
{
    memset(v, 0, sizeof *v);
    v->cmp = stm_relation_compare(local, remote);
    v->sync = sync;
    snprintf(v->reason, sizeof v->reason, "%s", reason);
    snprintf(v->warning, sizeof v->warning, "%s", warning);
}

static int s_setup(void **state)
{
    s_fixture *f = stm_calloc(1, sizeof *f);
    f->tasks4 = tu_lineage_dir("schemas/tasks");
    f->tasks3 = stm_lineage_prefix(f->tasks4, 3);
    f->fork = tu_lineage_dir("schemas/tasks-fork");
    f->notes = tu_lineage_dir("tests/data/schemas/notes");
    f->empty = stm_lineage_new("nothing");
    s_verdict(&f->verdicts[0], f->tasks3, f->fork, PEER_SYNC_PARTIAL,
              "histories parted after v2: shared columns only", "");
    s_verdict(&f->verdicts[1], f->tasks3, f->tasks4, PEER_SYNC_FULL,
              "the peer is newer (v4 against v3): everything syncs",
              "version gap 1 is over max_version_gap 0");
    s_verdict(&f->verdicts[2], f->tasks3, f->notes, PEER_SYNC_REFUSED, "unrelated schema histories",
              "");
    f->peers[0] = (report_peer){.id = s_key(1),
                                .id_known = true,
                                .endpoint = "tcp://127.0.0.1:7001",
                                .state = REPORT_CONNECTED,
                                .role = "configured",
                                .schema_set = "tasks-fork",
                                .lineage = f->fork,
                                .verdict = &f->verdicts[0],
                                .ops_sent = 12,
                                .ops_received = 5,
                                .parked = 2,
                                .withheld = 1,
                                .behind = 3,
                                .last_seen = 1700000000};
    f->peers[1] = (report_peer){.id = s_key(2),
                                .id_known = true,
                                .endpoint = "ipc:///tmp/b.sock",
                                .state = REPORT_CONNECTED,
                                .role = "chosen",
                                .schema_set = "tasks",
                                .lineage = f->tasks4,
                                .verdict = &f->verdicts[1],
                                .ops_sent = 1,
                                .ops_received = 7,
                                .last_seen = 1700000100};
    f->peers[2] = (report_peer){.id = s_key(3),
                                .id_known = true,
                                .endpoint = "tcp://127.0.0.1:7003",
                                .state = REPORT_REFUSED,
                                .role = "dialled-in",
                                .schema_set = NASTY_NAME,
                                .lineage = f->notes,
                                .verdict = &f->verdicts[2],
                                .refused_by_peer = "the peer's \"policy\" says no",
                                .last_seen = 1700000200};
    f->peers[3] = (report_peer){
        .endpoint = "tcp://127.0.0.1:7004", .state = REPORT_CONNECTING, .role = "known"};
    f->node = (report_node){.id = s_key(9),
                            .lineage = f->tasks3,
                            .version = 3,
                            .endpoint = "tcp://127.0.0.1:7000",
                            .secure = true,
                            .operations = 40,
                            .parked = 2,
                            .withheld = 22,
                            .malformed = 1,
                            .apply_busy = 3,
                            .apply_io = 2,
                            .batches_waiting = 1,
                            .batches_deferred = 6,
                            .refused_keys = 4,
                            .unknown_senders = 5,
                            .dropped = {[REPORT_DROP_HELLO] = 1, [REPORT_DROP_IMPOSTOR] = 2,
                                        [REPORT_DROP_UNKNOWN] = 3, [REPORT_DROP_BEACON] = 7,
                                        [REPORT_DROP_PARTS] = 4},
                            .discovery_port = 7422,
                            .beacons_sending = true,
                            .beacons_sent = 30,
                            .beacons_heard = 21,
                            .beacons_untrusted = 4,
                            .beacons_other_mode = 1,
                            .peers_discovered = 2,
                            .parked_reasons = s_reasons,
                            .nparked_reasons = 2,
                            .peers = f->peers,
                            .npeers = 4};
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture *f = *state;
    for (int i = 0; i < 3; i++)
        stm_peer_verdict_clear(&f->verdicts[i]);
    stm_lineage_destroy(&f->tasks4);
    stm_lineage_destroy(&f->tasks3);
    stm_lineage_destroy(&f->fork);
    stm_lineage_destroy(&f->notes);
    stm_lineage_destroy(&f->empty);
    free(f);
    return 0;
}

static void s_z85(const stm_id *id, char out[41])
{
    zmq_z85_encode(out, id->bytes, STM_ID_BYTES);
}

static void s_hex(const stm_id *id, char out[STM_ID_HEX_LEN + 1])
{
    stm_id_to_hex(id, out);
}

/* ---- JSON ---- */

static json_value *s_parse_json(const char *text)
{
    char err[256] = "";
    json_value *v = json_parse(text, strlen(text), err, sizeof err);
    if (!v)
        fail_msg("the report is not JSON: %s\n%s", err, text);
    return v;
}

static const json_value *s_get(const json_value *obj, const char *key)
{
    const json_value *v = json_get(obj, key);
    if (!v)
        fail_msg("no key %s", key);
    return v;
}

static const char *s_get_str(const json_value *obj, const char *key)
{
    const json_value *v = s_get(obj, key);
    assert_int_equal(v->type, JSON_STRING);
    return v->str;
}

static long long s_get_int(const json_value *obj, const char *key)
{
    const json_value *v = s_get(obj, key);
    assert_int_equal(v->type, JSON_NUMBER);
    return strtoll(v->str, NULL, 10);
}

static void s_assert_null(const json_value *obj, const char *key)
{
    assert_int_equal(s_get(obj, key)->type, JSON_NULL);
}

/* The names in a JSON array of strings, joined by commas. */
static char *s_names(const json_value *a)
{
    assert_int_equal(a->type, JSON_ARRAY);
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < a->count; i++) {
        assert_int_equal(a->items[i]->type, JSON_STRING);
        stm_buf_printf(&b, "%s%s", i ? "," : "", a->items[i]->str);
    }
    return stm_buf_detach(&b);
}

static const json_value *s_family(const json_value *peer, const char *name)
{
    const json_value *fams = s_get(peer, "families");
    assert_int_equal(fams->type, JSON_ARRAY);
    for (size_t i = 0; i < fams->count; i++)
        if (strcmp(s_get_str(fams->items[i], "name"), name) == 0)
            return fams->items[i];
    fail_msg("no family %s", name);
    return NULL;
}

static void test_json_has_the_keys_programs_read(void **state)
{
    s_fixture *f = *state;
    char *text = stm_report_json(&f->node);
    json_value *root = s_parse_json(text);
    const json_value *node = s_get(root, "node");
    char z85[41], hex[STM_ID_HEX_LEN + 1];
    s_z85(&f->node.id, z85);
    assert_string_equal(s_get_str(node, "id"), z85);
    assert_string_equal(s_get_str(node, "schema_set"), "tasks");
    assert_int_equal(s_get_int(node, "version"), 3);
    s_hex(&stm_lineage_head(f->tasks3)->id, hex);
    assert_string_equal(s_get_str(node, "head"), hex);
    assert_string_equal(s_get_str(node, "endpoint"), "tcp://127.0.0.1:7000");
    assert_int_equal(s_get_int(node, "refused_keys"), 4);
    assert_int_equal(s_get_int(node, "apply_failures_busy"), 3);
    assert_int_equal(s_get_int(node, "apply_failures_io"), 2);
    assert_int_equal(s_get_int(node, "batches_waiting"), 1);
    assert_int_equal(s_get_int(node, "batches_deferred"), 6);
    assert_int_equal(s_get_int(node, "withheld"), 22);
    /* Dropped messages by why, every kind present; parked operations by reason. */
    const json_value *dropped = s_get(node, "dropped");
    for (int d = 0; d < REPORT_DROP_KINDS; d++) {
        char key[24];
        snprintf(key, sizeof key, "%s", stm_report_drop_name((report_drop)d));
        for (char *c = key; *c; c++)
            *c = *c == '-' ? '_' : *c;
        assert_int_equal(s_get_int(dropped, key), f->node.dropped[d]);
    }
    assert_int_equal(s_get_int(dropped, "unknown_sender"), 3);
    assert_int_equal(s_get_int(dropped, "beacon"), 7);
    /* LAN discovery: an object while it is on. */
    const json_value *disc = s_get(node, "discovery");
    assert_int_equal(disc->type, JSON_OBJECT);
    assert_int_equal(s_get_int(disc, "port"), 7422);
    assert_true(s_get(disc, "sending")->b);
    assert_int_equal(s_get_int(disc, "beacons_sent"), 30);
    assert_int_equal(s_get_int(disc, "beacons_heard"), 21);
    assert_int_equal(s_get_int(disc, "beacons_untrusted"), 4);
    assert_int_equal(s_get_int(disc, "beacons_other_mode"), 1);
    assert_int_equal(s_get_int(disc, "peers_discovered"), 2);
    assert_int_equal(s_get_int(dropped, "parts"), 4);
    assert_int_equal(s_get_int(dropped, "received"), 0);
    const json_value *reasons = s_get(node, "parked_reasons");
    assert_int_equal(reasons->type, JSON_ARRAY);
    assert_int_equal(reasons->count, 2);
    assert_string_equal(s_get_str(reasons->items[1], "reason"), NASTY_NAME);
    assert_int_equal(s_get_int(reasons->items[0], "count"), 1);
    const json_value *peers = s_get(root, "peers");
    assert_int_equal(peers->type, JSON_ARRAY);
    assert_int_equal(peers->count, 4);
    static const char *const required[] = {
        "id",     "endpoint", "state",    "role",   "relation",     "common_ancestor",
        "sync",   "reason",   "families", "ops_sent", "ops_received", "parked", "withheld"};
    for (size_t i = 0; i < peers->count; i++)
        for (size_t k = 0; k < sizeof required / sizeof required[0]; k++)
            s_get(peers->items[i], required[k]);

    /* The fork: divergent after v2, shared columns only, the tags/due_at split. */
    const json_value *p = peers->items[0];
    s_z85(&f->peers[0].id, z85);
    assert_string_equal(s_get_str(p, "id"), z85);
    assert_string_equal(s_get_str(p, "state"), "connected");
    assert_string_equal(s_get_str(p, "role"), "configured");
    assert_string_equal(s_get_str(p, "relation"), "divergent");
    assert_string_equal(s_get_str(p, "sync"), "partial");
    assert_int_equal(s_get_int(p, "version"), 3);
    const json_value *common = s_get(p, "common_ancestor");
    assert_int_equal(s_get_int(common, "version"), 2);
    s_hex(&stm_lineage_version_at(f->tasks4, 1)->id, hex);
    assert_string_equal(s_get_str(common, "id"), hex);
    char *names = s_names(s_get(s_family(p, "tasks"), "local_only"));
    assert_string_equal(names, "tags");
    free(names);
    names = s_names(s_get(s_family(p, "tasks"), "remote_only"));
    assert_string_equal(names, "due_at");
    free(names);
    assert_string_equal(s_get_str(s_family(p, "tasks"), "relation"), "divergent");
    assert_int_equal(s_get_int(p, "ops_sent"), 12);
    assert_int_equal(s_get_int(p, "parked"), 2);
    assert_int_equal(s_get_int(p, "withheld"), 1);
    assert_int_equal(s_get_int(p, "behind"), 3);
    assert_string_equal(s_get_str(p, "last_seen"), "2023-11-14T22:13:20Z");
    assert_int_equal(s_get(p, "warnings")->count, 0);

    /* tasks v4: newer, full, with the warning. */
    p = peers->items[1];
    assert_string_equal(s_get_str(p, "relation"), "ancestor");
    assert_string_equal(s_get_str(p, "sync"), "full");
    assert_int_equal(s_get_int(s_get(p, "common_ancestor"), "version"), 3);
    names = s_names(s_get(p, "warnings"));
    assert_string_equal(names, "version gap 1 is over max_version_gap 0");
    free(names);
    s_assert_null(p, "refused_by");

    /* notes: refused; the peer's own reason is the one shown. */
    p = peers->items[2];
    assert_string_equal(s_get_str(p, "schema_set"), NASTY_NAME);
    assert_string_equal(s_get_str(p, "relation"), "unrelated");
    s_assert_null(p, "common_ancestor");
    assert_string_equal(s_get_str(p, "sync"), "refused");
    assert_string_equal(s_get_str(p, "reason"), "the peer's \"policy\" says no");
    assert_string_equal(s_get_str(p, "refused_by"), "peer");

    /* Not heard from: what is unknown is null. */
    p = peers->items[3];
    s_assert_null(p, "id");
    s_assert_null(p, "schema_set");
    s_assert_null(p, "version");
    s_assert_null(p, "relation");
    s_assert_null(p, "common_ancestor");
    s_assert_null(p, "sync");
    s_assert_null(p, "last_seen");
    assert_string_equal(s_get_str(p, "state"), "connecting");
    assert_string_equal(s_get_str(p, "role"), "known");
    assert_string_equal(s_get_str(p, "reason"), "no HELLO from it yet");
    assert_int_equal(s_get(p, "families")->count, 0);
    json_free(root);
    free(text);
}

/* ---- TOML: the JSON's values, null left out ---- */

/* Fails unless t holds exactly what j does: objects and tables key by key (a JSON null
 * is an absent key), arrays item by item, numbers as integers. */
static void s_same_value(const json_value *j, const toml_value *t, const char *path)
{
    switch (j->type) {
    case JSON_OBJECT: {
        if (stm_toml_type_of(t) != TOML_TABLE)
            fail_msg("%s: not a table", path);
        size_t present = 0;
        for (size_t i = 0; i < j->count; i++) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s.%s", path, j->keys[i]);
            const toml_value *tv = stm_toml_table_get(t, j->keys[i]);
            if (j->items[i]->type == JSON_NULL) {
                if (tv)
                    fail_msg("%s: null in JSON, present in TOML", sub);
                continue;
            }
            if (!tv)
                fail_msg("%s: missing from the TOML", sub);
            present++;
            s_same_value(j->items[i], tv, sub);
        }
        if (stm_toml_table_count(t) != present)
            fail_msg("%s: the TOML has keys the JSON does not", path);
        break;
    }
    case JSON_ARRAY:
        if (stm_toml_type_of(t) != TOML_ARRAY || stm_toml_array_count(t) != j->count)
            fail_msg("%s: not an array of %zu", path, j->count);
        for (size_t i = 0; i < j->count; i++) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            s_same_value(j->items[i], stm_toml_array_at(t, i), sub);
        }
        break;
    case JSON_STRING:
        if (stm_toml_type_of(t) != TOML_STRING || strcmp(stm_toml_string(t, NULL), j->str) != 0)
            fail_msg("%s: strings differ", path);
        break;
    case JSON_NUMBER:
        if (stm_toml_type_of(t) != TOML_INTEGER || stm_toml_integer(t) != strtoll(j->str, NULL, 10))
            fail_msg("%s: numbers differ", path);
        break;
    case JSON_BOOL:
        if (stm_toml_type_of(t) != TOML_BOOL || stm_toml_bool(t) != j->b)
            fail_msg("%s: booleans differ", path);
        break;
    case JSON_NULL:
        fail_msg("%s: a null inside an array", path);
        break;
    }
}

static void s_check_toml_matches_json(const report_node *r)
{
    char *json = stm_report_json(r), *toml = stm_report_toml(r);
    json_value *j = s_parse_json(json);
    toml_value *t = NULL;
    stm_error err = {0};
    if (stm_toml_parse(toml, strlen(toml), "report.toml", &t, &err) != STM_OK)
        fail_msg("the report is not TOML: %s\n%s", err.msg, toml);
    s_same_value(j, t, "");
    stm_toml_destroy(&t);
    json_free(j);
    free(json);
    free(toml);
}

static void test_toml_holds_the_json_values(void **state)
{
    s_fixture *f = *state;
    s_check_toml_matches_json(&f->node);
    /* Its layout: [node], then [[peers]] with [[peers.families]]. */
    char *toml = stm_report_toml(&f->node);
    assert_non_null(strstr(toml, "[node]\n"));
    assert_non_null(strstr(toml, "[[peers]]\n"));
    assert_non_null(strstr(toml, "[[peers.families]]\n"));
    assert_non_null(strstr(toml, "[peers.common_ancestor]\n"));
    free(toml);
}

static void test_toml_of_a_lone_empty_node(void **state)
{
    s_fixture *f = *state;
    report_node lone = {.id = s_key(5), .lineage = f->empty, .endpoint = "tcp://[::1]:1"};
    s_check_toml_matches_json(&lone);
    char *toml = stm_report_toml(&lone);
    toml_value *t = NULL;
    stm_error err = {0};
    assert_int_equal(stm_toml_parse(toml, strlen(toml), "lone.toml", &t, &err), STM_OK);
    assert_null(stm_toml_table_get(stm_toml_table_get(t, "node"), "head"));
    assert_int_equal(stm_toml_array_count(stm_toml_table_get(t, "peers")), 0);
    stm_toml_destroy(&t);
    free(toml);
}

/* ---- DOT ---- */

/* Every line's double quotes balance, counting \" inside a string as a character: no
 * label ends early or runs on to the next line. */
static void s_assert_quotes_balance(const char *dot)
{
    bool in = false;
    int line = 1;
    for (const char *s = dot; *s; s++) {
        if (in && *s == '\\' && s[1]) {
            if (s[1] == '\n')
                fail_msg("line %d: a backslash-newline inside a string", line);
            s++;
        } else if (*s == '"') {
            in = !in;
        } else if (*s == '\n') {
            if (in)
                fail_msg("line %d: a string runs past the end of the line:\n%s", line, dot);
            line++;
        }
    }
    assert_false(in);
}

static bool s_has_line_starting(const char *dot, const char *start)
{
    buf_t b = BUF_INIT;
    stm_buf_printf(&b, "\n  %s", start);
    bool found = strstr(dot, stm_buf_str(&b)) != NULL;
    stm_buf_free(&b);
    return found;
}

/* How many lines declare a graph node whose name starts "v: (versions). */
static size_t s_count_versions(const char *dot)
{
    size_t n = 0;
    for (const char *s = strstr(dot, "\n  \"v:"); s; s = strstr(s + 1, "\n  \"v:")) {
        const char *end = strchr(s + 1, '\n');
        const char *label = strstr(s, "[label=");
        if (label && (!end || label < end))
            n++;
    }
    return n;
}

static bool s_has_edge(const char *dot, const stm_id *from, const stm_id *to)
{
    char a[STM_ID_HEX_LEN + 1], b[STM_ID_HEX_LEN + 1];
    s_hex(from, a);
    s_hex(to, b);
    buf_t line = BUF_INIT;
    stm_buf_printf(&line, "\"v:%s\" -> \"v:%s\";", a, b);
    bool found = s_has_line_starting(dot, stm_buf_str(&line));
    stm_buf_free(&line);
    return found;
}

static size_t s_count(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

/* The box `name` is joined to the version `head` (NULL: to none). */
static void s_assert_box(const char *dot, const char *name, const stm_id *head)
{
    buf_t b = BUF_INIT;
    stm_buf_printf(&b, "\"%s\" [shape=box", name);
    assert_true(s_has_line_starting(dot, stm_buf_str(&b)));
    stm_buf_reset(&b);
    stm_buf_printf(&b, "\"%s\" -> ", name);
    if (!head) {
        assert_false(s_has_line_starting(dot, stm_buf_str(&b)));
    } else {
        char hex[STM_ID_HEX_LEN + 1];
        s_hex(head, hex);
        stm_buf_printf(&b, "\"v:%s\" [style=dotted", hex);
        assert_true(s_has_line_starting(dot, stm_buf_str(&b)));
        stm_buf_reset(&b);
        stm_buf_printf(&b, "\"%s\" -> ", name);
        assert_int_equal(s_count(dot, stm_buf_str(&b)), 1);
    }
    stm_buf_free(&b);
}

static void s_box_name(const char *prefix, const stm_id *id, char out[64])
{
    char z85[41];
    s_z85(id, z85);
    snprintf(out, 64, "%s:%s", prefix, z85);
}

static void test_dot_draws_the_lineage_tree(void **state)
{
    s_fixture *f = *state;
    char *dot = stm_report_dot(&f->node);
    assert_int_equal(strncmp(dot, "digraph ", 8), 0);
    s_assert_quotes_balance(dot);

    /* tasks v1-v4, the fork's v3 and notes' two versions: each once, however many
     * lineages hold it. */
    const lineage_t *all[] = {f->tasks3, f->fork, f->tasks4, f->notes};
    size_t distinct = 0;
    for (size_t k = 0; k < 4; k++) {
        for (size_t i = 0; i < stm_lineage_count(all[k]); i++) {
            const stm_id *id = &stm_lineage_version_at(all[k], i)->id;
            bool seen = false;
            for (size_t j = 0; j < k && !seen; j++)
                for (size_t m = 0; m < stm_lineage_count(all[j]) && !seen; m++)
                    seen = stm_id_equal(id, &stm_lineage_version_at(all[j], m)->id);
            distinct += !seen;
            char hex[STM_ID_HEX_LEN + 1], decl[128];
            s_hex(id, hex);
            snprintf(decl, sizeof decl, "\"v:%s\" [label=\"v%zu %.12s\"", hex, i + 1, hex);
            assert_true(s_has_line_starting(dot, decl));
            snprintf(decl, sizeof decl, "\n  \"v:%s\" [", hex);
            assert_int_equal(s_count(dot, decl), 1);
        }
    }
    assert_int_equal(distinct, 4 + 1 + 2);
    assert_int_equal(s_count_versions(dot), distinct);

    /* Every parent -> child edge once, and no others. */
    size_t edges = 0;
    for (size_t k = 0; k < 4; k++)
        for (size_t i = 1; i < stm_lineage_count(all[k]); i++)
            assert_true(s_has_edge(dot, &stm_lineage_version_at(all[k], i - 1)->id,
                                   &stm_lineage_version_at(all[k], i)->id));
    edges = 3 /* tasks */ + 1 /* the fork's v2 -> v3 */ + 1 /* notes */;
    assert_int_equal(s_count(dot, "\" -> \"v:") - s_count(dot, "[style=dotted"), edges);
    /* The fork's v3 hangs off the shared v2. */
    assert_true(s_has_edge(dot, &stm_lineage_version_at(f->tasks4, 1)->id,
                           &stm_lineage_version_at(f->fork, 2)->id));

    /* Each box joined to its head; the unknown peer has none; the refused one dashed. */
    char name[64];
    s_box_name("node", &f->node.id, name);
    s_assert_box(dot, name, &stm_lineage_head(f->tasks3)->id);
    s_box_name("peer", &f->peers[0].id, name);
    s_assert_box(dot, name, &stm_lineage_head(f->fork)->id);
    s_box_name("peer", &f->peers[1].id, name);
    s_assert_box(dot, name, &stm_lineage_head(f->tasks4)->id);
    s_box_name("peer", &f->peers[2].id, name);
    s_assert_box(dot, name, &stm_lineage_head(f->notes)->id);
    buf_t b = BUF_INIT;
    stm_buf_printf(&b, "\"%s\" [shape=box, style=\"dashed\"", name);
    assert_true(s_has_line_starting(dot, stm_buf_str(&b)));
    stm_buf_free(&b);
    s_assert_box(dot, "peer#4", NULL);
    assert_int_equal(s_count(dot, "[shape=box"), 5);
    /* Labels: state and relation; the peer's schema set escaped. */
    assert_non_null(strstr(dot, "connected, divergent, sync partial"));
    assert_non_null(strstr(dot, "refused, unrelated, sync refused"));
    assert_non_null(strstr(dot, "no\\\"tes\\\\N\\n} x v2"));
    assert_non_null(strstr(dot, "\\nconnecting\"]"));
    free(dot);
}

static void test_dot_of_a_lone_node(void **state)
{
    s_fixture *f = *state;
    report_node lone = {
        .id = s_key(5), .lineage = f->tasks3, .version = 3, .endpoint = "tcp://127.0.0.1:1"};
    char *dot = stm_report_dot(&lone);
    s_assert_quotes_balance(dot);
    assert_int_equal(s_count_versions(dot), 3);
    char name[64];
    s_box_name("node", &lone.id, name);
    s_assert_box(dot, name, &stm_lineage_head(f->tasks3)->id);
    free(dot);
    lone.lineage = f->empty;
    lone.version = 0;
    dot = stm_report_dot(&lone);
    assert_int_equal(s_count_versions(dot), 0);
    s_assert_box(dot, name, NULL);
    free(dot);
}

/* ---- text ---- */

static void test_text_names_every_peer(void **state)
{
    s_fixture *f = *state;
    char *text = stm_report_text(&f->node);
    char hex[STM_ID_HEX_LEN + 1];
    s_hex(&f->node.id, hex);
    char line[128];
    snprintf(line, sizeof line, "node %.12s  tasks v3 (", hex);
    assert_int_equal(strncmp(text, line, strlen(line)), 0);
    for (size_t i = 0; i < 3; i++) {
        s_hex(&f->peers[i].id, hex);
        snprintf(line, sizeof line, "\npeer %.12s  %s  ", hex, f->peers[i].endpoint);
        assert_non_null(strstr(text, line));
    }
    assert_non_null(strstr(text, "\npeer ?  tcp://127.0.0.1:7004  connecting (known, not kept)\n"));
    assert_non_null(strstr(text, "  connected (chosen)  tasks v4  ancestor  sync full\n"));
    assert_non_null(strstr(text, "  tasks-fork v3  divergent  sync partial\n"));
    assert_non_null(strstr(text, "  histories parted after v2: shared columns only\n"));
    assert_non_null(strstr(text, "  warning: version gap 1 is over max_version_gap 0\n"));
    assert_non_null(strstr(text, "  refused by the peer: the peer's \"policy\" says no\n"));
    assert_non_null(strstr(text, "  sent 12, received 5, parked 2, it lacks 3\n"
                                 "  withheld: 1 row change too large to send it; stand-ins went "
                                 "in their place (the log names them)\n"));
    assert_non_null(strstr(text, "\nwithheld: 22 operations are held only as stand-ins: "));
    assert_int_equal(s_count(text, "withheld: "), 2);
    assert_null(strstr(text, "INSECURE"));
    assert_non_null(strstr(text, "\ndiscovery on UDP 7422: sending beacons and listening\n"));
    free(text);

    char *brief = stm_report_peers_text(&f->node);
    assert_int_equal(s_count(brief, "\npeer "), 4);
    assert_null(strstr(brief, "sent "));
    assert_null(strstr(brief, "refused by the peer"));
    assert_non_null(strstr(brief, "  tasks v4  ancestor  sync full\n"));
    free(brief);

    char *stats = stm_report_stats_text(&f->node);
    assert_string_equal(stats, "peers 4 (connected 2)\noperations 40 (parked 2)\nconflicts 0\nsent 13\n"
                               "received 12\nbytes sent 0\nmalformed messages 1\n"
                               "refused keys 4\nunknown senders 5\n"
                               "apply failures 5 (busy 3, io 2)\nbatches waiting 1 (deferred 6)\n"
                               "beacons sent 30\nbeacons heard 21 (untrusted 4, other mode 1)\n"
                               "peers discovered 2\n"
                               "peers kept 3 (known, not kept 1)\n"
                               "withheld 22\nwithheld from peers 1\n"
                               "pruned 0\ncompaction passes 0 (off)\n"
                               "origins 0\nbytes sent in hello 0 ack 0 vector 0\n"
                               "vector entries cut 0\n"
                               "parked 1 column not in this database\n"
                               "parked 1 " NASTY_NAME "\n"
                               "dropped not-stemma 0\ndropped protocol-version 0\n"
                               "dropped hello 1\ndropped refuse 0\ndropped ops 0\n"
                               "dropped batch 0\ndropped ack 0\ndropped impostor 2\n"
                               "dropped unknown-sender 3\ndropped untrusted 0\n"
                               "dropped beacon 7\n"
                               "dropped received 0\ndropped parts 4\n"
                               "dropped vector 0\n");
    free(stats);

    report_node lone = {.id = s_key(5), .lineage = f->empty, .endpoint = "tcp://127.0.0.1:1"};
    text = stm_report_text(&lone);
    s_hex(&lone.id, hex);
    snprintf(line, sizeof line,
             "node %.12s  nothing v0 (-)  tcp://127.0.0.1:1  INSECURE\nno peers\n", hex);
    assert_string_equal(text, line);
    free(text);
    /* Discovery on, and nothing to advertise: it listens only, and says why it sends none. */
    lone.discovery_port = 7422;
    text = stm_report_text(&lone);
    assert_non_null(strstr(text, "\ndiscovery on UDP 7422: listening only (this node cannot be "
                                 "dialled from the network, so it sends no beacon)\nno peers\n"));
    free(text);
    char *json = stm_report_json(&lone);
    assert_non_null(strstr(json, "\"sending\": false"));
    free(json);
    lone.discovery_port = 0;
    json = stm_report_json(&lone);
    assert_non_null(strstr(json, "\"discovery\": null"));
    free(json);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(stm_report_state_name(REPORT_CONNECTING), "connecting");
    assert_string_equal(stm_report_state_name(REPORT_CONNECTED), "connected");
    assert_string_equal(stm_report_state_name(REPORT_GONE), "gone");
    assert_string_equal(stm_report_state_name(REPORT_REFUSED), "refused");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_has_the_keys_programs_read, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_toml_holds_the_json_values, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_toml_of_a_lone_empty_node, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_dot_draws_the_lineage_tree, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_dot_of_a_lone_node, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_text_names_every_peer, s_setup, s_teardown),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
