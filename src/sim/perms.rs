//! Which Microsoft Graph permission a request needs, written from graph-notes (§1-4, §16) and
//! the permission tables of the Graph API pages, not from the client's code.
//!
//! A token carries its permissions: an app-only token the application permissions an admin
//! consented to (`roles`), a delegated token its scopes (`scp`). A request is allowed when the
//! token holds ANY of the permissions its operation lists; otherwise Graph answers
//! `403 Authorization_RequestDenied` `Insufficient privileges to complete the operation.`
//! (graph-notes §5). `$batch` items are checked one by one, each with its own 403.
//!
//! Where the tables differ between the two kinds of token, [`Need`] says so: purging a user
//! from the deleted items has no application permission at all (graph-notes §16, the
//! `directory-deleteditems-delete` table: "Application: Not supported."), and `/me` has no
//! meaning for an app (the route answers that, not this table).
//!
//! Directory.ReadWrite.All does not allow deleting users or groups (Microsoft's permission
//! reference: it "does not allow the app to delete users or groups"), so it is absent from
//! the delete rows; `Directory.AccessAsUser.All` (delegated only) acts as the signed-in user
//! (the seed's admin) and is in every delegated row.
//!
//! Routes this table does not name (the service root, the answers 400/405/501) need nothing
//! here: the route answers them as before.

use axum::http::Method;

const USER_READ: &[&str] = &[
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
const USER_WRITE: &[&str] = &[
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// PATCH of `accountEnabled` alone (graph-notes §16: least `User.ManageIdentities.All`,
/// higher `User.EnableDisableAccount.All`, `User.ReadWrite.All`, `Directory.ReadWrite.All`).
const USER_ENABLE: &[&str] = &[
    "User.ManageIdentities.All",
    "User.EnableDisableAccount.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
const USER_DELETE: &[&str] = &[
    "User.DeleteRestore.All",
    "User.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// Restore (graph-notes §2: `User.ReadWrite.All`, newer `User.DeleteRestore.All`).
const USER_RESTORE: &[&str] = &[
    "User.DeleteRestore.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// Purge: delegated only (graph-notes §16).
const USER_PURGE: &[&str] = &[
    "User.DeleteRestore.All",
    "User.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// `revokeSignInSessions` (graph-notes §15: delegated least `User.ReadWrite.All`, application
/// `Directory.ReadWrite.All` and `User.ReadWrite.All` on the older page; the newer
/// least-privileged `User.RevokeSessions.All`).
const USER_REVOKE: &[&str] = &[
    "User.RevokeSessions.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// `assignLicense` on a user (graph-notes §14.2: least `LicenseAssignment.ReadWrite.All`,
/// higher `User.ReadWrite.All`, `Directory.ReadWrite.All`).
const LICENCE_ASSIGN: &[&str] = &[
    "LicenseAssignment.ReadWrite.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// `assignLicense` on a group (graph-notes §14.4).
const GROUP_LICENCE_ASSIGN: &[&str] = &[
    "LicenseAssignment.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// `GET /subscribedSkus` (graph-notes §14.1: least `Organization.Read.All`).
const SKU_READ: &[&str] = &[
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// Listing deleted users (graph-notes §2: `User.Read.All`, and anything above it).
const DELETED_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "User.DeleteRestore.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
const GROUP_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// POST /groups (graph-notes §4: `Group.Create`, `Group.ReadWrite.All`, `Directory.ReadWrite.All`).
const GROUP_CREATE: &[&str] = &[
    "Group.Create",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
const GROUP_UPDATE: &[&str] = &[
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
const GROUP_DELETE: &[&str] = &["Group.ReadWrite.All", "Directory.AccessAsUser.All"];
/// Member add and remove (graph-notes §4: `GroupMember.ReadWrite.All`, and above it).
const MEMBER_WRITE: &[&str] = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// graph-notes §3.
const DOMAIN_READ: &[&str] = &[
    "Domain.Read.All",
    "Domain.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
const ORG_READ: &[&str] = &[
    "User.Read",
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
/// `/me`: the signed-in user's own profile.
const ME: &[&str] = &[
    "User.Read",
    "User.ReadWrite",
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
const NOT_SUPPORTED: &[&str] = &[];

/// What an operation needs, per kind of token: `None` = not checked here, `Some(&[])` = no
/// permission allows it for that kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub app: Option<&'static [&'static str]>,
    pub delegated: Option<&'static [&'static str]>,
}

impl Need {
    const NOTHING: Need = Need {
        app: None,
        delegated: None,
    };
    const fn both(p: &'static [&'static str]) -> Need {
        Need {
            app: Some(p),
            delegated: Some(p),
        }
    }

    /// Does a token holding `granted` pass? `app_only`: an app token (`roles`), else delegated.
    pub fn allows(&self, app_only: bool, granted: &[String]) -> bool {
        let want = if app_only { self.app } else { self.delegated };
        match want {
            None => true,
            Some(any) => any
                .iter()
                .any(|p| granted.iter().any(|g| g.eq_ignore_ascii_case(p))),
        }
    }
}

/// The permission the request `method` on `/v1.0/{segs...}` needs (`segs` already
/// percent-decoded); `body` is looked at only to tell a PATCH of `accountEnabled` alone.
pub fn need(method: &Method, segs: &[&str], body: &[u8]) -> Need {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let get = *method == Method::GET;
    let (post, patch, delete) = (
        *method == Method::POST,
        *method == Method::PATCH,
        *method == Method::DELETE,
    );
    let put = *method == Method::PUT;
    let action = |seg: &str, name: &str| {
        eq(seg, name)
            || seg
                .strip_prefix("microsoft.graph.")
                .is_some_and(|s| eq(s, name))
    };
    match segs {
        // The manager reference (graph-notes §17: User.ReadWrite.All, Directory.ReadWrite.All).
        [users, _, mgr, r]
            if eq(users, "users") && eq(mgr, "manager") && *r == "$ref" && (put || delete) =>
        {
            Need::both(USER_WRITE)
        }
        [users, _, a] if eq(users, "users") && action(a, "revokeSignInSessions") && post => {
            Need::both(USER_REVOKE)
        }
        [users, _, a] if eq(users, "users") && action(a, "assignLicense") && post => {
            Need::both(LICENCE_ASSIGN)
        }
        [groups, _, a] if eq(groups, "groups") && action(a, "assignLicense") && post => {
            Need::both(GROUP_LICENCE_ASSIGN)
        }
        [skus, ..] if eq(skus, "subscribedSkus") && get => Need::both(SKU_READ),
        [me, a] if eq(me, "me") && action(a, "revokeSignInSessions") && post => Need {
            app: None,
            delegated: Some(USER_REVOKE),
        },
        [users, ..] if eq(users, "users") => match segs.len() {
            1 if get => Need::both(USER_READ),
            1 if post => Need::both(USER_WRITE),
            2 if get => Need::both(USER_READ),
            2 if patch && only_account_enabled(body) => Need::both(USER_ENABLE),
            2 if patch => Need::both(USER_WRITE),
            2 if delete => Need::both(USER_DELETE),
            _ if get => Need::both(USER_READ),
            _ => Need::NOTHING,
        },
        [me, ..] if eq(me, "me") => Need {
            app: None,
            delegated: Some(ME),
        },
        [dir, del, more @ ..] if eq(dir, "directory") && eq(del, "deletedItems") => match more {
            [_] if delete => Need {
                app: Some(NOT_SUPPORTED),
                delegated: Some(USER_PURGE),
            },
            [_, action]
                if post && (eq(action, "restore") || eq(action, "microsoft.graph.restore")) =>
            {
                Need::both(USER_RESTORE)
            }
            _ if get => Need::both(DELETED_READ),
            _ => Need::NOTHING,
        },
        [groups, more @ ..] if eq(groups, "groups") => match more {
            [] if get => Need::both(GROUP_READ),
            [] if post => Need::both(GROUP_CREATE),
            [_] if patch => Need::both(GROUP_UPDATE),
            [_] if delete => Need::both(GROUP_DELETE),
            [_, members, r] if eq(members, "members") && *r == "$ref" && post => {
                Need::both(MEMBER_WRITE)
            }
            [_, members, _, r] if eq(members, "members") && *r == "$ref" && delete => {
                Need::both(MEMBER_WRITE)
            }
            _ if get => Need::both(GROUP_READ),
            _ => Need::NOTHING,
        },
        [domains, ..] if eq(domains, "domains") && get => Need::both(DOMAIN_READ),
        [org, ..] if eq(org, "organization") && get => Need::both(ORG_READ),
        _ => Need::NOTHING,
    }
}

/// A PATCH body that sets `accountEnabled` and nothing else.
fn only_account_enabled(body: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => {
            !m.is_empty() && m.keys().all(|k| k.eq_ignore_ascii_case("accountEnabled"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn group_writes_need_group_permissions() {
        let users_only = granted(&["User.ReadWrite.All", "Domain.Read.All"]);
        let create = need(&Method::POST, &["groups"], b"{}");
        assert!(!create.allows(true, &users_only));
        assert!(create.allows(true, &granted(&["Group.Create"])));
        assert!(create.allows(true, &granted(&["directory.readwrite.all"])));
        let add = need(&Method::POST, &["groups", "g", "members", "$ref"], b"{}");
        assert!(!add.allows(true, &users_only));
        assert!(!add.allows(true, &granted(&["Group.Create"])));
        assert!(add.allows(true, &granted(&["GroupMember.ReadWrite.All"])));
        let remove = need(
            &Method::DELETE,
            &["groups", "g", "members", "u", "$ref"],
            b"",
        );
        assert_eq!(remove, add);
        let read = need(&Method::GET, &["groups"], b"");
        assert!(!read.allows(true, &users_only));
        assert!(read.allows(true, &granted(&["GroupMember.Read.All"])));
        // Directory.ReadWrite.All may update a group but not delete one.
        let dir = granted(&["Directory.ReadWrite.All"]);
        assert!(need(&Method::PATCH, &["groups", "g"], b"{}").allows(true, &dir));
        assert!(!need(&Method::DELETE, &["groups", "g"], b"").allows(true, &dir));
    }

    #[test]
    fn restore_and_purge() {
        let restore = need(
            &Method::POST,
            &["directory", "deletedItems", "x", "restore"],
            b"",
        );
        assert!(restore.allows(true, &granted(&["User.DeleteRestore.All"])));
        assert!(!restore.allows(true, &granted(&["User.Read.All", "Group.Read.All"])));
        let purge = need(&Method::DELETE, &["directory", "deletedItems", "x"], b"");
        let all = granted(&["User.ReadWrite.All", "Directory.ReadWrite.All"]);
        assert!(
            !purge.allows(true, &all),
            "no application permission purges"
        );
        assert!(purge.allows(false, &all));
        assert!(!purge.allows(false, &granted(&["Directory.ReadWrite.All"])));
    }

    #[test]
    fn users_domains_me_and_the_rest() {
        let ro = granted(&["User.Read.All"]);
        assert!(need(&Method::GET, &["users"], b"").allows(true, &ro));
        assert!(!need(&Method::POST, &["users"], b"{}").allows(true, &ro));
        let block = br#"{"accountEnabled":false}"#;
        let enable_only = granted(&["User.EnableDisableAccount.All"]);
        assert!(need(&Method::PATCH, &["users", "u"], block).allows(true, &enable_only));
        let rename = br#"{"accountEnabled":false,"displayName":"x"}"#;
        assert!(!need(&Method::PATCH, &["users", "u"], rename).allows(true, &enable_only));
        assert!(!need(&Method::GET, &["domains"], b"").allows(true, &ro));
        // /me is the route's business for apps; a delegated token needs a user scope.
        assert!(need(&Method::GET, &["me"], b"").allows(true, &[]));
        assert!(!need(&Method::GET, &["me"], b"").allows(false, &[]));
        assert!(need(&Method::GET, &[], b"").allows(true, &[]));
        assert!(need(&Method::POST, &["subscribedSkus"], b"").allows(true, &[]));
    }

    #[test]
    fn licences() {
        let assign = need(&Method::POST, &["users", "u", "assignLicense"], b"{}");
        assert_eq!(
            assign,
            need(
                &Method::POST,
                &["users", "u", "microsoft.graph.assignLicense"],
                b"{}"
            )
        );
        assert!(assign.allows(true, &granted(&["LicenseAssignment.ReadWrite.All"])));
        assert!(assign.allows(true, &granted(&["User.ReadWrite.All"])));
        assert!(!assign.allows(true, &granted(&["User.Read.All", "Organization.Read.All"])));
        let group = need(&Method::POST, &["groups", "g", "assignLicense"], b"{}");
        assert!(group.allows(true, &granted(&["Group.ReadWrite.All"])));
        assert!(!group.allows(true, &granted(&["User.ReadWrite.All"])));
        let skus = need(&Method::GET, &["subscribedSkus"], b"");
        assert!(skus.allows(true, &granted(&["Organization.Read.All"])));
        assert!(skus.allows(true, &granted(&["Directory.Read.All"])));
        assert!(!skus.allows(true, &granted(&["User.Read.All", "User.ReadWrite.All"])));
    }

    #[test]
    fn manager_and_revoke() {
        let put = need(&Method::PUT, &["users", "u", "manager", "$ref"], b"{}");
        assert!(!put.allows(true, &granted(&["User.Read.All"])));
        assert!(put.allows(true, &granted(&["User.ReadWrite.All"])));
        let del = need(&Method::DELETE, &["users", "u", "manager", "$ref"], b"");
        assert_eq!(del, put);
        let get = need(&Method::GET, &["users", "u", "manager"], b"");
        assert!(get.allows(true, &granted(&["User.Read.All"])));
        for seg in [
            "revokeSignInSessions",
            "microsoft.graph.revokeSignInSessions",
        ] {
            let r = need(&Method::POST, &["users", "u", seg], b"");
            assert!(r.allows(true, &granted(&["User.RevokeSessions.All"])));
            assert!(r.allows(true, &granted(&["Directory.ReadWrite.All"])));
            assert!(!r.allows(
                true,
                &granted(&["User.Read.All", "User.EnableDisableAccount.All"])
            ));
        }
        let me = need(&Method::POST, &["me", "revokeSignInSessions"], b"");
        assert!(!me.allows(false, &granted(&["User.Read"])));
        assert!(me.allows(false, &granted(&["User.ReadWrite.All"])));
    }
}
