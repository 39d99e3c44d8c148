//! The tenant's users for the headless commands (`users`, `sync`, `errors`): the tenant
//! snapshot brought up to date by a delta round (the default), a full listing (`--fresh`), or
//! the snapshot as it is (`--offline`). What the refresh did goes to stderr in one line; stdout
//! stays the command's own.
use anyhow::{Context, Result};
use clap::Args;

use crate::config::Settings;
use crate::graph::GraphClient;
use crate::snapshot::{self, RefreshOptions, Snapshot, SnapshotStore};
use crate::sync::plan::TenantSnapshot;

/// How current the tenant's users must be.
#[derive(Debug, Clone, Args, Default)]
pub struct FreshnessArgs {
    /// List every tenant user again (a full listing) instead of a delta round from the saved
    /// copy of the tenant
    #[arg(long, conflicts_with = "offline")]
    pub fresh: bool,
    /// Use the saved copy of the tenant as it is, reading no user from Graph (its age is
    /// printed on stderr); without a saved copy this fails with exit code 66
    #[arg(long)]
    pub offline: bool,
}

/// `--offline` and no saved copy of the tenant (exit [`super::exit::NO_SNAPSHOT`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "--offline: there is no saved copy of tenant {tenant} in {dir} yet; run the command once \
     without --offline (it lists the tenant and saves it)"
)]
pub struct NoSnapshot {
    pub tenant: String,
    pub dir: String,
}

/// The snapshot of the configured tenant, as it is (`--offline`), or the typed error when
/// there is none. Its age goes to stderr.
pub async fn offline(settings: &Settings) -> Result<Snapshot> {
    let tenant = settings.tenant()?.to_string();
    let no = || NoSnapshot {
        tenant: tenant.clone(),
        dir: settings.data_dir.join("snapshots").display().to_string(),
    };
    let Some(store) = SnapshotStore::open_read_only(&settings.data_dir, &tenant)
        .context("opening the saved copy of the tenant")?
    else {
        return Err(no().into());
    };
    let snap = snapshot::load_async(&store)
        .await
        .context("reading the saved copy of the tenant")?
        .ok_or_else(no)?;
    eprintln!(
        "offline: the saved copy of the tenant as of {} ({} old), {}; no user read from Graph",
        crate::format::utc_stamp(snap.as_of()),
        crate::format::duration(snap.age()),
        crate::format::count(snap.head.users as usize, "user", None),
    );
    Ok(snap)
}

/// The tenant's users, soft-deleted users and domains as `args` asks: the snapshot as it is
/// (`--offline`), else brought up to date (a delta round, or a full listing with `--fresh`
/// or when a round cannot be made) and saved. What was done goes to stderr in one line.
pub async fn tenant(
    settings: &Settings,
    graph: &GraphClient,
    args: &FreshnessArgs,
) -> Result<TenantSnapshot> {
    if args.offline {
        return Ok(offline(settings).await?.tenant());
    }
    let tenant = settings.tenant()?.to_string();
    let store = match SnapshotStore::open(&settings.data_dir, &tenant) {
        Ok(s) => s,
        Err(e) => {
            // A data dir this user cannot write (read-only): list without saving.
            eprintln!(
                "note: the saved copy of the tenant cannot be written ({e}): listing every user"
            );
            return list_unsaved(graph).await;
        }
    };
    let current = if args.fresh {
        None
    } else {
        match snapshot::load_async(&store).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("note: the saved copy of the tenant cannot be read ({e})");
                None
            }
        }
    };
    let r = snapshot::refresh(
        graph,
        &store,
        current.as_ref(),
        args.fresh,
        &RefreshOptions::default(),
        &mut |_| {},
    )
    .await
    .context("bringing the saved copy of the tenant up to date")?;
    eprintln!("{}", r.describe(crate::format::utc_stamp));
    Ok(r.snapshot.tenant())
}

/// Every user, the soft-deleted users and the domains, listed now and saved nowhere.
async fn list_unsaved(graph: &GraphClient) -> Result<TenantSnapshot> {
    let opts = crate::graph::ColdListingOptions::default();
    let listing = graph
        .cold_listing(&opts, &mut |_| {})
        .await
        .context("listing tenant users")?;
    eprintln!(
        "full listing (not saved): {}",
        crate::format::count(listing.users as usize, "user", None)
    );
    Ok(crate::sync::pipeline::with_deleted_and_domains(graph, listing.pages).await?)
}
