//! Block: unbind blocks sign-in (`PATCH accountEnabled: false`) and deletes nothing; also
//! what an expired directory password leads to.
use serde_json::{json, Value};

use super::{
    enabled_verdict, link, patch_user, Answer, Check, Ctx, Found, NotSendable, Request, Spec,
    Verdict,
};
use crate::directory::{BindingState, Change};
use crate::graph::GraphError;
use crate::sync::plan::Op;

pub struct Block;
pub static BLOCK: Block = Block;

impl Spec<Op> for Block {
    fn audit_name(&self) -> &'static str {
        "block"
    }
    fn permission(&self) -> &'static str {
        "User.EnableDisableAccount.All (or User.ReadWrite.All)"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        true
    }
    fn request(&self, op: &Op, _step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        Ok(patch_user(op, ctx, json!({"accountEnabled": false})))
    }
    fn answered(&self, op: &Op, _step: u32, _body: &Value, ctx: &Ctx) -> Answer {
        with_schedule(op, link(op, ctx, BindingState::Blocked))
    }
    fn already(&self, _op: &Op, _e: &GraphError) -> bool {
        false
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        false
    }
    fn verify(&self, op: &Op, ctx: &Ctx) -> Check {
        Check::User(super::user_key(op, ctx))
    }
    fn verdict(&self, op: &Op, found: &Found) -> Verdict {
        match enabled_verdict(op, found, false, BindingState::Blocked) {
            Verdict::Applied { tenant_id, change } => {
                match with_schedule(op, Answer::Done { tenant_id, change }) {
                    Answer::Done { tenant_id, change } => Verdict::Applied { tenant_id, change },
                    Answer::Next => Verdict::NotApplied,
                }
            }
            other => other,
        }
    }
}

/// A block of the deprovisioning policy keeps the steps it schedules in the directory.
fn with_schedule(op: &Op, answer: Answer) -> Answer {
    match answer {
        Answer::Done {
            tenant_id,
            change: Change::User { directory_id, .. },
        } if !op.deprovision.schedule.is_empty() => Answer::Done {
            change: Change::Deprovisioned {
                directory_id,
                tenant_user_id: tenant_id.clone(),
                steps: op.deprovision.schedule.clone(),
                source: op.deprovision.source.clone(),
                policy: op.deprovision.policy().to_string(),
            },
            tenant_id,
        },
        other => other,
    }
}
