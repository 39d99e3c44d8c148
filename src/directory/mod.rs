//! The local directory in SQLite (WAL, versioned migrations): directory users, their link to a
//! tenant user, import records. Safe for two processes on one database.
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::graph::User;

/// Import status of a tenant user, as the Import tab shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    /// No directory user is linked to it or has its email.
    New,
    /// Linked to a directory user by Graph object id.
    Imported,
    /// A directory user already has this email and is not linked to it.
    Conflict,
    /// The last import attempt failed (see its failure).
    Failed,
    /// A guest (`userType` Guest, an `#EXT#` UPN) no directory user is linked to: imported
    /// only when the admin confirms it (it stays a guest account, never a member).
    Guest,
}

impl ImportStatus {
    pub const ALL: [ImportStatus; 5] = [
        ImportStatus::New,
        ImportStatus::Imported,
        ImportStatus::Conflict,
        ImportStatus::Failed,
        ImportStatus::Guest,
    ];
    pub fn label(self) -> &'static str {
        match self {
            ImportStatus::New => "New",
            ImportStatus::Imported => "Imported",
            ImportStatus::Conflict => "Conflict",
            ImportStatus::Failed => "Failed",
            ImportStatus::Guest => "Guest",
        }
    }
}

/// Binding of a directory user to an M365 account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BindingState {
    /// No M365 account linked.
    #[default]
    Unbound,
    /// Linked, sign-in enabled.
    Bound,
    /// Linked, sign-in blocked (accountEnabled = false); the account is kept.
    Blocked,
}

impl BindingState {
    pub fn label(self) -> &'static str {
        match self {
            BindingState::Unbound => "Unbound",
            BindingState::Bound => "Bound",
            BindingState::Blocked => "Blocked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DirectoryUser {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// Graph object id of the linked M365 account.
    pub tenant_user_id: Option<String>,
    pub binding: BindingState,
    /// What the admin asked for (bind = true): toggling records it, a sync makes it so.
    pub want_bound: bool,
    pub job_title: Option<String>,
    pub department: Option<String>,
    /// When the directory password was last set (RFC 3339); the password itself is never
    /// stored.
    pub password_set_at: Option<String>,
    /// The bound directory groups this user is a member of (each one a reason to be bound,
    /// besides `want_bound`), by name.
    #[serde(default)]
    pub bound_via: Vec<String>,
    /// Synced attributes the directory holds beyond the columns above, by their Graph name
    /// (`officeLocation`, `manager` = the manager's email): an empty value clears the
    /// account's, an attribute absent here is left alone (`sync::attributes`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl DirectoryUser {
    /// Whether the directory wants this user bound: asked for directly, or a member of a
    /// bound group.
    pub fn wanted(&self) -> bool {
        self.want_bound || !self.bound_via.is_empty()
    }

    /// Why the user is wanted bound, in words: `direct`, `via Field Team`, `direct, via
    /// Field Team`; empty when not wanted.
    pub fn reason(&self) -> String {
        let via =
            (!self.bound_via.is_empty()).then(|| format!("via {}", self.bound_via.join(", ")));
        match (self.want_bound, via) {
            (true, Some(v)) => format!("direct, {v}"),
            (true, None) => "direct".into(),
            (false, Some(v)) => v,
            (false, None) => String::new(),
        }
    }
}

/// A directory user to add (CSV import, demo seed, import from the tenant).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewDirectoryUser {
    pub email: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
}

/// Why importing a tenant user failed, kept for the Errors tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportFailure {
    pub tenant_user_id: String,
    pub user_principal_name: String,
    /// Stable kind, e.g. `email-exists`.
    pub kind: String,
    pub message: String,
    /// RFC 3339.
    pub at: String,
}

/// The outcome of importing one tenant user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Imported {
        tenant_user_id: String,
        directory_id: i64,
    },
    AlreadyImported {
        tenant_user_id: String,
        directory_id: i64,
    },
    Failed(ImportFailure),
}

/// What classification needs of the directory, in memory: O(1) per tenant user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryIndex {
    /// lower-cased email -> (directory id, linked tenant id)
    pub by_email: HashMap<String, (i64, Option<String>)>,
    /// tenant user id -> directory id
    pub linked: HashMap<String, i64>,
    /// tenant user id -> last failure
    pub failed: HashMap<String, ImportFailure>,
}

impl DirectoryIndex {
    /// O(1): a linked user is Imported; one whose last import attempt failed is Failed
    /// (Errors says why); a guest is Guest (imported only when confirmed); an address a directory user already holds is a Conflict (the admin
    /// must link or rename, never a silent duplicate); anything else is New.
    pub fn classify(&self, user: &User) -> ImportStatus {
        if self.linked.contains_key(&user.id) {
            ImportStatus::Imported
        } else if self.failed.contains_key(&user.id) {
            ImportStatus::Failed
        } else if user.guest {
            ImportStatus::Guest
        } else if self.holder_of(user).is_some() {
            ImportStatus::Conflict
        } else {
            ImportStatus::New
        }
    }

    /// The directory user that already holds one of the tenant user's addresses (mail or UPN).
    pub fn holder_of(&self, user: &User) -> Option<i64> {
        addresses(user).find_map(|a| self.by_email.get(a.as_ref()).map(|(id, _)| *id))
    }
}

/// Lower-cased without allocating when it already is (almost every address).
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// The tenant user's addresses, lower-cased: mail first, then the UPN when it differs.
fn addresses(user: &User) -> impl Iterator<Item = Cow<'_, str>> {
    let mail = user.mail.as_deref().filter(|m| !m.is_empty()).map(lower);
    let upn = Some(lower(&user.user_principal_name))
        .filter(|u| !u.is_empty() && Some(u) != mail.as_ref());
    mail.into_iter().chain(upn)
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("directory database {path}: {message}")]
    Open { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl DirectoryError {
    /// SQLite's error code, if it is one.
    fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            DirectoryError::Sql(rusqlite::Error::SqliteFailure(e, _)) => Some(e.code),
            _ => None,
        }
    }
    /// Another connection holds the database (a concurrent import or sync): waiting helps.
    pub fn is_busy(&self) -> bool {
        matches!(
            self.sqlite_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
    /// What kind of problem it is, for the diagnosis.
    pub fn problem(&self) -> crate::failure::DirectoryProblem {
        use crate::failure::DirectoryProblem as P;
        let open_message = match self {
            DirectoryError::Open { message, .. } => message.to_ascii_lowercase(),
            _ => String::new(),
        };
        match self.sqlite_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                P::Busy
            }
            Some(rusqlite::ErrorCode::DiskFull) => P::Full,
            Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::PermissionDenied) => {
                P::ReadOnly
            }
            Some(rusqlite::ErrorCode::ConstraintViolation) => P::Invalid,
            _ if matches!(self, DirectoryError::Invalid(_)) => P::Invalid,
            _ if open_message.contains("no space") => P::Full,
            _ if open_message.contains("read-only")
                || open_message.contains("permission denied")
                || open_message.contains("readonly") =>
            {
                P::ReadOnly
            }
            _ => P::Unavailable,
        }
    }
}

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: directory users, their link to an M365 account, import records.
    "CREATE TABLE users (
        id             INTEGER PRIMARY KEY,
        email          TEXT NOT NULL,
        email_lc       TEXT NOT NULL UNIQUE,
        display_name   TEXT NOT NULL,
        given_name     TEXT,
        surname        TEXT,
        tenant_user_id TEXT UNIQUE,
        binding        TEXT NOT NULL DEFAULT 'unbound'
                       CHECK (binding IN ('unbound', 'bound', 'blocked')),
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
    );
    CREATE TABLE import_records (
        tenant_user_id      TEXT PRIMARY KEY,
        user_principal_name TEXT NOT NULL,
        outcome             TEXT NOT NULL CHECK (outcome IN ('imported', 'failed')),
        kind                TEXT,
        message             TEXT,
        at                  TEXT NOT NULL
    );",
    // 2: bindings (issue 3): the desired binding, job data, password metadata (never the
    // password), the operation journal, the append-only audit log, directory settings.
    "ALTER TABLE users ADD COLUMN want_bound INTEGER NOT NULL DEFAULT 0;
    UPDATE users SET want_bound = (binding = 'bound');
    ALTER TABLE users ADD COLUMN job_title TEXT;
    ALTER TABLE users ADD COLUMN department TEXT;
    ALTER TABLE users ADD COLUMN password_set_at TEXT;
    CREATE TABLE journal (
        id             INTEGER PRIMARY KEY,
        run_id         TEXT NOT NULL,
        seq            INTEGER NOT NULL,
        kind           TEXT NOT NULL,
        directory_id   INTEGER NOT NULL,
        upn            TEXT NOT NULL,
        tenant_user_id TEXT,
        state          TEXT NOT NULL
                       CHECK (state IN ('planned', 'sent', 'done', 'failed', 'unknown', 'cancelled')),
        request_id     TEXT,
        error_code     TEXT,
        error_message  TEXT,
        op             TEXT NOT NULL,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
    );
    CREATE INDEX journal_state ON journal(state);
    CREATE TABLE audit (
        id         INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        target     TEXT NOT NULL,
        request_id TEXT,
        outcome    TEXT NOT NULL,
        detail     TEXT
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // 3: groups (issue 4, item 6): directory groups, their members, the group each is bound to
    // in the tenant, and the journal of group ops (create, add member, remove member).
    "CREATE TABLE groups (
        id              INTEGER PRIMARY KEY,
        name            TEXT NOT NULL,
        name_lc         TEXT NOT NULL UNIQUE,
        mail_nickname   TEXT,
        kind            TEXT NOT NULL DEFAULT 'security' CHECK (kind IN ('security', 'm365')),
        tenant_group_id TEXT UNIQUE,
        want_bound      INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    );
    CREATE TABLE group_members (
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, user_id)
    );
    CREATE INDEX group_members_user ON group_members(user_id);
    CREATE TABLE group_journal (
        id            INTEGER PRIMARY KEY,
        run_id        TEXT NOT NULL,
        seq           INTEGER NOT NULL,
        kind          TEXT NOT NULL,
        group_id      INTEGER NOT NULL,
        user_id       INTEGER,
        state         TEXT NOT NULL
                      CHECK (state IN ('planned', 'sent', 'done', 'failed', 'unknown', 'cancelled')),
        request_id    TEXT,
        error_code    TEXT,
        error_message TEXT,
        op            TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );",
    // 4: one journal for user and group ops (issue 7): the group a group op is about, whether
    // a create's generated password reached the hand-off sink, and what reconciling an
    // interrupted run found. `group_journal` is kept for its history but no longer written.
    "ALTER TABLE journal ADD COLUMN group_id INTEGER;
    ALTER TABLE journal ADD COLUMN delivered INTEGER;
    ALTER TABLE journal ADD COLUMN note TEXT;
    CREATE INDEX journal_subject ON journal(kind, directory_id, group_id);
    -- Runs before this version showed or wrote their passwords at the end and reported the
    -- lost ones themselves: their creates are not reported again.
    UPDATE journal SET delivered = 1 WHERE kind = 'create' AND state = 'done';",
    // 5: attribute sync (issue 10): the synced attributes beyond the name and job columns, as
    // a JSON object of Graph name -> value ("" = cleared; absent = not managed).
    "ALTER TABLE users ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';",
    // 6: licences (issue 11): the default SKU set of each directory group and user (service
    // plans to turn off as a JSON array of names), and the licences m365sync assigned to each
    // account, so that a change of the assignment removes only what m365sync gave.
    "CREATE TABLE licence_defaults (
        owner_kind     TEXT NOT NULL CHECK (owner_kind IN ('group', 'user')),
        owner_id       INTEGER NOT NULL,
        sku            TEXT NOT NULL,
        disabled_plans TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (owner_kind, owner_id, sku)
    );
    CREATE TABLE licences_applied (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        sku_id  TEXT NOT NULL,
        sku     TEXT NOT NULL,
        at      TEXT NOT NULL,
        PRIMARY KEY (user_id, sku_id)
    );",
    // 7: deprovisioning (issue 11 item 4): a directory group's own policy (overriding the
    // directory's for users unbound because they left or unbound it), and the steps a block
    // scheduled, each with its due date (unix s), kept until applied or cancelled.
    "CREATE TABLE IF NOT EXISTS group_deprovision (
        group_id INTEGER PRIMARY KEY REFERENCES groups(id) ON DELETE CASCADE,
        policy   TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS deprovision_steps (
        user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        step           TEXT NOT NULL CHECK (step IN ('revoke', 'unlicense', 'delete')),
        due_at         INTEGER NOT NULL,
        tenant_user_id TEXT NOT NULL,
        source         TEXT NOT NULL,
        created_at     TEXT NOT NULL,
        PRIMARY KEY (user_id, step)
    );",
    // 8: deprovisioning, the policy each leaver's steps come from (issue 11): a leaver blocked
    // before a policy was set, or whose policy changed since, gets the policy's steps dated
    // from the change (when it was made: `deprovision_policy_at` in settings, `set_at` of a
    // group's in `group_deprovision_at`). Leavers with steps kept already take the policy that
    // applies now.
    "CREATE TABLE IF NOT EXISTS deprovision_leavers (
        user_id        INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        tenant_user_id TEXT NOT NULL,
        policy         TEXT NOT NULL,
        source         TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS group_deprovision_at (
        group_id INTEGER PRIMARY KEY REFERENCES groups(id) ON DELETE CASCADE,
        set_at   INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO deprovision_leavers (user_id, tenant_user_id, policy, source)
        SELECT s.user_id, s.tenant_user_id,
               COALESCE(CASE WHEN s.source = 'directory'
                   THEN (SELECT value FROM settings WHERE key = 'deprovision_policy')
                   ELSE (SELECT d.policy FROM group_deprovision d JOIN groups g ON g.id = d.group_id
                         WHERE 'group ' || g.name = s.source) END, ''),
               s.source
        FROM deprovision_steps s GROUP BY s.user_id;",
];

pub struct Directory {
    conn: rusqlite::Connection,
}

mod bindings;
mod deprovision;
mod fixes;
mod groups;
mod journal;
mod licences;
pub use bindings::{AuditEntry, CsvImportReport, CsvRejected, DisconnectReport};
pub use fixes::DomainSettings;
pub use groups::{DirectoryGroup, GroupKind, GroupState};
pub use journal::{Change, JournalEntry, JournalState, OpOutcome, UndeliveredPassword};
pub use licences::{AppliedLicence, LicenceChange, LicenceDefaults, LicenceOwner, LicencePick};

const USER_COLS: &str = "id, email, display_name, given_name, surname, tenant_user_id, binding, \
                         want_bound, job_title, department, password_set_at, \
                         (SELECT group_concat(g.name, char(31)) FROM group_members gm \
                          JOIN groups g ON g.id = gm.group_id \
                          WHERE gm.user_id = users.id AND g.want_bound <> 0), attributes";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DirectoryUser> {
    Ok(DirectoryUser {
        id: r.get(0)?,
        email: r.get(1)?,
        display_name: r.get(2)?,
        given_name: r.get(3)?,
        surname: r.get(4)?,
        tenant_user_id: r.get(5)?,
        binding: binding_from_str(&r.get::<_, String>(6)?),
        want_bound: r.get(7)?,
        job_title: r.get(8)?,
        department: r.get(9)?,
        password_set_at: r.get(10)?,
        bound_via: r
            .get::<_, Option<String>>(11)?
            .map(|s| {
                let mut v: Vec<String> = s.split('\u{1f}').map(str::to_string).collect();
                v.sort_by_key(|n| n.to_lowercase());
                v
            })
            .unwrap_or_default(),
        attributes: serde_json::from_str(&r.get::<_, String>(12)?).unwrap_or_default(),
    })
}

/// The wall clock, unix s.
pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn binding_from_str(s: &str) -> BindingState {
    match s {
        "bound" => BindingState::Bound,
        "blocked" => BindingState::Blocked,
        _ => BindingState::Unbound,
    }
}

fn binding_str(b: BindingState) -> &'static str {
    match b {
        BindingState::Unbound => "unbound",
        BindingState::Bound => "bound",
        BindingState::Blocked => "blocked",
    }
}

/// `directory.sqlite3` -> `directory.sqlite3-wal` (SQLite's names for its side files).
fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// `file:///abs/path?mode=ro&immutable=1`, percent-encoded so that no character of the path is
/// taken for URI syntax.
fn immutable_uri(path: &Path) -> Result<String, String> {
    let abs = std::path::absolute(path).map_err(|e| e.to_string())?;
    let mut url = url::Url::from_file_path(&abs)
        .map_err(|()| format!("{} cannot be written as a file: URI", abs.display()))?;
    url.set_query(Some("mode=ro&immutable=1"));
    Ok(url.to_string())
}

/// Plausible enough to be a directory key: one `@` with text on both sides, no spaces.
pub(crate) fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

impl Directory {
    /// Opens the directory for reading and writing, creating it (and the data dir) when
    /// missing, and upgrades its schema. Private by construction: a new folder is 0700 and a
    /// new database 0600 (created before SQLite touches it, so it is never briefly 0644); an
    /// existing database, `-wal` and `-shm` lose their group and other bits. SQLite gives a
    /// `-wal`/`-shm` it creates the database file's mode (and, as root, its owner).
    pub fn open(path: &Path) -> Result<Directory, DirectoryError> {
        let open_err = |p: &Path, e: &dyn std::fmt::Display| DirectoryError::Open {
            path: p.display().to_string(),
            message: e.to_string(),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::config::create_private_dir_all(parent).map_err(|e| open_err(parent, &e))?;
        }
        match crate::config::create_new_private_file(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(open_err(path, &e)),
        }
        for p in [
            path.to_path_buf(),
            sidecar(path, "-wal"),
            sidecar(path, "-shm"),
        ] {
            if let Err(e) = crate::config::tighten_private_file(&p) {
                tracing::warn!(path = %p.display(), error = %e, "cannot make the file private");
            }
        }
        let conn = rusqlite::Connection::open(path).map_err(|e| open_err(path, &e))?;
        Self::setup(conn, true).map_err(|e| match e {
            DirectoryError::Sql(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::ReadOnly =>
            {
                open_err(
                    path,
                    &"the database or its folder is read-only: the commands that only read \
                      (status, directory list, groups, audit, errors, users) work; this one \
                      needs write access",
                )
            }
            e => e,
        })
    }

    /// Opens the directory for commands that only read (`status`, `directory list`, `audit`,
    /// `errors`, `groups`, `users`): `SQLITE_OPEN_READ_ONLY`, no migration, no pragma that
    /// writes, nothing created. Works in a read-only data dir. A database that does not exist
    /// yet reads as an empty directory; one with an older schema than this m365sync's is
    /// refused with "run any write command once to upgrade".
    ///
    /// WAL and read-only: SQLite reads a WAL database through its `-shm` index, which it
    /// creates next to the database when it can (a reader leaves an empty `-wal` and a `-shm`
    /// behind, never a change to the database). In a folder it cannot write, with no `-wal`
    /// (the last writer closed cleanly, so the database file holds everything), it is opened
    /// `immutable=1` instead: nobody can write there to change it under the reader. A `-wal`
    /// left by a writer that crashed, in a read-only folder, cannot be read safely: that is an
    /// error that says so.
    pub fn open_read_only(path: &Path) -> Result<Directory, DirectoryError> {
        use rusqlite::OpenFlags;
        let open_err = |e: &dyn std::fmt::Display| DirectoryError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        match std::fs::metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::empty(),
            Err(e) => return Err(open_err(&e)),
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let version = |conn: &rusqlite::Connection| -> rusqlite::Result<i64> {
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            // The first read is where a WAL database that cannot be read shows (the open is
            // lazy).
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        };
        let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(|e| open_err(&e))?;
        let (conn, version) = match version(&conn) {
            Ok(v) => (conn, v),
            Err(first) => {
                drop(conn);
                if sidecar(path, "-wal").exists() {
                    return Err(open_err(&format!(
                        "{first}; it has changes in its -wal file that a write command has not \
                         folded in yet, and they cannot be read from this folder: run any write \
                         command (e.g. `m365sync directory policy`) once with write access"
                    )));
                }
                let uri = immutable_uri(path).map_err(|e| open_err(&e))?;
                let conn = rusqlite::Connection::open_with_flags(&uri, flags)
                    .map_err(|e| open_err(&format!("{first}; read-only fallback: {e}")))?;
                match version(&conn) {
                    Ok(v) => (conn, v),
                    Err(e) => return Err(open_err(&format!("{first}; read-only fallback: {e}"))),
                }
            }
        };
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version == 0 {
            // Created and never set up (an empty file): nothing in it to show.
            return Self::empty();
        }
        if version > MIGRATIONS.len() {
            return Err(DirectoryError::Invalid(format!(
                "the directory database has schema version {version}, newer than this m365sync \
                 understands ({}): upgrade m365sync",
                MIGRATIONS.len()
            )));
        }
        if version < MIGRATIONS.len() {
            return Err(DirectoryError::Invalid(format!(
                "the directory database {} has schema version {version}, older than this \
                 m365sync's ({}): run any write command once to upgrade it (e.g. `m365sync \
                 directory policy`), then read it again",
                path.display(),
                MIGRATIONS.len()
            )));
        }
        // A second guard: a bug that tries to write through this handle fails at once.
        conn.execute_batch("PRAGMA query_only=ON")?;
        Ok(Directory { conn })
    }

    /// An empty directory, in memory (what a database that does not exist yet reads as).
    fn empty() -> Result<Directory, DirectoryError> {
        let d = Self::open_in_memory()?;
        d.conn.execute_batch("PRAGMA query_only=ON")?;
        Ok(d)
    }

    pub fn open_in_memory() -> Result<Directory, DirectoryError> {
        Self::setup(rusqlite::Connection::open_in_memory()?, false)
    }

    fn setup(conn: rusqlite::Connection, wal: bool) -> Result<Directory, DirectoryError> {
        // A second process (another admin, a cron sync) waits for the writer instead of failing.
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        if wal {
            let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode, "directory database is not in WAL mode");
            }
        }
        conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;")?;
        let mut dir = Directory { conn };
        dir.migrate()?;
        Ok(dir)
    }

    fn migrate(&mut self) -> Result<(), DirectoryError> {
        // IMMEDIATE: two processes starting at once must not both run a migration.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(DirectoryError::Invalid(format!(
                "the directory database has schema version {version}, newer than this m365sync \
                 understands ({}): upgrade m365sync",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Caps the database's size in pages (`PRAGMA max_page_count`): a write past it fails as
    /// a full disk would. For tests of the full-disk path.
    pub fn set_max_page_count(&mut self, pages: i64) -> Result<(), DirectoryError> {
        self.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        Ok(())
    }

    /// Sets (or, with None, stops managing) synced attributes of a directory user, merged
    /// into what it holds; a name that is a column (`jobTitle`, `department`, `givenName`,
    /// `surname`, `displayName`) goes to its column. How many users changed (0 or 1).
    pub fn set_attributes(
        &mut self,
        id: i64,
        values: &[(String, Option<String>)],
    ) -> Result<usize, DirectoryError> {
        let tx = self.immediate()?;
        let cur: String =
            tx.query_row("SELECT attributes FROM users WHERE id = ?1", [id], |r| {
                r.get(0)
            })?;
        let mut map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&cur).unwrap_or_default();
        let before = map.clone();
        let mut changed = false;
        let now = now_rfc3339();
        for (name, value) in values {
            let column = match name.as_str() {
                "displayName" => Some("display_name"),
                "givenName" => Some("given_name"),
                "surname" => Some("surname"),
                "jobTitle" => Some("job_title"),
                "department" => Some("department"),
                _ => None,
            };
            match column {
                Some(col) => {
                    if col == "display_name" && value.as_deref().unwrap_or("").trim().is_empty() {
                        continue;
                    }
                    changed |= tx.execute(
                        &format!(
                            "UPDATE users SET {col} = ?2, updated_at = ?3
                             WHERE id = ?1 AND {col} IS NOT ?2"
                        ),
                        rusqlite::params![id, value, now],
                    )? > 0;
                }
                None => match value {
                    Some(v) => {
                        map.insert(name.clone(), v.clone());
                    }
                    None => {
                        map.remove(name);
                    }
                },
            }
        }
        if map != before {
            let json =
                serde_json::to_string(&map).map_err(|e| DirectoryError::Invalid(e.to_string()))?;
            tx.execute(
                "UPDATE users SET attributes = ?2, updated_at = ?3 WHERE id = ?1",
                rusqlite::params![id, json, now],
            )?;
            changed = true;
        }
        tx.commit()?;
        Ok(usize::from(changed))
    }

    /// How long a statement waits for another connection's write before it fails busy.
    pub fn set_busy_timeout(&mut self, t: std::time::Duration) -> Result<(), DirectoryError> {
        Ok(self.conn.busy_timeout(t)?)
    }

    pub fn users(&self) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {USER_COLS} FROM users ORDER BY display_name COLLATE NOCASE, id"
        ))?;
        let rows = stmt.query_map([], user_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn index(&self) -> Result<DirectoryIndex, DirectoryError> {
        let mut index = DirectoryIndex::default();
        let mut stmt = self
            .conn
            .prepare("SELECT id, email_lc, tenant_user_id FROM users")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let tenant: Option<String> = r.get(2)?;
            if let Some(t) = &tenant {
                index.linked.insert(t.clone(), id);
            }
            index.by_email.insert(r.get(1)?, (id, tenant));
        }
        for f in self.failures()? {
            index.failed.insert(f.tenant_user_id.clone(), f);
        }
        Ok(index)
    }

    pub fn add_user(&mut self, user: &NewDirectoryUser) -> Result<i64, DirectoryError> {
        let email = user.email.trim();
        if !looks_like_email(email) {
            return Err(DirectoryError::Invalid(format!(
                "`{}` is not an email address",
                user.email
            )));
        }
        let now = now_rfc3339();
        let display = if user.display_name.trim().is_empty() {
            email.to_string()
        } else {
            user.display_name.trim().to_string()
        };
        match self.conn.execute(
            "INSERT INTO users (email, email_lc, display_name, given_name, surname, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            rusqlite::params![email, email.to_lowercase(), display, user.given_name, user.surname, now],
        ) {
            Ok(_) => Ok(self.conn.last_insert_rowid()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(DirectoryError::Invalid(format!(
                    "a directory user with the email {email} already exists"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Import tenant users as directory users linked to them. A user whose address a
    /// directory user already holds fails with `email-exists`: no duplicate is created.
    /// One write transaction for the whole batch: all or nothing if the process dies.
    pub fn import(&mut self, users: &[User]) -> Result<Vec<ImportOutcome>, DirectoryError> {
        let now = now_rfc3339();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(users.len());
        {
            let mut linked_to = tx.prepare("SELECT id FROM users WHERE tenant_user_id = ?1")?;
            let mut holder =
                tx.prepare("SELECT id, email, tenant_user_id FROM users WHERE email_lc = ?1")?;
            let mut insert = tx.prepare(
                // An imported account is wanted as it is: enabled ones stay bound, blocked
                // ones stay blocked, so importing never plans a change by itself.
                "INSERT INTO users (email, email_lc, display_name, given_name, surname,
                                    tenant_user_id, binding, want_bound, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7 = 'bound', ?8, ?8)",
            )?;
            let mut record = tx.prepare(
                "INSERT INTO import_records (tenant_user_id, user_principal_name, outcome, kind, message, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(tenant_user_id) DO UPDATE SET user_principal_name = excluded.user_principal_name,
                   outcome = excluded.outcome, kind = excluded.kind, message = excluded.message, at = excluded.at",
            )?;
            for user in users {
                let existing: Option<i64> = linked_to
                    .query_row([&user.id], |r| r.get(0))
                    .map(Some)
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })?;
                if let Some(directory_id) = existing {
                    outcomes.push(ImportOutcome::AlreadyImported {
                        tenant_user_id: user.id.clone(),
                        directory_id,
                    });
                    continue;
                }
                let email = user.email().trim().to_string();
                let failure = |kind: &str, message: String| ImportFailure {
                    tenant_user_id: user.id.clone(),
                    user_principal_name: user.user_principal_name.clone(),
                    kind: kind.to_string(),
                    message,
                    at: now.clone(),
                };
                let mut failed = None;
                if !looks_like_email(&email) {
                    failed = Some(failure(
                        "email-invalid",
                        format!("the account has no usable email address (`{email}`)"),
                    ));
                } else {
                    for address in addresses(user) {
                        let held: Option<(i64, String, Option<String>)> = holder
                            .query_row([address.as_ref()], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                            })
                            .map(Some)
                            .or_else(|e| match e {
                                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                                e => Err(e),
                            })?;
                        if let Some((id, held_email, link)) = held {
                            let linked = match link {
                                Some(t) => format!(", linked to another M365 account ({t})"),
                                None => String::new(),
                            };
                            failed = Some(failure(
                                "email-exists",
                                format!(
                                    "directory user #{id} already has the email {held_email}{linked}; \
                                     link that user to this account instead of importing a duplicate"
                                ),
                            ));
                            break;
                        }
                    }
                }
                if let Some(f) = failed {
                    record.execute(rusqlite::params![
                        f.tenant_user_id,
                        f.user_principal_name,
                        "failed",
                        f.kind,
                        f.message,
                        f.at
                    ])?;
                    outcomes.push(ImportOutcome::Failed(f));
                    continue;
                }
                let display = user
                    .display_name
                    .clone()
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or_else(|| email.clone());
                let binding = match user.account_enabled {
                    Some(false) => BindingState::Blocked,
                    _ => BindingState::Bound,
                };
                insert.execute(rusqlite::params![
                    email,
                    email.to_lowercase(),
                    display,
                    user.given_name,
                    user.surname,
                    user.id,
                    binding_str(binding),
                    now
                ])?;
                let directory_id = tx.last_insert_rowid();
                record.execute(rusqlite::params![
                    user.id,
                    user.user_principal_name,
                    "imported",
                    None::<String>,
                    None::<String>,
                    now
                ])?;
                outcomes.push(ImportOutcome::Imported {
                    tenant_user_id: user.id.clone(),
                    directory_id,
                });
            }
        }
        tx.commit()?;
        Ok(outcomes)
    }

    /// Link an existing directory user to a tenant account (resolves an import conflict).
    pub fn link(&mut self, directory_id: i64, user: &User) -> Result<(), DirectoryError> {
        let now = now_rfc3339();
        let binding = match user.account_enabled {
            Some(false) => BindingState::Blocked,
            _ => BindingState::Bound,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE users SET tenant_user_id = ?2, binding = ?3, want_bound = (?3 = 'bound'),
                    updated_at = ?4
             WHERE id = ?1 AND tenant_user_id IS NULL",
            rusqlite::params![directory_id, user.id, binding_str(binding), now],
        )?;
        if changed == 0 {
            return Err(DirectoryError::Invalid(format!(
                "directory user #{directory_id} does not exist or is already linked"
            )));
        }
        tx.execute(
            "INSERT INTO import_records (tenant_user_id, user_principal_name, outcome, at)
             VALUES (?1, ?2, 'imported', ?3)
             ON CONFLICT(tenant_user_id) DO UPDATE SET outcome = 'imported', kind = NULL,
               message = NULL, at = excluded.at",
            rusqlite::params![user.id, user.user_principal_name, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Record the desired binding of these users (the Bindings toggle, `m365sync bind`);
    /// nothing is sent. Returns how many changed.
    pub fn set_want(&mut self, ids: &[i64], bound: bool) -> Result<usize, DirectoryError> {
        let now = now_rfc3339();
        let tx = self.immediate()?;
        let mut changed = 0;
        {
            let mut st = tx.prepare(
                "UPDATE users SET want_bound = ?2, updated_at = ?3 WHERE id = ?1 AND want_bound <> ?2",
            )?;
            for id in ids {
                changed += st.execute(rusqlite::params![id, bound, now])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// `set_want` for every directory user.
    pub fn set_want_all(&mut self, bound: bool) -> Result<usize, DirectoryError> {
        let now = now_rfc3339();
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE users SET want_bound = ?1, updated_at = ?2 WHERE want_bound <> ?1",
            rusqlite::params![bound, now],
        )?;
        tx.commit()?;
        Ok(changed)
    }

    pub fn failures(&self) -> Result<Vec<ImportFailure>, DirectoryError> {
        let mut stmt = self.conn.prepare(
            "SELECT tenant_user_id, user_principal_name, COALESCE(kind, 'unknown'),
                    COALESCE(message, ''), at
             FROM import_records WHERE outcome = 'failed' ORDER BY at, tenant_user_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ImportFailure {
                tenant_user_id: r.get(0)?,
                user_principal_name: r.get(1)?,
                kind: r.get(2)?,
                message: r.get(3)?,
                at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant_user(id: &str, upn: &str, mail: Option<&str>) -> User {
        User {
            id: id.into(),
            user_principal_name: upn.into(),
            mail: mail.map(Into::into),
            display_name: Some(format!("User {id}")),
            account_enabled: Some(true),
            ..Default::default()
        }
    }

    fn new_user(email: &str) -> NewDirectoryUser {
        NewDirectoryUser {
            email: email.into(),
            display_name: email.into(),
            ..Default::default()
        }
    }

    #[test]
    fn classify_covers_every_status() {
        let mut d = Directory::open_in_memory().unwrap();
        d.add_user(&new_user("Ada@Example.com")).unwrap();
        d.import(&[tenant_user("t-linked", "linked@example.com", None)])
            .unwrap();
        let idx = d.index().unwrap();
        assert_eq!(
            idx.classify(&tenant_user("t-linked", "x@example.com", None)),
            ImportStatus::Imported
        );
        // mail matches case-insensitively
        assert_eq!(
            idx.classify(&tenant_user(
                "t1",
                "other@example.com",
                Some("ada@example.COM")
            )),
            ImportStatus::Conflict
        );
        // the UPN also counts when mail differs
        assert_eq!(
            idx.classify(&tenant_user(
                "t2",
                "ADA@example.com",
                Some("a.l@example.com")
            )),
            ImportStatus::Conflict
        );
        assert_eq!(
            idx.classify(&tenant_user("t3", "new@example.com", None)),
            ImportStatus::New
        );
    }

    #[test]
    fn import_links_and_a_conflict_creates_no_duplicate() {
        let mut d = Directory::open_in_memory().unwrap();
        let ada = d.add_user(&new_user("ada@example.com")).unwrap();
        let mut disabled = tenant_user("t2", "bob@example.com", Some("bob@example.com"));
        disabled.account_enabled = Some(false);
        let out = d
            .import(&[
                tenant_user("t1", "ada@example.com", Some("ada@example.com")),
                disabled,
            ])
            .unwrap();
        match &out[0] {
            ImportOutcome::Failed(f) => {
                assert_eq!(f.kind, "email-exists");
                assert!(f.message.contains(&format!("#{ada}")), "{}", f.message);
            }
            other => panic!("expected a conflict failure, got {other:?}"),
        }
        assert!(matches!(out[1], ImportOutcome::Imported { .. }));
        let users = d.users().unwrap();
        assert_eq!(users.len(), 2, "no duplicate for the conflict");
        let bob = users.iter().find(|u| u.email == "bob@example.com").unwrap();
        assert_eq!(bob.tenant_user_id.as_deref(), Some("t2"));
        assert_eq!(bob.binding, BindingState::Blocked);
        assert!(
            !bob.want_bound,
            "a blocked account is imported as wanted blocked"
        );
        let ada_row = users.iter().find(|u| u.id == ada).unwrap();
        assert_eq!(ada_row.binding, BindingState::Unbound);

        // the failure is kept for the Errors tab and the user now shows as Failed
        assert_eq!(d.failures().unwrap().len(), 1);
        let conflict = tenant_user("t1", "ada@example.com", Some("ada@example.com"));
        assert_eq!(d.index().unwrap().classify(&conflict), ImportStatus::Failed);
        // a re-import is a no-op

        let again = d
            .import(&[tenant_user("t2", "bob@example.com", None)])
            .unwrap();
        assert!(matches!(again[0], ImportOutcome::AlreadyImported { .. }));
        assert_eq!(d.users().unwrap().len(), 2);
    }

    #[test]
    fn linking_resolves_a_conflict() {
        let mut d = Directory::open_in_memory().unwrap();
        let ada = d.add_user(&new_user("ada@example.com")).unwrap();
        let t = tenant_user("t1", "ada@example.com", None);
        d.import(std::slice::from_ref(&t)).unwrap();
        d.link(ada, &t).unwrap();
        let idx = d.index().unwrap();
        assert_eq!(idx.classify(&t), ImportStatus::Imported);
        assert!(d.failures().unwrap().is_empty());
        let linked = d
            .users()
            .unwrap()
            .into_iter()
            .find(|u| u.id == ada)
            .unwrap();
        assert!(
            linked.want_bound,
            "an enabled account is linked as wanted bound"
        );
        assert!(d.link(ada, &t).is_err(), "already linked");
    }

    #[test]
    fn an_account_without_a_usable_address_fails_and_shows_as_failed() {
        let mut d = Directory::open_in_memory().unwrap();
        let odd = tenant_user("t9", "no-at-sign", None);
        let out = d.import(std::slice::from_ref(&odd)).unwrap();
        assert!(matches!(&out[0], ImportOutcome::Failed(f) if f.kind == "email-invalid"));
        assert_eq!(d.index().unwrap().classify(&odd), ImportStatus::Failed);
    }

    #[test]
    fn add_user_rejects_duplicates_and_non_addresses() {
        let mut d = Directory::open_in_memory().unwrap();
        d.add_user(&new_user("a@example.com")).unwrap();
        assert!(d.add_user(&new_user("A@example.com")).is_err());
        assert!(d.add_user(&new_user("not an email")).is_err());
        assert!(d.add_user(&new_user("a b@example.com")).is_err());
    }

    #[test]
    fn reopening_keeps_data_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/d.sqlite3");
        {
            let mut d = Directory::open(&path).unwrap();
            d.add_user(&new_user("a@example.com")).unwrap();
        }
        let d = Directory::open(&path).unwrap();
        assert_eq!(d.users().unwrap().len(), 1);
        d.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(d);
        let err = Directory::open(&path).err().expect("newer schema refused");
        assert!(err.to_string().contains("upgrade m365sync"), "{err}");
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_directory_is_private_and_an_old_one_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let path = data.join("d.sqlite3");
        let mut d = Directory::open(&path).unwrap();
        d.add_user(&new_user("a@example.com")).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&path), 0o600);
        for side in ["-wal", "-shm"] {
            let p = sidecar(&path, side);
            assert!(p.exists(), "{side} exists while open");
            assert_eq!(mode(&p), 0o600, "{side}");
        }
        drop(d);
        // A database an older m365sync left readable by others.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Directory::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn read_only_reads_what_was_written_and_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.sqlite3");
        {
            let mut d = Directory::open(&path).unwrap();
            d.add_user(&new_user("a@example.com")).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let r = Directory::open_read_only(&path).unwrap();
        assert_eq!(r.users().unwrap().len(), 1);
        assert!(r.audit_list().unwrap().is_empty());
        // query_only: a write through this handle is refused.
        assert!(r.conn.execute("DELETE FROM users", []).is_err());
        drop(r);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "database bytes unchanged"
        );
        let wal = sidecar(&path, "-wal");
        assert!(
            !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
            "nothing written to a -wal"
        );
    }

    #[test]
    fn read_only_sees_a_live_writers_committed_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.sqlite3");
        let mut w = Directory::open(&path).unwrap();
        w.add_user(&new_user("a@example.com")).unwrap();
        // Still open: the row is in the -wal, not yet in the database file.
        let r = Directory::open_read_only(&path).unwrap();
        assert_eq!(r.users().unwrap().len(), 1);
        w.add_user(&new_user("b@example.com")).unwrap();
        assert_eq!(r.users().unwrap().len(), 2);
    }

    #[test]
    fn read_only_of_a_missing_database_is_an_empty_directory_and_creates_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("none/d.sqlite3");
        let r = Directory::open_read_only(&path).unwrap();
        assert!(r.users().unwrap().is_empty());
        assert!(r.groups().unwrap().is_empty());
        assert!(!tmp.path().join("none").exists());
    }

    #[test]
    fn read_only_of_an_older_schema_says_to_run_a_write_command() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.sqlite3");
        {
            // What an m365sync of schema 1 wrote.
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let e = Directory::open_read_only(&path).err().expect("refused");
        assert!(
            e.to_string()
                .contains("run any write command once to upgrade"),
            "{e}"
        );
        // A write open upgrades it; then reading works.
        Directory::open(&path).unwrap();
        assert!(Directory::open_read_only(&path).is_ok());
        // Newer than this binary: refused as by the write open.
        Directory::open(&path)
            .unwrap()
            .conn
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let e = Directory::open_read_only(&path).err().expect("refused");
        assert!(e.to_string().contains("upgrade m365sync"), "{e}");
    }

    #[test]
    fn immutable_uri_escapes_the_path() {
        let uri = immutable_uri(Path::new("/tmp/a b/x?y#z%.db")).unwrap();
        assert_eq!(uri, "file:///tmp/a%20b/x%3Fy%23z%25.db?mode=ro&immutable=1");
    }

    #[test]
    fn two_processes_writing_at_once_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sqlite3");
        Directory::open(&path).unwrap();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // A separate connection is what a second process has.
                    let mut d = Directory::open(&path).unwrap();
                    for i in 0..200 {
                        let users = vec![tenant_user(
                            &format!("t{w}-{i}"),
                            &format!("u{w}-{i}@example.com"),
                            None,
                        )];
                        d.import(&users).unwrap();
                        d.add_user(&new_user(&format!("d{w}-{i}@example.com")))
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let d = Directory::open(&path).unwrap();
        assert_eq!(d.users().unwrap().len(), 800);
        let ok: String = d
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }
}
