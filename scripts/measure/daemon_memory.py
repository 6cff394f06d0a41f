"""Memory of two editor sessions sharing one `lokal daemon` against two in-process servers.
usage: python3 scripts/measure/daemon_memory.py target/release/lokal MODEL"""
import os, subprocess, sys, tempfile, time, pathlib
sys.path.insert(0, os.path.dirname(__file__))
from lsp import Lsp, rss_mb

lokal, model = sys.argv[1], sys.argv[2]
root = pathlib.Path(__file__).resolve().parents[2] / "fixtures/workspaces/tiny"
uri = (root / "src/lib.rs").as_uri()
text = (root / "src/lib.rs").read_text()

def session(env):
    c = Lsp([lokal, "--stdio"], env)
    c.init(root.as_uri(), {"modelPath": model, "maxTokens": 8})
    c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}})
    c.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri}, "position": {"line": 18, "character": 4}, "context": {"triggerKind": 2}})
    return c

base = dict(os.environ, LOKAL_LOG="warn")
two = [session(dict(base, LOKAL_NO_DAEMON="1")) for _ in range(2)]
inproc = sum(rss_mb(c.p.pid) for c in two)
for c in two: c.p.kill()

sock = os.path.join(tempfile.mkdtemp(), "d.sock")
d = subprocess.Popen([lokal, "daemon", "--model", model], env=dict(base, LOKAL_SOCKET=sock), stderr=subprocess.DEVNULL)
while not os.path.exists(sock): time.sleep(0.02)
shared = [session(dict(base, LOKAL_SOCKET=sock)) for _ in range(2)]
daemon_mb, proxies = rss_mb(d.pid), [rss_mb(c.p.pid) for c in shared]
print(f"two in-process servers: {inproc:.0f} MB RSS in all")
print(f"daemon + two sessions: {daemon_mb + sum(proxies):.0f} MB RSS in all (daemon {daemon_mb:.0f} MB, sessions {proxies[0]:.1f} + {proxies[1]:.1f} MB)")
for c in shared: c.p.kill()
d.kill()
