//! Graph resources as they are on the wire (camelCase).
use serde::{Deserialize, Serialize};

/// The `$select` m365sync always sends when listing users: non-default properties such as
/// `accountEnabled` are only returned when selected. The attributes it keeps in sync
/// ([`UserAttr`]) are selected too, and whether the account is mastered on-premises or a guest.
pub const USER_SELECT: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "accountEnabled",
    "jobTitle",
    "department",
    "officeLocation",
    "mobilePhone",
    "businessPhones",
    "employeeId",
    "companyName",
    "city",
    "state",
    "country",
    "postalCode",
    "streetAddress",
    "usageLocation",
    "preferredLanguage",
    "employeeType",
    "onPremisesSyncEnabled",
    "userType",
];

/// A user property m365sync keeps in sync from the directory, besides the names
/// (`displayName`, `givenName`, `surname`, which [`User`] has as fields) and the manager (a
/// relationship, read apart). As Graph names it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum UserAttr {
    #[serde(rename = "jobTitle")]
    JobTitle,
    #[serde(rename = "department")]
    Department,
    #[serde(rename = "officeLocation")]
    OfficeLocation,
    #[serde(rename = "mobilePhone")]
    MobilePhone,
    /// A string collection on the wire of which only one number can be set.
    #[serde(rename = "businessPhones")]
    BusinessPhones,
    #[serde(rename = "employeeId")]
    EmployeeId,
    #[serde(rename = "companyName")]
    CompanyName,
    #[serde(rename = "city")]
    City,
    #[serde(rename = "state")]
    State,
    #[serde(rename = "country")]
    Country,
    #[serde(rename = "postalCode")]
    PostalCode,
    #[serde(rename = "streetAddress")]
    StreetAddress,
    #[serde(rename = "usageLocation")]
    UsageLocation,
    #[serde(rename = "preferredLanguage")]
    PreferredLanguage,
    #[serde(rename = "employeeType")]
    EmployeeType,
}

impl UserAttr {
    pub const ALL: [UserAttr; 15] = [
        UserAttr::JobTitle,
        UserAttr::Department,
        UserAttr::OfficeLocation,
        UserAttr::MobilePhone,
        UserAttr::BusinessPhones,
        UserAttr::EmployeeId,
        UserAttr::CompanyName,
        UserAttr::City,
        UserAttr::State,
        UserAttr::Country,
        UserAttr::PostalCode,
        UserAttr::StreetAddress,
        UserAttr::UsageLocation,
        UserAttr::PreferredLanguage,
        UserAttr::EmployeeType,
    ];
    /// The property name on the wire (`jobTitle`).
    pub fn wire(self) -> &'static str {
        match self {
            UserAttr::JobTitle => "jobTitle",
            UserAttr::Department => "department",
            UserAttr::OfficeLocation => "officeLocation",
            UserAttr::MobilePhone => "mobilePhone",
            UserAttr::BusinessPhones => "businessPhones",
            UserAttr::EmployeeId => "employeeId",
            UserAttr::CompanyName => "companyName",
            UserAttr::City => "city",
            UserAttr::State => "state",
            UserAttr::Country => "country",
            UserAttr::PostalCode => "postalCode",
            UserAttr::StreetAddress => "streetAddress",
            UserAttr::UsageLocation => "usageLocation",
            UserAttr::PreferredLanguage => "preferredLanguage",
            UserAttr::EmployeeType => "employeeType",
        }
    }
    pub fn from_wire(s: &str) -> Option<UserAttr> {
        UserAttr::ALL.into_iter().find(|a| a.wire() == s)
    }
}

/// A tenant user, as the listing selects it. The synced attributes that have a value are kept
/// in one boxed slice (16 bytes when none), so a million listed users stay small.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub account_enabled: Option<bool>,
    /// The [`UserAttr`]s with a (non-empty) value, in [`UserAttr::ALL`] order.
    pub attrs: Box<[(UserAttr, Box<str>)]>,
    /// Synced from on-premises Active Directory: its attributes are mastered there.
    pub on_premises_sync_enabled: bool,
    /// `userType` Guest (an invited external user, `#EXT#` UPN).
    pub guest: bool,
}

impl User {
    /// The address a directory user is matched on: `mail`, else the UPN.
    pub fn email(&self) -> &str {
        match self.mail.as_deref() {
            Some(m) if !m.is_empty() => m,
            _ => &self.user_principal_name,
        }
    }

    /// The value of a synced attribute (None when not set).
    pub fn attr(&self, a: UserAttr) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| *k == a)
            .map(|(_, v)| v.as_ref())
    }
    /// Sets (Some, non-empty) or clears a synced attribute.
    pub fn set_attr(&mut self, a: UserAttr, value: Option<&str>) {
        let mut v: Vec<(UserAttr, Box<str>)> = std::mem::take(&mut self.attrs)
            .into_vec()
            .into_iter()
            .filter(|(k, _)| *k != a)
            .collect();
        if let Some(x) = value.filter(|x| !x.is_empty()) {
            v.push((a, x.into()));
            v.sort_by_key(|(k, _)| *k);
        }
        self.attrs = v.into_boxed_slice();
    }
}

impl Serialize for User {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("userPrincipalName", &self.user_principal_name)?;
        m.serialize_entry("mail", &self.mail)?;
        m.serialize_entry("displayName", &self.display_name)?;
        m.serialize_entry("givenName", &self.given_name)?;
        m.serialize_entry("surname", &self.surname)?;
        m.serialize_entry("accountEnabled", &self.account_enabled)?;
        for (k, v) in self.attrs.iter() {
            if *k == UserAttr::BusinessPhones {
                m.serialize_entry(k.wire(), &[v.as_ref()])?;
            } else {
                m.serialize_entry(k.wire(), v.as_ref())?;
            }
        }
        if self.on_premises_sync_enabled {
            m.serialize_entry("onPremisesSyncEnabled", &true)?;
        }
        if self.guest {
            m.serialize_entry("userType", "Guest")?;
        }
        m.end()
    }
}

/// A key of a user object, read without allocating.
enum UserKey {
    Id,
    Upn,
    Mail,
    DisplayName,
    GivenName,
    Surname,
    AccountEnabled,
    OnPremisesSyncEnabled,
    UserType,
    Attr(UserAttr),
    Other,
}

impl<'de> Deserialize<'de> for UserKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UserKey, D::Error> {
        struct K;
        impl serde::de::Visitor<'_> for K {
            type Value = UserKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a property name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<UserKey, E> {
                Ok(match v {
                    "id" => UserKey::Id,
                    "userPrincipalName" => UserKey::Upn,
                    "mail" => UserKey::Mail,
                    "displayName" => UserKey::DisplayName,
                    "givenName" => UserKey::GivenName,
                    "surname" => UserKey::Surname,
                    "accountEnabled" => UserKey::AccountEnabled,
                    "onPremisesSyncEnabled" => UserKey::OnPremisesSyncEnabled,
                    "userType" => UserKey::UserType,
                    other => UserAttr::from_wire(other).map_or(UserKey::Other, UserKey::Attr),
                })
            }
        }
        d.deserialize_identifier(K)
    }
}

impl<'de> Deserialize<'de> for User {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<User, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = User;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Graph user object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<User, A::Error> {
                use serde::de::IgnoredAny;
                let mut u = User::default();
                let mut id = None;
                let mut attrs: Vec<(UserAttr, Box<str>)> = Vec::new();
                while let Some(key) = map.next_key::<UserKey>()? {
                    match key {
                        UserKey::Id => id = Some(map.next_value::<String>()?),
                        UserKey::Upn => {
                            u.user_principal_name =
                                map.next_value::<Option<String>>()?.unwrap_or_default()
                        }
                        UserKey::Mail => u.mail = map.next_value()?,
                        UserKey::DisplayName => u.display_name = map.next_value()?,
                        UserKey::GivenName => u.given_name = map.next_value()?,
                        UserKey::Surname => u.surname = map.next_value()?,
                        UserKey::AccountEnabled => u.account_enabled = map.next_value()?,
                        UserKey::OnPremisesSyncEnabled => {
                            u.on_premises_sync_enabled =
                                map.next_value::<Option<bool>>()?.unwrap_or(false)
                        }
                        UserKey::UserType => {
                            u.guest = map
                                .next_value::<Option<String>>()?
                                .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
                        }
                        UserKey::Attr(UserAttr::BusinessPhones) => {
                            let phones: Option<Vec<String>> = map.next_value()?;
                            if let Some(p) = phones
                                .and_then(|p| p.into_iter().next())
                                .filter(|p| !p.is_empty())
                            {
                                attrs.push((UserAttr::BusinessPhones, p.into()));
                            }
                        }
                        UserKey::Attr(a) => {
                            if let Some(v) = map
                                .next_value::<Option<String>>()?
                                .filter(|v| !v.is_empty())
                            {
                                attrs.push((a, v.into()));
                            }
                        }
                        UserKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                u.id = id.ok_or_else(|| serde::de::Error::missing_field("id"))?;
                attrs.sort_by_key(|(k, _)| *k);
                u.attrs = attrs.into_boxed_slice();
                Ok(u)
            }
        }
        d.deserialize_map(V)
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
