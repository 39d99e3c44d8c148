//! One apply at a time per data dir: `apply.lock`, held with an OS file lock (`flock`).
//!
//! The OS releases a `flock` when its holder exits, however it exits (a crash, `kill -9`, a
//! power cut), so a lock file left by a dead process is stale by construction and the next
//! [`ApplyLock::acquire`] simply takes it: no pid check, no timeout. The file holds who took
//! it (pid, host, command, start time, as one line of JSON), written after the lock is taken,
//! so a refused second apply can say who holds it, and a dry run can say that an apply is
//! running ([`ApplyLock::holder`]). The file is never removed (removing a lock file while
//! others may have it open lets two processes each lock a different file); it is emptied when
//! the guard is dropped.
//!
//! `flock` locks belong to the open file, so two acquisitions in one process exclude each
//! other as two processes do. On Linux, NFS emulates `flock` with byte-range locks: a data dir
//! on NFS is still locked across hosts (that is why the host is recorded).
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The lock file's name in the data dir.
pub const LOCK_FILE: &str = "apply.lock";

/// Who holds the apply lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// What it runs, e.g. `sync --apply`.
    pub command: String,
    /// When it took the lock, RFC 3339 (UTC, whole seconds).
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {}, `{}`, since {}",
            self.pid, self.host, self.command, self.since
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock (the caller's exit code is 75).
    #[error("another m365sync is applying changes to this tenant: {0}")]
    Held(Holder),
    /// The environment: the data dir or the lock file cannot be created, opened or locked.
    #[error("the apply lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The apply lock, held until dropped.
#[derive(Debug)]
pub struct ApplyLock {
    file: File,
    path: PathBuf,
    holder: Holder,
}

/// How long `acquire` keeps retrying a lock it found taken before it says so: a `holder`
/// probe takes a shared lock for microseconds, and must never make an apply fail.
const RETRY_FOR: Duration = Duration::from_millis(300);
const RETRY_EVERY: Duration = Duration::from_millis(15);

impl ApplyLock {
    /// Takes the apply lock of `data_dir` (creating the folder, 0700, and the file, 0600, when
    /// missing) and records this process as its holder. Never waits for another apply:
    /// `LockError::Held` says who it is.
    pub fn acquire(data_dir: &Path, command: &str) -> Result<ApplyLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source: std::io::Error| LockError::Io {
            path: path.clone(),
            source,
        };
        crate::config::create_private_dir_all(data_dir).map_err(|source| LockError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let mut file = open_lock_file(&path, true).map_err(io)?;
        let start = std::time::Instant::now();
        loop {
            match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
                Ok(true) => break,
                Ok(false) if start.elapsed() < RETRY_FOR => std::thread::sleep(RETRY_EVERY),
                Ok(false) => return Err(LockError::Held(read_holder_patiently(&mut file))),
                Err(e) => return Err(io(e)),
            }
        }
        let holder = Holder {
            pid: std::process::id(),
            host: hostname(),
            command: command.to_string(),
            since: now_rfc3339(),
        };
        let mut line = serde_json::to_vec(&holder).map_err(|e| io(e.into()))?;
        line.push(b'\n');
        (|| {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(&line)?;
            file.sync_data()
        })()
        .map_err(io)?;
        tracing::info!(path = %path.display(), command, "apply lock taken");
        Ok(ApplyLock { file, path, holder })
    }

    /// Who holds the lock of `data_dir`, without taking it: `None` when nobody does (no lock
    /// file, or a file no live process holds a lock on).
    pub fn holder(data_dir: &Path) -> Result<Option<Holder>, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source: std::io::Error| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = match open_lock_file(&path, false) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        // A shared lock we can take means no exclusive holder: release it at once.
        if flock(&file, libc::LOCK_SH | libc::LOCK_NB).map_err(io)? {
            let _ = flock(&file, libc::LOCK_UN);
            return Ok(None);
        }
        Ok(Some(read_holder_patiently(&mut file)))
    }

    /// This process's record in the lock file.
    pub fn holder_info(&self) -> &Holder {
        &self.holder
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        // Empty it while still held, so nobody reads a holder that has gone; closing the file
        // releases the lock.
        let _ = self.file.set_len(0);
        let _ = flock(&self.file, libc::LOCK_UN);
        tracing::info!(path = %self.path.display(), "apply lock released");
    }
}

/// The lock file, 0600, never through a symlink. `create` for the one who locks; a reader
/// only opens what is there.
fn open_lock_file(path: &Path, create: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)?;
    if create {
        let mode = std::os::unix::fs::PermissionsExt::mode(&f.metadata()?.permissions());
        if mode & 0o777 != 0o600 {
            // Best effort: a lock file of another user stays as it is and still locks.
            let _ = f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
        }
    }
    Ok(f)
}

/// `Ok(true)` when taken, `Ok(false)` when another holds a conflicting lock.
fn flock(file: &File, op: libc::c_int) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor this `File` owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// The holder writes its line right after taking the lock: give it a moment; after that, a
/// holder that wrote nothing readable is shown as unknown.
fn read_holder_patiently(file: &mut File) -> Holder {
    for _ in 0..20 {
        if let Some(h) = read_holder(file) {
            return h;
        }
        std::thread::sleep(RETRY_EVERY);
    }
    Holder {
        pid: 0,
        host: "?".into(),
        command: "?".into(),
        since: "?".into(),
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(64 * 1024).read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates (then the last byte is set to NUL below).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len() - 1);
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_acquisition_is_refused_with_the_holders_details() {
        let tmp = tempfile::tempdir().unwrap();
        let first = ApplyLock::acquire(tmp.path(), "sync --apply").unwrap();
        let err = ApplyLock::acquire(tmp.path(), "sync --apply").unwrap_err();
        let LockError::Held(h) = &err else {
            panic!("{err}")
        };
        assert_eq!(h, first.holder_info());
        assert_eq!(h.pid, std::process::id());
        assert_eq!(h.command, "sync --apply");
        assert_eq!(h.host, hostname());
        assert!(
            time::OffsetDateTime::parse(&h.since, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{}",
            h.since
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with("another m365sync is applying changes to this tenant: pid ")
                && msg.contains(&format!(" on host {}, `sync --apply`, since ", h.host)),
            "{msg}"
        );
        assert_eq!(
            ApplyLock::holder(tmp.path()).unwrap().as_ref(),
            Some(first.holder_info())
        );
        // Released on drop: taken again, and nobody holds it in between.
        drop(first);
        assert_eq!(ApplyLock::holder(tmp.path()).unwrap(), None);
        let again = ApplyLock::acquire(tmp.path(), "console").unwrap();
        assert_eq!(again.holder_info().command, "console");
    }

    #[test]
    fn the_holder_display_reads_as_a_sentence() {
        let h = Holder {
            pid: 1234,
            host: "x".into(),
            command: "sync --apply".into(),
            since: "2026-12-03T10:00:00Z".into(),
        };
        assert_eq!(
            LockError::Held(h).to_string(),
            "another m365sync is applying changes to this tenant: pid 1234 on host x, \
             `sync --apply`, since 2026-12-03T10:00:00Z"
        );
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        // What a process killed mid-apply leaves: its line, and no OS lock (the OS dropped it).
        let stale = Holder {
            pid: 999_999_999,
            host: "gone".into(),
            command: "sync --apply".into(),
            since: "2020-01-01T00:00:00Z".into(),
        };
        std::fs::write(
            tmp.path().join(LOCK_FILE),
            serde_json::to_string(&stale).unwrap(),
        )
        .unwrap();
        assert_eq!(ApplyLock::holder(tmp.path()).unwrap(), None, "not held");
        let lock = ApplyLock::acquire(tmp.path(), "sync --apply").unwrap();
        assert_eq!(lock.holder_info().pid, std::process::id());
        let text = std::fs::read_to_string(tmp.path().join(LOCK_FILE)).unwrap();
        assert!(!text.contains("gone"), "the stale line is replaced: {text}");
    }

    #[test]
    fn no_lock_file_means_no_holder_and_the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("new");
        assert_eq!(ApplyLock::holder(&data).unwrap(), None);
        let _lock = ApplyLock::acquire(&data, "sync --apply").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join(LOCK_FILE)), 0o600);
    }

    #[test]
    fn a_holder_probe_never_makes_an_apply_fail() {
        let tmp = tempfile::tempdir().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let prober = {
            let (dir, stop) = (tmp.path().to_path_buf(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = ApplyLock::holder(&dir);
                }
            })
        };
        for _ in 0..50 {
            drop(ApplyLock::acquire(tmp.path(), "sync --apply").expect("never refused"));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        prober.join().unwrap();
    }

    /// Not a test on its own: the child process of `another_process_holds_it_until_it_dies`
    /// (the test binary runs itself with `M365SYNC_LOCK_CHILD` set to the data dir).
    #[test]
    fn lock_holder_child() {
        let Some(dir) = std::env::var_os("M365SYNC_LOCK_CHILD") else {
            return;
        };
        let _lock = ApplyLock::acquire(Path::new(&dir), "sync --apply (child)").unwrap();
        println!("LOCKED {}", std::process::id());
        // Hold it until killed (or, should the parent fail first, for a minute at most).
        std::thread::sleep(Duration::from_secs(60));
    }

    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn another_process_holds_it_until_it_dies() {
        use std::io::BufRead;
        let tmp = tempfile::tempdir().unwrap();
        let mut child = KillOnDrop(
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["lock::tests::lock_holder_child", "--exact", "--nocapture"])
                .env("M365SYNC_LOCK_CHILD", tmp.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
        let pid: u32 = loop {
            let line = lines.next().expect("the child reports").unwrap();
            if let Some(pid) = line.strip_prefix("LOCKED ") {
                break pid.trim().parse().unwrap();
            }
        };
        assert_eq!(pid, child.0.id());
        let err = ApplyLock::acquire(tmp.path(), "sync --apply").unwrap_err();
        match &err {
            LockError::Held(h) => {
                assert_eq!(h.pid, pid, "{err}");
                assert_eq!(h.command, "sync --apply (child)");
            }
            other => panic!("{other}"),
        }
        assert_eq!(
            ApplyLock::holder(tmp.path()).unwrap().map(|h| h.pid),
            Some(pid)
        );
        // Killed, it cannot clean up: the OS releases its lock, and the lock is free.
        drop(child);
        assert_eq!(ApplyLock::holder(tmp.path()).unwrap(), None);
        let lock = ApplyLock::acquire(tmp.path(), "sync --apply").unwrap();
        assert_eq!(lock.holder_info().pid, std::process::id());
    }

    #[test]
    fn an_environment_failure_is_io_not_held() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = ApplyLock::acquire(&file, "sync --apply").unwrap_err();
        assert!(matches!(err, LockError::Io { .. }), "{err}");
        // The lock file is a folder.
        std::fs::create_dir(tmp.path().join(LOCK_FILE)).unwrap();
        let err = ApplyLock::acquire(tmp.path(), "sync --apply").unwrap_err();
        assert!(matches!(err, LockError::Io { .. }), "{err}");
    }
}
