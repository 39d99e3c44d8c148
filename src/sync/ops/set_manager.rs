//! Set manager: `PUT /users/{id}/manager/$ref` with the manager's user (`@odata.id`), or
//! `DELETE /users/{id}/manager/$ref` when the directory clears it. The manager must exist:
//! the op waits for the op of the run that creates the manager's account.
use reqwest::Method;
use serde_json::{json, Value};

use super::{user_key, Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::Change;
use crate::graph::paths;
use crate::graph::GraphError;
use crate::sync::plan::Op;

pub struct SetManager;
pub static SET_MANAGER: SetManager = SetManager;

/// The manager's account the op points at (None: remove), or why it cannot be sent.
fn manager_account(op: &Op, ctx: &Ctx) -> Result<Option<String>, NotSendable> {
    let Some(m) = op.manager_id else {
        return Ok(None);
    };
    ctx.users.get(&m).cloned().map(Some).ok_or_else(|| {
        let who = op
            .changes
            .first()
            .and_then(|c| c.new.clone())
            .unwrap_or_else(|| "the manager".into());
        NotSendable(format!(
            "{who} has no Microsoft 365 account (its bind has not succeeded)"
        ))
    })
}

impl Spec<Op> for SetManager {
    fn audit_name(&self) -> &'static str {
        "set-manager"
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
        let user = user_key(op, ctx);
        Ok(match manager_account(op, ctx)? {
            Some(m) => Request::new(Method::PUT, paths::manager_ref(&user))
                .with_body(json!({ "@odata.id": paths::user_url(ctx.base, &m) })),
            None => Request::new(Method::DELETE, paths::manager_ref(&user)),
        })
    }
    fn answered(&self, op: &Op, _step: u32, _body: &Value, ctx: &Ctx) -> Answer {
        Answer::Done {
            tenant_id: user_key(op, ctx),
            change: Change::None,
        }
    }
    fn already(&self, op: &Op, e: &GraphError) -> bool {
        // Removing a manager that is already gone.
        op.manager_id.is_none() && e.status() == Some(404)
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        false
    }
    fn verify(&self, op: &Op, ctx: &Ctx) -> Check {
        Check::Manager(user_key(op, ctx))
    }
    fn verdict(&self, op: &Op, found: &Found) -> Verdict {
        let Found::Manager(current) = found else {
            return Verdict::NotApplied;
        };
        // Without the run's ids, a set manager counts as applied when one is set; the next
        // plan compares it with the directory again.
        let applied = match op.manager_id {
            Some(_) => current.is_some(),
            None => current.is_none(),
        };
        if applied {
            Verdict::Applied {
                tenant_id: op.tenant_user_id.clone().unwrap_or_default(),
                change: Change::None,
            }
        } else {
            Verdict::NotApplied
        }
    }
}
