//! Restore: a soft-deleted account holds the address (or is the linked one): restore it
//! (`POST /directory/deletedItems/{id}/restore`), then enable sign-in. Two writes.
use reqwest::Method;
use serde_json::{json, Value};

use super::{link, patch_user, Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::{BindingState, Change};
use crate::graph::GraphError;
use crate::sync::plan::Op;

pub struct Restore;
pub static RESTORE: Restore = Restore;

impl Spec<Op> for Restore {
    fn audit_name(&self) -> &'static str {
        "restore"
    }
    fn permission(&self) -> &'static str {
        "User.ReadWrite.All (newer: User.DeleteRestore.All)"
    }
    fn steps(&self) -> u32 {
        2
    }
    fn destructive(&self) -> bool {
        false
    }
    fn request(&self, op: &Op, step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        let id = op
            .tenant_user_id
            .clone()
            .ok_or_else(|| NotSendable("the deleted account's id is not known".into()))?;
        Ok(match step {
            0 => Request::new(Method::POST, crate::graph::paths::restore(&id)),
            _ => patch_user(op, ctx, json!({"accountEnabled": true})),
        })
    }
    fn answered(&self, op: &Op, step: u32, _body: &Value, ctx: &Ctx) -> Answer {
        match step {
            0 => Answer::Next,
            _ => link(op, ctx, BindingState::Bound),
        }
    }
    fn already(&self, _op: &Op, _e: &GraphError) -> bool {
        false
    }
    fn check_before_resend(&self, step: u32) -> bool {
        step == 0
    }
    fn verify(&self, op: &Op, _ctx: &Ctx) -> Check {
        Check::User(op.tenant_user_id.clone().unwrap_or_else(|| op.upn.clone()))
    }
    fn verdict(&self, op: &Op, found: &Found) -> Verdict {
        let Found::User(Some(u)) = found else {
            // Still deleted (or gone): the restore did not happen.
            return Verdict::NotApplied;
        };
        let change = |binding| Change::User {
            directory_id: op.directory_id,
            tenant_user_id: u.id.clone(),
            binding,
        };
        if u.account_enabled == Some(false) {
            Verdict::Partly {
                step: 1,
                tenant_id: u.id.clone(),
                change: change(BindingState::Blocked),
            }
        } else {
            Verdict::Applied {
                tenant_id: u.id.clone(),
                change: change(BindingState::Bound),
            }
        }
    }
}
