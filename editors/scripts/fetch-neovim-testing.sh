#!/usr/bin/env bash
# Neovim 0.12 (native LSP inline completion) from Debian testing, on an older Debian (bookworm here),
# without installing it: apt downloads neovim and its dependencies (libc6 included) with private lists and
# an empty status file, all under ~/.cache/lokal/editors/neovim-testing; dpkg-deb unpacks them into a
# private root; patchelf points the nvim binary at that root's own dynamic loader and libraries (DT_RPATH,
# which also covers its libraries' own dependencies). The processes nvim starts (lokal) keep the system's.
#
#   editors/scripts/fetch-neovim-testing.sh      # prints the path of an `nvim` wrapper (sets VIMRUNTIME)
#
# The mirror is the one the system's apt sources already use; patchelf comes from scripts/setup.sh.
set -euo pipefail
W="${XDG_CACHE_HOME:-$HOME/.cache}/lokal/editors/neovim-testing"
R="$W/root"
NVIM="$W/bin/nvim"
log() { echo "fetch-neovim-testing: $*" >&2; }

if [[ -x "$NVIM" ]] && "$NVIM" --headless -u NONE -i NONE \
  -c 'lua if vim.lsp.inline_completion == nil then vim.cmd("cquit 1") end' -c 'qa!' >/dev/null 2>&1; then
  echo "$NVIM"
  exit 0
fi
command -v patchelf >/dev/null || { log "no patchelf: run scripts/setup.sh"; exit 1; }

mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
[[ -n "$mirror" ]] || mirror="$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit} $1 == "deb" && $2 ~ /^\[/ {print $3; exit}' /etc/apt/sources.list 2>/dev/null || true)"
[[ -n "$mirror" ]] || { log "no Debian mirror in the apt sources"; exit 1; }

rm -rf "$W/archives" && mkdir -p "$W/lists/partial" "$W/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror testing main" >"$W/sources.list"
: >"$W/status"
APT=(-o "Dir::Etc::SourceList=$W/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$W/lists"
  -o "Dir::State::status=$W/status" -o "Dir::Cache=$W" -o "Dir::Cache::archives=$W/archives"
  -o APT::Architecture=amd64 -o APT::Install-Recommends=false -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
log "apt lists of Debian testing from $mirror"
apt-get "${APT[@]}" -q update >&2
log "downloading neovim and its dependencies"
apt-get "${APT[@]}" -q -y install --download-only neovim >&2

rm -rf "$R" && mkdir -p "$R"
for deb in "$W"/archives/*.deb; do
  dpkg-deb -x "$deb" "$R"
done
LIB="$R/usr/lib/x86_64-linux-gnu"
patchelf --set-interpreter "$LIB/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$LIB" "$R/usr/bin/nvim"
mkdir -p "$W/bin"
cat >"$NVIM" <<EOF
#!/bin/sh
# Neovim from Debian testing on its own libc (editors/scripts/fetch-neovim-testing.sh).
VIMRUNTIME="$R/usr/share/nvim/runtime" exec "$R/usr/bin/nvim" "\$@"
EOF
chmod +x "$NVIM"
"$NVIM" --headless -u NONE -i NONE -c 'lua if vim.lsp.inline_completion == nil then vim.cmd("cquit 1") end' -c 'qa!' ||
  { log "$("$NVIM" --version | head -1) has no vim.lsp.inline_completion"; exit 1; }
log "$("$NVIM" --version | head -1) in $R"
echo "$NVIM"
