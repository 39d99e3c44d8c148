//! Remove licences: `POST /users/{id}/assignLicense` with `addLicenses: []` and
//! `removeLicenses: [skuId...]` (both keys required, graph-notes §14.2), the SKUs chosen by
//! `deprovision::licences_to_remove`. Planned by the deprovisioning policy on its day.
use reqwest::Method;
use serde_json::{json, Value};

use super::{step_done, user_key, Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::graph::GraphError;
use crate::sync::deprovision::Step;
use crate::sync::plan::Op;

pub struct RemoveLicenses;
pub static REMOVE_LICENSES: RemoveLicenses = RemoveLicenses;

impl Spec<Op> for RemoveLicenses {
    fn audit_name(&self) -> &'static str {
        "remove-licenses"
    }
    fn permission(&self) -> &'static str {
        "LicenseAssignment.ReadWrite.All (or User.ReadWrite.All)"
    }
    fn steps(&self) -> u32 {
        1
    }
    fn destructive(&self) -> bool {
        true
    }
    fn request(&self, op: &Op, _step: u32, ctx: &Ctx) -> Result<Request, NotSendable> {
        if op.deprovision.licences().is_empty() {
            return Err(NotSendable("no licence to remove".into()));
        }
        Ok(Request::new(
            Method::POST,
            format!(
                "{}/assignLicense",
                crate::graph::paths::user(&user_key(op, ctx))
            ),
        )
        .with_body(json!({
            "addLicenses": [],
            "removeLicenses": op.deprovision.licences(),
        })))
    }
    fn answered(&self, op: &Op, _step: u32, _body: &Value, ctx: &Ctx) -> Answer {
        step_done(op, ctx, Step::Unlicense)
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
        // The listed account does not carry its licences; the step stays due and the next
        // plan reads what is left to remove (nothing: no op).
        Verdict::NotApplied
    }
}
