#!/usr/bin/env bash
# Neovim 0.12 (native LSP inline completion) or Helix 25.07 from Debian testing, on an older Debian
# (bookworm here), without installing them: apt downloads the package and its dependencies (libc6 included)
# with private lists and an empty status file, under ~/.cache/lokal/editors/debian-testing; dpkg-deb unpacks
# them into a private root per package; patchelf points the binary at that root's own dynamic loader and
# libraries (DT_RPATH, which also covers its libraries' own dependencies). The processes the editor starts
# (lokal) keep the system's libc.
#
#   editors/scripts/fetch-debian-testing.sh neovim   # prints the path of an `nvim` wrapper (sets VIMRUNTIME)
#   editors/scripts/fetch-debian-testing.sh hx       # prints the path of an `hx` wrapper (sets HELIX_RUNTIME)
#
# The mirror is the one the system's apt sources already use; patchelf comes from scripts/setup.sh.
set -euo pipefail
PKG="${1:?usage: fetch-debian-testing.sh neovim|hx}"
W="${LOKAL_EDITORS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lokal/editors}/debian-testing"
R="$W/root-$PKG"
LIB="$R/usr/lib/x86_64-linux-gnu"
log() { echo "fetch-debian-testing: $*" >&2; }
# The check that the editor runs gets a throw-away HOME: an editor's first start writes state and logs there.
in_temp_home() {
  local home rc=0
  home="$(mktemp -d)"
  env HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share" XDG_CACHE_HOME="$home/.cache" \
    XDG_STATE_HOME="$home/.local/state" "$@" || rc=$?
  rm -rf "$home"
  return $rc
}
case "$PKG" in
  neovim)
    BIN="$W/bin/nvim" EXE="$R/usr/bin/nvim" ENVVAR="VIMRUNTIME=$R/usr/share/nvim/runtime"
    # Neovim with native LSP inline completion (0.12+).
    works() { in_temp_home "$BIN" --headless -u NONE -i NONE -c 'lua if vim.lsp.inline_completion == nil then vim.cmd("cquit 1") end' -c 'qa!' >/dev/null 2>&1; } ;;
  hx)
    BIN="$W/bin/hx" EXE="$R/usr/bin/hx" ENVVAR="HELIX_RUNTIME=$R/usr/lib/hx/runtime"
    works() { in_temp_home "$BIN" --version >/dev/null 2>&1; } ;;
  *) log "unknown package $PKG (neovim or hx)"; exit 2 ;;
esac

if [[ -x "$BIN" ]] && works; then
  echo "$BIN"
  exit 0
fi
command -v patchelf >/dev/null || { log "no patchelf: run scripts/setup.sh"; exit 1; }

mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
[[ -n "$mirror" ]] || mirror="$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit} $1 == "deb" && $2 ~ /^\[/ {print $3; exit}' /etc/apt/sources.list 2>/dev/null || true)"
[[ -n "$mirror" ]] || { log "no Debian mirror in the apt sources"; exit 1; }

A="$W/archives-$PKG"
rm -rf "$A" && mkdir -p "$W/lists/partial" "$A/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror testing main" >"$W/sources.list"
: >"$W/status"
APT=(-o "Dir::Etc::SourceList=$W/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$W/lists"
  -o "Dir::State::status=$W/status" -o "Dir::Cache=$W" -o "Dir::Cache::archives=$A"
  -o APT::Architecture=amd64 -o APT::Install-Recommends=false -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
log "apt lists of Debian testing from $mirror"
apt-get "${APT[@]}" -q update >&2
log "downloading $PKG and its dependencies"
apt-get "${APT[@]}" -q -y install --download-only "$PKG" >&2

rm -rf "$R" && mkdir -p "$R"
for deb in "$A"/*.deb; do
  dpkg-deb -x "$deb" "$R"
done
patchelf --set-interpreter "$LIB/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$LIB" "$EXE"
mkdir -p "$W/bin"
cat >"$BIN" <<EOF
#!/bin/sh
# $PKG from Debian testing on its own libc (editors/scripts/fetch-debian-testing.sh).
$ENVVAR exec "$EXE" "\$@"
EOF
chmod +x "$BIN"
works || { log "$BIN does not work (or lacks what the tests need): $(in_temp_home "$BIN" --version 2>&1 | head -1)"; exit 1; }
log "$(in_temp_home "$BIN" --version | head -1) in $R"
echo "$BIN"
