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

    pub fn tenant(&self) -> Result<&str> {
        self.tenant.as_deref().context(
            "no tenant configured: pass --tenant, set M365SYNC_TENANT, or add `tenant = \"...\"` to config.toml",
        )
    }
    pub fn client_id(&self) -> Result<&str> {
        self.client_id.as_deref().context(
            "no client id configured: pass --client-id, set M365SYNC_CLIENT_ID, or add `client_id = \"...\"` to config.toml",
        )
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
