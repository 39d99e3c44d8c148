//! The hand-off file: where generated temporary passwords go, one CSV row per account, each
//! on disk before the next account is created.
//!
//! Safe by construction: [`HandoffFile::create`] makes a NEW file only (`O_CREAT|O_EXCL|
//! O_NOFOLLOW`, mode 0600 set again after creation so the umask cannot change it), so it is
//! called before anything is sent and refuses, with a message that says what to do, an
//! existing file (m365sync never appends passwords to one: an old hand-off would be mixed
//! with the new, or a file someone else can read reused), a symlink (which could point
//! anywhere) and a missing folder. [`HandoffFile::write`] appends one row and flushes and
//! fsyncs it before returning.
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::sync::apply::IssuedPassword;

/// The header row written at creation.
pub const HEADER: [&str; 3] = ["email", "userPrincipalName", "temporaryPassword"];

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error(
        "the hand-off file {} already exists: choose a new name; m365sync never appends \
         passwords to an existing file",
        path.display()
    )]
    Exists { path: PathBuf },
    #[error(
        "the hand-off file {} is a symbolic link: choose a new name; m365sync never writes \
         passwords through a link",
        path.display()
    )]
    Symlink { path: PathBuf },
    #[error(
        "the folder of the hand-off file {} does not exist: create it first or choose \
         another path",
        path.display()
    )]
    NoFolder { path: PathBuf },
    #[error("the hand-off file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An open hand-off file this process created. Dropped without a row (the run issued no
/// password, or stopped before sending anything), the file is removed: no header-only file is
/// left behind, and the name can be used again.
#[derive(Debug)]
pub struct HandoffFile {
    file: File,
    path: PathBuf,
    rows: usize,
}

impl Drop for HandoffFile {
    fn drop(&mut self) {
        if self.rows == 0 {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl HandoffFile {
    /// Creates the file (mode 0600) and writes the header, durably. Refuses an existing path
    /// (file, folder or symlink, even a dangling one) and a missing folder.
    pub fn create(path: &Path) -> Result<HandoffFile, HandoffError> {
        let p = path.to_path_buf();
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => return Err(HandoffError::Symlink { path: p }),
            Ok(_) => return Err(HandoffError::Exists { path: p }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(HandoffError::Io { path: p, source: e }),
        }
        let folder = folder_of(path);
        if !folder.is_dir() {
            return Err(HandoffError::NoFolder { path: p });
        }
        let file = crate::config::create_new_private_file(path).map_err(|e| {
            // Lost a race with whoever created it since the check: say what is there now.
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => HandoffError::Symlink { path: p.clone() },
                Ok(_) => HandoffError::Exists { path: p.clone() },
                Err(_) if e.kind() == std::io::ErrorKind::NotFound => {
                    HandoffError::NoFolder { path: p.clone() }
                }
                Err(_) => HandoffError::Io {
                    path: p.clone(),
                    source: e,
                },
            }
        })?;
        let mut h = HandoffFile {
            file,
            path: p,
            rows: 0,
        };
        h.append(&HEADER)?;
        // The new name itself must survive a crash, not only the bytes.
        if let Ok(dir) = File::open(folder) {
            let _ = dir.sync_all();
        }
        Ok(h)
    }

    /// Appends the account's row and makes it durable (flush, then `fsync`) before returning:
    /// once this returns, the password survives a crash or a power cut.
    pub fn write(&mut self, issued: &IssuedPassword) -> Result<(), HandoffError> {
        self.append(&[&issued.email, &issued.upn, &issued.password])?;
        self.rows += 1;
        Ok(())
    }

    /// The rows written, not counting the header.
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, cells: &[&str]) -> Result<(), HandoffError> {
        let io = |path: &Path, source: std::io::Error| HandoffError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut line = Vec::with_capacity(128);
        {
            let mut w = csv::Writer::from_writer(&mut line);
            // Spreadsheet-safe cells: an address starting with `-`, `+`, `=` or `@` is not run
            // as a formula (generated passwords never start so, and are never changed).
            crate::csvsafe::write_row(&mut w, cells)
                .map_err(|e| io(&self.path, std::io::Error::other(e)))?;
            w.flush().map_err(|e| io(&self.path, e))?;
        }
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io(&self.path, e))
    }
}

/// The folder a path is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The hand-off file as the apply engine's password sink: each password on disk as soon as its
/// account exists.
impl crate::sync::apply::PasswordSink for HandoffFile {
    fn deliver(&mut self, p: &IssuedPassword) -> Result<(), String> {
        self.write(p).map_err(|e| e.to_string())
    }
    fn describe(&self) -> String {
        format!("the hand-off file {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn issued(n: usize) -> IssuedPassword {
        IssuedPassword {
            email: format!("user{n}@contoso.com"),
            upn: format!("user{n}@contoso.onmicrosoft.com"),
            password: format!("Kq7#pw,\"{n}\""),
        }
    }

    #[test]
    fn header_at_creation_then_each_row_durable_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("new.csv");
        let mut h = HandoffFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "email,userPrincipalName,temporaryPassword\n"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        h.write(&issued(1)).unwrap();
        // On disk before the next write: read through another handle.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        h.write(&issued(2)).unwrap();
        assert_eq!(h.rows(), 2);
        assert_eq!(h.path(), path);
        drop(h);
        let mut r = csv::Reader::from_path(&path).unwrap();
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[1][0], "user2@contoso.com");
        assert_eq!(&rows[1][1], "user2@contoso.onmicrosoft.com");
        assert_eq!(&rows[1][2], "Kq7#pw,\"2\"", "a comma or quote survives");
    }

    #[test]
    fn an_existing_file_is_refused_and_left_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("old.csv");
        std::fs::write(&path, "earlier passwords\n").unwrap();
        let e = HandoffFile::create(&path).unwrap_err();
        assert!(matches!(e, HandoffError::Exists { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("already exists: choose a new name")
                && msg.contains("never appends passwords to an existing file")
                && msg.contains(&path.display().to_string()),
            "{msg}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "earlier passwords\n"
        );
        // A folder of that name too.
        let e = HandoffFile::create(tmp.path()).unwrap_err();
        assert!(matches!(e, HandoffError::Exists { .. }), "{e}");
    }

    #[test]
    fn a_symlink_is_refused_dangling_or_not() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target.csv");
        let link = tmp.path().join("link.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = HandoffFile::create(&link).unwrap_err();
        assert!(matches!(e, HandoffError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!target.exists(), "nothing created through the link");
        std::fs::write(&target, "x").unwrap();
        let e = HandoffFile::create(&link).unwrap_err();
        assert!(matches!(e, HandoffError::Symlink { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
    }

    #[test]
    fn a_missing_folder_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nope/new.csv");
        let e = HandoffFile::create(&path).unwrap_err();
        assert!(matches!(e, HandoffError::NoFolder { .. }), "{e}");
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(!tmp.path().join("nope").exists(), "no folder is created");
    }

    #[test]
    fn a_run_that_issued_nothing_leaves_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("new.csv");
        let h = HandoffFile::create(&path).unwrap();
        assert_eq!(h.rows(), 0);
        drop(h);
        assert!(!path.exists());
        HandoffFile::create(&path).expect("the name is free again");
    }
}
