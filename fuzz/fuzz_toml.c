/* fuzz_toml.c - libFuzzer target: the TOML parser and emitter, and the lineage reader.
 * The work is fuzz_toml in targets.c, shared with tests/test_fuzz_regressions.c. */
#include "fuzz/targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_toml(data, size);
    return 0;
}
