#!/usr/bin/env bash
# Builds a fuzz target with clang's libFuzzer (+ASan/UBSan) and runs it briefly.
# Usage: run_fuzz.sh SOURCE_DIR BUILD_DIR SECONDS [native_frame|http_url|resp_request]
# Exits 77 (ctest: skipped) when clang or its fuzzer runtime is not installed.
# libFuzzer's seed is CAIRN_SEED when set, else drawn here; it is printed first. With the same
# corpus directory, the same seed mutates the same way (a timed run may still end elsewhere).
set -euo pipefail
src=$1 build=$2 seconds=${3:-20} target=${4:-native_frame}
clangxx=$(command -v clang++ || command -v clang++-14 || true)
if [ -z "$clangxx" ]; then
  echo "SKIPPED: clang++ is not installed (apt-get install clang libclang-rt-14-dev)"
  exit 77
fi
out=$build/fuzz/$target
[ "$target" = native_frame ] && out=$build/fuzz
mkdir -p "$out/corpus" "$out/artifacts"
case "$target" in
  native_frame)
    cp -n "$build"/tests/fuzz/seed-corpus/* "$out/corpus/" 2>/dev/null || true
    sources=("$src/tests/fuzz/native_frame_fuzz.cc" "$src/src/net/frame.cc"
             "$src/src/base/status.cc" "$build/proto/native.pb.cc")
    libs=(-lprotobuf -lfmt) ;;
  http_url)
    cp -n "$src"/tests/fuzz/http-url-seeds/* "$out/corpus/" 2>/dev/null || true
    sources=("$src/tests/fuzz/http_url_fuzz.cc" "$src/src/frontdoor/http/url.cc"
             "$src/src/base/status.cc")
    libs=(-lfmt) ;;
  resp_request)
    cp -n "$src"/tests/fuzz/resp-corpus/* "$out/corpus/" 2>/dev/null || true
    sources=("$src/tests/fuzz/resp_request_fuzz.cc" "$src/src/frontdoor/resp/resp_parser.cc"
             "$src/src/frontdoor/resp/reply_writer.cc" "$src/src/frontdoor/resp/glob.cc"
             "$src/src/base/counter.cc")
    libs=() ;;
  *) echo "unknown fuzz target $target"; exit 2 ;;
esac
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I"$src/include" -I"$src/src" -I"$build")
if ! "$clangxx" "${flags[@]}" -o "$out/${target}_fuzz" "${sources[@]}" "${libs[@]}" \
    2> "$out/build.log"; then
  if grep -q "libclang_rt.fuzzer\|fuzzer.*not found\|cannot find" "$out/build.log"; then
    echo "SKIPPED: clang's libFuzzer runtime is missing (apt-get install libclang-rt-14-dev)"
    exit 77
  fi
  cat "$out/build.log"
  exit 1
fi
# libFuzzer takes a seed below 2^32; 0 would mean "pick one", so draw from 1 up.
seed=${CAIRN_SEED:-$(( ($(od -An -N4 -tu4 /dev/urandom) % 4294967295) + 1 ))}
echo "running the $target fuzzer for ${seconds}s, seed $seed (replay: CAIRN_SEED=$seed $0 $*)"
"$out/${target}_fuzz" -seed="$seed" -max_total_time="$seconds" -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$out/artifacts/" "$out/corpus" 2>&1 | tail -n 20
