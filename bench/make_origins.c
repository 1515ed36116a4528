/* make_origins - a database holding many origins, made in seconds: for the origins
 * benchmark (bench_origins) and the mesh test of more origins than one message carries
 * (tests/mesh_test.py, ManyOrigins), where N real devices writing once each would take
 * N processes.
 *
 *   make_origins DB N [PREFIX]
 *
 * DB is a database stemma migrate set up with schemas/tasks. Applies, with the applier,
 * one row change of `lists` from each of N random origins (row PREFIX0 .. PREFIX(N-1),
 * "o" by default: three operations, seq 1 to 3, each its own origin's first), in batches
 * of 1,000 row changes and one transaction, as a node applies what peers send. Prints
 * nothing; one line on stderr and exit 1 on failure. */
#include "sync/apply.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_check(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK) {
        fprintf(stderr, "make_origins: %s\n", err->msg);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3 || atol(argv[2]) < 1 || sodium_init() < 0) {
        fprintf(stderr, "usage: make_origins DB N [PREFIX]\n");
        return 1;
    }
    const char *db = argv[1], *prefix = argc > 3 ? argv[3] : "o";
    long n = atol(argv[2]);
    store_t *store = NULL;
    stm_error err = {0};
    s_check(stm_store_open(db, STORE_OPEN_EXISTING, &store, &err), &err);
    stm_id version;
    s_check(stm_store_version_id(store, &version, &err), &err);
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    opbatch_t *batch = stm_opbatch_new();
    apply_stats st = {0};
    s_check(stm_applier_begin(applier, &err), &err);
    char key[64], name[64];
    static const char *const cols[3] = {"id", "name", "created_at"};
    for (long i = 0; i < n; i++) {
        op_t op;
        memset(&op, 0, sizeof op);
        randombytes_buf(op.origin.bytes, sizeof op.origin.bytes);
        op.hlc = ((uint64_t)1700000000000 + (uint64_t)i) << 16;
        op.version_id = version;
        op.table = "lists";
        snprintf(key, sizeof key, "%.40s%ld", prefix, i);
        snprintf(name, sizeof name, "origin %ld", i);
        op.pk = (op_value){.type = VALUE_TEXT, .bytes = key, .len = strlen(key)};
        op.affinity = 'T';
        for (int c = 0; c < 3; c++) {
            op.seq = (uint64_t)c + 1;
            op.column = cols[c];
            const char *v = c == 0 ? key : c == 1 ? name : "2026-01-01";
            op.value = (op_value){.type = VALUE_TEXT, .bytes = v, .len = strlen(v)};
            stm_opbatch_add(batch, &op);
        }
        if (stm_opbatch_count(batch) >= 3000 || i + 1 == n) {
            s_check(stm_applier_apply(applier, batch, &st, &err), &err);
            stm_opbatch_clear(batch);
        }
    }
    s_check(stm_applier_commit(applier, &err), &err);
    stm_opbatch_destroy(&batch);
    stm_applier_destroy(&applier);
    stm_store_destroy(&store);
    return 0;
}
