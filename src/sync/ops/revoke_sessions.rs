//! Revoke sessions: `POST /users/{id}/revokeSignInSessions` (no body; Graph answers 200
//! `{"value": true}`, documented as 204: both are success, graph-notes §15). Refresh tokens
//! issued before it stop working: the user is signed out everywhere. Planned by the
//! deprovisioning policy after the block, and after a password push.
use reqwest::Method;
use serde_json::Value;

use super::{step_done, user_key, Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::graph::GraphError;
use crate::sync::deprovision::Step;
use crate::sync::plan::Op;

pub struct RevokeSessions;
pub static REVOKE_SESSIONS: RevokeSessions = RevokeSessions;

impl Spec<Op> for RevokeSessions {
    fn audit_name(&self) -> &'static str {
        "revoke-sessions"
    }
    fn permission(&self) -> &'static str {
        "User.RevokeSessions.All (or User.ReadWrite.All)"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        true
    }
    fn request(&self, op: &Op, _step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        Ok(Request::new(
            Method::POST,
            format!(
                "{}/revokeSignInSessions",
                crate::graph::paths::user(&user_key(op, ctx))
            ),
        ))
    }
    fn answered(&self, op: &Op, _step: u32, _body: &Value, ctx: &Ctx) -> Answer {
        step_done(op, ctx, Step::Revoke)
    }
    fn already(&self, _op: &Op, _e: &GraphError) -> bool {
        false
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        false
    }
    fn verify(&self, op: &Op, ctx: &Ctx) -> Check {
        Check::User(user_key(op, ctx))
    }
    fn verdict(&self, _op: &Op, _found: &Found) -> Verdict {
        // Whether this revoke landed cannot be told from the account, and sending it again
        // does no harm: the step stays due and the next plan sends it.
        Verdict::NotApplied
    }
}
