"""A minimal LSP client over stdio for the measurement scripts in this folder."""
import json
import subprocess
import time


class Lsp:
    def __init__(self, cmd, env=None):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.next = 1
        self.notes = []

    def send(self, obj):
        b = json.dumps(obj).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(b) + b)
        self.p.stdin.flush()

    def recv(self):
        h = b""
        while not h.endswith(b"\r\n\r\n"):
            c = self.p.stdout.read(1)
            if not c:
                raise EOFError
            h += c
        n = int([l for l in h.decode().split("\r\n") if l.lower().startswith("content-length")][0].split(":")[1])
        return json.loads(self.p.stdout.read(n))

    def request(self, method, params):
        i = self.next
        self.next += 1
        self.send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        while True:
            m = self.recv()
            if m.get("id") == i and "method" not in m:
                return m
            if "method" in m and "id" in m:  # server-to-client request: accept
                self.send({"jsonrpc": "2.0", "id": m["id"], "result": {"applied": True} if m["method"] == "workspace/applyEdit" else None})
            self.notes.append(m)

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def init(self, root, options):
        self.request("initialize", {"processId": None, "rootUri": root, "capabilities": {"window": {"workDoneProgress": True}}, "initializationOptions": options})
        self.notify("initialized", {})
        while self.request("lokal/stats", {})["result"]["state"] != "ready":
            time.sleep(0.02)


def rss_mb(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) / 1024
    return 0.0
