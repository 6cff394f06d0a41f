#!/usr/bin/env python3
"""Drive real Helix in tmux with editors/helix/languages.toml and the real lokal server and model.

    python3 editors/helix/test/drive.py <hx> <lokal> <model> <fixture-workspace>

Checks, as a user would see them on the screen:
  1. `hx --health` reads the config: lokal is configured for rust, python, typescript, go and markdown.
  2. In src/lib.rs, typing and Ctrl-x opens the completion menu with lokal's suggestion; choosing it and
     writing the file puts the whole suggestion in the file.
  3. `space a` lists lokal's code actions; "add a doc comment" applies a doc comment (resolved by the model).
Prints "ok ..." per step; exits 1 on the first failure (with the screen).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HX, LOKAL, MODEL, FIXTURE = sys.argv[1:5]
HERE = os.path.dirname(os.path.abspath(__file__))
LANGUAGES = os.path.join(HERE, "..", "languages.toml")
SESSION = f"lokal-hx-{os.getpid()}"
t0 = time.time()


def say(msg):
    print(f"ok   {msg}", flush=True)


def tmux(*args, check=True):
    return subprocess.run(["tmux", *args], check=check, capture_output=True, text=True).stdout


def screen():
    return tmux("capture-pane", "-p", "-t", SESSION)


def fail(msg):
    print(f"FAIL {msg}\n----- screen -----\n{screen() if has_session() else '(no session)'}\n------------------", flush=True)
    log = os.path.join(work, "helix.log")
    if os.path.exists(log):
        print("----- helix log (tail) -----\n" + "".join(open(log, errors="replace").readlines()[-25:]))
    cleanup()
    sys.exit(1)


def has_session():
    return subprocess.run(["tmux", "has-session", "-t", SESSION], capture_output=True).returncode == 0


def keys(*k):
    tmux("send-keys", "-t", SESSION, *k)


def wait(what, pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        s = screen()
        r = pred(s)
        if r:
            return r
        time.sleep(0.2)
    fail(what)


def cleanup():
    if has_session():
        tmux("kill-session", "-t", SESSION, check=False)
    shutil.rmtree(work, ignore_errors=True)


work = tempfile.mkdtemp(prefix="lokal-helix-")
ws = os.path.join(work, "ws")
shutil.copytree(FIXTURE, ws)
with open(os.path.join(ws, ".lokal.toml"), "w") as f:
    f.write("tier = 3\n")
# The user's config: our languages.toml as it is; `lokal` on PATH; the model through LOKAL_MODEL.
cfg = os.path.join(work, "config", "helix")
os.makedirs(cfg)
shutil.copy(LANGUAGES, os.path.join(cfg, "languages.toml"))
bindir = os.path.join(work, "bin")
os.makedirs(bindir)
os.symlink(os.path.abspath(LOKAL), os.path.join(bindir, "lokal"))
# Only lokal: the languages' own servers (rust-analyzer, …) are left off PATH, so that nothing else runs.
env = {
    "HOME": work,
    "PATH": f"{bindir}:/usr/bin:/bin",
    "XDG_CONFIG_HOME": os.path.join(work, "config"),
    "XDG_CACHE_HOME": os.path.join(work, "cache"),
    "XDG_DATA_HOME": os.path.join(work, "data"),
    "LOKAL_MODEL": MODEL,
    "LOKAL_AUDIT_LOG": os.path.join(work, "audit.jsonl"),
    "TERM": "xterm-256color",
    "LANG": "C.UTF-8",
}
if "HELIX_RUNTIME" in os.environ:
    env["HELIX_RUNTIME"] = os.environ["HELIX_RUNTIME"]

# 1. Helix's own reading of the configuration.
version = subprocess.run([HX, "--version"], env=env, capture_output=True, text=True).stdout.strip()
print(f"{version}, driven in tmux", flush=True)
for lang in ["rust", "python", "typescript", "go", "markdown"]:
    out = subprocess.run([HX, "--health", lang], env=env, capture_output=True, text=True, cwd=ws)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    if not re.search(r"✓ lokal: .*/lokal", plain):
        fail(f"hx --health {lang} does not list lokal as found:\n{plain}")
    servers = re.findall(r"[✓✘] ([\w.-]+):", plain.split("Configured debug adapter")[0])
    say(f"hx --health {lang:<11} language servers: {', '.join(servers)}")

# 2. Completion menu in src/lib.rs.
lib = os.path.join(ws, "src", "lib.rs")
lines = open(lib).read().split("\n")
body = next(i for i, l in enumerate(lines) if "pub fn sum_of_squares" in l) + 2  # 1-based line of the empty body
tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40", "-c", ws,
     "env", "-i", *[f"{k}={v}" for k, v in env.items()], HX, "--log", os.path.join(work, "helix.log"), "src/lib.rs")
wait("helix did not start", lambda s: "lib.rs" in s)
# lokal is up when the status line has its language server (a spinner while the model loads).
time.sleep(1.0)
keys(f":{body}", "Enter")
keys("A")
wait("insert mode", lambda s: "INS" in s)
for ch in "xs.iter()":
    keys("-l", ch)
    time.sleep(0.05)
keys("C-x")
# The menu opens under the cursor, over line body+1 ("}"): lokal's item (its label, the suggestion with its
# line breaks left out) and its kind, "text". Only lokal runs, so the menu's item is lokal's.
row_re = re.compile(rf"^\s*{body + 1}\s+\}}\s+(\S.*?)\s+text\s*$")


def menu_item(s):
    for r in s.split("\n"):
        m = row_re.match(r)
        if m:
            return m.group(1)


item = wait("Ctrl-x: no completion menu with lokal's item", menu_item, timeout=60)
say(f"completion menu (Ctrl-x)   lokal's item {item!r}")
keys("C-n")  # select the first item (Helix selects none by itself)
time.sleep(0.3)
keys("Enter")  # accept it
time.sleep(0.5)
keys("Escape")
keys(":w", "Enter")
wait("the file was not written", lambda s: "written" in s)
text = open(lib).read()
m = re.search(r"    xs\.iter\(\)(.*?)\n}", text, re.S)
# What was written after the typed text is the item (up to white space; the label may be cut at the
# menu's width).
squash = lambda t: "".join(t.split())
if not m or not squash(m.group(1)) or not squash(m.group(1)).startswith(squash(item)):
    fail(f"after accepting, src/lib.rs holds {text[text.index('pub fn sum_of_squares'):][:200]!r}, the item was {item!r}")
say(f"accepted and written        {('    xs.iter()' + m.group(1))!r}")

# 3. Code actions on a function without a doc comment.
# A function without a doc comment, added on disk; :reload shows it (and sends it to the server).
with open(lib, "w") as f:
    f.write(open(os.path.join(FIXTURE, "src", "lib.rs")).read() + "\npub fn half(x: f64) -> f64 {\n    x / 2.0\n}\n")
keys(":reload", "Enter")
half = next(i for i, l in enumerate(open(lib).read().split("\n")) if l.startswith("pub fn half")) + 1
keys(f":{half}", "Enter")
keys("w", "w")  # the selection on `half`
time.sleep(0.5)
keys("Space", "a")
menu = wait("space a: no lokal code actions", lambda s: "doc comment" in s and s, timeout=30)
titles = [re.search(r"lokal: [^│|]*", l).group(0).strip() for l in menu.split("\n") if "lokal:" in l]
say(f"code actions (space a)     {' | '.join(titles)}")
# Pick "add a doc comment": move the selection onto it, then Enter.
idx = next(i for i, t in enumerate(titles) if "doc comment" in t)
for _ in range(idx):
    keys("C-n")
keys("Enter")


def doc_above_half(s):
    rows = s.split("\n")
    return any("pub fn half" in r and i > 0 and "///" in rows[i - 1] for i, r in enumerate(rows))


wait("code action: no doc comment appeared above `half`", doc_above_half, timeout=120)
keys(":w", "Enter")
time.sleep(0.5)
written = open(lib).read().split("\n")
at = next(i for i, l in enumerate(written) if l.startswith("pub fn half"))
doc = written[at - 1]
if not doc.startswith("///"):
    fail(f"the doc comment is on the screen but the written file has {doc!r} above `half`")
say(f"code action applied        {doc!r}")
keys(":q!", "Enter")
print(f"helix ({version}): PASS in {time.time() - t0:.1f} s", flush=True)
cleanup()
