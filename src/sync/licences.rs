//! Licences in the plan (issue 11): what the directory assigns to each bound account (its own
//! SKUs and its bound groups', `directory::LicenceDefaults`) against what the account holds
//! (`assignedLicenses`, `licenseAssignmentStates`), as ONE `assignLicense` op per account
//! that adds and removes; and the licence preflight: a usage location, SKUs the tenant has
//! and users may hold, seats enough for the plan, no mutually exclusive service plans.
//!
//! Pure: the tenant's SKUs and the accounts' licences are read by `pipeline::read_tenant`.
//!
//! - A bind (create, takeover, restore, re-enable) adds every SKU the directory assigns; a
//!   bound account gets the difference: SKUs added, disabled plans changed, and SKUs
//!   m365sync assigned before that the directory no longer assigns removed.
//! - A licence the account holds through a group (`assignedByGroup`) is never removed from
//!   the user: the finding says which group gives it.
//! - Seats: the ops are counted per SKU in plan order against the free seats (enabled -
//!   consumed); the ones past them are held back with the numbers ("needs 40 SPE_E3, 12
//!   free"), and a create held so is held with its licence (no unlicensed account).
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::plan::{Op, OpKind, Plan, Policy};
use super::preflight::{Issue, Severity};
use crate::directory::{
    AppliedLicence, DirectoryGroup, DirectoryUser, LicenceDefaults, LicencePick,
};
use crate::graph::licences::{AssignedLicense, SubscribedSku, UserLicences};
use crate::graph::{User, UserAttr};

/// A licence to add: the SKU (id and part number) and the plans turned off (ids and names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceAdd {
    pub sku_id: String,
    pub sku: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_plans: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_names: Vec<String>,
}

/// A licence to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceRemove {
    pub sku_id: String,
    pub sku: String,
}

/// What one `assignLicense` changes on an account.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LicenceDiff {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<LicenceAdd>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<LicenceRemove>,
}

impl LicenceDiff {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
    /// `+SPE_E3 (-TEAMS1) -POWER_BI_PRO`, as the preview and the dry run show it.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .add
            .iter()
            .map(|a| {
                if a.disabled_names.is_empty() {
                    format!("+{}", a.sku)
                } else {
                    format!("+{} (off: {})", a.sku, a.disabled_names.join(", "))
                }
            })
            .collect();
        parts.extend(self.remove.iter().map(|r| format!("-{}", r.sku)));
        parts.join(" ")
    }
    /// The body's `addLicenses`.
    pub fn assigned(&self) -> Vec<AssignedLicense> {
        self.add
            .iter()
            .map(|a| AssignedLicense {
                sku_id: a.sku_id.clone(),
                disabled_plans: a.disabled_plans.clone(),
            })
            .collect()
    }
}

/// Service plans of which a user can hold only one (the Exchange Online mailbox plans, the
/// SharePoint Online plans): the tenant's SKU data does not say which plans exclude each
/// other, their names do.
const EXCLUSIVE_FAMILIES: &[&[&str]] = &[
    &[
        "EXCHANGE_S_STANDARD",
        "EXCHANGE_S_ENTERPRISE",
        "EXCHANGE_S_DESKLESS",
        "EXCHANGE_S_ESSENTIALS",
        "EXCHANGE_S_STANDARD_GOV",
        "EXCHANGE_S_ENTERPRISE_GOV",
    ],
    &[
        "SHAREPOINTSTANDARD",
        "SHAREPOINTENTERPRISE",
        "SHAREPOINTDESKLESS",
        "SHAREPOINTSTANDARD_GOV",
        "SHAREPOINTENTERPRISE_GOV",
    ],
];

/// Service plans that need another plan enabled on the same user (any one of the list, from
/// any licence the user holds): the tenant's SKU data does not say, Microsoft refuses the
/// licence ("License assignment failed because service plan {id} depends on the service
/// plan(s) {id}"). Well-known ones only, by servicePlanName: Bookings and Planner need an
/// Exchange Online mailbox; Office for the web needs SharePoint Online.
const PLAN_DEPENDENCIES: &[(&str, &[&str])] = &[
    ("MICROSOFTBOOKINGS", EXCLUSIVE_FAMILIES[0]),
    ("PROJECTWORKMANAGEMENT", EXCLUSIVE_FAMILIES[0]),
    ("SHAREPOINTWAC", EXCLUSIVE_FAMILIES[1]),
];

/// The catalog kinds of licence findings.
pub const LICENCE_KINDS: &[&str] = &[
    "licence-usage-location",
    "licence-sku-unknown",
    "licence-sku-not-assignable",
    "licence-no-seats",
    "licence-plan-conflict",
    "licence-plan-dependency",
    "licence-from-group",
];

/// What the licence step reads beyond the users: the defaults, what m365sync assigned, the
/// tenant's SKUs and the licences of the accounts that matter.
pub struct Inputs<'a> {
    pub users: &'a [DirectoryUser],
    pub groups: &'a [DirectoryGroup],
    pub policy: &'a Policy,
    pub defaults: &'a LicenceDefaults,
    pub applied: &'a HashMap<i64, Vec<AppliedLicence>>,
    pub skus: &'a [SubscribedSku],
    /// Account object id -> its licences.
    pub accounts: &'a HashMap<String, UserLicences>,
    /// Live accounts by object id (their usageLocation).
    pub live: &'a HashMap<&'a str, &'a User>,
}

impl Inputs<'_> {
    /// Whether anything about licences is managed: without it no op and no read.
    pub fn active(defaults: &LicenceDefaults, applied: &HashMap<i64, Vec<AppliedLicence>>) -> bool {
        !defaults.is_empty() || applied.values().any(|v| !v.is_empty())
    }
}

/// The usage location an account will have after the plan: the directory user's own (when
/// synced), else the account's, else the directory's default.
pub fn effective_usage_location(
    d: &DirectoryUser,
    account: Option<&User>,
    policy: &Policy,
) -> Option<String> {
    let attr = super::attributes::Attr::User(UserAttr::UsageLocation);
    let own = policy
        .attributes
        .syncs(attr)
        .then(|| d.attributes.get("usageLocation"))
        .flatten()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    own.or_else(|| {
        account
            .and_then(|a| a.attr(UserAttr::UsageLocation))
            .map(str::to_string)
    })
    .or_else(|| policy.usage_location.clone())
}

/// The directory users with the directory's default usage location filled in where the user
/// has none of its own (the user's own always wins): what the plan sends on bind. An account
/// that already has a usage location keeps it (the default never overwrites, nor does an
/// empty cell clear it while a default is set). Borrowed as is when no default is set.
pub fn with_default_usage_location<'a>(
    users: &'a [DirectoryUser],
    policy: &Policy,
    live: &HashMap<&str, &User>,
) -> std::borrow::Cow<'a, [DirectoryUser]> {
    let Some(cc) = policy.usage_location.as_deref() else {
        return std::borrow::Cow::Borrowed(users);
    };
    let needs = |d: &DirectoryUser| {
        d.wanted()
            && d.attributes
                .get("usageLocation")
                .is_none_or(|v| v.trim().is_empty())
    };
    if !users.iter().any(needs) {
        return std::borrow::Cow::Borrowed(users);
    }
    std::borrow::Cow::Owned(
        users
            .iter()
            .map(|d| {
                let mut d2 = d.clone();
                if needs(d) {
                    let have = d
                        .tenant_user_id
                        .as_deref()
                        .and_then(|t| live.get(t))
                        .and_then(|a| a.attr(UserAttr::UsageLocation));
                    d2.attributes
                        .insert("usageLocation".into(), have.unwrap_or(cc).to_string());
                }
                d2
            })
            .collect(),
    )
}

fn issue(d: &DirectoryUser, kind: &str, field: &str, value: &str, message: String) -> Issue {
    Issue {
        directory_id: d.id,
        kind: kind.into(),
        field: field.into(),
        value: value.into(),
        message,
        suggestion: None,
        severity: Severity::Error,
        holder: None,
    }
}

/// The enabled service plan names of a licence (its SKU's plans minus the disabled ones).
fn enabled_plans<'a>(sku: &'a SubscribedSku, disabled: &[String]) -> Vec<&'a str> {
    sku.service_plans
        .iter()
        .filter(|p| {
            !disabled
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&p.service_plan_id))
        })
        .map(|p| p.service_plan_name.as_str())
        .collect()
}

/// Two enabled plans of one exclusive family held from two licences: (plan, sku, plan, sku).
fn conflict<'a>(held: &[(&'a str, &'a str)]) -> Option<(&'a str, &'a str, &'a str, &'a str)> {
    for fam in EXCLUSIVE_FAMILIES {
        let inf: Vec<&(&str, &str)> = held
            .iter()
            .filter(|(p, _)| fam.iter().any(|f| f.eq_ignore_ascii_case(p)))
            .collect();
        for (i, a) in inf.iter().enumerate() {
            if let Some(b) = inf[i + 1..]
                .iter()
                .find(|b| !b.0.eq_ignore_ascii_case(a.0) && b.1 != a.1)
            {
                return Some((a.0, a.1, b.0, b.1));
            }
        }
    }
    None
}

/// An enabled plan that needs a plan the licences' disabledPlans switch off (and no other
/// licence brings): (plan, its sku, the plan switched off, its sku).
fn missing_dependency<'a>(
    held: &[(&'a str, &'a str)],
    off: &[(&'a str, &'a str)],
) -> Option<(&'a str, &'a str, &'a str, &'a str)> {
    for (p, s) in held {
        let Some((_, needs)) = PLAN_DEPENDENCIES
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(p))
        else {
            continue;
        };
        let needed = |q: &str| needs.iter().any(|n| n.eq_ignore_ascii_case(q));
        if held.iter().any(|(q, _)| needed(q)) {
            continue;
        }
        if let Some((q, t)) = off.iter().find(|(q, _)| needed(q)) {
            return Some((p, s, q, t));
        }
    }
    None
}

/// Adds the licence ops to `plan` (one per account, after the op that binds it), holds back
/// what preflight refuses (with the bind op of a create that would stay unlicensed), and
/// returns the findings.
pub fn plan_licences(inp: &Inputs, plan: &mut Plan, held: &mut Vec<(Op, Issue)>) -> Vec<Issue> {
    let mut issues = Vec::new();
    if !Inputs::active(inp.defaults, inp.applied) {
        return issues;
    }
    let group_ids: HashMap<&str, i64> =
        inp.groups.iter().map(|g| (g.name.as_str(), g.id)).collect();
    let by_part: HashMap<String, &SubscribedSku> = inp
        .skus
        .iter()
        .map(|s| (s.sku_part_number.to_ascii_uppercase(), s))
        .collect();
    let by_id: HashMap<String, &SubscribedSku> = inp
        .skus
        .iter()
        .map(|s| (s.sku_id.to_ascii_lowercase(), s))
        .collect();
    // The op that binds each user in this plan (and which are held already).
    let bind_of: HashMap<i64, (OpKind, Option<String>)> = plan
        .ops
        .iter()
        .filter(|o| {
            matches!(
                o.kind,
                OpKind::Create | OpKind::Takeover | OpKind::Restore | OpKind::ReEnable
            )
        })
        .map(|o| (o.directory_id, (o.kind, o.tenant_user_id.clone())))
        .collect();
    let held_users: HashSet<i64> = held.iter().map(|(o, _)| o.directory_id).collect();
    let empty = UserLicences::default();
    let mut new_ops: Vec<Op> = Vec::new();
    for d in inp.users.iter().filter(|d| d.wanted()) {
        if held_users.contains(&d.id) {
            continue;
        }
        let want = inp.defaults.for_user(d, &group_ids);
        let applied = inp.applied.get(&d.id).map(Vec::as_slice).unwrap_or(&[]);
        if want.is_empty() && applied.is_empty() {
            continue;
        }
        // The account and what it holds now.
        let (bind, account_id) = match bind_of.get(&d.id) {
            Some((k, id)) => (Some(*k), id.clone()),
            None => match d
                .tenant_user_id
                .as_deref()
                .filter(|t| inp.live.contains_key(t))
            {
                Some(t) => (None, Some(t.to_string())),
                None => continue,
            },
        };
        let current = match (bind, account_id.as_deref()) {
            (Some(OpKind::Create), _) | (_, None) => &empty,
            (_, Some(id)) => inp.accounts.get(id).unwrap_or(&empty),
        };
        let account = account_id.as_deref().and_then(|t| inp.live.get(t).copied());
        let mut errors: Vec<Issue> = Vec::new();
        let mut diff = LicenceDiff::default();
        for pick in &want {
            let Some(sku) = by_part.get(&pick.sku) else {
                errors.push(issue(
                    d,
                    "licence-sku-unknown",
                    "licence",
                    &pick.sku,
                    format!(
                        "The directory assigns {} to {}, but the tenant has no such licence.",
                        pick.sku, d.email
                    ),
                ));
                continue;
            };
            if !sku.user_assignable() {
                errors.push(issue(
                    d,
                    "licence-sku-not-assignable",
                    "licence",
                    &pick.sku,
                    format!(
                        "{} cannot be assigned to users (appliesTo {}, capabilityStatus {}).",
                        pick.sku, sku.applies_to, sku.capability_status
                    ),
                ));
                continue;
            }
            let mut ids = Vec::new();
            for name in &pick.disabled_plans {
                match sku.plan_named(name) {
                    Some(p) => ids.push(p.service_plan_id.clone()),
                    None => errors.push(issue(
                        d,
                        "licence-sku-unknown",
                        "servicePlan",
                        name,
                        format!(
                            "{} has no service plan {name} to turn off (its plans: {}).",
                            pick.sku,
                            sku.service_plans
                                .iter()
                                .map(|p| p.service_plan_name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                }
            }
            ids.sort();
            let satisfied = match current.assigned(&sku.sku_id) {
                None => false,
                // From a group only: the group decides its plans.
                Some(_) if !current.direct(&sku.sku_id) => true,
                Some(l) => {
                    let mut have: Vec<String> = l
                        .disabled_plans
                        .iter()
                        .map(|p| p.to_ascii_lowercase())
                        .collect();
                    have.sort();
                    let mut wanted: Vec<String> =
                        ids.iter().map(|p| p.to_ascii_lowercase()).collect();
                    wanted.sort();
                    have == wanted
                }
            };
            if !satisfied {
                diff.add.push(LicenceAdd {
                    sku_id: sku.sku_id.clone(),
                    sku: sku.sku_part_number.clone(),
                    disabled_plans: ids,
                    disabled_names: pick.disabled_plans.clone(),
                });
            }
        }
        // Removes: what m365sync assigned that the directory no longer does.
        for a in applied {
            let still = want.iter().any(|w| {
                by_part
                    .get(&w.sku)
                    .is_some_and(|s| s.sku_id.eq_ignore_ascii_case(&a.sku_id))
            });
            if still || current.assigned(&a.sku_id).is_none() {
                continue;
            }
            if current.direct(&a.sku_id) {
                diff.remove.push(LicenceRemove {
                    sku_id: a.sku_id.clone(),
                    sku: a.sku.clone(),
                });
            } else {
                let groups = current.groups(&a.sku_id).join(", ");
                issues.push(Issue {
                    severity: Severity::Warning,
                    ..issue(
                        d,
                        "licence-from-group",
                        "licence",
                        &a.sku,
                        format!(
                            "{} holds {} through group {groups}: m365sync does not remove a \
                             licence a group gives; remove the user from that group or the \
                             licence from the group.",
                            d.email, a.sku
                        ),
                    )
                });
            }
        }
        if diff.is_empty() && errors.is_empty() {
            continue;
        }
        if !diff.add.is_empty() {
            match effective_usage_location(d, account, inp.policy) {
                None => errors.push(issue(
                    d,
                    "licence-usage-location",
                    "usageLocation",
                    "",
                    format!(
                        "{} has no usage location: Microsoft 365 assigns no licence without one. \
                         Set the user's usageLocation or a directory default (`m365sync \
                         directory policy --usage-location CC`).",
                        d.email
                    ),
                )),
                Some(cc) if !super::attributes::is_country_code(&cc) => errors.push(issue(
                    d,
                    "licence-usage-location",
                    "usageLocation",
                    &cc,
                    format!(
                        "The usage location \"{cc}\" of {} is not a two-letter ISO 3166 country \
                         code (US, GB, DE): Microsoft 365 assigns no licence with it.",
                        d.email
                    ),
                )),
                Some(_) => {}
            }
            // Mutually exclusive plans among the licences the account will hold.
            let removed: HashSet<String> = diff
                .remove
                .iter()
                .map(|r| r.sku_id.to_ascii_lowercase())
                .collect();
            let added: HashSet<String> = diff
                .add
                .iter()
                .map(|a| a.sku_id.to_ascii_lowercase())
                .collect();
            let mut held_plans: Vec<(&str, &str)> = Vec::new();
            // Plans the licences it will hold switch off.
            let mut off_plans: Vec<(&str, &str)> = Vec::new();
            let kept = current.assigned_licenses.iter().filter(|l| {
                let key = l.sku_id.to_ascii_lowercase();
                !removed.contains(&key) && !added.contains(&key)
            });
            let licences = kept
                .map(|l| (l.sku_id.as_str(), l.disabled_plans.as_slice()))
                .chain(
                    diff.add
                        .iter()
                        .map(|a| (a.sku_id.as_str(), a.disabled_plans.as_slice())),
                );
            for (sku_id, disabled) in licences {
                if let Some(s) = by_id.get(&sku_id.to_ascii_lowercase()) {
                    let part = s.sku_part_number.as_str();
                    let on = enabled_plans(s, disabled);
                    for p in &s.service_plans {
                        let name = p.service_plan_name.as_str();
                        if on.contains(&name) {
                            held_plans.push((name, part));
                        } else {
                            off_plans.push((name, part));
                        }
                    }
                }
            }
            if let Some((p, s, q, t)) = conflict(&held_plans) {
                errors.push(issue(
                    d,
                    "licence-plan-conflict",
                    "licence",
                    &format!("{s}, {t}"),
                    format!(
                        "{} would hold {p} (from {s}) and {q} (from {t}): these service plans \
                         are mutually exclusive. Turn one off, e.g. `--sku {s},-{p}`.",
                        d.email
                    ),
                ));
            }
            if let Some((p, s, q, t)) = missing_dependency(&held_plans, &off_plans) {
                errors.push(issue(
                    d,
                    "licence-plan-dependency",
                    "licence",
                    &format!("{p}, {q}"),
                    format!(
                        "{} would hold {p} (from {s}) without {q}, which {t}'s disabled plans \
                         turn off: {p} depends on it, and Microsoft 365 refuses the licence. \
                         Enable {q} (drop `-{q}`), or turn {p} off too (`--sku {t},-{q},-{p}`).",
                        d.email
                    ),
                ));
            }
        }
        let op = Op {
            kind: OpKind::AssignLicense,
            directory_id: d.id,
            email: d.email.clone(),
            display_name: d.display_name.clone(),
            upn: plan
                .ops
                .iter()
                .find(|o| o.directory_id == d.id)
                .map(|o| o.upn.clone())
                .or_else(|| account.map(|a| a.user_principal_name.clone()))
                .unwrap_or_else(|| d.email.clone()),
            tenant_user_id: account_id.clone().filter(|_| bind != Some(OpKind::Create)),
            reason: format!("licences: {}", diff.describe()),
            changes: Vec::new(),
            manager_id: None,
            licences: Some(Box::new(diff)),
            deprovision: Default::default(),
        };
        if let Some(first) = errors.first().cloned() {
            hold(plan, held, op, first, bind);
            issues.extend(errors);
        } else {
            new_ops.push(op);
        }
    }
    // Seats, in plan order: what does not fit is held back with the numbers.
    let mut needed: BTreeMap<String, i64> = BTreeMap::new();
    for op in &new_ops {
        for a in op.licences.iter().flat_map(|l| &l.add) {
            *needed.entry(a.sku_id.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let mut left: HashMap<String, i64> = needed
        .keys()
        .map(|k| (k.clone(), by_id.get(k).map_or(0, |s| s.free())))
        .collect();
    for op in new_ops {
        let short = op
            .licences
            .iter()
            .flat_map(|l| &l.add)
            .find(|a| {
                left.get(&a.sku_id.to_ascii_lowercase())
                    .copied()
                    .unwrap_or(0)
                    <= 0
            })
            .cloned();
        match short {
            None => {
                for a in op.licences.iter().flat_map(|l| &l.add) {
                    if let Some(n) = left.get_mut(&a.sku_id.to_ascii_lowercase()) {
                        *n -= 1;
                    }
                }
                plan.ops.push(op);
            }
            Some(a) => {
                let key = a.sku_id.to_ascii_lowercase();
                let need = needed.get(&key).copied().unwrap_or(0);
                let free = by_id.get(&key).map_or(0, |s| s.free());
                let d = inp.users.iter().find(|u| u.id == op.directory_id);
                let i = Issue {
                    directory_id: op.directory_id,
                    kind: "licence-no-seats".into(),
                    field: "licence".into(),
                    value: a.sku.clone(),
                    message: format!(
                        "The plan needs {need} {sku}, {free} free: {} waits for a seat (buy more \
                         {sku} licences or free some, then sync again).",
                        d.map_or(op.email.as_str(), |d| d.email.as_str()),
                        sku = a.sku
                    ),
                    suggestion: None,
                    severity: Severity::Error,
                    holder: None,
                };
                let bind = bind_of.get(&op.directory_id).map(|(k, _)| *k);
                issues.push(i.clone());
                hold(plan, held, op, i, bind);
            }
        }
    }
    issues
}

/// Holds `op` back with `issue`; a create of the same user waits with it (an account that
/// cannot get its licence is not made).
fn hold(plan: &mut Plan, held: &mut Vec<(Op, Issue)>, op: Op, issue: Issue, bind: Option<OpKind>) {
    if bind == Some(OpKind::Create) {
        let id = op.directory_id;
        let (take, keep): (Vec<Op>, Vec<Op>) = std::mem::take(&mut plan.ops)
            .into_iter()
            .partition(|o| o.directory_id == id && o.kind == OpKind::Create);
        plan.ops = keep;
        held.extend(take.into_iter().map(|o| (o, issue.clone())));
    }
    held.push((op, issue));
}

/// The SKUs a set of picks names, resolved against the tenant, for the Licences views:
/// (part number, its SKU when the tenant has it).
pub fn resolve<'a>(
    picks: &'a [LicencePick],
    skus: &'a [SubscribedSku],
) -> Vec<(&'a LicencePick, Option<&'a SubscribedSku>)> {
    picks
        .iter()
        .map(|p| {
            (
                p,
                skus.iter()
                    .find(|s| s.sku_part_number.eq_ignore_ascii_case(&p.sku)),
            )
        })
        .collect()
}

/// One SKU of the tenant, as `m365sync licences` and the Licences tab show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuLine {
    pub sku: String,
    pub sku_id: String,
    pub status: String,
    pub applies_to: String,
    pub enabled: i64,
    pub warning: i64,
    pub suspended: i64,
    pub consumed: i64,
    pub free: i64,
    /// Seats the plan's licence ops would take (held-back ones not counted).
    pub planned: i64,
    /// Users held back for want of a seat.
    pub short: i64,
    /// Its service plans (`servicePlanName`), the ones a licence can turn off.
    pub service_plans: Vec<String>,
}

/// What m365sync assigns to one group or user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentLine {
    /// `group` or `user`.
    pub owner: &'static str,
    /// The group's name or the user's email.
    pub name: String,
    /// `SPE_E3,-TEAMS1`, one per SKU.
    pub licences: Vec<String>,
    /// Directory users it reaches (a group's members; 1 for a user).
    pub users: usize,
}

/// A user whose licence is refused or in error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenceErrorLine {
    pub email: String,
    /// The catalog kind (`licence-no-seats`).
    pub kind: String,
    pub sku: String,
    pub message: String,
    /// `preflight` (held back by the plan) or `tenant` (an error Microsoft recorded on the
    /// account, such as a group licence without a seat).
    pub source: &'static str,
}

/// The Licences view: SKUs with seats, what the directory assigns, users with licence errors.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenceReport {
    pub skus: Vec<SkuLine>,
    pub assignments: Vec<AssignmentLine>,
    pub errors: Vec<LicenceErrorLine>,
}

/// The catalog kind of an error Microsoft records on a licence of an account
/// (`licenseAssignmentStates.error`, graph-notes §14.3): it is not an answer to a request but
/// the state group-based licensing left, so each has its own kind and fix steps.
fn tenant_error_kind(e: &str) -> &'static str {
    match e {
        "CountViolation" => "licence-state-no-seats",
        "MutuallyExclusiveViolation" => "licence-state-exclusive",
        "DependencyViolation" => "licence-state-dependency",
        "ProhibitedInUsageLocationViolation" => "licence-state-usage-location",
        "UniquenessViolation" => "licence-state-uniqueness",
        _ => "licence-state-other",
    }
}

/// The licence errors Microsoft recorded on the accounts read (`licenseAssignmentStates` in
/// state Error / ActiveWithError), one finding per account and SKU with the account's email
/// (the directory user's when one is linked to it, else the account's object id): what the
/// Licences view lists and the Errors tab and `m365sync errors` explain. `value` is the SKU's
/// part number, `suggestion` Microsoft's error code. Sorted by email, then SKU.   pure
pub fn recorded_errors(
    users: &[DirectoryUser],
    skus: &[SubscribedSku],
    accounts: &HashMap<String, UserLicences>,
) -> Vec<(Issue, String)> {
    let part = |id: &str| {
        skus.iter()
            .find(|s| s.sku_id.eq_ignore_ascii_case(id))
            .map_or_else(|| id.to_string(), |s| s.sku_part_number.clone())
    };
    // Accounts in error are few (usually none): the directory is indexed only when there are.
    let in_error: Vec<(&String, Vec<(&str, &str)>)> = accounts
        .iter()
        .map(|(id, l)| (id, l.errors()))
        .filter(|(_, e)| !e.is_empty())
        .collect();
    if in_error.is_empty() {
        return Vec::new();
    }
    let user_of: HashMap<&str, &DirectoryUser> = users
        .iter()
        .filter_map(|u| u.tenant_user_id.as_deref().map(|t| (t, u)))
        .collect();
    let mut out: Vec<(Issue, String)> = in_error
        .into_iter()
        .flat_map(|(id, errors)| {
            let user = user_of.get(id.as_str()).copied();
            let email = user.map_or(id.as_str(), |u| u.email.as_str());
            errors
                .into_iter()
                .map(|(sku, e)| {
                    let sku = part(sku);
                    let issue = Issue {
                        directory_id: user.map_or(0, |u| u.id),
                        kind: tenant_error_kind(e).into(),
                        field: "licenseAssignmentStates".into(),
                        value: sku.clone(),
                        message: format!(
                            "Microsoft 365 records {e} on the {sku} licence of {email} \
                             (licenseAssignmentStates)"
                        ),
                        suggestion: Some(e.to_string()),
                        severity: Severity::Error,
                        holder: None,
                    };
                    (issue, email.to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_by(|a, b| (&a.1, &a.0.value).cmp(&(&b.1, &b.0.value)));
    out
}

/// The report of the directory, the tenant's licences and a plan view of them: pure.
#[allow(clippy::too_many_arguments)]
pub fn report(
    users: &[DirectoryUser],
    groups: &[DirectoryGroup],
    defaults: &LicenceDefaults,
    skus: &[SubscribedSku],
    accounts: &HashMap<String, UserLicences>,
    ops: &[Op],
    held: &[(Op, Issue)],
    issues: &[(Issue, String)],
) -> LicenceReport {
    let mut planned: HashMap<String, i64> = HashMap::new();
    for a in ops
        .iter()
        .filter_map(|o| o.licences.as_ref())
        .flat_map(|l| &l.add)
    {
        *planned.entry(a.sku_id.to_ascii_lowercase()).or_default() += 1;
    }
    let mut short: HashMap<String, i64> = HashMap::new();
    for (_, i) in held
        .iter()
        .filter(|(o, i)| o.kind == OpKind::AssignLicense && i.kind == "licence-no-seats")
    {
        *short.entry(i.value.to_ascii_uppercase()).or_default() += 1;
    }
    let skus_out = skus
        .iter()
        .map(|s| SkuLine {
            sku: s.sku_part_number.clone(),
            sku_id: s.sku_id.clone(),
            status: s.capability_status.clone(),
            applies_to: s.applies_to.clone(),
            enabled: s.prepaid_units.enabled,
            warning: s.prepaid_units.warning,
            suspended: s.prepaid_units.suspended,
            consumed: s.consumed_units,
            free: s.free(),
            planned: planned
                .get(&s.sku_id.to_ascii_lowercase())
                .copied()
                .unwrap_or(0),
            short: short
                .get(&s.sku_part_number.to_ascii_uppercase())
                .copied()
                .unwrap_or(0),
            service_plans: s
                .service_plans
                .iter()
                .map(|p| p.service_plan_name.clone())
                .collect(),
        })
        .collect();
    let mut assignments = Vec::new();
    for g in groups {
        if let Some(p) = defaults.groups.get(&g.id) {
            assignments.push(AssignmentLine {
                owner: "group",
                name: g.name.clone(),
                licences: p.iter().map(LicencePick::label).collect(),
                users: g.members.len(),
            });
        }
    }
    for u in users {
        if let Some(p) = defaults.users.get(&u.id) {
            assignments.push(AssignmentLine {
                owner: "user",
                name: u.email.clone(),
                licences: p.iter().map(LicencePick::label).collect(),
                users: 1,
            });
        }
    }
    let mut errors: Vec<LicenceErrorLine> = issues
        .iter()
        .filter(|(i, _)| LICENCE_KINDS.contains(&i.kind.as_str()))
        .map(|(i, email)| LicenceErrorLine {
            email: email.clone(),
            kind: i.kind.clone(),
            sku: i.value.clone(),
            message: i.message.clone(),
            source: "preflight",
        })
        .collect();
    let tenant_errors = recorded_errors(users, skus, accounts)
        .into_iter()
        .map(|(i, email)| LicenceErrorLine {
            email,
            kind: i.kind,
            sku: i.value,
            message: i.message,
            source: "tenant",
        });
    errors.extend(tenant_errors);
    LicenceReport {
        skus: skus_out,
        assignments,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::LicenceOwner;
    use crate::graph::licences::{LicenceState, PrepaidUnits, ServicePlan};

    fn sku(
        part: &str,
        id: &str,
        enabled: i64,
        consumed: i64,
        plans: &[(&str, &str)],
    ) -> SubscribedSku {
        SubscribedSku {
            sku_id: id.into(),
            sku_part_number: part.into(),
            capability_status: "Enabled".into(),
            applies_to: "User".into(),
            prepaid_units: PrepaidUnits {
                enabled,
                ..Default::default()
            },
            consumed_units: consumed,
            service_plans: plans
                .iter()
                .map(|(i, n)| ServicePlan {
                    service_plan_id: (*i).into(),
                    service_plan_name: (*n).into(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn skus() -> Vec<SubscribedSku> {
        vec![
            sku(
                "SPE_E3",
                "e3",
                10,
                8,
                &[
                    ("x1", "EXCHANGE_S_ENTERPRISE"),
                    ("t1", "TEAMS1"),
                    ("bk", "MICROSOFTBOOKINGS"),
                ],
            ),
            sku(
                "EXCHANGESTANDARD",
                "exo",
                10,
                0,
                &[("x2", "EXCHANGE_S_STANDARD")],
            ),
            SubscribedSku {
                applies_to: "Company".into(),
                ..sku("AAD_TENANT", "co", 1, 0, &[])
            },
        ]
    }

    fn user(id: i64, link: Option<&str>) -> DirectoryUser {
        DirectoryUser {
            id,
            email: format!("u{id}@x.com"),
            display_name: format!("U{id}"),
            tenant_user_id: link.map(Into::into),
            want_bound: true,
            ..Default::default()
        }
    }

    fn create(d: &DirectoryUser) -> Op {
        Op {
            kind: OpKind::Create,
            directory_id: d.id,
            email: d.email.clone(),
            display_name: d.display_name.clone(),
            upn: d.email.clone(),
            tenant_user_id: None,
            reason: String::new(),
            changes: Vec::new(),
            manager_id: None,
            licences: None,
            deprovision: Default::default(),
        }
    }

    struct Case {
        users: Vec<DirectoryUser>,
        defaults: LicenceDefaults,
        applied: HashMap<i64, Vec<AppliedLicence>>,
        accounts: HashMap<String, UserLicences>,
        live: Vec<User>,
        policy: Policy,
    }

    impl Case {
        fn new(users: Vec<DirectoryUser>) -> Case {
            Case {
                users,
                defaults: LicenceDefaults::default(),
                applied: HashMap::new(),
                accounts: HashMap::new(),
                live: Vec::new(),
                policy: Policy {
                    usage_location: Some("US".into()),
                    ..Default::default()
                },
            }
        }
        fn give(&mut self, owner: LicenceOwner, pick: &str) {
            let p = LicencePick::parse(pick).unwrap();
            match owner {
                LicenceOwner::User(id) => self.defaults.users.entry(id).or_default().push(p),
                LicenceOwner::Group(id) => self.defaults.groups.entry(id).or_default().push(p),
            }
        }
        fn run(&self) -> (Plan, Vec<(Op, Issue)>, Vec<Issue>) {
            let live: HashMap<&str, &User> = self.live.iter().map(|u| (u.id.as_str(), u)).collect();
            let mut plan = Plan {
                ops: self
                    .users
                    .iter()
                    .filter(|u| u.tenant_user_id.is_none())
                    .map(create)
                    .collect(),
                ..Default::default()
            };
            let mut held = Vec::new();
            let skus = skus();
            let issues = plan_licences(
                &Inputs {
                    users: &self.users,
                    groups: &[],
                    policy: &self.policy,
                    defaults: &self.defaults,
                    applied: &self.applied,
                    skus: &skus,
                    accounts: &self.accounts,
                    live: &live,
                },
                &mut plan,
                &mut held,
            );
            (plan, held, issues)
        }
    }

    fn kinds(i: &[Issue]) -> Vec<&str> {
        i.iter().map(|i| i.kind.as_str()).collect()
    }

    #[test]
    fn seats_past_the_free_ones_are_held_back_with_the_numbers() {
        let mut c = Case::new((1..=3).map(|i| user(i, None)).collect());
        for i in 1..=3 {
            c.give(LicenceOwner::User(i), "SPE_E3");
        }
        let (plan, held, issues) = c.run();
        // 2 free: users 1 and 2 are created and licensed, user 3 waits (create and licence).
        let sent: Vec<(OpKind, i64)> = plan.ops.iter().map(|o| (o.kind, o.directory_id)).collect();
        assert_eq!(
            sent,
            vec![
                (OpKind::Create, 1),
                (OpKind::Create, 2),
                (OpKind::AssignLicense, 1),
                (OpKind::AssignLicense, 2)
            ]
        );
        let h: Vec<(OpKind, i64)> = held.iter().map(|(o, _)| (o.kind, o.directory_id)).collect();
        assert_eq!(h, vec![(OpKind::Create, 3), (OpKind::AssignLicense, 3)]);
        assert_eq!(kinds(&issues), vec!["licence-no-seats"]);
        assert!(
            issues[0].message.contains("needs 3 SPE_E3, 2 free"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn every_licence_finding_from_the_sku_data() {
        let mut c = Case::new((1..=5).map(|i| user(i, None)).collect());
        c.give(LicenceOwner::User(1), "NOPE");
        c.give(LicenceOwner::User(2), "AAD_TENANT");
        c.give(LicenceOwner::User(3), "SPE_E3");
        c.give(LicenceOwner::User(3), "EXCHANGESTANDARD");
        c.give(LicenceOwner::User(4), "SPE_E3,-NO_SUCH_PLAN");
        c.give(LicenceOwner::User(5), "SPE_E3");
        c.users[4]
            .attributes
            .insert("usageLocation".into(), "XX".into());
        let (plan, held, issues) = c.run();
        assert!(plan.ops.is_empty(), "{:?}", plan.ops);
        assert_eq!(held.len(), 10, "each create waits with its licence");
        assert_eq!(
            kinds(&issues),
            vec![
                "licence-sku-unknown",
                "licence-sku-not-assignable",
                "licence-plan-conflict",
                "licence-sku-unknown",
                "licence-usage-location"
            ]
        );
        assert!(
            issues[2].message.contains("EXCHANGE_S_ENTERPRISE"),
            "{}",
            issues[2].message
        );
        // Turning E3's mailbox plan off resolves the conflict.
        let mut c2 = Case::new(vec![user(3, None)]);
        c2.give(LicenceOwner::User(3), "SPE_E3,-EXCHANGE_S_ENTERPRISE");
        c2.give(LicenceOwner::User(3), "EXCHANGESTANDARD");
        let (plan, _, issues) = c2.run();
        assert!(issues.is_empty(), "{issues:?}");
        let d = plan.ops[1].licences.as_ref().unwrap();
        assert_eq!(d.add.len(), 2);
        assert_eq!(d.add[1].disabled_plans, vec!["x1"]);
        // No usage location at all: held.
        let mut c3 = Case::new(vec![user(1, None)]);
        c3.policy.usage_location = None;
        c3.give(LicenceOwner::User(1), "SPE_E3");
        assert_eq!(kinds(&c3.run().2), vec!["licence-usage-location"]);
    }

    #[test]
    fn a_plan_switched_off_that_another_plan_needs_is_held_back() {
        // Bookings (enabled in E3) needs an Exchange mailbox plan; `-EXCHANGE_S_ENTERPRISE`
        // turns E3's off and nothing else brings one.
        let mut c = Case::new(vec![user(1, None)]);
        c.give(LicenceOwner::User(1), "SPE_E3,-EXCHANGE_S_ENTERPRISE");
        let (plan, held, issues) = c.run();
        assert!(plan.ops.is_empty(), "{:?}", plan.ops);
        assert_eq!(held.len(), 2, "the create waits with its licence");
        assert_eq!(kinds(&issues), vec!["licence-plan-dependency"]);
        assert_eq!(issues[0].value, "MICROSOFTBOOKINGS, EXCHANGE_S_ENTERPRISE");
        assert_eq!(
            issues[0].message,
            "u1@x.com would hold MICROSOFTBOOKINGS (from SPE_E3) without EXCHANGE_S_ENTERPRISE, \
             which SPE_E3's disabled plans turn off: MICROSOFTBOOKINGS depends on it, and \
             Microsoft 365 refuses the licence. Enable EXCHANGE_S_ENTERPRISE (drop \
             `-EXCHANGE_S_ENTERPRISE`), or turn MICROSOFTBOOKINGS off too (`--sku \
             SPE_E3,-EXCHANGE_S_ENTERPRISE,-MICROSOFTBOOKINGS`)."
        );
        // Turning the dependent plan off too, or another plan that is not needed, is fine.
        for ok in [
            "SPE_E3,-EXCHANGE_S_ENTERPRISE,-MICROSOFTBOOKINGS",
            "SPE_E3,-TEAMS1",
        ] {
            let mut c = Case::new(vec![user(1, None)]);
            c.give(LicenceOwner::User(1), ok);
            let (plan, _, issues) = c.run();
            assert!(issues.is_empty(), "{ok}: {issues:?}");
            assert_eq!(plan.ops.len(), 2, "{ok}");
        }
    }

    #[test]
    fn a_bound_account_gets_the_diff_and_group_licences_stay() {
        let mut c = Case::new(vec![user(1, Some("t1"))]);
        c.live.push(User {
            id: "t1".into(),
            user_principal_name: "u1@x.com".into(),
            account_enabled: Some(true),
            ..Default::default()
        });
        c.give(LicenceOwner::User(1), "SPE_E3,-TEAMS1");
        // m365sync gave EXCHANGESTANDARD before (now unassigned) and AAD_TENANT, which a group
        // in Microsoft 365 also gives.
        c.applied.insert(
            1,
            vec![
                AppliedLicence {
                    sku_id: "exo".into(),
                    sku: "EXCHANGESTANDARD".into(),
                },
                AppliedLicence {
                    sku_id: "co".into(),
                    sku: "AAD_TENANT".into(),
                },
            ],
        );
        c.accounts.insert(
            "t1".into(),
            UserLicences {
                assigned_licenses: vec![
                    AssignedLicense {
                        sku_id: "e3".into(),
                        disabled_plans: vec![],
                    },
                    AssignedLicense {
                        sku_id: "exo".into(),
                        disabled_plans: vec![],
                    },
                    AssignedLicense {
                        sku_id: "co".into(),
                        disabled_plans: vec![],
                    },
                ],
                license_assignment_states: vec![
                    LicenceState {
                        sku_id: "e3".into(),
                        ..Default::default()
                    },
                    LicenceState {
                        sku_id: "exo".into(),
                        ..Default::default()
                    },
                    LicenceState {
                        sku_id: "co".into(),
                        assigned_by_group: Some("g9".into()),
                        ..Default::default()
                    },
                ],
            },
        );
        let (plan, held, issues) = c.run();
        assert!(held.is_empty());
        assert_eq!(plan.ops.len(), 1);
        let op = &plan.ops[0];
        assert_eq!(
            op.reason,
            "licences: +SPE_E3 (off: TEAMS1) -EXCHANGESTANDARD"
        );
        assert_eq!(op.tenant_user_id.as_deref(), Some("t1"));
        assert_eq!(kinds(&issues), vec!["licence-from-group"]);
        assert_eq!(issues[0].severity, Severity::Warning);
        assert!(issues[0].message.contains("g9"));
        // In step: nothing to do.
        c.give(LicenceOwner::User(1), "EXCHANGESTANDARD");
        c.defaults.users.get_mut(&1).unwrap()[0]
            .disabled_plans
            .clear();
        c.applied.get_mut(&1).unwrap().pop();
        let (plan, _, _) = c.run();
        assert!(plan.ops.is_empty(), "{:?}", plan.ops);
    }
}
