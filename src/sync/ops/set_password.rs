//! Set password: `PATCH passwordProfile` with the password the admin set (no change forced at
//! the next sign-in). The password lives only in the memory of the run that sends it.
use serde_json::{json, Value};

use super::{patch_user, Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::Change;
use crate::graph::GraphError;
use crate::sync::plan::Op;

pub struct SetPassword;
pub static SET_PASSWORD: SetPassword = SetPassword;

/// Why a password write whose answer was lost can never be verified.
pub const UNKNOWABLE: &str = "the run that was setting this password stopped before its answer \
     came; a password can't be read back and is never stored, so set it again";

impl Spec<Op> for SetPassword {
    fn audit_name(&self) -> &'static str {
        "set-password"
    }
    fn permission(&self) -> &'static str {
        "User-PasswordProfile.ReadWrite.All (app-only also needs the User Administrator role)"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        false
    }
    fn request(&self, op: &Op, _step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        let password = ctx.password.ok_or_else(|| NotSendable(UNKNOWABLE.into()))?;
        Ok(patch_user(
            op,
            ctx,
            json!({"passwordProfile": {
                "password": password,
                "forceChangePasswordNextSignIn": false,
            }}),
        ))
    }
    fn answered(&self, op: &Op, _step: u32, _body: &Value, ctx: &Ctx) -> Answer {
        Answer::Done {
            tenant_id: super::user_key(op, ctx),
            change: Change::None,
        }
    }
    fn already(&self, _op: &Op, _e: &GraphError) -> bool {
        false
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        false
    }
    fn verify(&self, _op: &Op, _ctx: &Ctx) -> Check {
        Check::Impossible(UNKNOWABLE)
    }
    fn verdict(&self, _op: &Op, _found: &Found) -> Verdict {
        Verdict::Unknowable(UNKNOWABLE)
    }
}
