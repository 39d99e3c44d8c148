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

/// What [`Directory::disconnect`] cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DisconnectReport {
    /// Directory users whose binding wish or account link was cleared.
    pub users: usize,
    /// Directory groups whose binding wish, M365 group link or last error was cleared.
    pub groups: usize,
    /// UPN overrides removed.
    pub upn_overrides: usize,
    /// Import records removed (tenant users whose import had failed).
    pub import_records: usize,
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

/// The longest cell the CSV import takes (characters); a longer one is refused with its line
/// and its length, never echoed.
pub const CSV_MAX_FIELD: usize = 1024;
/// The longest email (RFC 5321's path limit).
pub const CSV_MAX_EMAIL: usize = 254;
/// The longest group name in a `groups` cell (Graph's displayName limit).
pub const CSV_MAX_GROUP_NAME: usize = 256;
/// The longest `groups` cell (many groups a user).
pub const CSV_MAX_GROUPS_CELL: usize = 16 * 1024;

/// A cell of a column the import uses: `None` when the file has no such column (the field is
/// left as it is), `Some(None)` for an empty cell (the field is cleared), else the value.
type Cell = Option<Option<String>>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct CsvUser {
    email: String,
    display_name: Cell,
    given_name: Cell,
    surname: Cell,
    job_title: Cell,
    department: Cell,
    /// With a `groups` column: the user's groups, exactly (names separated by `;`).
    groups: Option<Vec<String>>,
    /// With a `licences` column: the user's own default SKUs, exactly
    /// (`SPE_E3,-TEAMS1;POWER_BI_PRO`).
    licences: Option<Vec<super::LicencePick>>,
    /// The synced attributes beyond the columns above whose column the file has (Graph name,
    /// value; an empty value clears the account's).
    attributes: Vec<(String, String)>,
}

/// The synced attribute columns a CSV may carry beyond the name and job columns: every
/// `UserAttr` but `jobTitle` and `department`, and `manager` (the manager's email).
fn attribute_columns() -> Vec<&'static str> {
    crate::graph::model::UserAttr::ALL
        .into_iter()
        .map(|a| a.wire())
        .filter(|w| !matches!(*w, "jobTitle" | "department"))
        .chain(std::iter::once("manager"))
        .collect()
}

/// One record of a CSV file and the line it starts on (1 = the first line of the file).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CsvRecord {
    line: u64,
    fields: Vec<String>,
}

/// A CSV file read as RFC 4180 says, lines counted as an editor counts them.
#[derive(Debug, Default, PartialEq, Eq)]
struct CsvParsed {
    /// Every record that is not blank (blank lines and rows of empty cells are skipped but
    /// counted), fields untrimmed.
    records: Vec<CsvRecord>,
    /// A quoted field opened on this line was never closed: it runs to the end of the file,
    /// so the record it is in and everything after it could not be read.
    unterminated: Option<u64>,
}

/// Split CSV text into records. Fields are separated by `,`; a record ends at `\n`, `\r\n` or
/// `\r`; a field that starts with `"` (after spaces) is quoted: it may hold `,`, line breaks and
/// `""` for a quote, and line breaks inside it are counted, so each record gets the line it
/// starts on in the file. A quote inside an unquoted field is kept as text.
fn parse_csv(text: &str) -> CsvParsed {
    let mut out = CsvParsed::default();
    let mut chars = text.chars().peekable();
    let mut line: u64 = 1;
    let mut record_line: u64 = 1;
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted_since: Option<u64> = None;
    let end_record = |fields: &mut Vec<String>, field: &mut String, out: &mut CsvParsed, at| {
        fields.push(std::mem::take(field));
        let fields = std::mem::take(fields);
        if fields.iter().any(|f| !f.trim().is_empty()) {
            out.records.push(CsvRecord { line: at, fields });
        }
    };
    while let Some(c) = chars.next() {
        if quoted_since.is_some() {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted_since = None,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                '\r' => {
                    if chars.peek() != Some(&'\n') {
                        line += 1;
                    }
                    field.push(c);
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.trim().is_empty() => {
                field.clear();
                quoted_since = Some(line);
            }
            ',' => fields.push(std::mem::take(&mut field)),
            '\n' | '\r' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                end_record(&mut fields, &mut field, &mut out, record_line);
                line += 1;
                record_line = line;
            }
            c => field.push(c),
        }
    }
    if let Some(since) = quoted_since {
        out.unterminated = Some(since);
    } else if !field.is_empty() || !fields.is_empty() {
        end_record(&mut fields, &mut field, &mut out, record_line);
    }
    out
}

/// Why a cell of `column` cannot be imported: too long (its length, never its text), or a
/// control character a terminal would obey (ESC, BEL, NUL, a bidi override, ...).
fn refuse_cell(column: &str, value: &str, max: usize) -> Option<String> {
    let n = value.chars().count();
    if n > max {
        return Some(format!(
            "the {column} is {} characters long (at most {})",
            crate::format::thousands(n),
            crate::format::thousands(max)
        ));
    }
    value
        .chars()
        .find(|&c| crate::text::is_control(c))
        .map(|c| {
            format!(
                "the {column} contains a control character, {}; names and emails must be \
             printable text",
                crate::text::describe(c)
            )
        })
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
    /// are left alone). A column the file does not have leaves that field of existing users as
    /// it is; an empty cell in a column it has clears the field (an empty `displayName` is
    /// derived from the names, else the email).
    ///
    /// A bad row is reported with the line it starts on in the file (blank lines and line
    /// breaks inside quoted cells counted) and nothing of it is written: a cell longer than
    /// [`CSV_MAX_FIELD`] (an email: [`CSV_MAX_EMAIL`]) or holding a control character, an
    /// address that is not one, a duplicate, a quote never closed (the rest of the file with
    /// it). The good rows are written in one transaction. Importing the same file again
    /// changes nothing. A file that is empty, not UTF-8, has no `email` column or seems to use
    /// `;` or tabs as separator is refused whole, saying so.
    pub fn import_csv<R: Read>(
        &mut self,
        mut reader: R,
    ) -> Result<CsvImportReport, DirectoryError> {
        let invalid = |m: String| DirectoryError::Invalid(m);
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(format!("reading the file: {e}")))?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let line = 1 + e.as_bytes()[..valid]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                return Err(invalid(format!(
                    "line {line} is not UTF-8 text: save the file as UTF-8 (in Excel: \
                     \"CSV UTF-8\")"
                )));
            }
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        if text.trim().is_empty() {
            return Err(invalid(
                "the file is empty: expected a header row (email,givenName,surname,\
                 displayName[,jobTitle,department,groups]) and one row per user"
                    .into(),
            ));
        }
        let parsed = parse_csv(text);
        let Some((header, records)) = parsed.records.split_first() else {
            let line = parsed.unterminated.unwrap_or(1);
            return Err(invalid(format!(
                "line {line}: a quote (\") opened here is never closed"
            )));
        };
        let headers: Vec<String> = header.fields.iter().map(|h| h.trim().to_string()).collect();
        let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let email_col = match col("email") {
            Some(c) => c,
            None => {
                let first = headers.join(",");
                let hint = if headers.len() == 1 && first.contains(';') {
                    "; the file seems to use ';' as separator; m365sync reads ',' (save it as \
                     \"CSV (comma delimited)\", or replace the separators)"
                } else if headers.len() == 1 && first.contains('\t') {
                    "; the file seems to use tabs as separator; m365sync reads ','"
                } else {
                    ""
                };
                return Err(invalid(format!(
                    "the CSV has no `email` column (header row: email, givenName, surname, \
                     displayName, jobTitle, department, groups){hint}"
                )));
            }
        };
        let (given, sur, disp, job, dept) = (
            col("givenName"),
            col("surname"),
            col("displayName"),
            col("jobTitle"),
            col("department"),
        );
        let groups_col = col("groups");
        let licences_col = col("licences").or_else(|| col("licenses"));
        let attr_cols: Vec<(&'static str, usize)> = attribute_columns()
            .into_iter()
            .filter_map(|name| col(name).map(|c| (name, c)))
            .collect();
        let mut report = CsvImportReport::default();
        let mut rows: Vec<(u64, CsvUser)> = Vec::new();
        let mut seen = std::collections::HashMap::new();
        'records: for rec in records {
            let line = rec.line;
            // A short row's missing cells are empty.
            let cell = |c: usize| rec.fields.get(c).map_or("", |s| s.trim());
            let reject = |report: &mut CsvImportReport, reason: String| {
                report.rejected.push(CsvRejected { line, reason });
            };
            let used = [
                (Some(email_col), "email", CSV_MAX_EMAIL),
                (given, "givenName", CSV_MAX_FIELD),
                (sur, "surname", CSV_MAX_FIELD),
                (disp, "displayName", CSV_MAX_FIELD),
                (job, "jobTitle", CSV_MAX_FIELD),
                (dept, "department", CSV_MAX_FIELD),
                (groups_col, "groups", CSV_MAX_GROUPS_CELL),
                (licences_col, "licences", CSV_MAX_FIELD),
            ];
            for (c, name, max) in used {
                if let Some(why) = c.and_then(|c| refuse_cell(name, cell(c), max)) {
                    reject(&mut report, why);
                    continue 'records;
                }
            }
            for &(name, c) in &attr_cols {
                let max = if name == "manager" {
                    CSV_MAX_EMAIL
                } else {
                    CSV_MAX_FIELD
                };
                if let Some(why) = refuse_cell(name, cell(c), max) {
                    reject(&mut report, why);
                    continue 'records;
                }
            }
            let email = cell(email_col).to_string();
            if !looks_like_email(&email) {
                let why = if email.is_empty() {
                    "no email".into()
                } else {
                    format!("`{email}` is not an email address")
                };
                reject(&mut report, why);
                continue;
            }
            if !email.is_ascii() {
                reject(
                    &mut report,
                    format!(
                        "`{email}` has non-ASCII characters, which Microsoft 365 does not \
                         allow in a sign-in name"
                    ),
                );
                continue;
            }
            let mut groups = None;
            if let Some(c) = groups_col {
                let mut names: Vec<String> = Vec::new();
                for n in cell(c).split(';').map(str::trim) {
                    if n.chars().count() > CSV_MAX_GROUP_NAME {
                        reject(
                            &mut report,
                            format!(
                                "a group name in groups is {} characters long (at most {})",
                                crate::format::thousands(n.chars().count()),
                                CSV_MAX_GROUP_NAME
                            ),
                        );
                        continue 'records;
                    }
                    if !n.is_empty() && !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                        names.push(n.to_string());
                    }
                }
                groups = Some(names);
            }
            let licences = match licences_col.map(|c| super::LicencePick::parse_list(cell(c))) {
                None => None,
                Some(Ok(l)) => Some(l),
                Some(Err(e)) => {
                    reject(&mut report, format!("licences: {e}"));
                    continue;
                }
            };
            if let Some(first) = seen.insert(email.to_lowercase(), line) {
                reject(&mut report, format!("{email} is already on line {first}"));
                continue;
            }
            // An empty cell of a synced attribute is kept as "" (the account's value is
            // cleared); the display name is derived when empty.
            let get = |c: Option<usize>| -> Cell { c.map(|c| Some(cell(c).to_string())) };
            let get_display = |c: Option<usize>| -> Cell {
                c.map(|c| Some(cell(c).to_string()).filter(|s| !s.is_empty()))
            };
            rows.push((
                line,
                CsvUser {
                    email,
                    display_name: get_display(disp),
                    given_name: get(given),
                    surname: get(sur),
                    job_title: get(job),
                    department: get(dept),
                    groups,
                    licences,
                    attributes: attr_cols
                        .iter()
                        .map(|&(name, c)| (name.to_string(), cell(c).to_string()))
                        .collect(),
                },
            ));
        }
        if let Some(since) = parsed.unterminated {
            report.rejected.push(CsvRejected {
                line: since,
                reason: "a quote (\") opened on this line is never closed, so the rest of \
                         the file could not be read"
                    .into(),
            });
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
            /// display name, given name, surname, job title, department
            type Fields = (
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
            );
            // The file's cells over `old` (None: a new user): absent columns keep the old
            // value, empty cells clear it; an empty display name is derived.
            let merge = |u: &CsvUser, old: Option<&Fields>| -> Fields {
                let keep = |cell: &Cell, old: Option<&Option<String>>| match cell {
                    Some(v) => v.clone(),
                    None => old.cloned().flatten(),
                };
                let given = keep(&u.given_name, old.map(|o| &o.1));
                let surname = keep(&u.surname, old.map(|o| &o.2));
                let display = match (&u.display_name, old) {
                    (Some(Some(d)), _) => d.clone(),
                    (None, Some(o)) => o.0.clone(),
                    _ => {
                        let n = [given.as_deref(), surname.as_deref()]
                            .into_iter()
                            .flatten()
                            .filter(|s| !s.is_empty())
                            .collect::<Vec<_>>()
                            .join(" ");
                        if n.trim().is_empty() {
                            u.email.clone()
                        } else {
                            n
                        }
                    }
                };
                (
                    display,
                    given,
                    surname,
                    keep(&u.job_title, old.map(|o| &o.3)),
                    keep(&u.department, old.map(|o| &o.4)),
                )
            };
            for (_line, u) in rows {
                let existing: Option<(i64, Fields)> = find
                    .query_row([u.email.to_lowercase()], |r| {
                        Ok((
                            r.get(0)?,
                            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
                        ))
                    })
                    .optional()?;
                let user_id = match existing {
                    Some((id, old)) => {
                        let new = merge(&u, Some(&old));
                        let mut attrs_changed = merge_attributes(&tx, id, &u.attributes, &now)?;
                        if let Some(l) = &u.licences {
                            attrs_changed |= super::licences::set_user_licences_tx(&tx, id, l)?;
                        }
                        if new == old && !attrs_changed {
                            report.unchanged += 1;
                        } else if new == old {
                            report.updated += 1;
                        } else {
                            update.execute(rusqlite::params![
                                id, new.0, new.1, new.2, new.3, new.4, now
                            ])?;
                            report.updated += 1;
                        }
                        id
                    }
                    None => {
                        let new = merge(&u, None);
                        insert.execute(rusqlite::params![
                            u.email,
                            u.email.to_lowercase(),
                            new.0,
                            new.1,
                            new.2,
                            new.3,
                            new.4,
                            now
                        ])?;
                        report.added += 1;
                        let id = tx.last_insert_rowid();
                        merge_attributes(&tx, id, &u.attributes, &now)?;
                        if let Some(l) = &u.licences {
                            super::licences::set_user_licences_tx(&tx, id, l)?;
                        }
                        id
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

    /// Forget the tenant: clear every desired binding and every link of users and groups
    /// (users Unbound; groups unbound, their M365 group id and last error gone), the UPN
    /// overrides (they name the tenant's domains), the import records (the Import tab's
    /// failed imports) and the deprovisioning steps scheduled for its accounts. Kept: the directory users, groups and memberships, the policy, the
    /// per-tenant domain settings, the journal and the audit log. Nothing in Microsoft 365
    /// changes.
    pub fn disconnect(&mut self) -> Result<DisconnectReport, DirectoryError> {
        let now = now_rfc3339();
        let tx = self.immediate()?;
        let users = tx.execute(
            "UPDATE users SET want_bound = 0, tenant_user_id = NULL, binding = 'unbound',
                    updated_at = ?1
             WHERE want_bound <> 0 OR tenant_user_id IS NOT NULL OR binding <> 'unbound'",
            [&now],
        )?;
        let groups = tx.execute(
            "UPDATE groups SET want_bound = 0, tenant_group_id = NULL, last_error = NULL,
                    updated_at = ?1
             WHERE want_bound <> 0 OR tenant_group_id IS NOT NULL OR last_error IS NOT NULL",
            [&now],
        )?;
        let upn_overrides = tx.execute(
            "DELETE FROM settings WHERE key LIKE 'upn\\_override.%' ESCAPE '\\'",
            [],
        )?;
        let import_records = tx.execute("DELETE FROM import_records", [])?;
        // Steps scheduled for the tenant's accounts must never reach another tenant.
        tx.execute("DELETE FROM deprovision_steps", [])?;
        tx.execute("DELETE FROM deprovision_leavers", [])?;
        tx.commit()?;
        Ok(DisconnectReport {
            users,
            groups,
            upn_overrides,
            import_records,
        })
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

    pub(super) fn setting(&self, key: &str) -> Result<Option<String>, DirectoryError> {
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
            deprovision: self
                .setting("deprovision_policy")?
                .and_then(|v| crate::sync::deprovision::Deprovision::parse(&v).ok())
                .unwrap_or_default(),
            keep_sessions_on_password: self.setting("revoke_on_password")?.as_deref()
                == Some("off"),
            usage_location: self.setting("usage_location")?,
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
        if let Some(v) = self
            .setting("guard_max_deletes")?
            .and_then(|v| v.parse().ok())
        {
            guard.max_deletes = v;
        }
        Ok((policy, guard))
    }

    /// Sets the policy and the guard, now (the wall clock).
    pub fn set_policy(
        &mut self,
        policy: &Policy,
        guard: &GuardConfig,
    ) -> Result<(), DirectoryError> {
        self.set_policy_at(policy, guard, super::unix_now())
    }

    /// [`Self::set_policy`] at `at` (unix s): a changed deprovisioning policy keeps when it
    /// changed (`deprovision_policy_at`), which dates the steps of leavers blocked before.
    pub fn set_policy_at(
        &mut self,
        policy: &Policy,
        guard: &GuardConfig,
        at: i64,
    ) -> Result<(), DirectoryError> {
        let tx = self.immediate()?;
        let before: Option<String> = tx
            .query_row(
                "SELECT value FROM settings WHERE key = 'deprovision_policy'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let text = policy.deprovision.to_string();
        if before.as_deref().unwrap_or("block") != text {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('deprovision_policy_at', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [at.to_string()],
            )?;
        }
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
        match policy.usage_location.as_deref() {
            Some(cc) => tx.execute(
                "INSERT INTO settings (key, value) VALUES ('usage_location', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [cc],
            )?,
            None => tx.execute("DELETE FROM settings WHERE key = 'usage_location'", [])?,
        };
        let attributes = serde_json::to_string(&policy.attributes)
            .map_err(|e| DirectoryError::Invalid(e.to_string()))?;
        for (k, v) in [
            ("guard_max_blocks", guard.max_blocks.to_string()),
            ("guard_max_share", guard.max_share.to_string()),
            ("attribute_policy", attributes),
            ("deprovision_policy", policy.deprovision.to_string()),
            (
                "revoke_on_password",
                if policy.keep_sessions_on_password {
                    "off".to_string()
                } else {
                    "on".to_string()
                },
            ),
            ("guard_max_deletes", guard.max_deletes.to_string()),
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

/// Merges the attribute cells of a CSV row into the user's `attributes`; whether they changed.
fn merge_attributes(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    cells: &[(String, String)],
    now: &str,
) -> Result<bool, DirectoryError> {
    if cells.is_empty() {
        return Ok(false);
    }
    let cur: String = tx.query_row("SELECT attributes FROM users WHERE id = ?1", [id], |r| {
        r.get(0)
    })?;
    let mut map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&cur).unwrap_or_default();
    let before = map.clone();
    for (k, v) in cells {
        map.insert(k.clone(), v.clone());
    }
    if map == before {
        return Ok(false);
    }
    let json = serde_json::to_string(&map).map_err(|e| DirectoryError::Invalid(e.to_string()))?;
    tx.execute(
        "UPDATE users SET attributes = ?2, updated_at = ?3 WHERE id = ?1",
        rusqlite::params![id, json, now],
    )?;
    Ok(true)
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
    fn csv_records_start_on_their_file_line() {
        let p = parse_csv("a,b\n\n\r\nx,\"two\nlines\"\r\n,,\n  \ny,\"q \"\"quoted\"\"\",z\rw,1");
        let lines: Vec<(u64, Vec<&str>)> = p
            .records
            .iter()
            .map(|r| (r.line, r.fields.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (1, vec!["a", "b"]),
                (4, vec!["x", "two\nlines"]),
                (8, vec!["y", "q \"quoted\"", "z"]),
                (9, vec!["w", "1"]),
            ]
        );
        assert_eq!(p.unterminated, None);
        let p = parse_csv("a,b\nc,d\n\ne,\"never\nclosed,x\n");
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.unterminated, Some(4));
    }

    /// Names and emails with control characters (OSC 52, BEL, NUL, a right-to-left override,
    /// C1 CSI) are refused with the line they are on, after blank lines and a quoted cell
    /// spanning lines, and nothing of them is written; the message never echoes them.
    #[test]
    fn control_characters_are_refused_with_their_line() {
        let mut d = Directory::open_in_memory().unwrap();
        let csv = "email,displayName,notes\n\
                   \n\
                   ok1@example.com,Ok One,\"a note\nover\nthree lines\"\n\
                   \n\
                   osc@example.com,\"Ann\u{1b}]52;c;aGk=\u{7}\",\n\
                   bel@example.com,Bel\u{7},\n\
                   nul@example.com,N\0ul,\n\
                   rtl@example.com,\u{202e}gpj.exe,\n\
                   csi\u{9b}@example.com,Csi,\n\
                   \n\
                   ok2@example.com,Ok Two,\n";
        let r = d.import_csv(csv.as_bytes()).unwrap();
        let got: Vec<(u64, &str)> = r
            .rejected
            .iter()
            .map(|x| (x.line, x.reason.as_str()))
            .collect();
        assert_eq!(got.len(), 5, "{got:#?}");
        assert_eq!(got[0].0, 7);
        assert!(got[0].1.contains("displayName") && got[0].1.contains("U+001B (ESC)"));
        assert_eq!(got[1].0, 8);
        assert!(got[1].1.contains("U+0007 (BEL)"), "{}", got[1].1);
        assert_eq!(got[2].0, 9);
        assert!(got[2].1.contains("U+0000 (NUL)"), "{}", got[2].1);
        assert_eq!(got[3].0, 10);
        assert!(got[3].1.contains("U+202E (right-to-left override)"));
        assert_eq!(got[4].0, 11);
        assert!(got[4].1.contains("the email") && got[4].1.contains("U+009B (CSI)"));
        for (_, why) in &got {
            assert!(!why.chars().any(crate::text::is_control), "{why:?}");
            assert!(!why.contains("gpj") && !why.contains("52;c"), "{why}");
        }
        assert_eq!(r.added, 2);
        let emails: Vec<String> = d.users().unwrap().into_iter().map(|u| u.email).collect();
        assert_eq!(emails.len(), 2, "{emails:?}");
    }

    #[test]
    fn files_that_cannot_be_read_say_why() {
        let mut d = Directory::open_in_memory().unwrap();
        let err = |csv: &[u8], d: &mut Directory| d.import_csv(csv).unwrap_err().to_string();
        for empty in [&b""[..], b"\n\n  \n", b"\xef\xbb\xbf"] {
            assert!(
                err(empty, &mut d).contains("the file is empty"),
                "{empty:?}"
            );
        }
        let semi = err(b"email;givenName;surname\na@example.com;A;B\n", &mut d);
        assert!(
            semi.contains("the file seems to use ';' as separator; m365sync reads ','"),
            "{semi}"
        );
        let tabs = err(b"email\tgivenName\na@example.com\tA\n", &mut d);
        assert!(tabs.contains("tabs as separator"), "{tabs}");
        let latin1 = err(b"email,displayName\n\na@example.com,Ren\xe9\n", &mut d);
        assert!(latin1.contains("line 3 is not UTF-8"), "{latin1}");
        assert!(d.users().unwrap().is_empty());
    }

    #[test]
    fn an_unterminated_quote_is_reported_with_its_line() {
        let mut d = Directory::open_in_memory().unwrap();
        let csv = "email,displayName\n\
                   a@example.com,A\n\
                   \n\
                   b@example.com,\"B never closed\n\
                   c@example.com,C\n";
        let r = d.import_csv(csv.as_bytes()).unwrap();
        assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
        assert_eq!(r.rejected[0].line, 4);
        assert!(r.rejected[0].reason.contains("never closed"));
        assert_eq!(r.added, 1, "the rows before it are read");
        assert!(d.find_by_email("c@example.com").unwrap().is_none());
    }

    #[test]
    fn over_long_cells_are_refused_without_echoing_them() {
        let mut d = Directory::open_in_memory().unwrap();
        let long_name = "N".repeat(5000);
        let long_mail = format!("{}@example.com", "m".repeat(300));
        let csv = format!(
            "email,displayName,department\n\
             a@example.com,{long_name},\n\
             {long_mail},M,\n\
             b@example.com,B,{}\n\
             c@example.com,{},\n",
            "D".repeat(1025),
            "C".repeat(1024)
        );
        let r = d.import_csv(csv.as_bytes()).unwrap();
        let got: Vec<(u64, &str)> = r
            .rejected
            .iter()
            .map(|x| (x.line, x.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    2,
                    "the displayName is 5,000 characters long (at most 1,024)"
                ),
                (3, "the email is 312 characters long (at most 254)"),
                (4, "the department is 1,025 characters long (at most 1,024)"),
            ]
        );
        assert_eq!(r.added, 1, "1,024 is allowed");
    }

    /// A column the file lacks leaves the field as it is; an empty cell in a column it has
    /// clears it (an empty displayName is derived from the names).
    #[test]
    fn a_column_missing_from_a_reimport_leaves_the_field() {
        let mut d = Directory::open_in_memory().unwrap();
        d.import_csv(
            "email,givenName,surname,displayName,jobTitle,department\n\
             a@example.com,Ada,Lovelace,Countess Ada,Engineer,R&D\n"
                .as_bytes(),
        )
        .unwrap();
        let before = d.find_by_email("a@example.com").unwrap().unwrap();
        let r = d.import_csv("email\na@example.com\n".as_bytes()).unwrap();
        assert_eq!((r.updated, r.unchanged), (0, 1));
        assert_eq!(d.find_by_email("a@example.com").unwrap().unwrap(), before);
        let r = d
            .import_csv("email,department\na@example.com,Ops\n".as_bytes())
            .unwrap();
        assert_eq!(r.updated, 1);
        let a = d.find_by_email("a@example.com").unwrap().unwrap();
        assert_eq!(
            (
                a.display_name.as_str(),
                a.given_name.as_deref(),
                a.surname.as_deref(),
                a.job_title.as_deref(),
                a.department.as_deref()
            ),
            (
                "Countess Ada",
                Some("Ada"),
                Some("Lovelace"),
                Some("Engineer"),
                Some("Ops")
            )
        );
        // Empty cells clear (kept as "", so a sync clears the account's value too); the
        // display name is derived again.
        d.import_csv("email,jobTitle,displayName,surname\na@example.com,,,\n".as_bytes())
            .unwrap();
        let a = d.find_by_email("a@example.com").unwrap().unwrap();
        assert_eq!(a.job_title.as_deref(), Some(""));
        assert_eq!(a.surname.as_deref(), Some(""));
        assert_eq!(a.display_name, "Ada");
        assert_eq!(a.department.as_deref(), Some("Ops"));
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
                "DROP TABLE licence_defaults; DROP TABLE licences_applied;
                 DROP TABLE group_journal; DROP TABLE group_members; DROP TABLE groups;
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
        let g = d.add_group("Sales").unwrap();
        d.set_group_members(g, &[ada.id]).unwrap();
        d.set_group_want(&[g], true).unwrap();
        d.record_group_outcome(g, Some("tg-1"), None).unwrap();
        d.set_upn_override(ada.id, Some("ada@contoso.onmicrosoft.com"))
            .unwrap();
        let domains = crate::directory::DomainSettings {
            enabled: None,
            default: Some("contoso.onmicrosoft.com".into()),
        };
        d.set_domain_settings("contoso", &domains).unwrap();
        d.audit_append(&AuditEntry {
            action: "create".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            d.disconnect().unwrap(),
            DisconnectReport {
                users: 2,
                groups: 1,
                upn_overrides: 1,
                import_records: 0
            }
        );
        for u in d.users().unwrap() {
            assert!(!u.want_bound && u.tenant_user_id.is_none());
            assert_eq!(u.binding, BindingState::Unbound);
        }
        let sales = d.group(g).unwrap().unwrap();
        assert!(!sales.want_bound && sales.tenant_group_id.is_none());
        assert_eq!(
            sales.members,
            vec![ada.id],
            "memberships are the directory's"
        );
        assert!(d.upn_overrides().unwrap().is_empty());
        assert_eq!(d.domain_settings("contoso").unwrap(), domains, "kept");
        assert_eq!(d.audit_list().unwrap().len(), 1, "the audit log is kept");
        assert_eq!(d.users().unwrap().len(), 2, "directory users are kept");
        let (p, g) = d.policy().unwrap();
        assert_eq!(
            (p.password_max_age_days, g.clone()),
            (None, GuardConfig::default())
        );
        let g2 = GuardConfig {
            max_blocks: 7,
            max_share: 0.25,
            max_deletes: 3,
        };
        let p2 = Policy {
            password_max_age_days: Some(90),
            attributes: Default::default(),
            deprovision: crate::sync::deprovision::Deprovision::parse("block+delete:30").unwrap(),
            keep_sessions_on_password: true,
            usage_location: Some("DE".into()),
        };
        d.set_policy(&p2, &g2).unwrap();
        assert_eq!(d.policy().unwrap(), (p2, g2));
    }
}
