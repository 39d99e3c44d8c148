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
    /// Its place in [`UserAttr::ALL`] (the byte the snapshot and [`Attrs`] store).
    pub fn position(self) -> usize {
        self as usize
    }
    pub fn from_wire(s: &str) -> Option<UserAttr> {
        UserAttr::ALL.into_iter().find(|a| a.wire() == s)
    }
}

/// The synced attributes of a user that have a (non-empty) value, in one allocation (none when
/// there are none): `(position in [`UserAttr::ALL`]: 1 byte | length: LEB128 varint | UTF-8)*`
/// in [`UserAttr::ALL`] order, the very bytes the snapshot's page format stores. A separate
/// allocation per value cost a million-user tenant about 130 bytes a user.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct Attrs(Box<[u8]>);

/// LEB128, as the snapshot codec writes lengths.
fn put_len(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Attrs {
    /// The attributes given (any order; an empty value is none; for one given twice the last
    /// counts).
    pub fn from_pairs<S: AsRef<str>>(pairs: impl IntoIterator<Item = (UserAttr, S)>) -> Attrs {
        let mut v: Vec<(UserAttr, S)> = Vec::new();
        for (a, s) in pairs {
            v.retain(|(k, _)| *k != a);
            if !s.as_ref().is_empty() {
                v.push((a, s));
            }
        }
        v.sort_by_key(|(k, _)| *k);
        let mut out = Vec::with_capacity(v.iter().map(|(_, s)| s.as_ref().len() + 3).sum());
        for (a, s) in &v {
            out.push(a.position() as u8);
            put_len(&mut out, s.as_ref().len());
            out.extend_from_slice(s.as_ref().as_bytes());
        }
        Attrs(out.into_boxed_slice())
    }

    /// `bytes` when they are attributes as [`Attrs`] keeps them (each known, in order, once,
    /// non-empty UTF-8), taken as they are: the snapshot's pages decode with one copy.
    pub fn from_encoded(bytes: &[u8]) -> Option<Attrs> {
        let mut last: Option<u8> = None;
        let mut pos = 0usize;
        while pos < bytes.len() {
            let at = bytes[pos];
            if usize::from(at) >= UserAttr::ALL.len() || last.is_some_and(|l| l >= at) {
                return None;
            }
            last = Some(at);
            let (len, n) = read_len(&bytes[pos + 1..])?;
            if n > 1 && bytes[pos + n] == 0 {
                return None; // not the shortest form: rebuilt, so equal values compare equal
            }
            let start = pos + 1 + n;
            let end = start.checked_add(len).filter(|&e| e <= bytes.len())?;
            if len == 0 || std::str::from_utf8(&bytes[start..end]).is_err() {
                return None;
            }
            pos = end;
        }
        Some(Attrs(bytes.into()))
    }

    /// The bytes as kept (see [`Attrs`]).
    pub fn encoded(&self) -> &[u8] {
        &self.0
    }

    pub fn get(&self, a: UserAttr) -> Option<&str> {
        self.iter().find(|(k, _)| *k == a).map(|(_, v)| v)
    }

    /// Sets (`Some`, non-empty) or clears `a`.
    pub fn set(&mut self, a: UserAttr, value: Option<&str>) {
        let kept = self.iter().filter(|(k, _)| *k != a);
        *self = match value.filter(|v| !v.is_empty()) {
            Some(v) => Attrs::from_pairs(kept.chain([(a, v)])),
            None => Attrs::from_pairs(kept),
        };
    }

    pub fn iter(&self) -> AttrsIter<'_> {
        AttrsIter { buf: &self.0 }
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A length and the bytes it took.
fn read_len(b: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for (n, byte) in b.iter().enumerate().take(4) {
        v |= usize::from(byte & 0x7f) << (7 * n);
        if byte & 0x80 == 0 {
            return Some((v, n + 1));
        }
    }
    None
}

/// The attributes of an [`Attrs`], in [`UserAttr::ALL`] order.
pub struct AttrsIter<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for AttrsIter<'a> {
    type Item = (UserAttr, &'a str);
    fn next(&mut self) -> Option<(UserAttr, &'a str)> {
        // The bytes were checked when made: a failure here ends the iteration.
        let (&at, rest) = self.buf.split_first()?;
        let a = *UserAttr::ALL.get(usize::from(at))?;
        let (len, n) = read_len(rest)?;
        let value = rest.get(n..n + len)?;
        self.buf = &rest[n + len..];
        Some((a, std::str::from_utf8(value).ok()?))
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = (UserAttr, &'a str);
    type IntoIter = AttrsIter<'a>;
    fn into_iter(self) -> AttrsIter<'a> {
        self.iter()
    }
}

impl<S: AsRef<str>> FromIterator<(UserAttr, S)> for Attrs {
    fn from_iter<I: IntoIterator<Item = (UserAttr, S)>>(iter: I) -> Attrs {
        Attrs::from_pairs(iter)
    }
}

impl std::fmt::Debug for Attrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(a, v)| (a.wire(), v)))
            .finish()
    }
}

/// A tenant user, as the listing selects it. The synced attributes that have a value are kept
/// in one allocation ([`Attrs`], 16 bytes and none when there are none), so a million listed
/// users stay small.
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
    pub attrs: Attrs,
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
        self.attrs.get(a)
    }
    /// Sets (Some, non-empty) or clears a synced attribute.
    pub fn set_attr(&mut self, a: UserAttr, value: Option<&str>) {
        self.attrs.set(a, value);
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
            if k == UserAttr::BusinessPhones {
                m.serialize_entry(k.wire(), &[v])?;
            } else {
                m.serialize_entry(k.wire(), v)?;
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
                let mut attrs: Vec<(UserAttr, String)> = Vec::new();
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
                                attrs.push((UserAttr::BusinessPhones, p));
                            }
                        }
                        UserKey::Attr(a) => {
                            if let Some(v) = map
                                .next_value::<Option<String>>()?
                                .filter(|v| !v.is_empty())
                            {
                                attrs.push((a, v));
                            }
                        }
                        UserKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                u.id = id.ok_or_else(|| serde::de::Error::missing_field("id"))?;
                u.attrs = Attrs::from_pairs(attrs);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_are_one_buffer_in_all_order_with_empties_dropped_and_the_last_value_kept() {
        assert_eq!(std::mem::size_of::<Attrs>(), 16);
        for (n, a) in UserAttr::ALL.iter().enumerate() {
            assert_eq!(a.position(), n, "position is the place in ALL");
        }
        let mut a = Attrs::from_pairs([
            (UserAttr::City, "Oslo"),
            (UserAttr::JobTitle, "Lead"),
            (UserAttr::Department, ""),
            (UserAttr::City, "Bergen"),
        ]);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [(UserAttr::JobTitle, "Lead"), (UserAttr::City, "Bergen")]
        );
        assert_eq!(a.len(), 2);
        assert_eq!(a.get(UserAttr::City), Some("Bergen"));
        assert_eq!(a.get(UserAttr::Department), None);
        // One allocation holds every value: position, length, bytes.
        assert_eq!(a.encoded(), b"\x00\x04Lead\x07\x06Bergen");
        let long = "ä".repeat(100); // 200 bytes: a two-byte length
        a.set(UserAttr::StreetAddress, Some(&long));
        a.set(UserAttr::JobTitle, None);
        a.set(UserAttr::Country, Some(""));
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [
                (UserAttr::City, "Bergen"),
                (UserAttr::StreetAddress, long.as_str())
            ]
        );
        assert_eq!(Attrs::from_encoded(a.encoded()), Some(a.clone()));
        assert!(Attrs::default().is_empty());
        assert_eq!(
            format!("{a:?}"),
            format!("{{\"city\": \"Bergen\", \"streetAddress\": \"{long}\"}}")
        );
    }

    #[test]
    fn encoded_attrs_are_taken_only_when_well_formed() {
        for bad in [
            &b"\x07\x01a\x00\x01b"[..], // out of order
            b"\x00\x01a\x00\x01b",      // twice
            b"\x0f\x01a",               // no such attribute
            b"\x00\x00",                // empty value
            b"\x00\x05ab",              // truncated
            b"\x00\x02\xff\xfe",        // not UTF-8
            b"\x00\x81\x00a",           // not the shortest length
        ] {
            assert_eq!(Attrs::from_encoded(bad), None, "{bad:?}");
        }
        assert_eq!(
            Attrs::from_encoded(b"\x00\x01a\x0e\x01b")
                .unwrap()
                .get(UserAttr::EmployeeType),
            Some("b")
        );
    }
}
