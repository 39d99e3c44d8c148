//! The tenant snapshot: the tenant's users as m365sync lists them ([`USER_SELECT`]), its
//! soft-deleted users, its domains and the delta link that continues from them, with the time
//! they were current. Kept in a SQLite file of its own per tenant,
//! `<data dir>/snapshots/<tenant>.sqlite3` (0600 in a 0700 folder), so a million rows never
//! touch the directory database.
//!
//! On disk (format [`FORMAT`], `PRAGMA user_version`):
//! - `head`: one row: the current generation, the Graph base and `$select` it was listed
//!   with, the delta link, `as_of` and `listed_at` (RFC 3339), the user count, the domains
//!   (JSON).
//! - `pages (gen, seq, users, data)`: the users of a full listing, a page of users per row as
//!   one compact blob ([`codec`]).
//! - `changes (gen, id, seq, data)`: what delta rounds changed since that listing, one row per
//!   user (`data` NULL: no longer a live user); loading applies them over the pages.
//! - `deleted (gen, id, data)`: the soft-deleted users.
//! - `building (gen, started)`: full listings being written.
//!
//! Crash safety: a full listing writes a new generation (committed in batches as it goes),
//! and one transaction at the end makes it current and drops the older ones; until then the
//! previous generation is what loads. A delta round is one transaction (its changes, the new
//! link, `as_of`). When the changes reach a tenth of the users the round writes a new
//! generation instead (compaction). WAL mode: a reader sees the last committed state while a
//! writer works.
//!
//! Everything here blocks (SQLite): call it from `spawn_blocking`. [`refresh`] has the async
//! operations the console and the CLI call.
pub mod codec;
pub mod refresh;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::graph::model::USER_SELECT;
use crate::graph::{DeletedUser, DeltaChange, DeltaRound, Domain, User};

pub use refresh::{
    delta_refresh, fetch_round, full_reason, full_refresh, load as load_async, load_and_refresh,
    load_copy, refresh, refresh_with, CopyEvent, FullReason, RefreshError, RefreshEvent,
    RefreshKind, RefreshOptions, Refreshed, RoundFetch,
};

/// The on-disk format this build reads and writes.
pub const FORMAT: i64 = 1;
/// Users per page when pages are made here (created users, compaction).
pub const PAGE_USERS: usize = 999;
/// Pages written per transaction by a full listing.
const PAGES_PER_TX: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("snapshot file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Corrupt(#[from] codec::Corrupt),
    #[error("snapshot database: {0}")]
    Column(#[from] rusqlite::types::FromSqlError),
    #[error(
        "the snapshot file was written by a newer m365sync (format {0}, this one reads {FORMAT})"
    )]
    NewerFormat(i64),
    /// Another m365sync changed the snapshot since it was loaded (a round or a listing of its
    /// own): load it again.
    #[error("the snapshot changed since it was loaded (another m365sync refreshed it)")]
    Changed,
    /// A newer full listing was committed while this one was being written.
    #[error("a newer full listing replaced this one while it was written")]
    Superseded,
}

/// The snapshot's file for a tenant: `<data dir>/snapshots/<tenant>.sqlite3`, the tenant
/// string reduced to a safe file name as the token cache's is.
pub fn path_for(data_dir: &Path, tenant: &str) -> PathBuf {
    let safe: String = tenant
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    data_dir.join("snapshots").join(format!("{safe}.sqlite3"))
}

/// Removes the tenant's snapshot file and its WAL sidecars (disconnect: the copy holds the
/// tenant's names and addresses, and no later sync may plan on it). Whether there was one.
pub fn remove(data_dir: &Path, tenant: &str) -> std::io::Result<bool> {
    let path = path_for(data_dir, tenant);
    let mut had = false;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => had |= suffix.is_empty(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(had)
}

/// The `$select` a snapshot is listed with: a snapshot listed with another one (an older
/// m365sync) is not used.
pub fn current_select() -> String {
    USER_SELECT.join(",")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

fn parse_time(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// What a snapshot is, without its users (cheap to read: [`SnapshotStore::head`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHead {
    /// The Graph base URL it was listed from.
    pub graph_base: String,
    /// The `$select` it was listed with.
    pub select: String,
    /// Where the next delta round starts (`None`: Graph gave none; the next refresh lists).
    pub delta_link: Option<String>,
    /// Every change before this time is in the snapshot.
    pub as_of: OffsetDateTime,
    /// When its full listing started (delta rounds since then moved `as_of`).
    pub listed_at: OffsetDateTime,
    /// Live users.
    pub users: u64,
    gen: i64,
    overlay: u64,
}

impl SnapshotHead {
    /// How old the snapshot is (zero if `as_of` is in the future).
    pub fn age(&self) -> Duration {
        Duration::try_from(OffsetDateTime::now_utc() - self.as_of).unwrap_or(Duration::ZERO)
    }

    /// Why this snapshot cannot be continued with a delta round from `graph_base` (a snapshot
    /// of another Graph, or listed with another `$select`), or `None` when it can.
    pub fn unfit_for(&self, graph_base: &str) -> Option<String> {
        if self.graph_base.trim_end_matches('/') != graph_base.trim_end_matches('/') {
            Some(format!(
                "the snapshot was listed from {}, not {graph_base}",
                self.graph_base
            ))
        } else if self.select != current_select() {
            Some(format!(
                "the snapshot holds the properties {}, this m365sync reads {}",
                self.select,
                current_select()
            ))
        } else {
            None
        }
    }
}

/// The tenant as last seen: pages of users shared by `Arc` (the console and the plan hold the
/// same pages, never copies), the soft-deleted users, the domains.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub head: SnapshotHead,
    pub pages: Vec<Arc<Vec<User>>>,
    pub deleted: Vec<DeletedUser>,
    pub domains: Vec<Domain>,
}

impl Snapshot {
    pub fn as_of(&self) -> OffsetDateTime {
        self.head.as_of
    }
    pub fn age(&self) -> Duration {
        self.head.age()
    }
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.pages.iter().flat_map(|p| p.iter())
    }
    /// Every live user, sorted by id (for comparisons: page order is the listing's).
    pub fn users_by_id(&self) -> Vec<User> {
        let mut v: Vec<User> = self.users().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
    /// The tenant as the plan takes it (the pages shared, not copied).
    pub fn tenant(&self) -> crate::sync::plan::TenantSnapshot {
        crate::sync::plan::TenantSnapshot {
            pages: self.pages.clone(),
            deleted: self.deleted.iter().map(|d| d.user.clone()).collect(),
            domains: self.domains.clone(),
        }
    }
    /// The soft-deleted users, sorted by id.
    pub fn deleted_by_id(&self) -> Vec<DeletedUser> {
        let mut v = self.deleted.clone();
        v.sort_by(|a, b| a.user.id.cmp(&b.user.id));
        v
    }
}

/// What a delta round did to the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundSummary {
    pub created: usize,
    pub updated: usize,
    /// Users in the round whose selected properties did not change.
    pub unchanged: usize,
    pub soft_deleted: usize,
    pub restored: usize,
    pub purged: usize,
    /// The round wrote a new generation (the changes had grown large).
    pub compacted: bool,
}

impl RoundSummary {
    pub fn changed(&self) -> usize {
        self.created + self.updated + self.soft_deleted + self.restored + self.purged
    }
}

/// What a delta round's caller may add: fresh soft-deleted users and domains, listed beside
/// the round, replace the snapshot's.
#[derive(Debug, Clone, Default)]
pub struct Fresh {
    pub deleted: Option<Vec<DeletedUser>>,
    pub domains: Option<Vec<Domain>>,
}

/// How a full listing ends: what is stored beside its pages.
#[derive(Debug, Clone)]
pub struct FullListingEnd {
    pub graph_base: String,
    /// When the listing started (its delta link was taken then).
    pub as_of: OffsetDateTime,
    pub delta_link: Option<String>,
    pub deleted: Vec<DeletedUser>,
    pub domains: Vec<Domain>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    gen INTEGER NOT NULL,
    graph_base TEXT NOT NULL,
    select_props TEXT NOT NULL,
    delta_link TEXT,
    as_of TEXT NOT NULL,
    listed_at TEXT NOT NULL,
    users INTEGER NOT NULL,
    domains TEXT NOT NULL,
    change_seq INTEGER NOT NULL DEFAULT 0,
    overlay INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pages (
    gen INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    users INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (gen, seq)
);
CREATE TABLE IF NOT EXISTS changes (
    gen INTEGER NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB,
    PRIMARY KEY (gen, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deleted (
    gen INTEGER NOT NULL,
    id TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (gen, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS building (
    gen INTEGER PRIMARY KEY,
    started TEXT NOT NULL
);
";

/// One tenant's snapshot file. Cheap to clone; every call opens its own connection.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    path: PathBuf,
    read_only: bool,
}

impl SnapshotStore {
    /// The tenant's snapshot under `data_dir`, created if missing (folder 0700, file 0600;
    /// an existing file, and its `-wal` and `-shm`, lose their group and other bits).
    pub fn open(data_dir: &Path, tenant: &str) -> Result<SnapshotStore, SnapshotError> {
        Self::open_path(&path_for(data_dir, tenant))
    }

    /// [`SnapshotStore::open`] at an explicit path.
    pub fn open_path(path: &Path) -> Result<SnapshotStore, SnapshotError> {
        let io = |source| SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::config::create_private_dir_all(dir).map_err(io)?;
        }
        match crate::config::create_new_private_file(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let store = SnapshotStore {
            path: path.to_path_buf(),
            read_only: false,
        };
        let conn = store.connect()?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > FORMAT {
            return Err(SnapshotError::NewerFormat(version));
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", FORMAT)?;
        drop(conn);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            crate::config::tighten_private_file(Path::new(&p)).map_err(io)?;
        }
        Ok(store)
    }

    /// The tenant's snapshot for reading only (a read-only data dir, `--offline`): `None`
    /// when there is none.
    pub fn open_read_only(
        data_dir: &Path,
        tenant: &str,
    ) -> Result<Option<SnapshotStore>, SnapshotError> {
        let path = path_for(data_dir, tenant);
        if !path.is_file() {
            return Ok(None);
        }
        Ok(Some(SnapshotStore {
            path,
            read_only: true,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes on disk (the file and its WAL).
    pub fn size_on_disk(&self) -> u64 {
        ["", "-wal"]
            .iter()
            .map(|s| {
                let mut p = self.path.as_os_str().to_owned();
                p.push(s);
                std::fs::metadata(Path::new(&p)).map_or(0, |m| m.len())
            })
            .sum()
    }

    fn connect(&self) -> Result<Connection, SnapshotError> {
        let flags = if self.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        if !self.read_only {
            let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode, "snapshot database is not in WAL mode");
            }
            // A cache: after a power cut the last round may be lost, never the file.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        } else {
            let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version > FORMAT {
                return Err(SnapshotError::NewerFormat(version));
            }
        }
        conn.pragma_update(None, "cache_size", -65_536)?; // 64 MiB
        Ok(conn)
    }

    fn read_head(conn: &Connection) -> Result<Option<(SnapshotHead, String)>, SnapshotError> {
        let has_table: bool = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'head'",
                [],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if !has_table {
            return Ok(None);
        }
        Ok(conn
            .query_row(
                "SELECT gen, graph_base, select_props, delta_link, as_of, listed_at, users, \
                 domains, overlay FROM head WHERE one = 1",
                [],
                |r| {
                    Ok((
                        SnapshotHead {
                            gen: r.get(0)?,
                            graph_base: r.get(1)?,
                            select: r.get(2)?,
                            delta_link: r.get(3)?,
                            as_of: parse_time(&r.get::<_, String>(4)?),
                            listed_at: parse_time(&r.get::<_, String>(5)?),
                            users: r.get::<_, i64>(6)? as u64,
                            overlay: r.get::<_, i64>(8)? as u64,
                        },
                        r.get::<_, String>(7)?,
                    ))
                },
            )
            .optional()?)
    }

    /// The snapshot's head only (no users): for "as of 14:02" before loading.
    pub fn head(&self) -> Result<Option<SnapshotHead>, SnapshotError> {
        let conn = self.connect()?;
        Ok(Self::read_head(&conn)?.map(|(h, _)| h))
    }

    /// The snapshot as last committed, or `None` when there is none yet. One read
    /// transaction: a writer at work is not seen half-way.
    pub fn load(&self) -> Result<Option<Snapshot>, SnapshotError> {
        self.load_streaming(&mut |_| {})
    }

    /// [`SnapshotStore::load`], handing each page of users to `on_page` as soon as it is
    /// decoded, in the snapshot's order (the same `Arc`s as the snapshot's `pages`): the
    /// console shows the first rows of a million-user copy while the rest decode. The pages
    /// are read, decoded (on up to 8 threads) and handed on in a pipeline, a few blobs ahead,
    /// so neither the whole file's blobs nor a wait for the last page come first.
    pub fn load_streaming(
        &self,
        on_page: &mut (dyn FnMut(&Arc<Vec<User>>) + Send),
    ) -> Result<Option<Snapshot>, SnapshotError> {
        let mut conn = self.connect()?;
        // Every page is read once: a big page cache is of no use here, and the memory it
        // took would stay in the process (freed, between the users) after the load.
        conn.pragma_update(None, "cache_size", -2048)?; // 2 MiB
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let Some((head, domains)) = Self::read_head(&tx)? else {
            return Ok(None);
        };
        let domains: Vec<Domain> =
            serde_json::from_str(&domains).map_err(|e| codec::Corrupt(format!("domains: {e}")))?;
        // The rounds' changes, applied over the pages.
        let mut overlay: HashMap<String, (i64, Option<User>)> = HashMap::new();
        {
            let mut st = tx.prepare("SELECT id, seq, data FROM changes WHERE gen = ?1")?;
            let mut rows = st.query([head.gen])?;
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let seq: i64 = r.get(1)?;
                let user = match r.get_ref(2)?.as_blob_or_null()? {
                    Some(b) => Some(codec::decode_user(b)?),
                    None => None,
                };
                overlay.insert(id, (seq, user));
            }
        }
        let (mut pages, placed) = {
            let mut st = tx.prepare("SELECT users, data FROM pages WHERE gen = ?1 ORDER BY seq")?;
            let mut rows = st.query([head.gen])?;
            decode_pages(
                &mut || -> Result<Option<(usize, Vec<u8>)>, SnapshotError> {
                    let Some(r) = rows.next()? else {
                        return Ok(None);
                    };
                    let n: i64 = r.get(0)?;
                    Ok(Some((n.max(0) as usize, r.get_ref(1)?.as_blob()?.to_vec())))
                },
                &overlay,
                on_page,
            )?
        };
        // Users created since the listing, in the order the rounds first saw them.
        let mut created: Vec<(i64, User)> = overlay
            .into_iter()
            .filter(|(id, _)| !placed.contains(id))
            .filter_map(|(_, (seq, u))| u.map(|u| (seq, u)))
            .collect();
        created.sort_by_key(|(seq, _)| *seq);
        let created: Vec<User> = created.into_iter().map(|(_, u)| u).collect();
        for chunk in created.chunks(PAGE_USERS) {
            let page = Arc::new(chunk.to_vec());
            on_page(&page);
            pages.push(page);
        }
        let mut deleted = Vec::new();
        {
            let mut st = tx.prepare("SELECT data FROM deleted WHERE gen = ?1 ORDER BY id")?;
            let mut rows = st.query([head.gen])?;
            while let Some(r) = rows.next()? {
                deleted.push(codec::decode_deleted(r.get_ref(0)?.as_blob()?)?);
            }
        }
        tx.commit()?;
        Ok(Some(Snapshot {
            head,
            pages,
            deleted,
            domains,
        }))
    }

    /// Starts writing a full listing as a new generation; the current snapshot stays what
    /// loads until [`FullWriter::commit`]. Dropping the writer (or a crash) leaves it so.
    pub fn begin_full(&self) -> Result<FullWriter, SnapshotError> {
        let mut conn = self.connect()?;
        let gen = {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let gen = next_gen(&tx)?;
            tx.execute(
                "INSERT INTO building (gen, started) VALUES (?1, ?2)",
                params![gen, rfc3339(OffsetDateTime::now_utc())],
            )?;
            tx.commit()?;
            gen
        };
        Ok(FullWriter {
            conn: Some(conn),
            gen,
            seq: 0,
            users: 0,
            in_tx: 0,
        })
    }

    /// Applies a delta round to `current` (the snapshot as loaded or as the last round left
    /// it): the new snapshot (pages without a change are shared, not copied) and what
    /// changed, written in one transaction with the round's link and time. `fresh` replaces
    /// the soft-deleted users and domains when given.
    ///
    /// [`SnapshotError::Changed`] when the file no longer holds `current` (another m365sync
    /// applied a round or a listing): load again and run the round from there.
    pub fn apply_round(
        &self,
        current: &Snapshot,
        round: &DeltaRound,
        fresh: Fresh,
    ) -> Result<(Snapshot, RoundSummary), SnapshotError> {
        self.apply_round_with(current, round, fresh, PageCopies::default())
    }

    /// [`SnapshotStore::apply_round`], with copies of pages of `current` made beforehand
    /// (while the round's pages were in flight): a page the round changes is patched in its
    /// copy rather than copied now.
    pub fn apply_round_with(
        &self,
        current: &Snapshot,
        round: &DeltaRound,
        fresh: Fresh,
        copies: PageCopies,
    ) -> Result<(Snapshot, RoundSummary), SnapshotError> {
        let applied = apply_changes(current, round, fresh, copies);
        let mut next = applied.snapshot;
        let mut summary = applied.summary;
        let mut conn = self.connect()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored: Option<(i64, Option<String>, i64)> = tx
            .query_row(
                "SELECT gen, delta_link, change_seq FROM head WHERE one = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((gen, link, mut seq)) = stored else {
            return Err(SnapshotError::Changed);
        };
        if gen != current.head.gen || link != current.head.delta_link {
            return Err(SnapshotError::Changed);
        }
        let overlay_after = current.head.overlay + applied.finals.len() as u64;
        let compact = overlay_after > (next.head.users / 10).max(10_000);
        if compact {
            let new_gen = next_gen(&tx)?;
            write_generation(&tx, new_gen, &next)?;
            next.head.gen = new_gen;
            next.head.overlay = 0;
            summary.compacted = true;
            tx.execute(
                "UPDATE head SET gen = ?1, change_seq = 0, overlay = 0 WHERE one = 1",
                [new_gen],
            )?;
            drop_other_generations(&tx, new_gen)?;
        } else {
            let mut up = tx.prepare_cached(
                "INSERT INTO changes (gen, id, seq, data) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (gen, id) DO UPDATE SET data = excluded.data",
            )?;
            let mut buf = Vec::new();
            for (id, fin) in &applied.finals {
                seq += 1;
                let data = match fin {
                    Final::Live(u) => {
                        buf.clear();
                        codec::encode_user(&mut buf, u);
                        Some(buf.as_slice())
                    }
                    Final::SoftDeleted(_) | Final::Purged => None,
                };
                up.execute(params![gen, id, seq, data])?;
            }
            drop(up);
            let rows: i64 =
                tx.query_row("SELECT COUNT(*) FROM changes WHERE gen = ?1", [gen], |r| {
                    r.get(0)
                })?;
            next.head.overlay = rows as u64;
            // The soft-deleted users: the fresh list, or the round's moves.
            if applied.deleted_replaced {
                tx.execute("DELETE FROM deleted WHERE gen = ?1", [gen])?;
                insert_deleted(&tx, gen, &next.deleted)?;
            } else {
                let mut del =
                    tx.prepare_cached("DELETE FROM deleted WHERE gen = ?1 AND id = ?2")?;
                let mut ins = tx.prepare_cached(
                    "INSERT OR REPLACE INTO deleted (gen, id, data) VALUES (?1, ?2, ?3)",
                )?;
                for (id, fin) in &applied.finals {
                    match fin {
                        Final::SoftDeleted(Some(d)) => {
                            ins.execute(params![gen, id, codec::encode_deleted(d)])?;
                        }
                        Final::SoftDeleted(None) => {}
                        Final::Live(_) | Final::Purged => {
                            del.execute(params![gen, id])?;
                        }
                    }
                }
            }
            tx.execute(
                "UPDATE head SET change_seq = ?1, overlay = ?2 WHERE one = 1",
                params![seq, rows],
            )?;
        }
        tx.execute(
            "UPDATE head SET delta_link = ?1, as_of = ?2, users = ?3, domains = ?4 WHERE one = 1",
            params![
                next.head.delta_link,
                rfc3339(next.head.as_of),
                next.head.users as i64,
                serde_json::to_string(&next.domains).unwrap_or_else(|_| "[]".into()),
            ],
        )?;
        tx.commit()?;
        Ok((next, summary))
    }
}

/// Pages of users, and the overlay's ids found in them.
type DecodedPages = (Vec<Arc<Vec<User>>>, HashSet<String>);

/// The users of the page blobs `next_blob` reads (in order), the overlay's changes applied,
/// each page handed to `on_page` in order as soon as it and every page before it are decoded;
/// and the ids of the overlay found in them. A reader (this thread), decoders and the page
/// handler run at once; at most a few blobs wait in between.
fn decode_pages(
    next_blob: &mut dyn FnMut() -> Result<Option<(usize, Vec<u8>)>, SnapshotError>,
    overlay: &HashMap<String, (i64, Option<User>)>,
    on_page: &mut (dyn FnMut(&Arc<Vec<User>>) + Send),
) -> Result<DecodedPages, SnapshotError> {
    use std::collections::BTreeMap;
    use std::sync::mpsc;
    type Decoded = Result<(Vec<User>, Vec<String>), codec::Corrupt>;
    let decode = |n: usize, blob: &[u8]| -> Decoded {
        let mut users = Vec::with_capacity(n);
        let mut placed = Vec::new();
        if overlay.is_empty() {
            codec::decode_page_with(blob, &mut users, Some)?;
        } else {
            codec::decode_page_with(blob, &mut users, |u| match overlay.get(&u.id) {
                None => Some(u),
                Some((_, change)) => {
                    placed.push(u.id);
                    change.clone()
                }
            })?;
        }
        Ok((users, placed))
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let (blob_tx, blob_rx) = mpsc::sync_channel::<(usize, usize, Vec<u8>)>(threads * 2);
    // Held by the decoders only: when they are all gone (one failed), the reader's next send
    // fails rather than waits.
    let blob_rx = Arc::new(std::sync::Mutex::new(blob_rx));
    let (page_tx, page_rx) = mpsc::channel::<(usize, Decoded)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (blob_rx, page_tx) = (blob_rx.clone(), page_tx.clone());
            s.spawn(move || loop {
                // The lock is held only to take the next blob.
                let job = match blob_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok((i, n, blob)) = job else {
                    return; // the reader is done
                };
                let decoded = decode(n, &blob);
                drop(blob);
                if page_tx.send((i, decoded)).is_err() {
                    return;
                }
            });
        }
        drop((page_tx, blob_rx));
        // The pages in order: one that arrives early waits for those before it.
        let handler = s.spawn(move || {
            let mut waiting: BTreeMap<usize, Decoded> = BTreeMap::new();
            let (mut pages, mut placed) = (Vec::new(), HashSet::new());
            let mut next = 0usize;
            for (i, decoded) in page_rx {
                waiting.insert(i, decoded);
                while let Some(decoded) = waiting.remove(&next) {
                    next += 1;
                    let (users, ids) = decoded?;
                    placed.extend(ids);
                    if !users.is_empty() {
                        let page = Arc::new(users);
                        on_page(&page);
                        pages.push(page);
                    }
                }
            }
            Ok::<_, codec::Corrupt>((pages, placed))
        });
        // This thread reads; the channel's bound keeps it a few blobs ahead.
        let read = (move || {
            let mut i = 0usize;
            while let Some((n, blob)) = next_blob()? {
                if blob_tx.send((i, n, blob)).is_err() {
                    break; // a decoder failed: the handler says why
                }
                i += 1;
            }
            Ok::<_, SnapshotError>(())
        })();
        // `blob_tx` is gone with the closure: the decoders end, then the handler.
        let handled = handler
            .join()
            .unwrap_or_else(|_| Err(codec::Corrupt("a page decoder panicked".into())));
        read?;
        Ok(handled?)
    })
}

/// A generation number no table uses yet.
fn next_gen(conn: &Connection) -> Result<i64, SnapshotError> {
    Ok(conn.query_row(
        "SELECT 1 + MAX(COALESCE((SELECT MAX(gen) FROM head), 0), \
                        COALESCE((SELECT MAX(gen) FROM pages), 0), \
                        COALESCE((SELECT MAX(gen) FROM building), 0))",
        [],
        |r| r.get(0),
    )?)
}

fn insert_deleted(
    tx: &rusqlite::Transaction<'_>,
    gen: i64,
    deleted: &[DeletedUser],
) -> Result<(), SnapshotError> {
    let mut ins =
        tx.prepare_cached("INSERT OR REPLACE INTO deleted (gen, id, data) VALUES (?1, ?2, ?3)")?;
    for d in deleted {
        ins.execute(params![gen, d.user.id, codec::encode_deleted(d)])?;
    }
    Ok(())
}

/// The whole of `snap` as generation `gen` (pages, deleted users); the head is the caller's.
fn write_generation(
    tx: &rusqlite::Transaction<'_>,
    gen: i64,
    snap: &Snapshot,
) -> Result<(), SnapshotError> {
    let mut ins =
        tx.prepare_cached("INSERT INTO pages (gen, seq, users, data) VALUES (?1, ?2, ?3, ?4)")?;
    // Pages as they are, small ones merged, so rounds' tail pages do not pile up.
    let mut seq = 0i64;
    let mut pending: Vec<User> = Vec::new();
    for page in &snap.pages {
        if page.len() >= PAGE_USERS / 2 {
            seq += 1;
            ins.execute(params![
                gen,
                seq,
                page.len() as i64,
                codec::encode_page(page)
            ])?;
        } else {
            pending.extend(page.iter().cloned());
            if pending.len() >= PAGE_USERS {
                seq += 1;
                ins.execute(params![
                    gen,
                    seq,
                    pending.len() as i64,
                    codec::encode_page(&pending)
                ])?;
                pending.clear();
            }
        }
    }
    if !pending.is_empty() {
        seq += 1;
        ins.execute(params![
            gen,
            seq,
            pending.len() as i64,
            codec::encode_page(&pending)
        ])?;
    }
    insert_deleted(tx, gen, &snap.deleted)?;
    Ok(())
}

/// Drops every generation but `gen` (and older listings still being written: they lost).
fn drop_other_generations(tx: &rusqlite::Transaction<'_>, gen: i64) -> Result<(), SnapshotError> {
    tx.execute("DELETE FROM pages WHERE gen < ?1", [gen])?;
    tx.execute("DELETE FROM changes WHERE gen != ?1", [gen])?;
    tx.execute("DELETE FROM deleted WHERE gen < ?1", [gen])?;
    tx.execute("DELETE FROM building WHERE gen <= ?1", [gen])?;
    Ok(())
}

/// A full listing being written as a new generation. Pages go to disk as they come (a
/// transaction every [`PAGES_PER_TX`] pages: call [`FullWriter::flush`] before waiting on
/// the network, so other writers are not held up); [`FullWriter::commit`] makes it the
/// snapshot. Dropped without a commit, it removes what it wrote and the previous snapshot
/// stays.
pub struct FullWriter {
    conn: Option<Connection>,
    gen: i64,
    seq: i64,
    users: u64,
    /// Pages in the open transaction.
    in_tx: usize,
}

impl FullWriter {
    /// Writes one page of users (an empty one is skipped).
    pub fn write_page(&mut self, users: &[User]) -> Result<(), SnapshotError> {
        if users.is_empty() {
            return Ok(());
        }
        let conn = self.conn.as_ref().expect("open until commit");
        if self.in_tx == 0 {
            conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        self.seq += 1;
        conn.prepare_cached("INSERT INTO pages (gen, seq, users, data) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![
                self.gen,
                self.seq,
                users.len() as i64,
                codec::encode_page(users)
            ])?;
        self.users += users.len() as u64;
        self.in_tx += 1;
        if self.in_tx >= PAGES_PER_TX {
            self.flush()?;
        }
        Ok(())
    }

    /// Commits the pages written so far (still not the snapshot: that is [`Self::commit`]).
    pub fn flush(&mut self) -> Result<(), SnapshotError> {
        if self.in_tx > 0 {
            self.conn
                .as_ref()
                .expect("open until commit")
                .execute_batch("COMMIT")?;
            self.in_tx = 0;
        }
        Ok(())
    }

    /// Users written so far.
    pub fn users(&self) -> u64 {
        self.users
    }

    /// Makes this listing the snapshot, in one transaction, and drops the older generations.
    /// [`SnapshotError::Superseded`] if a listing that started later was committed first.
    pub fn commit(mut self, end: FullListingEnd) -> Result<SnapshotHead, SnapshotError> {
        self.flush()?;
        let mut conn = self.conn.take().expect("open until commit");
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<i64> = tx
                .query_row("SELECT gen FROM head WHERE one = 1", [], |r| r.get(0))
                .optional()?;
            if current.is_some_and(|g| g > self.gen) {
                return Err(SnapshotError::Superseded);
            }
            let head = SnapshotHead {
                graph_base: end.graph_base.trim_end_matches('/').to_string(),
                select: current_select(),
                delta_link: end.delta_link,
                as_of: end.as_of,
                listed_at: end.as_of,
                users: self.users,
                gen: self.gen,
                overlay: 0,
            };
            insert_deleted(&tx, self.gen, &end.deleted)?;
            tx.execute(
                "INSERT OR REPLACE INTO head (one, gen, graph_base, select_props, delta_link, \
                 as_of, listed_at, users, domains, change_seq, overlay) \
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0)",
                params![
                    head.gen,
                    head.graph_base,
                    head.select,
                    head.delta_link,
                    rfc3339(head.as_of),
                    rfc3339(head.listed_at),
                    head.users as i64,
                    serde_json::to_string(&end.domains).unwrap_or_else(|_| "[]".into()),
                ],
            )?;
            drop_other_generations(&tx, self.gen)?;
            tx.commit()?;
            Ok(head)
        })();
        if result.is_err() {
            self.conn = Some(conn); // Drop removes what this listing wrote.
        }
        result
    }
}

impl Drop for FullWriter {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // Not committed: roll back the open batch, remove the pages already committed.
        if self.in_tx > 0 {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let gen = self.gen;
        let r = conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; DELETE FROM pages WHERE gen = {gen}; \
             DELETE FROM deleted WHERE gen = {gen} AND gen != COALESCE((SELECT gen FROM head), -1); \
             DELETE FROM building WHERE gen = {gen}; COMMIT"
        ));
        if let Err(e) = r {
            tracing::warn!(error = %e, gen, "could not remove an unfinished snapshot listing");
        }
    }
}

/// What a round leaves of one user.
#[derive(Debug, Clone)]
enum Final {
    Live(User),
    /// Soft-deleted: the deleted user as the snapshot will hold it (`None`: unknown here).
    SoftDeleted(Option<DeletedUser>),
    Purged,
}

struct Applied {
    snapshot: Snapshot,
    summary: RoundSummary,
    /// Every user the round touched, in the order first seen.
    finals: Vec<(String, Final)>,
    deleted_replaced: bool,
}

/// A quick hash for user ids (FxHash's step, 8 bytes at a time): a round looks up every user
/// of the snapshot by id, and SipHash made that most of its apply. The ids are Graph's, not an
/// attacker's choosing; a bad spread would cost time, never correctness.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type IdBuild = std::hash::BuildHasherDefault<IdHasher>;
type IdSet<'a> = HashSet<&'a str, IdBuild>;
type IdMap<'a, V> = HashMap<&'a str, V, IdBuild>;

/// Copies of pages of a snapshot, made before a round is applied (see
/// [`PageCopies::copy_pages_of`]): by page position, with the page they copy.
#[derive(Debug, Default)]
pub struct PageCopies(HashMap<usize, (Arc<Vec<User>>, Vec<User>)>);

impl PageCopies {
    /// Copies of the pages of `snap` that hold one of `ids` and have no copy yet: the work a
    /// round's apply would do, done while its later pages are in flight.
    pub fn copy_pages_of<'a>(&mut self, snap: &Snapshot, ids: impl IntoIterator<Item = &'a str>) {
        let ids: IdSet<'_> = ids.into_iter().collect();
        if ids.is_empty() {
            return;
        }
        for (i, page) in snap.pages.iter().enumerate() {
            if self.0.contains_key(&i) || !page.iter().any(|u| ids.contains(u.id.as_str())) {
                continue;
            }
            self.0.insert(i, (page.clone(), page.as_ref().clone()));
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The copy of page `i` when it is a copy of `page`.
    fn take(&mut self, i: usize, page: &Arc<Vec<User>>) -> Option<Vec<User>> {
        self.0
            .remove(&i)
            .filter(|(of, _)| Arc::ptr_eq(of, page))
            .map(|(_, copy)| copy)
    }
}

/// The snapshot after a round (pure): a user's changes are applied in the order Graph sent
/// them, an omitted property keeps its value; pages the round does not touch are shared.
/// A touched page is rebuilt from its copy in `copies` when there is one (its users moved,
/// not copied).
fn apply_changes(
    current: &Snapshot,
    round: &DeltaRound,
    fresh: Fresh,
    mut copies: PageCopies,
) -> Applied {
    let ids: IdSet<'_> = round.changes.iter().map(DeltaChange::id).collect();
    // The snapshot's copy of every user the round names.
    let mut live: IdMap<'_, &User> = IdMap::default();
    let mut touched_pages = Vec::new();
    for (i, page) in current.pages.iter().enumerate() {
        let mut touched = false;
        for u in page.iter() {
            if ids.contains(u.id.as_str()) {
                live.insert(u.id.as_str(), u);
                touched = true;
            }
        }
        if touched {
            touched_pages.push(i);
        }
    }
    let was_deleted: HashMap<&str, &DeletedUser> = current
        .deleted
        .iter()
        .filter(|d| ids.contains(d.user.id.as_str()))
        .map(|d| (d.user.id.as_str(), d))
        .collect();
    let mut order: Vec<&str> = Vec::new();
    let mut finals: IdMap<'_, Final> = IdMap::default();
    for change in &round.changes {
        let id = change.id();
        if !finals.contains_key(id) {
            order.push(id);
        }
        // The user as it stands before this change.
        let before: Option<User> = match finals.get(id) {
            Some(Final::Live(u)) => Some(u.clone()),
            Some(Final::SoftDeleted(d)) => d.as_ref().map(|d| d.user.clone()),
            Some(Final::Purged) => None,
            None => live
                .get(id)
                .map(|u| (*u).clone())
                .or_else(|| was_deleted.get(id).map(|d| d.user.clone())),
        };
        let fin = match change {
            DeltaChange::Upsert(d) => Final::Live(d.apply_to(before.as_ref())),
            DeltaChange::SoftDeleted { .. } => {
                let stamp = was_deleted
                    .get(id)
                    .and_then(|d| d.deleted_date_time.clone());
                Final::SoftDeleted(before.map(|user| DeletedUser {
                    user,
                    deleted_date_time: stamp,
                }))
            }
            DeltaChange::Purged { .. } => Final::Purged,
        };
        finals.insert(id, fin);
    }
    let mut summary = RoundSummary::default();
    for id in &order {
        let was_live = live.get(id).copied();
        let was_del = was_deleted.contains_key(id);
        match (&finals[id], was_live) {
            (Final::Live(u), Some(old)) if u == old => summary.unchanged += 1,
            (Final::Live(_), Some(_)) => summary.updated += 1,
            (Final::Live(_), None) if was_del => summary.restored += 1,
            (Final::Live(_), None) => summary.created += 1,
            (Final::SoftDeleted(_), Some(_)) => summary.soft_deleted += 1,
            (Final::SoftDeleted(_), None) => {}
            (Final::Purged, _) if was_live.is_some() || was_del => summary.purged += 1,
            (Final::Purged, _) => {}
        }
    }
    // New pages: touched ones rebuilt, the others shared.
    let mut pages = current.pages.clone();
    let mut placed: IdSet<'_> = IdSet::default();
    for &i in &touched_pages {
        let mut out = Vec::with_capacity(pages[i].len());
        let mut keep = |u: &User, out: &mut Vec<User>| -> bool {
            match finals.get_key_value(u.id.as_str()) {
                None => true,
                Some((id, Final::Live(n))) => {
                    if placed.insert(*id) {
                        out.push(n.clone());
                    }
                    false
                }
                Some(_) => false,
            }
        };
        match copies.take(i, &current.pages[i]) {
            Some(copy) => {
                for u in copy {
                    if keep(&u, &mut out) {
                        out.push(u);
                    }
                }
            }
            None => {
                for u in current.pages[i].iter() {
                    if keep(u, &mut out) {
                        out.push(u.clone());
                    }
                }
            }
        }
        pages[i] = Arc::new(out);
    }
    pages.retain(|p| !p.is_empty());
    let created: Vec<User> = order
        .iter()
        .filter(|id| !live.contains_key(*id))
        .filter_map(|id| match &finals[id] {
            Final::Live(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    for chunk in created.chunks(PAGE_USERS) {
        pages.push(Arc::new(chunk.to_vec()));
    }
    // The soft-deleted users.
    let deleted_replaced = fresh.deleted.is_some();
    let deleted = match fresh.deleted {
        Some(d) => d,
        None => {
            let mut d: Vec<DeletedUser> = current
                .deleted
                .iter()
                .filter(|d| !finals.contains_key(d.user.id.as_str()))
                .cloned()
                .collect();
            for id in &order {
                match &finals[id] {
                    Final::SoftDeleted(Some(x)) => d.push(x.clone()),
                    // Named by the round but unknown here: the next listing of the deleted
                    // users brings it.
                    Final::SoftDeleted(None) => {
                        if let Some(old) = was_deleted.get(id) {
                            d.push((*old).clone());
                        }
                    }
                    _ => {}
                }
            }
            d
        }
    };
    let users = pages.iter().map(|p| p.len() as u64).sum();
    let snapshot = Snapshot {
        head: SnapshotHead {
            delta_link: Some(round.delta_link.clone()),
            as_of: round.started_at,
            users,
            ..current.head.clone()
        },
        pages,
        deleted,
        domains: fresh.domains.unwrap_or_else(|| current.domains.clone()),
    };
    let finals = order
        .into_iter()
        .map(|id| {
            let f = finals.remove(id).expect("every id in order has a final");
            (id.to_string(), f)
        })
        .collect();
    Applied {
        snapshot,
        summary,
        finals,
        deleted_replaced,
    }
}
