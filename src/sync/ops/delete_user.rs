//! Delete user: `DELETE /users/{id}` (204). The account goes to deleted items, restorable
//! for 30 days (a rebind restores it: `restore`); m365sync never purges. Planned by the
//! deprovisioning policy on the day it is due, after the block.
use reqwest::Method;
use serde_json::Value;

use super::{step_done, user_key, Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::Change;
use crate::graph::GraphError;
use crate::sync::deprovision::Step;
use crate::sync::plan::Op;

pub struct DeleteUser;
pub static DELETE_USER: DeleteUser = DeleteUser;

fn done(op: &Op) -> Change {
    Change::StepDone {
        directory_id: op.directory_id,
        step: Step::Delete,
    }
}

impl Spec<Op> for DeleteUser {
    fn audit_name(&self) -> &'static str {
        "delete-user"
    }
    fn permission(&self) -> &'static str {
        "User.ReadWrite.All (newer: User.DeleteRestore.All)"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        true
    }
    fn request(&self, op: &Op, _step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        let id = op
            .tenant_user_id
            .clone()
            .or_else(|| ctx.users.get(&op.directory_id).cloned())
            .ok_or_else(|| NotSendable("the account's object id is not known".into()))?;
        Ok(Request::new(Method::DELETE, crate::graph::paths::user(&id)))
    }
    fn answered(&self, op: &Op, _step: u32, _body: &Value, ctx: &Ctx) -> Answer {
        step_done(op, ctx, Step::Delete)
    }
    fn already(&self, _op: &Op, _e: &GraphError) -> bool {
        // A 404 is not taken as done: the id could be wrong, and the admin should know.
        false
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        false
    }
    fn verify(&self, op: &Op, ctx: &Ctx) -> Check {
        Check::User(user_key(op, ctx))
    }
    fn verdict(&self, op: &Op, found: &Found) -> Verdict {
        match found {
            Found::User(None) => Verdict::Applied {
                tenant_id: op.tenant_user_id.clone().unwrap_or_default(),
                change: done(op),
            },
            _ => Verdict::NotApplied,
        }
    }
}
