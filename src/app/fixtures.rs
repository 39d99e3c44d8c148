//! Fixed, deterministic data for tests, snapshots and benchmarks: no I/O, no clock, no
//! directory code (statuses are given, not classified).
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{DeviceCodeStart, Identity};
use crate::directory::{BindingState, DirectoryIndex, DirectoryUser, ImportFailure, ImportStatus};
use crate::graph::{Domain, GraphError, User};
use crate::keymap::Command;
use crate::sync::apply::{ApplyProgress, ApplySummary, IssuedPassword};
use crate::sync::password::PasswordError;
use crate::sync::plan::{GuardTrip, Op, OpKind, Plan};
use crate::sync::preflight::{Issue, Severity};

use super::action::{Action, ApplyNews, DirectorySnapshot};
use super::state::{AppState, Modal, PasswordRule, PlanView, Planning, SessionInfo};
use super::update::update;
use crate::sync::ops::AnyOp;

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
        ..Default::default()
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
/// The benchmark's big states: `fixtures::loaded_state(1_000_000)`.
pub fn loaded_state(n: usize) -> AppState {
    let mut s = AppState::with_classified_users(
        tenant_users(n)
            .into_iter()
            .enumerate()
            .map(|(i, u)| (u, status_of(i)))
            .collect(),
    );
    s.data.now = NOW;
    s.data.session = Some(SessionInfo {
        identity: Identity {
            name: "admin@contoso.onmicrosoft.com".into(),
            tenant_id: Some("11111111-2222-3333-4444-555555555555".into()),
        },
        expires_at: NOW + 52 * 60 + 10,
    });
    s.data.dirty = false;
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
                bound_via: Vec::new(),
                attributes: Default::default(),
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
        groups: Vec::new(),
        undelivered: Vec::new(),
        journal_failures: Vec::new(),
        ..Default::default()
    }
}

/// `loaded_state(n)` with a directory of `dir` users loaded (through `update`).
pub fn with_directory(mut s: AppState, dir: usize, failures: Vec<ImportFailure>) -> AppState {
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(directory_snapshot(dir, failures))),
    );
    s.data.dirty = false;
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

/// `directory_users(n)` with wishes that differ from the accounts: every 8th Unbound user
/// wants to be bound (-> create), every 8th Blocked one too (-> re-enable), every 8th Bound
/// one wants to be unbound (-> block).
pub fn directory_users_with_wishes(n: usize) -> Vec<DirectoryUser> {
    let mut users = directory_users(n);
    for (i, u) in users.iter_mut().enumerate() {
        if (1..=3).contains(&(i % 8)) {
            u.want_bound = !u.want_bound;
        }
    }
    users
}

/// One planned op of directory user `i` (as `directory_users` numbers them).
pub fn op(kind: OpKind, i: usize) -> Op {
    let u = tenant_user(i);
    Op {
        kind,
        directory_id: i as i64 + 1,
        email: u.email().to_string(),
        display_name: u.display_name.clone().unwrap_or_default(),
        upn: u.user_principal_name.clone(),
        tenant_user_id: (kind != OpKind::Create).then(|| u.id.clone()),
        reason: match kind {
            OpKind::Create => "bind requested; no account has this address".into(),
            OpKind::Takeover => "bind requested; an unlinked account has this address".into(),
            OpKind::Restore => "bind requested; a deleted account holds this address".into(),
            OpKind::ReEnable => "bind requested; the account is blocked".into(),
            OpKind::Block => "unbind requested; sign-in will be blocked".into(),
            OpKind::SetPassword => "a new directory password".into(),
            OpKind::UpdateAttributes => "the directory holds other values".into(),
            OpKind::SetManager => "the directory names another manager".into(),
            OpKind::RevokeSessions => "deprovisioning policy: sign the user out".into(),
            OpKind::RemoveLicenses => "deprovisioning policy: remove licences".into(),
            OpKind::DeleteUser => "deprovisioning policy: delete the account".into(),
            OpKind::RecordSteps => {
                "deprovisioning (directory): licences removed: nothing left to remove".into()
            }
            OpKind::AssignLicense => "licences: +SPE_E3".into(),
        },
        changes: Vec::new(),
        manager_id: None,
        deprovision: Default::default(),
        licences: None,
    }
}

/// A plan view as the runtime would build it, without calling the engine: `creates` accounts
/// to create (users 2, 10, ...), a re-enable, `blocks` blocks; a guard when `guard`.
pub fn plan_view(creates: usize, blocks: usize, guard: bool) -> PlanView {
    let mut ops: Vec<Op> = (0..creates)
        .map(|k| op(OpKind::Create, 2 + 8 * k))
        .collect();
    ops.push(op(OpKind::ReEnable, 3));
    ops.push(op(OpKind::Takeover, 42));
    ops.extend((0..blocks).map(|k| op(OpKind::Block, 1 + 4 * k)));
    let bound = 200;
    let plan = Plan {
        ops,
        bound_before: bound,
        synced: Vec::new(),
    };
    let writes = plan.ops.len() as u64;
    // Each user bound directly, the blocked ones unbound.
    let why = plan
        .ops
        .iter()
        .map(|o| {
            (
                o.directory_id,
                crate::sync::causes::Why {
                    direct: o.kind != OpKind::Block,
                    via: Vec::new(),
                },
            )
        })
        .collect();
    let mut v = PlanView::new(
        plan,
        Duration::from_secs(writes * 150 / 3000),
        guard.then(|| GuardTrip {
            blocks,
            bound,
            message: format!(
                "This plan blocks {blocks} of {bound} bound users (more than 50 or 10%)."
            ),
        }),
        vec![
            "Binding a new user makes Microsoft send its welcome email.".into(),
            "Unbinding blocks sign-in; it deletes nothing.".into(),
        ],
    );
    v.why = why;
    v
}

/// The Bindings tab of `loaded_state(1000)` with 40 directory users, some wishes pending and
/// one failed create (user 10), at 80x24.
pub fn bindings_state() -> AppState {
    let mut s = loaded_state(1000);
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(DirectorySnapshot {
            users: directory_users_with_wishes(40),
            index: Arc::new(DirectoryIndex::default()),
            failures: Vec::new(),
            groups: Vec::new(),
            undelivered: Vec::new(),
            journal_failures: Vec::new(),
            ..Default::default()
        })),
    );
    update(
        &mut s,
        Action::Apply(ApplyNews::OpFailed {
            op: AnyOp::User(op(OpKind::Create, 10)),
            error: GraphError::Api {
                status: 400,
                code: "Request_BadRequest".into(),
                message: "Another object with the same value for property userPrincipalName already exists.".into(),
                request_id: Some("3f1c2b4a-0000-4000-8000-00000000000a".into()),
                date: None,
                retry_after: None,
            },
        }),
    );
    update(&mut s, Action::Command(Command::GoTab(2)));
    s.data.dirty = false;
    s
}

/// `bindings_state()` with the preview of `plan_view(creates, blocks, guard)` open.
pub fn preview_state(creates: usize, blocks: usize, guard: bool) -> AppState {
    with_preview(bindings_state(), plan_view(creates, blocks, guard))
}

/// An apply of 40 changes under way: 17 done, 2 failed, some throttling, Esc not pressed.
pub fn run_state() -> AppState {
    let mut s = preview_state(30, 8, false);
    update(&mut s, Action::Command(Command::Confirm));
    for (kind, i) in [(OpKind::Create, 18), (OpKind::Block, 9)] {
        update(
            &mut s,
            Action::Apply(ApplyNews::OpFailed {
                op: AnyOp::User(op(kind, i)),
                error: GraphError::Api {
                    status: 400,
                    code: "Request_BadRequest".into(),
                    message: "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.".into(),
                    request_id: None,
                    date: None,
                    retry_after: None,
                },
            }),
        );
    }
    update(
        &mut s,
        Action::Apply(ApplyNews::Progress(ApplyProgress {
            done: 17,
            failed: 2,
            not_sent: 0,
            remaining: 21,
            throttled: 3,
            rate: 6.5,
        })),
    );
    s.data.dirty = false;
    s
}

/// A temporary password as the engine would issue it (fixed, not random).
pub fn issued_password(i: usize) -> IssuedPassword {
    let u = tenant_user(i);
    IssuedPassword {
        email: u.email().to_string(),
        upn: u.user_principal_name.clone(),
        password: format!("Tmp-{i:03}-Kq7#vX2m"),
    }
}

/// `run_state()` finished: three passwords issued, the panel open.
pub fn passwords_state() -> AppState {
    let mut s = run_state();
    for i in [2, 10, 26] {
        update(
            &mut s,
            Action::Apply(ApplyNews::PasswordIssued(issued_password(i))),
        );
    }
    update(
        &mut s,
        Action::ApplyFinished(Ok(ApplySummary {
            done: 38,
            failed: 2,
            cancelled: 0,
            passwords: Vec::new(),
            passwords_lost: Vec::new(),
            results: results(),
            ..ApplySummary::default()
        })),
    );
    s.data.dirty = false;
    s
}

/// What a run of `run_state()` reports per op: creates done, a failure, a block not sent.
pub fn results() -> Vec<crate::sync::apply::OpResult> {
    use crate::sync::apply::{OpResult, Outcome};
    let mut v: Vec<OpResult> = [2, 10, 26]
        .iter()
        .map(|&i| OpResult {
            op: AnyOp::User(op(OpKind::Create, i)),
            outcome: Outcome::Done,
        })
        .collect();
    v.push(OpResult {
        op: AnyOp::User(op(OpKind::Create, 18)),
        outcome: Outcome::Failed(GraphError::Api {
            status: 400,
            code: "Request_BadRequest".into(),
            message: "The domain portion of the userPrincipalName property is invalid.".into(),
            request_id: None,
            date: None,
            retry_after: None,
        }),
    });
    v.push(OpResult {
        op: AnyOp::User(op(OpKind::Block, 5)),
        outcome: Outcome::NotSent("the run was stopped before it was sent".into()),
    });
    v.push(OpResult {
        op: AnyOp::User(op(OpKind::ReEnable, 3)),
        outcome: Outcome::Unknown,
    });
    v
}

/// A tenant and a directory whose names and emails hold what a terminal would act on:
/// escape sequences (colour, an OSC 52 clipboard write), BEL, NUL, a right-to-left override,
/// zero-width characters, and wide characters; an error message with the same.
pub fn hostile_state() -> AppState {
    let evil = [
        "Eve\x1b[31mRed\x1b[0m",
        "Mal\x1b]52;c;cm0gLXJmIH4=\x07lory",
        "Bell\x07\x07 Ringer",
        "Nul\0l Byte",
        "ann\u{202E}moc.evil\u{202C}",
        "Ze\u{200B}ro\u{200D}Width\u{FEFF}",
        "山田 太郎",
        "Zoë Ångström",
    ];
    let users: Vec<(User, ImportStatus)> = (0..20)
        .map(|i| {
            let mut u = tenant_user(i);
            if let Some(name) = evil.get(i) {
                u.display_name = Some(name.to_string());
                u.mail = Some(format!(
                    "{}@contoso.com",
                    name.to_lowercase().replace(' ', ".")
                ));
            }
            (u, status_of(i))
        })
        .collect();
    let mut s = AppState::with_classified_users(users);
    s.data.now = NOW;
    let mut dir = directory_users(12);
    for (u, name) in dir.iter_mut().zip(evil) {
        u.display_name = name.to_string();
        u.email = format!("{}@contoso.com", name.to_lowercase().replace(' ', "."));
    }
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(DirectorySnapshot {
            users: dir,
            ..Default::default()
        })),
    );
    let mut failure = email_exists_failure(1);
    failure.message = format!("the directory already has {}", evil[1]);
    failure.user_principal_name = evil[4].to_string();
    update(
        &mut s,
        Action::ImportDone(Ok(vec![crate::directory::ImportOutcome::Failed(failure)])),
    );
    s.data.message = None;
    s.data.dirty = false;
    s
}

/// A stand-in for `sync::password::check` in tests (the engine's rule may differ): at least 8
/// characters and 3 of 4 classes.
pub fn password_rule(p: &str) -> Result<(), PasswordError> {
    let classes = [
        p.chars().any(|c| c.is_ascii_lowercase()),
        p.chars().any(|c| c.is_ascii_uppercase()),
        p.chars().any(|c| c.is_ascii_digit()),
        p.chars().any(|c| c.is_ascii_punctuation()),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if p.chars().count() < 8 {
        return Err(PasswordError(
            "A password needs at least 8 characters.".into(),
        ));
    }
    if classes < 3 {
        return Err(PasswordError(
            "A password needs 3 of: lower case, upper case, digits, symbols.".into(),
        ));
    }
    Ok(())
}

/// `bindings_state()` with the password input of the selected user open, `typed` typed.
pub fn password_input_state(typed: &str) -> AppState {
    let mut s = bindings_state();
    s.data.password_rule = PasswordRule(password_rule);
    update(&mut s, Action::Command(Command::SetPassword));
    for c in typed.chars() {
        update(
            &mut s,
            Action::DialogInput(tui_input::InputRequest::InsertChar(c)),
        );
    }
    s.data.dirty = false;
    s
}

/// A preflight finding about directory user `i` (as `directory_users` numbers them).
pub fn issue(i: usize, kind: &str, field: &str, value: &str, holder: Option<&str>) -> Issue {
    Issue {
        directory_id: i as i64 + 1,
        kind: kind.into(),
        field: field.into(),
        value: value.into(),
        message: format!("{value} is refused ({kind})"),
        suggestion: None,
        severity: Severity::Error,
        holder: holder.map(str::to_string),
    }
}

/// The Hiroshi case: directory user 2's create is held back because its email is on the
/// unverified `northwind-labs.io`; user 10's create because a soft-deleted account holds its
/// address. Three creates are sent. The integration's default domain is `contoso.com`.
pub fn plan_view_with_held() -> PlanView {
    let mut hiroshi = op(OpKind::Create, 2);
    hiroshi.email = "hiroshi.tanabe@northwind-labs.io".into();
    hiroshi.upn = hiroshi.email.clone();
    hiroshi.display_name = "Hiroshi Tanabe".into();
    let held_create = op(OpKind::Create, 10);
    let a = issue(
        2,
        "upn-domain-unverified",
        "userPrincipalName",
        "hiroshi.tanabe@northwind-labs.io",
        None,
    );
    let b = issue(
        10,
        "proxy-address-held",
        "email",
        &held_create.email,
        Some(&format!("soft-deleted user {}", held_create.upn)),
    );
    let mut v = plan_view(3, 0, false);
    v.plan
        .ops
        .retain(|o| o.directory_id != 3 && o.directory_id != 11);
    let v = PlanView::new(v.plan, v.eta, None, v.warnings);
    v.with_preflight(
        vec![
            (hiroshi.clone(), a.clone()),
            (held_create.clone(), b.clone()),
        ],
        vec![(a, hiroshi.email), (b, held_create.email)],
    )
}

/// `bindings_state()` with the preview of `plan_view_with_held()` open (the default domain
/// saved as `contoso.com`).
pub fn held_preview_state() -> AppState {
    let mut s = bindings_state();
    s.data.domain_settings.default = Some("contoso.com".into());
    if let Some(u) = s.data.directory.users.iter_mut().find(|u| u.id == 3) {
        u.email = "hiroshi.tanabe@northwind-labs.io".into();
        u.display_name = "Hiroshi Tanabe".into();
    }
    s.data.plan_gen = 1;
    s.modal = Modal::Planning(Planning { gen: 1 });
    update(
        &mut s,
        Action::PlanReady {
            gen: 1,
            result: Ok(Box::new(plan_view_with_held())),
        },
    );
    s.data.dirty = false;
    s
}

/// `held_preview_state()` closed, on the Errors tab: the op failure of `bindings_state` and
/// the two preflight findings; the Hiroshi finding selected.
pub fn preflight_errors_state() -> AppState {
    let mut s = held_preview_state();
    update(&mut s, Action::Command(Command::Back));
    update(&mut s, Action::Command(Command::GoTab(3)));
    let row = s
        .tabs
        .errors
        .view
        .shown
        .iter()
        .position(|&r| s.data.errors[r as usize].kind() == "upn-domain-unverified")
        .expect("the Hiroshi finding");
    for _ in 0..row {
        update(&mut s, Action::Command(Command::Down));
    }
    s.data.dirty = false;
    s
}

/// The tenant's domains as `GET /domains` lists them in the demo.
pub fn domains() -> Vec<Domain> {
    let d = |id: &str, verified: bool, default: bool, initial: bool, fed: bool| Domain {
        id: id.into(),
        authentication_type: Some(if fed { "Federated" } else { "Managed" }.into()),
        is_default: default,
        is_initial: initial,
        is_verified: verified,
    };
    vec![
        d("contoso.onmicrosoft.com", true, false, true, false),
        d("contoso.com", true, true, false, false),
        d("fabrikam.com", true, false, false, true),
        d("northwind-labs.io", false, false, false, false),
    ]
}

/// The demo's groups, as `Directory::groups` orders them: `Engineering ` (a stray trailing
/// space, id 1), `Finance` (bound, id 2), `R&D; Ops` (id 3), `Sales (EU)` (wanted, not yet
/// created: pending, id 4).
pub fn directory_groups() -> Vec<crate::directory::DirectoryGroup> {
    use crate::directory::{DirectoryGroup, GroupKind};
    let g = |id: i64, name: &str, kind: GroupKind, members: Vec<i64>| DirectoryGroup {
        id,
        name: name.into(),
        mail_nickname: None,
        kind,
        tenant_group_id: None,
        want_bound: false,
        last_error: None,
        members,
    };
    let mut finance = g(2, "Finance", GroupKind::Security, vec![1, 2, 3]);
    finance.want_bound = true;
    finance.tenant_group_id = Some("6a1f0c9e-0000-4000-8000-0000000000f1".into());
    let mut sales = g(4, "Sales (EU)", GroupKind::M365, vec![4, 5]);
    sales.want_bound = true;
    vec![
        g(1, "Engineering ", GroupKind::Security, vec![6, 7, 8, 9]),
        finance,
        g(3, "R&D; Ops", GroupKind::M365, vec![10]),
        sales,
    ]
}

/// `bindings_state()` with `directory_groups()` loaded and the list switched to groups (`g`).
pub fn groups_state() -> AppState {
    let mut s = bindings_state();
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(DirectorySnapshot {
            users: directory_users_with_wishes(40),
            index: Arc::new(DirectoryIndex::default()),
            failures: Vec::new(),
            groups: directory_groups(),
            undelivered: Vec::new(),
            journal_failures: Vec::new(),
            ..Default::default()
        })),
    );
    update(&mut s, Action::Command(Command::ToggleGroups));
    s.data.dirty = false;
    s
}

/// A group op of `kind` on `g`.
pub fn group_op(
    kind: crate::sync::groups::GroupOpKind,
    g: &crate::directory::DirectoryGroup,
) -> crate::sync::groups::GroupOp {
    crate::sync::groups::GroupOp {
        kind,
        group_id: g.id,
        group_name: g.name.clone(),
        mail_nickname: crate::sync::groups::nickname_for(g),
        group_kind: g.kind,
        tenant_group_id: g.tenant_group_id.clone(),
        member: None,
        reason: "wanted, not in the tenant".into(),
    }
}

/// `plan_view(1, 0, false)` with groups: one group op to send (link `Finance`), and the
/// creates of `Sales (EU)` (forbidden characters in its nickname, `SalesEU` suggested) and
/// `Engineering ` (a stray space in its name) held back by preflight.
pub fn plan_view_with_groups() -> PlanView {
    use crate::sync::groups::GroupOpKind;
    let gs = directory_groups();
    let mut v = plan_view(1, 0, false);
    v.group_ops = vec![group_op(GroupOpKind::LinkGroup, &gs[1])];
    let mut nick = issue(
        3,
        "mailnickname-forbidden-char",
        "mailNickname",
        "Sales(EU)",
        None,
    );
    nick.suggestion = Some("SalesEU".into());
    let space = issue(
        0,
        "group-name-extra-space",
        "displayName",
        "Engineering ",
        None,
    );
    v.group_held = vec![
        (group_op(GroupOpKind::CreateGroup, &gs[3]), nick),
        (group_op(GroupOpKind::CreateGroup, &gs[0]), space),
    ];
    v
}

/// `groups_state()` with the preview of `plan_view_with_groups()` open.
pub fn groups_preview_state() -> AppState {
    with_preview(groups_state(), plan_view_with_groups())
}

/// A directory that stayed busy longer than m365sync waits (another process writing).
pub fn db_busy() -> crate::failure::Failure {
    crate::failure::Failure::Directory {
        doing: "importing users".into(),
        problem: crate::failure::DirectoryProblem::Busy,
        message: "database is locked".into(),
    }
}

/// `bindings_state()` where the directory says why: users 1-6 are in the bound group `Field
/// Team` (user 1, 5 also directly), users 5-6 also in `Sales (EU)`, the others bound directly
/// or not at all.
pub fn bindings_why_state() -> AppState {
    let mut users = directory_users_with_wishes(40);
    for u in users.iter_mut().take(6) {
        u.bound_via = vec!["Field Team".into()];
    }
    for u in users.iter_mut().skip(4).take(2) {
        u.bound_via.push("Sales (EU)".into());
    }
    let mut s = bindings_state();
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(DirectorySnapshot {
            users,
            index: Arc::new(DirectoryIndex::default()),
            ..Default::default()
        })),
    );
    s.data.dirty = false;
    s
}

/// A plan grouped by cause: a create bound directly, `Field Team` bound now (created, two
/// members created and added), a member who left `Sales (EU)` (blocked and removed), a job
/// title to change, a manager to set.
pub fn plan_view_by_cause() -> PlanView {
    use crate::sync::attributes::{Attr, AttrChange};
    use crate::sync::causes::Why;
    use crate::sync::groups::{GroupMember, GroupOpKind};
    let gs = directory_groups();
    let mut field = gs[1].clone();
    field.name = "Field Team".into();
    field.tenant_group_id = None;
    let mut sales = gs[3].clone();
    sales.tenant_group_id = Some("6a1f0c9e-0000-4000-8000-0000000000f4".into());
    let mut update_op = op(OpKind::UpdateAttributes, 6);
    update_op.changes = vec![AttrChange {
        attr: Attr::User(crate::graph::UserAttr::JobTitle),
        old: Some("Engineer".into()),
        new: Some("Field Lead".into()),
    }];
    let mut manager = op(OpKind::SetManager, 6);
    manager.manager_id = Some(1);
    let ops = vec![
        op(OpKind::Create, 2),
        op(OpKind::Create, 10),
        op(OpKind::Create, 18),
        op(OpKind::Block, 1),
        update_op,
        manager,
    ];
    let plan = Plan {
        ops,
        bound_before: 20,
        synced: Vec::new(),
    };
    let member = |i: usize| {
        let o = op(OpKind::Create, i);
        Some(GroupMember {
            directory_id: o.directory_id,
            email: o.email,
            tenant_user_id: None,
        })
    };
    let with = |mut g: crate::sync::groups::GroupOp, m, why: &str| {
        g.member = m;
        g.reason = why.into();
        g
    };
    let mut v = PlanView::new(plan, Duration::from_secs(1), None, Vec::new());
    v.group_ops = vec![
        with(
            group_op(GroupOpKind::CreateGroup, &field),
            None,
            "bind requested; no M365 group yet: create a security group",
        ),
        with(
            group_op(GroupOpKind::AddMember, &field),
            member(10),
            "a member of Field Team in the directory; added once the account exists",
        ),
        with(
            group_op(GroupOpKind::AddMember, &field),
            member(18),
            "a member of Field Team in the directory; added once the account exists",
        ),
        with(
            group_op(GroupOpKind::RemoveMember, &sales),
            member(1),
            "no longer a member of Sales (EU) in the directory",
        ),
    ];
    let w = |direct: bool, via: &[&str]| Why {
        direct,
        via: via.iter().map(|s| s.to_string()).collect(),
    };
    v.why = [
        (3, w(true, &[])),
        (11, w(false, &["Field Team"])),
        (19, w(false, &["Field Team"])),
        (2, w(false, &[])),
        (7, w(true, &[])),
    ]
    .into_iter()
    .collect();
    v.writes = 9;
    v
}

/// `bindings_state()` with the preview of `plan_view_by_cause()` open.
pub fn preview_by_cause_state() -> AppState {
    with_preview(bindings_state(), plan_view_by_cause())
}

/// `s` with the preview of `view` open, as a plan that came back opens it.
pub fn with_preview(mut s: AppState, view: PlanView) -> AppState {
    s.data.plan_gen = 1;
    s.modal = Modal::Planning(Planning { gen: 1 });
    update(
        &mut s,
        Action::PlanReady {
            gen: 1,
            result: Ok(Box::new(view)),
        },
    );
    s.data.dirty = false;
    s
}
