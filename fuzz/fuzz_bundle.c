/* fuzz_bundle.c - libFuzzer target: bundle and vector files.
 * The work is fuzz_bundle in targets.c, shared with tests/test_fuzz_regressions.c. */
#include "fuzz/targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_bundle(data, size);
    return 0;
}
