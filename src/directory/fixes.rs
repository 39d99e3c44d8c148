//! Small writes the Errors tab's one-key fixes need: a user's email, a UPN override, and the
//! integration's domain settings per tenant. All kept in existing tables (`users`, `settings`):
//! no migration.
//!
//! Settings keys:
//! - `upn_override.<directory id>` = the UPN to provision that user with (email kept);
//! - `domains.<tenant>.enabled` = the domains m365sync may provision into, comma-separated
//!   (absent = every verified domain);
//! - `domains.<tenant>.default` = the integration's default domain.
use std::collections::HashMap;

use rusqlite::OptionalExtension;

use super::{now_rfc3339, Directory, DirectoryError};

/// The integration's domain settings of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DomainSettings {
    /// `None` = every verified domain.
    pub enabled: Option<Vec<String>>,
    pub default: Option<String>,
}

impl Directory {
    /// Change a directory user's email (the Errors tab's edit-email fix). Refused when another
    /// user has it.
    pub fn set_email(&mut self, id: i64, email: &str) -> Result<(), DirectoryError> {
        let email = email.trim();
        if email.is_empty() || !email.contains('@') {
            return Err(DirectoryError::Invalid(format!(
                "`{email}` is not an email address"
            )));
        }
        let lc = email.to_lowercase();
        let taken: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM users WHERE email_lc = ?1 AND id <> ?2",
                rusqlite::params![lc, id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = taken {
            return Err(DirectoryError::Invalid(format!(
                "directory user #{other} already has {email}"
            )));
        }
        let n = self.conn.execute(
            "UPDATE users SET email = ?2, email_lc = ?3, updated_at = ?4 WHERE id = ?1",
            rusqlite::params![id, email, lc, now_rfc3339()],
        )?;
        if n == 0 {
            return Err(DirectoryError::Invalid(format!(
                "directory user #{id} does not exist"
            )));
        }
        Ok(())
    }

    /// Provision directory user `id` with `upn` instead of its email (`None` clears it).
    pub fn set_upn_override(&mut self, id: i64, upn: Option<&str>) -> Result<(), DirectoryError> {
        let key = format!("upn_override.{id}");
        self.put_setting(&key, upn)
    }

    /// Every UPN override, by directory id (what `PreflightOptions::upn_overrides` and the
    /// plan read).
    pub fn upn_overrides(&self) -> Result<HashMap<i64, String>, DirectoryError> {
        let mut st = self.conn.prepare(
            "SELECT key, value FROM settings WHERE key LIKE 'upn\\_override.%' ESCAPE '\\'",
        )?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = HashMap::new();
        for row in rows {
            let (k, v) = row?;
            if let Some(id) = k.strip_prefix("upn_override.").and_then(|x| x.parse().ok()) {
                out.insert(id, v);
            }
        }
        Ok(out)
    }

    /// The domain settings of `tenant`.
    pub fn domain_settings(&self, tenant: &str) -> Result<DomainSettings, DirectoryError> {
        let t = tenant.to_lowercase();
        let enabled = self.get_setting(&format!("domains.{t}.enabled"))?.map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect()
        });
        let default = self.get_setting(&format!("domains.{t}.default"))?;
        Ok(DomainSettings { enabled, default })
    }

    pub fn set_domain_settings(
        &mut self,
        tenant: &str,
        s: &DomainSettings,
    ) -> Result<(), DirectoryError> {
        let t = tenant.to_lowercase();
        let enabled = s.enabled.as_ref().map(|v| v.join(","));
        self.put_setting(&format!("domains.{t}.enabled"), enabled.as_deref())?;
        self.put_setting(&format!("domains.{t}.default"), s.default.as_deref())
    }

    fn get_setting(&self, key: &str) -> Result<Option<String>, DirectoryError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn put_setting(&mut self, key: &str, value: Option<&str>) -> Result<(), DirectoryError> {
        match value {
            Some(v) => self.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, v],
            )?,
            None => self
                .conn
                .execute("DELETE FROM settings WHERE key = ?1", [key])?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::NewDirectoryUser;

    #[test]
    fn email_override_and_domain_settings_round_trip() {
        let mut d = Directory::open_in_memory().unwrap();
        let a = d
            .add_user(&NewDirectoryUser {
                email: "a@x.io".into(),
                display_name: "A".into(),
                ..Default::default()
            })
            .unwrap();
        let b = d
            .add_user(&NewDirectoryUser {
                email: "b@x.io".into(),
                display_name: "B".into(),
                ..Default::default()
            })
            .unwrap();
        d.set_email(a, "a@y.com").unwrap();
        assert!(d.set_email(a, "B@x.io").is_err());
        assert_eq!(d.user(a).unwrap().unwrap().email, "a@y.com");
        d.set_upn_override(b, Some("b@contoso.com")).unwrap();
        assert_eq!(d.upn_overrides().unwrap()[&b], "b@contoso.com");
        d.set_upn_override(b, None).unwrap();
        assert!(d.upn_overrides().unwrap().is_empty());
        let s = DomainSettings {
            enabled: Some(vec!["contoso.com".into(), "x.io".into()]),
            default: Some("contoso.com".into()),
        };
        d.set_domain_settings("Contoso.onmicrosoft.com", &s)
            .unwrap();
        assert_eq!(d.domain_settings("contoso.onmicrosoft.com").unwrap(), s);
    }
}
