"""Time to list and to resolve each code action on the tiny fixture, with the real model.
usage: python3 scripts/measure/actions.py target/release/lokal MODEL"""
import json, os, sys, time, pathlib
sys.path.insert(0, os.path.dirname(__file__))
from lsp import Lsp

lokal, model = sys.argv[1], sys.argv[2]
root = pathlib.Path(__file__).resolve().parents[2] / "fixtures/workspaces/tiny"
env = dict(os.environ, LOKAL_NO_DAEMON="1", LOKAL_LOG="warn")
c = Lsp([lokal, "--stdio"], env)
c.init(root.as_uri(), {"modelPath": model})
src = (root / "src/lib.rs").read_text() + "\npub fn half(x: f64) -> f64 {\n    x / 2.0\n}\n"
uri = (root / "src/lib.rs").as_uri()
c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": src}})
lines = src.split("\n")
stub = next(i for i, l in enumerate(lines) if "pub fn sum_of_squares" in l) + 1
half = next(i for i, l in enumerate(lines) if "pub fn half" in l) + 1
rng = lambda l, a, b=None: {"start": {"line": l, "character": a}, "end": {"line": l, "character": a if b is None else b}}
t = time.perf_counter()
for i in range(1000):
    c.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": rng(i % 30, 0), "context": {"diagnostics": []}})
list_ms = (time.perf_counter() - t)  # seconds for 1000 = ms per list
print(f"list: {list_ms:.3f} ms per request (1000 requests)")
cases = [("implement", stub, 4, [], "implement `sum_of_squares`"), ("doc comment", half, 4, [], "doc comment"),
         ("write tests", half, 4, [], "write tests"),
         ("fix diagnostic", half, 4, [{"range": rng(half, 4, 11), "message": "mismatched types: expected `f64`, found `i32`"}], "fix"),
         ("rewrite selection", half, 4, [], "rewrite")]
for name, line, col, diags, needle in cases:
    r = rng(line, col, 11) if name == "rewrite selection" else rng(line, col)
    acts = c.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": r, "context": {"diagnostics": diags}})["result"]
    a = next((x for x in acts if needle in x["title"]), None)
    if a is None:
        print(f"{name}: not offered"); continue
    t = time.perf_counter()
    res = c.request("codeAction/resolve", a)
    ms = (time.perf_counter() - t) * 1000
    ok = "edit" if "result" in res and res["result"].get("edit") else res.get("error", {}).get("message", "?")[:70]
    print(f"resolve {name}: {ms:.0f} ms -> {ok}")
