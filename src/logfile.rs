//! The log file: one file a day, `logs/m365sync.log.YYYY-MM-DD` (UTC) under the data dir.
//!
//! Logging is never a reason to stop: [`DailyLog::open`] returns an error the caller turns into
//! one warning (a read-only data dir, a log file owned by another user, a `logs` that is not a
//! folder), and a failure later (the next day's file cannot be created) drops log lines
//! silently rather than write to a terminal the console owns. The folder is created 0700 and
//! every file 0600, set explicitly so the umask cannot change them (an existing log file is set
//! to 0600 too).
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file name prefix; the date follows after a dot.
pub const PREFIX: &str = "m365sync.log";

/// Why logging could not start, with the path it was trying.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {}: {source}", path.display())]
pub struct LogOpenError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// A `Write` that appends to today's log file and moves to a new file when the UTC date
/// changes.
#[derive(Debug)]
pub struct DailyLog {
    dir: PathBuf,
    day: time::Date,
    file: Option<File>,
}

/// `m365sync.log.2026-12-03`: the name of the log file of that (UTC) day.
pub fn file_name(day: time::Date) -> String {
    format!(
        "{PREFIX}.{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

impl DailyLog {
    /// Creates `dir` (0700) when missing and opens today's file for appending (0600). The
    /// error names the path that failed.
    pub fn open(dir: &Path) -> Result<DailyLog, LogOpenError> {
        crate::config::create_private_dir_all(dir).map_err(|source| LogOpenError {
            path: dir.to_path_buf(),
            source,
        })?;
        let day = today();
        let path = dir.join(file_name(day));
        let file = open_append(&path).map_err(|source| LogOpenError { path, source })?;
        Ok(DailyLog {
            dir: dir.to_path_buf(),
            day,
            file: Some(file),
        })
    }

    /// The file being written (today's).
    pub fn path(&self) -> PathBuf {
        self.dir.join(file_name(self.day))
    }
}

/// Appends, creating the file; the file is then set to exactly 0600 (a new one whatever the
/// umask, an older one readable by others). It must be a regular file (not a symlink:
/// `O_NOFOLLOW`).
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
    if mode != 0o600 {
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot make it mode 0600: {e}")))?;
    }
    Ok(f)
}

impl Write for DailyLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let now = today();
        if now != self.day {
            self.day = now;
            // A new day, a new file; if it cannot be opened, lines are dropped until the next
            // day rather than reported to a terminal the console owns.
            self.file = open_append(&self.path()).ok();
        }
        if let Some(f) = &mut self.file {
            if f.write_all(buf).is_err() {
                self.file = None;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(f) = &mut self.file {
            let _ = f.flush();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn file_names_match_the_daily_rotation_naming() {
        let d = time::macros::date!(2026 - 01 - 05);
        assert_eq!(file_name(d), "m365sync.log.2026-01-05");
    }

    #[test]
    fn creates_a_private_folder_and_file_and_appends() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data/logs");
        let mut log = DailyLog::open(&dir).unwrap();
        writeln!(log, "one").unwrap();
        drop(log);
        let mut log = DailyLog::open(&dir).unwrap();
        writeln!(log, "two").unwrap();
        let path = log.path();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("data")), 0o700);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn an_existing_log_readable_by_others_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(file_name(today()));
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        DailyLog::open(tmp.path()).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
    }

    /// What root cannot be stopped by modes, these stop anyone: `logs` is a file, today's log
    /// is a folder, today's log is a symlink. Each is an error naming the path, never a panic.
    #[test]
    fn a_log_that_cannot_be_opened_is_an_error_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        std::fs::write(&logs, "").unwrap();
        let e = DailyLog::open(&logs).unwrap_err();
        assert_eq!(e.path, logs);
        assert!(e.to_string().starts_with("cannot open "), "{e}");

        let tmp = tempfile::tempdir().unwrap();
        let today_path = tmp.path().join(file_name(today()));
        std::fs::create_dir(&today_path).unwrap();
        let e = DailyLog::open(tmp.path()).unwrap_err();
        assert_eq!(e.path, today_path, "{e}");

        let tmp = tempfile::tempdir().unwrap();
        let today_path = tmp.path().join(file_name(today()));
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), &today_path).unwrap();
        assert!(DailyLog::open(tmp.path()).is_err());
        assert!(!tmp.path().join("elsewhere").exists());
    }
}
