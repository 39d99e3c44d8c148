//! Deprovisioning policy (issue 11 item 4): what happens to the account of a user the
//! directory no longer wants bound. Sign-in is always blocked first (today's behaviour); the
//! policy adds steps: sign the user out everywhere (`revokeSignInSessions`), remove the
//! licences m365sync assigned (now or N days after the block), soft-delete the account N
//! days after the block (restorable for 30 days by Microsoft; m365sync never purges).
//!
//! Steps are scheduled when the block is applied and kept in the directory with their due
//! date (`deprovision_steps`); each plan on or after a step's date plans it as an op; a user
//! wanted bound again has its steps cancelled (ignored by the plan, removed once the account
//! is bound again). A bound directory group's policy overrides the directory's for the users
//! unbound because they left or unbound that group.
//!
//! A leaver blocked before its policy was set (or before it changed) gets the policy's steps
//! too, dated from the policy change, never from the old block: setting a policy never makes
//! a grace period already over (a step "at once" is due at once). The directory keeps which
//! policy each leaver's steps come from (`deprovision_leavers`) and when each policy changed.
//!
//! A due step with nothing left to do is closed as done with a note (a 0-write
//! `record-steps` op, audited): a licence removal that finds none of the licences m365sync
//! recorded assigning (removed by hand, or only given by a group), and any step of an account
//! that is no longer in the tenant (deleted by hand or purged; a later restore by hand brings
//! it back without them).
//!
//! Everything here is pure: the plan calls it with the plan's `now` (an injectable clock).
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::directory::{BindingState, DirectoryUser};
use crate::sync::plan::{Op, OpKind};

/// Seconds in a day: due dates are the block's time plus whole days.
pub const DAY: i64 = 86_400;

/// The policy: block, plus optional steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Deprovision {
    /// Sign the user out everywhere right after the block.
    #[serde(default)]
    pub revoke: bool,
    /// Remove the licences m365sync assigned, this many days after the block (0: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlicense_after: Option<u32>,
    /// Soft-delete the account this many days after the block (0: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after: Option<u32>,
}

/// The longest grace period accepted (ten years): a due date must stay representable.
pub const MAX_DAYS: u32 = 3650;

impl Deprovision {
    /// Parses `block`, `block+revoke`, `block+unlicense`, `block+unlicense:30`,
    /// `block+delete:30` and combinations (`block+revoke+unlicense:7+delete:30`); days may be
    /// written `30`, `30d` or `30days`.
    pub fn parse(s: &str) -> Result<Deprovision, String> {
        let mut parts = s.split('+').map(str::trim);
        if !parts
            .next()
            .is_some_and(|p| p.eq_ignore_ascii_case("block"))
        {
            return Err(format!(
                "`{s}`: a deprovisioning policy starts with `block` (block, block+revoke, \
                 block+unlicense[:DAYS], block+delete:DAYS)"
            ));
        }
        let mut p = Deprovision::default();
        for part in parts {
            let (name, days) = match part.split_once(':') {
                Some((n, d)) => (
                    n.trim(),
                    Some(parse_days(d.trim()).map_err(|e| format!("`{s}`: {e}"))?),
                ),
                None => (part, None),
            };
            match name.to_ascii_lowercase().as_str() {
                "revoke" if days.is_none() => p.revoke = true,
                "revoke" => {
                    return Err(format!(
                        "`{s}`: revoke happens with the block; it takes no days"
                    ))
                }
                "unlicense" => p.unlicense_after = Some(days.unwrap_or(0)),
                "delete" => match days {
                    Some(d) => p.delete_after = Some(d),
                    None => {
                        return Err(format!(
                            "`{s}`: say after how many days the account is deleted, e.g. \
                             block+delete:30 (deleted accounts can be restored for 30 days)"
                        ))
                    }
                },
                other => {
                    return Err(format!(
                        "`{s}`: unknown step `{other}` (revoke, unlicense[:DAYS], delete:DAYS)"
                    ))
                }
            }
        }
        Ok(p)
    }

    /// Today's default: block only.
    pub fn is_block_only(&self) -> bool {
        *self == Deprovision::default()
    }

    /// The steps it schedules for an account blocked at `blocked_at` (unix s), in due order.
    /// A licence removal due on or after the delete is left out: deleting frees the seats.
    pub fn schedule(&self, blocked_at: i64) -> Vec<Scheduled> {
        let mut out = Vec::new();
        if self.revoke {
            out.push(Scheduled {
                step: Step::Revoke,
                due: blocked_at,
            });
        }
        if let Some(u) = self.unlicense_after {
            if self.delete_after.is_none_or(|d| u < d) {
                out.push(Scheduled {
                    step: Step::Unlicense,
                    due: blocked_at + i64::from(u) * DAY,
                });
            }
        }
        if let Some(d) = self.delete_after {
            out.push(Scheduled {
                step: Step::Delete,
                due: blocked_at + i64::from(d) * DAY,
            });
        }
        out.sort_by_key(|s| (s.due, s.step));
        out
    }
}

fn parse_days(s: &str) -> Result<u32, String> {
    let digits = s
        .trim_end_matches("days")
        .trim_end_matches("day")
        .trim_end_matches('d')
        .trim();
    let n: u32 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a number of days"))?;
    if n > MAX_DAYS {
        return Err(format!(
            "{n} days is more than the longest grace period, {MAX_DAYS}"
        ));
    }
    Ok(n)
}

impl fmt::Display for Deprovision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "block")?;
        if self.revoke {
            write!(f, "+revoke")?;
        }
        match self.unlicense_after {
            Some(0) => write!(f, "+unlicense")?,
            Some(n) => write!(f, "+unlicense:{n}d")?,
            None => {}
        }
        if let Some(n) = self.delete_after {
            write!(f, "+delete:{n}d")?;
        }
        Ok(())
    }
}

/// A step after the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Revoke,
    Unlicense,
    Delete,
}

impl Step {
    pub const ALL: [Step; 3] = [Step::Revoke, Step::Unlicense, Step::Delete];
    /// As the directory stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Revoke => "revoke",
            Step::Unlicense => "unlicense",
            Step::Delete => "delete",
        }
    }
    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// As the dry run words it: "Ann: licences removed on 12 Jan".
    pub fn done_words(self) -> &'static str {
        match self {
            Step::Revoke => "signed out everywhere",
            Step::Unlicense => "licences removed",
            Step::Delete => "deleted",
        }
    }
}

/// A step and when it is due (unix s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    pub step: Step,
    pub due: i64,
}

/// A step kept in the directory for a blocked account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingStep {
    pub directory_id: i64,
    pub step: Step,
    pub due: i64,
    /// The account the step is for (the one blocked).
    pub tenant_user_id: String,
    /// Where the policy came from: `directory` or `group NAME`.
    pub source: String,
}

/// The policy that applies to a user being unbound, and where it comes from. A policy of a
/// directory group the user is (still) a member of in the directory, or whose linked M365
/// group still holds the account (the user left it), overrides the directory's; of several,
/// the one with the most steps wins (then the first by name).
pub fn policy_for(
    user: &DirectoryUser,
    default: Deprovision,
    groups: &[GroupPolicy],
    tenant_members: &HashMap<String, HashSet<String>>,
) -> (Deprovision, String) {
    let account = user.tenant_user_id.as_deref();
    let mut best: Option<&GroupPolicy> = None;
    for g in groups {
        let member = g.members.contains(&user.id)
            || match (g.tenant_group_id.as_deref(), account) {
                (Some(tg), Some(a)) => tenant_members.get(tg).is_some_and(|m| m.contains(a)),
                _ => false,
            };
        if !member {
            continue;
        }
        let better = match best {
            None => true,
            Some(b) => {
                (weight(&g.policy), std::cmp::Reverse(&g.name))
                    > (weight(&b.policy), std::cmp::Reverse(&b.name))
            }
        };
        if better {
            best = Some(g);
        }
    }
    match best {
        Some(g) => (g.policy, format!("group {}", g.name)),
        None => (default, "directory".into()),
    }
}

/// How far a policy goes: deleting > removing licences > signing out > blocking.
fn weight(p: &Deprovision) -> u8 {
    u8::from(p.delete_after.is_some()) * 4
        + u8::from(p.unlicense_after.is_some()) * 2
        + u8::from(p.revoke)
}

/// A directory group's own policy, with what [`policy_for`] needs of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPolicy {
    pub group_id: i64,
    pub name: String,
    pub tenant_group_id: Option<String>,
    pub members: HashSet<i64>,
    pub policy: Deprovision,
}

/// The policy a leaver's kept steps come from (`deprovision_leavers`): its text (empty for
/// steps kept before m365sync recorded it: taken as the current one) and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaver {
    pub directory_id: i64,
    pub tenant_user_id: String,
    pub policy: String,
    pub source: String,
}

/// The steps a policy set after a leaver's block gives it: they replace its pending ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub tenant_user_id: String,
    pub schedule: Vec<Scheduled>,
    pub source: String,
    pub policy: String,
}

/// The policy that governs a blocked leaver now, its source and when it was set: the source
/// its kept steps came from (the directory's when that group's own policy was cleared, dated
/// from the later of the two changes), else the one [`policy_for`] finds.
fn governing(
    u: &DirectoryUser,
    rec: Option<&Leaver>,
    inp: &Inputs,
) -> (Deprovision, String, Option<i64>) {
    let group_at = |name: &str| inp.group_policy_at.get(name).copied();
    let directory = |also: Option<i64>| {
        (
            inp.default,
            "directory".to_string(),
            inp.policy_at.max(also),
        )
    };
    let from_rec = rec.map(|r| match r.source.strip_prefix("group ") {
        Some(name) => match inp.groups.iter().find(|g| g.name == name) {
            Some(g) => (g.policy, r.source.clone(), group_at(name)),
            None => directory(group_at(name)),
        },
        None => directory(None),
    });
    from_rec.unwrap_or_else(|| {
        let (p, source) = policy_for(u, inp.default, inp.groups, inp.tenant_members);
        let at = match source.strip_prefix("group ") {
            Some(name) => group_at(name),
            None => inp.policy_at,
        };
        (p, source, at)
    })
}

/// Pending steps split by the plan's `now`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split<'a> {
    pub due: Vec<&'a PendingStep>,
    pub later: Vec<&'a PendingStep>,
    /// Of a user the directory wants bound again.
    pub cancelled: Vec<&'a PendingStep>,
    /// Of an account that is not live any more (deleted or purged outside m365sync).
    pub gone: Vec<&'a PendingStep>,
}

/// Splits pending steps by the plan's `now`: due, later, cancelled (the user is wanted bound
/// again) and gone (the account is not live any more: deleted by hand or purged).
pub fn split<'a>(
    pending: &'a [PendingStep],
    wanted: &HashSet<i64, impl std::hash::BuildHasher>,
    live: &HashSet<&str, impl std::hash::BuildHasher>,
    now: i64,
) -> Split<'a> {
    let mut out = Split::default();
    let Split {
        due,
        later,
        cancelled,
        gone,
    } = &mut out;
    for p in pending {
        if wanted.contains(&p.directory_id) {
            cancelled.push(p);
        } else if !live.contains(p.tenant_user_id.as_str()) {
            gone.push(p);
        } else if p.due <= now {
            due.push(p);
        } else {
            later.push(p);
        }
    }
    out
}

/// "12 Jan" (this year) or "12 Jan 2028": how the dry run and the preview date a step.
pub fn date(at: i64, now: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(at) else {
        return at.to_string();
    };
    let this_year = time::OffsetDateTime::from_unix_timestamp(now)
        .map(|n| n.year())
        .unwrap_or(t.year());
    let month = &format!("{:?}", t.month())[..3];
    if t.year() == this_year {
        format!("{} {month}", t.day())
    } else {
        format!("{} {month} {}", t.day(), t.year())
    }
}

/// "Ann Lee: signed out everywhere today, licences removed on 12 Jan, deleted on 11 Feb".
pub fn describe(who: &str, steps: &[Scheduled], now: i64) -> String {
    let parts: Vec<String> = steps
        .iter()
        .map(|s| {
            if s.due <= now {
                format!("{} now", s.step.done_words())
            } else {
                format!("{} on {}", s.step.done_words(), date(s.due, now))
            }
        })
        .collect();
    format!("{who}: {}", parts.join(", "))
}

/// What a user op carries for deprovisioning: on a block, the steps it schedules (kept in the
/// directory once the block succeeds) and where the policy came from; on a licence removal,
/// the SKUs it removes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OpDeprovision {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<Scheduled>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The rest (boxed: most ops have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Box<Recorded>>,
}

/// What an op carries about deprovisioning besides a block's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Recorded {
    /// SKU ids (GUIDs) a licence removal takes away.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licences: Vec<String>,
    /// A block: the policy (as text) its schedule comes from, kept with the leaver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy: String,
    /// A `record-steps` op: the steps a policy set after the block gives the leaver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<Kept>,
    /// A `record-steps` op: due steps closed as done with nothing left to do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed: Vec<Step>,
}

impl OpDeprovision {
    pub fn is_empty(&self) -> bool {
        self.schedule.is_empty() && self.source.is_empty() && self.recorded.is_none()
    }
    /// The SKU ids a licence removal takes away.
    pub fn licences(&self) -> &[String] {
        self.recorded
            .as_ref()
            .map_or(&[], |r| r.licences.as_slice())
    }
    /// The policy a block's schedule comes from.
    pub fn policy(&self) -> &str {
        self.recorded.as_ref().map_or("", |r| r.policy.as_str())
    }
    /// The steps a `record-steps` op keeps for a leaver blocked before its policy.
    pub fn keep(&self) -> Option<&Kept> {
        self.recorded.as_ref().and_then(|r| r.keep.as_ref())
    }
    /// The due steps a `record-steps` op closes.
    pub fn closed(&self) -> &[Step] {
        self.recorded.as_ref().map_or(&[], |r| r.closed.as_slice())
    }
}

/// The licences a deprovisioning removes from an account: what `assignedLicenses` holds
/// directly, never one that only comes from a group (Graph refuses: "User license is
/// inherited from a group membership and it cannot be removed directly from the user.").
///
/// Only the licences m365sync assigned (`ours`: the SKU ids the directory recorded when its
/// assignLicense succeeded) are taken: one the admin gave by hand, or a group, stays.
pub fn licences_to_remove(
    account: &crate::graph::licences::UserLicences,
    ours: &[&str],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in &account.assigned_licenses {
        let sku = l.sku_id.as_str();
        let mine = ours.iter().any(|o| o.eq_ignore_ascii_case(sku));
        if mine && account.direct(sku) && !out.iter().any(|o| o == sku) {
            out.push(sku.to_string());
        }
    }
    out
}

/// What deprovisioning adds to a plan, in words for the dry run and the preview.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Planned {
    /// "Ann Lee: licences removed on 12 Jan, deleted on 11 Feb": steps a block of this plan
    /// schedules, and steps kept from earlier blocks that are not due yet.
    pub scheduled: Vec<String>,
    /// "Ann Lee: bound again; deleted on 11 Feb cancelled".
    pub cancelled: Vec<String>,
}

/// What [`plan_steps`] reads besides the ops.
pub struct Inputs<'a> {
    pub users: &'a [DirectoryUser],
    pub default: Deprovision,
    pub groups: &'a [GroupPolicy],
    /// Members of the M365 groups bound groups are linked to (account ids by group id).
    pub tenant_members: &'a HashMap<String, HashSet<String>>,
    pub pending: &'a [PendingStep],
    /// Live accounts: object id -> UPN.
    pub live: &'a HashMap<&'a str, &'a str>,
    /// SKUs a licence removal would take from each account ([`licences_to_remove`]), read
    /// for the leavers m365sync recorded assigning licences to (`licensed`).
    pub licences: &'a HashMap<String, Vec<String>>,
    /// Directory users m365sync recorded assigning a licence to.
    pub licensed: &'a HashSet<i64>,
    /// The policy each leaver's kept steps come from.
    pub leavers: &'a [Leaver],
    /// When the directory's policy last changed (unix s).
    pub policy_at: Option<i64>,
    /// When each group's own policy was last set or cleared (unix s), by group name.
    pub group_policy_at: &'a HashMap<String, i64>,
    pub now: i64,
}

/// Adds deprovisioning to the user ops of a plan: each block of an unbound user carries the
/// steps its policy schedules (kept in the directory once the block succeeds); steps due
/// now (immediate ones, and kept ones whose date has come) become ops after the block.
pub fn plan_steps(ops: &mut Vec<Op>, inp: &Inputs) -> Planned {
    // (Over every directory user: foldhash, and the sets `split` reads only when steps are kept.)
    let by_id: foldhash::HashMap<i64, &DirectoryUser> =
        inp.users.iter().map(|u| (u.id, u)).collect();
    let kept = !inp.pending.is_empty();
    let wanted: foldhash::HashSet<i64> = inp
        .users
        .iter()
        .filter(|u| kept && u.wanted())
        .map(|u| u.id)
        .collect();
    let name = |u: &DirectoryUser| {
        if u.display_name.trim().is_empty() {
            u.email.clone()
        } else {
            u.display_name.clone()
        }
    };
    let mut out = Planned::default();
    let live_ids: foldhash::HashSet<&str> = inp.live.keys().copied().filter(|_| kept).collect();
    let split = split(inp.pending, &wanted, &live_ids, inp.now);
    // What this plan records without a write, per user: steps kept for a leaver blocked
    // before its policy, due steps closed with nothing to do (and why).
    let mut records: Vec<Record> = Vec::new();
    // Due steps: (user, account, step, source), from blocks of this plan, leavers blocked
    // before their policy, and steps kept from earlier blocks.
    let mut due: Vec<(i64, String, Step, String)> = Vec::new();
    let mut base_of: HashMap<i64, Op> = HashMap::new();
    // Blocks of this plan: users unbound now.
    for op in ops.iter_mut() {
        if op.kind != OpKind::Block {
            continue;
        }
        let Some(u) = by_id.get(&op.directory_id) else {
            continue;
        };
        if u.wanted() {
            // A block for an expired password: not a leaver.
            continue;
        }
        let (policy, source) = policy_for(u, inp.default, inp.groups, inp.tenant_members);
        let schedule = policy.schedule(inp.now);
        if schedule.is_empty() {
            continue;
        }
        op.deprovision.schedule = schedule.clone();
        op.deprovision.source = source.clone();
        op.deprovision.recorded = Some(Box::new(Recorded {
            policy: policy.to_string(),
            ..Default::default()
        }));
        op.reason = format!(
            "{}; then, by the policy {policy} ({source}), the steps below",
            op.reason
        );
        out.scheduled.push(describe(&name(u), &schedule, inp.now));
        let account = op.tenant_user_id.clone().unwrap_or_default();
        for s in schedule.iter().filter(|s| s.due <= inp.now) {
            due.push((u.id, account.clone(), s.step, source.clone()));
        }
        base_of.insert(u.id, op.clone());
    }
    // Leavers blocked before the policy that governs them now was set or changed: its
    // steps, dated from the change.
    let leaver_of: HashMap<i64, &Leaver> =
        inp.leavers.iter().map(|l| (l.directory_id, l)).collect();
    let mut redone: HashSet<i64> = HashSet::new();
    // Kept steps by user, read once (not a scan of them all per leaver).
    let mut pending_of: foldhash::HashMap<i64, Vec<&PendingStep>> = Default::default();
    for p in inp.pending {
        pending_of.entry(p.directory_id).or_default().push(p);
    }
    for u in inp.users {
        if u.wanted() || u.binding != BindingState::Blocked || base_of.contains_key(&u.id) {
            continue;
        }
        let Some(t) = u.tenant_user_id.as_deref() else {
            continue;
        };
        if !inp.live.contains_key(t) {
            continue;
        }
        let rec = leaver_of
            .get(&u.id)
            .copied()
            .filter(|l| l.tenant_user_id == t);
        let (policy, source, at) = governing(u, rec, inp);
        let text = policy.to_string();
        match rec {
            Some(r) if r.policy == text || r.policy.is_empty() => continue,
            None if policy.is_block_only() => continue,
            _ => {}
        }
        let since = at.unwrap_or(inp.now);
        let pending: &[&PendingStep] = pending_of.get(&u.id).map_or(&[], Vec::as_slice);
        // Steps of the old policy no longer pending were done: not again.
        let done: Vec<Step> = rec
            .and_then(|r| Deprovision::parse(&r.policy).ok())
            .map(|old| {
                old.schedule(0)
                    .into_iter()
                    .map(|s| s.step)
                    .filter(|s| !pending.iter().any(|p| p.step == *s))
                    .collect()
            })
            .unwrap_or_default();
        let schedule: Vec<Scheduled> = policy
            .schedule(since)
            .into_iter()
            .filter(|s| !done.contains(&s.step))
            .collect();
        redone.insert(u.id);
        for p in pending
            .iter()
            .filter(|p| !schedule.iter().any(|s| s.step == p.step))
        {
            out.cancelled.push(format!(
                "{}: the policy is now {text} ({source}); {} on {} cancelled",
                name(u),
                p.step.done_words(),
                date(p.due, inp.now)
            ));
        }
        if !schedule.is_empty() {
            out.scheduled.push(format!(
                "{} (blocked before the policy {text} ({source}) was set; dated from the \
                 policy change on {})",
                describe(&name(u), &schedule, inp.now),
                date(since, inp.now)
            ));
        }
        for s in schedule.iter().filter(|s| s.due <= inp.now) {
            due.push((u.id, t.to_string(), s.step, source.clone()));
        }
        let r = record(&mut records, u.id, t, &source);
        r.keep = Some(Kept {
            tenant_user_id: t.to_string(),
            schedule,
            source: source.clone(),
            policy: text.clone(),
        });
        r.notes.push(format!(
            "blocked before the deprovisioning policy {text} ({source}) was set on {}: its \
             steps are kept, dated from that change",
            date(since, inp.now)
        ));
    }
    for p in &split.due {
        if !redone.contains(&p.directory_id) {
            due.push((
                p.directory_id,
                p.tenant_user_id.clone(),
                p.step,
                p.source.clone(),
            ));
        }
    }
    // Users whose account is deleted by this plan: their other due steps are moot (a
    // deleted account signs in nowhere and frees its seats); the delete ends them all.
    let deleting: HashSet<i64> = due
        .iter()
        .filter(|d| d.2 == Step::Delete)
        .map(|d| d.0)
        .collect();
    let mut planned: HashSet<(i64, Step)> = HashSet::new();
    let mut step_ops = Vec::new();
    for (id, account, step, source) in due {
        let Some(u) = by_id.get(&id) else {
            continue;
        };
        if step != Step::Delete && deleting.contains(&id) {
            continue;
        }
        if !planned.insert((id, step)) {
            continue;
        }
        let licences = match step {
            Step::Unlicense => inp.licences.get(&account).cloned(),
            _ => Some(Vec::new()),
        };
        if step == Step::Unlicense && licences.as_ref().is_none_or(Vec::is_empty) {
            if inp.licensed.contains(&id) && licences.is_none() {
                // Not read: left for a plan that reads it.
                continue;
            }
            let r = record(&mut records, u.id, &account, &source);
            r.closed.push(step);
            r.notes.push(
                "licences removed: nothing left to remove (the account holds none of the \
                 licences m365sync assigned: removed by hand, or only given by a group), \
                 recorded as done"
                    .into(),
            );
            continue;
        }
        let base = base_of
            .get(&id)
            .cloned()
            .unwrap_or_else(|| account_op(OpKind::Block, u, &account, inp.live));
        step_ops.push(step_op(&base, step, &source, licences.unwrap_or_default()));
    }
    // Steps of accounts no longer in the tenant: nothing left to do.
    for p in &split.gone {
        let Some(u) = by_id.get(&p.directory_id) else {
            continue;
        };
        let r = record(&mut records, u.id, &p.tenant_user_id, &p.source);
        r.closed.push(p.step);
        r.notes.push(format!(
            "{}: the account is no longer in the tenant (deleted or purged outside \
             m365sync), recorded as done",
            p.step.done_words()
        ));
    }
    // Later steps by user, in the order users first appear.
    let mut by_user: Vec<(i64, Vec<Scheduled>)> = Vec::new();
    let mut at_of: foldhash::HashMap<i64, usize> = Default::default();
    for p in split
        .later
        .iter()
        .filter(|p| !redone.contains(&p.directory_id))
    {
        let s = Scheduled {
            step: p.step,
            due: p.due,
        };
        let at = *at_of.entry(p.directory_id).or_insert_with(|| {
            by_user.push((p.directory_id, Vec::new()));
            by_user.len() - 1
        });
        by_user[at].1.push(s);
    }
    for (id, steps) in by_user {
        if let Some(u) = by_id.get(&id) {
            out.scheduled.push(describe(&name(u), &steps, inp.now));
        }
    }
    for p in split.cancelled {
        if let Some(u) = by_id.get(&p.directory_id) {
            out.cancelled.push(format!(
                "{}: wanted bound again; {} on {} cancelled",
                name(u),
                p.step.done_words(),
                date(p.due, inp.now)
            ));
        }
    }
    for r in records {
        let Some(u) = by_id.get(&r.user) else {
            continue;
        };
        ops.push(Op {
            reason: format!("deprovisioning ({}): {}", r.source, r.notes.join("; ")),
            deprovision: OpDeprovision {
                source: r.source,
                recorded: Some(Box::new(Recorded {
                    keep: r.keep,
                    closed: r.closed,
                    ..Default::default()
                })),
                ..Default::default()
            },
            ..account_op(OpKind::RecordSteps, u, &r.tenant_user_id, inp.live)
        });
    }
    ops.extend(step_ops);
    out
}

/// A `kind` op on `u`'s account `account` (named by its UPN when listed), with no reason,
/// changes or steps yet.
fn account_op(kind: OpKind, u: &DirectoryUser, account: &str, live: &HashMap<&str, &str>) -> Op {
    Op {
        kind,
        directory_id: u.id,
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        upn: live
            .get(account)
            .map_or_else(|| u.email.clone(), |s| s.to_string()),
        tenant_user_id: Some(account.to_string()),
        reason: String::new(),
        changes: Vec::new(),
        manager_id: None,
        deprovision: OpDeprovision::default(),
        licences: None,
    }
}

/// The record of `user` in `records` (added when it has none).
fn record<'a>(
    records: &'a mut Vec<Record>,
    user: i64,
    tenant_user_id: &str,
    source: &str,
) -> &'a mut Record {
    let i = match records.iter().position(|r| r.user == user) {
        Some(i) => i,
        None => {
            records.push(Record {
                user,
                tenant_user_id: tenant_user_id.to_string(),
                source: source.to_string(),
                ..Default::default()
            });
            records.len() - 1
        }
    };
    &mut records[i]
}

/// What a plan records for one leaver without a write (a `record-steps` op).
#[derive(Default)]
struct Record {
    user: i64,
    tenant_user_id: String,
    source: String,
    keep: Option<Kept>,
    closed: Vec<Step>,
    notes: Vec<String>,
}

/// The op of a due step, for the account of `base`.
fn step_op(base: &Op, step: Step, source: &str, licences: Vec<String>) -> Op {
    let (kind, what) = match step {
        Step::Revoke => (
            OpKind::RevokeSessions,
            "sign the user out everywhere".to_string(),
        ),
        Step::Unlicense => (
            OpKind::RemoveLicenses,
            format!(
                "remove the licences m365sync assigned ({})",
                crate::format::count(licences.len(), "licence", None)
            ),
        ),
        Step::Delete => (
            OpKind::DeleteUser,
            "delete the account (kept in deleted items, restorable for 30 days; never \
             purged)"
                .to_string(),
        ),
    };
    Op {
        kind,
        reason: format!("deprovisioning policy ({source}): {what}"),
        changes: Vec::new(),
        manager_id: None,
        deprovision: OpDeprovision {
            source: source.to_string(),
            recorded: (!licences.is_empty()).then(|| {
                Box::new(Recorded {
                    licences,
                    ..Default::default()
                })
            }),
            ..Default::default()
        },
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_799_971_200; // 2027-01-15 00:00 UTC

    #[test]
    fn parses_each_choice_and_prints_it_back() {
        for (text, want) in [
            ("block", "block"),
            ("block+revoke", "block+revoke"),
            ("block+unlicense", "block+unlicense"),
            ("block+unlicense:30", "block+unlicense:30d"),
            ("block+unlicense:30d", "block+unlicense:30d"),
            ("Block + Delete:30 days", "block+delete:30d"),
            (
                "block+revoke+unlicense:7+delete:30",
                "block+revoke+unlicense:7d+delete:30d",
            ),
        ] {
            let p = Deprovision::parse(text).unwrap();
            assert_eq!(p.to_string(), want, "{text}");
            assert_eq!(Deprovision::parse(want).unwrap(), p, "{want}");
        }
        for bad in [
            "",
            "revoke",
            "block+delete",
            "block+revoke:3",
            "block+purge:30",
            "block+delete:x",
            "block+delete:4000",
        ] {
            assert!(Deprovision::parse(bad).is_err(), "{bad}");
        }
        assert!(Deprovision::parse("block").unwrap().is_block_only());
    }

    #[test]
    fn schedule_dates_steps_from_the_block() {
        let p = Deprovision::parse("block+revoke+unlicense:7+delete:30").unwrap();
        assert_eq!(
            p.schedule(T0),
            vec![
                Scheduled {
                    step: Step::Revoke,
                    due: T0
                },
                Scheduled {
                    step: Step::Unlicense,
                    due: T0 + 7 * DAY
                },
                Scheduled {
                    step: Step::Delete,
                    due: T0 + 30 * DAY
                },
            ]
        );
        // Removing licences on or after the delete is pointless: the delete frees them.
        let p = Deprovision::parse("block+unlicense:30+delete:30").unwrap();
        assert_eq!(
            p.schedule(T0),
            vec![Scheduled {
                step: Step::Delete,
                due: T0 + 30 * DAY
            }]
        );
        assert!(Deprovision::default().schedule(T0).is_empty());
        let now = Deprovision::parse("block+unlicense").unwrap().schedule(T0);
        assert_eq!(
            now,
            vec![Scheduled {
                step: Step::Unlicense,
                due: T0
            }]
        );
    }

    fn pending(id: i64, step: Step, due: i64, acc: &str) -> PendingStep {
        PendingStep {
            directory_id: id,
            step,
            due,
            tenant_user_id: acc.into(),
            source: "directory".into(),
        }
    }

    #[test]
    fn due_on_the_day_cancelled_when_wanted_again_dropped_when_gone() {
        let rows = vec![
            pending(1, Step::Delete, T0 + 30 * DAY, "a"),
            pending(2, Step::Unlicense, T0 + 7 * DAY, "b"),
            pending(3, Step::Delete, T0, "gone"),
        ];
        let live: HashSet<&str> = ["a", "b"].into();
        let none = HashSet::new();
        // The day before: nothing due.
        let Split {
            due, later, gone, ..
        } = split(&rows, &none, &live, T0 + 7 * DAY - 1);
        assert!(due.is_empty());
        assert_eq!(later.len(), 2);
        // An account no longer live: its steps are gone (closed by the plan).
        assert_eq!(
            gone.iter().map(|p| p.directory_id).collect::<Vec<_>>(),
            vec![3]
        );
        // On the day (to the second): due.
        let Split { due, later, .. } = split(&rows, &none, &live, T0 + 7 * DAY);
        assert_eq!(
            due.iter().map(|p| p.directory_id).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(later.len(), 1);
        // Wanted bound again: cancelled, never due.
        let wanted: HashSet<i64> = [1].into();
        let Split { due, cancelled, .. } = split(&rows, &wanted, &live, T0 + 40 * DAY);
        assert_eq!(
            due.iter().map(|p| p.directory_id).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(cancelled.len(), 1);
    }

    fn user(id: i64, acc: &str) -> DirectoryUser {
        DirectoryUser {
            id,
            email: format!("u{id}@x.com"),
            display_name: format!("U{id}"),
            given_name: None,
            surname: None,
            tenant_user_id: Some(acc.into()),
            binding: crate::directory::BindingState::Bound,
            want_bound: false,
            job_title: None,
            department: None,
            password_set_at: None,
            bound_via: Vec::new(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn a_groups_policy_applies_to_who_left_or_unbound_it() {
        let default = Deprovision::parse("block+revoke").unwrap();
        let groups = vec![
            GroupPolicy {
                group_id: 1,
                name: "Contractors".into(),
                tenant_group_id: Some("g1".into()),
                members: [7].into(),
                policy: Deprovision::parse("block+delete:14").unwrap(),
            },
            GroupPolicy {
                group_id: 2,
                name: "Staff".into(),
                tenant_group_id: Some("g2".into()),
                members: HashSet::new(),
                policy: Deprovision::parse("block+unlicense:30").unwrap(),
            },
        ];
        let mut tenant: HashMap<String, HashSet<String>> = HashMap::new();
        tenant.insert("g2".into(), ["acc8".to_string()].into());
        // Still a member of an (unbound) group in the directory.
        let (p, src) = policy_for(&user(7, "acc7"), default, &groups, &tenant);
        assert_eq!(
            (p.delete_after, src.as_str()),
            (Some(14), "group Contractors")
        );
        // Left the group in the directory; its M365 group still holds the account.
        let (p, src) = policy_for(&user(8, "acc8"), default, &groups, &tenant);
        assert_eq!((p.unlicense_after, src.as_str()), (Some(30), "group Staff"));
        // Neither: the directory's.
        let (p, src) = policy_for(&user(9, "acc9"), default, &groups, &tenant);
        assert_eq!((p, src.as_str()), (default, "directory"));
        // In both: the one going furthest.
        tenant.insert("g2".into(), ["acc7".to_string()].into());
        let (_, src) = policy_for(&user(7, "acc7"), default, &groups, &tenant);
        assert_eq!(src, "group Contractors");
    }

    #[test]
    fn dates_read_like_a_calendar() {
        assert_eq!(date(T0 - 3 * DAY, T0), "12 Jan");
        assert_eq!(date(T0 + 27 * DAY, T0), "11 Feb");
        assert_eq!(date(T0 + 365 * DAY, T0), "15 Jan 2028");
        let s = Deprovision::parse("block+unlicense:7+delete:30")
            .unwrap()
            .schedule(T0 - 3 * DAY);
        assert_eq!(
            describe("Ann", &s, T0 - 3 * DAY),
            "Ann: licences removed on 19 Jan, deleted on 11 Feb"
        );
    }

    #[test]
    fn only_direct_licences_m365sync_assigned_are_removed() {
        let acc: crate::graph::licences::UserLicences = serde_json::from_value(serde_json::json!({
            "assignedLicenses": [
                {"skuId": "e3", "disabledPlans": []},
                {"skuId": "ems", "disabledPlans": []},
                {"skuId": "both", "disabledPlans": []},
                {"skuId": "nostate", "disabledPlans": []}
            ],
            "licenseAssignmentStates": [
                {"skuId": "e3", "assignedByGroup": null, "state": "Active"},
                {"skuId": "ems", "assignedByGroup": "g1", "state": "Active"},
                {"skuId": "both", "assignedByGroup": "g1", "state": "Active"},
                {"skuId": "both", "assignedByGroup": null, "state": "Active"}
            ]
        }))
        .unwrap();
        let all = ["e3", "ems", "both", "nostate"];
        assert_eq!(
            licences_to_remove(&acc, &all),
            vec!["e3", "both", "nostate"],
            "a group's licence stays"
        );
        assert_eq!(
            licences_to_remove(&acc, &["E3"]),
            vec!["e3"],
            "one the admin gave by hand stays"
        );
        assert!(licences_to_remove(&acc, &[]).is_empty());
        assert!(licences_to_remove(&Default::default(), &all).is_empty());
    }

    fn block_op(u: &DirectoryUser) -> Op {
        Op {
            kind: OpKind::Block,
            directory_id: u.id,
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            upn: u.email.clone(),
            tenant_user_id: u.tenant_user_id.clone(),
            reason: "unbind requested".into(),
            changes: Vec::new(),
            manager_id: None,
            deprovision: OpDeprovision::default(),
            licences: None,
        }
    }

    #[test]
    fn plan_steps_schedules_leavers_and_plans_what_is_due() {
        let leaver = user(1, "a1");
        let mut expired = user(2, "a2");
        expired.want_bound = true;
        let kept = user(3, "a3");
        let bare = user(4, "a4");
        let users = vec![leaver.clone(), expired.clone(), kept, bare];
        let mut ops = vec![block_op(&leaver), block_op(&expired)];
        let pending = vec![
            pending(3, Step::Delete, T0 - DAY, "a3"),
            pending(4, Step::Unlicense, T0 - DAY, "a4"),
            pending(3, Step::Unlicense, T0 - 2 * DAY, "a3"),
        ];
        let live: HashMap<&str, &str> = [
            ("a1", "u1@x.com"),
            ("a2", "u2@x.com"),
            ("a3", "upn3@x.com"),
            ("a4", "u4@x.com"),
        ]
        .into();
        let licences: HashMap<String, Vec<String>> =
            [("a3".to_string(), vec!["e3".to_string()])].into();
        let out = plan_steps(
            &mut ops,
            &Inputs {
                users: &users,
                default: Deprovision::parse("block+revoke+delete:30").unwrap(),
                groups: &[],
                tenant_members: &HashMap::new(),
                pending: &pending,
                live: &live,
                licences: &licences,
                licensed: &[3].into(),
                leavers: &[],
                policy_at: None,
                group_policy_at: &HashMap::new(),
                now: T0,
            },
        );
        let got: Vec<(OpKind, i64)> = ops.iter().map(|o| (o.kind, o.directory_id)).collect();
        assert_eq!(
            got,
            vec![
                (OpKind::Block, 1),
                (OpKind::Block, 2),
                // a4 has nothing to remove (m365sync assigned it none): closed as done.
                (OpKind::RecordSteps, 4),
                (OpKind::RevokeSessions, 1),
                // Kept steps whose day has come: a3 is deleted (its licence removal is
                // moot).
                (OpKind::DeleteUser, 3),
            ]
        );
        assert_eq!(ops[2].deprovision.closed(), vec![Step::Unlicense]);
        assert!(ops[2].deprovision.keep().is_none());
        assert!(
            ops[2].reason.contains("nothing left to remove"),
            "{}",
            ops[2].reason
        );
        // The leaver's block carries its schedule; the expired password's block none.
        assert_eq!(
            ops[0].deprovision.schedule,
            Deprovision::parse("block+revoke+delete:30")
                .unwrap()
                .schedule(T0)
        );
        assert!(ops[1].deprovision.schedule.is_empty());
        assert_eq!(ops[4].upn, "upn3@x.com");
        assert_eq!(ops[4].tenant_user_id.as_deref(), Some("a3"));
        // Without the delete, a3's licences go.
        let mut ops = Vec::new();
        plan_steps(
            &mut ops,
            &Inputs {
                users: &users,
                default: Deprovision::default(),
                groups: &[],
                tenant_members: &HashMap::new(),
                pending: &pending[2..],
                live: &live,
                licences: &licences,
                licensed: &[3].into(),
                leavers: &[],
                policy_at: None,
                group_policy_at: &HashMap::new(),
                now: T0,
            },
        );
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].kind, OpKind::RemoveLicenses);
        assert_eq!(ops[0].deprovision.licences(), vec!["e3"]);
        assert_eq!(
            out.scheduled,
            vec!["U1: signed out everywhere now, deleted on 14 Feb"]
        );
    }

    fn blocked(id: i64, acc: &str) -> DirectoryUser {
        DirectoryUser {
            binding: BindingState::Blocked,
            ..user(id, acc)
        }
    }

    fn leaver(id: i64, acc: &str, policy: &str) -> Leaver {
        Leaver {
            directory_id: id,
            tenant_user_id: acc.into(),
            policy: policy.into(),
            source: "directory".into(),
        }
    }

    /// Plans the steps of `users` (blocked before) under the directory policy `policy` set
    /// at `set` (unix s), at T0.
    fn replan(
        users: &[DirectoryUser],
        policy: &str,
        set: i64,
        pending: &[PendingStep],
        leavers: &[Leaver],
        licences: &HashMap<String, Vec<String>>,
    ) -> (Vec<Op>, Planned) {
        let live: HashMap<&str, &str> = [("a1", "u1@x.com"), ("a2", "u2@x.com")].into();
        let mut ops = Vec::new();
        let out = plan_steps(
            &mut ops,
            &Inputs {
                users,
                default: Deprovision::parse(policy).unwrap(),
                groups: &[],
                tenant_members: &HashMap::new(),
                pending,
                live: &live,
                licences,
                licensed: &[1, 2].into(),
                leavers,
                policy_at: Some(set),
                group_policy_at: &HashMap::new(),
                now: T0,
            },
        );
        (ops, out)
    }

    #[test]
    fn leavers_blocked_before_the_policy_get_its_steps_dated_from_the_change() {
        // Set ten days ago: the licences go at once (0 days), the delete 30 days after the
        // change, not after the old block.
        let set = T0 - 10 * DAY;
        let licences: HashMap<String, Vec<String>> =
            [("a1".to_string(), vec!["e3".to_string()])].into();
        let (ops, out) = replan(
            &[blocked(1, "a1")],
            "block+unlicense+delete:30",
            set,
            &[],
            &[],
            &licences,
        );
        let got: Vec<(OpKind, i64)> = ops.iter().map(|o| (o.kind, o.directory_id)).collect();
        assert_eq!(
            got,
            vec![(OpKind::RecordSteps, 1), (OpKind::RemoveLicenses, 1)]
        );
        let keep = ops[0].deprovision.keep().unwrap();
        assert_eq!(
            keep.schedule,
            Deprovision::parse("block+unlicense+delete:30")
                .unwrap()
                .schedule(set)
        );
        assert_eq!(keep.policy, "block+unlicense+delete:30d");
        assert_eq!(ops[1].deprovision.licences(), vec!["e3"]);
        assert_eq!(
            out.scheduled,
            vec![
                "U1: licences removed now, deleted on 4 Feb (blocked before the policy \
                 block+unlicense+delete:30d (directory) was set; dated from the policy \
                 change on 5 Jan)"
            ]
        );
        // A user blocked with block only, still wanted unbound, but bound or unlinked users
        // and block-only policies are left alone.
        let (ops, _) = replan(
            &[user(2, "a2")],
            "block+delete:30",
            set,
            &[],
            &[],
            &licences,
        );
        assert!(ops.is_empty(), "a bound user is no leaver: {ops:?}");
        let (ops, _) = replan(&[blocked(1, "a1")], "block", set, &[], &[], &licences);
        assert!(ops.is_empty(), "{ops:?}");
        // Recorded under the current policy: nothing more.
        let (ops, _) = replan(
            &[blocked(1, "a1")],
            "block+delete:30",
            set,
            &[pending(1, Step::Delete, set + 30 * DAY, "a1")],
            &[leaver(1, "a1", "block+delete:30d")],
            &licences,
        );
        assert!(ops.is_empty(), "{ops:?}");
    }

    #[test]
    fn a_changed_policy_replaces_pending_steps_and_skips_done_ones() {
        let set = T0 - DAY;
        // Blocked under block+revoke+unlicense:7 (revoke done), now block+revoke+delete:60:
        // no second sign-out, the licence removal cancelled, the delete dated from the change.
        let (ops, out) = replan(
            &[blocked(1, "a1")],
            "block+revoke+delete:60",
            set,
            &[pending(1, Step::Unlicense, T0 + 3 * DAY, "a1")],
            &[leaver(1, "a1", "block+revoke+unlicense:7d")],
            &HashMap::new(),
        );
        assert_eq!(ops.len(), 1, "{ops:?}");
        let keep = ops[0].deprovision.keep().unwrap();
        assert_eq!(
            keep.schedule,
            vec![Scheduled {
                step: Step::Delete,
                due: set + 60 * DAY
            }]
        );
        assert_eq!(
            out.cancelled,
            vec![
                "U1: the policy is now block+revoke+delete:60d (directory); licences removed \
                 on 18 Jan cancelled"
            ]
        );
    }

    #[test]
    fn steps_of_an_account_gone_are_closed() {
        let (ops, _) = replan(
            &[blocked(3, "deleted-by-hand")],
            "block+revoke+delete:30",
            T0,
            &[
                pending(3, Step::Unlicense, T0 + DAY, "deleted-by-hand"),
                pending(3, Step::Delete, T0 + 30 * DAY, "deleted-by-hand"),
            ],
            &[leaver(3, "deleted-by-hand", "block+revoke+delete:30d")],
            &HashMap::new(),
        );
        assert_eq!(ops.len(), 1, "{ops:?}");
        assert_eq!(ops[0].kind, OpKind::RecordSteps);
        assert_eq!(
            ops[0].deprovision.closed(),
            vec![Step::Unlicense, Step::Delete]
        );
        assert!(
            ops[0].reason.contains("no longer in the tenant"),
            "{}",
            ops[0].reason
        );
    }

    #[test]
    fn a_groups_policy_cleared_hands_its_leavers_to_the_directorys_from_the_clearing() {
        // Ann's steps came from group Contractors (block+delete:90d). The group's policy is
        // cleared on T0 - DAY; the directory's (block+delete:30, set long ago) governs her
        // now, dated from the clearing, not from the old directory change.
        let users = [blocked(1, "a1")];
        let live: HashMap<&str, &str> = [("a1", "u1@x.com")].into();
        let rec = Leaver {
            source: "group Contractors".into(),
            ..leaver(1, "a1", "block+delete:90d")
        };
        let cleared: HashMap<String, i64> = [("Contractors".to_string(), T0 - DAY)].into();
        let mut ops = Vec::new();
        plan_steps(
            &mut ops,
            &Inputs {
                users: &users,
                default: Deprovision::parse("block+delete:30").unwrap(),
                groups: &[],
                tenant_members: &HashMap::new(),
                pending: &[pending(1, Step::Delete, T0 + 80 * DAY, "a1")],
                live: &live,
                licences: &HashMap::new(),
                licensed: &HashSet::new(),
                leavers: std::slice::from_ref(&rec),
                policy_at: Some(T0 - 300 * DAY),
                group_policy_at: &cleared,
                now: T0,
            },
        );
        assert_eq!(ops.len(), 1, "{ops:?}");
        let keep = ops[0].deprovision.keep().unwrap();
        assert_eq!(keep.source, "directory");
        assert_eq!(
            keep.schedule,
            vec![Scheduled {
                step: Step::Delete,
                due: T0 - DAY + 30 * DAY
            }]
        );
    }
}
