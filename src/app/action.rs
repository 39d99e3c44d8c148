//! Action: everything that can happen to the app: key intents, results of effects, ticks,
//! resizes. `update` turns each into state changes and effects.
use std::sync::Arc;

use tui_input::InputRequest;

use crate::auth::{AuthError, DeviceCodeStart};
use crate::directory::DomainSettings;
use crate::directory::{DirectoryIndex, DirectoryUser, ImportFailure, ImportOutcome, ImportStatus};
use crate::graph::{Domain, GraphError, User};
use crate::keymap::Command;

use crate::diagnose::Diagnosis;
use crate::directory::UndeliveredPassword;
use crate::failure::Failure;
use crate::sync::apply::{ApplyEvent, ApplyProgress, ApplySummary, IssuedPassword};
use crate::sync::ops::AnyOp;
use crate::sync::reconcile::Verification;

use super::state::{PlanView, SessionInfo};

/// What loading the local directory yields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectorySnapshot {
    pub users: Vec<DirectoryUser>,
    pub index: Arc<DirectoryIndex>,
    pub failures: Vec<ImportFailure>,
    pub groups: Vec<crate::directory::DirectoryGroup>,
    /// Accounts created whose generated password was never delivered.
    pub undelivered: Vec<UndeliveredPassword>,
    /// The last outcome of each change that failed, explained (`sync::pipeline::
    /// journal_failures`).
    pub journal_failures: Vec<(AnyOp, Diagnosis)>,
    /// The UPN an account is created with when it is not the email (the default-domain fix).
    pub upn_overrides: std::collections::HashMap<i64, String>,
}

/// What a password set did (`sync::apply::SetPasswordOutcome` without the failure, which is
/// the `Err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordOutcome {
    /// Pushed to the bound account (re-enabled if it was blocked).
    Pushed { re_enabled: bool },
    /// No bound account: only when it was set is recorded; the password is not kept.
    RecordedOnly,
}

/// A mouse event the console acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mouse {
    ScrollDown,
    ScrollUp,
    /// A left click at a screen cell.
    Click {
        column: u16,
        row: u16,
    },
}

/// What a background refresh reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshNews {
    /// A delta round started.
    DeltaRound,
    /// A full listing started, because of this (`FullReason::plain`).
    FullListing { why: String },
    /// Users listed so far, of how many.
    Listed { listed: u64, expected: Option<u64> },
    /// The listing starts over sequentially: the pages so far are void.
    Restarted,
}

/// `sync::apply::ApplyEvent` as an action carries it (comparable, for tests).
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyNews {
    Progress(ApplyProgress),
    OpDone { op: AnyOp, tenant_id: String },
    OpFailed { op: AnyOp, error: GraphError },
    OpNotSent { op: AnyOp, why: String },
    PasswordIssued(IssuedPassword),
}

impl From<ApplyEvent> for ApplyNews {
    fn from(e: ApplyEvent) -> Self {
        match e {
            ApplyEvent::Progress(p) => ApplyNews::Progress(p),
            ApplyEvent::OpDone { op, tenant_id } => ApplyNews::OpDone { op, tenant_id },
            ApplyEvent::OpFailed { op, error } => ApplyNews::OpFailed { op, error },
            ApplyEvent::OpNotSent { op, why } => ApplyNews::OpNotSent { op, why },
            ApplyEvent::PasswordIssued(p) => ApplyNews::PasswordIssued(p),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A key intent from the keymap.
    Command(Command),
    /// An edit of the `/` filter text.
    FilterInput(InputRequest),
    /// An edit of a dialog's text: the guard count or the password being typed.
    DialogInput(InputRequest),
    /// Text pasted (bracketed paste): it goes to the focused text field only, as text.
    Paste(String),
    Mouse(Mouse),
    /// Unix seconds; sent once a second.
    Tick {
        now: i64,
    },
    Resize {
        width: u16,
        height: u16,
    },

    // Sign-in.
    SessionResumed {
        gen: u64,
        result: Result<Option<SessionInfo>, AuthError>,
    },
    DeviceCode {
        gen: u64,
        result: Result<DeviceCodeStart, AuthError>,
    },
    SignedIn {
        gen: u64,
        result: Result<SessionInfo, AuthError>,
    },
    /// Fresh token expiry/identity after a refresh.
    Session(SessionInfo),

    // Directory.
    DirectoryLoaded(Result<DirectorySnapshot, Failure>),
    ImportDone(Result<Vec<ImportOutcome>, Failure>),

    // Tenant users.
    /// One page of tenant users, classified against the index of `index_version`.
    UsersPage {
        gen: u64,
        index_version: u64,
        users: Vec<User>,
        statuses: Vec<ImportStatus>,
    },
    UsersDone {
        gen: u64,
    },
    /// A page of the saved copy of the tenant, as it decodes at a start (shared with the
    /// copy, classified with the index of `index_version`); `first`: the copy's first page,
    /// which replaces the rows on screen. The rest follow, then `CopyLoaded`.
    CopyPage {
        gen: u64,
        index_version: u64,
        users: Arc<Vec<User>>,
        statuses: Vec<ImportStatus>,
        first: bool,
    },
    /// Every page of the saved copy of load `gen` is on screen: a whole tenant (to plan on)
    /// while a refresh brings it up to date.
    CopyLoaded {
        gen: u64,
        extras: Arc<super::state::TenantExtras>,
        as_of: super::state::AsOf,
    },
    /// The rows of load `gen` replaced at once by the tenant snapshot's, classified with the
    /// index of `index_version` (built off the UI thread). `done`: the refresh ended (what it
    /// did, in one line); `None`: the saved copy, shown while a refresh brings it up to date.
    TenantLoaded {
        gen: u64,
        index_version: u64,
        rows: Box<super::state::TenantRows>,
        /// The UPN of each imported account, by tenant id.
        upns: std::collections::HashMap<String, String>,
        extras: Arc<super::state::TenantExtras>,
        as_of: super::state::AsOf,
        done: Option<String>,
    },
    /// What the refresh of load `gen` is doing (the status line).
    Refreshing {
        gen: u64,
        news: RefreshNews,
    },
    /// The tenant snapshot could not be read or saved (load `gen`).
    SnapshotFailed {
        gen: u64,
        error: Failure,
    },
    /// `y` ran a delta round first and the tenant had changed the plan: nothing was sent;
    /// this is the plan now (`round`: what the round did).
    ApplyReplanned {
        view: Box<PlanView>,
        round: String,
    },
    UsersFailed {
        gen: u64,
        error: GraphError,
    },
    /// The rows of load `gen` in the order of `key` (ascending), sorted off the UI thread.
    RowsSorted {
        gen: u64,
        key: super::effect::SortKey,
        order: Vec<u32>,
    },
    /// New statuses for rows `first_row..first_row + statuses.len()` of load `gen`.
    Reclassified {
        gen: u64,
        index_version: u64,
        first_row: u32,
        statuses: Vec<ImportStatus>,
    },

    // Bindings.
    /// The desired bindings were recorded (how many changed), or not.
    WantSaved(Result<usize, Failure>),
    /// The plan of `gen` and what it implies, or why it could not be made.
    PlanReady {
        gen: u64,
        result: Result<Box<PlanView>, Failure>,
    },
    /// What the apply engine reports while it runs.
    Apply(ApplyNews),
    /// The run ended (summary), or the engine failed as a whole.
    ApplyFinished(Result<ApplySummary, Failure>),
    /// What checking the journal of an interrupted run found (after sign-in).
    JournalChecked(Result<Vec<Verification>, Failure>),
    /// The password reached the account (or was recorded), or why not.
    PasswordSet {
        email: String,
        result: Result<PasswordOutcome, Failure>,
    },
    /// The hand-off CSV was written (its path), or not.
    HandoffWritten(Result<String, Failure>),
    /// A one-key fix was carried out (what changed, in words), or why not.
    FixDone {
        key: Option<String>,
        result: Result<String, Failure>,
    },
    /// The errors were exported (the file's path), or not.
    Exported(Result<String, Failure>),
    /// The tenant's domains and the saved settings, or why not.
    DomainsLoaded(Result<(Vec<Domain>, DomainSettings), Failure>),
    /// The domain settings were saved, or not.
    DomainsSaved(Result<(), Failure>),
    /// The tenant was disconnected (bindings un-selected, token cache cleared), or not.
    Disconnected(Result<(), Failure>),
    /// The Licences view, or why it could not be read.
    LicencesLoaded(Result<Box<crate::sync::licences::LicenceReport>, Failure>),
    /// A SKU was recorded for a group (what, in words), or not.
    LicenceChanged(Result<String, Failure>),
}
