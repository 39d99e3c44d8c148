//! Licences on the wire (graph-notes §14): the tenant's subscribed SKUs with their seats and
//! service plans, a user's `assignedLicenses` and `licenseAssignmentStates`, and the
//! `assignLicense` body. Written from the notes.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{paths, GraphClient, GraphError};

/// `prepaidUnits` (licenseUnitsDetail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepaidUnits {
    #[serde(default)]
    pub enabled: i64,
    #[serde(default)]
    pub warning: i64,
    #[serde(default)]
    pub suspended: i64,
    #[serde(default)]
    pub locked_out: i64,
}

/// One service plan of a SKU (`servicePlanInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlan {
    pub service_plan_id: String,
    #[serde(default)]
    pub service_plan_name: String,
    #[serde(default)]
    pub provisioning_status: Option<String>,
    #[serde(default)]
    pub applies_to: Option<String>,
}

/// One licence the tenant holds (`subscribedSku`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedSku {
    pub sku_id: String,
    pub sku_part_number: String,
    /// `Enabled`, `Warning`, `Suspended`, `Deleted`, `LockedOut`.
    #[serde(default)]
    pub capability_status: String,
    /// `User` or `Company`: only `User` SKUs can be assigned to users.
    #[serde(default)]
    pub applies_to: String,
    #[serde(default)]
    pub prepaid_units: PrepaidUnits,
    #[serde(default)]
    pub consumed_units: i64,
    #[serde(default)]
    pub service_plans: Vec<ServicePlan>,
}

impl SubscribedSku {
    /// Seats that can still be assigned: enabled units minus consumed ones (never below 0;
    /// warning and suspended units are not counted, graph-notes §14.1 leaves it open).
    pub fn free(&self) -> i64 {
        (self.prepaid_units.enabled - self.consumed_units).max(0)
    }
    /// Whether users can be given it: `appliesTo` User and `capabilityStatus` Enabled.
    pub fn user_assignable(&self) -> bool {
        self.applies_to.eq_ignore_ascii_case("User")
            && self.capability_status.eq_ignore_ascii_case("Enabled")
    }
    /// The plan of this SKU with this name (case-insensitive).
    pub fn plan_named(&self, name: &str) -> Option<&ServicePlan> {
        self.service_plans
            .iter()
            .find(|p| p.service_plan_name.eq_ignore_ascii_case(name))
    }
}

/// An `assignedLicense`: a SKU with the service plans turned off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedLicense {
    pub sku_id: String,
    #[serde(default)]
    pub disabled_plans: Vec<String>,
}

/// A `licenseAssignmentState`: where a licence of the user comes from and whether it works.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenceState {
    pub sku_id: String,
    /// None: assigned directly; else the group it comes from.
    #[serde(default)]
    pub assigned_by_group: Option<String>,
    #[serde(default)]
    pub disabled_plans: Vec<String>,
    /// `Active`, `ActiveWithError`, `Disabled`, `Error`.
    #[serde(default)]
    pub state: Option<String>,
    /// `CountViolation`, `MutuallyExclusiveViolation`, ... (None or `None` on success).
    #[serde(default)]
    pub error: Option<String>,
}

/// A user's licences as `$select=assignedLicenses,licenseAssignmentStates` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLicences {
    #[serde(default)]
    pub assigned_licenses: Vec<AssignedLicense>,
    #[serde(default)]
    pub license_assignment_states: Vec<LicenceState>,
}

impl UserLicences {
    /// The licence of this SKU, if the user has it (from any source).
    pub fn assigned(&self, sku_id: &str) -> Option<&AssignedLicense> {
        self.assigned_licenses
            .iter()
            .find(|l| l.sku_id.eq_ignore_ascii_case(sku_id))
    }
    /// Whether the user holds this SKU by direct assignment (the only kind a user's
    /// `assignLicense` can remove). Without assignment states, a held licence counts as direct.
    pub fn direct(&self, sku_id: &str) -> bool {
        let states: Vec<&LicenceState> = self
            .license_assignment_states
            .iter()
            .filter(|s| s.sku_id.eq_ignore_ascii_case(sku_id))
            .collect();
        if states.is_empty() {
            return self.assigned(sku_id).is_some();
        }
        states.iter().any(|s| s.assigned_by_group.is_none())
    }
    /// The groups this SKU comes from.
    pub fn groups(&self, sku_id: &str) -> Vec<&str> {
        self.license_assignment_states
            .iter()
            .filter(|s| s.sku_id.eq_ignore_ascii_case(sku_id))
            .filter_map(|s| s.assigned_by_group.as_deref())
            .collect()
    }
    /// The licences in error (`state` Error / ActiveWithError or an `error` other than
    /// `None`): (skuId, error).
    pub fn errors(&self) -> Vec<(&str, &str)> {
        self.license_assignment_states
            .iter()
            .filter_map(|s| {
                let e = s
                    .error
                    .as_deref()
                    .filter(|e| !e.eq_ignore_ascii_case("None"));
                let bad = matches!(s.state.as_deref(), Some("Error" | "ActiveWithError"));
                match (e, bad) {
                    (Some(e), _) => Some((s.sku_id.as_str(), e)),
                    (None, true) => Some((s.sku_id.as_str(), "Other")),
                    _ => None,
                }
            })
            .collect()
    }
}

/// The `assignLicense` body: both keys always present (Graph refuses a body without either).
pub fn assign_body(add: &[AssignedLicense], remove: &[String]) -> Value {
    json!({
        "addLicenses": add
            .iter()
            .map(|l| json!({ "skuId": l.sku_id, "disabledPlans": l.disabled_plans }))
            .collect::<Vec<_>>(),
        "removeLicenses": remove,
    })
}

/// The properties the licence reads select.
pub const LICENCE_SELECT: &str = "id,assignedLicenses,licenseAssignmentStates";

impl GraphClient {
    /// The tenant's licences (`GET /subscribedSkus`; only `$select` is supported, no paging
    /// beyond what Graph sends). Permission: Organization.Read.All.
    pub async fn subscribed_skus(&self) -> Result<Vec<SubscribedSku>, GraphError> {
        use futures::StreamExt;
        let mut out = Vec::new();
        let mut pages =
            self.pages::<SubscribedSku>(format!("{}{}", self.base(), paths::SUBSCRIBED_SKUS));
        while let Some(p) = pages.next().await {
            out.extend(p?);
        }
        Ok(out)
    }

    /// The licences of each of `users` (object ids), 20 to a `$batch`
    /// (`GET /users/{id}?$select=id,assignedLicenses,licenseAssignmentStates`); a user that
    /// is gone (404) is left out. Permission: User.Read.All.
    pub async fn user_licences(
        &self,
        users: &[String],
    ) -> Result<HashMap<String, UserLicences>, GraphError> {
        let mut out = HashMap::with_capacity(users.len());
        for (id, body) in self
            .get_each(users, |id| {
                format!("{}?$select={LICENCE_SELECT}", paths::user(id))
            })
            .await?
        {
            if let Some(b) = body {
                let l = serde_json::from_value(b)
                    .map_err(|e| GraphError::Malformed(format!("a user's licences: {e}")))?;
                out.insert(id, l);
            }
        }
        Ok(out)
    }

    /// The licences of one user (id or UPN).
    pub async fn licences_of(&self, user: &str) -> Result<UserLicences, GraphError> {
        self.get(&format!(
            "{}{}?$select={LICENCE_SELECT}",
            self.base(),
            paths::user(user)
        ))
        .await?
        .json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_sku_shape() {
        let v = json!({"accountName":"Sample","accountId":"a","appliesTo":"User",
            "capabilityStatus":"Enabled","consumedUnits":14,"id":"t_s",
            "prepaidUnits":{"enabled":25,"lockedOut":0,"suspended":1,"warning":2},
            "servicePlans":[{"servicePlanId":"p","servicePlanName":"ADALLOM_S_O365",
                "provisioningStatus":"Success","appliesTo":"Company"}],
            "skuId":"s","skuPartNumber":"ENTERPRISEPREMIUM","subscriptionIds":["x"]});
        let s: SubscribedSku = serde_json::from_value(v).unwrap();
        assert_eq!(s.free(), 11);
        assert_eq!(s.prepaid_units.warning, 2);
        assert_eq!(s.prepaid_units.suspended, 1);
        assert!(s.user_assignable());
        assert_eq!(s.plan_named("adallom_s_o365").unwrap().service_plan_id, "p");
        let company = SubscribedSku {
            applies_to: "Company".into(),
            ..s.clone()
        };
        assert!(!company.user_assignable());
        let over = SubscribedSku {
            consumed_units: 30,
            ..s
        };
        assert_eq!(over.free(), 0, "consumed past enabled: none free");
    }

    #[test]
    fn group_licences_are_not_direct() {
        let u: UserLicences = serde_json::from_value(json!({
            "assignedLicenses":[{"skuId":"A","disabledPlans":[]},{"skuId":"B","disabledPlans":[]}],
            "licenseAssignmentStates":[
                {"skuId":"A","assignedByGroup":null,"state":"Active","error":"None"},
                {"skuId":"B","assignedByGroup":"g1","state":"Error","error":"CountViolation"}]
        }))
        .unwrap();
        assert!(u.direct("a"));
        assert!(!u.direct("B"));
        assert_eq!(u.groups("B"), vec!["g1"]);
        assert_eq!(u.errors(), vec![("B", "CountViolation")]);
    }

    #[test]
    fn the_body_always_has_both_keys() {
        let b = assign_body(&[], &["x".into()]);
        assert_eq!(b, json!({"addLicenses": [], "removeLicenses": ["x"]}));
        let b = assign_body(
            &[AssignedLicense {
                sku_id: "s".into(),
                disabled_plans: vec!["p".into()],
            }],
            &[],
        );
        assert_eq!(
            b,
            json!({"addLicenses": [{"skuId": "s", "disabledPlans": ["p"]}], "removeLicenses": []})
        );
    }
}
