//! Delta query on users (graph-notes §7, §18): `GET /users/delta?$select=<USER_SELECT>`, paged
//! by `@odata.nextLink` until the page that carries `@odata.deltaLink`; that link, saved, is
//! where the next round starts. A round is the list of changes since the link it started from:
//! created, restored and updated users as objects (an omitted property keeps its value), and
//! `@removed` with reason `changed` (soft-deleted) or `deleted` (purged).
//!
//! The pages follow the same bounded loop as every listing ([`GraphClient::pages`]: a link
//! already followed or more pages than the client's cap stop it; each request has its deadline
//! and retry policy).
//!
//! A link Graph no longer honours (`400 syncStateNotFound`, `410 Gone` with a `Location`) is
//! [`DeltaError::StartOver`]: the caller lists the tenant again and says so.
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;

use super::client::{CallFailure, PageFetch};
use super::model::{User, UserAttr, USER_SELECT};
use super::{paths, GraphClient, GraphError};

/// A created, restored or updated user as a delta round carries it: every property Graph
/// sent. An omitted property (`None`) keeps the value the snapshot has; one sent as `null`
/// (`Some(None)`) is cleared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserDelta {
    pub id: String,
    pub user_principal_name: Option<String>,
    pub mail: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub given_name: Option<Option<String>>,
    pub surname: Option<Option<String>>,
    pub account_enabled: Option<Option<bool>>,
    /// The synced attributes sent: `Some(v)` sets, `None` (sent as null or empty) clears.
    pub attrs: Vec<(UserAttr, Option<String>)>,
    /// `onPremisesSyncEnabled` when sent (null = not synced).
    pub on_premises_sync_enabled: Option<bool>,
    /// `userType` when sent: whether it is Guest.
    pub guest: Option<bool>,
}

impl UserDelta {
    /// The user after this change: `old` (the snapshot's copy, if any) with every property
    /// this change carries replaced. A user new to the snapshot starts from nothing: an
    /// omitted property is one never set (graph-notes §18), so `None`.
    pub fn apply_to(&self, old: Option<&User>) -> User {
        let mut u = old.cloned().unwrap_or_default();
        u.id.clone_from(&self.id);
        if let Some(v) = &self.user_principal_name {
            u.user_principal_name.clone_from(v);
        }
        if let Some(v) = &self.mail {
            u.mail.clone_from(v);
        }
        if let Some(v) = &self.display_name {
            u.display_name.clone_from(v);
        }
        if let Some(v) = &self.given_name {
            u.given_name.clone_from(v);
        }
        if let Some(v) = &self.surname {
            u.surname.clone_from(v);
        }
        if let Some(v) = self.account_enabled {
            u.account_enabled = v;
        }
        for (a, v) in &self.attrs {
            u.set_attr(*a, v.as_deref());
        }
        if let Some(v) = self.on_premises_sync_enabled {
            u.on_premises_sync_enabled = v;
        }
        if let Some(v) = self.guest {
            u.guest = v;
        }
        u
    }
}

/// One change of a delta round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaChange {
    /// Created, restored (no annotation: graph-notes §18) or updated.
    Upsert(UserDelta),
    /// `"@removed": {"reason": "changed"}`: soft-deleted, in the deleted items for 30 days.
    SoftDeleted { id: String },
    /// `"@removed": {"reason": "deleted"}`: purged for good. A reason Graph does not document
    /// is taken as this too (the user is gone from the live users either way).
    Purged { id: String },
}

impl DeltaChange {
    pub fn id(&self) -> &str {
        match self {
            DeltaChange::Upsert(u) => &u.id,
            DeltaChange::SoftDeleted { id } | DeltaChange::Purged { id } => id,
        }
    }
}

/// The changes since a delta link, and the link the next round starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaRound {
    /// In the order Graph sent them; one user may appear more than once (the later wins).
    pub changes: Vec<DeltaChange>,
    /// The `@odata.deltaLink` of the last page: save it, the next round starts there.
    pub delta_link: String,
    /// When the round's first request left: every change before it is in this round or an
    /// earlier one.
    pub started_at: OffsetDateTime,
    /// Pages read.
    pub pages: usize,
}

/// Graph refused the delta link: it expired (7 days for directory objects) or Graph reset the
/// sync. The saved link is useless; the tenant must be listed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOver {
    /// 400 (`syncStateNotFound`) or 410 (Gone).
    pub status: u16,
    pub code: String,
    pub message: String,
    /// A 410's `Location`: Graph's URL for a new initial round.
    pub location: Option<String>,
    pub request_id: Option<String>,
}

impl StartOver {
    /// What happened and what m365sync does about it, in plain words.
    pub fn plain(&self) -> String {
        if self.status == 410 {
            "Microsoft Graph reset the change tracking of this tenant's users (410 Gone): \
             listing every user again"
                .to_string()
        } else {
            format!(
                "The saved change link of this tenant has expired (Graph keeps one 7 days; \
                 {} {}): listing every user again",
                self.status, self.code
            )
        }
    }

    /// Whether Graph's answer to a delta request means "start over": `410 Gone`, or a 400 /
    /// 410 with code `syncStateNotFound` or `resyncRequired` (any case).
    pub fn from_error(err: &GraphError, location: Option<String>) -> Option<StartOver> {
        let GraphError::Api {
            status,
            code,
            message,
            request_id,
            ..
        } = err
        else {
            return None;
        };
        let token_code = code.eq_ignore_ascii_case("syncStateNotFound")
            || code.eq_ignore_ascii_case("resyncRequired");
        if *status == 410 || (*status == 400 && token_code) {
            Some(StartOver {
                status: *status,
                code: code.clone(),
                message: message.clone(),
                location,
                request_id: request_id.clone(),
            })
        } else {
            None
        }
    }
}

impl std::fmt::Display for StartOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.plain())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The link is no good any more: list the tenant again (and say so: [`StartOver::plain`]).
    #[error("{0}")]
    StartOver(StartOver),
    /// Any other failure: the link is still good, try the round again later.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl DeltaError {
    pub fn is_start_over(&self) -> bool {
        matches!(self, DeltaError::StartOver(_))
    }
}

impl From<CallFailure> for DeltaError {
    fn from(f: CallFailure) -> DeltaError {
        let location = f
            .headers
            .as_ref()
            .and_then(|h| h.get(reqwest::header::LOCATION))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match StartOver::from_error(&f.error, location) {
            Some(s) => DeltaError::StartOver(s),
            None => DeltaError::Graph(f.error),
        }
    }
}

/// `Option<Option<T>>` from a field: absent = `None`, `null` = `Some(None)`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct Removed {
    #[serde(default)]
    reason: Option<String>,
}

/// One item of a delta page.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    id: String,
    #[serde(rename = "@removed", default)]
    removed: Option<Removed>,
    #[serde(default, deserialize_with = "present")]
    user_principal_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    mail: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    given_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    surname: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    account_enabled: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    on_premises_sync_enabled: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    user_type: Option<Option<String>>,
    /// Every other property sent: the synced attributes are taken from here, the rest (and
    /// annotations such as `manager@delta`) ignored.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// A synced attribute's value as delta sends it: a string, or for `businessPhones` an array
/// whose first number counts; null, empty or anything else clears.
fn attr_value(a: UserAttr, v: &serde_json::Value) -> Option<String> {
    let s = match (a, v) {
        (UserAttr::BusinessPhones, serde_json::Value::Array(items)) => items.first()?.as_str()?,
        (_, serde_json::Value::String(s)) => s.as_str(),
        _ => return None,
    };
    (!s.is_empty()).then(|| s.to_string())
}

impl Item {
    fn change(self) -> DeltaChange {
        match self.removed {
            Some(r) => match r.reason.as_deref() {
                Some(x) if x.eq_ignore_ascii_case("changed") => {
                    DeltaChange::SoftDeleted { id: self.id }
                }
                other => {
                    if !other.is_some_and(|x| x.eq_ignore_ascii_case("deleted")) {
                        tracing::warn!(id = %self.id, reason = ?other, "delta: unknown @removed reason, taken as purged");
                    }
                    DeltaChange::Purged { id: self.id }
                }
            },
            None => DeltaChange::Upsert(UserDelta {
                id: self.id,
                // The UPN is never null on a user; a `null` is taken as "not sent".
                user_principal_name: self.user_principal_name.flatten(),
                mail: self.mail,
                display_name: self.display_name,
                given_name: self.given_name,
                surname: self.surname,
                account_enabled: self.account_enabled,
                attrs: self
                    .other
                    .iter()
                    .filter_map(|(k, v)| UserAttr::from_wire(k).map(|a| (a, attr_value(a, v))))
                    .collect(),
                on_premises_sync_enabled: self.on_premises_sync_enabled.map(|v| v.unwrap_or(false)),
                guest: self
                    .user_type
                    .map(|t| t.is_some_and(|t| t.eq_ignore_ascii_case("guest"))),
            }),
        }
    }
}

#[derive(Deserialize)]
struct DeltaPage {
    #[serde(default)]
    value: Vec<Item>,
    #[serde(rename = "@odata.deltaLink", default)]
    delta_link: Option<String>,
}

impl GraphClient {
    /// The first delta request (`/users/delta?$select=<USER_SELECT>`): a round from it
    /// returns every user (the initial round of graph-notes §18).
    pub fn users_delta_url(&self) -> String {
        format!(
            "{}{}?$select={}",
            self.base(),
            paths::USERS_DELTA,
            USER_SELECT.join(",")
        )
    }

    /// A delta link "from now", without data (`$deltatoken=latest`): a round from it returns
    /// the changes made after this call. Take it right before a full listing, so the rounds
    /// after the listing miss nothing. Permission: `User.Read.All`.
    pub async fn users_delta_latest(&self) -> Result<String, DeltaError> {
        let round = self
            .users_delta_round(&format!("{}&$deltatoken=latest", self.users_delta_url()))
            .await?;
        if !round.changes.is_empty() {
            tracing::warn!(
                changes = round.changes.len(),
                "delta: $deltatoken=latest answered with changes; ignored"
            );
        }
        Ok(round.delta_link)
    }

    /// One delta round from `link` (a saved `@odata.deltaLink`, or [`Self::users_delta_url`]
    /// for an initial round): every page until the one with the next delta link.
    /// [`DeltaError::StartOver`] when Graph no longer honours the link.
    pub async fn users_delta_round(&self, link: &str) -> Result<DeltaRound, DeltaError> {
        self.users_delta_round_with(link, &mut |_| {}).await
    }

    /// [`Self::users_delta_round`], handing `on_page` each page's changes as it arrives (work
    /// that can start before the round ends).
    pub async fn users_delta_round_with(
        &self,
        link: &str,
        on_page: &mut (dyn FnMut(&[DeltaChange]) + Send),
    ) -> Result<DeltaRound, DeltaError> {
        let started_at = OffsetDateTime::now_utc();
        let client = self.clone();
        let fetch: PageFetch<DeltaError> = Arc::new(move |url: String| {
            let client = client.clone();
            Box::pin(async move {
                client
                    .get_keeping_headers(&url)
                    .await
                    .map_err(DeltaError::from)
            })
        });
        let mut stream = self.page_stream::<DeltaPage, DeltaError>(link.to_string(), fetch);
        let mut changes = Vec::new();
        let mut pages = 0usize;
        let mut delta_link = None;
        while let Some(page) = stream.next().await {
            let page = page?;
            pages += 1;
            let from = changes.len();
            changes.extend(page.value.into_iter().map(Item::change));
            on_page(&changes[from..]);
            if page.delta_link.is_some() {
                delta_link = page.delta_link;
            }
        }
        let delta_link = delta_link.ok_or_else(|| {
            GraphError::Malformed(format!(
                "the last page of a delta round (page {pages}) has neither @odata.nextLink nor \
                 @odata.deltaLink"
            ))
        })?;
        Ok(DeltaRound {
            changes,
            delta_link,
            started_at,
            pages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(json: &str) -> Vec<DeltaChange> {
        let p: DeltaPage = serde_json::from_str(json).unwrap();
        p.value.into_iter().map(Item::change).collect()
    }

    #[test]
    fn removed_reasons_and_omitted_versus_null_properties() {
        let c = items(
            r#"{"value":[
              {"id":"a","@removed":{"reason":"changed"}},
              {"id":"b","@removed":{"reason":"deleted"}},
              {"id":"c","@removed":{"reason":"somethingNew"}},
              {"id":"d","displayName":"D","mail":null,"accountEnabled":false},
              {"id":"e","userPrincipalName":"e@x.com","givenName":"E","surname":"Z","mail":"e@x.com","displayName":"E Z","accountEnabled":true}
            ],"@odata.deltaLink":"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=T"}"#,
        );
        assert_eq!(c[0], DeltaChange::SoftDeleted { id: "a".into() });
        assert_eq!(c[1], DeltaChange::Purged { id: "b".into() });
        assert_eq!(c[2], DeltaChange::Purged { id: "c".into() });
        let DeltaChange::Upsert(d) = &c[3] else {
            panic!()
        };
        assert_eq!(d.display_name, Some(Some("D".into())));
        assert_eq!(d.mail, Some(None), "null clears");
        assert_eq!(d.given_name, None, "omitted keeps");
        let old = User {
            id: "d".into(),
            user_principal_name: "d@x.com".into(),
            mail: Some("d@x.com".into()),
            display_name: Some("old".into()),
            given_name: Some("Dee".into()),
            surname: None,
            account_enabled: Some(true),
            attrs: [(UserAttr::JobTitle, "Old"), (UserAttr::City, "Oslo")]
                .into_iter()
                .collect(),
            ..User::default()
        };
        let new = d.apply_to(Some(&old));
        assert_eq!(
            new,
            User {
                mail: None,
                display_name: Some("D".into()),
                account_enabled: Some(false),
                ..old.clone()
            }
        );
        // A user new to the snapshot: omitted = never set.
        let fresh = d.apply_to(None);
        assert_eq!(fresh.user_principal_name, "");
        assert_eq!(fresh.given_name, None);
        let DeltaChange::Upsert(e) = &c[4] else {
            panic!()
        };
        assert_eq!(e.apply_to(Some(&old)).given_name.as_deref(), Some("E"));
    }

    #[test]
    fn start_over_is_400_sync_state_not_found_or_any_410() {
        let api = |status: u16, code: &str| GraphError::Api {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: Some("r".into()),
            date: None,
            retry_after: None,
        };
        let s = StartOver::from_error(&api(400, "syncStateNotFound"), None).unwrap();
        assert_eq!(s.status, 400);
        assert!(s.plain().contains("expired"), "{}", s.plain());
        assert!(StartOver::from_error(&api(400, "SyncStateNotFound"), None).is_some());
        assert!(StartOver::from_error(&api(400, "resyncRequired"), None).is_some());
        let g = StartOver::from_error(&api(410, "Gone"), Some("https://g/x".into())).unwrap();
        assert_eq!(g.location.as_deref(), Some("https://g/x"));
        assert!(g.plain().contains("410"));
        assert!(StartOver::from_error(&api(400, "Request_BadRequest"), None).is_none());
        assert!(StartOver::from_error(&api(404, "syncStateNotFound"), None).is_none());
        assert!(StartOver::from_error(&GraphError::Transport("x".into()), None).is_none());
    }
}
