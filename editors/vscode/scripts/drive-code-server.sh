#!/usr/bin/env bash
# The packaged extension (editors/vscode/lokal.vsix) inside real VS Code: code-server, driven in Debian's
# headless Chromium through playwright-core (editors/vscode/scripts/drive.mjs). Ghost text from lokal must
# appear while typing in the fixture workspace, Tab must put exactly that text into the document, and the
# status bar must show the workspace's tier (fixtures/workspaces/tiny/.lokal.toml: tier 3).
#
#   editors/vscode/scripts/drive-code-server.sh <lokal binary> <model.gguf>
#
# Run by scripts/test-editors.sh after scripts/package.sh built the .vsix. code-server and playwright-core
# are installed by install-code-server.sh under ~/.cache/lokal/editors/code-server; screenshots and logs of
# the last run go to ~/.cache/lokal/editors/code-server-run ($LOKAL_EDITORS_CACHE instead of
# ~/.cache/lokal/editors when set). code-server, Chromium and lokal run with HOME and every XDG directory
# inside that run directory: nothing is written into the user's own configuration.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT="$PWD"
LOKAL="$1"
MODEL="$2"
VSIX="$ROOT/editors/vscode/lokal.vsix"
CACHE="${LOKAL_EDITORS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lokal/editors}"
log() { echo "drive-code-server: $*" >&2; }
[[ -f "$VSIX" ]] || { log "no $VSIX: run editors/vscode/scripts/package.sh"; exit 1; }
CHROMIUM="$(command -v chromium || true)"
[[ -n "$CHROMIUM" ]] || { log "no chromium: run scripts/setup.sh"; exit 1; }

DIR="$(editors/vscode/scripts/install-code-server.sh)"
CS="$DIR/node_modules/code-server"

# A fresh profile, extensions dir and copy of the fixture workspace for each run.
RUN="$CACHE/code-server-run"
rm -rf "$RUN"
mkdir -p "$RUN/data/User" "$RUN/ext" "$RUN/shots" "$RUN/home"
mkdir -m 700 "$RUN/run"
# From here on, everything this script starts sees a HOME of its own (a fresh machine, each run).
export HOME="$RUN/home" XDG_CONFIG_HOME="$RUN/home/.config" XDG_DATA_HOME="$RUN/home/.local/share" \
  XDG_CACHE_HOME="$RUN/home/.cache" XDG_STATE_HOME="$RUN/home/.local/state" XDG_RUNTIME_DIR="$RUN/run"
cp -r fixtures/workspaces/tiny "$RUN/workspace"
cat >"$RUN/data/User/settings.json" <<EOF
{
  "lokal.path": "$LOKAL",
  "lokal.modelPath": "$MODEL",
  "lokal.maxTokens": 24,
  "lokal.maxLines": 3,
  "editor.inlineSuggest.enabled": true,
  "editor.quickSuggestions": { "other": false, "comments": false, "strings": false },
  "editor.suggestOnTriggerCharacters": false,
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "update.mode": "none"
}
EOF
printf 'bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n' >"$RUN/config.yaml"
CODE=("$DIR/bin/node" "$CS/out/node/entry.js" --config "$RUN/config.yaml" --user-data-dir "$RUN/data" --extensions-dir "$RUN/ext")
"${CODE[@]}" --install-extension "$VSIX" >"$RUN/install.log" 2>&1 || { cat "$RUN/install.log" >&2; exit 1; }
installed="$(ls "$RUN/ext" | grep -i '^lokal\.lokal-' || true)"
[[ -n "$installed" ]] || { log "the .vsix did not install:"; cat "$RUN/install.log" >&2; exit 1; }

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Its own process group: stopping it stops its extension host and lokal with it.
LOKAL_AUDIT_LOG="$RUN/audit.jsonl" setsid "${CODE[@]}" --bind-addr "127.0.0.1:$PORT" --disable-telemetry \
  --disable-update-check --disable-workspace-trust "$RUN/workspace" >"$RUN/code-server.log" 2>&1 &
CS_PID=$!
trap 'kill -- "-$CS_PID" 2>/dev/null || true' EXIT
trap 'exit 143' TERM INT HUP # (timeout(1) in test-editors.sh): still stop code-server
for _ in $(seq 150); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
log "code-server $("${CODE[0]}" "$CS/out/node/entry.js" --version 2>/dev/null | grep -Eo '^[0-9]+\.[0-9]+\.[0-9]+' | head -1) on Node $("${CODE[0]}" --version), port $PORT; extension $installed; $("$CHROMIUM" --version 2>/dev/null | head -1)"

LINE=$(($(grep -n 'pub fn sum_of_squares' "$RUN/workspace/src/lib.rs" | cut -d: -f1) + 1))
if node editors/vscode/scripts/drive.mjs "$DIR/node_modules/playwright-core" "$CHROMIUM" \
  "http://127.0.0.1:$PORT/?folder=$RUN/workspace" "$RUN/shots" "$LINE" "$RUN/workspace/src/lib.rs"; then
  exit 0
fi
log "FAILED; the last lines of code-server's log and of the extension's output:"
tail -30 "$RUN/code-server.log" >&2
find "$RUN/data/logs" -name '*lokal*' -exec tail -30 {} \; >&2 2>/dev/null || true
exit 1
