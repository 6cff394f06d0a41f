//! lokal lives and dies with its editor: end of input, the editor's process gone, and the daemon's socket
//! removed on SIGTERM/SIGINT, through the real binary.
mod rawlsp;
use rawlsp::*;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn end_of_input_without_shutdown_exits_within_two_seconds() {
    let mut s = spawn();
    s.initialize(json!({}));
    // With the model loaded, as after a real session.
    s.wait_ready();
    s.close_stdin();
    let (code, took) = s.wait_exit(Duration::from_secs(10)).expect("still running 10 s after its input closed");
    eprintln!("exit on end of input after {} ms (code {code:?})", took.as_millis());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(code, Some(1), "no shutdown came first");
}

#[test]
fn the_editor_process_gone_ends_the_server_though_its_input_stays_open() {
    let mut editor = Command::new("sleep").arg("600").spawn().unwrap();
    let mut s = spawn();
    let r = s.ask("init", "initialize", json!({"processId": editor.id(), "capabilities": {}}), Duration::from_secs(30));
    assert!(r.is_some_and(|r| r.get("result").is_some()));
    s.notify("initialized", json!({}));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(s.child.try_wait().unwrap().is_none(), "exited while its editor was alive");
    editor.kill().unwrap();
    editor.wait().unwrap();
    let (_, took) = s.wait_exit(Duration::from_secs(10)).expect("still running 10 s after its editor died");
    eprintln!("exit after the editor died: {} ms", took.as_millis());
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn exit_after_shutdown_is_code_zero() {
    let mut s = spawn();
    s.initialize(json!({}));
    assert!(s.ask("bye", "shutdown", serde_json::Value::Null, Duration::from_secs(30)).is_some());
    s.notify("exit", serde_json::Value::Null);
    let (code, took) = s.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

fn wait_gone(p: &Path, t: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < t {
        if !p.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn start_daemon(sock: &Path) -> std::process::Child {
    let child = Command::new(exe())
        .args(["daemon", "--model"])
        .arg(model())
        .env("LOKAL_SOCKET", sock)
        .env("LOKAL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "daemon socket never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn the_daemon_removes_its_socket_on_sigterm_and_sigint_and_its_forwarders_end_with_their_editors() {
    let dir = std::env::temp_dir().join(format!("lokal-life-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("d.sock");
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut d = start_daemon(&sock);
        if sig == libc::SIGTERM {
            // Forwarding processes (what editors start while a daemon runs) end with their editor too.
            let envs = [("LOKAL_SOCKET", sock.to_str().unwrap())];
            let mut a = spawn_with(&["--stdio"], &envs);
            let r = a.ask(
                "init",
                "initialize",
                json!({"processId": std::process::id(), "capabilities": {}}),
                Duration::from_secs(30),
            );
            assert!(r.is_some_and(|r| r.get("result").is_some()));
            assert!(rss_mb(a.pid()) < 64.0, "a forwarder, not an engine of its own");
            a.close_stdin();
            let (_, took) = a.wait_exit(Duration::from_secs(10)).expect("the forwarder outlived its input");
            assert!(took < Duration::from_secs(2), "forwarder on end of input: {took:?}");

            let mut editor = Command::new("sleep").arg("600").spawn().unwrap();
            let mut b = spawn_with(&["--stdio"], &envs);
            let r = b.ask(
                "init",
                "initialize",
                json!({"processId": editor.id(), "capabilities": {}}),
                Duration::from_secs(30),
            );
            assert!(r.is_some_and(|r| r.get("result").is_some()));
            editor.kill().unwrap();
            editor.wait().unwrap();
            let (_, took) = b.wait_exit(Duration::from_secs(10)).expect("the forwarder outlived its editor");
            assert!(took < Duration::from_secs(2), "forwarder after its editor died: {took:?}");
        }
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(d.id() as libc::pid_t, sig) }, 0);
        assert!(wait_gone(&sock, Duration::from_secs(5)), "signal {sig}: the socket is still there");
        let t = Instant::now();
        while d.try_wait().unwrap().is_none() {
            assert!(t.elapsed() < Duration::from_secs(5), "signal {sig}: the daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
