//! Effect: I/O the store asks for, as values. The runtime runs each on tokio and reports back
//! with Actions; tests assert on them without running anything.
use std::sync::Arc;

use crate::auth::DeviceCodeStart;
use crate::directory::DirectoryIndex;
use crate::graph::User;
use crate::sync::apply::IssuedPassword;
use crate::sync::pipeline::{Confirm, PlanView};

use super::explain::ErrorEntry;
use crate::directory::DomainSettings;

/// A column the Import tab sorts by (off the UI thread: a million rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Status,
    DisplayName,
    Upn,
    Mail,
    Enabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

/// What a one-key fix changes; each arm names the engine or directory call it makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Fix {
    /// `Directory::set_email(directory_id, email)`.
    SetEmail { directory_id: i64, email: String },
    /// `Directory::set_upn_override(directory_id, Some(upn))`: provision with `upn`, email
    /// kept.
    UseDefaultDomain { directory_id: i64, upn: String },
    /// `POST /directory/deletedItems/{id}/restore` of the soft-deleted user whose UPN or mail
    /// is `address` (looked up in `GET /directory/deletedItems/microsoft.graph.user`).
    RestoreDeleted { address: String },
    /// `DELETE /directory/deletedItems/{id}` of that soft-deleted user: irreversible.
    PurgeDeleted { address: String },
    /// `Directory::link(directory_id, tenant user)` of the tenant user `tenant_user_id`.
    Link {
        directory_id: i64,
        tenant_user_id: String,
    },
    /// A group's mailNickname: `Directory::set_group_nickname(group_id, Some(nickname))`.
    SetGroupNickname { group_id: i64, nickname: String },
    /// A group's display name: `Directory::rename_group(group_id, name)`.
    SetGroupName { group_id: i64, name: String },
    /// A user's usage location: `Directory::set_attributes(directory_id, usageLocation)`.
    SetUsageLocation { directory_id: i64, code: String },
}

/// A secret (a password) carried by an effect: Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Look for a cached session and check it can get a token -> `SessionResumed`.
    ResumeSession { gen: u64 },
    /// -> `DeviceCode`.
    StartDeviceCode { gen: u64 },
    /// Poll until approved, declined or expired; start the session -> `SignedIn`.
    PollDeviceCode { gen: u64, start: DeviceCodeStart },
    /// -> `Session`.
    RefreshSessionInfo,
    /// Open the directory, read users, index and failures -> `DirectoryLoaded`.
    LoadDirectory,
    /// The tenant's users from the tenant snapshot: the saved copy first when none is held
    /// (`TenantLoaded` with `done: None`, before any Graph request), then a delta round (or a
    /// full listing, `full` or when no round can be made: `Refreshing` news, and `UsersPage`s
    /// while nothing is on screen), saved, then `TenantLoaded` with what was done; or
    /// `UsersFailed` / `SnapshotFailed`. Without a snapshot file (a read-only data dir) every
    /// user is listed page by page, then `UsersDone`. Replaces (aborts) any load running.
    LoadUsers {
        gen: u64,
        page_size: u32,
        index: Arc<DirectoryIndex>,
        index_version: u64,
        full: bool,
    },
    /// Stop the running load.
    CancelLoad,
    /// Classify `pages` (rows from `first_row` on) with `index`, off the UI thread ->
    /// `Reclassified`.
    Reclassify {
        gen: u64,
        index_version: u64,
        first_row: u32,
        pages: Vec<Arc<Vec<User>>>,
        index: Arc<DirectoryIndex>,
    },
    /// Sort the rows of load `gen` (`pages`, shared) by `key`, off the UI thread ->
    /// `RowsSorted` (`tabs::import::sort_order`).
    SortRows {
        gen: u64,
        key: SortKey,
        pages: Vec<Arc<Vec<User>>>,
        statuses: Vec<crate::directory::ImportStatus>,
    },
    /// Import these tenant users into the directory -> `ImportDone`.
    Import { users: Vec<User> },
    /// Record the desired binding of directory users (`Directory::set_want`), nothing is
    /// sent -> `WantSaved`, then the directory is loaded again.
    SetWant { ids: Vec<i64>, bound: bool },
    /// Record the desired binding of directory groups (`Directory::set_group_want`) ->
    /// `WantSaved`, then the directory is loaded again.
    SetGroupWant { ids: Vec<i64>, bound: bool },
    /// The plan (`sync::pipeline::Pipeline::prepare`) against the tenant users listed
    /// (`pages`, shared): the journal of an interrupted run checked (when no other apply
    /// runs), the deleted users, domains and groups read, preflight run -> `PlanReady`.
    Plan {
        gen: u64,
        pages: Vec<Arc<Vec<User>>>,
        /// The soft-deleted users and domains of the same snapshot.
        extras: Arc<super::state::TenantExtras>,
        now: i64,
    },
    /// Carry out a one-key fix of the Errors tab -> `FixDone`.
    Fix { fix: Fix, key: Option<String> },
    /// Write `errors` to a file under the data dir, mode 0600 -> `Exported`.
    ExportErrors {
        format: ExportFormat,
        errors: Vec<ErrorEntry>,
    },
    /// GET /domains and the saved domain settings of `tenant` -> `DomainsLoaded`.
    LoadDomains { tenant: String },
    /// Save the domain settings of `tenant` (directory settings table) -> `DomainsSaved`.
    SaveDomains {
        tenant: String,
        settings: DomainSettings,
    },
    /// Apply `view` through the pipeline (`Pipeline::apply`, under the apply lock, with what
    /// the admin confirmed), after a delta round so nothing is sent on stale data (the rows
    /// follow: `TenantLoaded`); when the round changed the plan nothing is sent and the new
    /// plan comes back (`ApplyReplanned`). Passwords go to the passwords view -> `Apply`
    /// events, then `ApplyFinished`.
    Apply {
        view: Box<PlanView>,
        confirm: Confirm,
    },
    /// Check what an interrupted run left in the journal against the tenant
    /// (`sync::reconcile`, under the apply lock; nothing is sent) -> `JournalChecked`. Run
    /// once after sign-in.
    CheckJournal,
    /// Stop sending new ops; those in flight finish.
    CancelApply,
    /// Push a password the admin typed to the user's account -> `PasswordSet`.
    SetPassword {
        directory_id: i64,
        email: String,
        password: Secret,
        actor: String,
    },
    /// Put `text` on the clipboard of the admin's terminal with OSC 52 (works over SSH):
    /// `ESC ] 52 ; c ; base64 BEL`, written outside drawing.
    Osc52 { text: Secret },
    /// Write the generated passwords to a CSV in the data dir, mode 0600 -> `HandoffWritten`.
    WriteHandoff { passwords: Vec<IssuedPassword> },
    /// Un-select every binding, clear the token cache, forget the session; M365 accounts are
    /// left as they are -> `Disconnected`.
    Disconnect,
    /// The Licences view (`Pipeline::licence_report`: SKUs and seats, assignments, licence
    /// errors, from the plan) -> `LicencesLoaded`.
    LoadLicences,
    /// Record a change of the default SKUs of a directory group or user
    /// (`Directory::change_licence`, as `m365sync licence assign|unassign`; nothing is sent)
    /// -> `LicenceChanged`. `name`: `group "Sales"` or the user's email.
    ChangeLicence {
        owner: crate::directory::LicenceOwner,
        name: String,
        change: crate::directory::LicenceChange,
    },
}
