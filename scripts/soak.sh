#!/usr/bin/env bash
# Soak: `lokal` serving a session that types, asks for completions and cancels half of them for
# SOAK_SECONDS (default 600), printing the server's resident memory and open descriptors every 10 s.
# Not part of CI. Needs a release build (cargo build --release) and the test model.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SOAK_SECONDS:-${1:-600}}"
BIN="${LOKAL_BIN:-${CARGO_TARGET_DIR:-target}/release/lokal}"
LOKAL_MODEL="${LOKAL_MODEL:-$(scripts/fetch-model.sh)}"
export LOKAL_MODEL LOKAL_NO_DAEMON=1
exec python3 - "$BIN" "$SECS" <<'PY'
import json, os, subprocess, sys, threading, time
exe, secs = sys.argv[1], float(sys.argv[2])
p = subprocess.Popen([exe, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
answered = {"ok": 0, "cancelled": 0, "other": 0}
initialized = threading.Event()
def send(m):
    b = json.dumps(m).encode()
    p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(b) + b)
    p.stdin.flush()
def reader():
    while True:
        n = None
        line = p.stdout.readline()
        if not line:
            return
        while line.strip():
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
            line = p.stdout.readline()
        m = json.loads(p.stdout.read(n))
        if "id" in m and "method" in m:
            send({"jsonrpc": "2.0", "id": m["id"], "result": [None] if m["method"] == "workspace/configuration" else None})
        elif m.get("id") == "init":
            initialized.set()
        elif "id" in m and str(m["id"]).startswith("k"):
            kind = "ok" if "result" in m else "cancelled" if m["error"]["code"] == -32800 else "other"
            if kind == "other" and answered["other"] == 0:
                print("first unexpected answer: %s" % m, flush=True)
            answered[kind] += 1
threading.Thread(target=reader, daemon=True).start()
def status(field):
    for l in open("/proc/%d/status" % p.pid):
        if l.startswith(field):
            return int(l.split()[1])
send({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {"processId": os.getpid(), "capabilities": {}, "initializationOptions": {"maxTokens": 16}}})
# The framework drops what arrives before `initialize` is answered.
initialized.wait(60)
send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
uri = "file:///tmp/lokal-soak/main.rs"
text = "fn main() {\n"
send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}})
typed = "    let total: i64 = (1..=10).map(|x| x * x).sum();\n    println!(\"{}\", total);\n"
t0 = last = time.time()
i, line, col, version = 0, 1, 0, 1
print("seconds  rss_mb  fds  requests  results  cancelled  other", flush=True)
while time.time() - t0 < secs:
    ch = typed[i % len(typed)]
    version += 1
    send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": uri, "version": version},
          "contentChanges": [{"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col}}, "text": ch}]}})
    line, col = (line + 1, 0) if ch == "\n" else (line, col + 1)
    if line > 400:
        # Start the file over now and then, so it stays a realistic size.
        version += 1
        line, col = 1, 0
        send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}})
    send({"jsonrpc": "2.0", "id": "k%d" % i, "method": "textDocument/inlineCompletion", "params": {"textDocument": {"uri": uri},
          "position": {"line": line, "character": col}, "context": {"triggerKind": 1}}})
    time.sleep(0.05)
    if i % 2 == 0:
        send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "k%d" % i}})
    i += 1
    if time.time() - last >= 10:
        last = time.time()
        print("%7.0f  %6.0f  %3d  %8d  %7d  %9d  %5d" % (last - t0, status("VmRSS:") / 1024, len(os.listdir("/proc/%d/fd" % p.pid)), i,
              answered["ok"], answered["cancelled"], answered["other"]), flush=True)
p.stdin.close()
p.wait(timeout=10)
print("exited with %s" % p.returncode)
PY
