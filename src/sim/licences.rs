//! Licences (graph-notes §14): `GET /subscribedSkus[/{tenantId}_{skuId}]`, `POST
//! /users/{id|upn}/assignLicense` (= `/microsoft.graph.assignLicense`), `POST
//! /groups/{id}/assignLicense` (group-based licensing), `GET /users/{id}/licenseDetails`, and
//! the users' `assignedLicenses` and `licenseAssignmentStates`. Written from the notes, not
//! from the client's code.
//!
//! Seats: a SKU's `consumedUnits` is the number of live users holding it, directly or through
//! groups (one seat however many sources, graph-notes §14.4), kept exact on every change. A
//! soft-deleted user frees its seats at once but keeps its licence information, and a restore
//! takes them again (office365itpros, "Managing Assigned Licenses for Deleted User Accounts",
//! 2023: Graph and Entra deletions keep the information, the seats become available; the notes
//! leave this UNVERIFIED). Free seats = `prepaidUnits.enabled - consumedUnits` (warning units
//! not counted: the notes leave the formula UNVERIFIED).
//!
//! Mutually exclusive service plans are not visible in Graph's SKU data; the seed names them
//! (`mutuallyExclusivePlans`, e.g. Exchange Online Plan 1 and Plan 2). A licence whose enabled
//! plans clash with another licence of the user is refused on `assignLicense`; through a group
//! it is recorded on the user as `MutuallyExclusiveViolation` (group licensing reports errors on
//! the user, graph-notes §14.4), as is a group licence without a free seat
//! (`CountViolation`).
//!
//! Dependencies between service plans are not in the SKU data either; the seed names them
//! (`planDependencies`, e.g. Planner and Bookings need an Exchange Online mailbox plan: any one
//! of `dependsOn` enabled on the user, from any licence it holds). An added licence with an
//! enabled plan whose dependency is missing is refused on `assignLicense` ("License assignment
//! failed because service plan {id} depends on the service plan(s) {id}, {id}", graph-notes
//! §14.2; whether any one of the listed plans satisfies it is UNVERIFIED); through a group it
//! is recorded on the user as `DependencyViolation`. A removal that leaves a dependent plan
//! alone is not refused (UNVERIFIED).
//!
//! `assignLicense` checks, in this order: the body (both keys, GUIDs), both lists empty, the
//! user, a usage location when adding, SKUs of the tenant, removals (inherited, not held),
//! seats, plan conflicts, plan dependencies; messages from graph-notes §14.2.

// A refusal IS the answer to send; carrying the Response in Err keeps each check a one-liner.
#![allow(clippy::result_large_err)]

use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::delta::What;
use super::graph::GCtx;
use super::state::State;
use super::tenant::{changed_props, write_user, Prop, Tenant, User, DEFAULT_PROPS};
use super::util;
use super::writes::{country_code_ok, now_iso};

/// A licence as assigned: `assignedLicense` (graph-notes §14.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedLicense {
    pub sku_id: String,
    #[serde(default)]
    pub disabled_plans: Vec<String>,
    /// `lastUpdatedDateTime` of its assignment state.
    #[serde(skip)]
    pub updated: String,
}

/// A licence a user holds through a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inherited {
    pub group: String,
    pub licence: AssignedLicense,
    /// `None` = active; else the reason it is not (`CountViolation`, ...).
    pub error: Option<&'static str>,
}

/// A service plan that needs one of `depends_on` enabled on the same user (seed
/// `planDependencies`; not a Graph field).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanDependency {
    pub service_plan_id: String,
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlan {
    pub service_plan_id: String,
    pub service_plan_name: String,
    #[serde(default = "success")]
    pub provisioning_status: String,
    #[serde(default = "user_target")]
    pub applies_to: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PrepaidUnits {
    pub enabled: u32,
    pub locked_out: u32,
    pub suspended: u32,
    pub warning: u32,
}

/// A `subscribedSku` of the seed (`consumedUnits`, `id`, `accountId`, `accountName` are
/// computed).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sku {
    pub sku_id: String,
    pub sku_part_number: String,
    #[serde(default = "user_target")]
    pub applies_to: String,
    #[serde(default = "enabled")]
    pub capability_status: String,
    #[serde(default)]
    pub prepaid_units: PrepaidUnits,
    #[serde(default)]
    pub service_plans: Vec<ServicePlan>,
    #[serde(default)]
    pub subscription_ids: Vec<String>,
    #[serde(skip)]
    pub consumed: u32,
}

fn success() -> String {
    "Success".into()
}
fn user_target() -> String {
    "User".into()
}
fn enabled() -> String {
    "Enabled".into()
}

pub const NO_CHANGES: &str =
    "No license changes provided. At least one license to add or remove must be specified.";
pub const BAD_USAGE_LOCATION: &str =
    "License assignment cannot be done for user with invalid usage location.";
pub const INHERITED: &str =
    "User license is inherited from a group membership and it cannot be removed directly from the user.";
pub const NOT_HELD: &str = "User does not have a corresponding license.";
pub const BAD_GUID: &str =
    "Cannot convert a primitive value to the expected type 'Edm.Guid'. See the inner exception for more details";

fn bad(g: &GCtx, message: &str) -> Response {
    g.error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

impl Tenant {
    pub fn sku(&self, sku_id: &str) -> Option<&Sku> {
        self.skus
            .iter()
            .find(|s| s.sku_id.eq_ignore_ascii_case(sku_id))
    }
    fn sku_mut(&mut self, sku_id: &str) -> Option<&mut Sku> {
        self.skus
            .iter_mut()
            .find(|s| s.sku_id.eq_ignore_ascii_case(sku_id))
    }
    fn count(&mut self, skus: &[String], up: bool) {
        for s in skus {
            if let Some(k) = self.sku_mut(s) {
                k.consumed = if up {
                    k.consumed + 1
                } else {
                    k.consumed.saturating_sub(1)
                };
            }
        }
    }
    /// Seats of `sku_id` still free.
    fn free(&self, sku_id: &str) -> u32 {
        self.sku(sku_id)
            .map_or(0, |k| k.prepaid_units.enabled.saturating_sub(k.consumed))
    }
    /// Are these two plans mutually exclusive (the seed's list)?
    fn exclusive(&self, a: &str, b: &str) -> bool {
        self.exclusive_plans.iter().any(|[x, y]| {
            (x.eq_ignore_ascii_case(a) && y.eq_ignore_ascii_case(b))
                || (x.eq_ignore_ascii_case(b) && y.eq_ignore_ascii_case(a))
        })
    }
    /// The enabled plans of a licence (the SKU's plans less the disabled ones).
    fn enabled_plans(&self, l: &AssignedLicense) -> Vec<String> {
        self.sku(&l.sku_id).map_or_else(Vec::new, |k| {
            k.service_plans
                .iter()
                .filter(|p| {
                    !l.disabled_plans
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(&p.service_plan_id))
                })
                .map(|p| p.service_plan_id.to_ascii_lowercase())
                .collect()
        })
    }
    /// The first pair (plan of `l`, plan of one of `others`) that are mutually exclusive.
    fn clash<'a>(
        &self,
        l: &AssignedLicense,
        others: impl Iterator<Item = &'a AssignedLicense>,
    ) -> Option<(String, String)> {
        let mine = self.enabled_plans(l);
        for o in others {
            if o.sku_id.eq_ignore_ascii_case(&l.sku_id) {
                continue;
            }
            for q in self.enabled_plans(o) {
                if let Some(p) = mine.iter().find(|p| self.exclusive(p, &q)) {
                    return Some((p.clone(), q));
                }
            }
        }
        None
    }
}

impl Tenant {
    /// A plan of `l` whose dependency (the seed's list) none of the enabled plans of `l` and
    /// `others` meets: (the plan, the plans it depends on).
    fn missing_dependency<'a>(
        &'a self,
        l: &AssignedLicense,
        others: impl Iterator<Item = &'a AssignedLicense>,
    ) -> Option<(String, &'a [String])> {
        let mine = self.enabled_plans(l);
        let mut all = mine.clone();
        for o in others {
            all.extend(self.enabled_plans(o));
        }
        mine.into_iter().find_map(|p| {
            let dep = self
                .plan_dependencies
                .iter()
                .find(|d| d.service_plan_id.eq_ignore_ascii_case(&p))?;
            let met = dep
                .depends_on
                .iter()
                .any(|q| all.iter().any(|a| a.eq_ignore_ascii_case(q)));
            (!met).then_some((p, dep.depends_on.as_slice()))
        })
    }
}

/// The refusal of a licence whose plan `p` misses the plans `deps` (graph-notes §14.2).
pub fn dependency_message(p: &str, deps: &[String]) -> String {
    format!(
        "License assignment failed because service plan {p} depends on the service plan(s) {}",
        deps.join(", ")
    )
}

/// The SKUs a user consumes a seat of: direct ones and active inherited ones, once each.
pub fn effective(u: &User) -> Vec<String> {
    let x = u.ext.get();
    let mut out: Vec<String> = Vec::new();
    let all = x.licences.iter().map(|l| &l.sku_id).chain(
        x.inherited
            .iter()
            .filter(|i| i.error.is_none())
            .map(|i| &i.licence.sku_id),
    );
    for s in all {
        let s = s.to_ascii_lowercase();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The tenant's seat counts from its live users (at load).
pub fn count_all(t: &mut Tenant) {
    for k in &mut t.skus {
        k.consumed = 0;
    }
    let all: Vec<String> = t.users.iter().flat_map(effective).collect();
    t.count(&all, true);
}

/// A user leaves the live directory (soft delete): its seats are free, its licences kept.
pub fn release(t: &mut Tenant, u: &User) {
    let e = effective(u);
    t.count(&e, false);
}

/// A user comes back (restore): it takes its seats again.
pub fn retake(t: &mut Tenant, u: &User) {
    let e = effective(u);
    t.count(&e, true);
}

/// Counts the licences of the live user at `idx` (not counted yet), deciding on the way what
/// its groups give it: active, `CountViolation` (no free seat), `MutuallyExclusiveViolation` or
/// `DependencyViolation`.
fn settle(t: &mut Tenant, idx: usize) {
    let uid = t.users[idx].id.clone();
    let direct = t.users[idx].ext.get().licences.clone();
    let old = t.users[idx].ext.get().inherited.clone();
    let grants: Vec<(String, AssignedLicense)> = t
        .groups
        .iter()
        .filter(|g| {
            !g.licences.is_empty() && g.members.iter().any(|m| m.eq_ignore_ascii_case(&uid))
        })
        .flat_map(|g| g.licences.iter().map(|l| (g.id.clone(), l.clone())))
        .collect();
    let mut held: Vec<AssignedLicense> = direct.clone();
    let skus: Vec<String> = direct
        .iter()
        .map(|l| l.sku_id.to_ascii_lowercase())
        .collect();
    t.count(&dedup(skus), true);
    let mut inherited = Vec::with_capacity(grants.len());
    for (group, mut licence) in grants {
        let already = held
            .iter()
            .any(|h| h.sku_id.eq_ignore_ascii_case(&licence.sku_id));
        let forced = t
            .forced_licence_errors
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(&licence.sku_id))
            .map(|(_, e)| *e);
        let error = if already {
            None
        } else if forced.is_some() {
            forced
        } else if t.clash(&licence, held.iter()).is_some() {
            Some("MutuallyExclusiveViolation")
        } else if t.missing_dependency(&licence, held.iter()).is_some() {
            Some("DependencyViolation")
        } else if t.free(&licence.sku_id) == 0 {
            Some("CountViolation")
        } else {
            t.count(std::slice::from_ref(&licence.sku_id), true);
            None
        };
        let before = old
            .iter()
            .find(|o| o.group == group && o.licence.sku_id.eq_ignore_ascii_case(&licence.sku_id));
        licence.updated = match before {
            Some(o) if o.error == error && o.licence.disabled_plans == licence.disabled_plans => {
                o.licence.updated.clone()
            }
            _ => now_iso(),
        };
        if error.is_none() {
            held.push(licence.clone());
        }
        inherited.push(Inherited {
            group,
            licence,
            error,
        });
    }
    if inherited != old {
        t.users[idx].ext.get_mut().inherited = inherited;
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// After the user's groups or their licences changed: recounts the live user at `idx` and
/// records the change for delta.
pub fn reinherit(t: &mut Tenant, idx: usize) {
    let cur = t.users[idx].clone();
    let e = effective(&cur);
    t.count(&e, false);
    settle(t, idx);
    let bits = changed_props(&cur, &t.users[idx]);
    t.changes.record(&cur.id, What::Updated(bits));
}

/// Writes `assignedLicenses` (one entry per SKU the user holds, inherited included, errors
/// not).
pub fn write_assigned(out: &mut Vec<u8>, u: &User) {
    let x = u.ext.get();
    let mut v: Vec<Value> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let all = x.licences.iter().chain(
        x.inherited
            .iter()
            .filter(|i| i.error.is_none())
            .map(|i| &i.licence),
    );
    for l in all {
        let k = l.sku_id.to_ascii_lowercase();
        if seen.contains(&k) {
            continue;
        }
        seen.push(k);
        v.push(json!({"disabledPlans": l.disabled_plans, "skuId": l.sku_id}));
    }
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// Writes `licenseAssignmentStates`: one per source. `error` is `"None"` when active, as in
/// Microsoft's group-licensing example (the resource page says null: UNVERIFIED which).
pub fn write_states(out: &mut Vec<u8>, u: &User) {
    let x = u.ext.get();
    let mut v: Vec<Value> = x.licences.iter().map(|l| state(None, l, None)).collect();
    v.extend(
        x.inherited
            .iter()
            .map(|i| state(Some(&i.group), &i.licence, i.error)),
    );
    let _ = serde_json::to_writer(&mut *out, &v);
}

fn state(group: Option<&str>, l: &AssignedLicense, error: Option<&str>) -> Value {
    json!({
        "assignedByGroup": group,
        "disabledPlans": l.disabled_plans,
        "error": error.unwrap_or("None"),
        "lastUpdatedDateTime": l.updated,
        "skuId": l.sku_id,
        "state": if error.is_some() { "Error" } else { "Active" },
    })
}

const SKU_PROPS: &[&str] = &[
    "accountName",
    "accountId",
    "appliesTo",
    "capabilityStatus",
    "consumedUnits",
    "id",
    "prepaidUnits",
    "servicePlans",
    "skuId",
    "skuPartNumber",
    "subscriptionIds",
];

/// A SKU as Graph answers it (graph-notes §14.1), narrowed by `$select`.
fn sku_json(t: &Tenant, k: &Sku, select: Option<&[String]>) -> Value {
    let all = [
        ("accountName", json!(t.display_name)),
        ("accountId", json!(t.id)),
        ("appliesTo", json!(k.applies_to)),
        ("capabilityStatus", json!(k.capability_status)),
        ("consumedUnits", json!(k.consumed)),
        ("id", json!(format!("{}_{}", t.id, k.sku_id))),
        (
            "prepaidUnits",
            json!({
                "enabled": k.prepaid_units.enabled,
                "lockedOut": k.prepaid_units.locked_out,
                "suspended": k.prepaid_units.suspended,
                "warning": k.prepaid_units.warning,
            }),
        ),
        (
            "servicePlans",
            json!(k
                .service_plans
                .iter()
                .map(|p| json!({
                    "servicePlanId": p.service_plan_id,
                    "servicePlanName": p.service_plan_name,
                    "provisioningStatus": p.provisioning_status,
                    "appliesTo": p.applies_to,
                }))
                .collect::<Vec<_>>()),
        ),
        ("skuId", json!(k.sku_id)),
        ("skuPartNumber", json!(k.sku_part_number)),
        ("subscriptionIds", json!(k.subscription_ids)),
    ];
    let mut m = Map::new();
    for (name, v) in all {
        if select.is_none_or(|s| s.iter().any(|x| x.eq_ignore_ascii_case(name))) {
            m.insert(name.into(), v);
        }
    }
    Value::Object(m)
}

/// `/subscribedSkus[/{id}]`: read-only; only `$select` (graph-notes §14.1).
pub fn skus(st: &State, g: &GCtx, m: &Method, uri: &axum::http::Uri, more: &[&str]) -> Response {
    if *m != Method::GET {
        return g.method_not_allowed();
    }
    let q = util::parse_form(uri.query().unwrap_or(""));
    let opt = |name: &str| {
        q.iter()
            .find(|(k, _)| k.trim_start_matches('$').eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    // UNVERIFIED text: the notes say only $select is supported, not how the rest is refused.
    for refused in ["filter", "search", "orderby", "expand"] {
        if opt(refused).is_some() {
            return g.bad_request(
                "Request_UnsupportedQuery",
                &format!("The query parameter '${refused}' is not supported on subscribedSkus."),
            );
        }
    }
    let select: Option<Vec<String>> = match opt("select").filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(s) => {
            let mut v = Vec::new();
            for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some(known) = SKU_PROPS.iter().find(|k| k.eq_ignore_ascii_case(p)) else {
                    return g.bad_request(
                        "BadRequest",
                        &format!(
                            "Could not find a property named '{p}' on type 'microsoft.graph.subscribedSku'."
                        ),
                    );
                };
                v.push((*known).to_owned());
            }
            Some(v)
        }
    };
    let t = st.tenant();
    let projection = select
        .as_ref()
        .map(|s| format!("({})", s.join(",")))
        .unwrap_or_default();
    match more {
        [] => g.ok(&json!({
            "@odata.context": format!("{}/v1.0/$metadata#subscribedSkus{projection}", g.base),
            "value": t.skus.iter().map(|k| sku_json(&t, k, select.as_deref())).collect::<Vec<_>>(),
        })),
        [id] => {
            let well_formed = id
                .split_once('_')
                .is_some_and(|(a, b)| is_guid(a) && is_guid(b));
            if !well_formed {
                return bad(
                    g,
                    "Invalid object identifier. It must be a string in the form of [Guid]_[Guid].",
                );
            }
            let found = id.split_once('_').and_then(|(tenant, sku)| {
                tenant
                    .eq_ignore_ascii_case(&t.id)
                    .then(|| t.sku(sku))
                    .flatten()
            });
            match found {
                Some(k) => {
                    let mut v = sku_json(&t, k, select.as_deref());
                    v["@odata.context"] = json!(format!(
                        "{}/v1.0/$metadata#subscribedSkus{projection}/$entity",
                        g.base
                    ));
                    g.ok(&v)
                }
                None => g.not_found(id),
            }
        }
        [_, seg, ..] => g.segment_not_found(seg),
    }
}

/// The body of `assignLicense`: (licences to add, SKU ids to remove), checked as Graph's
/// OData layer would.
fn parse_body(g: &GCtx, body: &[u8]) -> Result<(Vec<AssignedLicense>, Vec<String>), Response> {
    let b = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(g.error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                super::writes::BAD_JSON,
            ))
        }
    };
    // Parameter names are case-sensitive (graph-notes §14.2).
    let (add, remove) = (b.get("addLicenses"), b.get("removeLicenses"));
    let missing: Vec<&str> = [("addLicenses", add), ("removeLicenses", remove)]
        .iter()
        .filter(|(_, v)| !v.is_some_and(Value::is_array))
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        // The addLicenses text is observed; removeLicenses and both-missing by analogy
        // (UNVERIFIED).
        return Err(bad(
            g,
            &format!(
                "One or more parameters of the operation 'assignLicense' are missing from the request payload. \
                 The missing parameters are: {}.",
                missing.join(", ")
            ),
        ));
    }
    let guid = |v: &Value| -> Result<String, Response> {
        match v.as_str() {
            Some(s) if is_guid(s) => Ok(s.to_owned()),
            _ => Err(bad(g, BAD_GUID)),
        }
    };
    let mut adds = Vec::new();
    for item in add.and_then(Value::as_array).into_iter().flatten() {
        let Some(o) = item.as_object() else {
            return Err(bad(g, BAD_GUID));
        };
        for k in o.keys() {
            if k != "skuId" && k != "disabledPlans" && !k.starts_with('@') {
                // UNVERIFIED wording (the notes: `SkuId` fails, `skuId` passes).
                return Err(g.error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!(
                        "The property '{k}' does not exist on type 'microsoft.graph.assignedLicense'. Make sure to \
                         only use property names that are defined by the type or mark the type as open type."
                    ),
                ));
            }
        }
        let sku_id = guid(o.get("skuId").unwrap_or(&Value::Null))?;
        let mut disabled_plans = Vec::new();
        match o.get("disabledPlans") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for p in a {
                    disabled_plans.push(guid(p)?);
                }
            }
            Some(_) => return Err(bad(g, BAD_GUID)),
        }
        adds.push(AssignedLicense {
            sku_id,
            disabled_plans,
            updated: String::new(),
        });
    }
    let mut removes = Vec::new();
    for r in remove.and_then(Value::as_array).into_iter().flatten() {
        removes.push(guid(r)?);
    }
    if adds.is_empty() && removes.is_empty() {
        return Err(bad(g, NO_CHANGES));
    }
    Ok((adds, removes))
}

fn unknown_sku(g: &GCtx, sku: &str) -> Response {
    bad(
        g,
        &format!("License {sku} does not correspond to a valid company License."),
    )
}

/// `POST /users/{id|upn}/assignLicense`: 200 with the user (its default properties and
/// `assignedLicenses`; which properties Graph sends is UNVERIFIED).
pub fn assign_user(st: &State, g: &GCtx, key: &str, body: &[u8]) -> Response {
    let (adds, removes) = match parse_body(g, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut t = st.tenant_mut();
    let Some(idx) = t.user_index(key) else {
        return g.not_found(key);
    };
    let cur = t.users[idx].clone();
    if !adds.is_empty() && !cur.usage_location.as_deref().is_some_and(country_code_ok) {
        return bad(g, BAD_USAGE_LOCATION);
    }
    for s in adds.iter().map(|a| &a.sku_id).chain(removes.iter()) {
        if t.sku(s).is_none() {
            return unknown_sku(g, s);
        }
    }
    let x = cur.ext.get();
    for r in &removes {
        let direct = x.licences.iter().any(|l| l.sku_id.eq_ignore_ascii_case(r));
        let via_group = x
            .inherited
            .iter()
            .any(|i| i.licence.sku_id.eq_ignore_ascii_case(r));
        if !direct {
            return bad(g, if via_group { INHERITED } else { NOT_HELD });
        }
    }
    // Seats: a SKU the user does not hold yet takes one.
    let held = effective(&cur);
    for a in &adds {
        let new = !held.contains(&a.sku_id.to_ascii_lowercase());
        if new && t.free(&a.sku_id) == 0 {
            return bad(
                g,
                &format!(
                    "Subscription with SKU {} does not have any available licenses.",
                    a.sku_id
                ),
            );
        }
    }
    // The licences after the change, to check plan conflicts of the added ones.
    let mut direct: Vec<AssignedLicense> = x
        .licences
        .iter()
        .filter(|l| {
            !removes.iter().any(|r| r.eq_ignore_ascii_case(&l.sku_id))
                && !adds
                    .iter()
                    .any(|a| a.sku_id.eq_ignore_ascii_case(&l.sku_id))
        })
        .cloned()
        .collect();
    let now = now_iso();
    for a in &adds {
        direct.push(AssignedLicense {
            updated: now.clone(),
            ..a.clone()
        });
    }
    let active_inherited: Vec<AssignedLicense> = x
        .inherited
        .iter()
        .filter(|i| i.error.is_none())
        .map(|i| i.licence.clone())
        .collect();
    for a in &adds {
        let others = direct.iter().chain(active_inherited.iter());
        if let Some((p, q)) = t.clash(a, others) {
            // The audit-log wording of group licensing (graph-notes §14.2); the API's own
            // text is UNVERIFIED.
            return bad(
                g,
                &format!(
                    "License assignment failed because service plans {p}, {q} are mutually exclusive."
                ),
            );
        }
    }
    for a in &adds {
        let others = direct.iter().chain(active_inherited.iter());
        if let Some((p, deps)) = t.missing_dependency(a, others) {
            return bad(g, &dependency_message(&p, deps));
        }
    }
    // Keep the assignment time of licences whose plans did not change.
    for l in &mut direct {
        if let Some(old) = x.licences.iter().find(|o| {
            o.sku_id.eq_ignore_ascii_case(&l.sku_id) && o.disabled_plans == l.disabled_plans
        }) {
            l.updated = old.updated.clone();
        }
    }
    t.count(&held, false);
    t.users[idx].ext.get_mut().licences = direct;
    settle(&mut t, idx);
    let bits = changed_props(&cur, &t.users[idx]);
    t.changes.record(&cur.id, What::Updated(bits));
    let u = t.users[idx].clone();
    drop(t);
    st.note_write();
    let mut props = DEFAULT_PROPS.to_vec();
    props.push(Prop::AssignedLicenses);
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"@odata.context\":");
    let _ = serde_json::to_writer(
        &mut out,
        &format!("{}/v1.0/$metadata#users/$entity", g.base),
    );
    out.push(b',');
    let mut obj = Vec::new();
    write_user(&mut obj, &u, &props);
    out.extend_from_slice(&obj[1..]);
    g.raw(StatusCode::OK, out)
}

/// `POST /groups/{id}/assignLicense`: `202 Accepted` with the group and a `Location` header
/// (graph-notes §14.4); members get the licences through the group, and what does not fit is
/// recorded on them (`licenseAssignmentStates`), not answered. Removing a licence the group
/// does not have is a no-op (UNVERIFIED).
pub fn assign_group(st: &State, g: &GCtx, gid: &str, body: &[u8]) -> Response {
    let (adds, removes) = match parse_body(g, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut t = st.tenant_mut();
    let Some(gi) = t.groups.iter().position(|x| x.id.eq_ignore_ascii_case(gid)) else {
        return g.not_found(gid);
    };
    for s in adds.iter().map(|a| &a.sku_id).chain(removes.iter()) {
        if t.sku(s).is_none() {
            return unknown_sku(g, s);
        }
    }
    let grp = &mut t.groups[gi];
    grp.licences.retain(|l| {
        !removes.iter().any(|r| r.eq_ignore_ascii_case(&l.sku_id))
            && !adds
                .iter()
                .any(|a| a.sku_id.eq_ignore_ascii_case(&l.sku_id))
    });
    grp.licences.extend(adds);
    let members = grp.members.clone();
    let (id, mut v) = (grp.id.clone(), grp.to_json(None));
    for m in members {
        if let Some(i) = t
            .user_index(&m)
            .filter(|&i| t.users[i].id.eq_ignore_ascii_case(&m))
        {
            reinherit(&mut t, i);
        }
    }
    let location = format!(
        "{}/v2/{}/directoryObjects/{id}/Microsoft.DirectoryServices.Group",
        g.base, t.id
    );
    drop(t);
    st.note_write();
    v["@odata.context"] = json!(format!("{}/v1.0/$metadata#groups/$entity", g.base));
    let mut resp = g.raw(StatusCode::ACCEPTED, v.to_string().into_bytes());
    resp.headers_mut()
        .insert(header::LOCATION, util::hv(&location));
    resp
}

/// `GET /users/{id}/licenseDetails`: one item per SKU the user holds (graph-notes §14.1).
pub fn license_details(t: &Tenant, g: &GCtx, u: &User) -> Response {
    let x = u.ext.get();
    let mut items = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let all = x.licences.iter().chain(
        x.inherited
            .iter()
            .filter(|i| i.error.is_none())
            .map(|i| &i.licence),
    );
    for l in all {
        let Some(k) = t.sku(&l.sku_id) else { continue };
        if seen.contains(&k.sku_id) {
            continue;
        }
        seen.push(k.sku_id.clone());
        let plans: Vec<Value> = k
            .service_plans
            .iter()
            .map(|p| {
                let off = l
                    .disabled_plans
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(&p.service_plan_id));
                json!({
                    "servicePlanId": p.service_plan_id,
                    "servicePlanName": p.service_plan_name,
                    "provisioningStatus": if off { "Disabled" } else { p.provisioning_status.as_str() },
                    "appliesTo": p.applies_to,
                })
            })
            .collect();
        // An opaque id, stable per (user, SKU): Graph's own form is not documented.
        let id = util::b64url(format!("{}_{}", u.id, k.sku_id).as_bytes());
        items.push(json!({
            "id": id,
            "skuId": k.sku_id,
            "skuPartNumber": k.sku_part_number,
            "servicePlans": plans,
        }));
    }
    g.ok(&json!({
        "@odata.context": format!("{}/v1.0/$metadata#users('{}')/licenseDetails", g.base, u.id),
        "value": items,
    }))
}

/// The errors `licenseAssignmentStates` may carry (graph-notes §14.3).
const LICENCE_ERRORS: &[&str] = &[
    "CountViolation",
    "MutuallyExclusiveViolation",
    "DependencyViolation",
    "ProhibitedInUsageLocationViolation",
    "UniquenessViolation",
    "Other",
];

/// `SimOptions::licence_errors` resolved: (lower-case skuId, error code); a SKU the tenant
/// does not have or an error Graph does not send is refused.
pub fn forced_errors(
    t: &Tenant,
    wanted: &[(String, String)],
) -> anyhow::Result<Vec<(String, &'static str)>> {
    wanted
        .iter()
        .map(|(part, error)| {
            let sku = t
                .skus
                .iter()
                .find(|k| k.sku_part_number.eq_ignore_ascii_case(part))
                .ok_or_else(|| anyhow::anyhow!("licence error: the tenant has no SKU {part}"))?;
            let code = LICENCE_ERRORS
                .iter()
                .find(|e| e.eq_ignore_ascii_case(error))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "licence error `{error}`: one of {}",
                        LICENCE_ERRORS.join(", ")
                    )
                })?;
            Ok((sku.sku_id.to_ascii_lowercase(), *code))
        })
        .collect()
}

#[cfg(test)]
mod forced_error_tests {
    use super::*;

    #[test]
    fn forced_licence_errors_name_a_sku_of_the_tenant_and_an_error_graph_sends() {
        let t = Tenant::load(super::super::tenant::BUILTIN_SEED, Some(3)).unwrap();
        let ok = forced_errors(&t, &[("spe_e3".into(), "dependencyviolation".into())]).unwrap();
        assert_eq!(
            ok,
            vec![(
                "05e9a617-0261-4cee-bb44-138d3ef5d965".to_string(),
                "DependencyViolation"
            )]
        );
        let e = forced_errors(&t, &[("E5".into(), "Other".into())]).unwrap_err();
        assert!(e.to_string().contains("no SKU E5"), "{e}");
        let e = forced_errors(&t, &[("SPE_E3".into(), "Nope".into())]).unwrap_err();
        assert!(e.to_string().contains("one of CountViolation"), "{e}");
    }
}
