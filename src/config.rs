//! Settings and paths. Precedence: command-line flag, then environment variable (clap reads
//! both), then `config.toml` in the data dir, then the defaults that talk to Microsoft.
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// What `config.toml` may hold. Every field is optional: flags and env vars override it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub authority: Option<String>,
    pub graph_url: Option<String>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub service_account: Option<String>,
}

/// The settings every command runs with, once flags, env and the config file are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub authority: String,
    pub graph_url: String,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// The UPN of the account an app-only run acts for (its service account): a plan that
    /// blocks it needs a typed confirmation, as one that blocks the signed-in admin does.
    pub service_account: Option<String>,
    /// Everything m365sync writes lives under it: config, token cache, database, logs.
    pub data_dir: PathBuf,
}

/// The overrides that came from flags or the environment (None = not given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub authority: Option<String>,
    pub graph_url: Option<String>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub service_account: Option<String>,
    pub data_dir: Option<PathBuf>,
}

pub fn default_data_dir() -> Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "m365sync")
        .context("cannot find a home directory for m365sync's data; pass --data-dir")?;
    Ok(dirs.data_dir().to_path_buf())
}

impl Settings {
    pub fn resolve(o: Overrides) -> Result<Settings> {
        let data_dir = match o.data_dir {
            Some(d) => d,
            None => default_data_dir()?,
        };
        let file = ConfigFile::load(&data_dir.join("config.toml"))?;
        let s = Settings {
            authority: o
                .authority
                .or(file.authority)
                .unwrap_or_else(|| DEFAULT_AUTHORITY.to_string())
                .trim_end_matches('/')
                .to_string(),
            graph_url: o
                .graph_url
                .or(file.graph_url)
                .unwrap_or_else(|| DEFAULT_GRAPH_URL.to_string())
                .trim_end_matches('/')
                .to_string(),
            tenant: o.tenant.or(file.tenant),
            client_id: o.client_id.or(file.client_id),
            ca_file: o.ca_file.or(file.ca_file),
            service_account: o.service_account.or(file.service_account),
            data_dir,
        };
        check_endpoint_url(&s.authority).context("authority")?;
        check_endpoint_url(&s.graph_url).context("graph url")?;
        Ok(s)
    }

    pub fn config_path(&self) -> PathBuf {
        self.data_dir.join("config.toml")
    }
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("directory.sqlite3")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
    /// One cache file per tenant; the tenant string is reduced to a safe file name.
    pub fn token_cache_path(&self, tenant: &str) -> PathBuf {
        let safe: String = tenant
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        self.data_dir.join("tokens").join(format!("{safe}.json"))
    }

    /// The config file's full path, as messages name it (a relative `--data-dir` made
    /// absolute).
    pub fn config_path_shown(&self) -> String {
        let p = self.config_path();
        std::path::absolute(&p).unwrap_or(p).display().to_string()
    }

    pub fn tenant(&self) -> Result<&str> {
        self.tenant.as_deref().with_context(|| {
            format!(
                "no tenant configured: pass --tenant, set M365SYNC_TENANT, or add \
                 `tenant = \"...\"` to {}",
                self.config_path_shown()
            )
        })
    }
    pub fn client_id(&self) -> Result<&str> {
        self.client_id.as_deref().with_context(|| {
            format!(
                "no client id configured: pass --client-id, set M365SYNC_CLIENT_ID, or add \
                 `client_id = \"...\"` to {}",
                self.config_path_shown()
            )
        })
    }

    /// The one HTTP client every request goes through: rustls (ring), the extra CA if any,
    /// no redirects (a token endpoint that redirects is not one to follow).
    pub fn http_client(&self) -> Result<reqwest::Client> {
        http_client(self.ca_file.as_deref())
    }
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// Install ring as the process-wide rustls provider (reqwest is built without one).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client> {
    install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(120))
        .user_agent(concat!("m365sync/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).with_context(|| format!("reading CA file {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("CA file {} holds no PEM certificate", path.display()))?;
        if certs.is_empty() {
            bail!("CA file {} holds no PEM certificate", path.display());
        }
        b = b.tls_certs_merge(certs);
    }
    Ok(b.build()?)
}

// Files m365sync writes are private by construction: new folders 0700, new files 0600, set
// explicitly after creation so that no umask (0002, 0077, 0277, ...) widens or narrows them.
// m365sync runs on Unix (file modes, flock, O_NOFOLLOW).

/// Creates `dir` and every missing parent, each new folder with mode 0700 (set explicitly, so
/// the umask cannot change it). A folder that already exists is left exactly as it is.
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} is a file, not a folder", dir.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => set_mode(dir, 0o700),
        // Another process created it between the check and here.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens a NEW file for writing with mode 0600 and never anything else: not an existing file
/// (`O_EXCL`), not through a symlink (`O_NOFOLLOW`; with `O_EXCL` a dangling symlink is refused
/// too), and not in a missing folder. The mode is set again with `fchmod` after creation, so the
/// umask cannot change it. The one helper behind every private file m365sync creates (the
/// password hand-off, the errors export).
pub fn create_new_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(f)
}

/// Removes the group and other permission bits of an existing file (0644 -> 0600, 0640 ->
/// 0600; 0400 stays 0400: never widened). `Ok(false)` when the file does not exist.
pub fn tighten_private_file(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Ok(true);
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        set_mode(path, mode & 0o700)?;
    }
    Ok(true)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
}

/// https anywhere; plain http only to loopback (the simulator), never to a real endpoint.
pub fn check_endpoint_url(raw: &str) -> Result<()> {
    let url = url::Url::parse(raw).with_context(|| format!("`{raw}` is not a URL"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                bail!(
                    "`{raw}` uses plain http: only https is allowed, except for loopback addresses"
                )
            }
        }
        other => bail!("`{raw}` has scheme `{other}`: only https (or http on loopback) is allowed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_is_refused_except_loopback() {
        assert!(check_endpoint_url("https://login.microsoftonline.com").is_ok());
        assert!(check_endpoint_url("http://127.0.0.1:8080").is_ok());
        assert!(check_endpoint_url("http://127.5.0.1:8080").is_ok());
        assert!(check_endpoint_url("http://localhost:1/v1.0").is_ok());
        assert!(check_endpoint_url("http://[::1]:80").is_ok());
        assert!(check_endpoint_url("http://graph.microsoft.com/v1.0").is_err());
        assert!(check_endpoint_url("http://10.0.0.1").is_err());
        assert!(check_endpoint_url("ftp://127.0.0.1").is_err());
        assert!(check_endpoint_url("not a url").is_err());
    }

    #[test]
    fn flags_beat_config_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "tenant = \"from-file\"\nclient_id = \"file-client\"\n",
        )
        .unwrap();
        let s = Settings::resolve(Overrides {
            tenant: Some("from-flag".into()),
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.tenant.as_deref(), Some("from-flag"));
        assert_eq!(s.client_id.as_deref(), Some("file-client"));
        assert_eq!(s.authority, DEFAULT_AUTHORITY);
        assert_eq!(s.graph_url, DEFAULT_GRAPH_URL);
        assert_eq!(s.db_path(), dir.path().join("directory.sqlite3"));
    }

    #[test]
    fn a_typo_in_the_config_file_is_an_error_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "tennant = \"x\"\n").unwrap();
        let err = Settings::resolve(Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("tennant"), "{err:#}");
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// (The umask is process-wide, so changing it here would race the other tests: the
    /// end-to-end test `tests/e2e_env.rs` runs the binary under umasks 000 and 277.)
    #[test]
    fn private_folders_are_0700_and_files_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        let file = dir.join("f.csv");
        create_private_dir_all(&dir).unwrap();
        create_private_dir_all(&dir).unwrap();
        create_new_private_file(&file).unwrap();
        for d in [tmp.path().join("a"), tmp.path().join("a/b"), dir.clone()] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn an_existing_folder_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        set_mode(tmp.path(), 0o750).unwrap();
        create_private_dir_all(tmp.path()).unwrap();
        assert_eq!(mode(tmp.path()), 0o750);
        let file = tmp.path().join("f");
        std::fs::write(&file, "").unwrap();
        let e = create_private_dir_all(&file).unwrap_err();
        assert!(e.to_string().contains("not a folder"), "{e}");
    }

    #[test]
    fn a_new_private_file_is_never_an_existing_file_or_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join("existing");
        std::fs::write(&existing, "keep").unwrap();
        let e = create_new_private_file(&existing).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep");

        let target = tmp.path().join("target");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_new_private_file(&link).is_err(), "dangling symlink");
        assert!(!target.exists(), "nothing created through the link");
        std::fs::write(&target, "keep").unwrap();
        assert!(create_new_private_file(&link).is_err(), "symlink to a file");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");

        let e = create_new_private_file(&tmp.path().join("missing/f")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn tightening_removes_group_and_other_bits_and_never_widens() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        assert!(!tighten_private_file(&f).unwrap(), "missing is fine");
        std::fs::write(&f, "").unwrap();
        for (from, to) in [
            (0o644, 0o600),
            (0o660, 0o600),
            (0o600, 0o600),
            (0o400, 0o400),
        ] {
            set_mode(&f, from).unwrap();
            assert!(tighten_private_file(&f).unwrap());
            assert_eq!(mode(&f), to, "{from:o}");
        }
    }

    #[test]
    fn token_cache_file_name_is_safe() {
        let s = Settings {
            authority: DEFAULT_AUTHORITY.into(),
            graph_url: DEFAULT_GRAPH_URL.into(),
            tenant: None,
            client_id: None,
            ca_file: None,
            service_account: None,
            data_dir: PathBuf::from("/d"),
        };
        assert_eq!(
            s.token_cache_path("../Contoso.onmicrosoft.com"),
            PathBuf::from("/d/tokens/.._contoso.onmicrosoft.com.json")
        );
    }
}
