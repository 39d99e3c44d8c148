//! Record steps: no request. Deprovisioning steps recorded in the directory: a leaver
//! blocked before its policy was set (or changed) gets the policy's steps, dated from the
//! change (they replace its pending ones); due steps with nothing left to do (no licence of
//! m365sync's left to remove, an account no longer in the tenant) are closed as done. The
//! audit line carries the op's reason (what was recorded and why).
use serde_json::Value;

use super::{user_key, Answer, Check, Ctx, Found, NotSendable, Request, Spec, Verdict};
use crate::directory::Change;
use crate::graph::GraphError;
use crate::sync::plan::Op;

pub struct RecordSteps;
pub static RECORD_STEPS: RecordSteps = RecordSteps;

impl Spec<Op> for RecordSteps {
    fn audit_name(&self) -> &'static str {
        "record-steps"
    }
    fn permission(&self) -> &'static str {
        "none (a change of the directory only)"
    }
    fn steps(&self) -> u32 {
        0
    }
    fn destructive(&self) -> bool {
        false
    }
    fn request(&self, _op: &Op, _step: u32, _ctx: &Ctx) -> Result<Request, NotSendable> {
        Err(NotSendable("recording steps sends nothing".into()))
    }
    fn answered(&self, op: &Op, _step: u32, _body: &Value, ctx: &Ctx) -> Answer {
        Answer::Done {
            tenant_id: user_key(op, ctx),
            change: Change::StepsRecorded {
                directory_id: op.directory_id,
                keep: op.deprovision.keep().cloned().map(Box::new),
                closed: op.deprovision.closed().to_vec(),
            },
        }
    }
    fn already(&self, _op: &Op, _e: &GraphError) -> bool {
        false
    }
    fn check_before_resend(&self, _step: u32) -> bool {
        false
    }
    fn verify(&self, _op: &Op, _ctx: &Ctx) -> Check {
        Check::NeverSent
    }
    fn verdict(&self, _op: &Op, _found: &Found) -> Verdict {
        Verdict::NotApplied
    }
}
