//! The per-tenant token cache file: JSON, mode 0600 from creation, written atomically.
use std::io::Write;
use std::path::Path;

use super::{AuthError, TokenCache, TokenSet};

impl TokenCache {
    pub fn new(path: std::path::PathBuf) -> Self {
        TokenCache { path }
    }

    /// The cached tokens; `None` when there is no cache file. A file that is not a token
    /// cache is an error (with the path and what to do), never silently ignored.
    pub fn load(&self) -> Result<Option<TokenSet>, AuthError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(AuthError::Config(format!(
                    "cannot read the token cache {}: {e}",
                    self.path.display()
                )))
            }
        };
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(&self.path) {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %self.path.display(), mode = format!("{mode:o}"), "token cache is readable by others; it is rewritten 0600 on the next save");
            }
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            AuthError::Config(format!(
                "the token cache {} is corrupt ({e}); run `m365sync logout` then `m365sync login`",
                self.path.display()
            ))
        })
    }

    /// Written atomically with mode 0600 (the directory 0700): a temp file created with mode
    /// 0600 before any byte is written, flushed to disk, then renamed over the cache file.
    pub fn save(&self, tokens: &TokenSet) -> Result<(), AuthError> {
        let err = |what: &str, e: std::io::Error| {
            AuthError::Config(format!("cannot {what} {}: {e}", self.path.display()))
        };
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(|e| err("create the directory of", e))?;
        let json = serde_json::to_vec_pretty(tokens)
            .map_err(|e| AuthError::Config(format!("cannot serialize tokens: {e}")))?;
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tokens".into());
        let tmp = dir.join(format!(
            ".{file_name}.{}.{}.tmp",
            std::process::id(),
            rand::random::<u32>()
        ));
        let result = (|| {
            let mut f = create_private_file(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &self.path)?;
            // Make the rename itself durable.
            #[cfg(unix)]
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok::<(), std::io::Error>(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(err("write the token cache", e));
        }
        tracing::debug!(path = %self.path.display(), "token cache saved");
        Ok(())
    }

    pub fn clear(&self) -> Result<(), AuthError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AuthError::Config(format!(
                "cannot delete the token cache {}: {e}",
                self.path.display()
            ))),
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}
#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Identity;

    fn tokens(at: &str) -> TokenSet {
        TokenSet {
            access_token: at.into(),
            refresh_token: Some("rt".into()),
            expires_at: 1_900_000_000,
            scope: "s".into(),
            identity: Identity {
                name: "admin@contoso.com".into(),
                tenant_id: Some("tid".into()),
            },
            grant: "device_code".into(),
        }
    }

    #[test]
    fn absent_cache_loads_as_none_and_clear_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let c = TokenCache::new(dir.path().join("tokens/contoso.json"));
        assert_eq!(c.load().unwrap(), None);
        c.clear().unwrap();
    }

    #[test]
    fn save_load_clear_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let c = TokenCache::new(dir.path().join("tokens/contoso.json"));
        c.save(&tokens("a1")).unwrap();
        assert_eq!(c.load().unwrap(), Some(tokens("a1")));
        c.save(&tokens("a2")).unwrap();
        assert_eq!(c.load().unwrap(), Some(tokens("a2")));
        // Only the cache file is left behind: no temp files.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("tokens"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("contoso.json")]);
        c.clear().unwrap();
        assert_eq!(c.load().unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn cache_file_is_0600_and_dir_0700_even_when_replacing_a_loose_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens/contoso.json");
        let c = TokenCache::new(path.clone());
        c.save(&tokens("a1")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("tokens")), 0o700);
        // A world-readable file left by someone else is replaced, not reused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        c.save(&tokens("a2")).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn write_is_atomic_the_old_file_survives_a_failed_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tdir = dir.path().join("tokens");
        let path = tdir.join("contoso.json");
        let c = TokenCache::new(path.clone());
        c.save(&tokens("a1")).unwrap();
        // The directory becomes read-only: the temp file cannot be created, the save fails
        // and the previous cache is intact (never truncated or half-written).
        std::fs::set_permissions(&tdir, std::fs::Permissions::from_mode(0o500)).unwrap();
        let r = c.save(&tokens("a2"));
        std::fs::set_permissions(&tdir, std::fs::Permissions::from_mode(0o700)).unwrap();
        if nix_is_root() {
            return; // root ignores directory permissions
        }
        assert!(r.is_err());
        assert_eq!(c.load().unwrap(), Some(tokens("a1")));
    }

    #[cfg(unix)]
    fn nix_is_root() -> bool {
        std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false)
    }

    #[test]
    fn corrupt_cache_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contoso.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = TokenCache::new(path).load().unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("corrupt") && msg.contains("contoso.json") && msg.contains("login"),
            "{msg}"
        );
    }
}
