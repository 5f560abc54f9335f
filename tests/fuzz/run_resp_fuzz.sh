#!/usr/bin/env bash
# Builds the RESP request parser fuzz target with clang's libFuzzer (+ASan/UBSan) and runs it
# briefly. Usage: run_resp_fuzz.sh SOURCE_DIR BUILD_DIR SECONDS
# Exits 77 (ctest: skipped) when clang or its fuzzer runtime is not installed.
set -euo pipefail
src=$1 build=$2 seconds=${3:-20}
clangxx=$(command -v clang++ || command -v clang++-14 || true)
if [ -z "$clangxx" ]; then
  echo "SKIPPED: clang++ is not installed (apt-get install clang libclang-rt-14-dev)"
  exit 77
fi
out=$build/fuzz-resp
mkdir -p "$out/corpus" "$out/artifacts"
cp -n "$src"/tests/fuzz/resp-corpus/* "$out/corpus/" 2>/dev/null || true
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I"$src/include" -I"$src/src" -I"$build")
if ! "$clangxx" "${flags[@]}" -o "$out/resp_request_fuzz" \
    "$src/tests/fuzz/resp_request_fuzz.cc" "$src/src/frontdoor/resp/resp_parser.cc" \
    "$src/src/frontdoor/resp/reply_writer.cc" "$src/src/frontdoor/resp/glob.cc" \
    2> "$out/build.log"; then
  if grep -q "libclang_rt.fuzzer\|fuzzer.*not found\|cannot find" "$out/build.log"; then
    echo "SKIPPED: clang's libFuzzer runtime is missing (apt-get install libclang-rt-14-dev)"
    exit 77
  fi
  cat "$out/build.log"
  exit 1
fi
echo "running the RESP request fuzzer for ${seconds}s"
"$out/resp_request_fuzz" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/" "$out/corpus" 2>&1 | tail -n 20
