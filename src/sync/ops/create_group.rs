//! Create group: `POST /groups`, a security group (`mailEnabled: false, securityEnabled:
//! true`) or a Microsoft 365 group (`groupTypes: ["Unified"]`), with its mailNickname.
use reqwest::Method;
use serde_json::{json, Value};

use super::{Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::{Change, GroupKind};
use crate::graph::GraphError;
use crate::sync::groups::{group_nickname_valid, GroupOp};

pub struct CreateGroup;
pub static CREATE_GROUP: CreateGroup = CreateGroup;

/// The body of `POST /groups` for `op`.
pub fn body(op: &GroupOp) -> Value {
    match op.group_kind {
        GroupKind::Security => json!({
            "displayName": op.group_name,
            "mailEnabled": false,
            "mailNickname": op.mail_nickname,
            "securityEnabled": true,
            "groupTypes": [],
        }),
        GroupKind::M365 => json!({
            "displayName": op.group_name,
            "mailEnabled": true,
            "mailNickname": op.mail_nickname,
            "securityEnabled": false,
            "groupTypes": ["Unified"],
        }),
    }
}

/// Why a create is not sent, if it must not be: a nickname Graph would refuse.
pub fn refuse_nickname(op: &GroupOp) -> Option<String> {
    if op.mail_nickname.is_empty() {
        return Some(format!(
            "the group name `{}` leaves no valid mailNickname once the characters Graph refuses \
             are removed; set a mailNickname for the group",
            op.group_name
        ));
    }
    if !group_nickname_valid(&op.mail_nickname) {
        return Some(format!(
            "the mailNickname `{}` of group `{}` has characters Graph refuses (@ ( ) \\ [ ] \" ; : \
             < > , space, non-ASCII) or is longer than 64",
            op.mail_nickname, op.group_name
        ));
    }
    None
}

impl Spec<GroupOp> for CreateGroup {
    fn audit_name(&self) -> &'static str {
        "create-group"
    }
    fn permission(&self) -> &'static str {
        "Group.Create (or Group.ReadWrite.All)"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        false
    }
    fn request(&self, op: &GroupOp, _step: u32, _ctx: &Ctx) -> Result<Request, NotSendable> {
        if let Some(why) = refuse_nickname(op) {
            return Err(NotSendable(why));
        }
        Ok(Request::new(Method::POST, crate::graph::paths::GROUPS).with_body(body(op)))
    }
    fn answered(&self, op: &GroupOp, _step: u32, body: &Value, _ctx: &Ctx) -> Answer {
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
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
        true
    }
    fn verify(&self, op: &GroupOp, _ctx: &Ctx) -> Check {
        Check::Group {
            name: op.group_name.clone(),
            nickname: op.mail_nickname.clone(),
        }
    }
    fn verdict(&self, op: &GroupOp, found: &Found) -> Verdict {
        match found {
            Found::Group(Some(g)) => Verdict::Applied {
                tenant_id: g.id.clone(),
                change: Change::Group {
                    group_id: op.group_id,
                    tenant_group_id: g.id.clone(),
                },
            },
            _ => Verdict::NotApplied,
        }
    }
}
