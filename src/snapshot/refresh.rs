//! Keeping the snapshot current: a delta round when the snapshot has a link Graph still
//! honours, a full (cold, sharded) listing otherwise, and why, in plain words.
//!
//! The SQLite work runs on the blocking pool; the Graph work on the caller's runtime.
use std::sync::Arc;

use time::OffsetDateTime;

use crate::graph::{
    ColdListingOptions, DeltaChange, DeltaError, DeltaRound, GraphClient, GraphError, ListingEvent,
    ListingMode, StartOver,
};

use super::{
    Fresh, FullListingEnd, PageCopies, RoundSummary, Snapshot, SnapshotError, SnapshotHead,
    SnapshotStore,
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
    refresh_inner(graph, store, current, force_full, opts, on_event, None).await
}

/// [`refresh_with`]; `fetched`: a round's requests made already (used when from `current`'s
/// link, its `DeltaRound` event said when they left).
async fn refresh_inner(
    graph: &GraphClient,
    store: &SnapshotStore,
    current: Option<&Snapshot>,
    force_full: bool,
    opts: &RefreshOptions,
    on_event: &mut (dyn FnMut(RefreshEvent) + Send),
    fetched: Option<RoundFetch>,
) -> Result<Refreshed, RefreshError> {
    let reason = match (full_reason(current, graph.base(), force_full), current) {
        (Some(why), _) => why,
        (None, None) => FullReason::NoSnapshot,
        (None, Some(s)) => {
            if fetched.is_none() {
                on_event(RefreshEvent::DeltaRound);
            }
            match delta_refresh_from(graph, store, s, opts, fetched).await? {
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

/// A delta round's Graph requests from one link: the round, and (when asked) the soft-deleted
/// users and the domains listed beside it (one round trip less than after it).
pub struct RoundFetch {
    link: String,
    round: Result<DeltaRound, DeltaError>,
    fresh: Result<Fresh, GraphError>,
    /// Copies of the pages the round changes, made while it was in flight.
    copies: Option<Copier>,
}

/// Copies of the pages of a loaded copy that a round in flight changes, made on the blocking
/// pool as the round's pages arrive (one job at a time, in order), so that applying the round
/// at the end moves users rather than copies them.
#[derive(Default, Clone)]
struct Copier(Arc<std::sync::Mutex<CopierState>>);

#[derive(Default)]
struct CopierState {
    copy: Option<Snapshot>,
    /// Ids changed, not yet looked for in the copy.
    pending: Vec<String>,
    copies: PageCopies,
    job: Option<tokio::task::JoinHandle<()>>,
}

impl Copier {
    /// The copy is loaded: the pages of the ids seen so far are copied.
    fn copy_of(&self, snap: &Snapshot) {
        if let Ok(mut st) = self.0.lock() {
            st.copy = Some(snap.clone());
        }
        self.kick();
    }

    /// A page of the round arrived.
    fn changed(&self, changes: &[DeltaChange]) {
        if let Ok(mut st) = self.0.lock() {
            st.pending
                .extend(changes.iter().map(|c| c.id().to_string()));
        }
        self.kick();
    }

    /// Starts a job for the pending ids when the copy is there and no job runs.
    fn kick(&self) {
        let Ok(mut st) = self.0.lock() else { return };
        if st.copy.is_none()
            || st.pending.is_empty()
            || st.job.as_ref().is_some_and(|j| !j.is_finished())
        {
            return;
        }
        let me = self.clone();
        st.job = Some(tokio::task::spawn_blocking(move || {
            // Taken out so the lock is not held while copying.
            let (copy, ids, mut copies) = {
                let Ok(mut st) = me.0.lock() else { return };
                (
                    st.copy.clone(),
                    std::mem::take(&mut st.pending),
                    std::mem::take(&mut st.copies),
                )
            };
            if let Some(copy) = &copy {
                copies.copy_pages_of(copy, ids.iter().map(String::as_str));
            }
            if let Ok(mut st) = me.0.lock() {
                st.copies = copies;
                st.job = None; // this one: done
            }
            me.kick(); // ids that arrived meanwhile
        }));
    }

    /// The copies made, once the job running ends. Ids not looked for yet are left to the
    /// apply (their pages are copied there).
    async fn finish(self) -> PageCopies {
        for _ in 0..64 {
            let job = self.0.lock().ok().and_then(|mut st| st.job.take());
            match job {
                Some(j) => {
                    let _ = j.await;
                }
                None => break,
            }
        }
        self.0
            .lock()
            .map(|mut st| std::mem::take(&mut st.copies))
            .unwrap_or_default()
    }
}

/// The requests of a round from `link` (nothing is applied or saved).
pub async fn fetch_round(graph: &GraphClient, link: String, opts: &RefreshOptions) -> RoundFetch {
    fetch_round_with(graph, link, opts, &mut |_| {}).await
}

/// [`fetch_round`], handing `on_page` each page's changes as it arrives.
async fn fetch_round_with(
    graph: &GraphClient,
    link: String,
    opts: &RefreshOptions,
    on_page: &mut (dyn FnMut(&[DeltaChange]) + Send),
) -> RoundFetch {
    let relist = async {
        if opts.relist_deleted_and_domains {
            let (deleted, domains) = tokio::join!(graph.list_deleted_users(), graph.list_domains());
            Ok::<_, GraphError>(Fresh {
                deleted: Some(deleted?),
                domains: Some(domains?),
            })
        } else {
            Ok(Fresh::default())
        }
    };
    let (round, fresh) = tokio::join!(graph.users_delta_round_with(&link, on_page), relist);
    RoundFetch {
        link,
        round,
        fresh,
        copies: None,
    }
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
    delta_refresh_from(graph, store, current, opts, None).await
}

/// [`delta_refresh`], with the round's requests already made (`fetched`, used when it is
/// from `current`'s link).
async fn delta_refresh_from(
    graph: &GraphClient,
    store: &SnapshotStore,
    current: &Snapshot,
    opts: &RefreshOptions,
    mut fetched: Option<RoundFetch>,
) -> Result<Result<(Snapshot, RoundSummary), StartOver>, RefreshError> {
    let mut base = current.clone();
    for attempt in 0..2 {
        let Some(link) = base.head.delta_link.clone() else {
            return Err(GraphError::Malformed("the snapshot has no delta link".into()).into());
        };
        let mut f = match fetched.take().filter(|f| f.link == link) {
            Some(f) => f,
            None => fetch_round(graph, link, opts).await,
        };
        let round = match f.round {
            Ok(r) => r,
            Err(DeltaError::StartOver(s)) => return Ok(Err(s)),
            Err(DeltaError::Graph(e)) => return Err(e.into()),
        };
        let fresh = f.fresh?;
        let s = store.clone();
        let b = base.clone();
        let copies = match f.copies.take() {
            Some(c) if attempt == 0 => c.finish().await,
            _ => PageCopies::default(),
        };
        match blocking(move || s.apply_round_with(&b, &round, fresh, copies)).await {
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

/// What [`load_and_refresh`] tells of the saved copy as it loads.
pub enum CopyEvent<'a> {
    /// A page of users, decoded (in the copy's order).
    Page(&'a Arc<Vec<crate::graph::User>>),
    /// The whole copy, loaded (before the round is applied to it).
    Loaded(&'a Snapshot),
}

/// The saved copy loaded on the blocking pool; when `show` (it fits this Graph: see
/// [`SnapshotHead::unfit_for`]), its pages go to `on_copy` as they decode, then the copy.
pub async fn load_copy(
    store: &SnapshotStore,
    graph_base: String,
    show: bool,
    mut on_copy: Box<dyn FnMut(CopyEvent<'_>) + Send>,
) -> Result<Option<Snapshot>, SnapshotError> {
    let s = store.clone();
    blocking(move || {
        let loaded = s.load_streaming(&mut |p| {
            if show {
                on_copy(CopyEvent::Page(p))
            }
        })?;
        if let Some(l) = loaded
            .as_ref()
            .filter(|l| show && l.head.unfit_for(&graph_base).is_none())
        {
            on_copy(CopyEvent::Loaded(l));
        }
        Ok(loaded)
    })
    .await
}

/// A start with no copy held: the saved copy loaded and brought up to date. The delta round's
/// requests leave first (from the link in the file's head, a cheap read) and the copy loads
/// while they are in flight, its pages handed to `on_copy` as they decode (only when the copy
/// fits `graph`: one of another Graph or `$select` is not shown); then the round is applied to
/// it, or the tenant is listed in full (`force_full`, no copy, or no round possible: why).
///
/// `on_copy` hears of the copy only when it fits: then every page, then the copy. Returns the
/// copy as loaded (when it could be read), and the refresh.
pub async fn load_and_refresh(
    graph: &GraphClient,
    store: &SnapshotStore,
    force_full: bool,
    opts: &RefreshOptions,
    on_copy: Box<dyn FnMut(CopyEvent<'_>) + Send>,
    on_event: &mut (dyn FnMut(RefreshEvent) + Send),
) -> (Option<Snapshot>, Result<Refreshed, RefreshError>) {
    let head = {
        let s = store.clone();
        blocking(move || s.head()).await.ok().flatten()
    };
    let base = graph.base().to_string();
    let fits = head
        .as_ref()
        .is_some_and(|h| h.unfit_for(graph.base()).is_none());
    let link = head
        .filter(|_| fits && !force_full)
        .and_then(|h| h.delta_link);
    let loading = load_copy(store, base, fits, on_copy);
    let (loaded, fetched) = match link {
        Some(link) => {
            on_event(RefreshEvent::DeltaRound);
            // The pages the round changes are copied as its pages arrive, once the copy is
            // loaded: the apply at the end only patches them.
            let copier = Copier::default();
            let mut on_page = |changes: &[DeltaChange]| copier.changed(changes);
            let (loaded, mut fetched) = tokio::join!(
                async {
                    let loaded = loading.await;
                    if let Ok(Some(l)) = &loaded {
                        copier.copy_of(l);
                    }
                    loaded
                },
                fetch_round_with(graph, link, opts, &mut on_page)
            );
            fetched.copies = Some(copier);
            (loaded, Some(fetched))
        }
        None => (loading.await, None),
    };
    let loaded = loaded.unwrap_or_else(|e| {
        // A copy that cannot be read is listed again (and replaced).
        tracing::warn!(error = %e, "the tenant snapshot cannot be read");
        None
    });
    let refreshed = refresh_inner(
        graph,
        store,
        loaded.as_ref(),
        force_full,
        opts,
        on_event,
        fetched,
    )
    .await;
    (loaded, refreshed)
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
