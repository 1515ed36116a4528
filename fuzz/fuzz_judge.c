/* fuzz_judge.c - libFuzzer target: a peer's HELLO judged against the tasks lineage.
 * The work is fuzz_judge in targets.c, shared with tests/test_fuzz_regressions.c. */
#include "fuzz/targets.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The local lineage is built once, from $STEMMA_ROOT/schemas/tasks (or ./schemas/tasks). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_judge_init(NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_judge(data, size);
    return 0;
}
