//! Operations as specs: each kind of change m365sync makes in the tenant is one module that
//! declares its request(s), what success changes in the directory, how an unknown outcome is
//! verified, the permission it needs, its audit name and its write cost.
//!
//! The engine (`sync::apply`) and the journal reconciliation (`sync::reconcile`) only go
//! through [`spec`] / [`group_spec`]: both are exhaustive matches without a catch-all arm, so
//! a new kind that forgets its spec (or a spec that forgets a method: the traits have no
//! default methods) is a compile error.
use std::collections::HashMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnose::Subject;
use crate::directory::{BindingState, Change, DirectoryUser};
use crate::graph::{GraphError, Group, User};
use crate::sync::groups::{GroupOp, GroupOpKind};
use crate::sync::plan::{Op, OpKind};

mod add_member;
mod assign_license;
mod block;
mod create;
pub mod create_group;
mod delete_user;
mod link_group;
mod re_enable;
mod record_steps;
mod remove_licenses;
mod remove_member;
mod restore;
mod revoke_sessions;
mod set_manager;
mod set_password;
mod takeover;
mod update_attributes;

/// One planned change of either family, as the engine runs it and the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnyOp {
    User(Op),
    Group(GroupOp),
}

/// The kind of an [`AnyOp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    User(OpKind),
    Group(GroupOpKind),
}

impl Kind {
    /// Every kind, user kinds first, in the order previews list them.
    pub fn all() -> impl Iterator<Item = Kind> {
        OpKind::ALL
            .into_iter()
            .map(Kind::User)
            .chain(GroupOpKind::ALL.into_iter().map(Kind::Group))
    }
    pub fn label(self) -> &'static str {
        match self {
            Kind::User(k) => k.label(),
            Kind::Group(k) => k.label(),
        }
    }
    /// As the journal's `kind` column and the audit log name it (`create`, `add-member`).
    pub fn audit_name(self) -> &'static str {
        match self {
            Kind::User(k) => spec(k).audit_name(),
            Kind::Group(k) => group_spec(k).audit_name(),
        }
    }
    /// The Graph permission the kind needs (least privileged first).
    pub fn permission(self) -> &'static str {
        match self {
            Kind::User(k) => spec(k).permission(),
            Kind::Group(k) => group_spec(k).permission(),
        }
    }
    /// Graph writes one op of this kind costs: one request per step.
    pub fn writes(self) -> u32 {
        match self {
            Kind::User(k) => spec(k).steps(),
            Kind::Group(k) => group_spec(k).steps(),
        }
    }
    /// Whether the guard counts it as destructive (blocks sign-in, removes a membership).
    pub fn destructive(self) -> bool {
        match self {
            Kind::User(k) => spec(k).destructive(),
            Kind::Group(k) => group_spec(k).destructive(),
        }
    }
}

impl AnyOp {
    pub fn kind(&self) -> Kind {
        match self {
            AnyOp::User(o) => Kind::User(o.kind),
            AnyOp::Group(o) => Kind::Group(o.kind),
        }
    }
    /// The directory user it is about: the user of a user op, the member of a member op.
    pub fn user_id(&self) -> Option<i64> {
        match self {
            AnyOp::User(o) => Some(o.directory_id),
            AnyOp::Group(o) => o.member.as_ref().map(|m| m.directory_id),
        }
    }
    /// The directory group of a group op.
    pub fn group_id(&self) -> Option<i64> {
        match self {
            AnyOp::User(_) => None,
            AnyOp::Group(o) => Some(o.group_id),
        }
    }
    /// What it is about, in words: `a@contoso.com`, `Sales (EU): a@contoso.com`.
    pub fn target(&self) -> String {
        match self {
            AnyOp::User(o) => o.upn.clone(),
            AnyOp::Group(o) => match &o.member {
                Some(m) => format!("{}: {}", o.group_name, m.email),
                None => o.group_name.clone(),
            },
        }
    }
    /// For diagnoses: the user of a user op, the group of a group op.
    pub fn subject(&self) -> Subject {
        match self {
            AnyOp::User(o) => Subject::User(o.email.clone()),
            AnyOp::Group(o) => Subject::Group(o.group_name.clone()),
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            AnyOp::User(o) => &o.reason,
            AnyOp::Group(o) => &o.reason,
        }
    }
    pub fn user(&self) -> Option<&Op> {
        match self {
            AnyOp::User(o) => Some(o),
            AnyOp::Group(_) => None,
        }
    }
    pub fn group(&self) -> Option<&GroupOp> {
        match self {
            AnyOp::User(_) => None,
            AnyOp::Group(o) => Some(o),
        }
    }
}

/// One request of a step, relative to the Graph version root (`/users/{id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub body: Option<Value>,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            body: None,
        }
    }
    pub fn with_body(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }
}

/// What the specs read to build a request: the tenant ids known so far (from the directory,
/// then from ops of this run that succeeded), the directory users (their attributes), and
/// the password of a create or set-password.
pub struct Ctx<'a> {
    /// Directory user id -> its account's object id.
    pub users: &'a HashMap<i64, String>,
    /// Directory group id -> its M365 group's object id.
    pub groups: &'a HashMap<i64, String>,
    pub directory: &'a HashMap<i64, DirectoryUser>,
    pub password: Option<&'a str>,
    /// The Graph base (`https://graph.microsoft.com/v1.0`): `$ref` bodies name objects by it.
    pub base: &'a str,
}

/// Why an op cannot be sent (yet): it depends on an object that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotSendable(pub String);

/// A 2xx answer to a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Go on with the next step.
    Next,
    /// The op is done: record this change in the directory.
    Done { tenant_id: String, change: Change },
}

/// How an op whose answer was lost is checked against the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `GET /users/{id or UPN}`.
    User(String),
    /// The group with this display name and mailNickname (`GET /groups?$filter=...`).
    Group { name: String, nickname: String },
    /// Whether `member` is in the members of `group` (`GET /groups/{id}/members`).
    Member { group: String, member: String },
    /// The manager of the user (`GET /users/{id}/manager`).
    Manager(String),
    /// The licences of the user (`GET /users/{id}?$select=assignedLicenses,...`).
    Licences(String),
    /// Nothing Graph shows can tell (a password is never readable): the reason.
    Impossible(&'static str),
    /// Nothing to check: the op could not have been sent (an object it needs has no id).
    NeverSent,
}

/// What a [`Check`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    User(Option<User>),
    Group(Option<Group>),
    Member(bool),
    /// The manager's object id (None: no manager).
    Manager(Option<String>),
    /// The user's licences (None: no such user).
    Licences(Option<crate::graph::licences::UserLicences>),
    Nothing,
}

/// A verified outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The write happened: record this change.
    Applied { tenant_id: String, change: Change },
    /// Only the first steps happened; `step` is the next one, `change` what holds already.
    Partly {
        step: u32,
        tenant_id: String,
        change: Change,
    },
    /// Nothing happened.
    NotApplied,
    /// Nothing can tell: why.
    Unknowable(&'static str),
}

/// The spec of one op kind. No method has a default: a kind must say each.
pub trait Spec<O>: Sync {
    /// As the audit log and the journal name it.
    fn audit_name(&self) -> &'static str;
    /// The Graph permission it needs, least privileged first (graph-notes §2, §4, §16).
    fn permission(&self) -> &'static str;
    /// Requests (= Graph writes) it takes, one per step; 0 for a change of the directory only.
    fn steps(&self) -> u32;
    /// Whether the mass-change guard counts it.
    fn destructive(&self) -> bool;
    /// The request of step `step` (`0..steps()`).
    fn request(&self, op: &O, step: u32, ctx: &Ctx) -> Result<Request, NotSendable>;
    /// A 2xx answer to step `step` (for a 0-step op: called once with `Value::Null`).
    fn answered(&self, op: &O, step: u32, body: &Value, ctx: &Ctx) -> Answer;
    /// A refusal that means the wish holds already (a member that already is one).
    fn already(&self, op: &O, e: &GraphError) -> bool;
    /// Whether step `step`, its answer lost, may have happened although Graph said nothing,
    /// and would do harm if sent again (a second account): check the tenant first.
    fn check_before_resend(&self, step: u32) -> bool;
    /// How an unknown outcome is checked.
    fn verify(&self, op: &O, ctx: &Ctx) -> Check;
    /// What the check found means.
    fn verdict(&self, op: &O, found: &Found) -> Verdict;
}

/// The spec of a user op kind.
pub fn spec(kind: OpKind) -> &'static dyn Spec<Op> {
    match kind {
        OpKind::Create => &create::CREATE,
        OpKind::Takeover => &takeover::TAKEOVER,
        OpKind::Restore => &restore::RESTORE,
        OpKind::ReEnable => &re_enable::RE_ENABLE,
        OpKind::Block => &block::BLOCK,
        OpKind::SetPassword => &set_password::SET_PASSWORD,
        OpKind::UpdateAttributes => &update_attributes::UPDATE_ATTRIBUTES,
        OpKind::SetManager => &set_manager::SET_MANAGER,
        OpKind::RevokeSessions => &revoke_sessions::REVOKE_SESSIONS,
        OpKind::RemoveLicenses => &remove_licenses::REMOVE_LICENSES,
        OpKind::DeleteUser => &delete_user::DELETE_USER,
        OpKind::RecordSteps => &record_steps::RECORD_STEPS,
        OpKind::AssignLicense => &assign_license::ASSIGN_LICENSE,
    }
}

/// The spec of a group op kind.
pub fn group_spec(kind: GroupOpKind) -> &'static dyn Spec<GroupOp> {
    match kind {
        GroupOpKind::LinkGroup => &link_group::LINK_GROUP,
        GroupOpKind::CreateGroup => &create_group::CREATE_GROUP,
        GroupOpKind::AddMember => &add_member::ADD_MEMBER,
        GroupOpKind::RemoveMember => &remove_member::REMOVE_MEMBER,
    }
}

/// Dispatch of [`Spec`] over [`AnyOp`]: the engine's only way to an op's behaviour.
impl AnyOp {
    pub fn steps(&self) -> u32 {
        self.kind().writes()
    }
    pub fn request(&self, step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        match self {
            AnyOp::User(o) => spec(o.kind).request(o, step, ctx),
            AnyOp::Group(o) => group_spec(o.kind).request(o, step, ctx),
        }
    }
    pub fn answered(&self, step: u32, body: &Value, ctx: &Ctx) -> Answer {
        match self {
            AnyOp::User(o) => spec(o.kind).answered(o, step, body, ctx),
            AnyOp::Group(o) => group_spec(o.kind).answered(o, step, body, ctx),
        }
    }
    pub fn already(&self, e: &GraphError) -> bool {
        match self {
            AnyOp::User(o) => spec(o.kind).already(o, e),
            AnyOp::Group(o) => group_spec(o.kind).already(o, e),
        }
    }
    pub fn check_before_resend(&self, step: u32) -> bool {
        match self {
            AnyOp::User(o) => spec(o.kind).check_before_resend(step),
            AnyOp::Group(o) => group_spec(o.kind).check_before_resend(step),
        }
    }
    pub fn verify(&self, ctx: &Ctx) -> Check {
        match self {
            AnyOp::User(o) => spec(o.kind).verify(o, ctx),
            AnyOp::Group(o) => group_spec(o.kind).verify(o, ctx),
        }
    }
    pub fn verdict(&self, found: &Found) -> Verdict {
        match self {
            AnyOp::User(o) => spec(o.kind).verdict(o, found),
            AnyOp::Group(o) => group_spec(o.kind).verdict(o, found),
        }
    }
    /// What a failure of this op changes in the directory (a group that could not be
    /// created keeps the reason for the Groups list).
    pub fn on_failure(&self, why: &str) -> Change {
        match self {
            AnyOp::Group(o) if o.kind == GroupOpKind::CreateGroup => Change::GroupFailed {
                group_id: o.group_id,
                error: why.to_string(),
            },
            _ => Change::None,
        }
    }
}

/// The account of a user op: its tenant id when known, else the UPN.
fn user_key(op: &Op, ctx: &Ctx) -> String {
    op.tenant_user_id
        .clone()
        .or_else(|| ctx.users.get(&op.directory_id).cloned())
        .unwrap_or_else(|| op.upn.clone())
}

/// `PATCH /users/{id}` with `body`.
fn patch_user(op: &Op, ctx: &Ctx, body: Value) -> Request {
    Request::new(Method::PATCH, crate::graph::paths::user(&user_key(op, ctx))).with_body(body)
}

/// The verdict of a check of `accountEnabled == want` on a linked account.
fn enabled_verdict(op: &Op, found: &Found, want: bool, binding: BindingState) -> Verdict {
    match found {
        Found::User(Some(u))
            if u.account_enabled == Some(want)
                && (op.changes.is_empty() || update_attributes::holds(op, found)) =>
        {
            Verdict::Applied {
                tenant_id: u.id.clone(),
                change: Change::User {
                    directory_id: op.directory_id,
                    tenant_user_id: u.id.clone(),
                    binding,
                },
            }
        }
        _ => Verdict::NotApplied,
    }
}

/// The answer of a deprovisioning step that succeeded: it is no longer pending.
fn step_done(op: &Op, ctx: &Ctx, step: crate::sync::deprovision::Step) -> Answer {
    Answer::Done {
        tenant_id: user_key(op, ctx),
        change: Change::StepDone {
            directory_id: op.directory_id,
            step,
        },
    }
}

/// The change a successful write on a linked account makes.
fn link(op: &Op, ctx: &Ctx, binding: BindingState) -> Answer {
    let id = user_key(op, ctx);
    Answer::Done {
        tenant_id: id.clone(),
        change: Change::User {
            directory_id: op.directory_id,
            tenant_user_id: id,
            binding,
        },
    }
}

#[cfg(test)]
mod tests;
