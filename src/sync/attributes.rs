//! Attribute sync: the directory is the source of truth for a configured set of user
//! attributes (names, job data, phones, address, usage location, language, manager). Each
//! one is `sync` (the directory wins, also over a change made by hand in Microsoft 365) or
//! `ignore`. A directory value that was never set leaves the account's alone; an empty one
//! clears it. The diff is field by field (old -> new), and an account whose attributes match
//! costs no request.
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::directory::DirectoryUser;
use crate::graph::model::UserAttr;
use crate::graph::User;

/// A synced attribute: the names (fields of both sides), the [`UserAttr`] properties, and the
/// manager (a relationship, planned apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Attr {
    DisplayName,
    GivenName,
    Surname,
    User(UserAttr),
    Manager,
}

impl From<Attr> for String {
    fn from(a: Attr) -> String {
        a.wire().to_string()
    }
}

impl TryFrom<String> for Attr {
    type Error = String;
    fn try_from(s: String) -> Result<Attr, String> {
        Attr::parse(&s).ok_or_else(|| format!("unknown attribute `{s}`"))
    }
}

impl Attr {
    /// Every synced attribute, in the order a diff lists them.
    pub fn all() -> impl Iterator<Item = Attr> {
        [Attr::DisplayName, Attr::GivenName, Attr::Surname]
            .into_iter()
            .chain(UserAttr::ALL.into_iter().map(Attr::User))
            .chain(std::iter::once(Attr::Manager))
    }
    /// As Graph (and the CSV header, and the policy) names it: `jobTitle`, `manager`.
    pub fn wire(self) -> &'static str {
        match self {
            Attr::DisplayName => "displayName",
            Attr::GivenName => "givenName",
            Attr::Surname => "surname",
            Attr::User(a) => a.wire(),
            Attr::Manager => "manager",
        }
    }
    /// From its wire name, case-insensitive.
    pub fn parse(s: &str) -> Option<Attr> {
        Attr::all().find(|a| a.wire().eq_ignore_ascii_case(s.trim()))
    }
    /// Graph's maximum length (graph-notes §17); None when Graph states none we rely on.
    pub fn max_len(self) -> Option<usize> {
        Some(match self {
            Attr::DisplayName => 256,
            Attr::GivenName | Attr::Surname => 64,
            Attr::User(a) => match a {
                UserAttr::JobTitle => 128,
                UserAttr::Department => 64,
                UserAttr::OfficeLocation => 128,
                UserAttr::MobilePhone | UserAttr::BusinessPhones => 64,
                UserAttr::EmployeeId => 16,
                UserAttr::CompanyName => 64,
                UserAttr::City | UserAttr::State | UserAttr::Country => 128,
                UserAttr::PostalCode => 40,
                UserAttr::StreetAddress => 1024,
                UserAttr::UsageLocation => 2,
                UserAttr::PreferredLanguage => 16,
                UserAttr::EmployeeType => 64,
            },
            Attr::Manager => return None,
        })
    }
    /// Why Graph would refuse `value` for this attribute, in plain words (None = fine).
    pub fn check(self, value: &str) -> Option<(&'static str, String)> {
        let n = value.chars().count();
        if let Some(max) = self.max_len() {
            if n > max {
                return Some((
                    "attribute-too-long",
                    format!(
                        "{} is {n} characters long; Microsoft 365 takes at most {max}.",
                        self.wire()
                    ),
                ));
            }
        }
        if value.chars().any(char::is_control) {
            return Some((
                "attribute-invalid",
                format!("{} holds a control character.", self.wire()),
            ));
        }
        match self {
            Attr::DisplayName if value.trim().is_empty() => Some((
                "attribute-invalid",
                "displayName cannot be empty.".to_string(),
            )),
            Attr::User(UserAttr::UsageLocation) if !value.is_empty() => (!is_country_code(value))
                .then(|| {
                    (
                        "usage-location-invalid",
                        format!(
                            "usageLocation \"{value}\" is not a two-letter ISO 3166 country code \
                             (e.g. US, GB, DE)."
                        ),
                    )
                }),
            Attr::User(UserAttr::PreferredLanguage) if !value.is_empty() => {
                (!is_language_tag(value)).then(|| {
                    (
                        "preferred-language-invalid",
                        format!(
                            "preferredLanguage \"{value}\" is not a language tag like en-US or \
                             es-ES."
                        ),
                    )
                })
            }
            _ => None,
        }
    }
}

/// ISO 3166-1 alpha-2 codes (officially assigned).
const COUNTRIES: &str =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ \
BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ \
DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT \
GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY \
KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX \
MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS \
RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN \
TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A two-letter ISO 3166-1 code, upper case as Graph returns it.
pub fn is_country_code(v: &str) -> bool {
    match v.as_bytes() {
        [a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => COUNTRY_SET[country_slot(*a, *b)],
        _ => false,
    }
}

const fn country_slot(a: u8, b: u8) -> usize {
    (a - b'A') as usize * 26 + (b - b'A') as usize
}

/// [`COUNTRIES`] as a table by letter pair (checked for every usage location of a plan: a
/// scan of the list was a tenth of a 100,000-user plan). Built at compile time: a code that
/// is not two capitals followed by a space fails the build.
const COUNTRY_SET: [bool; 26 * 26] = {
    let b = COUNTRIES.as_bytes();
    let mut set = [false; 26 * 26];
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_uppercase() && b[i + 1].is_ascii_uppercase());
        assert!(i + 2 == b.len() || b[i + 2] == b' ');
        set[country_slot(b[i], b[i + 1])] = true;
        i += 3;
    }
    set
};

/// RFC 4646 as Graph's examples use it: `ll` or `lll`, `-`, `CC` (`en-US`, `es-ES`).
pub fn is_language_tag(v: &str) -> bool {
    let Some((lang, region)) = v.split_once('-') else {
        return false;
    };
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && region.len() == 2
        && region.bytes().all(|b| b.is_ascii_uppercase())
}

/// Which attributes the directory keeps in sync (the rest are left alone).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AttributePolicy {
    /// Attributes set to `ignore`; every other one is `sync`.
    #[serde(default)]
    pub ignore: BTreeSet<Attr>,
}

impl AttributePolicy {
    pub fn syncs(&self, a: Attr) -> bool {
        !self.ignore.contains(&a)
    }
    /// From `jobTitle=ignore,department=sync` (the CLI's form): applied on top of `self`.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, how) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: use attribute=sync or attribute=ignore"))?;
            let a = Attr::parse(name).ok_or_else(|| {
                format!(
                    "`{name}` is not an attribute m365sync syncs (one of: {})",
                    Attr::all().map(Attr::wire).collect::<Vec<_>>().join(", ")
                )
            })?;
            match how.trim().to_ascii_lowercase().as_str() {
                "sync" => {
                    self.ignore.remove(&a);
                }
                "ignore" => {
                    self.ignore.insert(a);
                }
                other => return Err(format!("`{other}`: use sync or ignore")),
            }
        }
        Ok(())
    }
    /// `sync` and `ignore` per attribute, for `directory policy` to print.
    pub fn describe(&self) -> String {
        Attr::all()
            .map(|a| {
                format!(
                    "{}={}",
                    a.wire(),
                    if self.syncs(a) { "sync" } else { "ignore" }
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The directory's values of every attribute of one user, read in one pass over its map:
/// [`directory_value`] for each attribute without a map lookup each (at 100,000 users those
/// lookups were most of the plan's time). `get(a) == directory_value(u, a)` for every `a`.
pub struct DirectoryValues<'a> {
    user: &'a DirectoryUser,
    extra: [Option<&'a str>; UserAttr::ALL.len()],
    manager: Option<&'a str>,
}

impl<'a> DirectoryValues<'a> {
    pub fn of(user: &'a DirectoryUser) -> DirectoryValues<'a> {
        let mut v = DirectoryValues {
            user,
            extra: [None; UserAttr::ALL.len()],
            manager: None,
        };
        for (k, val) in &user.attributes {
            match user_attr_slot(k) {
                Some(i) => v.extra[i] = Some(val.as_str()),
                None if k == "manager" => v.manager = Some(val.as_str()),
                None => {}
            }
        }
        v
    }

    pub fn get(&self, a: Attr) -> Option<&'a str> {
        match a {
            Attr::User(UserAttr::JobTitle | UserAttr::Department)
            | Attr::DisplayName
            | Attr::GivenName
            | Attr::Surname => directory_value(self.user, a),
            Attr::User(x) => self.extra[x as usize],
            Attr::Manager => self.manager,
        }
    }
}

/// `UserAttr::ALL`'s position of the attribute named `k` on the wire: a `match`, so a key is
/// compared only with the names of its length (the test keeps it equal to `UserAttr::wire`).
fn user_attr_slot(k: &str) -> Option<usize> {
    let a = match k {
        "jobTitle" => UserAttr::JobTitle,
        "department" => UserAttr::Department,
        "officeLocation" => UserAttr::OfficeLocation,
        "mobilePhone" => UserAttr::MobilePhone,
        "businessPhones" => UserAttr::BusinessPhones,
        "employeeId" => UserAttr::EmployeeId,
        "companyName" => UserAttr::CompanyName,
        "city" => UserAttr::City,
        "state" => UserAttr::State,
        "country" => UserAttr::Country,
        "postalCode" => UserAttr::PostalCode,
        "streetAddress" => UserAttr::StreetAddress,
        "usageLocation" => UserAttr::UsageLocation,
        "preferredLanguage" => UserAttr::PreferredLanguage,
        "employeeType" => UserAttr::EmployeeType,
        _ => return None,
    };
    Some(a as usize)
}

/// The directory's value of `a` for `u`: None when the directory does not manage it (never
/// set), `Some("")` when it was cleared.
pub fn directory_value(u: &DirectoryUser, a: Attr) -> Option<&str> {
    match a {
        Attr::DisplayName => Some(u.display_name.as_str()),
        Attr::GivenName => u.given_name.as_deref(),
        Attr::Surname => u.surname.as_deref(),
        Attr::User(UserAttr::JobTitle) => u.job_title.as_deref(),
        Attr::User(UserAttr::Department) => u.department.as_deref(),
        Attr::User(x) => u.attributes.get(x.wire()).map(String::as_str),
        Attr::Manager => u.attributes.get("manager").map(String::as_str),
    }
}

/// The account's value of `a` (None when not set); the manager is not on the listed user.
pub fn tenant_value(u: &User, a: Attr) -> Option<&str> {
    match a {
        Attr::DisplayName => u.display_name.as_deref(),
        Attr::GivenName => u.given_name.as_deref(),
        Attr::Surname => u.surname.as_deref(),
        Attr::User(x) => u.attr(x),
        Attr::Manager => None,
    }
    .filter(|v| !v.is_empty())
}

/// One field of a diff: what the account has, and what the directory wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrChange {
    pub attr: Attr,
    pub old: Option<String>,
    /// None: clear it.
    pub new: Option<String>,
}

impl AttrChange {
    /// `jobTitle: "Engineer" -> "Lead"`, `mobilePhone: "+1 555" -> (cleared)`.
    pub fn describe(&self) -> String {
        let v = |x: &Option<String>| match x {
            Some(s) => format!("\"{s}\""),
            None => "(none)".into(),
        };
        format!("{}: {} -> {}", self.attr.wire(), v(&self.old), v(&self.new))
    }
}

/// The diff of the attributes the policy syncs (the manager apart): the fields where the
/// account differs from what the directory holds. Empty when they agree.
pub fn diff(dir: &DirectoryUser, acc: &User, policy: &AttributePolicy) -> Vec<AttrChange> {
    // Compared as borrowed text: an account that agrees (almost every one) allocates nothing.
    let mut out = Vec::new();
    let values = DirectoryValues::of(dir);
    // The account's attributes in one pass too (each is held once in `attrs`).
    let mut held: [Option<&str>; UserAttr::ALL.len()] = [None; UserAttr::ALL.len()];
    for (k, v) in acc.attrs.iter() {
        held[k as usize] = Some(v);
    }
    for a in Attr::all() {
        if a == Attr::Manager || !policy.syncs(a) {
            continue;
        }
        let Some(want) = values.get(a) else {
            continue;
        };
        let want = Some(want.trim()).filter(|w| !w.is_empty());
        // displayName cannot be cleared: an empty one is left as it is.
        if a == Attr::DisplayName && want.is_none() {
            continue;
        }
        let have = match a {
            Attr::User(x) => held[x as usize].filter(|v| !v.is_empty()),
            _ => tenant_value(acc, a),
        };
        debug_assert_eq!(have, tenant_value(acc, a));
        if want != have {
            out.push(AttrChange {
                attr: a,
                old: have.map(str::to_string),
                new: want.map(str::to_string),
            });
        }
    }
    out
}

/// The directory's values to set on a new account (the managed, non-empty ones).
pub fn create_values(dir: &DirectoryUser, policy: &AttributePolicy) -> Vec<(Attr, String)> {
    let values = DirectoryValues::of(dir);
    Attr::all()
        .filter(|a| !matches!(a, Attr::DisplayName | Attr::Manager) && policy.syncs(*a))
        .filter_map(|a| {
            let v = values.get(a)?.trim();
            (!v.is_empty()).then(|| (a, v.to_string()))
        })
        .collect()
}

/// Writes `(attribute, value)` pairs into a PATCH or POST body (`businessPhones` as the one
/// number a collection may hold; None clears).
pub fn write_into(body: &mut Value, values: impl IntoIterator<Item = (Attr, Option<String>)>) {
    for (a, v) in values {
        if a == Attr::Manager {
            continue;
        }
        body[a.wire()] = match (a, v) {
            (Attr::User(UserAttr::BusinessPhones), Some(v)) => json!([v]),
            (Attr::User(UserAttr::BusinessPhones), None) => json!([]),
            (_, Some(v)) => json!(v),
            (_, None) => Value::Null,
        };
    }
}

/// The PATCH body of a diff.
pub fn patch_body(changes: &[AttrChange]) -> Value {
    let mut body = json!({});
    write_into(&mut body, changes.iter().map(|c| (c.attr, c.new.clone())));
    body
}

/// The manager references the directory wants: a set-manager op for each wanted user whose
/// account's manager differs from the directory's (`manager` attribute: the manager's email,
/// "" to remove it), and the findings that hold one back: a manager who is not a directory
/// user, one who is not bound, a loop. `current` holds the managers read from the tenant (by
/// the account's object id); `new_accounts` the users whose account this plan makes.
pub fn plan_managers<S: std::hash::BuildHasher>(
    users: &[DirectoryUser],
    live: &std::collections::HashSet<&str, S>,
    new_accounts: &std::collections::HashSet<i64>,
    current: &std::collections::HashMap<String, Option<String>>,
    policy: &AttributePolicy,
) -> (
    Vec<crate::sync::plan::Op>,
    Vec<crate::sync::preflight::Issue>,
) {
    use crate::sync::plan::{Op, OpKind};
    use crate::sync::preflight::{Issue, Severity};
    use std::collections::HashMap;
    let mut ops = Vec::new();
    let mut issues = Vec::new();
    // Nothing to do (and no index to build) when no directory user names a manager.
    if !policy.syncs(Attr::Manager) || !users.iter().any(|u| u.attributes.contains_key("manager")) {
        return (ops, issues);
    }
    let by_email: HashMap<String, &DirectoryUser> = users
        .iter()
        .map(|u| (u.email.trim().to_lowercase(), u))
        .collect();
    let by_account: HashMap<&str, &DirectoryUser> = users
        .iter()
        .filter_map(|u| u.tenant_user_id.as_deref().map(|t| (t, u)))
        .collect();
    let manager_of = |u: &DirectoryUser| -> Option<&DirectoryUser> {
        let m = u.attributes.get("manager")?.trim().to_lowercase();
        by_email.get(&m).copied()
    };
    for u in users.iter().filter(|u| u.wanted()) {
        let Some(want) = u.attributes.get("manager").map(|m| m.trim()) else {
            continue;
        };
        let account = u.tenant_user_id.as_deref().filter(|t| live.contains(t));
        if account.is_none() && !new_accounts.contains(&u.id) {
            continue;
        }
        let issue = |kind: &str, message: String| Issue {
            directory_id: u.id,
            kind: kind.into(),
            field: "manager".into(),
            value: want.to_string(),
            message,
            suggestion: None,
            severity: Severity::Error,
            holder: None,
        };
        let have = account.and_then(|t| current.get(t).cloned().flatten());
        let have_email = have.as_deref().map(|id| {
            by_account
                .get(id)
                .map_or_else(|| id.to_string(), |m| m.email.clone())
        });
        let manager = if want.is_empty() {
            None
        } else {
            let Some(m) = by_email.get(&want.to_lowercase()).copied() else {
                issues.push(issue(
                    "manager-unknown",
                    format!("The manager {want} of {} is not a directory user.", u.email),
                ));
                continue;
            };
            if !m.wanted() {
                issues.push(issue(
                    "manager-not-bound",
                    format!(
                        "The manager {want} of {} is not bound: bind the manager too.",
                        u.email
                    ),
                ));
                continue;
            }
            // A loop: following the managers comes back to this user.
            let mut seen = std::collections::HashSet::from([u.id]);
            let mut next = Some(m);
            let mut looped = false;
            while let Some(x) = next {
                if !seen.insert(x.id) {
                    looped = x.id == u.id;
                    break;
                }
                next = manager_of(x);
            }
            if looped || m.id == u.id {
                issues.push(issue(
                    "manager-loop",
                    format!(
                        "The managers of {} lead back to {} itself.",
                        u.email, u.email
                    ),
                ));
                continue;
            }
            Some(m)
        };
        let in_sync = match (manager, have.as_deref()) {
            (None, None) => true,
            (Some(m), Some(h)) => m.tenant_user_id.as_deref() == Some(h),
            _ => false,
        };
        if in_sync {
            continue;
        }
        ops.push(Op {
            kind: OpKind::SetManager,
            directory_id: u.id,
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            upn: u.email.trim().to_string(),
            tenant_user_id: account.map(str::to_string),
            reason: "the directory names another manager".into(),
            changes: vec![AttrChange {
                attr: Attr::Manager,
                old: have_email,
                new: manager.map(|m| m.email.clone()),
            }],
            manager_id: manager.map(|m| m.id),
            deprovision: Default::default(),
            licences: None,
        });
    }
    (ops, issues)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `DirectoryValues` reads what `directory_value` reads, for every attribute: the slot
    /// table follows `UserAttr::ALL` and its wire names, and job title and department come
    /// from their fields, not from a stray map entry.
    #[test]
    fn country_codes_are_the_list() {
        let listed: Vec<&str> = COUNTRIES.split(' ').collect();
        assert!(listed.len() > 240, "{}", listed.len());
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                let code = String::from_utf8(vec![a, b]).unwrap();
                assert_eq!(
                    is_country_code(&code),
                    listed.contains(&code.as_str()),
                    "{code}"
                );
            }
        }
        for bad in ["", "F", "fr", "Fr", "FRA", "F ", "ÉÉ", "F1"] {
            assert!(!is_country_code(bad), "{bad}");
        }
    }

    #[test]
    fn directory_values_equal_directory_value_for_every_attribute() {
        for (i, a) in UserAttr::ALL.into_iter().enumerate() {
            assert_eq!(a as usize, i, "{a:?}");
            assert_eq!(user_attr_slot(a.wire()), Some(i), "{a:?}");
        }
        let mut u = DirectoryUser {
            given_name: Some("Ann".into()),
            ..dir()
        };
        for (n, a) in Attr::all().enumerate() {
            if n % 2 == 0 {
                u.attributes.insert(a.wire().into(), format!("v{n}"));
            }
        }
        u.attributes.insert("jobtitle".into(), "wrong case".into());
        u.attributes.insert("somethingElse".into(), "x".into());
        let v = DirectoryValues::of(&u);
        for a in Attr::all() {
            assert_eq!(v.get(a), directory_value(&u, a), "{a:?}");
        }
        assert!(Attr::all().filter(|a| v.get(*a).is_some()).count() > 8);
    }

    fn dir() -> DirectoryUser {
        DirectoryUser {
            id: 1,
            email: "a@x.com".into(),
            display_name: "Ann Lee".into(),
            job_title: Some("Lead".into()),
            department: None,
            ..Default::default()
        }
    }

    #[test]
    fn a_diff_lists_only_what_differs_and_what_the_directory_manages() {
        let mut d = dir();
        d.attributes.insert("mobilePhone".into(), String::new());
        d.attributes.insert("city".into(), "Paris".into());
        let mut acc = User {
            id: "t".into(),
            display_name: Some("Ann Lee".into()),
            ..Default::default()
        };
        acc.set_attr(UserAttr::JobTitle, Some("Engineer"));
        acc.set_attr(UserAttr::MobilePhone, Some("+1 555"));
        acc.set_attr(UserAttr::Department, Some("Sales"));
        let changes = diff(&d, &acc, &AttributePolicy::default());
        let described: Vec<String> = changes.iter().map(AttrChange::describe).collect();
        assert_eq!(
            described,
            vec![
                "jobTitle: \"Engineer\" -> \"Lead\"",
                "mobilePhone: \"+1 555\" -> (none)",
                "city: (none) -> \"Paris\"",
            ],
            "department is not managed by the directory: left alone"
        );
        let body = patch_body(&changes);
        assert_eq!(
            body,
            json!({"jobTitle": "Lead", "mobilePhone": null, "city": "Paris"})
        );
        // Ignored attributes are left alone; an account in sync costs nothing.
        let mut p = AttributePolicy::default();
        p.apply("jobTitle=ignore, city = ignore, mobilePhone=ignore")
            .unwrap();
        assert!(diff(&d, &acc, &p).is_empty());
        assert!(p.apply("shoeSize=sync").is_err());
        assert!(p.apply("jobTitle=maybe").is_err());
        p.apply("jobTitle=sync").unwrap();
        assert_eq!(diff(&d, &acc, &p).len(), 1);
    }

    #[test]
    fn every_limit_at_and_one_past() {
        for a in Attr::all() {
            let Some(max) = a.max_len() else { continue };
            if a == Attr::User(UserAttr::UsageLocation) {
                continue;
            }
            let at = if a == Attr::User(UserAttr::PreferredLanguage) {
                "en-US".to_string()
            } else {
                "x".repeat(max)
            };
            assert_eq!(a.check(&at), None, "{a:?} at its limit");
            let past = "x".repeat(max + 1);
            assert!(
                a.check(&past)
                    .is_some_and(|(k, _)| k == "attribute-too-long"),
                "{a:?} one past"
            );
        }
        let ul = Attr::User(UserAttr::UsageLocation);
        assert_eq!(ul.check("US"), None);
        assert_eq!(ul.check("GB"), None);
        assert_eq!(ul.check("XX").unwrap().0, "usage-location-invalid");
        assert_eq!(ul.check("us").unwrap().0, "usage-location-invalid");
        assert_eq!(ul.check("USA").unwrap().0, "attribute-too-long");
        let pl = Attr::User(UserAttr::PreferredLanguage);
        assert_eq!(pl.check("es-ES"), None);
        assert_eq!(pl.check("en").unwrap().0, "preferred-language-invalid");
        assert_eq!(pl.check("EN-us").unwrap().0, "preferred-language-invalid");
        assert_eq!(
            Attr::DisplayName.check("  ").unwrap().0,
            "attribute-invalid"
        );
        assert_eq!(
            Attr::User(UserAttr::City).check("a\u{1b}b").unwrap().0,
            "attribute-invalid"
        );
    }
}
