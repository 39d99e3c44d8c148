//! Takeover: an unlinked account already has the directory user's address: link it and
//! enable sign-in (`PATCH accountEnabled: true`) instead of creating a duplicate.
use serde_json::{json, Value};

use super::{
    enabled_verdict, link, patch_user, Answer, Check, Ctx, Found, NotSendable, Request, Spec,
    Verdict,
};
use crate::directory::BindingState;
use crate::graph::GraphError;
use crate::sync::plan::Op;

pub struct Takeover;
pub static TAKEOVER: Takeover = Takeover;

impl Spec<Op> for Takeover {
    fn audit_name(&self) -> &'static str {
        "takeover"
    }
    fn permission(&self) -> &'static str {
        "User.EnableDisableAccount.All (or User.ReadWrite.All)"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        false
    }
    fn request(&self, op: &Op, _step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        let mut body = crate::sync::attributes::patch_body(&op.changes);
        body["accountEnabled"] = json!(true);
        Ok(patch_user(op, ctx, body))
    }
    fn answered(&self, op: &Op, _step: u32, _body: &Value, ctx: &Ctx) -> Answer {
        link(op, ctx, BindingState::Bound)
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
        enabled_verdict(op, found, true, BindingState::Bound)
    }
}
