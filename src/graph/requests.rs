//! The requests m365sync sends inside `$batch`, as [`BatchRequest`]s: URL (from
//! [`super::paths`], every id and UPN percent-encoded) and body in one place. `id` is the
//! item's id in its batch (unique in the batch, e.g. `"1"`..`"20"`).
//!
//! ```
//! use m365sync::graph::requests::{self, NewUser};
//! let user = NewUser::new("ann@contoso.com", "Ann Lee", "ann", "Temp-Pa55word!");
//! let batch = vec![
//!     requests::create_user("1", &user),
//!     requests::set_account_enabled("2", "o'brien@contoso.com", false),
//!     requests::add_member("3", "https://graph.microsoft.com/v1.0", "group-id", "user-id"),
//! ];
//! assert_eq!(batch[1].url, "/users/o%27brien@contoso.com");
//! ```
//!
//! Permissions are those of graph-notes §2, §4 and §16 (least privileged first where Microsoft
//! documents one).
use reqwest::Method;
use serde_json::{json, Value};

use super::batch::BatchRequest;
use super::model::{GROUP_SELECT, USER_SELECT};
use super::paths;

/// `passwordProfile` of a user. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordProfile {
    pub password: String,
    pub force_change_password_next_sign_in: bool,
}

impl std::fmt::Debug for PasswordProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordProfile")
            .field(
                "password",
                &format_args!("({} chars)", self.password.chars().count()),
            )
            .field(
                "force_change_password_next_sign_in",
                &self.force_change_password_next_sign_in,
            )
            .finish()
    }
}

impl PasswordProfile {
    fn to_json(&self) -> Value {
        json!({
            "password": self.password,
            "forceChangePasswordNextSignIn": self.force_change_password_next_sign_in,
        })
    }
}

/// The body of `POST /users`: the required properties (graph-notes §2) and the optional ones
/// m365sync sets. An optional property that is `None` is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub account_enabled: bool,
    pub display_name: String,
    pub mail_nickname: String,
    pub user_principal_name: String,
    pub password_profile: PasswordProfile,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    /// Required when the UPN's domain is federated.
    pub on_premises_immutable_id: Option<String>,
}

impl NewUser {
    /// An enabled account with a temporary password to change at first sign-in.
    pub fn new(
        upn: impl Into<String>,
        display_name: impl Into<String>,
        mail_nickname: impl Into<String>,
        password: impl Into<String>,
    ) -> NewUser {
        NewUser {
            account_enabled: true,
            display_name: display_name.into(),
            mail_nickname: mail_nickname.into(),
            user_principal_name: upn.into(),
            password_profile: PasswordProfile {
                password: password.into(),
                force_change_password_next_sign_in: true,
            },
            given_name: None,
            surname: None,
            job_title: None,
            department: None,
            on_premises_immutable_id: None,
        }
    }

    /// The JSON body, camelCase as on the wire.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "accountEnabled": self.account_enabled,
            "displayName": self.display_name,
            "mailNickname": self.mail_nickname,
            "userPrincipalName": self.user_principal_name,
            "passwordProfile": self.password_profile.to_json(),
        });
        for (k, v) in [
            ("givenName", &self.given_name),
            ("surname", &self.surname),
            ("jobTitle", &self.job_title),
            ("department", &self.department),
            ("onPremisesImmutableId", &self.on_premises_immutable_id),
        ] {
            if let Some(v) = v {
                body[k] = json!(v);
            }
        }
        body
    }
}

/// The body of `POST /groups`: a security group or a Microsoft 365 group (the only kinds Graph
/// creates, graph-notes §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    pub display_name: String,
    pub mail_nickname: String,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub group_types: Vec<String>,
}

impl NewGroup {
    /// A security group: `mailEnabled: false, securityEnabled: true, groupTypes: []`.
    pub fn security(display_name: impl Into<String>, mail_nickname: impl Into<String>) -> Self {
        NewGroup {
            display_name: display_name.into(),
            mail_nickname: mail_nickname.into(),
            mail_enabled: false,
            security_enabled: true,
            group_types: Vec::new(),
        }
    }

    /// A Microsoft 365 group: `mailEnabled: true, securityEnabled: false,
    /// groupTypes: ["Unified"]`.
    pub fn microsoft365(display_name: impl Into<String>, mail_nickname: impl Into<String>) -> Self {
        NewGroup {
            display_name: display_name.into(),
            mail_nickname: mail_nickname.into(),
            mail_enabled: true,
            security_enabled: false,
            group_types: vec!["Unified".into()],
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "displayName": self.display_name,
            "mailEnabled": self.mail_enabled,
            "mailNickname": self.mail_nickname,
            "securityEnabled": self.security_enabled,
            "groupTypes": self.group_types,
        })
    }
}

/// `POST /users` → `201` with the new user. Permission: `User.ReadWrite.All` (application
/// least-privileged, newer docs: `User.Create`); a password of the profile also needs the
/// rights of [`set_password`] in some tenants.
pub fn create_user(id: impl Into<String>, user: &NewUser) -> BatchRequest {
    BatchRequest::new(id, Method::POST, paths::USERS).with_body(user.to_json())
}

/// `PATCH /users/{id | userPrincipalName}` with any properties → `204`. Permission:
/// `User.ReadWrite.All`; sensitive properties need more ([`set_account_enabled`],
/// [`set_password`]).
pub fn patch_user(id: impl Into<String>, id_or_upn: &str, body: Value) -> BatchRequest {
    BatchRequest::new(id, Method::PATCH, paths::user(id_or_upn)).with_body(body)
}

/// `PATCH /users/{id | upn}` `{"accountEnabled": enabled}` (block or allow sign-in) → `204`.
/// Permission: `User.EnableDisableAccount.All` with `User.Read.All` (or
/// `User.ReadWrite.All`); for a user holding an admin role, app-only needs a higher admin role
/// (graph-notes §16).
pub fn set_account_enabled(id: impl Into<String>, id_or_upn: &str, enabled: bool) -> BatchRequest {
    patch_user(id, id_or_upn, json!({ "accountEnabled": enabled }))
}

/// `PATCH /users/{id | upn}` `{"passwordProfile": ...}` → `204`. Permission:
/// `User-PasswordProfile.ReadWrite.All`; app-only also needs the User Administrator role
/// (Privileged Authentication Administrator for admins); `User.ReadWrite.All` alone is refused
/// with `403 Authorization_RequestDenied` (graph-notes §2).
pub fn set_password(
    id: impl Into<String>,
    id_or_upn: &str,
    password: &str,
    force_change_next_sign_in: bool,
) -> BatchRequest {
    let profile = PasswordProfile {
        password: password.to_string(),
        force_change_password_next_sign_in: force_change_next_sign_in,
    };
    patch_user(
        id,
        id_or_upn,
        json!({ "passwordProfile": profile.to_json() }),
    )
}

/// `POST /directory/deletedItems/{id}/restore` (no body) → `200` with the restored object.
/// Permission: `User.ReadWrite.All` (newer least-privileged: `User.DeleteRestore.All`).
pub fn restore_deleted(id: impl Into<String>, object_id: &str) -> BatchRequest {
    BatchRequest::new(id, Method::POST, paths::restore(object_id))
}

/// `DELETE /directory/deletedItems/{id}` → `204`: purged, never restorable. Permission:
/// delegated `User.ReadWrite.All` with the User Administrator role; no application
/// permission is documented for users (graph-notes §16).
pub fn purge_deleted(id: impl Into<String>, object_id: &str) -> BatchRequest {
    BatchRequest::new(id, Method::DELETE, paths::deleted_item(object_id))
}

/// `POST /groups` → `201` with the new group. Permission: `Group.Create` (application) or
/// `Group.ReadWrite.All`.
pub fn create_group(id: impl Into<String>, group: &NewGroup) -> BatchRequest {
    BatchRequest::new(id, Method::POST, paths::GROUPS).with_body(group.to_json())
}

/// `POST /groups/{group-id}/members/$ref` with
/// `{"@odata.id": "{base}/directoryObjects/{member-id}"}` → `204`; `400` when already a
/// member. `base` is the client's ([`super::GraphClient::base`]). Permission:
/// `GroupMember.ReadWrite.All`.
pub fn add_member(
    id: impl Into<String>,
    base: &str,
    group_id: &str,
    member_id: &str,
) -> BatchRequest {
    BatchRequest::new(id, Method::POST, paths::members_ref(group_id))
        .with_body(json!({ "@odata.id": paths::directory_object_url(base, member_id) }))
}

/// `DELETE /groups/{group-id}/members/{member-id}/$ref` → `204`; `400` when not a member.
/// Permission: `GroupMember.ReadWrite.All`.
pub fn remove_member(id: impl Into<String>, group_id: &str, member_id: &str) -> BatchRequest {
    BatchRequest::new(id, Method::DELETE, paths::member_ref(group_id, member_id))
}

/// `GET /users/{id | upn}?$select=...` ([`USER_SELECT`]) → `200` with the user, `404` when
/// there is none. Permission: `User.Read.All`.
pub fn get_user(id: impl Into<String>, id_or_upn: &str) -> BatchRequest {
    BatchRequest::new(
        id,
        Method::GET,
        format!(
            "{}?$select={}",
            paths::user(id_or_upn),
            USER_SELECT.join(",")
        ),
    )
}

/// `GET /groups/{id}?$select=...` ([`GROUP_SELECT`]) → `200` with the group. Permission:
/// `Group.Read.All`.
pub fn get_group(id: impl Into<String>, group_id: &str) -> BatchRequest {
    BatchRequest::new(
        id,
        Method::GET,
        format!(
            "{}?$select={}",
            paths::group(group_id),
            GROUP_SELECT.join(",")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_user_sends_required_and_set_optional_properties() {
        let mut u = NewUser::new("ann@contoso.com", "Ann Lee", "ann", "Secret-123!");
        u.given_name = Some("Ann".into());
        let r = create_user("1", &u);
        assert_eq!(
            (r.id.as_str(), &r.method, r.url.as_str()),
            ("1", &Method::POST, "/users")
        );
        assert_eq!(
            r.body.unwrap(),
            json!({
                "accountEnabled": true,
                "displayName": "Ann Lee",
                "mailNickname": "ann",
                "userPrincipalName": "ann@contoso.com",
                "passwordProfile": {"password": "Secret-123!", "forceChangePasswordNextSignIn": true},
                "givenName": "Ann",
            })
        );
        assert!(
            !format!("{u:?}").contains("Secret-123!"),
            "Debug hides the password"
        );
    }

    #[test]
    fn user_writes_encode_the_upn() {
        let guest = "a_contoso.com#EXT#@fabrikam.onmicrosoft.com";
        let r = set_account_enabled("2", guest, false);
        assert_eq!(r.method, Method::PATCH);
        assert_eq!(
            r.url,
            "/users/a_contoso.com%23EXT%23@fabrikam.onmicrosoft.com"
        );
        assert_eq!(r.body.unwrap(), json!({"accountEnabled": false}));
        let r = set_password("3", "o'brien@contoso.com", "pw", false);
        assert_eq!(r.url, "/users/o%27brien@contoso.com");
        assert_eq!(
            r.body.unwrap(),
            json!({"passwordProfile": {"password": "pw", "forceChangePasswordNextSignIn": false}})
        );
        let r = get_user("4", "o'brien@contoso.com");
        assert_eq!(r.method, Method::GET);
        assert_eq!(
            r.url,
            format!(
                "/users/o%27brien@contoso.com?$select={}",
                USER_SELECT.join(",")
            )
        );
        assert!(r.body.is_none());
    }

    #[test]
    fn deleted_items_and_groups() {
        let r = restore_deleted("1", "d-1");
        assert_eq!(
            (r.method, r.url.as_str()),
            (Method::POST, "/directory/deletedItems/d-1/restore")
        );
        assert!(r.body.is_none());
        let r = purge_deleted("1", "d-1");
        assert_eq!(
            (r.method, r.url.as_str()),
            (Method::DELETE, "/directory/deletedItems/d-1")
        );
        let r = create_group("1", &NewGroup::security("Sales", "sales"));
        assert_eq!(r.url, "/groups");
        assert_eq!(
            r.body.unwrap(),
            json!({"displayName": "Sales", "mailEnabled": false, "mailNickname": "sales",
                   "securityEnabled": true, "groupTypes": []})
        );
        let r = create_group("1", &NewGroup::microsoft365("Team", "team"));
        assert_eq!(r.body.unwrap()["groupTypes"], json!(["Unified"]));
        let r = add_member("1", "http://127.0.0.1:9/v1.0", "g1", "u1");
        assert_eq!(
            (r.method, r.url.as_str()),
            (Method::POST, "/groups/g1/members/$ref")
        );
        assert_eq!(
            r.body.unwrap(),
            json!({"@odata.id": "http://127.0.0.1:9/v1.0/directoryObjects/u1"})
        );
        let r = remove_member("1", "g1", "u1");
        assert_eq!(
            (r.method, r.url.as_str()),
            (Method::DELETE, "/groups/g1/members/u1/$ref")
        );
        let r = get_group("1", "g1");
        assert_eq!(
            r.url,
            format!("/groups/g1?$select={}", GROUP_SELECT.join(","))
        );
    }
}
