# The libFuzzer targets, included by CMakeLists.txt when STEMMA_FUZZ is on (clang, and
# every library already built with ASan, UBSan and -fsanitize=fuzzer-no-link). Each
# target is a few lines around its function in fuzz/targets.c, which the regression test
# (tests/test_fuzz_regressions.c) compiles too. `cmake --build DIR --target fuzz` builds
# them all; scripts/fuzz runs them.
add_library(stemma_fuzz_targets STATIC fuzz/targets.c)
target_link_libraries(stemma_fuzz_targets PUBLIC stemma_node)

set(STEMMA_FUZZ_TARGETS toml wire codec bundle judge beacon)
foreach(t ${STEMMA_FUZZ_TARGETS})
  add_executable(fuzz_${t} fuzz/fuzz_${t}.c)
  target_link_libraries(fuzz_${t} PRIVATE stemma_fuzz_targets)
  target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
endforeach()

# Writes the wire, judge, codec and beacon seeds with the real encoders (fuzz/make_corpus.sh).
add_executable(make_corpus fuzz/make_corpus.c)
target_link_libraries(make_corpus PRIVATE stemma_node)

list(TRANSFORM STEMMA_FUZZ_TARGETS PREPEND fuzz_ OUTPUT_VARIABLE STEMMA_FUZZ_PROGRAMS)
add_custom_target(fuzz DEPENDS ${STEMMA_FUZZ_PROGRAMS} make_corpus stemma)
