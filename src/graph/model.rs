//! Graph resources as they are on the wire (camelCase).
use serde::{Deserialize, Serialize};

/// The `$select` m365sync always sends when listing users: non-default properties such as
/// `accountEnabled` are only returned when selected.
pub const USER_SELECT: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "accountEnabled",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
}

impl User {
    /// The address a directory user is matched on: `mail`, else the UPN.
    pub fn email(&self) -> &str {
        match self.mail.as_deref() {
            Some(m) if !m.is_empty() => m,
            _ => &self.user_principal_name,
        }
    }
}

/// A soft-deleted user (`GET /directory/deletedItems/microsoft.graph.user`): restorable for
/// 30 days, and still holding its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeletedUser {
    #[serde(flatten)]
    pub user: User,
    #[serde(default)]
    pub deleted_date_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub id: String,
    #[serde(default)]
    pub authentication_type: Option<String>,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub is_initial: bool,
    #[serde(default)]
    pub is_verified: bool,
}

/// One page of a Graph collection.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

/// The `$select` m365sync sends when listing groups.
pub const GROUP_SELECT: &[&str] = &[
    "id",
    "displayName",
    "mailNickname",
    "groupTypes",
    "mailEnabled",
    "securityEnabled",
];

/// A group (`GET /groups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub group_types: Vec<String>,
    #[serde(default)]
    pub mail_enabled: Option<bool>,
    #[serde(default)]
    pub security_enabled: Option<bool>,
}

/// A member of a group (`GET /groups/{id}/members`): a directoryObject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DirectoryObject {
    pub id: String,
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
}
