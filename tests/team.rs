//! The team daemon (`lokal daemon --group`) with real Unix users: two members share one model and never see
//! each other's documents; a user outside the group cannot connect. Users and group are made for the test
//! and removed after it, so it runs as root only (CI does); otherwise it checks what an ordinary user can
//! and says what it skipped.
use lokal_bench::client::LspClient;
use lokal_bench::testing;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lokal"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn id(flag: &str, user: &str) -> u32 {
    let out = Command::new("id").args([flag, user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Throwaway users, group and directory, removed when dropped (even when the test fails).
struct Accounts {
    group: String,
    users: Vec<String>,
    dir: PathBuf,
}

impl Drop for Accounts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).output();
        }
        let _ = Command::new("groupdel").arg(&self.group).output();
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `lokal` run as `uid`/`gid` (only that group: Command drops the supplementary ones), with a home of its own.
fn as_user(bin: &Path, uid: u32, gid: u32, home: &Path, sock: &Path) -> Command {
    let mut c = Command::new(bin);
    c.uid(uid).gid(gid).env_clear().env("HOME", home).env("LOKAL_SOCKET", sock).env("LOKAL_LOG", "warn");
    c.env("PATH", "/usr/bin:/bin").current_dir(home);
    c
}

fn stats_documents(c: &mut LspClient) -> Vec<String> {
    let s = c.request("lokal/stats", json!({})).unwrap();
    s["documents"].as_object().unwrap().keys().cloned().collect()
}

fn start_daemon(args: &[&str], sock: &Path) -> Killed {
    let d = Command::new(exe())
        .arg("daemon")
        .args(args)
        .arg("--socket")
        .arg(sock)
        .arg("--model")
        .arg(testing::test_model())
        .env("LOKAL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "the daemon's socket never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    Killed(d)
}

/// What any user can check: a group that does not exist is refused with a clear message, and the daemon's
/// own primary group gives a group-owned 0660 socket in a 0750 directory.
#[test]
fn a_missing_group_is_a_clear_error_and_a_group_socket_is_the_groups() {
    let out = Command::new(exe()).args(["daemon", "--group", "lokal-no-such-group"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Unix group named \"lokal-no-such-group\""), "{err}");

    let gid = unsafe { libc::getegid() };
    let group = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find(|l| l.split(':').nth(2) == Some(&gid.to_string()))
        .and_then(|l| l.split(':').next())
        .map(str::to_string)
        .expect("the test's group has a name");
    let dir = std::env::temp_dir().join(format!("lokal-team-own-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sock = dir.join("s").join("daemon.sock");
    let _d = start_daemon(&["--group", &group], &sock);
    use std::os::unix::fs::MetadataExt;
    let (s, d) = (std::fs::metadata(&sock).unwrap(), std::fs::metadata(sock.parent().unwrap()).unwrap());
    assert_eq!((s.mode() & 0o777, s.gid()), (0o660, gid));
    assert_eq!((d.mode() & 0o777, d.gid()), (0o750, gid));
    let out = Command::new(exe()).args(["daemon", "status", "--json"]).env("LOKAL_SOCKET", &sock).output().unwrap();
    let st: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!((&st["group"], &st["sessions"]), (&json!(group), &json!([])), "{st}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_users_share_the_model_but_not_their_documents_and_outsiders_cannot_connect() {
    if !is_root() {
        eprintln!("SKIPPED: making Unix users and running processes as them needs root (CI runs as root)");
        return;
    }
    for tool in ["useradd", "groupadd", "userdel", "groupdel"] {
        assert!(Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap().status.success());
    }
    let tag = std::process::id() % 100_000;
    let group = format!("lkt{tag}g");
    let (ua, ub, uc) = (format!("lkt{tag}a"), format!("lkt{tag}b"), format!("lkt{tag}c"));
    let dir = std::env::temp_dir().join(format!("lokal-team-{}", std::process::id()));
    let mut accounts = Accounts { group: group.clone(), users: vec![], dir: dir.clone() };
    run("groupadd", &[&group]);
    for (u, g) in [(&ua, Some(&group)), (&ub, Some(&group)), (&uc, None)] {
        let mut args = vec!["-M", "-N", "-s", "/usr/sbin/nologin"];
        if let Some(g) = g {
            args.extend(["-g", g.as_str()]);
        }
        args.push(u);
        run("useradd", &args);
        accounts.users.push(u.clone());
    }
    let gid = id("-g", &ua);

    // Everything the users' processes touch lives in a directory they can reach (the build is under /root).
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("lokal");
    std::fs::copy(exe(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = |u: &str| {
        let h = dir.join(format!("home-{u}"));
        std::fs::create_dir_all(&h).unwrap();
        std::os::unix::fs::chown(&h, Some(id("-u", u)), Some(id("-g", u))).unwrap();
        h
    };
    let sock = dir.join("sock").join("daemon.sock");
    let _daemon = start_daemon(&["--group", &group], &sock);

    let session = |u: &str| {
        let mut c = as_user(&bin, id("-u", u), gid, &home(u), &sock);
        c.arg("--stdio").stderr(Stdio::null());
        let mut c = LspClient::spawn_command(c).unwrap();
        c.initialize(None, json!({"maxTokens": 8}), false).unwrap();
        testing::wait_ready(&mut c, testing::READY_TIMEOUT).unwrap();
        let st = c.request("lokal/status", json!({})).unwrap();
        assert_eq!(st["engine"], "daemon", "{u} is served by the team daemon: {st}");
        c
    };
    let fixture = testing::fixture("workspaces/tiny").join("src/lib.rs");
    let text = std::fs::read_to_string(&fixture).unwrap();
    let line = text.lines().position(|l| l.starts_with("pub fn sum_of_squares")).unwrap() as u32 + 1;
    let secret = "file:///home/alice/secret/plans.rs";
    let shared = testing::file_uri(&fixture);
    let complete = |c: &mut LspClient, uri: &str| {
        c.request(
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}, "context": {"triggerKind": 2}}),
        )
        .unwrap()
    };

    let mut a = session(&ua);
    let mut b = session(&ub);
    a.open(secret, "rust", &text);
    a.open(&shared, "rust", &text);
    complete(&mut a, secret);
    complete(&mut a, &shared);
    b.open(&shared, "rust", &text);
    complete(&mut b, &shared);
    assert_eq!(stats_documents(&mut b), vec![shared.clone()], "B sees only B's document");
    let sb = b.request("lokal/stats", json!({})).unwrap();
    assert_eq!(sb["documents"][&shared]["lastReusedTokens"], 0, "B's request reused none of A's cells: {sb}");
    let mut seen_by_a = stats_documents(&mut a);
    seen_by_a.sort();
    let mut a_opened = [shared.clone(), secret.to_string()];
    a_opened.sort();
    assert_eq!(seen_by_a, a_opened);

    // The daemon runs as root here: nothing is read from disk or run on a member's behalf with its rights.
    let e = a
        .request(
            "workspace/executeCommand",
            json!({"command": "lokal.implementFromDesignDoc", "arguments": [{"uri": "file:///etc/shadow"}]}),
        )
        .unwrap_err();
    assert!(e.message.contains("not yours"), "{e:?}");

    // Status: root sees both sessions by user; B sees B's own and only a count of the others.
    let status_as = |c: &mut Command| -> Value {
        let out = c.args(["daemon", "status", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let all = status_as(Command::new(&bin).env("LOKAL_SOCKET", &sock));
    let mut users: Vec<_> = all["sessions"].as_array().unwrap().iter().map(|s| s["user"].clone()).collect();
    users.sort_by_key(|u| u.to_string());
    assert_eq!(users, [json!(ua), json!(ub)], "{all}");
    let a_docs = all["sessions"].as_array().unwrap().iter().find(|s| s["user"] == json!(ua)).unwrap();
    assert_eq!(a_docs["openDocuments"], 2, "{all}");
    assert!(all["rssBytes"].as_u64().unwrap() > 50 << 20 && all["model"]["state"] == "ready", "{all}");
    let mine = status_as(&mut as_user(&bin, id("-u", &ub), gid, &home(&ub), &sock));
    assert_eq!(mine["sessions"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!((&mine["sessions"][0]["user"], &mine["otherSessions"]), (&json!(ub), &json!(1)), "{mine}");

    // A user outside the group: the socket refuses the connection.
    let (uid_c, gid_c) = (id("-u", &uc), id("-g", &uc));
    let out = as_user(&bin, uid_c, gid_c, &home(&uc), &sock).args(["daemon", "status"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("ermission denied"), "an outsider got in: {err}");

    a.shutdown();
    b.shutdown();
    let after = status_as(Command::new(&bin).env("LOKAL_SOCKET", &sock));
    let t = Instant::now();
    let mut after = after;
    while !after["sessions"].as_array().unwrap().is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        after = status_as(Command::new(&bin).env("LOKAL_SOCKET", &sock));
    }
    assert_eq!(after["sessions"], json!([]), "ended sessions leave the list");
    drop(accounts);
}
