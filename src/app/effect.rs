//! Effect: I/O the store asks for, as values. The runtime runs each on tokio and reports back
//! with Actions; tests assert on them without running anything.
use std::sync::Arc;

use crate::auth::DeviceCodeStart;
use crate::directory::DirectoryIndex;
use crate::graph::User;

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
}
