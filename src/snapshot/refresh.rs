//! Keeping the snapshot current: a delta round when the snapshot has a link Graph still
//! honours, a full (cold, sharded) listing otherwise, and why, in plain words.
//!
//! The SQLite work runs on the blocking pool; the Graph work on the caller's runtime.
use std::sync::Arc;

use time::OffsetDateTime;

use crate::graph::{
    ColdListingOptions, DeltaError, GraphClient, GraphError, ListingEvent, ListingMode, StartOver,
};

use super::{
    Fresh, FullListingEnd, RoundSummary, Snapshot, SnapshotError, SnapshotHead, SnapshotStore,
};

#[derive(Debug, Clone)]
pub struct RefreshOptions {
    pub listing: ColdListingOptions,
    /// List the soft-deleted users and the domains again after a delta round (two small
    /// requests; a round only sees users soft-deleted since the last one).
    pub relist_deleted_and_domains: bool,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        RefreshOptions {
            listing: ColdListingOptions::default(),
            relist_deleted_and_domains: true,
        }
    }
}

/// Why the tenant was listed in full rather than brought up to date by a delta round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FullReason {
    /// No snapshot yet for this tenant.
    NoSnapshot,
    /// The caller asked for it (`--fresh`, the console's "list again" key).
    Forced,
    /// The snapshot has no delta link (Graph gave none when it was listed).
    NoDeltaLink,
    /// The snapshot is of another Graph URL or another `$select`.
    Unfit(String),
    /// Graph refused the delta link: it expired or Graph reset the sync.
    StartOver(StartOver),
}

impl FullReason {
    /// For a status line or stderr.
    pub fn plain(&self) -> String {
        match self {
            FullReason::NoSnapshot => "No saved copy of this tenant yet: listing every user".into(),
            FullReason::Forced => "Listing every user again, as asked".into(),
            FullReason::NoDeltaLink => {
                "The saved copy has no change link: listing every user again".into()
            }
            FullReason::Unfit(why) => format!("{why}: listing every user again"),
            FullReason::StartOver(s) => s.plain(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshKind {
    /// A delta round brought the snapshot up to date.
    Delta(RoundSummary),
    /// The tenant was listed in full.
    Full {
        reason: FullReason,
        mode: ListingMode,
    },
}

#[derive(Debug, Clone)]
pub struct Refreshed {
    pub snapshot: Snapshot,
    pub kind: RefreshKind,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] SnapshotError),
}

async fn blocking<T, F>(f: F) -> Result<T, SnapshotError>
where
    F: FnOnce() -> Result<T, SnapshotError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(SnapshotError::Io {
            path: "snapshot".into(),
            source: std::io::Error::other(format!("the snapshot task failed: {e}")),
        })
    })
}

/// Loads the store's snapshot on the blocking pool.
pub async fn load(store: &SnapshotStore) -> Result<Option<Snapshot>, SnapshotError> {
    let store = store.clone();
    blocking(move || store.load()).await
}

/// What a refresh is doing, as it goes (for a status line).
#[derive(Debug, Clone)]
pub enum RefreshEvent {
    /// A delta round from the snapshot's link started.
    DeltaRound,
    /// A full listing started, because of this.
    FullListing(FullReason),
    /// The full listing's progress.
    Listing(ListingEvent),
}

/// Whether a refresh of `current` from `graph_base` can be a delta round (`None`), or must
/// list in full, and why.
pub fn full_reason(
    current: Option<&Snapshot>,
    graph_base: &str,
    force_full: bool,
) -> Option<FullReason> {
    match current {
        _ if force_full => Some(FullReason::Forced),
        None => Some(FullReason::NoSnapshot),
        Some(s) => match (s.head.unfit_for(graph_base), &s.head.delta_link) {
            (Some(why), _) => Some(FullReason::Unfit(why)),
            (None, None) => Some(FullReason::NoDeltaLink),
            (None, Some(_)) => None,
        },
    }
}

impl Refreshed {
    /// What the refresh did, in one line (stderr, the console's message): "delta round: 12
    /// changed, as of …" or "full listing (why): 100,000 users, as of …", the time as
    /// `at` formats it.
    pub fn describe(&self, at: impl Fn(OffsetDateTime) -> String) -> String {
        let when = at(self.snapshot.as_of());
        match &self.kind {
            RefreshKind::Delta(s) => format!(
                "delta round: {} changed, as of {when}",
                crate::format::thousands(s.changed())
            ),
            RefreshKind::Full { reason, .. } => format!(
                "full listing ({}): {}, as of {when}",
                reason.plain(),
                crate::format::count(self.snapshot.head.users as usize, "user", None)
            ),
        }
    }
}

/// The snapshot brought up to date: a delta round from `current` when it can be continued,
/// else a full listing (with why). `force_full` always lists. `on_event` hears a full
/// listing's progress (a delta round is quick and reports nothing).
pub async fn refresh(
    graph: &GraphClient,
    store: &SnapshotStore,
    current: Option<&Snapshot>,
    force_full: bool,
    opts: &RefreshOptions,
    on_event: &mut (dyn FnMut(ListingEvent) + Send),
) -> Result<Refreshed, RefreshError> {
    refresh_with(graph, store, current, force_full, opts, &mut |e| {
        if let RefreshEvent::Listing(e) = e {
            on_event(e)
        }
    })
    .await
}

/// [`refresh`], telling `on_event` what it does: a delta round, a full listing and why, the
/// listing's progress.
pub async fn refresh_with(
    graph: &GraphClient,
    store: &SnapshotStore,
    current: Option<&Snapshot>,
    force_full: bool,
    opts: &RefreshOptions,
    on_event: &mut (dyn FnMut(RefreshEvent) + Send),
) -> Result<Refreshed, RefreshError> {
    let reason = match (full_reason(current, graph.base(), force_full), current) {
        (Some(why), _) => why,
        (None, None) => FullReason::NoSnapshot,
        (None, Some(s)) => {
            on_event(RefreshEvent::DeltaRound);
            match delta_refresh(graph, store, s, opts).await? {
                Ok((snapshot, summary)) => {
                    return Ok(Refreshed {
                        snapshot,
                        kind: RefreshKind::Delta(summary),
                    })
                }
                Err(start_over) => FullReason::StartOver(start_over),
            }
        }
    };
    tracing::info!(reason = %reason.plain(), "full listing");
    on_event(RefreshEvent::FullListing(reason.clone()));
    let mut listing = opts.listing.clone();
    if listing.expected_users.is_none() {
        // The last count tells whether to count the prefixes with the first requests.
        listing.expected_users = current.map(|s| s.head.users);
    }
    let (snapshot, mode) = full_refresh(graph, store, &listing, &mut |e| {
        on_event(RefreshEvent::Listing(e))
    })
    .await?;
    Ok(Refreshed {
        snapshot,
        kind: RefreshKind::Full { reason, mode },
    })
}

/// One delta round from `current`'s link, applied and saved: the new snapshot, or
/// `Ok(Err(StartOver))` when Graph no longer honours the link (list in full: see
/// [`full_refresh`]). When another m365sync saved a newer snapshot meanwhile, the round is run
/// again from that one (once).
pub async fn delta_refresh(
    graph: &GraphClient,
    store: &SnapshotStore,
    current: &Snapshot,
    opts: &RefreshOptions,
) -> Result<Result<(Snapshot, RoundSummary), StartOver>, RefreshError> {
    let mut base = current.clone();
    for attempt in 0..2 {
        let Some(link) = base.head.delta_link.clone() else {
            return Err(GraphError::Malformed("the snapshot has no delta link".into()).into());
        };
        // The soft-deleted users and the domains are listed while the round pages (one
        // round trip less than after it).
        let relist = async {
            if opts.relist_deleted_and_domains {
                let (deleted, domains) =
                    tokio::join!(graph.list_deleted_users(), graph.list_domains());
                Ok::<_, GraphError>(Fresh {
                    deleted: Some(deleted?),
                    domains: Some(domains?),
                })
            } else {
                Ok(Fresh::default())
            }
        };
        let (round, fresh) = tokio::join!(graph.users_delta_round(&link), relist);
        let round = match round {
            Ok(r) => r,
            Err(DeltaError::StartOver(s)) => return Ok(Err(s)),
            Err(DeltaError::Graph(e)) => return Err(e.into()),
        };
        let fresh = fresh?;
        let s = store.clone();
        let b = base.clone();
        match blocking(move || s.apply_round(&b, &round, fresh)).await {
            Ok(done) => return Ok(Ok(done)),
            Err(SnapshotError::Changed) if attempt == 0 => {
                tracing::info!("the snapshot changed meanwhile: running the round from it");
                match load(store).await? {
                    Some(s) if s.head.delta_link.is_some() => base = s,
                    _ => return Err(SnapshotError::Changed.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(SnapshotError::Changed.into())
}

/// Lists the whole tenant (sharded when it pays, see [`GraphClient::cold_listing`]), with the
/// soft-deleted users and the domains, and saves it as the new snapshot. `on_event` hears the
/// listing's progress.
pub async fn full_refresh(
    graph: &GraphClient,
    store: &SnapshotStore,
    opts: &ColdListingOptions,
    on_event: &mut (dyn FnMut(ListingEvent) + Send),
) -> Result<(Snapshot, ListingMode), RefreshError> {
    // The soft-deleted users and the domains beside the listing (a few requests).
    let (listing, deleted, domains) = tokio::join!(
        graph.cold_listing(opts, on_event),
        graph.list_deleted_users(),
        graph.list_domains()
    );
    let (listing, deleted, domains) = (listing?, deleted?, domains?);
    let end = FullListingEnd {
        graph_base: graph.base().to_string(),
        as_of: listing.started_at,
        delta_link: listing.delta_link.clone(),
        deleted: deleted.clone(),
        domains: domains.clone(),
    };
    let pages: Vec<Arc<Vec<crate::graph::User>>> = listing.pages;
    let s = store.clone();
    let written = pages.clone();
    let head: SnapshotHead = blocking(move || {
        let mut w = s.begin_full()?;
        for p in &written {
            w.write_page(p)?;
        }
        w.commit(end)
    })
    .await?;
    Ok((
        Snapshot {
            head,
            pages,
            deleted,
            domains,
        },
        listing.mode,
    ))
}
