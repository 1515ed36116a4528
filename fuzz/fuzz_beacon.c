/* fuzz_beacon.c - libFuzzer target: the LAN discovery beacon's decoder (node/beacon.h).
 * The work is fuzz_beacon in targets.c, shared with tests/test_fuzz_regressions.c. */
#include "fuzz/targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_beacon(data, size);
    return 0;
}
