//! Remove member: `DELETE /groups/{id}/members/{id}/$ref` (never without `/$ref`, which
//! would delete the user). A member that is no longer one ("do not exist") counts as done.
use reqwest::Method;
use serde_json::Value;

use super::add_member::{ids, member_check};
use super::{Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::Change;
use crate::graph::GraphError;
use crate::sync::groups::GroupOp;

pub struct RemoveMember;
pub static REMOVE_MEMBER: RemoveMember = RemoveMember;

impl Spec<GroupOp> for RemoveMember {
    fn audit_name(&self) -> &'static str {
        "remove-member"
    }
    fn permission(&self) -> &'static str {
        "GroupMember.ReadWrite.All (or Group.ReadWrite.All)"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        true
    }
    fn request(&self, op: &GroupOp, _step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        let (group, user) = ids(op, ctx)?;
        Ok(Request::new(
            Method::DELETE,
            crate::graph::paths::member_ref(&group, &user),
        ))
    }
    fn answered(&self, _op: &GroupOp, _step: u32, _body: &Value, _ctx: &Ctx) -> Answer {
        Answer::Done {
            tenant_id: String::new(),
            change: Change::None,
        }
    }
    fn already(&self, _op: &GroupOp, e: &GraphError) -> bool {
        matches!(e, GraphError::Api { status: 400, message, .. } if message.contains("do not exist"))
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        false
    }
    fn verify(&self, op: &GroupOp, ctx: &Ctx) -> Check {
        member_check(op, ctx)
    }
    fn verdict(&self, _op: &GroupOp, found: &Found) -> Verdict {
        match found {
            Found::Member(false) => Verdict::Applied {
                tenant_id: String::new(),
                change: Change::None,
            },
            _ => Verdict::NotApplied,
        }
    }
}
