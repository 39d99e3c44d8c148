//! Update attributes: `PATCH /users/{id}` with the attributes of a bound account that differ
//! from the directory, field by field; an account that matches costs no request.
use serde_json::Value;

use super::{link, patch_user, Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::{BindingState, Change};
use crate::graph::GraphError;
use crate::sync::attributes::{patch_body, tenant_value};
use crate::sync::plan::Op;

pub struct UpdateAttributes;
pub static UPDATE_ATTRIBUTES: UpdateAttributes = UpdateAttributes;

/// Whether the account now holds every value `op` sets.
pub(super) fn holds(op: &Op, found: &Found) -> bool {
    let Found::User(Some(u)) = found else {
        return false;
    };
    op.changes
        .iter()
        .all(|c| tenant_value(u, c.attr) == c.new.as_deref().filter(|v| !v.is_empty()))
}

impl Spec<Op> for UpdateAttributes {
    fn audit_name(&self) -> &'static str {
        "update"
    }
    fn permission(&self) -> &'static str {
        "User.ReadWrite.All"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        false
    }
    fn request(&self, op: &Op, _step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        if op.changes.is_empty() {
            return Err(NotSendable("no attribute to change".into()));
        }
        Ok(patch_user(op, ctx, patch_body(&op.changes)))
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
        match found {
            Found::User(Some(u)) if holds(op, found) => Verdict::Applied {
                tenant_id: u.id.clone(),
                change: Change::None,
            },
            _ => Verdict::NotApplied,
        }
    }
}
