//! Fixed, deterministic data for tests, snapshots and benchmarks: no I/O, no clock, no
//! directory code (statuses are given, not classified).
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{DeviceCodeStart, Identity};
use crate::directory::{BindingState, DirectoryIndex, DirectoryUser, ImportFailure, ImportStatus};
use crate::graph::User;

use super::action::{Action, DirectorySnapshot};
use super::state::{AppState, SessionInfo};
use super::update::update;

/// The fixed "now" of fixtures (unix seconds, 2026-11-27T08:00:00Z).
pub const NOW: i64 = 1_795_766_400;

const FIRST: [&str; 16] = [
    "Adele",
    "Alex",
    "Diego",
    "Grady",
    "Henrietta",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
];
const LAST: [&str; 12] = [
    "Vance",
    "Wilber",
    "Siciliani",
    "Archie",
    "Mueller",
    "Langer",
    "Lorenz",
    "Sherman",
    "Gu",
    "Holloway",
    "Robbins",
    "Bowen",
];

/// Tenant user number `i` of a contoso-like tenant: unique names, every 7th without mail,
/// every 11th disabled.
pub fn tenant_user(i: usize) -> User {
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i / FIRST.len()) % LAST.len()];
    let upn = format!(
        "{}.{}{}@contoso.onmicrosoft.com",
        first.to_lowercase(),
        last.to_lowercase(),
        i
    );
    User {
        id: format!("00000000-0000-4000-8000-{i:012}"),
        user_principal_name: upn.clone(),
        mail: if i % 7 == 3 {
            None
        } else {
            Some(format!(
                "{}.{}{}@contoso.com",
                first.to_lowercase(),
                last.to_lowercase(),
                i
            ))
        },
        display_name: Some(format!("{first} {last} {i}")),
        given_name: Some(first.to_string()),
        surname: Some(last.to_string()),
        account_enabled: Some(i % 11 != 5),
    }
}

/// `n` tenant users.
pub fn tenant_users(n: usize) -> Vec<User> {
    (0..n).map(tenant_user).collect()
}

/// A fixed status mix: mostly New, some Imported, a few Conflict and Failed.
pub fn status_of(i: usize) -> ImportStatus {
    match i % 10 {
        0..=5 => ImportStatus::New,
        6 | 7 => ImportStatus::Imported,
        8 => ImportStatus::Conflict,
        _ => ImportStatus::Failed,
    }
}

/// Signed in, `n` tenant users loaded (statuses from [`status_of`]), at [`NOW`], 80x24.
/// The benchmark's 100k-row state: `fixtures::loaded_state(100_000)`.
pub fn loaded_state(n: usize) -> AppState {
    let mut s = AppState::with_classified_users(
        tenant_users(n)
            .into_iter()
            .enumerate()
            .map(|(i, u)| (u, status_of(i)))
            .collect(),
    );
    s.now = NOW;
    s.session = Some(SessionInfo {
        identity: Identity {
            name: "admin@contoso.onmicrosoft.com".into(),
            tenant_id: Some("11111111-2222-3333-4444-555555555555".into()),
        },
        expires_at: NOW + 52 * 60 + 10,
    });
    s.dirty = false;
    s
}

pub fn directory_users(n: usize) -> Vec<DirectoryUser> {
    (0..n)
        .map(|i| {
            let u = tenant_user(i);
            let binding = match i % 4 {
                0 | 1 => BindingState::Bound,
                2 => BindingState::Unbound,
                _ => BindingState::Blocked,
            };
            DirectoryUser {
                want_bound: matches!(binding, BindingState::Bound),
                job_title: None,
                department: None,
                password_set_at: None,
                id: i as i64 + 1,
                email: u.email().to_string(),
                display_name: u.display_name.clone().unwrap_or_default(),
                given_name: u.given_name.clone(),
                surname: u.surname.clone(),
                tenant_user_id: (binding != BindingState::Unbound).then(|| u.id.clone()),
                binding,
            }
        })
        .collect()
}

pub fn email_exists_failure(i: usize) -> ImportFailure {
    let u = tenant_user(i);
    ImportFailure {
        tenant_user_id: u.id.clone(),
        user_principal_name: u.user_principal_name.clone(),
        kind: "email-exists".into(),
        message: format!(
            "directory user {} already has the email {}",
            i + 1000,
            u.email()
        ),
        at: "2026-11-27T07:58:12Z".into(),
    }
}

/// A directory snapshot with `n` users and the given failures (empty index: no classify).
pub fn directory_snapshot(n: usize, failures: Vec<ImportFailure>) -> DirectorySnapshot {
    DirectorySnapshot {
        users: directory_users(n),
        index: Arc::new(DirectoryIndex::default()),
        failures,
    }
}

/// `loaded_state(n)` with a directory of `dir` users loaded (through `update`).
pub fn with_directory(mut s: AppState, dir: usize, failures: Vec<ImportFailure>) -> AppState {
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(directory_snapshot(dir, failures))),
    );
    s.dirty = false;
    s
}

pub fn device_code() -> DeviceCodeStart {
    DeviceCodeStart {
        user_code: "GK7QX2PLM".into(),
        verification_uri: "https://microsoft.com/devicelogin".into(),
        message: "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code GK7QX2PLM to authenticate.".into(),
        interval: Duration::from_secs(5),
        expires_in: Duration::from_secs(900),
        device_code: "device-code-secret".into(),
    }
}
