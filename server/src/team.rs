//! Unix identities for the team daemon (`lokal daemon --group NAME`): the group whose members may connect,
//! who is at the other end of a connection, and where the team's socket lives.
use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The environment equivalent of `lokal daemon --group`; for `lokal` (the editor's side) it names the team
/// daemon to connect to.
pub const GROUP_ENV: &str = "LOKAL_DAEMON_GROUP";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
}

/// Who is at the other end of a connection, from the kernel (SO_PEERCRED), not from anything it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
    pub user: String,
}

impl Peer {
    pub fn of(stream: &tokio::net::UnixStream) -> std::io::Result<Peer> {
        let c = stream.peer_cred()?;
        Ok(Peer { uid: c.uid(), gid: c.gid(), pid: c.pid(), user: user_name(c.uid()) })
    }
}

/// Buffer size for the reentrant passwd/group calls (their own hint where the system gives one).
fn buf_len(key: libc::c_int) -> usize {
    let n = unsafe { libc::sysconf(key) };
    if n > 0 {
        n as usize
    } else {
        16 * 1024
    }
}

/// A group by name; the error says so when there is none.
pub fn group_by_name(name: &str) -> Result<Group, String> {
    let c = CString::new(name).map_err(|_| format!("{name:?} is not a group name"))?;
    let mut buf = vec![0 as libc::c_char; buf_len(libc::_SC_GETGR_R_SIZE_MAX)];
    loop {
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        let r = unsafe { libc::getgrnam_r(c.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut out) };
        if r == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if r != 0 {
            return Err(format!("looking up group {name:?}: {}", std::io::Error::from_raw_os_error(r)));
        }
        if out.is_null() {
            return Err(format!(
                "there is no Unix group named {name:?} (create it with groupadd, add the team's users to it)"
            ));
        }
        return Ok(Group { name: name.to_string(), gid: grp.gr_gid });
    }
}

/// A user's login name and primary group; `None` for a uid without a passwd entry.
fn passwd(uid: u32) -> Option<(String, u32)> {
    let mut buf = vec![0 as libc::c_char; buf_len(libc::_SC_GETPW_R_SIZE_MAX)];
    loop {
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
        if r == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if r != 0 || out.is_null() {
            return None;
        }
        let name = unsafe { CStr::from_ptr(pw.pw_name) }.to_string_lossy().into_owned();
        return Some((name, pw.pw_gid));
    }
}

/// The login name, or `uid N` where there is none.
pub fn user_name(uid: u32) -> String {
    passwd(uid).map(|(n, _)| n).unwrap_or_else(|| format!("uid {uid}"))
}

/// Whether the user belongs to the group, as primary or supplementary group (the group database, so a
/// connection is judged by who the user is, whatever groups its process happens to hold).
pub fn is_member(uid: u32, group: &Group) -> bool {
    let Some((name, primary)) = passwd(uid) else { return false };
    if primary == group.gid {
        return true;
    }
    let Ok(c) = CString::new(name) else { return false };
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let before = n;
        let r = unsafe { libc::getgrouplist(c.as_ptr(), primary, groups.as_mut_ptr(), &mut n) };
        if r >= 0 {
            return groups[..n as usize].contains(&group.gid);
        }
        if n <= before {
            n = before * 2;
        }
        if n > 1 << 16 {
            return false;
        }
    }
}

pub fn euid() -> u32 {
    unsafe { libc::geteuid() }
}

/// Where a team daemon listens unless told otherwise: under /run when it runs as root, else under the
/// temporary directory (the directory must then be the daemon user's own; see daemon.rs).
pub fn default_team_socket(group: &str, root: bool) -> PathBuf {
    let base = if root { PathBuf::from("/run") } else { std::env::temp_dir() };
    base.join(format!("lokal-{group}")).join("daemon.sock")
}

/// The editor's side: the team daemon's socket, checked before any code is sent to it. Both the socket and
/// its directory must belong to the group (only its members and root can give a file to a group) and the
/// directory must not be writable by others, so a user outside the team cannot stand in for the daemon by
/// creating the path first.
pub fn team_socket(group: &str) -> Result<PathBuf, String> {
    let g = group_by_name(group)?;
    let candidates = [default_team_socket(group, true), default_team_socket(group, false)];
    let Some(path) = candidates.iter().find(|p| p.exists()) else {
        return Err(format!(
            "no team daemon for group {group} ({} or {})",
            candidates[0].display(),
            candidates[1].display()
        ));
    };
    check_team_socket(path, &g)?;
    Ok(path.clone())
}

pub fn check_team_socket(path: &Path, g: &Group) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let (d, s) = match (std::fs::symlink_metadata(dir), std::fs::symlink_metadata(path)) {
        (Ok(d), Ok(s)) => (d, s),
        (Err(e), _) | (_, Err(e)) => return Err(format!("{}: {e}", path.display())),
    };
    if d.file_type().is_symlink() || s.file_type().is_symlink() {
        return Err(format!("{} is reached through a symbolic link; not trusted", path.display()));
    }
    if d.gid() != g.gid || s.gid() != g.gid || d.mode() & 0o002 != 0 {
        return Err(format!(
            "{} is not the {} team's socket (it and its directory must belong to that group, the directory not writable by others)",
            path.display(),
            g.name
        ));
    }
    Ok(())
}

/// The daemon's resident memory, from /proc (`None` where there is none).
pub fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_users_and_membership_from_the_system_database() {
        let e = group_by_name("lokal-no-such-group-here").unwrap_err();
        assert!(e.contains("no Unix group named"), "{e}");
        assert!(group_by_name("a\0b").is_err());
        let me = euid();
        let (name, primary) = passwd(me).expect("the test's own user has a passwd entry");
        assert_eq!(user_name(me), name);
        assert_eq!(user_name(4_000_000_001), "uid 4000000001");
        // The primary group by name (getgrgid is not wrapped here: look it up through /etc/group's name).
        let own = std::fs::read_to_string("/etc/group")
            .ok()
            .and_then(|t| t.lines().find(|l| l.split(':').nth(2) == Some(&primary.to_string())).map(str::to_string))
            .and_then(|l| l.split(':').next().map(str::to_string));
        if let Some(gname) = own {
            let g = group_by_name(&gname).unwrap();
            assert_eq!(g.gid, primary);
            assert!(is_member(me, &g));
        }
        assert!(!is_member(4_000_000_001, &Group { name: "x".into(), gid: primary }), "no passwd entry, no member");
        assert!(rss_bytes().unwrap() > 1 << 20);
    }
}
