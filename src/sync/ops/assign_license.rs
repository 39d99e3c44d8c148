//! Assign licences: `POST /users/{id}/assignLicense` with `addLicenses` (each SKU with its
//! disabled plans) and `removeLicenses` (both keys always sent, graph-notes §14.2): one per
//! account, after the op of the same run that creates (or enables) the account and the one
//! that sets its usage location (the engine orders them). Adding a licence the account holds
//! again changes nothing, so a lost answer is simply checked.
use reqwest::Method;
use serde_json::Value;

use super::{user_key, Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::{AppliedLicence, Change};
use crate::graph::licences::assign_body;
use crate::graph::{paths, GraphError};
use crate::sync::plan::Op;

pub struct AssignLicense;
pub static ASSIGN_LICENSE: AssignLicense = AssignLicense;

/// What a success records: the licences added and removed.
fn change(op: &Op) -> Change {
    let d = op.licences.clone().unwrap_or_default();
    Change::Licences {
        directory_id: op.directory_id,
        added: d
            .add
            .iter()
            .map(|a| AppliedLicence {
                sku_id: a.sku_id.clone(),
                sku: a.sku.clone(),
            })
            .collect(),
        removed: d.remove.iter().map(|r| r.sku_id.clone()).collect(),
    }
}

impl Spec<Op> for AssignLicense {
    fn audit_name(&self) -> &'static str {
        "assign-license"
    }
    fn permission(&self) -> &'static str {
        "LicenseAssignment.ReadWrite.All"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        false
    }
    fn request(&self, op: &Op, _step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        let d = op
            .licences
            .as_ref()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| NotSendable("no licence to add or remove".into()))?;
        // An account this run creates has no id until its create succeeded.
        if op.tenant_user_id.is_none() && !ctx.users.contains_key(&op.directory_id) {
            return Err(NotSendable(format!(
                "{} has no Microsoft 365 account (its bind has not succeeded)",
                op.email
            )));
        }
        let remove: Vec<String> = d.remove.iter().map(|r| r.sku_id.clone()).collect();
        Ok(
            Request::new(Method::POST, paths::assign_license(&user_key(op, ctx)))
                .with_body(assign_body(&d.assigned(), &remove)),
        )
    }
    fn answered(&self, op: &Op, _step: u32, _body: &Value, ctx: &Ctx) -> Answer {
        Answer::Done {
            tenant_id: user_key(op, ctx),
            change: change(op),
        }
    }
    fn already(&self, _op: &Op, _e: &GraphError) -> bool {
        false
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        false
    }
    fn verify(&self, op: &Op, ctx: &Ctx) -> Check {
        if op.tenant_user_id.is_none() && !ctx.users.contains_key(&op.directory_id) {
            return Check::NeverSent;
        }
        Check::Licences(user_key(op, ctx))
    }
    fn verdict(&self, op: &Op, found: &Found) -> Verdict {
        let Found::Licences(Some(l)) = found else {
            return Verdict::NotApplied;
        };
        let d = op.licences.clone().unwrap_or_default();
        let added = d.add.iter().all(|a| l.assigned(&a.sku_id).is_some());
        let removed = d.remove.iter().all(|r| !l.direct(&r.sku_id));
        if added && removed {
            Verdict::Applied {
                tenant_id: op.tenant_user_id.clone().unwrap_or_default(),
                change: change(op),
            }
        } else {
            Verdict::NotApplied
        }
    }
}
