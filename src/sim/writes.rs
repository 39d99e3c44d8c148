//! Graph v1.0 user writes: `POST /users`, `PATCH /users/{id|upn}`, `DELETE /users/{id|upn}`, and
//! the deleted-items container (`/directory/deletedItems`: list, get, restore, permanent delete).
//!
//! Rules are written from graph-notes.md §1, §2, §5 (password and UPN policy), not from the
//! client's preflight, so tests compare two implementations. Where the notes mark a wire string
//! UNVERIFIED, the choice made here is said next to it.

// A refusal IS the answer to send; carrying the Response in Err keeps each check a one-liner.
#![allow(clippy::result_large_err)]

use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::delta::What;
use super::graph::GCtx;
use super::state::State;
use super::tenant::{changed_props, smtp_addresses, write_user, Prop, Tenant, User, DEFAULT_PROPS};
use super::util::{self, hv};

pub const UPN_INVALID: &str = "Property userPrincipalName is invalid.";
pub const UPN_DOMAIN: &str = "The domain portion of the userPrincipalName property is invalid. \
     You must use one of the verified domain names in your organization.";
pub const PASSWORD_COMPLEXITY: &str = "The specified password does not comply with password \
     complexity requirements. Please provide a different password.";
pub const BAD_JSON: &str = "Unable to read JSON request payload. Please ensure Content-Type \
     header is set and payload is of valid JSON format.";

fn required(prop: &str) -> String {
    format!("A value is required for property '{prop}' of resource 'User'.")
}

fn invalid(prop: &str) -> String {
    format!("Invalid value specified for property '{prop}' of resource 'User'.")
}

fn conflict(g: &GCtx, prop: &str) -> Response {
    g.error_with_details(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        &format!("Another object with the same value for property {prop} already exists."),
        json!([{"code": "ObjectConflict", "message": format!("Another object with the same value for property {prop} already exists."), "target": prop}]),
    )
}

fn bad(g: &GCtx, message: &str) -> Response {
    g.error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

/// Writable user properties and their kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    /// string, with a maximum length; `true` = may be null (cleared)
    Str(usize, bool),
    /// `businessPhones`: "only one number can be set" (graph-notes §17); each at most 64
    /// characters (UNVERIFIED: the notes give no per-item length; mobilePhone's is used).
    Phones,
    /// `usageLocation`: an ISO 3166-1 alpha-2 code (graph-notes §14.3, §17), or null.
    Country,
    /// `preferredLanguage`: an RFC 4646 tag such as `en-US` (graph-notes §17), or null.
    Language,
    PasswordProfile,
    /// any string: the UPN policy (with its own message) decides
    Upn,
}

/// Limits from graph-notes §17 (the user resource page); where the notes have none the choice
/// is said: officeLocation 128 (the B2C attribute table), employeeType 64 (UNVERIFIED: a
/// third-party provider's bound), passwordPolicies/onPremisesImmutableId/mail 256 and
/// userType 16 (UNVERIFIED: generous bounds).
const WRITABLE: &[(&str, Kind)] = &[
    ("accountEnabled", Kind::Bool),
    ("displayName", Kind::Str(256, false)),
    ("givenName", Kind::Str(64, true)),
    ("surname", Kind::Str(64, true)),
    ("jobTitle", Kind::Str(128, true)),
    ("department", Kind::Str(64, true)),
    ("officeLocation", Kind::Str(128, true)),
    ("mobilePhone", Kind::Str(64, true)),
    ("businessPhones", Kind::Phones),
    ("preferredLanguage", Kind::Language),
    ("usageLocation", Kind::Country),
    ("companyName", Kind::Str(64, true)),
    ("employeeId", Kind::Str(16, true)),
    ("employeeType", Kind::Str(64, true)),
    ("city", Kind::Str(128, true)),
    ("state", Kind::Str(128, true)),
    ("country", Kind::Str(128, true)),
    ("postalCode", Kind::Str(40, true)),
    ("streetAddress", Kind::Str(1024, true)),
    ("mailNickname", Kind::Str(64, false)),
    ("userPrincipalName", Kind::Upn),
    ("mail", Kind::Str(256, true)),
    ("passwordProfile", Kind::PasswordProfile),
    ("passwordPolicies", Kind::Str(256, true)),
    ("onPremisesImmutableId", Kind::Str(256, true)),
    ("userType", Kind::Str(16, true)),
];

/// What a user synced from on-premises AD still takes from the cloud; every other property is
/// mastered on-premises. UNVERIFIED (graph-notes §20 leaves the list open): usageLocation
/// (licensing is cloud-only) and passwordPolicies (password expiry is set in the cloud).
const CLOUD_WRITABLE_WHEN_SYNCED: &[&str] = &["usageLocation", "passwordPolicies"];

pub const ON_PREMISES_MASTERED: &str = "Unable to update the specified properties for \
     on-premises mastered Directory Sync objects or objects currently undergoing migration.";

/// `GET`/`DELETE /users/{id}/manager` when there is none (graph-notes §17).
pub const MANAGER_MISSING: &str = "Resource 'manager' does not exist or one of its queried \
     reference-property objects are not present.";

/// Properties that exist but cannot be written. UNVERIFIED text for most (graph-notes §20 has it
/// for `onPremisesSyncEnabled` of the organization): `Property '{name}' is read-only and cannot
/// be set.` (400 Request_BadRequest).
const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "deletedDateTime",
    "proxyAddresses",
    "creationType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "onPremisesSyncEnabled",
    "onPremisesLastSyncDateTime",
    "onPremisesSamAccountName",
    "onPremisesDomainName",
    "onPremisesUserPrincipalName",
    "onPremisesDistinguishedName",
    "onPremisesSecurityIdentifier",
    "signInSessionsValidFromDateTime",
    "assignedLicenses",
    "assignedPlans",
    "licenseAssignmentStates",
];

/// ISO 3166-1 alpha-2, the officially assigned codes.
const ISO_3166: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ \
    BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE \
    DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR \
    GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP \
    KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT \
    MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW \
    PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG \
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A usage location: two letters that are an ISO 3166-1 alpha-2 code (either case; kept as
/// sent: whether Graph upper-cases it is UNVERIFIED).
pub fn country_code_ok(s: &str) -> bool {
    s.len() == 2
        && s.chars().all(|c| c.is_ascii_alphabetic())
        && ISO_3166
            .split_ascii_whitespace()
            .any(|c| c.eq_ignore_ascii_case(s))
}

/// An RFC 4646 language tag as Graph's examples use them: a 2-3 letter language, an optional
/// 4-letter script, an optional 2-letter or 3-digit region (`en`, `en-US`, `zh-Hans-CN`).
/// UNVERIFIED: Graph's exact rule (the notes give the format, not the check).
pub fn language_tag_ok(s: &str) -> bool {
    let mut parts = s.split('-');
    let lang = parts.next().unwrap_or_default();
    if !(2..=3).contains(&lang.len()) || !lang.chars().all(|c| c.is_ascii_alphabetic()) {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    let script = |p: &str| p.len() == 4 && p.chars().all(|c| c.is_ascii_alphabetic());
    let region = |p: &str| {
        (p.len() == 2 && p.chars().all(|c| c.is_ascii_alphabetic()))
            || (p.len() == 3 && p.chars().all(|c| c.is_ascii_digit()))
    };
    match rest.as_slice() {
        [] => true,
        [a] => script(a) || region(a),
        [a, b] => script(a) && region(b),
        _ => false,
    }
}

/// Checks each property of a create/update body: known, writable, well-typed.
/// Returns the canonical (camelCase) name of each property with its value.
fn check_props(
    g: &GCtx,
    body: &Map<String, Value>,
) -> Result<Vec<(&'static str, Value)>, Response> {
    let mut out = Vec::new();
    for (k, v) in body {
        if k.starts_with('@') {
            continue; // @odata.type and other annotations
        }
        if let Some(ro) = READ_ONLY.iter().find(|r| r.eq_ignore_ascii_case(k)) {
            return Err(bad(
                g,
                &format!("Property '{ro}' is read-only and cannot be set."),
            ));
        }
        let Some(&(name, kind)) = WRITABLE.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)) else {
            if let Some(Prop::Unmodeled(..)) = Prop::parse(k) {
                continue; // a real property the simulator does not keep: accepted, ignored
            }
            // UNVERIFIED wording: the OData library's message for an undeclared property.
            return Err(g.error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!(
                    "The property '{k}' does not exist on type 'microsoft.graph.user'. Make sure to only use \
                     property names that are defined by the type or mark the type as open type."
                ),
            ));
        };
        let ok = match kind {
            Kind::Bool => v.is_boolean(),
            Kind::Str(max, nullable) => match v {
                Value::Null => nullable,
                Value::String(s) => s.chars().count() <= max && (nullable || !s.trim().is_empty()),
                _ => false,
            },
            Kind::Phones => v.as_array().is_some_and(|a| {
                a.len() <= 1
                    && a.iter()
                        .all(|x| x.as_str().is_some_and(|s| s.chars().count() <= 64))
            }),
            Kind::Country => match v {
                Value::Null => true,
                Value::String(s) => country_code_ok(s),
                _ => false,
            },
            Kind::Language => match v {
                Value::Null => true,
                Value::String(s) => language_tag_ok(s),
                _ => false,
            },
            Kind::PasswordProfile => v.is_object(),
            Kind::Upn => v.is_string(),
        };
        if !ok {
            return Err(bad(g, &invalid(name)));
        }
        out.push((name, v.clone()));
    }
    Ok(out)
}

fn get<'a>(props: &'a [(&'static str, Value)], name: &str) -> Option<&'a Value> {
    props.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// UPN policy (graph-notes "UPN policy"): one `@`, local part from `A-Z a-z 0-9 ' . - _ ! # ^ ~`,
/// no `.` right before the `@` (nor at the start), total <= 113, local <= 64, domain <= 48.
pub fn upn_well_formed(upn: &str) -> bool {
    let Some((local, domain)) = upn.split_once('@') else {
        return false;
    };
    if domain.contains('@') || local.is_empty() || domain.is_empty() {
        return false;
    }
    if upn.len() > 113 || local.len() > 64 || domain.len() > 48 {
        return false;
    }
    let local_ok = local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c));
    let domain_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok && !local.ends_with('.') && !local.starts_with('.')
}

/// mailNickname: 1..=64 ASCII characters, none of `@ ( ) \ [ ] " ; : < > ,` or space.
pub fn mail_nickname_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control() && !"@()\\[]\";:<>, ".contains(c))
}

const SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ";

/// Cloud password policy (graph-notes "Password rules", current): 8-256 characters from
/// letters, digits and the allowed symbols (no other Unicode), and 3 of the 4 classes unless
/// `DisableStrongPassword` is set.
pub fn password_ok(pw: &str, strong: bool) -> bool {
    let n = pw.chars().count();
    if !(8..=256).contains(&n) {
        return false;
    }
    if !pw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || SYMBOLS.contains(c))
    {
        return false;
    }
    if !strong {
        return true;
    }
    let classes = [
        pw.chars().any(|c| c.is_ascii_lowercase()),
        pw.chars().any(|c| c.is_ascii_uppercase()),
        pw.chars().any(|c| c.is_ascii_digit()),
        pw.chars().any(|c| SYMBOLS.contains(c)),
    ];
    classes.iter().filter(|b| **b).count() >= 3
}

fn strong(policies: Option<&str>) -> bool {
    !policies.is_some_and(|p| {
        p.split(',')
            .any(|x| x.trim().eq_ignore_ascii_case("DisableStrongPassword"))
    })
}

/// The password in a passwordProfile, checked; `Err` is the answer to send.
fn password_from(
    g: &GCtx,
    profile: &Value,
    policies: Option<&str>,
    creating: bool,
) -> Result<(Option<String>, Option<bool>), Response> {
    let force = profile
        .get("forceChangePasswordNextSignIn")
        .and_then(Value::as_bool);
    match profile.get("password") {
        None | Some(Value::Null) if creating => Err(bad(g, &required("passwordProfile"))),
        None | Some(Value::Null) => Ok((None, force)),
        Some(Value::String(pw)) => {
            if password_ok(pw, strong(policies)) {
                Ok((Some(pw.clone()), force))
            } else {
                Err(bad(g, PASSWORD_COMPLEXITY))
            }
        }
        Some(_) => Err(bad(g, &invalid("passwordProfile"))),
    }
}

/// UPN format, then the domain: verified (case-insensitive) and, when federated, an
/// onPremisesImmutableId given.
fn check_upn(g: &GCtx, t: &Tenant, upn: &str, immutable_id: Option<&str>) -> Result<(), Response> {
    if !upn_well_formed(upn) {
        return Err(bad(g, UPN_INVALID));
    }
    let domain = upn.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let Some(d) = t.domains.iter().find(|d| {
        d["isVerified"] == true
            && d["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(domain))
    }) else {
        return Err(bad(g, UPN_DOMAIN));
    };
    if d["authenticationType"] == "Federated" && immutable_id.is_none_or(|s| s.trim().is_empty()) {
        // UNVERIFIED: the notes say onPremisesImmutableId is required for a federated domain but
        // give no wire text; this reuses Graph's "value is required" wording.
        return Err(bad(g, &required("onPremisesImmutableId")));
    }
    Ok(())
}

fn check_mail(g: &GCtx, mail: &str) -> Result<(), Response> {
    let ok = mail.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty()
            && d.contains('.')
            && !d.contains('@')
            && !mail
                .chars()
                .any(|c| c.is_whitespace() || "<>()[];,\"".contains(c))
    });
    if ok {
        Ok(())
    } else {
        Err(bad(g, &invalid("mail")))
    }
}

fn check_immutable_id(g: &GCtx, v: Option<&str>) -> Result<(), Response> {
    if v.is_some_and(|s| s.contains('$') || s.contains('_')) {
        return Err(bad(g, &invalid("onPremisesImmutableId")));
    }
    Ok(())
}

fn body_object(g: &GCtx, body: &[u8], allow_empty: bool) -> Result<Map<String, Value>, Response> {
    if allow_empty && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(g.error(StatusCode::BAD_REQUEST, "BadRequest", BAD_JSON)),
    }
}

/// A user as Graph answers after a write: context, then default properties.
fn entity(g: &GCtx, status: StatusCode, context: &str, odata_type: bool, u: &User) -> Response {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"@odata.context\":");
    let _ = serde_json::to_writer(&mut out, &format!("{}/v1.0/$metadata#{context}", g.base));
    if odata_type {
        out.extend_from_slice(b",\"@odata.type\":\"#microsoft.graph.user\"");
    }
    out.push(b',');
    let mut obj = Vec::with_capacity(1024);
    write_user(&mut obj, u, DEFAULT_PROPS);
    out.extend_from_slice(&obj[1..]);
    g.raw(status, out)
}

/// Synced from on-premises AD (graph-notes §20): its on-premises-mastered properties refuse edits.
pub fn synced(u: &User) -> bool {
    u.ext.get().on_premises_sync_enabled == Some(true)
}

/// The writable string properties kept in [`super::tenant::Extra`].
const EXTRA_STRINGS: &[&str] = &[
    "city",
    "state",
    "country",
    "postalCode",
    "streetAddress",
    "employeeType",
];

/// Sets a writable string property by its Graph name (`None` clears it).
fn set_string(u: &mut User, name: &str, v: Option<String>) {
    let extra = |u: &mut User, f: &dyn Fn(&mut super::tenant::Extra)| {
        if v.is_some() || u.ext != Default::default() {
            f(u.ext.get_mut());
        }
    };
    match name {
        "displayName" => u.display_name = v.clone().unwrap_or_default(),
        "givenName" => u.given_name = v,
        "surname" => u.surname = v,
        "jobTitle" => u.job_title = v,
        "department" => u.department = v,
        "officeLocation" => u.office_location = v,
        "mobilePhone" => u.mobile_phone = v,
        "preferredLanguage" => u.preferred_language = v,
        "usageLocation" => u.usage_location = v,
        "companyName" => u.company_name = v,
        "employeeId" => u.employee_id = v,
        "userType" => u.user_type = v,
        "city" => extra(u, &|x| x.city = v.clone()),
        "state" => extra(u, &|x| x.state = v.clone()),
        "country" => extra(u, &|x| x.country = v.clone()),
        "postalCode" => extra(u, &|x| x.postal_code = v.clone()),
        "streetAddress" => extra(u, &|x| x.street_address = v.clone()),
        "employeeType" => extra(u, &|x| x.employee_type = v.clone()),
        _ => {}
    }
}

pub fn now_iso() -> String {
    format!("{}Z", util::graph_date())
}

/// `POST /users`.
pub fn create_user(st: &State, g: &GCtx, body: &[u8]) -> Response {
    let body = match body_object(g, body, false) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let props = match check_props(g, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    for req in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "passwordProfile",
        "userPrincipalName",
    ] {
        if get(&props, req).is_none_or(Value::is_null) {
            return bad(g, &required(req));
        }
    }
    let s = |n: &str| get(&props, n).and_then(opt_str);
    let upn = s("userPrincipalName").unwrap_or_default();
    let immutable = s("onPremisesImmutableId");
    let policies = s("passwordPolicies");
    let mut t = st.tenant_mut();
    if let Err(r) = check_immutable_id(g, immutable.as_deref()) {
        return r;
    }
    if let Err(r) = check_upn(g, &t, &upn, immutable.as_deref()) {
        return r;
    }
    let nick = s("mailNickname").unwrap_or_default();
    if !mail_nickname_ok(&nick) {
        return bad(g, &invalid("mailNickname"));
    }
    let (password, force) = match password_from(
        g,
        get(&props, "passwordProfile").unwrap_or(&Value::Null),
        policies.as_deref(),
        true,
    ) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mail = s("mail");
    if let Some(m) = &mail {
        if let Err(r) = check_mail(g, m) {
            return r;
        }
    }
    if t.user_index(&upn).is_some() {
        return conflict(g, "userPrincipalName");
    }
    // The primary SMTP address: mail if given, else the UPN. Soft-deleted users still hold theirs.
    let primary = mail.clone().unwrap_or_else(|| upn.clone());
    if t.proxy_holder(&primary).is_some() {
        return conflict(g, "proxyAddresses");
    }
    let phones = get(&props, "businessPhones")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let u = User {
        id: util::new_guid(),
        user_principal_name: upn,
        mail,
        display_name: s("displayName").unwrap_or_default(),
        given_name: s("givenName"),
        surname: s("surname"),
        job_title: s("jobTitle"),
        department: s("department"),
        office_location: s("officeLocation"),
        mobile_phone: s("mobilePhone"),
        business_phones: phones,
        preferred_language: s("preferredLanguage"),
        account_enabled: get(&props, "accountEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        mail_nickname: Some(nick),
        user_type: s("userType").or(Some("Member".into())),
        created_date_time: Some(now_iso()),
        usage_location: s("usageLocation"),
        company_name: s("companyName"),
        employee_id: s("employeeId"),
        on_premises_immutable_id: immutable,
        proxy_addresses: vec![format!("SMTP:{primary}")],
        password_policies: policies,
        deleted_date_time: None,
        ext: Default::default(),
        password,
        force_change_password_next_sign_in: force.unwrap_or(true),
    };
    let mut u = u;
    for (name, v) in &props {
        if EXTRA_STRINGS.contains(name) {
            set_string(&mut u, name, opt_str(v));
        }
    }
    let location = format!(
        "{}/v2/{}/directoryObjects/{}/Microsoft.DirectoryServices.User",
        g.base, t.id, u.id
    );
    let mut resp = entity(g, StatusCode::CREATED, "users/$entity", false, &u);
    t.changes.record(&u.id, What::Created);
    t.insert_user(u);
    drop(t);
    st.note_write();
    resp.headers_mut().insert(header::LOCATION, hv(&location));
    resp
}

/// `PATCH /users/{id|upn}`: 204, all or nothing.
pub fn update_user(st: &State, g: &GCtx, key: &str, body: &[u8]) -> Response {
    let body = match body_object(g, body, false) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let props = match check_props(g, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut t = st.tenant_mut();
    let Some(idx) = t.user_index(key) else {
        return g.not_found(key);
    };
    if synced(&t.users[idx])
        && props
            .iter()
            .any(|(n, _)| !CLOUD_WRITABLE_WHEN_SYNCED.contains(n))
    {
        return bad(g, ON_PREMISES_MASTERED);
    }
    let s = |n: &str| get(&props, n).and_then(opt_str);
    let cur = t.users[idx].clone();
    let mut u = cur.clone();
    let policies = match get(&props, "passwordPolicies") {
        Some(v) => opt_str(v),
        None => cur.password_policies.clone(),
    };
    let immutable = match get(&props, "onPremisesImmutableId") {
        Some(v) => opt_str(v),
        None => cur.on_premises_immutable_id.clone(),
    };
    if let Err(r) = check_immutable_id(g, immutable.as_deref()) {
        return r;
    }
    let mut keys_changed = false;
    if let Some(upn) = s("userPrincipalName") {
        if !upn.eq_ignore_ascii_case(&cur.user_principal_name) {
            if let Err(r) = check_upn(g, &t, &upn, immutable.as_deref()) {
                return r;
            }
            if t.user_index(&upn).is_some_and(|i| i != idx) {
                return conflict(g, "userPrincipalName");
            }
        }
        keys_changed |= upn != cur.user_principal_name;
        u.user_principal_name = upn;
    }
    if let Some(v) = get(&props, "mailNickname") {
        let nick = v.as_str().unwrap_or_default();
        if !mail_nickname_ok(nick) {
            return bad(g, &invalid("mailNickname"));
        }
        u.mail_nickname = Some(nick.to_owned());
    }
    if let Some(v) = get(&props, "passwordProfile") {
        match password_from(g, v, policies.as_deref(), false) {
            Ok((pw, force)) => {
                if pw.is_some() {
                    u.password = pw;
                }
                if let Some(f) = force {
                    u.force_change_password_next_sign_in = f;
                }
            }
            Err(r) => return r,
        }
    }
    let mut new_address = None;
    if let Some(v) = get(&props, "mail") {
        let mail = opt_str(v);
        if let Some(m) = &mail {
            if let Err(r) = check_mail(g, m) {
                return r;
            }
            if t.proxy_holder(m).is_some_and(|h| h != cur.id) {
                return conflict(g, "proxyAddresses");
            }
            if !cur
                .mail
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(m))
            {
                // The new mail becomes the primary address; the old primary stays as secondary.
                for p in &mut u.proxy_addresses {
                    if let Some(rest) = p.strip_prefix("SMTP:") {
                        *p = format!("smtp:{rest}");
                    }
                }
                u.proxy_addresses.retain(|p| {
                    !p.split_once(':')
                        .is_some_and(|(_, a)| a.eq_ignore_ascii_case(m))
                });
                u.proxy_addresses.insert(0, format!("SMTP:{m}"));
                new_address = Some(m.to_lowercase());
            }
        }
        keys_changed |= mail != cur.mail;
        u.mail = mail;
    }
    for (name, v) in &props {
        match *name {
            "accountEnabled" => u.account_enabled = v.as_bool().unwrap_or(u.account_enabled),
            "displayName" => {
                keys_changed |= v.as_str() != Some(cur.display_name.as_str());
                set_string(&mut u, name, opt_str(v));
            }
            "businessPhones" => {
                u.business_phones = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            other => set_string(&mut u, other, opt_str(v)),
        }
    }
    u.password_policies = policies;
    u.on_premises_immutable_id = immutable;
    let id = u.id.clone();
    t.changes
        .record(&id, What::Updated(changed_props(&cur, &u)));
    t.users[idx] = u;
    if let Some(a) = new_address {
        t.proxies.insert(a, id);
    }
    if keys_changed {
        t.rekey_user(idx, &cur);
    }
    drop(t);
    st.note_write();
    g.no_content()
}

/// Moves the live user at `idx` to the deleted items; its addresses stay held.
pub fn soft_delete_at(t: &mut Tenant, idx: usize) {
    let mut u = t.remove_user(idx);
    super::licences::release(t, &u);
    u.deleted_date_time = Some(now_iso());
    t.changes.record(&u.id, What::SoftDeleted);
    t.deleted.push(u);
}

/// `DELETE /users/{id|upn}`: 204, the user goes to the deleted items for 30 days.
pub fn delete_user(st: &State, g: &GCtx, key: &str) -> Response {
    let mut t = st.tenant_mut();
    let Some(idx) = t.user_index(key) else {
        return g.not_found(key);
    };
    soft_delete_at(&mut t, idx);
    drop(t);
    st.note_write();
    g.no_content()
}

fn deleted_index(t: &Tenant, id: &str) -> Option<usize> {
    t.deleted.iter().position(|u| u.id.eq_ignore_ascii_case(id))
}

/// `GET /directory/deletedItems/{id}`.
pub fn get_deleted(st: &State, g: &GCtx, id: &str) -> Response {
    let t = st.tenant();
    match deleted_index(&t, id) {
        Some(i) => {
            let u = &t.deleted[i];
            let mut out = Vec::with_capacity(1024);
            out.extend_from_slice(b"{\"@odata.context\":");
            let _ = serde_json::to_writer(
                &mut out,
                &format!("{}/v1.0/$metadata#directoryObjects/$entity", g.base),
            );
            out.extend_from_slice(b",\"@odata.type\":\"#microsoft.graph.user\",");
            let mut props = DEFAULT_PROPS.to_vec();
            props.push(Prop::DeletedDateTime);
            let mut obj = Vec::new();
            write_user(&mut obj, u, &props);
            out.extend_from_slice(&obj[1..]);
            g.raw(StatusCode::OK, out)
        }
        None => g.not_found(id),
    }
}

/// `POST /directory/deletedItems/{id}/restore`, optional body `newUserPrincipalName`,
/// `autoReconcileProxyConflict`.
///
/// UNVERIFIED (the notes give no text for a restore conflict): when a live user now holds the
/// UPN the answer is the create-time conflict, `400 Request_BadRequest` `Another object with the
/// same value for property userPrincipalName already exists.` with details
/// `[{code: ObjectConflict, target: userPrincipalName}]`; a proxy address held by another object
/// gives the same shape for `proxyAddresses` unless `autoReconcileProxyConflict` is true (then the
/// conflicting addresses are dropped from the restored user).
pub fn restore(st: &State, g: &GCtx, id: &str, body: &[u8]) -> Response {
    let body = match body_object(g, body, true) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let new_upn = match body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("newUserPrincipalName"))
    {
        None => None,
        Some((_, Value::String(s))) => Some(s.clone()),
        Some((_, Value::Null)) => None,
        Some(_) => return bad(g, &invalid("newUserPrincipalName")),
    };
    let reconcile = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("autoReconcileProxyConflict"))
        .and_then(|(_, v)| v.as_bool())
        .unwrap_or(false);
    let mut t = st.tenant_mut();
    let Some(di) = deleted_index(&t, id) else {
        return g.not_found(id);
    };
    let mut u = t.deleted[di].clone();
    if let Some(upn) = &new_upn {
        if let Err(r) = check_upn(g, &t, upn, u.on_premises_immutable_id.as_deref()) {
            return r;
        }
    }
    let upn = new_upn.unwrap_or_else(|| u.user_principal_name.clone());
    if t.user_index(&upn).is_some() {
        return conflict(g, "userPrincipalName");
    }
    let taken: Vec<String> = smtp_addresses(&u)
        .into_iter()
        .filter(|a| {
            t.proxy_holder(a)
                .is_some_and(|h| !h.eq_ignore_ascii_case(&u.id))
        })
        .collect();
    if !taken.is_empty() {
        if !reconcile {
            return conflict(g, "proxyAddresses");
        }
        u.proxy_addresses.retain(|p| {
            !p.split_once(':')
                .is_some_and(|(_, a)| taken.contains(&a.to_lowercase()))
        });
        if u.mail
            .as_ref()
            .is_some_and(|m| taken.contains(&m.to_lowercase()))
        {
            u.mail = None;
        }
    }
    t.deleted.remove(di);
    u.user_principal_name = upn;
    u.deleted_date_time = None;
    let resp = entity(g, StatusCode::OK, "directoryObjects/$entity", true, &u);
    t.changes.record(&u.id, What::Restored);
    super::licences::retake(&mut t, &u);
    t.insert_user(u);
    drop(t);
    st.note_write();
    resp
}

/// `DELETE /directory/deletedItems/{id}`: gone for good; its addresses are free at once.
pub fn purge(st: &State, g: &GCtx, id: &str) -> Response {
    let mut t = st.tenant_mut();
    let Some(di) = deleted_index(&t, id) else {
        return g.not_found(id);
    };
    let u = t.deleted.remove(di);
    t.release_addresses(&u.id);
    t.changes.record(&u.id, What::Purged);
    drop(t);
    st.note_write();
    g.no_content()
}

/// `PUT /users/{id|upn}/manager/$ref` with `{"@odata.id": ".../users/{id}"}` (or
/// `.../directoryObjects/{id}`): 204 (graph-notes §17). The manager must be a live user of the
/// tenant (404 otherwise, as for any missing object). A user synced from on-premises AD has its
/// manager mastered there (400). UNVERIFIED: the answer to a body without `@odata.id` (the
/// groups' `Invalid object identifier` wording is used) and whether a user may be their own
/// manager (accepted: no rule found).
pub fn put_manager(st: &State, g: &GCtx, key: &str, body: &[u8]) -> Response {
    let body = match body_object(g, body, false) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(target) = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("@odata.id"))
        .and_then(|(_, v)| v.as_str())
    else {
        return bad(g, "Invalid object identifier ''.");
    };
    let Some(manager) = super::groups::ref_id(target) else {
        return bad(g, &format!("Invalid object identifier '{target}'."));
    };
    let mut t = st.tenant_mut();
    let Some(idx) = t.user_index(key) else {
        return g.not_found(key);
    };
    let Some(mid) = t
        .user(manager)
        .filter(|m| m.id.eq_ignore_ascii_case(manager))
        .map(|m| m.id.clone())
    else {
        return g.not_found(manager);
    };
    if synced(&t.users[idx]) {
        return bad(g, ON_PREMISES_MASTERED);
    }
    let old = t.users[idx].ext.get().manager.clone();
    if old.as_deref() != Some(mid.as_str()) {
        t.users[idx].ext.get_mut().manager = Some(mid);
        let id = t.users[idx].id.clone();
        t.changes.record(&id, What::Manager(old));
    }
    drop(t);
    st.note_write();
    g.no_content()
}

/// The live manager of the user at `idx`, if any (a soft-deleted manager is not present).
pub fn manager_of<'t>(t: &'t Tenant, u: &User) -> Option<&'t User> {
    let mid = u.ext.get().manager.as_deref()?;
    t.user(mid).filter(|m| m.id.eq_ignore_ascii_case(mid))
}

/// `DELETE /users/{id|upn}/manager/$ref`: 204; 404 when there is no manager.
pub fn delete_manager(st: &State, g: &GCtx, key: &str) -> Response {
    let mut t = st.tenant_mut();
    let Some(idx) = t.user_index(key) else {
        return g.not_found(key);
    };
    if manager_of(&t, &t.users[idx]).is_none() {
        return g.error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            MANAGER_MISSING,
        );
    }
    if synced(&t.users[idx]) {
        return bad(g, ON_PREMISES_MASTERED);
    }
    let old = t.users[idx].ext.get_mut().manager.take();
    let id = t.users[idx].id.clone();
    t.changes.record(&id, What::Manager(old));
    drop(t);
    st.note_write();
    g.no_content()
}

/// `POST /users/{id|upn}/revokeSignInSessions` (and `/me/...`): 200 with an `Edm.Boolean`
/// `true` (graph-notes §15: Graph answers 200 although 204 was meant), sets
/// `signInSessionsValidFromDateTime`; refresh tokens issued before it are refused from then on
/// (module `identity`, AADSTS50173). Guests and synced users answer the same.
pub fn revoke_sessions(st: &State, g: &GCtx, key: &str) -> Response {
    let mut t = st.tenant_mut();
    let Some(idx) = t.user_index(key) else {
        return g.not_found(key);
    };
    let cur = t.users[idx].clone();
    let x = t.users[idx].ext.get_mut();
    x.sign_in_sessions_valid_from_date_time = Some(now_iso());
    x.sessions_valid_from_ms = Some(util::unique_now_ms());
    let bits = changed_props(&cur, &t.users[idx]);
    t.changes.record(&cur.id, What::Updated(bits));
    drop(t);
    st.note_write();
    g.ok(&json!({
        "@odata.context": format!("{}/v1.0/$metadata#Edm.Boolean", g.base),
        "value": true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upn_policy() {
        assert!(upn_well_formed("a.b-c_d'e!f#g^h~i@contoso.com"));
        assert!(!upn_well_formed("a.@contoso.com"));
        assert!(!upn_well_formed("a@b@contoso.com"));
        assert!(!upn_well_formed("a b@contoso.com"));
        assert!(!upn_well_formed("josé@contoso.com"));
        assert!(!upn_well_formed(&format!("{}@contoso.com", "a".repeat(65))));
        assert!(upn_well_formed(&format!("{}@contoso.com", "a".repeat(64))));
        assert!(!upn_well_formed(&format!("a@{}.com", "b".repeat(45))));
        assert!(!upn_well_formed("nobody"));
    }

    #[test]
    fn password_policy() {
        assert!(password_ok("Passw0rd", true));
        assert!(password_ok("passw0rd!", true));
        assert!(!password_ok("password1", true));
        assert!(password_ok("password1", false));
        assert!(!password_ok("Sh0rt!", true));
        assert!(!password_ok("Pässw0rd!", true));
        assert!(!password_ok(&"Aa1!".repeat(65), true));
        assert!(password_ok(&"Aa1!".repeat(64), true));
    }

    #[test]
    fn nickname_policy() {
        assert!(mail_nickname_ok("jane.doe"));
        for bad in ["", "a b", "a@b", "a(b", "a\\b", "a\"b", "a;b", "a,b", "é"] {
            assert!(!mail_nickname_ok(bad), "{bad}");
        }
        assert!(!mail_nickname_ok(&"a".repeat(65)));
    }
}
