//! Running a checker as a child process that can be cancelled or run out of time.
use super::VerifyError;
use crate::cancel::CancelToken;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion unless `cancel` fires or `deadline` passes; then the child's whole process
/// group is killed, because `cargo` leaves `rustc` (and build scripts) running if only it dies.
pub(crate) fn run(mut cmd: Command, cancel: &CancelToken, deadline: Instant) -> Result<Output, VerifyError> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().map_err(|e| VerifyError::Io(format!("cannot start {program}: {e}")))?;
    // Readers on their own threads: a checker that fills one pipe while we wait would never exit.
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    let stopped = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(VerifyError::Io(format!("waiting for {program}: {e}"))),
        }
        if cancel.is_cancelled() {
            break Err(VerifyError::Cancelled);
        }
        if Instant::now() >= deadline {
            break Err(VerifyError::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if stopped.is_err() {
        // SAFETY: plain syscall; the group id is the child's pid (process_group(0)), which is still ours
        // because the child has not been reaped yet.
        unsafe {
            libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = child.wait();
    }
    let stdout = out.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
    let stderr = err.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
    Ok(Output { status: stopped?, stdout, stderr })
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}
