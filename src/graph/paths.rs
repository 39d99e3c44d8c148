//! The Graph URLs m365sync uses, relative to the version root (`/users/{id}`), with every
//! id or UPN percent-encoded as one path segment. The only place outside `graph/` may take a
//! Graph path from: `GraphClient` methods and [`super::requests`] build on these.
//!
//! A guest's UPN (`a_contoso.com#EXT#@fabrikam.onmicrosoft.com`) must reach Graph with `#` as
//! `%23`, or everything after it is a URL fragment that is never sent.

/// One path segment, percent-encoded: everything except `A-Z a-z 0-9 - . _ ~` and `@` is sent
/// as `%XX` (UTF-8), so `#`, `'`, `/`, `?`, `%`, spaces and non-ASCII letters stay inside the
/// segment.
pub fn segment(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xF) as usize] as char);
        }
    }
    out
}

/// A query option's value (`$filter=...`), percent-encoded as [`segment`] does: quotes, `#`,
/// `&`, `+`, `=` and spaces reach Graph as written (`@` is literal in a query too).
pub fn query_value(s: &str) -> String {
    segment(s)
}

/// `/users/delta`: the users' change feed (graph-notes §7, §18).
pub const USERS_DELTA: &str = "/users/delta";

/// `/users`: list (GET) or create (POST) users.
pub const USERS: &str = "/users";

/// `/groups`: list (GET) or create (POST) groups.
pub const GROUPS: &str = "/groups";

/// `/domains`.
pub const DOMAINS: &str = "/domains";

/// `/directory/deletedItems/microsoft.graph.user`: the soft-deleted users (the OData cast is
/// mandatory, graph-notes §2).
pub const DELETED_USERS: &str = "/directory/deletedItems/microsoft.graph.user";

/// `/$batch`.
pub const BATCH: &str = "/$batch";

/// `/users/{id | userPrincipalName}`.
pub fn user(id_or_upn: &str) -> String {
    format!("/users/{}", segment(id_or_upn))
}

/// `/groups/{id}`.
pub fn group(id: &str) -> String {
    format!("/groups/{}", segment(id))
}

/// `/groups/{id}/members`: list the direct members.
pub fn members(group_id: &str) -> String {
    format!("/groups/{}/members", segment(group_id))
}

/// `/groups/{id}/members/$ref`: add a member (POST with an `@odata.id` body).
pub fn members_ref(group_id: &str) -> String {
    format!("/groups/{}/members/$ref", segment(group_id))
}

/// `/groups/{id}/members/{member-id}/$ref`: remove a member (DELETE). Never drop the `/$ref`:
/// without it the DELETE deletes the member object itself.
pub fn member_ref(group_id: &str, member_id: &str) -> String {
    format!(
        "/groups/{}/members/{}/$ref",
        segment(group_id),
        segment(member_id)
    )
}

/// `/users/{id}/manager`: read the manager (404 `Request_ResourceNotFound` when none).
pub fn manager(user_id: &str) -> String {
    format!("/users/{}/manager", segment(user_id))
}

/// `/users/{id}/manager/$ref`: set (PUT with an `@odata.id` body) or remove (DELETE) the
/// manager.
pub fn manager_ref(user_id: &str) -> String {
    format!("/users/{}/manager/$ref", segment(user_id))
}

/// `{base}/users/{id}`: the absolute `@odata.id` of a user, as a manager `$ref` names it.
pub fn user_url(base: &str, id: &str) -> String {
    format!("{}/users/{}", base.trim_end_matches('/'), segment(id))
}

/// `/directory/deletedItems/{id}`: get or purge (DELETE) a soft-deleted object.
pub fn deleted_item(id: &str) -> String {
    format!("/directory/deletedItems/{}", segment(id))
}

/// `/directory/deletedItems/{id}/restore` (POST).
pub fn restore(id: &str) -> String {
    format!("/directory/deletedItems/{}/restore", segment(id))
}

/// `/subscribedSkus`: the tenant's licences and their seats (graph-notes §14.1).
pub const SUBSCRIBED_SKUS: &str = "/subscribedSkus";

/// `/users/{id}/assignLicense` (POST): add and remove licences (graph-notes §14.2).
pub fn assign_license(user_id: &str) -> String {
    format!("/users/{}/assignLicense", segment(user_id))
}

/// `{base}/directoryObjects/{id}`: the absolute `@odata.id` of an object, as `$ref` bodies
/// name it. `base` is the client's (`https://graph.microsoft.com/v1.0`).
pub fn directory_object_url(base: &str, id: &str) -> String {
    format!(
        "{}/directoryObjects/{}",
        base.trim_end_matches('/'),
        segment(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_ids_and_upns_inside_one_segment() {
        assert_eq!(segment("ann@contoso.com"), "ann@contoso.com");
        assert_eq!(
            segment("a_contoso.com#EXT#@fabrikam.onmicrosoft.com"),
            "a_contoso.com%23EXT%23@fabrikam.onmicrosoft.com"
        );
        assert_eq!(segment("o'brien@contoso.com"), "o%27brien@contoso.com");
        assert_eq!(segment("a/b?c d%e+f&g"), "a%2Fb%3Fc%20d%25e%2Bf%26g");
        assert_eq!(segment("zoë"), "zo%C3%AB");
        assert_eq!(
            segment("7d1c-ABC_x.y~z"),
            "7d1c-ABC_x.y~z",
            "unreserved characters stay"
        );
    }

    #[test]
    fn paths() {
        assert_eq!(user("o'brien@x.com"), "/users/o%27brien@x.com");
        assert_eq!(group("g1"), "/groups/g1");
        assert_eq!(members("g1"), "/groups/g1/members");
        assert_eq!(members_ref("g1"), "/groups/g1/members/$ref");
        assert_eq!(member_ref("g 1", "u#1"), "/groups/g%201/members/u%231/$ref");
        assert_eq!(deleted_item("d1"), "/directory/deletedItems/d1");
        assert_eq!(restore("d1"), "/directory/deletedItems/d1/restore");
        assert_eq!(
            directory_object_url("https://graph.microsoft.com/v1.0/", "u1"),
            "https://graph.microsoft.com/v1.0/directoryObjects/u1"
        );
    }
}
