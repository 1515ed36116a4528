/* fuzz_codec.c - libFuzzer target: operation batches and version vectors in MessagePack.
 * The work is fuzz_codec in targets.c, shared with tests/test_fuzz_regressions.c. */
#include "fuzz/targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_codec(data, size);
    return 0;
}
