/* fuzz_wire.c - libFuzzer target: the mesh message decoders (HELLO, REFUSE, OPS, ACK).
 * The work is fuzz_wire in targets.c, shared with tests/test_fuzz_regressions.c. */
#include "fuzz/targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_wire(data, size);
    return 0;
}
