# What `cmake --install` puts in place, and the .deb CPack makes of it (scripts/package).
#
#   bin/stemma                                  the command and daemon
#   lib/libstemma.so.0 (and .so, .a)            libstemma (include/stemma.h)
#   include/stemma.h, lib/pkgconfig/stemma.pc   to build against it
#   share/man/man1/stemma.1                     made from `stemma --help` and each command's
#   share/man/man5/stemma-node.toml.5           made from the table of settings
#   share/bash-completion/completions/stemma    bash completion
#   lib/systemd/system/stemma@.service          one node per /var/lib/stemma/NAME
#   share/stemma/schemas/                       the demo's schema sets (stemma demo)
#   share/doc/stemma/examples/embed_node.c      the embedding example

# The manual pages, written by man/genman.c from what they describe.
add_executable(stemma_genman man/genman.c)
target_link_libraries(stemma_genman PRIVATE stemma_node)
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/man/stemma.1
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
  COMMAND stemma_genman cli $<TARGET_FILE:stemma> ${PROJECT_VERSION} > ${CMAKE_BINARY_DIR}/man/stemma.1
  DEPENDS stemma stemma_genman
  COMMENT "Writing stemma(1) from stemma --help")
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/man/stemma-node.toml.5
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
  COMMAND stemma_genman settings ${PROJECT_VERSION} > ${CMAKE_BINARY_DIR}/man/stemma-node.toml.5
  DEPENDS stemma_genman
  COMMENT "Writing stemma-node.toml(5) from the table of settings")
add_custom_target(stemma_man ALL DEPENDS ${CMAKE_BINARY_DIR}/man/stemma.1
                                         ${CMAKE_BINARY_DIR}/man/stemma-node.toml.5)

install(TARGETS stemma RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS stemma_shared stemma_static
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# The SQLite extension in a directory of its own: `.load DIR/stemma` names it.
install(TARGETS stemma_sqlite LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/stemma)
install(FILES include/stemma.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_BINARY_DIR}/stemma.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(FILES ${CMAKE_BINARY_DIR}/man/stemma.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_BINARY_DIR}/man/stemma-node.toml.5
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES packaging/stemma.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME stemma)
# The unit names the binary where it is installed: written at install time, when the
# prefix is known (--prefix, or CPack's /usr).
install(CODE "
  set(STEMMA_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/packaging/stemma@.service.in\"
                 \"${CMAKE_BINARY_DIR}/install/stemma@.service\" @ONLY)")
install(FILES ${CMAKE_BINARY_DIR}/install/stemma@.service DESTINATION lib/systemd/system)
install(DIRECTORY schemas/tasks schemas/tasks-fork
        DESTINATION ${CMAKE_INSTALL_DATADIR}/stemma/schemas)
install(FILES examples/embed_node.c DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME stemma)
set(CPACK_PACKAGE_VENDOR stemma)
set(CPACK_PACKAGE_CONTACT "stemma developers <stemma@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "peer-to-peer schema-lineage sync node for SQLite databases on many devices")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "stemma knows a schema's version history exactly (a hash chain over its numbered SQL
 migrations), migrates SQLite databases, captures every change as column-level
 operations and syncs them between devices at different schema versions over ZeroMQ
 with CURVE, parking what a version cannot hold. The package holds the stemma command
 and daemon, libstemma with its header and pkg-config file, manual pages, bash
 completion, a systemd unit (stemma@.service) and the demo's schema sets.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
# The libraries it links, found by dpkg-shlibdeps; the sqlite3 shell for `stemma demo`.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "sqlite3")
include(CPack)
