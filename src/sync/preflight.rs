//! Preflight: pure rules run over the directory, the tenant's domains and (when listed) the
//! tenant's live and soft-deleted users before a plan is applied. They catch what Graph would
//! refuse (graph-notes §2-§5, §10): UPN domain and syntax, mailNickname, group names, passwords,
//! duplicates, federated domains. Ops with an issue are held back ([`held_back`]) and never
//! sent. Everything is O(n) with hash maps.
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::directory::DirectoryUser;
use crate::graph::{Domain, User};
use crate::sync::plan::{Op, OpKind, Plan, TenantSnapshot};

/// An error holds the op back; a warning is shown and the op is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

/// One preflight finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// The directory user (or, for group rules, the directory group).
    pub directory_id: i64,
    /// Catalog kind (`assets/errors.toml`).
    pub kind: String,
    /// The property: `userPrincipalName`, `mailNickname`, `email`, `password`, `displayName`.
    pub field: String,
    /// The offending value (for a password: its length, never the password).
    pub value: String,
    /// Plain words, specific to this value.
    pub message: String,
    /// A corrected value to offer (the one-key fix's preview).
    pub suggestion: Option<String>,
    pub severity: Severity,
    /// Who holds a conflicting address ("soft-deleted user x@y", "user x@y").
    pub holder: Option<String>,
}

/// One broken rule of a single value (table-testable without users).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: &'static str,
    pub message: String,
}

fn problem(kind: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        kind,
        message: message.into(),
    }
}

/// Settings of the integration that shape the rules.
#[derive(Debug, Clone, Default)]
pub struct PreflightOptions {
    /// Domains m365sync may provision into (the integration's domain settings); `None` = every
    /// verified domain.
    pub enabled_domains: Option<Vec<String>>,
    /// The integration's default domain, offered as the fix for domain issues.
    pub default_domain: Option<String>,
    /// UPNs that differ from the email (e.g. after "use the default domain"), by directory id.
    pub upn_overrides: HashMap<i64, String>,
    /// Passwords about to be sent (set in the directory, not yet pushed), by directory id. Held
    /// in memory only.
    pub passwords: HashMap<i64, String>,
    /// Directory users that carry an onPremisesImmutableId (federated domains need one).
    pub immutable_ids: HashSet<i64>,
    /// Which attributes are synced (their values are checked).
    pub attributes: crate::sync::attributes::AttributePolicy,
}

// ---------------------------------------------------------------- single-value rules

/// Characters Microsoft 365 refuses in a mailNickname besides non-ASCII and controls.
pub const NICKNAME_FORBIDDEN: &str = "@()[]\\\";:<>,";
/// Characters allowed in the part of a UPN before the `@` besides ASCII letters and digits.
pub const UPN_LOCAL_SYMBOLS: &str = "'.-_!#^~";
pub const UPN_MAX: usize = 113;
pub const UPN_LOCAL_MAX: usize = 64;
pub const UPN_DOMAIN_MAX: usize = 48;
pub const NICKNAME_MAX: usize = 64;
pub const PASSWORD_MIN: usize = crate::sync::password::MIN_LEN;
pub const PASSWORD_MAX: usize = crate::sync::password::MAX_LEN;

fn nickname_forbidden(c: char) -> bool {
    !c.is_ascii() || c.is_ascii_control() || c.is_whitespace() || NICKNAME_FORBIDDEN.contains(c)
}

fn upn_local_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || UPN_LOCAL_SYMBOLS.contains(c)
}

/// `UPN_LOCAL_OK[b]`: byte `b` may appear before the `@` of a UPN (ASCII only).
static UPN_LOCAL_OK: [bool; 128] = {
    let mut t = [false; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'\'' | b'.' | b'-' | b'_' | b'!' | b'#' | b'^' | b'~');
        b += 1;
    }
    t
};

/// A local part that passes every UPN and alias rule: 1-64 UPN-allowed ASCII bytes, no dot at
/// either end. (Every UPN-allowed character is also allowed in an alias.)
fn fast_local_ok(local: &str) -> bool {
    let b = local.as_bytes();
    !b.is_empty()
        && b.len() <= UPN_LOCAL_MAX
        && b[0] != b'.'
        && b[b.len() - 1] != b'.'
        && b.iter().all(|&c| c < 128 && UPN_LOCAL_OK[c as usize])
}

fn show_chars(chars: impl Iterator<Item = char>) -> String {
    let mut seen = Vec::new();
    for c in chars {
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    seen.iter()
        .map(|c| match c {
            ' ' => "space".to_string(),
            c if c.is_control() => format!("U+{:04X}", *c as u32),
            c => format!("'{c}'"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mailNickname rules (graph-notes §4/§10): 1-64 ASCII characters, none of
/// `@ ( ) [ ] \ " ; : < > ,` or space, no leading or trailing dot or space.
pub fn check_mail_nickname(nick: &str) -> Vec<Problem> {
    nickname_problems(nick, true)
}

/// With `non_ascii = false` (a user's email local part) non-ASCII characters are left to the
/// UPN rule, so an accent is reported once, as `upn-invalid`.
fn nickname_problems(nick: &str, non_ascii: bool) -> Vec<Problem> {
    let forbidden = |c: char| nickname_forbidden(c) && (non_ascii || c.is_ascii());
    let mut out = Vec::new();
    if nick.is_empty() {
        out.push(problem(
            "mailnickname-forbidden-char",
            "The alias (mailNickname) is empty; Microsoft 365 requires one.",
        ));
        return out;
    }
    let starts = nick.starts_with(['.', ' ']) || nick.ends_with(['.', ' ']);
    if starts {
        out.push(problem(
            "mailnickname-leading-or-trailing-space-or-dot",
            format!("The alias \"{nick}\" starts or ends with a dot or a space."),
        ));
    }
    let trimmed = nick.trim_matches([' ', '.']);
    if trimmed.chars().any(forbidden) {
        out.push(problem(
            "mailnickname-forbidden-char",
            format!(
                "The alias \"{nick}\" contains {} (not allowed: @ ( ) [ ] \\ \" ; : < > , spaces and non-ASCII characters).",
                show_chars(trimmed.chars().filter(|c| forbidden(*c)))
            ),
        ));
    }
    let n = nick.chars().count();
    if n > NICKNAME_MAX {
        out.push(problem(
            "mailnickname-length",
            format!("The alias is {n} characters long; the limit is {NICKNAME_MAX}."),
        ));
    }
    out
}

/// Domain part syntax: dot-separated labels of letters, digits and inner hyphens, 2+ labels.
fn domain_syntax_ok(d: &str) -> bool {
    d.split('.').count() >= 2
        && d.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The UPN rules alone (graph-notes "UPN policy"): one `@`; before it only
/// `A-Z a-z 0-9 ' . - _ ! # ^ ~`, not starting with `.` and no `.` right before the `@`;
/// at most 64 before the `@`, 48 after, 113 in total; no Unicode. All problems found, as one
/// `upn-invalid` problem (`None` = valid).
pub fn check_upn(upn: &str) -> Option<Problem> {
    let reasons = upn_reasons(upn, false);
    (!reasons.is_empty()).then(|| {
        problem(
            "upn-invalid",
            format!("The UPN \"{upn}\" is invalid: {}.", reasons.join("; ")),
        )
    })
}

/// Why a UPN is invalid. With `skip_nickname_covered`, reasons a mailNickname problem of the
/// same local part already reports (forbidden chars, spaces, 64 limit, dots at the ends) are
/// left out, so one bad character is reported once.
fn upn_reasons(upn: &str, skip_nickname_covered: bool) -> Vec<String> {
    let mut r = Vec::new();
    if upn.is_empty() {
        r.push("it is empty".to_string());
        return r;
    }
    let ats = upn.matches('@').count();
    if ats != 1 {
        r.push(if ats == 0 {
            "it has no @".to_string()
        } else {
            format!("it has {ats} @ signs; exactly one is allowed")
        });
        return r;
    }
    let (local, domain) = upn.split_once('@').unwrap_or_default();
    if local.is_empty() {
        r.push("nothing before the @".into());
    }
    if domain.is_empty() {
        r.push("nothing after the @".into());
    }
    let bad: Vec<char> = local
        .chars()
        .filter(|c| {
            !(upn_local_allowed(*c)
                || (skip_nickname_covered && c.is_ascii() && nickname_forbidden(*c)))
        })
        .collect();
    if !bad.is_empty() {
        r.push(format!(
            "{} not allowed before the @ (allowed: letters A-Z a-z, digits, ' . - _ ! # ^ ~)",
            show_chars(bad.into_iter())
        ));
    }
    if !skip_nickname_covered {
        if local.starts_with('.') {
            r.push("it starts with a dot".into());
        }
        if local.ends_with('.') {
            r.push("a dot right before the @".into());
        }
        let n = local.chars().count();
        if n > UPN_LOCAL_MAX {
            r.push(format!(
                "{n} characters before the @ (limit {UPN_LOCAL_MAX})"
            ));
        }
    }
    let nd = domain.chars().count();
    if nd > UPN_DOMAIN_MAX {
        r.push(format!(
            "{nd} characters after the @ (limit {UPN_DOMAIN_MAX})"
        ));
    }
    if !domain.is_empty() && !domain_syntax_ok(domain) {
        r.push(format!("\"{domain}\" is not a valid domain name"));
    }
    let total = upn.chars().count();
    if total > UPN_MAX {
        r.push(format!("{total} characters in total (limit {UPN_MAX})"));
    }
    r
}

/// Microsoft's cloud password rules (graph-notes "Password rules"), as
/// [`crate::sync::password::check`] applies them (one rule, so preflight and the password
/// dialog cannot disagree): 8-256 characters; only ASCII letters, digits and the allowed
/// symbols (no Unicode); 3 of 4 classes. The kind is `password-length` for a length out of
/// bounds, else `password-complexity` (a non-ASCII character is reported first, as the
/// message says).
pub fn check_password(pw: &str) -> Option<Problem> {
    let e = crate::sync::password::check(pw).err()?;
    let n = pw.chars().count();
    let kind = if pw.is_ascii() && !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        "password-length"
    } else {
        "password-complexity"
    };
    let mut m = e.0;
    if let Some(f) = m.get(..1) {
        let up = f.to_ascii_uppercase();
        m.replace_range(..1, &up);
    }
    Some(problem(kind, m))
}

/// A few common Latin letters folded to ASCII for suggestions (`é` -> `e`, `ß` -> `ss`).
fn fold(c: char, out: &mut String) {
    let s = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' => "A",
        'ç' | 'ć' | 'č' => "c",
        'Ç' | 'Ć' | 'Č' => "C",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => "E",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' => "I",
        'ñ' | 'ń' | 'ň' => "n",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' => "O",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        'ž' | 'ź' | 'ż' => "z",
        'Ž' | 'Ź' | 'Ż' => "Z",
        'š' | 'ś' => "s",
        'Š' | 'Ś' => "S",
        'ł' => "l",
        'Ł' => "L",
        'ß' => "ss",
        'æ' => "ae",
        'Æ' => "AE",
        _ => "",
    };
    out.push_str(s);
}

/// A valid mailNickname from any name: common accents folded, forbidden characters, spaces and
/// other non-ASCII dropped, dots trimmed from the ends, at most 64 characters
/// (`Sales (EU)` -> `SalesEU`). Empty when nothing usable is left.
pub fn sanitize_mail_nickname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii() {
            if !nickname_forbidden(c) {
                out.push(c);
            }
        } else {
            fold(c, &mut out);
        }
    }
    let t: String = out.trim_matches('.').chars().take(NICKNAME_MAX).collect();
    t.trim_end_matches('.').to_string()
}

/// A UPN local part with only allowed characters (accents folded), for suggestions.
fn sanitize_upn_local(local: &str) -> String {
    let mut out = String::with_capacity(local.len());
    for c in local.chars() {
        if c.is_ascii() {
            if upn_local_allowed(c) {
                out.push(c);
            }
        } else {
            fold(c, &mut out);
        }
    }
    let t: String = out.trim_matches('.').chars().take(UPN_LOCAL_MAX).collect();
    t.trim_end_matches('.').to_string()
}

/// `name` with spaces trimmed at both ends and runs of spaces made single.
pub fn trim_group_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Group rules, as plain functions over a name (groups come later): stray spaces in the name,
/// and the mailNickname (`nickname`, else the name without spaces, which is what a naive
/// derivation sends) checked with suggestions from [`sanitize_mail_nickname`].
pub fn check_group_name(group_id: i64, name: &str, nickname: Option<&str>) -> Vec<Issue> {
    let mut out = Vec::new();
    let trimmed = trim_group_name(name);
    if trimmed != name {
        out.push(Issue {
            directory_id: group_id,
            kind: "group-name-extra-space".into(),
            field: "displayName".into(),
            value: name.to_string(),
            message: format!(
                "The group name \"{name}\" has spaces at the start or end, or two in a row."
            ),
            suggestion: Some(trimmed.clone()),
            severity: Severity::Error,
            holder: None,
        });
    }
    let derived: String;
    let nick = match nickname {
        Some(n) => n,
        None => {
            derived = trimmed.chars().filter(|c| *c != ' ').collect();
            &derived
        }
    };
    let suggestion = sanitize_mail_nickname(name);
    for p in check_mail_nickname(nick) {
        out.push(Issue {
            directory_id: group_id,
            kind: p.kind.to_string(),
            field: "mailNickname".into(),
            value: nick.to_string(),
            message: p.message,
            suggestion: (!suggestion.is_empty()).then(|| suggestion.clone()),
            severity: Severity::Error,
            holder: None,
        });
    }
    out
}

// ---------------------------------------------------------------- the tenant side

#[derive(Debug, Clone)]
struct Holder {
    id: String,
    upn: String,
    deleted: bool,
    /// A guest (`userType` Guest): its address is not a member account's to take.
    guest: bool,
}

/// Addresses held in the tenant (UPN and mail, lower-cased) by live and soft-deleted users.
#[derive(Debug, Clone, Default)]
pub struct TenantIndex {
    by_address: HashMap<String, Holder>,
}

impl TenantIndex {
    pub fn new<'a>(
        live: impl IntoIterator<Item = &'a User>,
        deleted: impl IntoIterator<Item = &'a User>,
    ) -> TenantIndex {
        let mut by_address = HashMap::new();
        let mut add = |u: &User, is_deleted: bool| {
            let h = Holder {
                id: u.id.clone(),
                upn: u.user_principal_name.clone(),
                deleted: is_deleted,
                guest: u.guest,
            };
            if let Some(m) = u.mail.as_deref().filter(|m| !m.is_empty()) {
                by_address
                    .entry(m.to_lowercase())
                    .or_insert_with(|| h.clone());
            }
            if !u.user_principal_name.is_empty() {
                // A live holder wins over a deleted one for the same address.
                let k = u.user_principal_name.to_lowercase();
                match by_address.get(&k) {
                    Some(old) if !old.deleted => {}
                    _ => {
                        by_address.insert(k, h);
                    }
                }
            }
        };
        for u in live {
            add(u, false);
        }
        for u in deleted {
            add(u, true);
        }
        TenantIndex { by_address }
    }

    pub fn from_snapshot(s: &TenantSnapshot) -> TenantIndex {
        TenantIndex::new(s.pages.iter().flat_map(|p| p.iter()), &s.deleted)
    }

    /// The index `preflight` reads for `users`: only the addresses it will look up (the trimmed
    /// email and the UPN of every directory user not linked to an account yet), so a directory
    /// of linked users costs no scan, and a scan allocates only for the addresses it keeps.
    /// Same holders as [`TenantIndex::from_snapshot`] for every address preflight asks about.
    pub fn for_users(
        s: &TenantSnapshot,
        users: &[DirectoryUser],
        opts: &PreflightOptions,
    ) -> TenantIndex {
        let wanted: foldhash::HashSet<String> = users
            .iter()
            .filter(|u| u.tenant_user_id.is_none())
            .flat_map(|u| {
                let email = u.email.trim();
                let upn = opts.upn_overrides.get(&u.id).map_or(email, |s| s.as_str());
                [lower(email).into_owned(), lower(upn).into_owned()]
            })
            .filter(|a| !a.is_empty())
            .collect();
        if wanted.is_empty() {
            return TenantIndex::default();
        }
        let mut buf = String::new();
        let mut kept = |a: &str| -> bool {
            if a.is_ascii() {
                buf.clear();
                buf.extend(a.bytes().map(|b| char::from(b.to_ascii_lowercase())));
            } else {
                buf = a.to_lowercase(); // as `TenantIndex::new` folds it (final sigma too)
            }
            wanted.contains(buf.as_str())
        };
        let mut asked =
            |u: &&User| kept(&u.user_principal_name) || u.mail.as_deref().is_some_and(&mut kept);
        let live: Vec<&User> = s
            .pages
            .iter()
            .flat_map(|p| p.iter())
            .filter(&mut asked)
            .collect();
        let deleted: Vec<&User> = s.deleted.iter().filter(&mut asked).collect();
        TenantIndex::new(live, deleted)
    }

    fn get(&self, addr_lower: &str) -> Option<&Holder> {
        self.by_address.get(addr_lower)
    }
}

// ---------------------------------------------------------------- the whole directory

struct DomainInfo<'a> {
    verified: bool,
    federated: bool,
    enabled: bool,
    id: &'a str,
}

fn lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) || !s.is_ascii() {
        std::borrow::Cow::Owned(s.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Every rule over the directory users, the tenant's domains and (if listed) the tenant's users.
///
/// Linked users (`tenant_user_id` set) already have an account: only their password and
/// duplicate rules apply (their UPN is not sent again).
pub fn preflight(
    users: &[DirectoryUser],
    domains: &[Domain],
    tenant: Option<&TenantIndex>,
    opts: &PreflightOptions,
) -> Vec<Issue> {
    let enabled: Option<HashSet<String>> = opts
        .enabled_domains
        .as_ref()
        .map(|v| v.iter().map(|d| d.to_lowercase()).collect());
    let mut dom: HashMap<String, DomainInfo> = HashMap::with_capacity(domains.len());
    for d in domains {
        let k = d.id.to_lowercase();
        let en = enabled.as_ref().is_none_or(|e| e.contains(&k));
        dom.insert(
            k,
            DomainInfo {
                verified: d.is_verified,
                federated: d
                    .authentication_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("Federated")),
                enabled: en,
                id: &d.id,
            },
        );
    }
    let default_domain = opts
        .default_domain
        .clone()
        .or_else(|| domains.iter().find(|d| d.is_default).map(|d| d.id.clone()));

    let mut out = Vec::new();
    // Lower-cased emails, computed once (duplicates and the tenant checks use them).
    let emails: Vec<std::borrow::Cow<'_, str>> =
        users.iter().map(|u| lower(u.email.trim())).collect();
    // Duplicates in one pass each: every user gets the id of its email group and its alias
    // group, so the per-user checks below read arrays instead of probing a map again.
    const NONE: u32 = u32::MAX;
    let mut email_group: Vec<u32> = vec![NONE; users.len()];
    let mut email_count: Vec<u32> = Vec::new();
    {
        let mut by_email: foldhash::HashMap<&str, u32> =
            foldhash::HashMap::with_capacity_and_hasher(users.len(), Default::default());
        for (i, e) in emails.iter().enumerate() {
            if !e.is_empty() {
                let next = email_count.len() as u32;
                let g = *by_email.entry(e.as_ref()).or_insert(next);
                if g == next {
                    email_count.push(0);
                }
                email_count[g as usize] += 1;
                email_group[i] = g;
            }
        }
    }
    // Alias -> (the first domain it was seen with, whether another domain has it too).
    let mut nick_group: Vec<u32> = vec![NONE; users.len()];
    let mut nick_domains: Vec<(&str, bool)> = Vec::new();
    {
        let mut by_nick: foldhash::HashMap<&str, u32> =
            foldhash::HashMap::with_capacity_and_hasher(users.len(), Default::default());
        for (i, e) in emails.iter().enumerate() {
            if let Some((l, d)) = e.split_once('@') {
                if !l.is_empty() {
                    let next = nick_domains.len() as u32;
                    let g = *by_nick.entry(l).or_insert(next);
                    if g == next {
                        nick_domains.push((d, false));
                    } else if nick_domains[g as usize].0 != d {
                        nick_domains[g as usize].1 = true;
                    }
                    nick_group[i] = g;
                }
            }
        }
    }
    let links: foldhash::HashMap<&str, i64> = users
        .iter()
        .filter_map(|u| u.tenant_user_id.as_deref().map(|t| (t, u.id)))
        .collect();

    for (i, u) in users.iter().enumerate() {
        // The plan sends the email trimmed (`Op::upn`), so the rules see it trimmed too.
        let email = u.email.trim();
        let email_l = emails[i].as_ref();
        let issue = |kind: &str, field: &str, value: &str, message: String| Issue {
            directory_id: u.id,
            kind: kind.to_string(),
            field: field.to_string(),
            value: value.to_string(),
            message,
            suggestion: None,
            severity: Severity::Error,
            holder: None,
        };
        // A guest's address is never a member account's: an `#EXT#` UPN is the tenant's
        // name for an invited user of another organisation.
        let upn_given = opts.upn_overrides.get(&u.id).map_or(email, |s| s.as_str());
        if let Some(a) = [email, upn_given].into_iter().find(|a| is_guest_address(a)) {
            let mut is = issue(
                "guest-as-member",
                "email",
                a,
                format!(
                    "{a} is a guest's address (#EXT#): a guest is an invited user of another \
                     organisation, not a member account this tenant can create or take over."
                ),
            );
            is.holder = Some(format!("guest {a}"));
            out.push(is);
            continue;
        }
        let dup_count = match email_group[i] {
            NONE => 0,
            g => email_count[g as usize],
        };
        if dup_count > 1 {
            out.push(issue(
                "email-duplicate",
                "email",
                email,
                format!(
                    "{} directory users have the email {} (compared without case).",
                    dup_count, email
                ),
            ));
        }
        if let Some(pw) = opts.passwords.get(&u.id) {
            if let Some(p) = check_password(pw) {
                out.push(issue(
                    p.kind,
                    "password",
                    &pw.chars().count().to_string(),
                    p.message,
                ));
            }
        }
        // Attributes the directory syncs: Graph's lengths and formats (graph-notes §17).
        let values = crate::sync::attributes::DirectoryValues::of(u);
        for a in crate::sync::attributes::Attr::all() {
            if !opts.attributes.syncs(a) || a == crate::sync::attributes::Attr::Manager {
                continue;
            }
            let Some(v) = values.get(a) else {
                continue;
            };
            if v.is_empty() && a != crate::sync::attributes::Attr::DisplayName {
                continue;
            }
            if let Some((kind, message)) = a.check(v.trim()) {
                let shown: String = v.chars().take(40).collect();
                out.push(issue(
                    kind,
                    a.wire(),
                    &if v.chars().count() > 40 {
                        format!("{shown}…")
                    } else {
                        shown
                    },
                    message,
                ));
            }
        }
        if u.tenant_user_id.is_some() {
            continue;
        }
        let upn: &str = opts.upn_overrides.get(&u.id).map_or(email, |s| s.as_str());
        let email_local = match email.split_once('@') {
            Some((l, rest)) if !rest.contains('@') => Some(l),
            _ => None,
        };
        let upn_local = upn.split_once('@').map(|(l, _)| l);
        // The UPN's domain, looked up once.
        let split = upn.split_once('@');
        let dl = split.map(|(_, d)| lower(d));
        let info = dl.as_deref().and_then(|d| dom.get(d));
        // Fast path: a local part of UPN-allowed ASCII only, within bounds, in a tenant domain
        // within bounds, cannot break a UPN or alias rule; the full rules run otherwise.
        let fast = email_local == upn_local
            && split.is_some_and(|(l, d)| {
                fast_local_ok(l) && !d.contains('@') && d.len() <= UPN_DOMAIN_MAX
            })
            && info.is_some();
        // The alias (mailNickname) comes from the email's local part.
        let mut nick_reported = false;
        if let Some(local) = email_local.filter(|l| !l.is_empty()) {
            let probs = if fast {
                Vec::new()
            } else {
                nickname_problems(local, false)
            };
            nick_reported = !probs.is_empty();
            let sugg = if nick_reported {
                sanitize_upn_local(local)
            } else {
                String::new()
            };
            for p in probs {
                let mut is = issue(
                    p.kind,
                    "mailNickname",
                    local,
                    format!(
                        "{} The part of the email before the @ becomes the user name (UPN), so \
                         Graph would refuse it.",
                        p.message
                    ),
                );
                if let Some((_, d)) = email.split_once('@') {
                    is.suggestion = (!sugg.is_empty()).then(|| format!("{sugg}@{d}"));
                }
                out.push(is);
            }
            if nick_group[i] != NONE && nick_domains[nick_group[i] as usize].1 {
                let mut w = issue(
                    "mailnickname-duplicate",
                    "mailNickname",
                    local,
                    format!("Another directory user in a different domain also gets the alias \"{local}\"."),
                );
                w.severity = Severity::Warning;
                out.push(w);
            }
        }
        let same_local = nick_reported && email_local.is_some() && email_local == upn_local;
        let reasons = if fast {
            Vec::new()
        } else {
            upn_reasons(upn, same_local)
        };
        if !reasons.is_empty() {
            let mut is = issue(
                "upn-invalid",
                "userPrincipalName",
                upn,
                format!("The UPN \"{upn}\" is invalid: {}.", reasons.join("; ")),
            );
            if let Some((l, d)) = upn.split_once('@') {
                let s = sanitize_upn_local(l);
                if !s.is_empty() && !d.contains('@') {
                    is.suggestion = Some(format!("{s}@{d}"));
                }
            }
            out.push(is);
        }
        // The domain.
        if let Some((local, d)) = split.filter(|(_, d)| !d.contains('@')) {
            // A malformed domain is already an upn-invalid problem: not reported twice.
            if info.is_some() || domain_syntax_ok(d) {
                let sugg = || {
                    default_domain
                        .as_deref()
                        .filter(|dd| !dd.eq_ignore_ascii_case(d))
                        .map(|dd| format!("{local}@{dd}"))
                };
                match info {
                    Some(info) if info.verified => {
                        if !info.enabled {
                            let mut is = issue(
                                "upn-domain-not-enabled",
                                "userPrincipalName",
                                upn,
                                format!(
                                    "The domain {} is verified but not enabled for m365sync.",
                                    info.id
                                ),
                            );
                            is.suggestion = sugg();
                            out.push(is);
                        } else if info.federated && !opts.immutable_ids.contains(&u.id) {
                            let mut is = issue(
                                "federated-domain-needs-immutable-id",
                                "onPremisesImmutableId",
                                upn,
                                format!("{} is a federated domain: a new account needs an onPremisesImmutableId.", info.id),
                            );
                            is.suggestion = sugg();
                            out.push(is);
                        }
                    }
                    _ => {
                        let mut is = issue(
                            "upn-domain-unverified",
                            "userPrincipalName",
                            upn,
                            format!("The domain {d} is not a verified domain of the tenant."),
                        );
                        is.suggestion = sugg();
                        out.push(is);
                    }
                }
            }
        }
        // Addresses held in the tenant.
        if let Some(t) = tenant {
            let upn_l = lower(upn);
            let mut seen: Option<&str> = None;
            for addr in [upn_l.as_ref(), email_l] {
                if addr.is_empty() || seen == Some(addr) {
                    continue;
                }
                seen = Some(addr);
                let Some(h) = t.get(addr) else { continue };
                if h.deleted {
                    let mut is = issue(
                        "proxy-address-held",
                        "email",
                        addr,
                        format!(
                            "The soft-deleted user {} still holds the address {addr}.",
                            h.upn
                        ),
                    );
                    is.holder = Some(format!("soft-deleted user {}", h.upn));
                    out.push(is);
                    break;
                }
                // A guest holds it: binding would make a member account of a guest's
                // address (unless this user is linked to that guest on purpose).
                if h.guest && links.get(h.id.as_str()) != Some(&u.id) {
                    let mut is = issue(
                        "guest-as-member",
                        "email",
                        addr,
                        format!(
                            "The guest {} (an invited user of another organisation) has the \
                             address {addr}: it cannot be bound as a member account.",
                            h.upn
                        ),
                    );
                    is.holder = Some(format!("guest {}", h.upn));
                    out.push(is);
                    break;
                }
                // A live, unlinked holder is the plan's takeover, not an error.
                match links.get(h.id.as_str()) {
                    Some(&other) if other != u.id => {
                        let same_upn = h.upn.eq_ignore_ascii_case(upn);
                        let mut is = issue(
                            if same_upn { "upn-exists" } else { "proxy-address-held" },
                            if same_upn { "userPrincipalName" } else { "email" },
                            addr,
                            format!(
                                "The account {} holds {addr} and is linked to another directory user (id {other}).",
                                h.upn
                            ),
                        );
                        is.holder = Some(format!("user {}", h.upn));
                        out.push(is);
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// An `#EXT#` address: the UPN the tenant gives an invited guest (`a_fabrikam.com#EXT#@...`).
pub fn is_guest_address(a: &str) -> bool {
    a.as_bytes()
        .windows(5)
        .any(|w| w.eq_ignore_ascii_case(b"#EXT#"))
}

/// Which plan ops an issue kind stops. Blocking sign-in is never held back: a data problem
/// must not keep a leaver's account open.
pub fn blocks(kind: &str, op: OpKind) -> bool {
    match op {
        OpKind::Block | OpKind::ReEnable => false,
        // Deprovisioning steps are about an account that exists: no finding stops them.
        OpKind::RevokeSessions
        | OpKind::RemoveLicenses
        | OpKind::DeleteUser
        | OpKind::RecordSteps => false,
        OpKind::SetPassword => kind.starts_with("password-"),
        OpKind::UpdateAttributes => ATTRIBUTE_KINDS.contains(&kind),
        OpKind::SetManager => kind.starts_with("manager-"),
        OpKind::AssignLicense => kind.starts_with("licence-") || kind == "usage-location-invalid",
        OpKind::Create => true,
        OpKind::Takeover => matches!(kind, "email-duplicate" | "upn-exists" | "guest-as-member"),
        OpKind::Restore => matches!(kind, "email-duplicate" | "guest-as-member"),
    }
}

/// The catalog kinds of attribute findings: they hold back a create or an update, and take
/// the attribute out of a takeover or a re-enable (the account is enabled, the value left).
pub const ATTRIBUTE_KINDS: &[&str] = &[
    "attribute-too-long",
    "attribute-invalid",
    "usage-location-invalid",
    "preferred-language-invalid",
];

/// Splits a plan into the ops to send and the ops held back with the (first) error that holds
/// each. Warnings never hold an op back.
pub fn held_back(ops: &[Op], issues: &[Issue]) -> (Vec<Op>, Vec<(Op, Issue)>) {
    let mut by_user: HashMap<i64, Vec<&Issue>> = HashMap::new();
    for i in issues.iter().filter(|i| i.severity == Severity::Error) {
        by_user.entry(i.directory_id).or_default().push(i);
    }
    let mut send = Vec::with_capacity(ops.len());
    let mut held = Vec::new();
    for op in ops {
        let hit = by_user
            .get(&op.directory_id)
            .and_then(|v| v.iter().find(|i| blocks(&i.kind, op.kind)));
        match hit {
            Some(i) => held.push((op.clone(), (*i).clone())),
            None => send.push(op.clone()),
        }
    }
    (send, held)
}

/// Everything between the diff and sending, shared by the console and `m365sync sync`: the
/// UPN overrides (the use-default-domain fix) name the accounts creates make (the email is
/// kept), preflight runs with the integration's domain settings, and what it refuses is split
/// off. Returns the plan to send, the ops held back, and every finding.
pub fn check_plan(
    plan: Plan,
    users: &[DirectoryUser],
    tenant: &TenantSnapshot,
    opts: &PreflightOptions,
) -> (Plan, Vec<(Op, Issue)>, Vec<Issue>) {
    hold_back(plan, check_users(users, tenant, opts), opts)
}

/// Preflight's findings over `users` against `tenant`: the half of [`check_plan`] that needs
/// no plan, so the pipeline runs it beside the diff.
pub fn check_users(
    users: &[DirectoryUser],
    tenant: &TenantSnapshot,
    opts: &PreflightOptions,
) -> Vec<Issue> {
    let index = TenantIndex::for_users(tenant, users, opts);
    preflight(users, &tenant.domains, Some(&index), opts)
}

/// The other half of [`check_plan`]: the UPN overrides name the accounts creates make, and
/// the ops `issues` refuse are split off.
pub fn hold_back(
    mut plan: Plan,
    issues: Vec<Issue>,
    opts: &PreflightOptions,
) -> (Plan, Vec<(Op, Issue)>, Vec<Issue>) {
    for op in &mut plan.ops {
        if op.kind == OpKind::Create {
            if let Some(upn) = opts.upn_overrides.get(&op.directory_id) {
                op.upn = upn.clone();
            }
        }
    }
    let (send, held) = held_back(&plan.ops, &issues);
    plan.ops = send;
    (plan, held, issues)
}
