//! Add member: `POST /groups/{id}/members/$ref` with the member's directoryObject. A member
//! that already is one ("already exist") counts as done, so a re-run is safe.
use reqwest::Method;
use serde_json::{json, Value};

use super::{Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::Change;
use crate::graph::GraphError;
use crate::sync::groups::GroupOp;

pub struct AddMember;
pub static ADD_MEMBER: AddMember = AddMember;

/// The M365 group and the member's account of a member op, when both exist.
pub(super) fn ids(op: &GroupOp, ctx: &Ctx) -> Result<(String, String), NotSendable> {
    let group = op
        .tenant_group_id
        .clone()
        .or_else(|| ctx.groups.get(&op.group_id).cloned())
        .ok_or_else(|| {
            NotSendable(format!(
                "the group {} does not exist in Microsoft 365",
                op.group_name
            ))
        })?;
    let m = op
        .member
        .as_ref()
        .ok_or_else(|| NotSendable("no member".into()))?;
    let user = m
        .tenant_user_id
        .clone()
        .or_else(|| ctx.users.get(&m.directory_id).cloned())
        .ok_or_else(|| {
            NotSendable(format!(
                "{} has no Microsoft 365 account (its bind has not succeeded)",
                m.email
            ))
        })?;
    Ok((group, user))
}

pub(super) fn member_check(op: &GroupOp, ctx: &Ctx) -> Check {
    match ids(op, ctx) {
        Ok((group, member)) => Check::Member { group, member },
        Err(_) => Check::NeverSent,
    }
}

impl Spec<GroupOp> for AddMember {
    fn audit_name(&self) -> &'static str {
        "add-member"
    }
    fn permission(&self) -> &'static str {
        "GroupMember.ReadWrite.All (or Group.ReadWrite.All)"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        false
    }
    fn request(&self, op: &GroupOp, _step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        let (group, user) = ids(op, ctx)?;
        Ok(
            Request::new(Method::POST, crate::graph::paths::members_ref(&group)).with_body(json!({
                "@odata.id": crate::graph::paths::directory_object_url(ctx.base, &user)
            })),
        )
    }
    fn answered(&self, _op: &GroupOp, _step: u32, _body: &Value, _ctx: &Ctx) -> Answer {
        Answer::Done {
            tenant_id: String::new(),
            change: Change::None,
        }
    }
    fn already(&self, _op: &GroupOp, e: &GraphError) -> bool {
        matches!(e, GraphError::Api { status: 400, message, .. } if message.contains("already exist"))
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        false
    }
    fn verify(&self, op: &GroupOp, ctx: &Ctx) -> Check {
        member_check(op, ctx)
    }
    fn verdict(&self, _op: &GroupOp, found: &Found) -> Verdict {
        match found {
            Found::Member(true) => Verdict::Applied {
                tenant_id: String::new(),
                change: Change::None,
            },
            _ => Verdict::NotApplied,
        }
    }
}
