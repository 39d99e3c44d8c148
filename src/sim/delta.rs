//! `GET /users/delta` (= `/users/microsoft.graph.delta`, graph-notes §7 and §18): change tracking
//! of users with state tokens, written from the notes and Microsoft's delta pages, not from the
//! client's code.
//!
//! A round is one or more pages: `@odata.nextLink` (`$skiptoken=`) pages, then one page with
//! `@odata.deltaLink` (`$deltatoken=`), even when its `value` is empty; a page never has both.
//! The query options of the first request (`$select`, and `$filter` by `id eq '…'` OR-ed, at
//! most 50) are encoded in the tokens, so the links carry nothing else; options added to a
//! link later are ignored.
//!
//! - Initial round (no token): the users that exist now, by id, `delta_page_size` a page
//!   (default 200, the page size seen on users/delta, microsoft-graph-docs #5363/#5566).
//!   Each with its selected properties (default: the §1 default set), `id` last; properties
//!   never set (null, empty collection) are omitted (the "Conf Room Adams" item of
//!   delta-query-users.md).
//! - Later rounds (a `$deltatoken`): one item per user changed since the token, in the order of
//!   their last change: created or restored = the whole object, no annotation; updated = the
//!   selected properties (changed ones with the new value, null included; unchanged ones with
//!   their value; never-set ones omitted), or with `Prefer: return=minimal` only the changed
//!   selected properties plus `id`; soft-deleted = `{"id", "@removed": {"reason":
//!   "changed"}}`; purged = `{"reason": "deleted"}`. Only selected properties are tracked: a
//!   user whose change touched nothing selected does not appear.
//! - `$deltatoken=latest`: no data, only a deltaLink from now ("sync from now").
//! - `$top` is ignored (graph-notes §18); `$orderby`, `$expand` and `$search` are refused.
//!
//! Tokens are self-contained (no server-side cursor): base64url of a small JSON payload and a
//! checksum. They expire after `delta_token_ttl` (default 7 days, graph-notes §18), and a token
//! older than what the tenant's change log still holds (the log keeps at most `delta_log_cap`
//! changes and none older than the TTL) is expired too; both answer `400 syncStateNotFound`
//! with the message of the Microsoft 365 Dev blog (graph-notes §18). A token of another
//! simulator run is expired the same way (its change log is gone), so a client that kept one
//! falls back to a full sync. A token that does not decode, or whose checksum fails, is
//! refused with a 400 that says so (Graph's own answer to a garbage token is UNVERIFIED).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::filter::{self, Filter, Lit};
use super::graph::{parse_select, projection, GCtx, Query};
use super::state::State;
use super::tenant::{Prop, Tenant, User, DEFAULT_PROPS};
use super::util::{self, hv};

/// Default of `SimOptions::delta_token_ttl`: 7 days (graph-notes §18).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default of `SimOptions::delta_page_size`.
pub const DEFAULT_PAGE_SIZE: usize = 200;
/// Default of `SimOptions::delta_log_cap`.
pub const DEFAULT_LOG_CAP: usize = 100_000;
/// Ids a delta `$filter` may name (graph-notes §7).
pub const MAX_FILTER_IDS: usize = 50;

pub const SYNC_STATE_NOT_FOUND: &str =
    "The sync state generation is not found. The delta token is expired and data must be synchronized again.";

/// What happened to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Created,
    /// The properties that changed (bits of [`Prop::bit`]).
    Updated(u128),
    SoftDeleted,
    Restored,
    Purged,
    /// The manager changed; the one before.
    Manager(Option<String>),
}

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    at: Instant,
    id: String,
    what: What,
}

/// The tenant's change log: what a delta round replays. Bounded by a count and by age.
#[derive(Debug)]
pub struct ChangeLog {
    entries: VecDeque<Entry>,
    /// The last sequence number given out (the tenant's current generation).
    seq: u64,
    /// Changes up to this sequence number were dropped: a token older than it is expired.
    floor: u64,
    cap: usize,
    ttl: Duration,
}

impl Default for ChangeLog {
    fn default() -> Self {
        ChangeLog::new(DEFAULT_LOG_CAP, DEFAULT_TOKEN_TTL)
    }
}

impl ChangeLog {
    pub fn new(cap: usize, ttl: Duration) -> ChangeLog {
        ChangeLog {
            entries: VecDeque::new(),
            seq: 0,
            floor: 0,
            cap: cap.max(1),
            ttl,
        }
    }

    /// The current generation: a token at it has seen every change so far.
    pub fn generation(&self) -> u64 {
        self.seq
    }

    /// Records a change; drops what is past the cap or older than the token lifetime.
    pub fn record(&mut self, id: &str, what: What) {
        if matches!(what, What::Updated(0)) {
            return;
        }
        self.seq += 1;
        let now = Instant::now();
        self.entries.push_back(Entry {
            seq: self.seq,
            at: now,
            id: id.to_owned(),
            what,
        });
        while self.entries.len() > self.cap
            || self
                .entries
                .front()
                .is_some_and(|e| now.duration_since(e.at) > self.ttl)
        {
            if let Some(e) = self.entries.pop_front() {
                self.floor = e.seq;
            }
        }
    }

    /// Can a round start from `gen`? False when changes after it were dropped.
    fn holds_since(&self, gen: u64) -> bool {
        gen >= self.floor && gen <= self.seq
    }

    /// The users changed in `(from, to]`, one item each, in the order of their last change;
    /// `tracked` = the bits of the selected properties, `manager` = is it selected; `ids`
    /// (lower-case) narrows to them.
    fn changed(
        &self,
        from: u64,
        to: u64,
        tracked: u128,
        manager: bool,
        ids: &[String],
    ) -> Vec<Agg> {
        let start = self.entries.partition_point(|e| e.seq <= from);
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut out: Vec<Agg> = Vec::new();
        for e in self.entries.range(start..) {
            if e.seq > to {
                break;
            }
            let key = e.id.to_ascii_lowercase();
            if !ids.is_empty() && !ids.contains(&key) {
                continue;
            }
            let i = *by_id.entry(key).or_insert_with(|| {
                out.push(Agg {
                    id: e.id.clone(),
                    bits: 0,
                    whole: false,
                    removed: false,
                    manager_before: None,
                    last: 0,
                });
                out.len() - 1
            });
            let a = &mut out[i];
            a.last = e.seq;
            match e.what {
                What::Created | What::Restored => a.whole = true,
                What::Updated(b) => a.bits |= b,
                What::SoftDeleted | What::Purged => a.removed = true,
                What::Manager(ref old) => {
                    if a.manager_before.is_none() {
                        a.manager_before = Some(old.clone());
                    }
                }
            }
        }
        out.retain(|a| {
            a.whole || a.removed || a.bits & tracked != 0 || (manager && a.manager_before.is_some())
        });
        out.sort_by_key(|a| a.last);
        out
    }
}

/// One user's changes within a round.
#[derive(Debug)]
struct Agg {
    id: String,
    bits: u128,
    /// Created or restored in the round: the whole object.
    whole: bool,
    /// Soft-deleted or purged at some point in the round.
    removed: bool,
    /// The manager changed in the round: the one it had before.
    manager_before: Option<Option<String>>,
    last: u64,
}

/// The state a token carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tok {
    /// The simulator run that issued it.
    i: u64,
    /// 0 = deltaLink, 1 = a page of the initial round, 2 = a page of a change round.
    k: u8,
    /// Issued, in ms since the simulator started.
    t: u64,
    /// deltaLink: the generation it has seen; initial page: the generation the round started
    /// at; change page: the generation the round ends at.
    g: u64,
    /// Change page: the generation the round started from.
    #[serde(default, skip_serializing_if = "is_zero")]
    f: u64,
    /// Change page: how many items were already sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    p: u64,
    /// Initial page: the last id sent (lower-case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<String>,
    /// `$select` (None = the default set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<Vec<String>>,
    /// `$filter` ids (lower-case; empty = every user).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ids: Vec<String>,
    /// `manager` was selected (`manager@delta`).
    #[serde(default, skip_serializing_if = "is_false")]
    m: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// FNV-1a 64 over the payload, salted: catches altered and truncated tokens.
fn checksum(payload: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"m365sync-sim-delta".iter().chain(payload) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn encode(tok: &Tok) -> String {
    let mut bytes = serde_json::to_vec(tok).unwrap_or_default();
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    util::b64url(&bytes)
}

fn decode(s: &str) -> Option<Tok> {
    let bytes = util::b64url_decode(s.trim())?;
    if bytes.len() < 9 {
        return None;
    }
    let (payload, sum) = bytes.split_at(bytes.len() - 8);
    if checksum(payload).to_le_bytes() != sum {
        return None;
    }
    serde_json::from_slice(payload).ok()
}

/// Per-simulator delta settings (from `SimOptions`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub ttl: Duration,
    pub page_size: usize,
    /// Random per run: tokens of another run are not ours.
    pub instance: u64,
    pub started: Instant,
}

impl Settings {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// The path segment after `/users/` that names the delta function, if `seg` is one.
pub fn is_delta_segment(seg: &str) -> bool {
    let s = seg.strip_suffix("()").unwrap_or(seg);
    s.eq_ignore_ascii_case("delta") || s.eq_ignore_ascii_case("microsoft.graph.delta")
}

fn malformed(g: &GCtx, which: &str) -> Response {
    // UNVERIFIED: Graph's answer to a token it never issued is not documented; this says what
    // is wrong and what to do.
    g.bad_request(
        "Request_BadRequest",
        &format!(
            "The {which} value is malformed: it was not issued by this service or was altered. \
             Follow the nextLink or deltaLink exactly as returned, or start a new round with GET /users/delta."
        ),
    )
}

fn expired(g: &GCtx) -> Response {
    g.bad_request("syncStateNotFound", SYNC_STATE_NOT_FOUND)
}

/// The selected properties without `id` (always sent, last), as names for the token.
fn select_names(props: &Option<Vec<Prop>>) -> Option<Vec<String>> {
    props
        .as_ref()
        .map(|v| v.iter().map(|p| p.name().to_owned()).collect())
}

fn props_of(names: &Option<Vec<String>>) -> Vec<Prop> {
    let mut out: Vec<Prop> = match names {
        None => DEFAULT_PROPS.to_vec(),
        Some(n) => n.iter().filter_map(|s| Prop::parse(s)).collect(),
    };
    out.retain(|p| *p != Prop::Id);
    out
}

/// The ids of a delta `$filter`: `id eq '…'` clauses joined by `or`, at most 50.
fn filter_ids(g: &GCtx, q: &Query) -> Result<Vec<String>, Box<Response>> {
    let Some(raw) = q.get("filter").filter(|f| !f.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let unsupported = |prop: &str| {
        Box::new(g.bad_request(
            "Request_UnsupportedQuery",
            &format!(
                "Unsupported or invalid query filter clause specified for property '{prop}' of resource 'User'."
            ),
        ))
    };
    let f = match filter::parse(raw) {
        Ok(f) => f,
        Err(filter::FilterError::Syntax(msg)) => {
            return Err(Box::new(g.bad_request(
                "BadRequest",
                &format!("Invalid filter clause: {msg}"),
            )))
        }
        Err(filter::FilterError::UnknownProperty(p)) => {
            return Err(Box::new(g.bad_request(
                "BadRequest",
                &format!("Could not find a property named '{p}' on type 'microsoft.graph.user'."),
            )))
        }
        Err(filter::FilterError::Unsupported(p)) => return Err(unsupported(&p)),
        Err(filter::FilterError::TooDeep) => return Err(unsupported("id")),
    };
    let clauses: Vec<&Filter> = match &f {
        Filter::Or(all) => all.iter().collect(),
        one => vec![one],
    };
    let mut ids = Vec::new();
    for c in clauses {
        match c {
            Filter::Cmp {
                prop: Prop::Id,
                negate: false,
                value: Lit::Str(v),
            } => {
                let v = v.to_ascii_lowercase();
                if !ids.contains(&v) {
                    ids.push(v);
                }
            }
            Filter::Cmp { prop, .. }
            | Filter::StartsWith(prop, _)
            | Filter::EndsWith(prop, _)
            | Filter::In(prop, _) => return Err(unsupported(prop.name())),
            Filter::AnyProxy { .. } => return Err(unsupported("proxyAddresses")),
            _ => return Err(unsupported("id")),
        }
    }
    if ids.len() > MAX_FILTER_IDS {
        // UNVERIFIED text: the directory's wording for its 15-clause limit (graph.rs), with the
        // 50 ids the delta pages allow.
        return Err(Box::new(g.bad_request(
            "Request_UnsupportedQuery",
            &format!(
                "Too many child clauses specified in search filter expression containing 'OR' operators: {}. Max allowed: {MAX_FILTER_IDS}",
                ids.len()
            ),
        )));
    }
    Ok(ids)
}

/// Is the user's value of `p` "never set" (null or an empty collection)?
fn is_unset(u: &User, p: Prop) -> bool {
    let mut b = Vec::with_capacity(16);
    super::tenant::write_value(&mut b, u, p);
    b == b"null" || b == b"[]"
}

/// `"manager@delta"` (graph-notes §17: `$select=manager` on users/delta): the manager as a
/// one-item list, or the one removed with `@removed`. UNVERIFIED: the shape of a removal (the
/// `members@delta` form of groups is used).
fn manager_delta(now: Option<&str>, before: Option<&Option<String>>) -> Option<Vec<u8>> {
    let one = |id: &str, removed: bool| {
        let mut v = br##"[{"@odata.type":"#microsoft.graph.user","id":"##.to_vec();
        let _ = serde_json::to_writer(&mut v, id);
        if removed {
            v.extend_from_slice(br#","@removed":{"reason":"deleted"}"#);
        }
        v.extend_from_slice(b"}]");
        v
    };
    match (now, before) {
        (Some(m), _) => Some(one(m, false)),
        (None, Some(Some(old))) => Some(one(old, true)),
        (None, Some(None)) => Some(b"[]".to_vec()),
        (None, None) => None,
    }
}

/// Writes `"name":value` pairs of `props` for which `keep` says so, then `"id"`, then
/// `manager@delta` when given.
fn write_item(
    out: &mut Vec<u8>,
    u: &User,
    props: &[Prop],
    keep: impl Fn(Prop) -> bool,
    manager: Option<Vec<u8>>,
) {
    out.push(b'{');
    for p in props {
        if !keep(*p) {
            continue;
        }
        let _ = serde_json::to_writer(&mut *out, p.name());
        out.push(b':');
        super::tenant::write_value(out, u, *p);
        out.push(b',');
    }
    out.extend_from_slice(b"\"id\":");
    let _ = serde_json::to_writer(&mut *out, &u.id);
    if let Some(m) = manager {
        out.extend_from_slice(b",\"manager@delta\":");
        out.extend_from_slice(&m);
    }
    out.push(b'}');
}

fn write_removed(out: &mut Vec<u8>, id: &str, reason: &str) {
    out.extend_from_slice(b"{\"id\":");
    let _ = serde_json::to_writer(&mut *out, id);
    out.extend_from_slice(b",\"@removed\":{\"reason\":\"");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\"}}");
}

fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
        })
    })
}

/// A page: context, one link, the items.
fn page(
    g: &GCtx,
    context_props: &Option<Vec<Prop>>,
    link: (&str, String),
    items: &[u8],
) -> Response {
    let mut out = Vec::with_capacity(items.len() + 512);
    out.extend_from_slice(b"{\"@odata.context\":");
    let ctx = format!(
        "{}/v1.0/$metadata#users{}",
        g.base,
        projection(context_props)
    );
    let _ = serde_json::to_writer(&mut out, &ctx);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(link.0.as_bytes());
    out.extend_from_slice(b"\":");
    let _ = serde_json::to_writer(&mut out, &link.1);
    out.extend_from_slice(b",\"value\":[");
    out.extend_from_slice(items);
    out.extend_from_slice(b"]}");
    let mut resp = g.raw(StatusCode::OK, out);
    resp.headers_mut()
        .insert("Preference-Applied", hv("odata.track-changes"));
    resp
}

/// `GET /users/{delta}`: `func` is the segment as the client wrote it (links keep it).
pub fn handle(st: &State, g: &GCtx, headers: &HeaderMap, q: &Query, func: &str) -> Response {
    let set = &st.delta;
    // UNVERIFIED texts for the refused options: Microsoft lists them as not supported on
    // users/delta (graph-notes §18) without an error body; $orderby uses the directory's
    // sorting refusal.
    if q.get("orderby").is_some() {
        return g.bad_request(
            "Request_UnsupportedQuery",
            "Sorting not supported for current query.",
        );
    }
    for opt in ["expand", "search"] {
        if q.get(opt).is_some() {
            return g.bad_request(
                "Request_UnsupportedQuery",
                &format!("The query parameter '${opt}' is not supported with delta queries."),
            );
        }
    }
    let link =
        |kind: &str, tok: &Tok| format!("{}/v1.0/users/{func}?${kind}={}", g.base, encode(tok));
    let t = st.tenant();
    let gen = t.changes.generation();
    let now = set.now_ms();
    let fresh = |tok: &Tok| {
        let age = Duration::from_millis(now.saturating_sub(tok.t));
        tok.i == set.instance && tok.g <= gen && age <= set.ttl
    };

    if let Some(raw) = q.get("skiptoken") {
        let Some(tok) = decode(raw).filter(|t| t.k == 1 || t.k == 2) else {
            return malformed(g, "$skiptoken");
        };
        if !fresh(&tok) {
            return expired(g);
        }
        return if tok.k == 1 {
            initial_page(&t, g, set, tok, &None, &link)
        } else {
            if !t.changes.holds_since(tok.f) {
                return expired(g);
            }
            change_page(&t, g, set, tok, prefers_minimal(headers), &link)
        };
    }
    if let Some(raw) = q.get("deltatoken") {
        if !raw.trim().eq_ignore_ascii_case("latest") {
            let Some(tok) = decode(raw).filter(|t| t.k == 0) else {
                return malformed(g, "$deltatoken");
            };
            if !fresh(&tok) {
                return expired(g);
            }
            if !t.changes.holds_since(tok.g) {
                return expired(g);
            }
            let round = Tok {
                k: 2,
                t: now,
                f: tok.g,
                g: gen,
                p: 0,
                ..tok
            };
            return change_page(&t, g, set, round, prefers_minimal(headers), &link);
        }
    }
    // A first request: its options go into the tokens. `manager` is a navigation property
    // delta may select (graph-notes §17); the others are properties.
    let mut manager = false;
    let props = match q.get("select").filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(sel) => {
            let rest: Vec<&str> = sel
                .split(',')
                .map(str::trim)
                .filter(|p| {
                    let m = p.eq_ignore_ascii_case("manager");
                    manager |= m;
                    !m && !p.is_empty()
                })
                .collect();
            match parse_select(g, &rest.join(",")) {
                Ok(p) => Some(p),
                Err(r) => return *r,
            }
        }
    };
    let ids = match filter_ids(g, q) {
        Ok(ids) => ids,
        Err(r) => return *r,
    };
    let tok = Tok {
        i: set.instance,
        k: 1,
        t: now,
        g: gen,
        f: 0,
        p: 0,
        a: None,
        s: select_names(&props),
        ids,
        m: manager,
    };
    if q.get("deltatoken").is_some() {
        // `$deltatoken=latest`: from now on, no data.
        let delta = Tok { k: 0, ..tok };
        return page(
            g,
            &props,
            ("@odata.deltaLink", link("deltatoken", &delta)),
            b"",
        );
    }
    initial_page(&t, g, set, tok, &props, &link)
}

/// A page of the initial round: live users by id after `tok.a`.
fn initial_page(
    t: &Tenant,
    g: &GCtx,
    set: &Settings,
    tok: Tok,
    context_props: &Option<Vec<Prop>>,
    link: &dyn Fn(&str, &Tok) -> String,
) -> Response {
    let props = props_of(&tok.s);
    let after = tok.a.clone().unwrap_or_default();
    let started = tok.a.is_some();
    let mut picked: Vec<u32> = Vec::with_capacity(set.page_size);
    let mut more = false;
    if tok.ids.is_empty() {
        let sorted = t.sorted_id();
        let key = |i: u32| t.users[i as usize].id.to_ascii_lowercase();
        let from = if started {
            sorted.partition_point(|&i| key(i) <= after)
        } else {
            0
        };
        let rest = &sorted[from..];
        picked.extend(rest.iter().take(set.page_size));
        more = rest.len() > set.page_size;
    } else {
        let mut ids: Vec<&String> = tok
            .ids
            .iter()
            .filter(|id| !started || **id > after)
            .collect();
        ids.sort();
        for id in ids {
            if let Some(&i) = t.by_id.get(id.as_str()) {
                if picked.len() == set.page_size {
                    more = true;
                    break;
                }
                picked.push(i);
            }
        }
    }
    let mut items = Vec::with_capacity(picked.len() * 256);
    for (n, &i) in picked.iter().enumerate() {
        if n > 0 {
            items.push(b',');
        }
        let u = &t.users[i as usize];
        let m = tok
            .m
            .then(|| manager_delta(u.ext.get().manager.as_deref(), None))
            .flatten();
        write_item(&mut items, u, &props, |p| !is_unset(u, p), m);
    }
    let next = if more {
        let last = picked
            .last()
            .map(|&i| t.users[i as usize].id.to_ascii_lowercase());
        let tok = Tok {
            k: 1,
            t: set.now_ms(),
            a: last,
            ..tok
        };
        ("@odata.nextLink", link("skiptoken", &tok))
    } else {
        let tok = Tok {
            k: 0,
            t: set.now_ms(),
            a: None,
            ..tok
        };
        ("@odata.deltaLink", link("deltatoken", &tok))
    };
    page(g, context_props, next, &items)
}

/// A page of a change round `(tok.f, tok.g]`, from item `tok.p`.
fn change_page(
    t: &Tenant,
    g: &GCtx,
    set: &Settings,
    tok: Tok,
    minimal: bool,
    link: &dyn Fn(&str, &Tok) -> String,
) -> Response {
    let props = props_of(&tok.s);
    let tracked = props.iter().fold(0u128, |b, p| b | p.bit());
    let all = t.changes.changed(tok.f, tok.g, tracked, tok.m, &tok.ids);
    let start = (tok.p as usize).min(all.len());
    let end = (start + set.page_size).min(all.len());
    let mut items = Vec::with_capacity((end - start) * 256);
    for (n, a) in all[start..end].iter().enumerate() {
        if n > 0 {
            items.push(b',');
        }
        let user = t.user(&a.id).filter(|u| u.id.eq_ignore_ascii_case(&a.id));
        let manager = |u: &User| {
            let now = u.ext.get().manager.as_deref();
            match (tok.m, &a.manager_before) {
                (false, _) => None,
                (true, Some(before)) if !a.whole => manager_delta(now, Some(before)),
                (true, _) if minimal && !a.whole => None,
                (true, _) => manager_delta(now, None),
            }
        };
        match user {
            Some(u) if a.whole => {
                write_item(&mut items, u, &props, |p| !is_unset(u, p), manager(u))
            }
            Some(u) if minimal => {
                write_item(&mut items, u, &props, |p| a.bits & p.bit() != 0, manager(u))
            }
            Some(u) => write_item(
                &mut items,
                u,
                &props,
                |p| a.bits & p.bit() != 0 || !is_unset(u, p),
                manager(u),
            ),
            None if t.deleted.iter().any(|d| d.id.eq_ignore_ascii_case(&a.id)) => {
                write_removed(&mut items, &a.id, "changed")
            }
            None => write_removed(&mut items, &a.id, "deleted"),
        }
    }
    let next = if end < all.len() {
        let tok = Tok {
            k: 2,
            t: set.now_ms(),
            p: end as u64,
            ..tok
        };
        ("@odata.nextLink", link("skiptoken", &tok))
    } else {
        let tok = Tok {
            k: 0,
            t: set.now_ms(),
            f: 0,
            p: 0,
            ..tok
        };
        ("@odata.deltaLink", link("deltatoken", &tok))
    };
    page(g, &None, next, &items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_alterations() {
        let tok = Tok {
            i: 7,
            k: 1,
            t: 12,
            g: 3,
            f: 0,
            p: 0,
            a: Some("abc".into()),
            s: Some(vec!["displayName".into()]),
            ids: vec![],
            m: false,
        };
        let s = encode(&tok);
        let back = decode(&s).unwrap();
        assert_eq!(
            (back.i, back.k, back.g, back.a),
            (7, 1, 3, Some("abc".into()))
        );
        assert!(decode("garbage").is_none());
        assert!(decode("").is_none());
        let mut bytes = util::b64url_decode(&s).unwrap();
        bytes[3] ^= 1;
        assert!(decode(&util::b64url(&bytes)).is_none(), "altered");
        assert!(decode(&s[..s.len() - 4]).is_none(), "truncated");
    }

    #[test]
    fn the_log_is_bounded_and_aggregates_per_user() {
        let mut log = ChangeLog::new(4, Duration::from_secs(60));
        log.record("A", What::Created);
        log.record("b", What::Updated(0b10));
        log.record("a", What::Updated(0b01));
        log.record("b", What::Updated(0)); // no change: not recorded
        assert_eq!(log.generation(), 3);
        let all = log.changed(0, 3, 0b11, false, &[]);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, "b", "ordered by last change");
        assert!(all[1].whole && all[1].bits == 0b01);
        // Untracked changes do not show.
        assert_eq!(log.changed(0, 3, 0b100, false, &[]).len(), 1);
        assert_eq!(log.changed(0, 3, 0b11, false, &["b".into()]).len(), 1);
        log.record("c", What::SoftDeleted);
        log.record("d", What::Purged);
        assert!(log.holds_since(1) && !log.holds_since(0), "the oldest went");
        assert_eq!(log.entries.len(), 4);
    }
}
