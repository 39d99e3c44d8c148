//! Action: everything that can happen to the app: key intents, results of effects, ticks,
//! resizes. `update` turns each into state changes and effects.
use std::sync::Arc;

use tui_input::InputRequest;

use crate::auth::{AuthError, DeviceCodeStart};
use crate::directory::{DirectoryIndex, DirectoryUser, ImportFailure, ImportOutcome, ImportStatus};
use crate::graph::{GraphError, User};
use crate::keymap::Command;

use super::state::SessionInfo;

/// What loading the local directory yields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectorySnapshot {
    pub users: Vec<DirectoryUser>,
    pub index: Arc<DirectoryIndex>,
    pub failures: Vec<ImportFailure>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A key intent from the keymap.
    Command(Command),
    /// An edit of the `/` filter text.
    FilterInput(InputRequest),
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
    DirectoryLoaded(Result<DirectorySnapshot, String>),
    ImportDone(Result<Vec<ImportOutcome>, String>),

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
    UsersFailed {
        gen: u64,
        error: GraphError,
    },
    /// New statuses for rows `first_row..first_row + statuses.len()` of load `gen`.
    Reclassified {
        gen: u64,
        index_version: u64,
        first_row: u32,
        statuses: Vec<ImportStatus>,
    },
}
