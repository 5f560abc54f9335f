# `scripts/package`: the Debian package of Cairn, built by CPack from the release build.
# Installs (into the package) cairnd, cairn and cairn-bench, the example configuration as a
# conffile, the systemd unit, man pages made from the programs' --help (help2man), the Grafana
# dashboard and the operator's documentation. deploy/debian/ holds the maintainer scripts.

install(TARGETS cairnd cairn cairn-bench RUNTIME DESTINATION bin)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/cairn.toml DESTINATION /etc/cairn)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/cairn.service DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/grafana/cairn-dashboard.json DESTINATION share/cairn/grafana)
install(FILES
  ${PROJECT_SOURCE_DIR}/README.md
  ${PROJECT_SOURCE_DIR}/docs/operations.md
  ${PROJECT_SOURCE_DIR}/docs/http.md
  ${PROJECT_SOURCE_DIR}/docs/metrics.md
  ${PROJECT_SOURCE_DIR}/docs/cli.md
  DESTINATION share/doc/cairn)

# Man pages from each program's --help and --version, so they never disagree with the program.
find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(man_pages "")
  foreach(entry "cairnd;8;the Cairn key-value store server"
                "cairn;1;command-line client and administration tool for Cairn"
                "cairn-bench;1;YCSB-style workload driver for Cairn and Redis-protocol servers")
    list(GET entry 0 program)
    list(GET entry 1 section)
    list(GET entry 2 summary)
    set(page ${PROJECT_BINARY_DIR}/man/${program}.${section})
    add_custom_command(
      OUTPUT ${page}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
      COMMAND ${HELP2MAN} --no-info --section=${section} --name=${summary}
              --output=${page} $<TARGET_FILE:${program}>
      COMMAND gzip -9nf ${page}
      DEPENDS ${program}
      COMMENT "Man page ${program}(${section})"
      VERBATIM)
    list(APPEND man_pages ${page}.gz)
    install(FILES ${page}.gz DESTINATION share/man/man${section})
  endforeach()
  add_custom_target(cairn_man_pages ALL DEPENDS ${man_pages})
else()
  message(STATUS "help2man not found: the package will have no man pages (scripts/setup installs it)")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cairn)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Cairn developers <cairn@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "durable, leaderless, replicated key-value store")
set(CPACK_PACKAGE_DESCRIPTION
  "Cairn is a horizontally scalable key-value store: any node accepts any request, data is
hash-partitioned and replicated on N nodes, every operation chooses its consistency level, and
conditional writes are linearizable through per-key Paxos. It speaks its own protocol, the Redis
protocol (RESP2/RESP3) and HTTP, with Prometheus metrics and a web console.
This package holds the server (cairnd), the command-line tool (cairn), the benchmark driver
(cairn-bench), a systemd unit and an example configuration.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Shared-library dependencies (RocksDB, protobuf, toml++, jemalloc, ...) by dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles
  ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
  ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
  ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Compressed fast: the test suite builds the package too.
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
include(CPack)
