//! Bindings (issue 3): CSV upsert, desired bindings, outcomes of applied ops, the operation
//! journal, the append-only audit log and the directory policy. Every write runs in an
//! IMMEDIATE transaction so two processes (the console and a cron sync) never interleave.
use std::io::Read;

use rusqlite::{OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::{
    binding_str, looks_like_email, now_rfc3339, user_row, BindingState, Directory, DirectoryError,
    DirectoryUser, USER_COLS,
};
use crate::sync::plan::{GuardConfig, Policy};

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

/// A CSV row refused, with its line number in the file (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CsvRejected {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CsvImportReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub rejected: Vec<CsvRejected>,
    /// With a `groups` column: groups created, and memberships added or removed.
    pub groups_added: usize,
    pub memberships_changed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CsvUser {
    email: String,
    display_name: String,
    given_name: Option<String>,
    surname: Option<String>,
    job_title: Option<String>,
    department: Option<String>,
    /// With a `groups` column: the user's groups, exactly (names separated by `;`).
    groups: Option<Vec<String>>,
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Directory {
    pub(super) fn immediate(&mut self) -> Result<rusqlite::Transaction<'_>, DirectoryError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// The directory user with this email (case-insensitive).
    pub fn find_by_email(&self, email: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE email_lc = ?1"),
                [email.trim().to_lowercase()],
                user_row,
            )
            .optional()?)
    }

    pub fn user(&self, id: i64) -> Result<Option<DirectoryUser>, DirectoryError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
                [id],
                user_row,
            )
            .optional()?)
    }

    /// Add or update directory users from a CSV with a header row: `email`, `givenName`,
    /// `surname`, `displayName`, optional `jobTitle`, `department` (any case; unknown columns
    /// ignored), optional `groups` (group names separated by `;`: the groups are created as
    /// needed and the user's memberships become exactly these; without the column memberships
    /// are left alone). A bad row is reported with its line number and nothing of it is written; the
    /// good rows are written in one transaction. Importing the same file again changes nothing.
    pub fn import_csv<R: Read>(&mut self, reader: R) -> Result<CsvImportReport, DirectoryError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers = rdr
            .headers()
            .map_err(|e| DirectoryError::Invalid(format!("CSV header: {e}")))?
            .clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
        };
        let email_col = col("email").ok_or_else(|| {
            DirectoryError::Invalid(
                "the CSV has no `email` column (header row: email, givenName, surname, \
                 displayName, jobTitle, department)"
                    .into(),
            )
        })?;
        let (given, sur, disp, job, dept) = (
            col("givenName"),
            col("surname"),
            col("displayName"),
            col("jobTitle"),
            col("department"),
        );
        let groups_col = col("groups");
        let mut report = CsvImportReport::default();
        let mut rows: Vec<(u64, CsvUser)> = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for rec in rdr.records() {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    report.rejected.push(CsvRejected {
                        line,
                        reason: format!("unreadable row: {e}"),
                    });
                    continue;
                }
            };
            let line = rec.position().map_or(0, |p| p.line());
            let get = |c: Option<usize>| non_empty(c.and_then(|c| rec.get(c)));
            let email = get(Some(email_col)).unwrap_or_default();
            if !looks_like_email(&email) {
                report.rejected.push(CsvRejected {
                    line,
                    reason: if email.is_empty() {
                        "no email".into()
                    } else {
                        format!("`{email}` is not an email address")
                    },
                });
                continue;
            }
            if !email.is_ascii() {
                report.rejected.push(CsvRejected {
                    line,
                    reason: format!(
                        "`{email}` has non-ASCII characters, which Microsoft 365 does not allow in a sign-in name"
                    ),
                });
                continue;
            }
            if let Some(first) = seen.insert(email.to_lowercase(), line) {
                report.rejected.push(CsvRejected {
                    line,
                    reason: format!("{email} is already on line {first}"),
                });
                continue;
            }
            let given_name = get(given);
            let surname = get(sur);
            let display_name = get(disp)
                .or_else(|| {
                    let n = [given_name.as_deref(), surname.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    non_empty(Some(&n))
                })
                .unwrap_or_else(|| email.clone());
            rows.push((
                line,
                CsvUser {
                    email,
                    display_name,
                    given_name,
                    surname,
                    job_title: get(job),
                    department: get(dept),
                    groups: groups_col.map(|c| {
                        let mut names: Vec<String> = Vec::new();
                        for n in rec.get(c).unwrap_or("").split(';') {
                            let n = n.trim();
                            if !n.is_empty() && !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                                names.push(n.to_string());
                            }
                        }
                        names
                    }),
                },
            ));
        }
        let now = now_rfc3339();
        let group_kind = self.group_kind()?;
        let tx = self.immediate()?;
        {
            let mut find = tx.prepare(
                "SELECT id, display_name, given_name, surname, job_title, department
                 FROM users WHERE email_lc = ?1",
            )?;
            let mut update = tx.prepare(
                "UPDATE users SET display_name = ?2, given_name = ?3, surname = ?4,
                        job_title = ?5, department = ?6, updated_at = ?7 WHERE id = ?1",
            )?;
            let mut insert = tx.prepare(
                "INSERT INTO users (email, email_lc, display_name, given_name, surname, job_title,
                                    department, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            )?;
            for (_line, u) in rows {
                type Existing = (
                    i64,
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                );
                let existing: Option<Existing> = find
                    .query_row([u.email.to_lowercase()], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    })
                    .optional()?;
                let user_id = match existing {
                    Some((id, d, g, s, j, dp)) => {
                        if (d, g, s, j, dp)
                            == (
                                u.display_name.clone(),
                                u.given_name.clone(),
                                u.surname.clone(),
                                u.job_title.clone(),
                                u.department.clone(),
                            )
                        {
                            report.unchanged += 1;
                        } else {
                            update.execute(rusqlite::params![
                                id,
                                u.display_name,
                                u.given_name,
                                u.surname,
                                u.job_title,
                                u.department,
                                now
                            ])?;
                            report.updated += 1;
                        }
                        id
                    }
                    None => {
                        insert.execute(rusqlite::params![
                            u.email,
                            u.email.to_lowercase(),
                            u.display_name,
                            u.given_name,
                            u.surname,
                            u.job_title,
                            u.department,
                            now
                        ])?;
                        report.added += 1;
                        tx.last_insert_rowid()
                    }
                };
                if let Some(names) = &u.groups {
                    let mut ids = Vec::with_capacity(names.len());
                    for n in names {
                        let (gid, created) = super::groups::ensure_group(&tx, n, group_kind, &now)?;
                        report.groups_added += usize::from(created);
                        ids.push(gid);
                    }
                    report.memberships_changed +=
                        super::groups::set_user_groups(&tx, user_id, &ids)?;
                }
            }
        }
        tx.commit()?;
        Ok(report)
    }

    /// The directory password of this user was just set (the password itself is not stored).
    pub fn set_password_set_at(&mut self, id: i64, at: &str) -> Result<(), DirectoryError> {
        let tx = self.immediate()?;
        tx.execute(
            "UPDATE users SET password_set_at = ?2, updated_at = ?3 WHERE id = ?1",
            rusqlite::params![id, at, now_rfc3339()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Link a directory user to an account and record its binding (after an applied op).
    pub fn record_binding(
        &mut self,
        directory_id: i64,
        tenant_user_id: &str,
        binding: BindingState,
    ) -> Result<(), DirectoryError> {
        let tx = self.immediate()?;
        set_binding(&tx, directory_id, tenant_user_id, binding, &now_rfc3339())?;
        tx.commit()?;
        Ok(())
    }

    /// Forget the tenant: clear every desired binding and every link (binding Unbound).
    /// Nothing in Microsoft 365 changes. Returns how many users had a link or a selection.
    pub fn disconnect(&mut self) -> Result<usize, DirectoryError> {
        let tx = self.immediate()?;
        let n = tx.execute(
            "UPDATE users SET want_bound = 0, tenant_user_id = NULL, binding = 'unbound',
                    updated_at = ?1
             WHERE want_bound <> 0 OR tenant_user_id IS NOT NULL OR binding <> 'unbound'",
            [now_rfc3339()],
        )?;
        tx.execute("DELETE FROM import_records", [])?;
        tx.commit()?;
        Ok(n)
    }

    pub fn audit_append(&mut self, entry: &AuditEntry) -> Result<(), DirectoryError> {
        let tx = self.immediate()?;
        insert_audit(&tx, entry)?;
        tx.commit()?;
        Ok(())
    }

    pub fn audit_list(&self) -> Result<Vec<AuditEntry>, DirectoryError> {
        let mut st = self.conn.prepare(
            "SELECT at, actor, action, target, request_id, outcome, detail FROM audit ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(AuditEntry {
                at: r.get(0)?,
                actor: r.get(1)?,
                action: r.get(2)?,
                target: r.get(3)?,
                request_id: r.get(4)?,
                outcome: r.get(5)?,
                detail: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn setting(&self, key: &str) -> Result<Option<String>, DirectoryError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// The directory policy (password max age) and the mass-change guard's limits.
    pub fn policy(&self) -> Result<(Policy, GuardConfig), DirectoryError> {
        let mut guard = GuardConfig::default();
        let policy = Policy {
            password_max_age_days: self
                .setting("password_max_age_days")?
                .and_then(|v| v.parse().ok()),
            attributes: self
                .setting("attribute_policy")?
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default(),
        };
        if let Some(v) = self
            .setting("guard_max_blocks")?
            .and_then(|v| v.parse().ok())
        {
            guard.max_blocks = v;
        }
        if let Some(v) = self
            .setting("guard_max_share")?
            .and_then(|v| v.parse().ok())
        {
            guard.max_share = v;
        }
        Ok((policy, guard))
    }

    pub fn set_policy(
        &mut self,
        policy: &Policy,
        guard: &GuardConfig,
    ) -> Result<(), DirectoryError> {
        let tx = self.immediate()?;
        match policy.password_max_age_days {
            Some(d) => tx.execute(
                "INSERT INTO settings (key, value) VALUES ('password_max_age_days', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [d.to_string()],
            )?,
            None => tx.execute(
                "DELETE FROM settings WHERE key = 'password_max_age_days'",
                [],
            )?,
        };
        let attributes = serde_json::to_string(&policy.attributes)
            .map_err(|e| DirectoryError::Invalid(e.to_string()))?;
        for (k, v) in [
            ("guard_max_blocks", guard.max_blocks.to_string()),
            ("guard_max_share", guard.max_share.to_string()),
            ("attribute_policy", attributes),
        ] {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [k, &v],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

pub(super) fn set_binding(
    tx: &rusqlite::Transaction<'_>,
    directory_id: i64,
    tenant_user_id: &str,
    binding: BindingState,
    now: &str,
) -> Result<(), DirectoryError> {
    // Another directory user linked to the same account (a stale link) lets go of it.
    tx.execute(
        "UPDATE users SET tenant_user_id = NULL, binding = 'unbound', updated_at = ?3
         WHERE tenant_user_id = ?2 AND id <> ?1",
        rusqlite::params![directory_id, tenant_user_id, now],
    )?;
    tx.execute(
        "UPDATE users SET tenant_user_id = ?2, binding = ?3, updated_at = ?4 WHERE id = ?1",
        rusqlite::params![directory_id, tenant_user_id, binding_str(binding), now],
    )?;
    Ok(())
}

pub(super) fn insert_audit(
    tx: &rusqlite::Transaction<'_>,
    a: &AuditEntry,
) -> Result<(), DirectoryError> {
    let at = if a.at.is_empty() {
        now_rfc3339()
    } else {
        a.at.clone()
    };
    tx.execute(
        "INSERT INTO audit (at, actor, action, target, request_id, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rusqlite::params![
            at,
            a.actor,
            a.action,
            a.target,
            a.request_id,
            a.outcome,
            a.detail
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "email,givenName,surname,displayName,jobTitle,department,shoeSize\n\
        ada@example.com,Ada,Lovelace,Ada Lovelace,Engineer,R&D,38\n\
        not-an-email,Bad,Row,Bad Row,,,\n\
        bob@example.com,Bob,Builder,,,,44\n";

    #[test]
    fn csv_import_reports_bad_rows_by_line_and_reimport_changes_nothing() {
        let mut d = Directory::open_in_memory().unwrap();
        let r = d.import_csv(CSV.as_bytes()).unwrap();
        assert_eq!((r.added, r.updated, r.unchanged), (2, 0, 0));
        assert_eq!(r.rejected.len(), 1);
        assert_eq!(r.rejected[0].line, 3, "{:?}", r.rejected);
        assert!(r.rejected[0].reason.contains("not-an-email"));
        assert!(d.find_by_email("not-an-email").unwrap().is_none());
        let ada = d.find_by_email("ADA@example.com").unwrap().unwrap();
        assert_eq!(ada.job_title.as_deref(), Some("Engineer"));
        assert_eq!(ada.department.as_deref(), Some("R&D"));
        let bob = d.find_by_email("bob@example.com").unwrap().unwrap();
        assert_eq!(bob.display_name, "Bob Builder", "derived from the names");
        let before = d.users().unwrap();
        let again = d.import_csv(CSV.as_bytes()).unwrap();
        assert_eq!((again.added, again.updated, again.unchanged), (0, 0, 2));
        assert_eq!(d.users().unwrap(), before, "a re-import changes nothing");
        let changed = CSV.replace("Engineer", "Countess");
        let r = d.import_csv(changed.as_bytes()).unwrap();
        assert_eq!((r.added, r.updated, r.unchanged), (0, 1, 1));
    }

    #[test]
    fn csv_without_email_column_is_refused_and_duplicates_rejected() {
        let mut d = Directory::open_in_memory().unwrap();
        assert!(d.import_csv("name\nx\n".as_bytes()).is_err());
        let r = d
            .import_csv("Email\na@example.com\nA@example.com\n".as_bytes())
            .unwrap();
        assert_eq!(r.added, 1);
        assert_eq!(r.rejected[0].line, 3);
    }

    #[test]
    fn migration_two_initialises_want_from_the_binding() {
        let mut d = Directory::open_in_memory().unwrap();
        // Re-run as if from version 1 with a bound user.
        d.conn
            .execute_batch(
                "DROP TABLE group_journal; DROP TABLE group_members; DROP TABLE groups;
                 DROP TABLE users; DROP TABLE import_records; DROP TABLE journal;
                 DROP TABLE audit; DROP TABLE settings; PRAGMA user_version = 0;",
            )
            .unwrap();
        d.conn.execute_batch(super::super::MIGRATIONS[0]).unwrap();
        d.conn
            .execute_batch(
                "INSERT INTO users (email, email_lc, display_name, tenant_user_id, binding, created_at, updated_at)
                 VALUES ('a@x.com', 'a@x.com', 'A', 't1', 'bound', '', ''),
                        ('b@x.com', 'b@x.com', 'B', 't2', 'blocked', '', '');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        d.migrate().unwrap();
        let users = d.users().unwrap();
        assert!(
            users
                .iter()
                .find(|u| u.email == "a@x.com")
                .unwrap()
                .want_bound
        );
        assert!(
            !users
                .iter()
                .find(|u| u.email == "b@x.com")
                .unwrap()
                .want_bound
        );
    }

    #[test]
    fn want_disconnect_and_policy() {
        let mut d = Directory::open_in_memory().unwrap();
        d.import_csv(CSV.as_bytes()).unwrap();
        let ada = d.find_by_email("ada@example.com").unwrap().unwrap();
        assert_eq!(d.set_want(&[ada.id], true).unwrap(), 1);
        assert_eq!(d.set_want(&[ada.id], true).unwrap(), 0, "no change");
        assert_eq!(d.set_want_all(true).unwrap(), 1);
        d.record_binding(ada.id, "t-ada", BindingState::Bound)
            .unwrap();
        assert_eq!(d.disconnect().unwrap(), 2);
        for u in d.users().unwrap() {
            assert!(!u.want_bound && u.tenant_user_id.is_none());
            assert_eq!(u.binding, BindingState::Unbound);
        }
        let (p, g) = d.policy().unwrap();
        assert_eq!(
            (p.password_max_age_days, g.clone()),
            (None, GuardConfig::default())
        );
        let g2 = GuardConfig {
            max_blocks: 7,
            max_share: 0.25,
        };
        let p2 = Policy {
            password_max_age_days: Some(90),
            attributes: Default::default(),
        };
        d.set_policy(&p2, &g2).unwrap();
        assert_eq!(d.policy().unwrap(), (p2, g2));
    }
}
