# One CMake helper registers every test program with ctest.
# stemma_test(NAME SOURCES... [LIBS lib...]) builds tests/NAME and runs it from the
# source tree's root, so fixtures are found as tests/data/... and ../shared/... .
#
# Every test carries one ctest label, so a run can pick the kind it needs
# (`ctest --test-dir build -L unit`):
#   unit   the cmocka programs: one process, no network; the whole set in seconds
#   cli    the command-line tests in Python: the stemma binary on scratch files
#   mesh   tests that start nodes on loopback ports: mesh_test.py, and badinput_test.py,
#          whose hostile peer is played against real nodes (its damaged-file cases,
#          6 of 21, ride along), netns_test.py, whose nodes run on hosts made of
#          network namespaces, and netns_discovery_test.py, whose nodes find each
#          other by beacons in network namespaces of their own
#   fault  fault_test.py: nodes killed, stopped, starved of disk or behind a lossy proxy
function(stemma_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS unit)
endfunction()

# stemma_py_test(NAME SCRIPT LABEL) runs tests/SCRIPT on the stemma binary from the
# source tree's root, in Debian's python3 (which has python3-tomli, the independent TOML
# parser the exports are checked with, and python3-zmq).
find_program(STEMMA_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH REQUIRED)
function(stemma_py_test name script label)
  add_test(NAME ${name} COMMAND ${STEMMA_PYTHON3} tests/${script} $<TARGET_FILE:stemma>
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  # The cache of derived lineages (lineage/cache.h) in the build tree, not the user's.
  set_tests_properties(${name} PROPERTIES LABELS ${label}
                       ENVIRONMENT "STEMMA_CACHE_DIR=${CMAKE_BINARY_DIR}/test-cache")
endfunction()

add_library(stemma_testutil STATIC tests/testutil.c)
target_include_directories(stemma_testutil PUBLIC ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(stemma_testutil PUBLIC stemma_lineage PkgConfig::CMOCKA)
# Databases set up for the sync layer's tests.
add_library(stemma_dbutil STATIC tests/dbutil.c)
target_link_libraries(stemma_dbutil PUBLIC stemma_sync stemma_testutil PkgConfig::CMOCKA)

stemma_test(test_util SOURCES tests/test_util.c LIBS stemma_lineage)
stemma_test(test_schemaset SOURCES tests/test_schemaset.c LIBS stemma_lineage stemma_testutil)
# Other tools' layouts (Flyway, Diesel, sqlx, dbmate, goose, golang-migrate) read as they are.
stemma_test(test_layout SOURCES tests/test_layout.c LIBS stemma_lineage stemma_testutil)
stemma_test(test_lineage SOURCES tests/test_lineage.c LIBS stemma_lineage stemma_testutil)
stemma_test(test_relation SOURCES tests/test_relation.c LIBS stemma_lineage stemma_testutil)
stemma_test(test_syncable SOURCES tests/test_syncable.c LIBS stemma_lineage stemma_testutil)
# Which version a database made without stemma is (migrate --baseline).
stemma_test(test_baseline SOURCES tests/test_baseline.c LIBS stemma_lineage stemma_testutil)
# What migrations do to the data, found on marked rows (lineage/lens.h).
stemma_test(test_lens SOURCES tests/test_lens.c LIBS stemma_lineage stemma_testutil)
# The derived lineages and lenses kept in a cache file, and only when they are the set's.
stemma_test(test_cache SOURCES tests/test_cache.c LIBS stemma_lineage stemma_testutil)
stemma_test(test_toml SOURCES tests/test_toml.c LIBS stemma_toml)
stemma_test(test_toml_conformance SOURCES tests/test_toml_conformance.c tests/json_min.c
            LIBS stemma_toml)

stemma_py_test(cli cli_test.py cli)
# The SQLite extension from Python's own sqlite3 module: two databases synced by SQL alone.
add_test(NAME sqlext COMMAND ${STEMMA_PYTHON3} tests/sqlext_test.py $<TARGET_FILE:stemma>
         $<TARGET_FILE:stemma_sqlite> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(sqlext PROPERTIES LABELS cli
                     ENVIRONMENT "STEMMA_CACHE_DIR=${CMAKE_BINARY_DIR}/test-cache")
stemma_py_test(cli_store cli_store_test.py cli)
stemma_py_test(cli_rollback cli_rollback_test.py cli)
stemma_py_test(baseline baseline_test.py cli)
stemma_test(test_export SOURCES tests/test_export.c LIBS stemma_lineage stemma_testutil)
stemma_test(test_capture SOURCES tests/test_capture.c LIBS stemma_dbutil)
stemma_test(test_apply SOURCES tests/test_apply.c LIBS stemma_dbutil)
stemma_test(test_rowkeys SOURCES tests/test_rowkeys.c LIBS stemma_dbutil)
stemma_test(test_identity SOURCES tests/test_identity.c LIBS stemma_dbutil)
stemma_test(test_stmtcache SOURCES tests/test_stmtcache.c LIBS stemma_sync)
stemma_test(test_park SOURCES tests/test_park.c LIBS stemma_dbutil)
stemma_test(test_apply_wait SOURCES tests/test_apply_wait.c LIBS stemma_dbutil)
stemma_test(test_txn SOURCES tests/test_txn.c LIBS stemma_dbutil)
# The store's counters, kept as the data changes (stats and reports read one row).
stemma_test(test_counts SOURCES tests/test_counts.c LIBS stemma_dbutil)
# Compaction: what is pruned, what stays, the horizon, peers back after a pruning.
stemma_test(test_compact SOURCES tests/test_compact.c LIBS stemma_dbutil)
stemma_test(test_convergence SOURCES tests/test_convergence.c LIBS stemma_dbutil)
stemma_test(test_convergence_migrate SOURCES tests/test_convergence_migrate.c LIBS stemma_dbutil)
stemma_test(test_migrate SOURCES tests/test_migrate.c LIBS stemma_dbutil)
# The capture triggers across migration steps: only the changed tables' made again.
stemma_test(test_migrate_triggers SOURCES tests/test_migrate_triggers.c LIBS stemma_dbutil)
# Checked rollbacks, what a rollback drops coming back, and two migrates at once.
stemma_test(test_rollback SOURCES tests/test_rollback.c LIBS stemma_dbutil)
stemma_test(test_migrate_ops SOURCES tests/test_migrate_ops.c LIBS stemma_dbutil)
# sync/'s MessagePack reader, operations, codec and version vectors, one program each;
# they share tests/codecutil.c (built operations, round trips, MessagePack crafted by hand).
add_library(stemma_codecutil STATIC tests/codecutil.c)
target_link_libraries(stemma_codecutil PUBLIC stemma_sync PkgConfig::CMOCKA)
stemma_test(test_msgread SOURCES tests/test_msgread.c LIBS stemma_sync stemma_codecutil)
stemma_test(test_op SOURCES tests/test_op.c LIBS stemma_sync stemma_codecutil)
stemma_test(test_codec SOURCES tests/test_codec.c LIBS stemma_sync stemma_codecutil)
stemma_test(test_codec_round_trip SOURCES tests/test_codec_round_trip.c
            LIBS stemma_sync stemma_codecutil)
stemma_test(test_vector SOURCES tests/test_vector.c LIBS stemma_sync stemma_codecutil)
stemma_test(test_rowclock SOURCES tests/test_rowclock.c LIBS stemma_sync stemma_testutil)
stemma_test(test_bundle SOURCES tests/test_bundle.c LIBS stemma_dbutil)
stemma_test(test_store SOURCES tests/test_store.c LIBS stemma_dbutil Threads::Threads)
stemma_test(test_oplog SOURCES tests/test_oplog.c LIBS stemma_dbutil)
stemma_py_test(cli_sync cli_sync_test.py cli)
stemma_py_test(mesh mesh_test.py mesh)
# Compaction between real nodes: a peer offline through a pruning, a known peer holding it back.
stemma_py_test(compact compact_test.py mesh)
# Many origins between real nodes: deltas, reconnections, restarts, an older peer, more
# origins than one message carries. It reuses mesh_test.py's nodes.
stemma_py_test(origins origins_test.py mesh)
# One peer's anti-entropy and the inbound queue, through buffers: no sockets.
stemma_test(test_session SOURCES tests/test_session.c LIBS stemma_dbutil)
# What a node sends in order of arrival (sync/feed.h), and the reader walking it.
stemma_test(test_feed SOURCES tests/test_feed.c LIBS stemma_dbutil stemma_codecutil)
# The vectors two sessions exchange: whole, as deltas over a digest, in parts, cut.
stemma_test(test_vdelta SOURCES tests/test_vdelta.c LIBS stemma_sync stemma_codecutil)
# Faults a node survives (docs/hardening.md, "Faults"): kill -9, a locked, full or read-only
# database, a lossy network (tests/lossy_proxy.py). It reuses mesh_test.py's nodes.
stemma_py_test(fault fault_test.py fault)
# The [policy] held per operation, whoever relays it (node/admit.h). It reuses mesh_test.py's nodes.
stemma_py_test(policy policy_test.py mesh)
# Bad input at every trust boundary, end to end (docs/hardening.md, "Bad input"). Most
# of it plays a hostile peer against running nodes (mesh_test.py's), so it is a mesh test.
stemma_py_test(badinput badinput_test.py mesh)
# Nodes on separate hosts: network namespaces joined by veth pairs, as root (a wildcard
# bind on two hosts, devices that cannot be dialled behind a hub). Without namespaces the
# test exits 77, which ctest reports as skipped.
stemma_py_test(netns netns_test.py mesh)
set_tests_properties(netns PROPERTIES SKIP_RETURN_CODE 77)
# LAN discovery: nodes that find each other by UDP beacons, each in a network namespace
# of its own joined by a bridge (root only: skipped, with a line saying so, where
# namespaces cannot be made), and two on loopback.
stemma_py_test(netns_discovery netns_discovery_test.py mesh)
stemma_test(test_wire SOURCES tests/test_wire.c LIBS stemma_node stemma_testutil)
stemma_test(test_parts SOURCES tests/test_parts.c LIBS stemma_node)
# The peer's state machine: its table against the diagram atop node/peer.c.
stemma_test(test_peer SOURCES tests/test_peer.c LIBS stemma_node stemma_testutil)
# The policy judged per operation by its writer's version, and the applier's filter.
stemma_test(test_admit SOURCES tests/test_admit.c LIBS stemma_node stemma_dbutil)
# node/'s files, one program per module; they share tests/nodeutil.c (a known key pair,
# node.toml written and refused).
add_library(stemma_nodeutil STATIC tests/nodeutil.c)
target_link_libraries(stemma_nodeutil PUBLIC stemma_node stemma_testutil PkgConfig::CMOCKA)
stemma_test(test_keys SOURCES tests/test_keys.c LIBS stemma_node stemma_nodeutil)
stemma_test(test_endpoint SOURCES tests/test_endpoint.c LIBS stemma_node)
# The one descriptor an application polls for an embedded node's sockets.
stemma_test(test_pollfd SOURCES tests/test_pollfd.c LIBS stemma_node)
stemma_test(test_beacon SOURCES tests/test_beacon.c LIBS stemma_node)
stemma_test(test_known_peers SOURCES tests/test_known_peers.c LIBS stemma_node stemma_nodeutil)
stemma_test(test_dirlock SOURCES tests/test_dirlock.c LIBS stemma_node stemma_testutil)
stemma_test(test_settings SOURCES tests/test_settings.c LIBS stemma_node stemma_nodeutil)
stemma_test(test_node_config SOURCES tests/test_node_config.c LIBS stemma_node stemma_nodeutil)
stemma_py_test(cli_node cli_node_test.py cli)
# Data written at every version of four real migration histories, synced with databases at
# other versions (tests/realschema_test.py). The histories live outside the repository
# (../shared/real-schemas or $STEMMA_REAL_SCHEMAS); without them the test exits 77, which
# ctest reports as skipped rather than passed.
stemma_py_test(realschema realschema_test.py cli)
set_tests_properties(realschema PROPERTIES SKIP_RETURN_CODE 77)
# Databases of the same histories made without stemma, adopted (migrate --baseline).
stemma_py_test(baseline_realschema baseline_realschema_test.py cli)
set_tests_properties(baseline_realschema PROPERTIES SKIP_RETURN_CODE 77)
# The same histories in Flyway's, Diesel's, sqlx's, dbmate's, goose's and golang-migrate's
# layouts, made at test time: the same ids as stemma's own (tests/layouts_test.py).
stemma_py_test(layouts layouts_test.py cli)
set_tests_properties(layouts PROPERTIES SKIP_RETURN_CODE 77)
stemma_test(test_report SOURCES tests/test_report.c tests/json_min.c
            LIBS stemma_node stemma_testutil)
# Every input a fuzzer ever crashed on, and a few seeds, through the fuzz targets' code
# (fuzz/targets.c; docs/hardening.md, "Fuzzing").
stemma_test(test_fuzz_regressions SOURCES tests/test_fuzz_regressions.c fuzz/targets.c
            LIBS stemma_node stemma_testutil)

# The public API through the shared library alone: lineages, compare, migrate, bundles.
# (tests/testutil's scratch directories beside it: linked statically, whose stm_ names
# the shared library's hidden ones never meet).
stemma_test(test_api SOURCES tests/test_api.c LIBS stemma_shared stemma_testutil PkgConfig::SQLITE)
# The public API (include/stemma.h): a node embedded by examples/embed_node.c, stepped by
# its loop and on a thread of its own, syncs with a `stemma node` process (it reuses
# mesh_test.py's nodes).
add_test(NAME embed COMMAND ${STEMMA_PYTHON3} tests/embed_test.py $<TARGET_FILE:stemma>
         $<TARGET_FILE:embed_node> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(embed PROPERTIES LABELS mesh
                     ENVIRONMENT "STEMMA_CACHE_DIR=${CMAKE_BINARY_DIR}/test-cache")

# `stemma node` under a Type=notify unit: READY=1 once bound, STOPPING=1 as it stops.
stemma_py_test(service service_test.py mesh)
# stemma installed into a staging prefix: pkg-config, the example built against the
# installed header and library (shared and static) and syncing, nm -D, the manual pages
# against --help and the settings, the demo run from elsewhere, the unit, completion.
add_test(NAME install COMMAND ${STEMMA_PYTHON3} tests/install_test.py ${CMAKE_BINARY_DIR}
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(install PROPERTIES LABELS mesh
                     ENVIRONMENT "STEMMA_CACHE_DIR=${CMAKE_BINARY_DIR}/test-cache")

# Last, after every test: a test without a label would be left out of every labelled run.
get_property(stemma_tests DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTY TESTS)
foreach(t IN LISTS stemma_tests)
  get_test_property(${t} LABELS labels)
  if(NOT labels)
    message(FATAL_ERROR "test ${t} has no ctest label (unit, cli, mesh or fault): "
                        "register it with stemma_test() or stemma_py_test()")
  endif()
endforeach()
# Every exported name of the libraries carries the stm_ prefix (linked into an
# application, they must not clash with its other libraries), and the shared libstemma
# exports the public API's stemma_ names and nothing else.
add_test(NAME symbols COMMAND ${STEMMA_PYTHON3} tests/symbols_test.py
         $<TARGET_FILE:stemma_base> $<TARGET_FILE:stemma_toml> $<TARGET_FILE:stemma_lineage>
         $<TARGET_FILE:stemma_sync> $<TARGET_FILE:stemma_node> $<TARGET_FILE:stemma_static>
         $<TARGET_FILE:stemma_shared>
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(symbols PROPERTIES LABELS unit)
# Which learned peers a node dials (node/choose.h): buckets by the bits ids share, and
# the meshes such choices make connected.
stemma_test(test_choose SOURCES tests/test_choose.c LIBS stemma_node)
# Which peers a node keeps (node/mesh.h): chosen up to k, let in up to 2k, let go and
# replaced, bounded by the descriptors; an idle link's PING. No sockets.
stemma_test(test_mesh SOURCES tests/test_mesh.c LIBS stemma_node stemma_testutil)
# A sparse mesh between real nodes that all trust each other: a few peers each, every
# write everywhere, about one copy of each operation per node, a way round peers that
# stop, and a node short of file descriptors. It reuses mesh_test.py's nodes.
stemma_py_test(sparse sparse_test.py mesh)
