/* targets.h - what each fuzz target does with one input, shared by the libFuzzer
 * programs (fuzz/fuzz_*.c) and the regression test (tests/test_fuzz_regressions.c), so
 * a crash file found by a fuzzer reproduces in the ordinary test build too.
 *
 * Each function feeds its input to one entry point for untrusted bytes and checks what
 * the decoder promises (a decoded value encodes and decodes back to the same thing, a
 * failed decode changes nothing). Bad input must be refused cleanly; a broken promise is
 * a bug, reported on stderr followed by abort(), which both libFuzzer and ctest see. The
 * functions free everything they allocate, so a leak shows under LeakSanitizer.
 *
 * Inputs per target (docs/hardening.md, "Fuzzing"):
 *   toml    a TOML document; also read as an exported lineage
 *   wire    byte 0 picks the message (0 HELLO, 1 REFUSE, 2 OPS, 3 ACK, modulo 4); the rest
 *           is its body, after a valid "STMW" header
 *   codec   an operation batch, and the same bytes as a version vector
 *   bundle  a bundle file, and the same bytes as a vector file; each again with the digest
 *           at its end made right, since a fuzzer cannot forge it
 *   judge   a HELLO's body, judged against the tasks schema set's lineage
 *   beacon  a UDP datagram as LAN discovery hears it (node/beacon.h) */
#ifndef STM_FUZZ_TARGETS_H
#define STM_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

void fuzz_toml(const uint8_t *data, size_t size);
void fuzz_wire(const uint8_t *data, size_t size);
void fuzz_codec(const uint8_t *data, size_t size);
void fuzz_bundle(const uint8_t *data, size_t size);
void fuzz_beacon(const uint8_t *data, size_t size);

/* Builds the local lineage fuzz_judge compares against, from ROOT/schemas/tasks, where
 * ROOT is root, else $STEMMA_ROOT, else the current directory. Aborts when it cannot.
 * Safe to call again (does nothing the second time). */
void fuzz_judge_init(const char *root);
void fuzz_judge(const uint8_t *data, size_t size);
/* Frees what fuzz_judge_init built (for a leak-checked test program). */
void fuzz_judge_fini(void);

#endif
