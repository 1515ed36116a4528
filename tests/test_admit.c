/* Tests of node/admit: the policy judged per operation by its writer's version, and the
 * applier's filter (sync/apply.h, invariant 10) parking what it refuses and retrying it.
 *
 * Two branches of one history: both start with items (id, name); branch A adds notes
 * (v2) and later qty (v3); branch B adds qty (v2) and a tags table (v3). */
#include "dbutil.h"
#include "node/admit.h"
#include "node/config.h"
#include "sync/apply.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEMS "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT);\n"
#define NOTES "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT);\n"
#define QTY "ALTER TABLE items ADD COLUMN qty INTEGER;\n"
#define TAGS "CREATE TABLE tags (id TEXT PRIMARY KEY, label TEXT);\n"

typedef struct {
    lineage_t *a;  /* branch A: v1 items, v2 notes, v3 qty */
    lineage_t *b;  /* branch B: v1 items, v2 qty, v3 tags */
    lineage_t *a2; /* A at v2: the database's lineage */
    lineage_t *b3; /* B at v3, as a HELLO describes it */
    peer_policy policy;
    admit_t *admit;
    char reason[256];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->a = tu_lineage_files_ok((const char *const[]){"001_items.sql", ITEMS, "002_notes.sql",
                                                     NOTES, "003_qty.sql", QTY, NULL});
    f->b = tu_lineage_files_ok((const char *const[]){"001_items.sql", ITEMS, "002_qty.sql", QTY,
                                                     "003_tags.sql", TAGS, NULL});
    f->a2 = stm_lineage_prefix(f->a, 2);
    f->b3 = stm_lineage_prefix(f->b, 3);
    stm_config_policy_default(&f->policy);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_admit_destroy(&f->admit);
    stm_lineage_destroy(&f->a);
    stm_lineage_destroy(&f->b);
    stm_lineage_destroy(&f->a2);
    stm_lineage_destroy(&f->b3);
    free(f);
    return 0;
}

static const stm_id *s_id(const lineage_t *l, int number)
{
    return &stm_lineage_version_at(l, (size_t)number - 1)->id;
}

/* An admit for the database at A v2, the set A whole, under f->policy. */
static void s_admit(fixture *f)
{
    stm_admit_destroy(&f->admit);
    f->admit = stm_admit_new(&f->policy);
    stm_admit_set_local(f->admit, f->a2, f->a, NULL);
}

static bool s_ok(fixture *f, const stm_id *version, const char *table, const char *column)
{
    f->reason[0] = '\0';
    return stm_admit_filter(f->admit, version, table, column, f->reason, sizeof f->reason);
}

static void test_a_divergent_version_syncs_only_what_is_shared(void **state)
{
    fixture *f = *state;
    s_admit(f);
    assert_true(stm_admit_learn(f->admit, f->b3, NULL));
    const stm_id *b3 = s_id(f->b, 3);
    assert_true(s_ok(f, b3, "items", "name"));
    assert_true(s_ok(f, b3, "ITEMS", "id"));
    assert_true(s_ok(f, b3, "items", NULL)); /* a row delete of a shared table */
    assert_false(s_ok(f, b3, "items", "qty"));
    assert_non_null(strstr(f->reason, "items.qty not shared with version "));
    assert_non_null(strstr(f->reason, "(divergent; [policy] divergent = \"shared\")"));
    assert_false(s_ok(f, b3, "tags", "label"));
    assert_non_null(strstr(f->reason, "tags (table) not shared"));
    assert_false(s_ok(f, b3, "tags", NULL));
    /* A version inside the lineage learned is judged by its chain: B v2 parted from A
     * after v1 as well. */
    assert_false(s_ok(f, s_id(f->b, 2), "items", "qty"));
    assert_true(s_ok(f, s_id(f->b, 2), "items", "name"));
}

static void test_full_admits_and_none_refuses_everything(void **state)
{
    fixture *f = *state;
    f->policy.mode[RELATION_DIVERGENT] = POLICY_FULL;
    s_admit(f);
    stm_admit_learn(f->admit, f->b3, NULL);
    assert_true(s_ok(f, s_id(f->b, 3), "items", "qty"));
    assert_true(s_ok(f, s_id(f->b, 3), "tags", "label"));
    f->policy.mode[RELATION_DIVERGENT] = POLICY_NONE;
    s_admit(f);
    stm_admit_learn(f->admit, f->b3, NULL);
    assert_false(s_ok(f, s_id(f->b, 3), "items", "name"));
    assert_non_null(strstr(f->reason, "nothing syncs with version "));
    assert_non_null(strstr(f->reason, "[policy] divergent = \"none\""));
}

static void test_an_undescribed_version_parks_until_a_hello_describes_it(void **state)
{
    fixture *f = *state;
    s_admit(f);
    const stm_id *b3 = s_id(f->b, 3);
    assert_false(s_ok(f, b3, "items", "name"));
    char id[STM_ID_SHORT_LEN + 1];
    stm_id_short(b3, id);
    char want[128];
    snprintf(want, sizeof want, "version %s unknown: no peer has described it", id);
    assert_string_equal(f->reason, want);
    assert_int_equal(stm_admit_known_count(f->admit), 0);
    assert_true(stm_admit_learn(f->admit, f->b3, NULL));
    assert_true(s_ok(f, b3, "items", "name"));
    /* Told again, or told a version this side's history holds: nothing new. */
    assert_false(stm_admit_learn(f->admit, f->b3, NULL));
    assert_false(stm_admit_learn(f->admit, f->a, NULL));
    assert_int_equal(stm_admit_known_count(f->admit), 1);
}

static void test_this_history_describes_its_own_versions(void **state)
{
    fixture *f = *state;
    f->policy.mode[RELATION_ANCESTOR] = POLICY_SHARED;
    s_admit(f);
    /* Same and older: full by default, no HELLO needed. */
    assert_true(s_ok(f, s_id(f->a, 2), "notes", "body"));
    assert_true(s_ok(f, s_id(f->a, 1), "items", "name"));
    /* Newer, in the schema set (ancestor, shared by this policy): qty is only there. */
    assert_false(s_ok(f, s_id(f->a, 3), "items", "qty"));
    assert_non_null(strstr(f->reason, "(ancestor; [policy] ancestor = \"shared\")"));
    assert_true(s_ok(f, s_id(f->a, 3), "items", "name"));
}

static void test_learned_lineages_are_bounded(void **state)
{
    fixture *f = *state;
    s_admit(f);
    /* ADMIT_KNOWN_MAX + 1 histories, each its own: the first is forgotten. */
    lineage_t *first = NULL;
    for (int i = 0; i <= ADMIT_KNOWN_MAX; i++) {
        char text[128];
        snprintf(text, sizeof text, "CREATE TABLE t%d (id TEXT PRIMARY KEY);\n", i);
        lineage_t *l = tu_lineage_files_ok((const char *const[]){"001_t.sql", text, NULL});
        assert_true(stm_admit_learn(f->admit, l, NULL));
        if (i == 0)
            first = l;
        else
            stm_lineage_destroy(&l);
    }
    assert_int_equal(stm_admit_known_count(f->admit), ADMIT_KNOWN_MAX);
    assert_false(s_ok(f, s_id(first, 1), "t0", "id"));
    assert_non_null(strstr(f->reason, "unknown"));
    stm_lineage_destroy(&first);
}

/* ---- the applier's filter ---- */

static void s_op(opbatch_t *b, uint64_t seq, const stm_id *version, const char *column,
                 char affinity, const char *value)
{
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, 0xb2, STM_ID_BYTES);
    op.seq = seq;
    op.hlc = (uint64_t)1000 << 16;
    op.version_id = *version;
    op.table = "items";
    op.pk = (op_value){.type = VALUE_TEXT, .bytes = "i1", .len = 2};
    op.column = column;
    op.affinity = affinity;
    op.value = (op_value){.type = VALUE_TEXT, .bytes = value, .len = strlen(value)};
    if (affinity == 'I')
        op.value = (op_value){.type = VALUE_INTEGER, .i = atoi(value)};
    stm_opbatch_add(b, &op);
}

static void test_the_applier_parks_what_the_policy_refuses_and_retries_it(void **state)
{
    fixture *f = *state;
    s_admit(f);
    stm_admit_learn(f->admit, f->b3, NULL);
    char *dir = tu_tmpdir();
    char *path = tu_path(dir, "app.db");
    store_t *store = du_setup(path, ITEMS NOTES, s_id(f->a, 2));
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    stm_applier_set_filter(applier, stm_admit_filter, f->admit);
    opbatch_t *b = stm_opbatch_new();
    const stm_id *b3 = s_id(f->b, 3);
    s_op(b, 1, b3, "id", 'T', "i1");
    s_op(b, 2, b3, "name", 'T', "bolt");
    s_op(b, 3, b3, "qty", 'I', "7");
    apply_stats st = {0};
    stm_error err = {0};
    assert_int_equal(stm_applier_apply(applier, b, &st, &err), STM_OK);
    assert_int_equal(st.applied, 2);
    assert_int_equal(st.parked, 1);
    assert_int_equal(du_int(store, "SELECT count(*) FROM items WHERE name = 'bolt'"), 1);
    assert_int_equal(du_int(store, "SELECT count(*) FROM stemma_parked WHERE kind = 'policy' AND "
                                   "reason LIKE 'items.qty not shared with version %'"),
                     1);
    /* A replay without the policy (a migration's) leaves it parked. */
    applier_t *plain = stm_applier_new(store, NULL, NULL);
    apply_stats replay = {0};
    assert_int_equal(stm_applier_replay(plain, &replay, &err), STM_OK);
    assert_int_equal(stm_applier_retry_policy(plain, &replay, &err), STM_OK);
    assert_int_equal(replay.replayed, 0);
    assert_int_equal(du_int(store, "SELECT count(*) FROM stemma_parked WHERE kind = 'policy'"), 1);
    stm_applier_destroy(&plain);
    /* This side migrates to A v3, which has qty too: shared now, so the retry applies it. */
    du_migrate(store, QTY);
    stm_admit_set_local(f->admit, f->a, f->a, NULL);
    assert_int_equal(stm_applier_retry_policy(applier, &replay, &err), STM_OK);
    assert_int_equal(replay.replayed, 1);
    assert_int_equal(du_int(store, "SELECT qty FROM items WHERE id = 'i1'"), 7);
    assert_int_equal(du_int(store, "SELECT count(*) FROM stemma_parked"), 0);
    stm_opbatch_destroy(&b);
    stm_applier_destroy(&applier);
    stm_store_destroy(&store);
    tu_remove_tree(dir);
    free(path);
    free(dir);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_divergent_version_syncs_only_what_is_shared),
        T(test_full_admits_and_none_refuses_everything),
        T(test_an_undescribed_version_parks_until_a_hello_describes_it),
        T(test_this_history_describes_its_own_versions),
        T(test_learned_lineages_are_bounded),
        T(test_the_applier_parks_what_the_policy_refuses_and_retries_it),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
