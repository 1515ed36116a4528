# One CMake helper registers every test program with ctest.
# stemma_test(NAME SOURCES... [LIBS lib...]) builds tests/NAME and runs it from the
# source tree's root, so fixtures are found as tests/data/... and ../shared/... .
function(stemma_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
endfunction()

add_library(stemma_testutil STATIC tests/testutil.c)
target_include_directories(stemma_testutil PUBLIC ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(stemma_testutil PUBLIC stemma_lineage PkgConfig::CMOCKA)
# Databases set up for the sync layer's tests.
add_library(stemma_dbutil STATIC tests/dbutil.c)
target_link_libraries(stemma_dbutil PUBLIC stemma_sync stemma_testutil PkgConfig::CMOCKA)

stemma_test(test_util SOURCES tests/test_util.c LIBS stemma_lineage)
stemma_test(test_schemaset SOURCES tests/test_schemaset.c LIBS stemma_lineage stemma_testutil)
stemma_test(test_lineage SOURCES tests/test_lineage.c LIBS stemma_lineage stemma_testutil)
stemma_test(test_relation SOURCES tests/test_relation.c LIBS stemma_lineage stemma_testutil)
stemma_test(test_toml SOURCES tests/test_toml.c LIBS stemma_toml)
stemma_test(test_toml_conformance SOURCES tests/test_toml_conformance.c tests/json_min.c
            LIBS stemma_toml)

# Command-line tests, in Debian's python3 (which has python3-tomli, the independent
# TOML parser the exports are checked with).
find_program(STEMMA_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH REQUIRED)
add_test(NAME cli COMMAND ${STEMMA_PYTHON3} tests/cli_test.py $<TARGET_FILE:stemma>
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
add_test(NAME cli_store COMMAND ${STEMMA_PYTHON3} tests/cli_store_test.py $<TARGET_FILE:stemma>
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
stemma_test(test_export SOURCES tests/test_export.c LIBS stemma_lineage stemma_testutil)
stemma_test(test_capture SOURCES tests/test_capture.c LIBS stemma_dbutil)
stemma_test(test_apply SOURCES tests/test_apply.c LIBS stemma_dbutil)
stemma_test(test_stmtcache SOURCES tests/test_stmtcache.c LIBS stemma_sync)
stemma_test(test_park SOURCES tests/test_park.c LIBS stemma_dbutil)
stemma_test(test_txn SOURCES tests/test_txn.c LIBS stemma_dbutil)
stemma_test(test_convergence SOURCES tests/test_convergence.c LIBS stemma_dbutil)
stemma_test(test_migrate SOURCES tests/test_migrate.c LIBS stemma_dbutil)
stemma_test(test_codec SOURCES tests/test_codec.c LIBS stemma_sync stemma_testutil)
stemma_test(test_rowclock SOURCES tests/test_rowclock.c LIBS stemma_sync stemma_testutil)
stemma_test(test_bundle SOURCES tests/test_bundle.c LIBS stemma_dbutil)
add_test(NAME cli_sync COMMAND ${STEMMA_PYTHON3} tests/cli_sync_test.py $<TARGET_FILE:stemma>
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
add_test(NAME mesh COMMAND ${STEMMA_PYTHON3} tests/mesh_test.py $<TARGET_FILE:stemma> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
# Faults a node survives (docs/hardening.md, "Faults"): kill -9, a locked, full or read-only
# database, a lossy network (tests/lossy_proxy.py). It reuses mesh_test.py's nodes.
add_test(NAME fault COMMAND ${STEMMA_PYTHON3} tests/fault_test.py $<TARGET_FILE:stemma>
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
# Bad input at every trust boundary, end to end (docs/hardening.md, "Bad input").
add_test(NAME badinput COMMAND ${STEMMA_PYTHON3} tests/badinput_test.py $<TARGET_FILE:stemma>
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
stemma_test(test_wire SOURCES tests/test_wire.c LIBS stemma_node stemma_testutil)
stemma_test(test_node_config SOURCES tests/test_node_config.c LIBS stemma_node stemma_testutil)
add_test(NAME cli_node COMMAND ${STEMMA_PYTHON3} tests/cli_node_test.py $<TARGET_FILE:stemma>
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
stemma_test(test_report SOURCES tests/test_report.c tests/json_min.c
            LIBS stemma_node stemma_testutil)
# Every input a fuzzer ever crashed on, and a few seeds, through the fuzz targets' code
# (fuzz/targets.c; docs/hardening.md, "Fuzzing").
stemma_test(test_fuzz_regressions SOURCES tests/test_fuzz_regressions.c fuzz/targets.c
            LIBS stemma_node stemma_testutil)
