//! Interim apply lock (replaced by the full module from the env branch).
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub command: String,
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another m365sync is applying changes to this tenant: pid {} on host {}, `{}`, since {}",
            self.pid, self.host, self.command, self.since
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{0}")]
    Held(Holder),
    #[error("the apply lock {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub struct ApplyLock {
    _file: std::fs::File,
}

impl ApplyLock {
    /// Who holds the lock, without taking it: Err(Held) when someone does.
    pub fn holder(data_dir: &Path) -> Result<(), LockError> {
        let path = data_dir.join("apply.lock");
        let Ok(f) = std::fs::File::open(&path) else {
            return Ok(());
        };
        if f.try_lock_shared().is_ok() {
            return Ok(());
        }
        let s = std::fs::read_to_string(&path).unwrap_or_default();
        let mut it = s.lines();
        Err(LockError::Held(Holder {
            pid: it.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            host: it.next().unwrap_or("?").into(),
            command: it.next().unwrap_or("?").into(),
            since: it.next().unwrap_or("?").into(),
        }))
    }

    pub fn acquire(data_dir: &Path, command: &str) -> Result<ApplyLock, LockError> {
        use std::io::{Read, Seek, Write};
        let path = data_dir.join("apply.lock");
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if f.try_lock().is_err() {
            let mut s = String::new();
            let _ = f.read_to_string(&mut s);
            let mut it = s.lines();
            return Err(LockError::Held(Holder {
                pid: it.next().and_then(|p| p.parse().ok()).unwrap_or(0),
                host: it.next().unwrap_or("?").into(),
                command: it.next().unwrap_or("?").into(),
                since: it.next().unwrap_or("?").into(),
            }));
        }
        f.set_len(0).map_err(io)?;
        f.rewind().map_err(io)?;
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        writeln!(
            f,
            "{}\n{}\n{}\n{}",
            std::process::id(),
            host.trim(),
            command,
            crate::directory::now_rfc3339()
        )
        .map_err(io)?;
        Ok(ApplyLock { _file: f })
    }
}
