//! The compact binary form of users in the snapshot file: a page of users is one blob, so a
//! million users load as about a thousand rows, decoded without a parser.
//!
//! A page: `version (1 byte) | count (varint) | user*`. A user:
//! `flags (1 byte) | id | upn | [mail] | [displayName] | [givenName] | [surname]`, where the
//! id is 16 bytes when it is a GUID in Graph's form (lower-case, hyphenated) and a string
//! otherwise, a string is `length (varint) | UTF-8`, and the flags say which optional
//! properties follow (a mail equal to the UPN is not written twice) and `accountEnabled`.
//! Version 2 adds `more (1 byte: on-premises synced, guest) | count (varint) | (attr, value)*`
//! with the attribute as its position in [`UserAttr::ALL`] (one byte), in that order: the
//! bytes [`Attrs`] keeps in memory, so they decode as one copy. Version 1 pages (no
//! attributes) still read.
use crate::graph::model::Attrs;
use crate::graph::{DeletedUser, User, UserAttr};

/// The version byte of a page blob.
pub const PAGE_VERSION: u8 = 2;
const SYNCED: u8 = 1;
const GUEST: u8 = 1 << 1;

const ID_GUID: u8 = 1;
const MAIL: u8 = 1 << 1;
const MAIL_IS_UPN: u8 = 1 << 2;
const DISPLAY: u8 = 1 << 3;
const GIVEN: u8 = 1 << 4;
const SURNAME: u8 = 1 << 5;
const ENABLED_SHIFT: u8 = 6; // 2 bits: 0 none, 1 false, 2 true

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the snapshot file is damaged: {0}")]
pub struct Corrupt(pub String);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The 16 bytes of `id` when writing them gives back exactly `id`.
fn guid_bytes(id: &str) -> Option<[u8; 16]> {
    if id.len() != 36 {
        return None;
    }
    let u = uuid::Uuid::try_parse(id).ok()?;
    let mut buf = [0u8; 36];
    (u.hyphenated().encode_lower(&mut buf) == id).then(|| *u.as_bytes())
}

pub fn encode_user(out: &mut Vec<u8>, u: &User) {
    let guid = guid_bytes(&u.id);
    let mut flags = 0u8;
    if guid.is_some() {
        flags |= ID_GUID;
    }
    match u.mail.as_deref() {
        Some(m) if m == u.user_principal_name => flags |= MAIL | MAIL_IS_UPN,
        Some(_) => flags |= MAIL,
        None => {}
    }
    if u.display_name.is_some() {
        flags |= DISPLAY;
    }
    if u.given_name.is_some() {
        flags |= GIVEN;
    }
    if u.surname.is_some() {
        flags |= SURNAME;
    }
    flags |= match u.account_enabled {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    } << ENABLED_SHIFT;
    out.push(flags);
    match guid {
        Some(b) => out.extend_from_slice(&b),
        None => put_str(out, &u.id),
    }
    put_str(out, &u.user_principal_name);
    if flags & MAIL_IS_UPN == 0 {
        if let Some(m) = &u.mail {
            put_str(out, m);
        }
    }
    for s in [&u.display_name, &u.given_name, &u.surname]
        .into_iter()
        .flatten()
    {
        put_str(out, s);
    }
    let mut more = 0u8;
    if u.on_premises_sync_enabled {
        more |= SYNCED;
    }
    if u.guest {
        more |= GUEST;
    }
    out.push(more);
    // The attributes as `Attrs` keeps them: `(position, length, UTF-8)*`, so a page decodes
    // them with one copy.
    put_varint(out, u.attrs.len() as u64);
    out.extend_from_slice(u.attrs.encoded());
}

/// One blob for a page of users.
pub fn encode_page(users: &[User]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + users.len() * 112);
    out.push(PAGE_VERSION);
    put_varint(&mut out, users.len() as u64);
    for u in users {
        encode_user(&mut out, u);
    }
    out
}

/// A soft-deleted user: the user, then `deletedDateTime` as an optional string.
pub fn encode_deleted(d: &DeletedUser) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode_user(&mut out, &d.user);
    match &d.deleted_date_time {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(&mut out, s);
        }
    }
    out
}

/// Reads what the encoders wrote; every read is checked (a damaged file is an error, never a
/// panic).
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    version: u8,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            version: PAGE_VERSION,
        }
    }

    fn corrupt(&self, what: &str) -> Corrupt {
        Corrupt(format!("{what} at byte {} of {}", self.pos, self.buf.len()))
    }

    fn byte(&mut self) -> Result<u8, Corrupt> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.corrupt("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.corrupt("varint too long"))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.corrupt("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn str_ref(&mut self) -> Result<&'a str, Corrupt> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.corrupt("length"))?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| self.corrupt("not UTF-8"))
    }

    fn str(&mut self) -> Result<String, Corrupt> {
        self.str_ref().map(str::to_owned)
    }

    pub fn user(&mut self) -> Result<User, Corrupt> {
        let flags = self.byte()?;
        let id = if flags & ID_GUID != 0 {
            let b: [u8; 16] = self.bytes(16)?.try_into().expect("16 bytes");
            let mut buf = [0u8; 36];
            uuid::Uuid::from_bytes(b)
                .hyphenated()
                .encode_lower(&mut buf)
                .to_owned()
        } else {
            self.str()?
        };
        let user_principal_name = self.str()?;
        let mail = if flags & MAIL_IS_UPN != 0 {
            Some(user_principal_name.clone())
        } else if flags & MAIL != 0 {
            Some(self.str()?)
        } else {
            None
        };
        let mut opt = |bit: u8| -> Result<Option<String>, Corrupt> {
            if flags & bit != 0 {
                self.str().map(Some)
            } else {
                Ok(None)
            }
        };
        let display_name = opt(DISPLAY)?;
        let given_name = opt(GIVEN)?;
        let surname = opt(SURNAME)?;
        let account_enabled = match flags >> ENABLED_SHIFT {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return Err(self.corrupt("accountEnabled flag")),
        };
        let mut u = User {
            id,
            user_principal_name,
            mail,
            display_name,
            given_name,
            surname,
            account_enabled,
            ..User::default()
        };
        if self.version >= 2 {
            let more = self.byte()?;
            u.on_premises_sync_enabled = more & SYNCED != 0;
            u.guest = more & GUEST != 0;
            let n = self.varint()?;
            if n > UserAttr::ALL.len() as u64 {
                return Err(self.corrupt("attribute count"));
            }
            // Read as written (each attribute known, its value UTF-8); kept as one copy of
            // those bytes when they are in `Attrs`' order, else rebuilt.
            let start = self.pos;
            let mut in_order = true;
            let mut last = None;
            for _ in 0..n {
                let at = self.byte()?;
                if usize::from(at) >= UserAttr::ALL.len() {
                    return Err(self.corrupt("attribute"));
                }
                in_order &= last.is_none_or(|l| l < at);
                last = Some(at);
                let _ = self.str_ref()?;
            }
            let bytes = &self.buf[start..self.pos];
            u.attrs = match in_order.then(|| Attrs::from_encoded(bytes)).flatten() {
                Some(a) => a,
                None => {
                    let mut r = Reader::new(bytes);
                    let mut pairs = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        let at = UserAttr::ALL[usize::from(r.byte()?)];
                        pairs.push((at, r.str_ref()?));
                    }
                    Attrs::from_pairs(pairs)
                }
            };
        }
        Ok(u)
    }

    fn end(&self) -> Result<(), Corrupt> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(self.corrupt("trailing bytes"))
        }
    }
}

/// Decodes a page blob, handing each user to `keep` (which may drop or replace it).
pub fn decode_page_with(
    blob: &[u8],
    out: &mut Vec<User>,
    mut keep: impl FnMut(User) -> Option<User>,
) -> Result<(), Corrupt> {
    let mut r = Reader::new(blob);
    let version = r.byte()?;
    if version == 0 || version > PAGE_VERSION {
        return Err(Corrupt(format!(
            "page version {version}, expected {PAGE_VERSION}"
        )));
    }
    r.version = version;
    let n = r.varint()?;
    // Never trust a count to size an allocation: a user is at least 3 bytes.
    out.reserve((n as usize).min(blob.len() / 3));
    for _ in 0..n {
        if let Some(u) = keep(r.user()?) {
            out.push(u);
        }
    }
    r.end()
}

pub fn decode_page(blob: &[u8]) -> Result<Vec<User>, Corrupt> {
    let mut out = Vec::new();
    decode_page_with(blob, &mut out, Some)?;
    Ok(out)
}

pub fn decode_user(blob: &[u8]) -> Result<User, Corrupt> {
    let mut r = Reader::new(blob);
    let u = r.user()?;
    r.end()?;
    Ok(u)
}

pub fn decode_deleted(blob: &[u8]) -> Result<DeletedUser, Corrupt> {
    let mut r = Reader::new(blob);
    let user = r.user()?;
    let deleted_date_time = match r.byte()? {
        0 => None,
        1 => Some(r.str()?),
        _ => return Err(r.corrupt("deletedDateTime flag")),
    };
    r.end()?;
    Ok(DeletedUser {
        user,
        deleted_date_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attributes are written as their position in `UserAttr::ALL`: a reordering must bump
    /// `PAGE_VERSION` (and then this list).
    #[test]
    fn the_attribute_order_is_the_one_version_2_pages_were_written_with() {
        let wire: Vec<&str> = UserAttr::ALL.iter().map(|a| a.wire()).collect();
        assert_eq!(PAGE_VERSION, 2);
        assert_eq!(
            wire,
            [
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
                "employeeType"
            ]
        );
    }

    fn users() -> Vec<User> {
        vec![
            User {
                id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
                user_principal_name: "ann@contoso.com".into(),
                mail: Some("ann@contoso.com".into()),
                display_name: Some("Ann Ä".into()),
                given_name: Some("Ann".into()),
                surname: Some(String::new()),
                account_enabled: Some(true),
                attrs: Attrs::from_pairs([
                    (UserAttr::JobTitle, "Lead"),
                    (UserAttr::EmployeeType, "Contractor ✓"),
                ]),
                on_premises_sync_enabled: true,
                guest: false,
            },
            User {
                // Upper-case GUID: kept as a string, so it comes back exactly.
                id: "0F8FAD5B-D9CB-469F-A165-70867728950E".into(),
                user_principal_name: "b@contoso.com".into(),
                mail: Some("other@contoso.com".into()),
                display_name: None,
                given_name: None,
                surname: None,
                account_enabled: Some(false),
                guest: true,
                ..User::default()
            },
            User {
                id: "id-3".into(),
                user_principal_name: String::new(),
                ..User::default()
            },
        ]
    }

    #[test]
    fn pages_and_deleted_users_round_trip_exactly() {
        let u = users();
        let blob = encode_page(&u);
        assert_eq!(decode_page(&blob).unwrap(), u);
        assert_eq!(decode_page(&encode_page(&[])).unwrap(), vec![]);
        for d in [
            DeletedUser {
                user: u[0].clone(),
                deleted_date_time: Some("2026-11-20T10:00:00Z".into()),
            },
            DeletedUser {
                user: u[2].clone(),
                deleted_date_time: None,
            },
        ] {
            assert_eq!(decode_deleted(&encode_deleted(&d)).unwrap(), d);
        }
        let mut one = Vec::new();
        encode_user(&mut one, &u[1]);
        assert_eq!(decode_user(&one).unwrap(), u[1]);
    }

    #[test]
    fn a_damaged_blob_is_an_error_never_a_panic() {
        let blob = encode_page(&users());
        for cut in 0..blob.len() {
            assert!(decode_page(&blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = blob.clone();
        extra.push(0);
        assert!(decode_page(&extra).is_err());
        let mut next = blob.clone();
        next[0] = PAGE_VERSION + 1;
        assert!(decode_page(&next).is_err(), "a newer version is refused");
        // A version 1 page (written before attributes) reads, with none.
        let mut v1 = vec![1u8];
        put_varint(&mut v1, 1);
        let plain = User {
            id: "id-9".into(),
            user_principal_name: "z@contoso.com".into(),
            ..User::default()
        };
        let mut one = Vec::new();
        encode_user(&mut one, &plain);
        v1.extend_from_slice(&one[..one.len() - 2]); // without `more` and the count
        assert_eq!(decode_page(&v1).unwrap(), vec![plain]);
        // A huge count does not allocate: it runs out of bytes.
        let mut huge = vec![PAGE_VERSION];
        put_varint(&mut huge, u64::MAX);
        assert!(decode_page(&huge).is_err());
        assert!(decode_page(&[
            PAGE_VERSION,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff
        ])
        .is_err());
    }
}
