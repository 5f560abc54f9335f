#!/usr/bin/env bash
# The Debian package end to end: builds it with CPack from this build tree (as scripts/package
# does), checks its control data, unpacks it with dpkg -x, runs the unpacked programs (cairnd
# started from the packaged configuration, on loopback ports, stopped by its pid), and checks the
# systemd unit with systemd-analyze verify where systemd is installed.
#   package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source_dir=$2

for tool in cpack dpkg-deb dpkg-shlibdeps; do
  if ! command -v "$tool" > /dev/null; then
    echo "SKIP: $tool is missing (scripts/setup installs dpkg-dev); the package was not built"
    exit 0
  fi
done

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null; then
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# ---- build and inspect the package --------------------------------------------------------------
if ! cpack --config "$build/CPackConfig.cmake" -B "$work/out" > "$work/cpack.log" 2>&1; then
  cat "$work/cpack.log"
  fail "cpack could not build the package"
fi
debs=("$work"/out/cairn_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one cairn_*.deb, found: ${debs[*]}"
deb=${debs[0]}
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

info=$(dpkg-deb --info "$deb")
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = cairn ] || fail "Package is '$(field Package)'"
version=$(field Version)
[ -n "$version" ] || fail "no Version"
depends=$(field Depends)
for dep in adduser libc6 libtomlplusplus; do
  grep -q "$dep" <<< "$depends" || fail "Depends lacks $dep: $depends"
done
# RocksDB: its shared library, or (linked statically, the default) the compression libraries it
# calls.
if ! grep -q "librocksdb" <<< "$depends"; then
  for dep in libsnappy libzstd liblz4; do
    grep -q "$dep" <<< "$depends" || fail "Depends lacks $dep (RocksDB's compression): $depends"
  done
fi
grep -q "conffiles" <<< "$info" || fail "no conffiles in the control archive"
for script in postinst prerm postrm; do
  grep -q " $script" <<< "$info" || fail "no $script maintainer script"
done
mkdir "$work/control"
dpkg-deb --control "$deb" "$work/control"
[ "$(cat "$work/control/conffiles")" = /etc/cairn/cairn.toml ] || fail "conffiles: $(cat "$work/control/conffiles")"
grep -q "adduser --system" "$work/control/postinst" || fail "postinst does not create the user"

# ---- unpack and check the files -----------------------------------------------------------------
root=$work/root
dpkg -x "$deb" "$root"
for f in usr/bin/cairnd usr/bin/cairn usr/bin/cairn-bench; do
  [ -x "$root/$f" ] || fail "$f is missing or not executable"
  if file "$root/$f" 2> /dev/null | grep -q "not stripped"; then fail "$f is not stripped"; fi
done
for f in etc/cairn/cairn.toml lib/systemd/system/cairn.service \
         usr/share/cairn/grafana/cairn-dashboard.json usr/share/doc/cairn/operations.md; do
  [ -f "$root/$f" ] || fail "$f is missing"
done
cmp "$root/etc/cairn/cairn.toml" "$source_dir/deploy/cairn.toml" || fail "the packaged config differs"
man_pages=0
for page in usr/share/man/man8/cairnd.8.gz usr/share/man/man1/cairn.1.gz usr/share/man/man1/cairn-bench.1.gz; do
  if [ -f "$root/$page" ]; then
    page_text=$(zcat "$root/$page")
    grep -q '^\.TH' <<< "$page_text" || fail "$page is not a man page"
    man_pages=$((man_pages + 1))
  fi
done
if command -v help2man > /dev/null; then
  [ $man_pages -eq 3 ] || fail "help2man is installed but the package has $man_pages man pages, not 3"
else
  echo "note: help2man is not installed, so the package has no man pages (scripts/setup installs it)"
fi

# ---- run the unpacked programs ------------------------------------------------------------------
"$root/usr/bin/cairnd" --version | grep -qx "cairnd ${version%%-*}" || fail "cairnd --version: $("$root/usr/bin/cairnd" --version)"
"$root/usr/bin/cairn" --version | grep -q "^cairn " || fail "cairn --version"
"$root/usr/bin/cairn-bench" --version | grep -q "^cairn-bench " || fail "cairn-bench --version"
# Captured first: `grep -q` stops reading at its first match, and under pipefail the SIGPIPE
# that then ends a long --help would fail the pipeline.
help=$("$root/usr/bin/cairnd" --help)
grep -q -- "--config" <<< "$help" || fail "cairnd --help does not mention --config"
"$root/usr/bin/cairn" --help > /dev/null || fail "cairn --help"
"$root/usr/bin/cairn-bench" --help > /dev/null || fail "cairn-bench --help"
"$root/usr/bin/cairnd" --config "$root/etc/cairn/cairn.toml" --print-config > "$work/printed.toml" ||
  fail "cairnd --print-config with the packaged config"
grep -qx 'data-dir = "/var/lib/cairn"' "$work/printed.toml" || fail "printed config: $(cat "$work/printed.toml")"

# The server from the package with the packaged config; flags move its data and ports for the test.
"$root/usr/bin/cairnd" --config "$root/etc/cairn/cairn.toml" --data-dir "$work/data" \
  --listen 127.0.0.1:0 --http 127.0.0.1:0 > "$work/cairnd.out" 2> "$work/cairnd.log" &
pid=$!
address=""
for _ in $(seq 1 400); do
  address=$(sed -n 's/.* listening on \([0-9.]*:[0-9]*\).*/\1/p' "$work/cairnd.out")
  [ -n "$address" ] && break
  kill -0 "$pid" 2> /dev/null || { cat "$work/cairnd.log"; fail "the unpacked cairnd exited at start"; }
  sleep 0.05
done
[ -n "$address" ] || { cat "$work/cairnd.log"; fail "the unpacked cairnd did not start in 20 s"; }
"$root/usr/bin/cairn" --server "$address" put package-test "from the .deb" > /dev/null || fail "cairn put"
[ "$("$root/usr/bin/cairn" --server "$address" get package-test)" = "from the .deb" ] || fail "cairn get"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ $status -eq 0 ] || { cat "$work/cairnd.log"; fail "cairnd exited with $status after SIGTERM"; }
echo "the unpacked cairnd, cairn and cairn-bench ran; cairnd stopped cleanly on SIGTERM"

# ---- the systemd unit ---------------------------------------------------------------------------
if command -v systemd-analyze > /dev/null; then
  # systemd-analyze checks that ExecStart's program exists and that Documentation's man page is
  # found: point both at the unpacked package, nothing else changed.
  mkdir "$work/unit"
  sed "s|/usr/bin/cairnd|$root/usr/bin/cairnd|" "$root/lib/systemd/system/cairn.service" \
    > "$work/unit/cairn.service"
  man_check=--man=yes
  [ $man_pages -eq 3 ] || man_check=--man=no
  if ! MANPATH="$root/usr/share/man" systemd-analyze verify "$man_check" "$work/unit/cairn.service" \
      > "$work/verify.log" 2>&1; then
    cat "$work/verify.log"
    fail "systemd-analyze verify refused cairn.service"
  fi
  if [ -s "$work/verify.log" ]; then
    cat "$work/verify.log"
    fail "systemd-analyze verify warned about cairn.service"
  fi
  echo "systemd-analyze verify: cairn.service is valid"
else
  echo "note: systemd-analyze is not installed (Debian's systemd package); the unit was not verified"
fi
echo "package test passed"
