//! Create: `POST /users` for a directory user no account has the address of. Microsoft sends
//! its welcome email; the generated password must be changed at first sign-in.
use reqwest::Method;
use serde_json::{json, Value};

use super::{Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::{BindingState, Change};
use crate::graph::GraphError;
use crate::sync::plan::{mail_nickname, Op};

pub struct Create;
pub static CREATE: Create = Create;

impl Spec<Op> for Create {
    fn audit_name(&self) -> &'static str {
        "create"
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
        let password = ctx
            .password
            .ok_or_else(|| NotSendable("no temporary password was generated".into()))?;
        let mut body = json!({
            "accountEnabled": true,
            "displayName": op.display_name,
            "mailNickname": mail_nickname(&op.upn),
            "userPrincipalName": op.upn,
            "passwordProfile": {
                "password": password,
                "forceChangePasswordNextSignIn": true,
            },
        });
        // The directory's attributes, set from the start (the plan put them in `changes`).
        crate::sync::attributes::write_into(
            &mut body,
            op.changes.iter().map(|c| (c.attr, c.new.clone())),
        );
        Ok(Request::new(Method::POST, crate::graph::paths::USERS).with_body(body))
    }
    fn answered(&self, op: &Op, _step: u32, body: &Value, _ctx: &Ctx) -> Answer {
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Answer::Done {
            tenant_id: id.clone(),
            change: Change::User {
                directory_id: op.directory_id,
                tenant_user_id: id,
                binding: BindingState::Bound,
            },
        }
    }
    fn already(&self, _op: &Op, _e: &GraphError) -> bool {
        // "already exists" may be someone else's account: never assumed ours.
        false
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        true
    }
    fn verify(&self, op: &Op, _ctx: &Ctx) -> Check {
        Check::User(op.upn.clone())
    }
    fn verdict(&self, op: &Op, found: &Found) -> Verdict {
        match found {
            Found::User(Some(u)) => Verdict::Applied {
                tenant_id: u.id.clone(),
                change: Change::User {
                    directory_id: op.directory_id,
                    tenant_user_id: u.id.clone(),
                    binding: if u.account_enabled == Some(false) {
                        BindingState::Blocked
                    } else {
                        BindingState::Bound
                    },
                },
            },
            _ => Verdict::NotApplied,
        }
    }
}
