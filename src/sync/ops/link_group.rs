//! Link group: an M365 group with the directory group's name and nickname exists and no
//! directory group holds it (a run killed after creating it): link it, no write.
use serde_json::Value;

use super::{Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::Change;
use crate::graph::GraphError;
use crate::sync::groups::GroupOp;

pub struct LinkGroup;
pub static LINK_GROUP: LinkGroup = LinkGroup;

impl Spec<GroupOp> for LinkGroup {
    fn audit_name(&self) -> &'static str {
        "link-group"
    }
    fn permission(&self) -> &'static str {
        "none (a change of the directory only)"
    }
    fn steps(&self) -> u32 {
        0
    }
    fn destructive(&self) -> bool {
        false
    }
    fn request(&self, _op: &GroupOp, _step: u32, _ctx: &Ctx) -> Result<Request, NotSendable> {
        Err(NotSendable("linking a group sends nothing".into()))
    }
    fn answered(&self, op: &GroupOp, _step: u32, _body: &Value, _ctx: &Ctx) -> Answer {
        let id = op.tenant_group_id.clone().unwrap_or_default();
        Answer::Done {
            tenant_id: id.clone(),
            change: Change::Group {
                group_id: op.group_id,
                tenant_group_id: id,
            },
        }
    }
    fn already(&self, _op: &GroupOp, _e: &GraphError) -> bool {
        false
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        false
    }
    fn verify(&self, _op: &GroupOp, _ctx: &Ctx) -> Check {
        Check::NeverSent
    }
    fn verdict(&self, _op: &GroupOp, _found: &Found) -> Verdict {
        Verdict::NotApplied
    }
}
