//! Effect: I/O the store asks for, as values. The runtime runs each on tokio and reports back
//! with Actions; tests assert on them without running anything.
use std::sync::Arc;

use crate::auth::DeviceCodeStart;
use crate::directory::{DirectoryIndex, DirectoryUser};
use crate::graph::User;
use crate::sync::apply::IssuedPassword;
use crate::sync::plan::Plan;

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
    /// Stream every tenant user, one `UsersPage` per page classified with `index`, then
    /// `UsersDone` or `UsersFailed`. Replaces (aborts) any load running.
    LoadUsers {
        gen: u64,
        page_size: u32,
        index: Arc<DirectoryIndex>,
        index_version: u64,
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
    /// Import these tenant users into the directory -> `ImportDone`.
    Import { users: Vec<User> },
    /// Record the desired binding of directory users (`Directory::set_want`), nothing is
    /// sent -> `WantSaved`, then the directory is loaded again.
    SetWant { ids: Vec<i64>, bound: bool },
    /// Compute the plan (`sync::plan::plan`) of `users` against the tenant users listed
    /// (`pages`, shared), off the UI thread -> `PlanReady`.
    Plan {
        gen: u64,
        users: Vec<DirectoryUser>,
        pages: Vec<Arc<Vec<User>>>,
        now: i64,
    },
    /// Run the apply engine on `plan` -> `Apply` events, then `ApplyFinished`.
    Apply { plan: Plan, actor: String },
    /// Finish what an interrupted run left in the journal (`sync::apply::resume`): `Apply`
    /// events, then `ResumeFinished`. Run once after sign-in.
    ResumeJournal { actor: String },
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
}
