//! The redb store: tables, typed reads, and the write-side view used by the
//! single writer.
//!
//! Records are MessagePack (times as integer milliseconds). Secondary indexes
//! (open prospects by stage, prospects by owner, external ids, each
//! prospect's transitions) are composite keys with unit values, maintained
//! in the same transaction as the record they index. A prospect's
//! activities, and their index by kind, are rows of a few KiB ([`chunks`]).

pub(crate) mod chunks;
pub(crate) mod counters;
pub(crate) mod lazy;
pub(crate) mod media;
pub(crate) mod stay_days;
pub(crate) mod wal;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use stagecoach_types::error::StorageKind;
use stagecoach_types::model::ActivityFacts;
use stagecoach_types::model::{
    Activity, Actor, Millis, ProcessVersion, Prospect, ProspectId, Status, Transition,
};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const PROSPECTS: TableDefinition<u64, &[u8]> = TableDefinition::new("prospects");
const EXTERNAL_IDS: TableDefinition<&str, u64> = TableDefinition::new("prospects_by_external_id");
const OPEN_BY_STAGE: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("open_prospects_by_stage");
const BY_OWNER: TableDefinition<(&str, u64), ()> = TableDefinition::new("prospects_by_owner");
/// Schema 4 and before: (prospect, activity id) → the activity. Now
/// [`chunks::ACTIVITY_CHUNKS`].
const ACTIVITIES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("activities");
/// Schema 4 and before: (prospect, kind, activity id) → (at, actor is
/// prospect). Now [`chunks::KIND_CHUNKS`].
const ACTIVITY_KINDS: TableDefinition<(u64, &str, u64), (i64, bool)> =
    TableDefinition::new("activities_by_prospect_kind");
const TRANSITIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("transitions");
const TRANSITIONS_BY_PROSPECT: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("transitions_by_prospect");
const PROCESS_VERSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("process_versions");
/// process version → the earliest `at` of a transition stamped with it: a
/// version governs history from there (backfills, imports, the demo) even
/// when it was loaded later.
const VERSION_FIRST_AT: TableDefinition<u64, i64> =
    TableDefinition::new("version_first_transition");

/// The on-disk layout version; bumped when a migration is needed.
/// 1: before the activity-kind index and the metric counters; 2: with them;
/// 3: with each process version's first transition; 4: with completed
/// stays summarised per day; 5: activities and their kind index a few KiB
/// per row ([`chunks`]), and their count kept.
const SCHEMA_VERSION: u64 = 5;

/// Errors from the store. Storage failures are not the client's fault: the
/// protocol reports them as internal errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed; its own error is kept, so callers can tell a full
    /// disk from a damaged file from a closed database ([`StoreError::kind`]).
    #[error("database error: {0}")]
    Db(redb::Error),
    /// A stored record did not decode: the file is damaged or from a newer version.
    #[error("stored {what} `{key}` does not decode: {message}")]
    Corrupt {
        /// The kind of record.
        what: &'static str,
        /// Its key.
        key: String,
        /// The decoder's message.
        message: String,
    },
    /// The write-ahead log could not be read or written.
    #[error("write-ahead log `{path}`: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The disk is too full to write safely: refused before anything was
    /// written, so the database stays whole and readable.
    #[error(
        "the disk holding the database has {available_mib} MiB free, less than the {reserve_mib} MiB kept in reserve; nothing was written"
    )]
    LowSpace {
        /// MiB free for the daemon.
        available_mib: u64,
        /// MiB it keeps free (`--min-free-mib`).
        reserve_mib: u64,
    },
    /// The database is being reopened after a storage failure.
    #[error("the database is reopening after a storage failure")]
    Reopening,
    /// The database was written by a newer Stagecoach.
    #[error(
        "database schema version {found} is newer than this build understands ({SCHEMA_VERSION})"
    )]
    TooNew {
        /// The version found on disk.
        found: u64,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}

impl StoreError {
    /// What kind of failure this is.
    pub fn kind(&self) -> StorageKind {
        match self {
            StoreError::Db(redb::Error::Io(e)) if is_disk_full(e) => StorageKind::DiskFull,
            StoreError::Log { source, .. } if is_disk_full(source) => StorageKind::DiskFull,
            StoreError::LowSpace { .. } => StorageKind::DiskFull,
            StoreError::Log { .. } | StoreError::Reopening => StorageKind::Io,
            StoreError::Db(redb::Error::Io(_) | redb::Error::PreviousIo) => StorageKind::Io,
            StoreError::Db(redb::Error::Corrupted(_)) | StoreError::Corrupt { .. } => {
                StorageKind::Corrupt
            }
            StoreError::Db(redb::Error::DatabaseClosed) => StorageKind::Closed,
            _ => StorageKind::Other,
        }
    }
}

impl StoreError {
    /// Whether redb itself failed on I/O: it then refuses everything until
    /// the database is opened again.
    pub fn poisons(&self) -> bool {
        matches!(
            self,
            StoreError::Db(redb::Error::Io(_) | redb::Error::PreviousIo)
        )
    }
}

/// ENOSPC, or EDQUOT (a quota is a full disk to the user).
fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("records always encode")
}

/// [`encode`] into `buf`, replacing what it held.
fn encode_into<T: Serialize>(buf: &mut Vec<u8>, value: &T) {
    buf.clear();
    rmp_serde::encode::write_named(buf, value).expect("records always encode");
}

fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    key: impl ToString,
) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what,
        key: key.to_string(),
        message: e.to_string(),
    })
}

/// Which prospects `prospect.list` returns.
#[derive(Debug, Default, Clone)]
pub struct ProspectFilter {
    /// Only open prospects in this stage.
    pub stage: Option<String>,
    /// Only prospects owned by this rep.
    pub owner: Option<String>,
    /// Only prospects with this status.
    pub status: Option<Status>,
    /// Only ids greater than this (pagination cursor).
    pub after: Option<ProspectId>,
    /// At most this many.
    pub limit: usize,
}

/// The database. Cheap to clone; reads open their own read transaction.
///
/// The redb handle can be replaced: after an I/O error redb refuses every
/// operation until the file is opened again, which the writer does
/// ([`Store::reopen`]) as soon as it sees one.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: RwLock<Option<Arc<Database>>>,
    /// Held by the writer while it reopens the file and applies the log:
    /// a read begun meanwhile would see the last checkpoint without the
    /// writes acknowledged since.
    gate: RwLock<()>,
    path: PathBuf,
    cache_mib: usize,
    /// Files, or a simulated disk in the durability tests.
    media: Media,
    /// Free space below which writes are refused before they start.
    reserve: std::sync::atomic::AtomicU64,
}

/// A read transaction on the store, for the metrics queries.
pub type ReadTxn = ReadTransaction;

/// Free disk space, in MiB, below which writes are refused unless told
/// otherwise.
pub const DEFAULT_MIN_FREE_MIB: u64 = 64;

/// Where the database and its log are kept.
#[derive(Debug, Clone)]
enum Media {
    /// The file at the store's path and the log beside it.
    Files,
    /// A simulated disk that loses unsynced writes at a power cut.
    #[cfg(test)]
    Sim(Arc<media::sim::SimMedia>),
}

fn open_db(path: &Path, cache_mib: usize, media: &Media) -> Result<Database, StoreError> {
    let logged = std::sync::atomic::AtomicU64::new(0);
    let mut builder = Database::builder();
    builder
        .set_cache_size(cache_mib << 20)
        .set_repair_callback(move |session| {
            // Once at the start, then every tenth.
            let tenth = (session.progress() * 10.0) as u64 + 1;
            if logged.fetch_max(tenth, std::sync::atomic::Ordering::Relaxed) < tenth {
                tracing::warn!(
                    progress = format!("{:.0}%", session.progress() * 100.0),
                    "checking the database after an unclean shutdown"
                );
            }
        });
    match media {
        Media::Files => Ok(builder.create(path)?),
        #[cfg(test)]
        Media::Sim(m) => Ok(builder.create_with_backend(media::sim::Backend(m.db.clone()))?),
    }
}

/// How much memory the database may use to cache pages unless told
/// otherwise, in MiB. At scale this cache is most of the daemon's memory:
/// redb's own default (1 GiB) filled up after a repair or a long read.
pub const DEFAULT_CACHE_MIB: usize = 128;

impl Store {
    /// Opens (or creates) the database at `path` with the default cache
    /// and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, DEFAULT_CACHE_MIB)
    }

    /// Opens (or creates) the database at `path`, caching at most
    /// `cache_mib` MiB of pages, and makes sure every table exists.
    ///
    /// Every durable commit saves redb's allocator state (quick repair), so
    /// that after a crash the file needs no full check; the writes between
    /// those commits are made durable by the write-ahead log ([`wal`]).
    pub fn open_with(path: &Path, cache_mib: usize) -> Result<Store, StoreError> {
        Store::open_on(path, cache_mib, Media::Files)
    }

    /// A store on a simulated disk (`media`), for the power-cut tests;
    /// `dir` only names it.
    #[cfg(test)]
    pub(crate) fn open_sim(
        dir: &Path,
        media: Arc<media::sim::SimMedia>,
    ) -> Result<Store, StoreError> {
        let store = Store::open_on(&dir.join("sim.redb"), 16, Media::Sim(media))?;
        store.set_min_free_mib(0);
        Ok(store)
    }

    fn open_on(path: &Path, cache_mib: usize, media: Media) -> Result<Store, StoreError> {
        let db = open_db(path, cache_mib, &media)?;
        let mut txn = db.begin_write()?;
        txn.set_quick_repair(true);
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            if let Some(v) = found
                && v > SCHEMA_VERSION
            {
                return Err(StoreError::TooNew { found: v });
            }
            meta.insert("schema_version", SCHEMA_VERSION)?;
            drop(meta);
            if found == Some(1) {
                let rebuilt = upgrade_from_1(&txn)?;
                tracing::info!(
                    prospects = rebuilt,
                    "database upgraded to schema 2: activity index and metric counters rebuilt"
                );
            }
            if matches!(found, Some(1 | 2)) {
                let versions = upgrade_from_2(&txn)?;
                tracing::info!(
                    versions,
                    "database upgraded to schema 3: first transition of each process version found"
                );
            }
            if matches!(found, Some(1..=3)) {
                let days = upgrade_from_3(&txn)?;
                tracing::info!(
                    days,
                    "database upgraded to schema 4: completed stays summarised per day"
                );
            }
            if matches!(found, Some(1..=4)) {
                let activities = upgrade_from_4(&txn)?;
                tracing::info!(
                    activities,
                    "database upgraded to schema 5: activities stored a few KiB per row"
                );
            }
            txn.open_table(PROSPECTS)?;
            txn.open_table(EXTERNAL_IDS)?;
            txn.open_table(OPEN_BY_STAGE)?;
            txn.open_table(BY_OWNER)?;
            txn.open_table(chunks::ACTIVITY_CHUNKS)?;
            txn.open_table(chunks::KIND_CHUNKS)?;
            txn.open_table(TRANSITIONS)?;
            txn.open_table(TRANSITIONS_BY_PROSPECT)?;
            txn.open_table(PROCESS_VERSIONS)?;
            txn.open_table(VERSION_FIRST_AT)?;
            counters::create_tables(&txn)?;
        }
        txn.commit()?;
        Ok(Store {
            inner: Arc::new(Inner {
                db: RwLock::new(Some(Arc::new(db))),
                gate: RwLock::new(()),
                path: path.to_path_buf(),
                cache_mib,
                media,
                reserve: std::sync::atomic::AtomicU64::new(DEFAULT_MIN_FREE_MIB << 20),
            }),
        })
    }

    /// Opens the write-ahead log (allocated to `size` bytes) and returns
    /// the entries after `applied`.
    pub(crate) fn open_log(
        &self,
        size: u64,
        applied: u64,
    ) -> std::io::Result<(wal::Wal, Vec<wal::Entry>)> {
        match &self.inner.media {
            Media::Files => wal::Wal::open(&self.log_path(), size, applied),
            #[cfg(test)]
            Media::Sim(m) => wal::Wal::open_on(Box::new(m.log.clone()), size, applied),
        }
    }

    /// The write-ahead log next to the database file.
    pub fn log_path(&self) -> PathBuf {
        let mut name = self.inner.path.as_os_str().to_owned();
        name.push(".wal");
        PathBuf::from(name)
    }

    /// Refuse writes while less than `mib` MiB are free on the database's disk.
    pub fn set_min_free_mib(&self, mib: u64) {
        self.inner
            .reserve
            .store(mib << 20, std::sync::atomic::Ordering::Relaxed);
    }

    /// Refuses a write before it starts when the disk is nearly full, so
    /// that redb never meets a full disk half-way through a commit.
    pub(crate) fn check_space(&self) -> Result<(), StoreError> {
        let reserve = self
            .inner
            .reserve
            .load(std::sync::atomic::Ordering::Relaxed);
        if reserve == 0 {
            return Ok(());
        }
        let dir = self.inner.path.parent().unwrap_or(Path::new("."));
        let Ok(st) = rustix::fs::statvfs(dir) else {
            return Ok(()); // no answer: let the write itself tell
        };
        let available = st.f_bavail.saturating_mul(st.f_frsize);
        if available < reserve {
            return Err(StoreError::LowSpace {
                available_mib: available >> 20,
                reserve_mib: reserve >> 20,
            });
        }
        Ok(())
    }

    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.inner
            .db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Reopening)
    }

    /// Opens the database file again after redb refused it for an I/O
    /// error. Readers wait meanwhile; transactions still open on the old
    /// handle finish first (the file is locked until they do).
    pub(crate) fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self
            .inner
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = None;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match open_db(&self.inner.path, self.inner.cache_mib, &self.inner.media) {
                Ok(db) => {
                    *slot = Some(Arc::new(db));
                    return Ok(());
                }
                Err(StoreError::Db(redb::Error::DatabaseAlreadyOpen))
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes the database until the next [`Store::reopen`]: reads fail
    /// meanwhile (after a reopen whose log could not be applied, they would
    /// miss acknowledged writes).
    pub(crate) fn close(&self) {
        *self
            .inner
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Begins a write transaction: non-durable and without the allocator
    /// state, unless the writer makes it a checkpoint.
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        let mut txn = self.db()?.begin_write()?;
        txn.set_quick_repair(false);
        Ok(txn)
    }

    /// The last write-ahead log entry the database holds.
    pub(crate) fn log_applied(&self) -> Result<u64, StoreError> {
        let txn = self.writer_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get("wal_seq")?.map_or(0, |v| v.value()))
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        let _gate = self
            .inner
            .gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.writer_read()
    }

    /// A read by the writer itself, which may hold the gate.
    fn writer_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db()?.begin_read()?)
    }

    /// Makes reads wait until the guard is dropped (see `Inner::gate`).
    pub(crate) fn hold_reads(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.inner
            .gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A read transaction, for the metrics queries.
    pub fn read_txn(&self) -> Result<ReadTransaction, StoreError> {
        self.read()
    }

    /// Every transition in id order (exports, brute-force checks).
    pub fn all_transitions(&self) -> Result<Vec<Transition>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(TRANSITIONS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.push(decode(v.value(), "transition", k.value())?);
        }
        Ok(out)
    }

    /// Up to `limit` transitions after id `after`, in id order (exports).
    pub fn transitions_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(TRANSITIONS)?;
        let mut out = Vec::new();
        let Some(start) = after.map_or(Some(0), |a| a.checked_add(1)) else {
            return Ok(out);
        };
        for entry in table.range(start..)?.take(limit) {
            let (k, v) = entry?;
            out.push(decode(v.value(), "transition", k.value())?);
        }
        Ok(out)
    }

    /// Up to `limit` activities after `(prospect, activity id)`, grouped by
    /// prospect (exports).
    pub fn activities_page(
        &self,
        after: Option<(u64, u64)>,
        limit: usize,
    ) -> Result<Vec<Activity>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(chunks::ACTIVITY_CHUNKS)?;
        let start = match after {
            None => (0, 0),
            Some((p, u64::MAX)) => match p.checked_add(1) {
                Some(next) => (next, 0),
                None => return Ok(Vec::new()),
            },
            Some((p, a)) => (p, a + 1),
        };
        chunks::page(&table, start, limit)
    }

    /// One consistent view of the database: every read of a request comes
    /// from one snapshot.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot(self.read()?))
    }

    /// The prospect with `external_id`, if any.
    pub fn prospect_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<ProspectId>, StoreError> {
        self.snapshot()?.prospect_by_external_id(external_id)
    }

    /// One prospect.
    pub fn prospect(&self, id: ProspectId) -> Result<Option<Prospect>, StoreError> {
        self.snapshot()?.prospect(id)
    }

    /// Prospects matching `filter`, in id order.
    pub fn prospects(&self, filter: &ProspectFilter) -> Result<Vec<Prospect>, StoreError> {
        self.snapshot()?.prospects(filter)
    }

    /// A prospect's activities in the order they were recorded.
    pub fn activities(&self, prospect: ProspectId) -> Result<Vec<Activity>, StoreError> {
        self.snapshot()?.activities(prospect)
    }

    /// A prospect's transitions, oldest first.
    pub fn transitions(&self, prospect: ProspectId) -> Result<Vec<Transition>, StoreError> {
        self.snapshot()?.transitions(prospect)
    }

    /// For each prospect, whether its last transition was written by an
    /// import (for a closed prospect: its close), in one read.
    pub fn last_move_imported(
        &self,
        prospects: impl Iterator<Item = ProspectId>,
    ) -> Result<Vec<bool>, StoreError> {
        self.snapshot()?.last_move_imported(prospects)
    }

    /// When each process version was in force, oldest first; the last
    /// window is open-ended (`None`). Windows follow one another without
    /// overlap. See [`version_starts`] for where each one starts.
    pub fn version_windows(
        &self,
    ) -> Result<Vec<(ProcessVersion, Millis, Option<Millis>)>, StoreError> {
        let versions = self.process_versions()?;
        let txn = self.read()?;
        let first = txn.open_table(VERSION_FIRST_AT)?;
        let mut loads = Vec::with_capacity(versions.len());
        for v in &versions {
            loads.push((v.loaded_at, first.get(v.number)?.map(|f| Millis(f.value()))));
        }
        let starts = version_starts(&loads);
        Ok(versions
            .into_iter()
            .enumerate()
            .map(|(i, v)| (v, starts[i], starts.get(i + 1).copied()))
            .collect())
    }

    /// The earliest `at` of a transition stamped with `version`.
    pub fn version_first_transition(&self, version: u64) -> Result<Option<Millis>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(VERSION_FIRST_AT)?;
        Ok(table.get(version)?.map(|v| Millis(v.value())))
    }

    /// Every stored process version, oldest first.
    pub fn process_versions(&self) -> Result<Vec<ProcessVersion>, StoreError> {
        versions_in(&self.read()?)
    }

    /// Totals for `daemon.status`.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let txn = self.read()?;
        Ok(Counts {
            prospects: txn.open_table(PROSPECTS)?.len()?,
            open_prospects: txn.open_table(OPEN_BY_STAGE)?.len()?,
            activities: txn
                .open_table(META)?
                .get("activity_count")?
                .map_or(0, |v| v.value()),
            transitions: txn.open_table(TRANSITIONS)?.len()?,
        })
    }

    /// The next free ids, read once by the writer at start-up.
    pub(crate) fn next_ids(&self) -> Result<Ids, StoreError> {
        let txn = self.writer_read()?;
        let meta = txn.open_table(META)?;
        let get =
            |k: &str| -> Result<u64, StoreError> { Ok(meta.get(k)?.map_or(1, |v| v.value())) };
        Ok(Ids {
            prospect: get("next_prospect")?,
            activity: get("next_activity")?,
            transition: get("next_transition")?,
            process_version: get("next_process_version")?,
        })
    }
}

/// One read transaction: a consistent view for everything one request reads.
pub struct Snapshot(ReadTransaction);

impl Snapshot {
    /// The read transaction, for the metrics queries.
    pub fn txn(&self) -> &ReadTransaction {
        &self.0
    }

    /// The record tables, opened once for many reads.
    pub fn records(&self) -> Result<Records, StoreError> {
        Ok(Records {
            prospects: self.0.open_table(PROSPECTS)?,
            by_prospect: self.0.open_table(TRANSITIONS_BY_PROSPECT)?,
            transitions: self.0.open_table(TRANSITIONS)?,
            activities: self.0.open_table(chunks::ACTIVITY_CHUNKS)?,
        })
    }

    /// Every open prospect's stage, owner and the number in `field`, in id
    /// order (of `owner`'s only, when given), at most `limit`: what the open
    /// pipeline sums, without decoding each record whole.
    pub fn open_heads(
        &self,
        owner: Option<&str>,
        field: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProspectHead>, StoreError> {
        let table = self.0.open_table(PROSPECTS)?;
        let mut out = Vec::new();
        let mut keep = |bytes: &[u8], id: u64| -> Result<bool, StoreError> {
            let h = head_of(bytes, id, field)?;
            if h.status == Status::Open && owner.is_none_or(|o| h.owner.as_deref() == Some(o)) {
                out.push(h);
            }
            Ok(out.len() < limit)
        };
        if let Some(owner) = owner {
            let index = self.0.open_table(BY_OWNER)?;
            for entry in index.range((owner, 0)..=(owner, u64::MAX))? {
                let id = entry?.0.value().1;
                if let Some(v) = table.get(id)?
                    && !keep(v.value(), id)?
                {
                    break;
                }
            }
        } else {
            for entry in table.range(0..)? {
                let (k, v) = entry?;
                if !keep(v.value(), k.value())? {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Prospects matching `filter`, in id order.
    pub fn prospects(&self, filter: &ProspectFilter) -> Result<Vec<Prospect>, StoreError> {
        let txn = &self.0;
        let table = txn.open_table(PROSPECTS)?;
        let Some(after) = filter.after.map_or(Some(0), |a| a.checked_add(1)) else {
            return Ok(Vec::new());
        };
        let keep = |p: &Prospect| {
            filter
                .owner
                .as_ref()
                .is_none_or(|o| p.owner.as_ref() == Some(o))
                && filter.status.is_none_or(|s| p.status == s)
                && filter
                    .stage
                    .as_ref()
                    .is_none_or(|s| &p.stage == s && p.status == Status::Open)
        };
        let mut out = Vec::new();
        let mut push = |id: u64| -> Result<bool, StoreError> {
            if let Some(v) = table.get(id)? {
                let p: Prospect = decode(v.value(), "prospect", id)?;
                if keep(&p) {
                    out.push(p);
                }
            }
            Ok(out.len() < filter.limit)
        };
        if let Some(stage) = &filter.stage {
            let index = txn.open_table(OPEN_BY_STAGE)?;
            for entry in index.range((stage.as_str(), after)..=(stage.as_str(), u64::MAX))? {
                if !push(entry?.0.value().1)? {
                    break;
                }
            }
        } else if let Some(owner) = &filter.owner {
            let index = txn.open_table(BY_OWNER)?;
            for entry in index.range((owner.as_str(), after)..=(owner.as_str(), u64::MAX))? {
                if !push(entry?.0.value().1)? {
                    break;
                }
            }
        } else {
            for entry in table.range(after..)? {
                let (k, v) = entry?;
                let p: Prospect = decode(v.value(), "prospect", k.value())?;
                if keep(&p) {
                    out.push(p);
                    if out.len() >= filter.limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// For each prospect, whether its last transition was written by an
    /// import (for a closed prospect: its close), in one read.
    pub fn last_move_imported(
        &self,
        prospects: impl Iterator<Item = ProspectId>,
    ) -> Result<Vec<bool>, StoreError> {
        let txn = &self.0;
        let index = txn.open_table(TRANSITIONS_BY_PROSPECT)?;
        let table = txn.open_table(TRANSITIONS)?;
        let mut out = Vec::new();
        for prospect in prospects {
            let last = index
                .range((prospect, 0)..=(prospect, u64::MAX))?
                .next_back()
                .transpose()?;
            let imported = match last {
                Some(entry) => {
                    let id = entry.0.value().1;
                    match table.get(id)? {
                        Some(v) => decode::<Transition>(v.value(), "transition", id)?.imported,
                        None => false,
                    }
                }
                None => false,
            };
            out.push(imported);
        }
        Ok(out)
    }

    /// The prospect with `external_id`, if any.
    pub fn prospect_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<ProspectId>, StoreError> {
        let txn = &self.0;
        let table = txn.open_table(EXTERNAL_IDS)?;
        Ok(table.get(external_id)?.map(|v| v.value()))
    }

    /// One prospect.
    pub fn prospect(&self, id: ProspectId) -> Result<Option<Prospect>, StoreError> {
        let txn = &self.0;
        let table = txn.open_table(PROSPECTS)?;
        table
            .get(id)?
            .map(|v| decode(v.value(), "prospect", id))
            .transpose()
    }

    /// A prospect's activities in the order they were recorded.
    pub fn activities(&self, prospect: ProspectId) -> Result<Vec<Activity>, StoreError> {
        chunks::activities_in(&self.0.open_table(chunks::ACTIVITY_CHUNKS)?, prospect)
    }

    /// The facts `kinds` criteria need about a prospect's activities.
    pub fn activity_facts(
        &self,
        prospect: ProspectId,
        kinds: &[&str],
    ) -> Result<ActivityFacts, StoreError> {
        chunks::facts_in(&self.0.open_table(chunks::KIND_CHUNKS)?, prospect, kinds)
    }

    /// A prospect's transitions, oldest first.
    pub fn transitions(&self, prospect: ProspectId) -> Result<Vec<Transition>, StoreError> {
        let txn = &self.0;
        transitions_in(
            &txn.open_table(TRANSITIONS_BY_PROSPECT)?,
            &txn.open_table(TRANSITIONS)?,
            prospect,
        )
    }
}

/// A snapshot's record tables, opened once for a query that reads many
/// prospects' records (a metric over a cohort or over every open prospect):
/// opening the tables for each prospect, and decoding whole records where a
/// query needs one or two of their values, was most of such a query's time
/// (`metrics.conversion` over 1M prospects).
pub struct Records {
    prospects: redb::ReadOnlyTable<u64, &'static [u8]>,
    by_prospect: redb::ReadOnlyTable<(u64, u64), ()>,
    transitions: redb::ReadOnlyTable<u64, &'static [u8]>,
    activities: redb::ReadOnlyTable<(u64, u64), &'static [u8]>,
}

/// The part of a prospect's record a metric over many prospects reads:
/// where it stands, whose it is, and one field's number (the amount).
#[derive(Debug, Clone, PartialEq)]
pub struct ProspectHead {
    /// The prospect.
    pub id: ProspectId,
    /// Its stage (for a closed prospect: the stage it closed from).
    pub stage: String,
    /// Open, won or lost.
    pub status: Status,
    /// Its owner, if any.
    pub owner: Option<String>,
    /// The asked field, when it holds a number.
    pub number: Option<f64>,
}

/// Decodes a [`ProspectHead`] from a stored prospect, reading only the
/// values it keeps (the others are skipped, not built).
struct HeadSeed<'a> {
    id: ProspectId,
    field: Option<&'a str>,
}

impl<'de> serde::de::DeserializeSeed<'de> for HeadSeed<'_> {
    type Value = ProspectHead;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<ProspectHead, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for HeadSeed<'_> {
    type Value = ProspectHead;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a prospect record")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ProspectHead, A::Error> {
        use serde::de::{Error, IgnoredAny};
        let (mut stage, mut status, mut owner, mut number) = (None, None, None, None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "stage" => stage = Some(map.next_value::<String>()?),
                "status" => status = Some(map.next_value::<Status>()?),
                "owner" => owner = map.next_value::<Option<String>>()?,
                "fields" => {
                    number = map.next_value_seed(FieldNumber(self.field))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ProspectHead {
            id: self.id,
            stage: stage.ok_or_else(|| A::Error::missing_field("stage"))?,
            status: status.ok_or_else(|| A::Error::missing_field("status"))?,
            owner,
            number,
        })
    }
}

/// One field's number out of a prospect's fields, the others skipped.
struct FieldNumber<'a>(Option<&'a str>);

impl<'de> serde::de::DeserializeSeed<'de> for FieldNumber<'_> {
    type Value = Option<f64>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldNumber<'_> {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a prospect's fields")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Option<f64>, A::Error> {
        let mut number = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if Some(key.as_ref()) == self.0 {
                number = map
                    .next_value::<stagecoach_types::model::FieldValue>()?
                    .as_number();
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(number)
    }
}

/// The part of a transition a reached-stage count reads.
#[derive(Deserialize)]
struct TransitionTo {
    to: String,
}

impl Records {
    /// One prospect's stage, status, owner and the number in `field`.
    pub fn head(
        &self,
        id: ProspectId,
        field: Option<&str>,
    ) -> Result<Option<ProspectHead>, StoreError> {
        let Some(v) = self.prospects.get(id)? else {
            return Ok(None);
        };
        head_of(v.value(), id, field).map(Some)
    }

    /// A prospect's transitions, oldest first.
    pub fn transitions(&self, prospect: ProspectId) -> Result<Vec<Transition>, StoreError> {
        self.transitions_as(prospect)
    }

    /// A prospect's transitions, oldest first, each decoded as `T` (the
    /// whole record or the part of it a query reads).
    fn transitions_as<T: DeserializeOwned>(
        &self,
        prospect: ProspectId,
    ) -> Result<Vec<T>, StoreError> {
        transitions_in(&self.by_prospect, &self.transitions, prospect)
    }

    /// A prospect's activities in the order they were recorded.
    pub fn activities(&self, prospect: ProspectId) -> Result<Vec<Activity>, StoreError> {
        chunks::activities_in(&self.activities, prospect)
    }

    /// The stage each of a prospect's transitions went to, oldest first.
    pub fn targets(&self, prospect: ProspectId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .transitions_as::<TransitionTo>(prospect)?
            .into_iter()
            .map(|t| t.to)
            .collect())
    }
}

fn head_of(bytes: &[u8], id: ProspectId, field: Option<&str>) -> Result<ProspectHead, StoreError> {
    use serde::de::DeserializeSeed;
    HeadSeed { id, field }
        .deserialize(&mut rmp_serde::Deserializer::from_read_ref(bytes))
        .map_err(|e| StoreError::Corrupt {
            what: "prospect",
            key: id.to_string(),
            message: e.to_string(),
        })
}

/// Where an evaluation reads a prospect's activities from: a read
/// [`Snapshot`] or the writer's [`Tables`], through the same code.
pub trait ActivitySource {
    /// The facts criteria on `kinds` need.
    fn activity_facts(
        &self,
        prospect: ProspectId,
        kinds: &[&str],
    ) -> Result<ActivityFacts, StoreError>;
    /// Every activity, in recording order.
    fn activities(&self, prospect: ProspectId) -> Result<Vec<Activity>, StoreError>;
    /// Whether verdicts read through this source need their reasons (a
    /// replay's scratch store keeps none).
    fn reasons(&self) -> bool {
        true
    }
}

impl ActivitySource for Snapshot {
    fn activity_facts(
        &self,
        prospect: ProspectId,
        kinds: &[&str],
    ) -> Result<ActivityFacts, StoreError> {
        Snapshot::activity_facts(self, prospect, kinds)
    }
    fn activities(&self, prospect: ProspectId) -> Result<Vec<Activity>, StoreError> {
        Snapshot::activities(self, prospect)
    }
}

impl ActivitySource for Tables<'_> {
    fn activity_facts(
        &self,
        prospect: ProspectId,
        kinds: &[&str],
    ) -> Result<ActivityFacts, StoreError> {
        Tables::activity_facts(self, prospect, kinds)
    }
    fn activities(&self, prospect: ProspectId) -> Result<Vec<Activity>, StoreError> {
        Tables::activities(self, prospect)
    }
    fn reasons(&self) -> bool {
        !self.is_scratch()
    }
}

/// Schema 1 databases predate the metric counters (and the index of
/// activities by kind, which [`upgrade_from_4`] builds): build them once
/// from the transition log.
/// Counters attribute history to each prospect's current owner (schema 1
/// kept no owner history), and renames made before the upgrade are not
/// known as aliases.
fn upgrade_from_1(txn: &WriteTransaction) -> Result<u64, StoreError> {
    counters::drop_tables(txn)?;
    counters::create_tables(txn)?;
    let prospects = txn.open_table(PROSPECTS)?;
    let by_prospect = txn.open_table(TRANSITIONS_BY_PROSPECT)?;
    let transitions = txn.open_table(TRANSITIONS)?;
    let mut metrics = counters::MetricTables::open(txn);
    let mut count = 0;
    for entry in prospects.iter()? {
        let (k, v) = entry?;
        let p: Prospect = decode(v.value(), "prospect", k.value())?;
        let mut moves = Vec::new();
        for t in by_prospect.range((p.id, 0)..=(p.id, u64::MAX))? {
            let id = t?.0.value().1;
            if let Some(v) = transitions.get(id)? {
                moves.push(decode::<Transition>(v.value(), "transition", id)?);
            }
        }
        metrics.record(None, &p, &moves, p.created_at)?;
        count += 1;
    }
    metrics.flush()?;
    Ok(count)
}

/// Every process version stored as of `txn`, oldest first.
pub(crate) fn versions_in(txn: &ReadTransaction) -> Result<Vec<ProcessVersion>, StoreError> {
    let table = txn.open_table(PROCESS_VERSIONS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push(decode(v.value(), "process version", k.value())?);
    }
    Ok(out)
}

/// Where each process version's window starts, from (load time, first
/// transition recorded under it), oldest version first.
///
/// A version is in force from its load. Two exceptions, for history
/// written after the fact with explicit times (backfills, the demo): the
/// first version counts from its first transition if that is earlier; and
/// a later version whose first transition falls after the previous
/// version's start but before that version was even loaded counts from
/// there. A backdated entry made in normal use (yesterday's meeting logged
/// after this morning's change) moves no window, and imported history older
/// than everything leaves the earlier versions' windows alone.
pub fn version_starts(versions: &[(Millis, Option<Millis>)]) -> Vec<Millis> {
    let mut starts: Vec<Millis> = Vec::with_capacity(versions.len());
    for (i, (loaded, first)) in versions.iter().enumerate() {
        let start = match (i.checked_sub(1), first) {
            (None, Some(first)) => (*first).min(*loaded),
            (Some(p), Some(first)) if starts[p] < *first && *first < versions[p].0 => *first,
            _ => *loaded,
        };
        starts.push(start);
    }
    starts
}

/// Schema 2 databases did not track where each process version's history
/// starts: find it once in the transition log.
fn upgrade_from_2(txn: &WriteTransaction) -> Result<usize, StoreError> {
    let mut first = txn.open_table(VERSION_FIRST_AT)?;
    let transitions = txn.open_table(TRANSITIONS)?;
    let mut found = std::collections::BTreeMap::new();
    for entry in transitions.iter()? {
        let (k, v) = entry?;
        let t: Transition = decode(v.value(), "transition", k.value())?;
        let at = found.entry(t.process_version).or_insert(t.at.0);
        *at = (*at).min(t.at.0);
    }
    for (version, at) in &found {
        first.insert(*version, *at)?;
    }
    Ok(found.len())
}

/// Schema 4 databases kept one row per activity and one index entry per
/// activity: write each prospect's activities as [`chunks`] rows (the
/// rows recording them one by one gives), count them, and drop the old
/// tables. The old table is in (prospect, id) order, so each prospect's
/// rows are written once, whole.
fn upgrade_from_4(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut rows = txn.open_table(chunks::ACTIVITY_CHUNKS)?;
    let mut kinds = txn.open_table(chunks::KIND_CHUNKS)?;
    let mut count = 0;
    {
        let old = txn.open_table(ACTIVITIES)?;
        let mut current: Option<(ProspectId, chunks::Chunker)> = None;
        for entry in old.iter()? {
            let (k, v) = entry?;
            let (prospect, id) = k.value();
            let a: Activity = decode(v.value(), "activity", id)?;
            if current.as_ref().is_some_and(|(p, _)| *p != prospect)
                && let Some((p, c)) = current.take()
            {
                c.write(p, &mut rows, &mut kinds)?;
            }
            current
                .get_or_insert_with(|| (prospect, chunks::Chunker::default()))
                .1
                .push(&a, v.value());
            count += 1;
        }
        if let Some((p, c)) = current {
            c.write(p, &mut rows, &mut kinds)?;
        }
    }
    txn.delete_table(ACTIVITIES)?;
    txn.delete_table(ACTIVITY_KINDS)?;
    txn.open_table(META)?.insert("activity_count", count)?;
    Ok(count)
}

/// Schema 3 databases kept completed stays one by one only, and open stays
/// only in the prospects: summarise them per (stage, day) and per (stage,
/// owner, day), once. The stays
/// table is ordered by (stage, exit time), so each day's stays arrive
/// together and each summary is written once.
fn upgrade_from_3(txn: &WriteTransaction) -> Result<u64, StoreError> {
    use counters::{STAYS, day};
    use stay_days::{OPEN_DAYS, OPEN_DAYS_BY_OWNER, STAY_DAYS, STAY_DAYS_BY_OWNER, build};
    txn.delete_table(STAY_DAYS)?;
    txn.delete_table(STAY_DAYS_BY_OWNER)?;
    let mut all = txn.open_table(STAY_DAYS)?;
    let mut by_owner = txn.open_table(STAY_DAYS_BY_OWNER)?;
    let stays = txn.open_table(STAYS)?;
    let mut written = 0;
    let mut flush = |key: &(String, i64),
                     every: &mut Vec<i64>,
                     owners: &mut std::collections::BTreeMap<String, Vec<i64>>|
     -> Result<(), StoreError> {
        all.insert((key.0.as_str(), key.1), build(every).as_slice())?;
        for (owner, ms) in owners.iter_mut() {
            by_owner.insert(
                (key.0.as_str(), owner.as_str(), key.1),
                build(ms).as_slice(),
            )?;
        }
        every.clear();
        owners.clear();
        written += 1;
        Ok(())
    };
    let mut current: Option<(String, i64)> = None;
    let mut every = Vec::new();
    let mut owners: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for entry in stays.iter()? {
        let (k, v) = entry?;
        let (stage, at, _) = k.value();
        let (ms, _, owner) = v.value();
        let key = (stage, day(Millis(at)));
        if current.as_ref().is_some_and(|c| (c.0.as_str(), c.1) != key) {
            flush(current.as_ref().expect("some"), &mut every, &mut owners)?;
        }
        if current.as_ref().is_none_or(|c| (c.0.as_str(), c.1) != key) {
            current = Some((stage.to_string(), key.1));
        }
        every.push(ms);
        owners.entry(owner.to_string()).or_default().push(ms);
    }
    if let Some(c) = &current {
        flush(c, &mut every, &mut owners)?;
    }
    // Open stays, from the prospects open now.
    txn.delete_table(OPEN_DAYS)?;
    txn.delete_table(OPEN_DAYS_BY_OWNER)?;
    let mut open: std::collections::BTreeMap<(String, i64), Vec<u8>> = Default::default();
    let mut open_by_owner: std::collections::BTreeMap<(String, String, i64), Vec<u8>> =
        Default::default();
    let prospects = txn.open_table(PROSPECTS)?;
    for entry in prospects.iter()? {
        let (k, v) = entry?;
        let p: Prospect = decode(v.value(), "prospect", k.value())?;
        if p.status == Status::Open {
            let (at, d) = (p.stage_entered_at, day(p.stage_entered_at));
            let owner = counters::owner_of(&p).to_string();
            stay_days::add_open(open.entry((p.stage.clone(), d)).or_default(), at);
            let blob = open_by_owner.entry((p.stage, owner, d)).or_default();
            stay_days::add_open(blob, at);
        }
    }
    let mut table = txn.open_table(OPEN_DAYS)?;
    for ((stage, d), blob) in &open {
        table.insert((stage.as_str(), *d), blob.as_slice())?;
    }
    let mut table = txn.open_table(OPEN_DAYS_BY_OWNER)?;
    for ((stage, owner, d), blob) in &open_by_owner {
        table.insert((stage.as_str(), owner.as_str(), *d), blob.as_slice())?;
    }
    Ok(written)
}

pub use stagecoach_types::api::results::Counts;

/// Next free ids, kept in memory by the writer and saved with every batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ids {
    pub prospect: u64,
    pub activity: u64,
    pub transition: u64,
    pub process_version: u64,
}

/// A prospect's transitions, oldest first, each decoded as `T`.
fn transitions_in<T: DeserializeOwned>(
    index: &impl ReadableTable<(u64, u64), ()>,
    table: &impl ReadableTable<u64, &'static [u8]>,
    prospect: ProspectId,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for entry in index.range((prospect, 0)..=(prospect, u64::MAX))? {
        let id = entry?.0.value().1;
        if let Some(v) = table.get(id)? {
            out.push(decode(v.value(), "transition", id)?);
        }
    }
    Ok(out)
}

/// The facts `kinds` criteria need, from activities held in memory (each
/// one's kind, time and actor, in id order), as the index by kind answers
/// them: by kind, in id order.
fn facts_from<'a, I: Iterator<Item = (&'a str, Millis, Actor)>>(
    kinds: &[&str],
    held: impl Fn() -> I,
) -> ActivityFacts {
    let mut facts = ActivityFacts::default();
    for kind in kinds {
        for (_, at, actor) in held().filter(|(k, ..)| k == kind) {
            facts.add(kind, at, actor);
        }
    }
    facts
}

/// Most memory the gathered metric rows (completed stays, stage entries,
/// outcomes: ~40, 24 and 32 bytes each) may take before they are written,
/// bytes. They are keyed by time, so a write spreads over the whole of
/// their B-trees; written every few batches, those trees outgrew the page
/// cache at ~500k prospects and every write read and wrote most of their
/// pages again (at 1M, 13 % of the replay in perf, with the page cache's
/// reads and writes beside it). Gathered up to this budget, a history of
/// up to ~1.5M prospects writes them once, in key order, at the end.
pub(crate) const ROWS_BUDGET: usize = 256 << 20;

/// Most memory everything gathered (rows, counters, day summaries) may take
/// before all of it is written, bytes. The counters and day summaries are
/// written once, at the end, while they fit ([`Tables::finish`]): each
/// write of a day summary copies the whole of it, so writing them every
/// few batches was quadratic in the history. Past this budget (the
/// benchmark's history gathers 270 MiB at 1M prospects, so ~1.9M) they are
/// written and gathered afresh: slower, but the memory of a replay or an
/// import session stays bounded whatever the history's size.
pub(crate) const GATHERED_BUDGET: usize = 512 << 20;

/// The write side: every table open in one write transaction. Built once
/// per batch by the writer; dropped before commit.
pub(crate) struct Tables<'txn> {
    meta: lazy::Lazy<'txn, &'static str, u64>,
    prospects: lazy::Lazy<'txn, u64, &'static [u8]>,
    external_ids: lazy::Lazy<'txn, &'static str, u64>,
    open_by_stage: lazy::Lazy<'txn, (&'static str, u64), ()>,
    by_owner: lazy::Lazy<'txn, (&'static str, u64), ()>,
    activities: lazy::Lazy<'txn, (u64, u64), &'static [u8]>,
    activity_kinds: lazy::Lazy<'txn, (u64, &'static str, u64), &'static [u8]>,
    /// Activities recorded through these tables, added to the stored
    /// count by [`Tables::finish`].
    added_activities: u64,
    transitions: lazy::Lazy<'txn, u64, &'static [u8]>,
    transitions_by_prospect: lazy::Lazy<'txn, (u64, u64), ()>,
    process_versions: lazy::Lazy<'txn, u64, &'static [u8]>,
    version_first_at: lazy::Lazy<'txn, u64, i64>,
    metrics: counters::MetricTables<'txn>,
    pub ids: Ids,
    /// Every change made through these tables, for the write-ahead log:
    /// each one length-prefixed MessagePack ([`Change`]).
    log: Vec<u8>,
    /// Where records are encoded before they are inserted, reused: a
    /// fresh vector per record grew through five or six reallocations
    /// each (at 1M prospects, ~8% of a replay's writing thread).
    buf: Vec<u8>,
    /// A scratch store's tables ([`Tables::open_scratch`]): the activities
    /// of the prospects being written, held here instead of in the tables.
    scratch: Option<rustc_hash::FxHashMap<ProspectId, Vec<Activity>>>,
    /// Written without a change log: an import session's tables
    /// ([`Tables::open_unlogged`]), committed durable in redb itself.
    unlogged: bool,
    /// A prospect created in this transaction, with every activity
    /// recorded for it since ([`Tables::fresh_prospect`]): its criteria's
    /// facts come from here instead of a range read of the index per
    /// evaluation, and its activities are written as whole rows once it
    /// is done.
    fresh: Option<(ProspectId, chunks::Chunker)>,
}

/// One change to the tables, as the write-ahead log keeps it: the calls
/// made on [`Tables`], with their arguments, so that making them again on
/// the same state gives the same tables (indexes and counters included).
/// Logged borrowed, read back owned.
#[derive(Serialize, Deserialize)]
enum Change<'a> {
    Prospect {
        old: Option<Cow<'a, Prospect>>,
        new: Cow<'a, Prospect>,
    },
    Activity(Cow<'a, Activity>),
    Transition(Cow<'a, Transition>),
    Version(Cow<'a, ProcessVersion>),
    Metrics {
        old: Option<Cow<'a, Prospect>>,
        new: Cow<'a, Prospect>,
        moves: Cow<'a, [Transition]>,
        at: Millis,
    },
    Alias {
        old: Cow<'a, str>,
        new: Cow<'a, str>,
    },
}

impl<'txn> Tables<'txn> {
    pub fn open(txn: &'txn WriteTransaction, ids: Ids) -> Result<Self, StoreError> {
        Ok(Tables {
            meta: lazy::Lazy::new(txn, META),
            prospects: lazy::Lazy::new(txn, PROSPECTS),
            external_ids: lazy::Lazy::new(txn, EXTERNAL_IDS),
            open_by_stage: lazy::Lazy::new(txn, OPEN_BY_STAGE),
            by_owner: lazy::Lazy::new(txn, BY_OWNER),
            activities: lazy::Lazy::new(txn, chunks::ACTIVITY_CHUNKS),
            activity_kinds: lazy::Lazy::new(txn, chunks::KIND_CHUNKS),
            added_activities: 0,
            transitions: lazy::Lazy::new(txn, TRANSITIONS),
            transitions_by_prospect: lazy::Lazy::new(txn, TRANSITIONS_BY_PROSPECT),
            process_versions: lazy::Lazy::new(txn, PROCESS_VERSIONS),
            version_first_at: lazy::Lazy::new(txn, VERSION_FIRST_AT),
            metrics: counters::MetricTables::open(txn),
            ids,
            log: Vec::new(),
            buf: Vec::new(),
            scratch: None,
            unlogged: false,
            fresh: None,
        })
    }

    /// Tables whose changes are not kept for the write-ahead log: for a
    /// transaction that is committed durable in redb itself (an import
    /// session, which may be far larger than the log), so that nothing
    /// needs to replay it.
    pub fn open_unlogged(txn: &'txn WriteTransaction, ids: Ids) -> Result<Self, StoreError> {
        let mut t = Self::open(txn, ids)?;
        t.unlogged = true;
        Ok(t)
    }

    /// Tables of a scratch store that only a replay reads, written without
    /// a change log (nothing replays it) and without the activities: those
    /// are the history's own, unchanged by a draft. A prospect's activities
    /// are held in memory while it is written, so the criteria read them as
    /// from the tables, until [`Tables::release_activities`]. Nor does it
    /// keep the indexes that nothing reads there: open prospects by stage,
    /// prospects by owner, external ids, each process version's first
    /// transition (`process.simulate` measures flow, time in stage,
    /// conversion and outcomes over all owners, which read none of them),
    /// nor the verdicts of the moves its criteria make.
    pub fn open_scratch(txn: &'txn WriteTransaction, ids: Ids) -> Result<Self, StoreError> {
        let mut t = Self::open(txn, ids)?;
        t.scratch = Some(Default::default());
        Ok(t)
    }

    /// Whether these are a scratch store's tables ([`Tables::open_scratch`]):
    /// nothing reads the verdicts of its transitions, listens to its events
    /// or looks its prospects up by external id.
    pub fn is_scratch(&self) -> bool {
        self.scratch.is_some()
    }

    /// In a long transaction (a replay, an import session), writes what
    /// the metrics gathered once it is past its memory budget: everything
    /// past [`GATHERED_BUDGET`], else the time-keyed rows past
    /// [`ROWS_BUDGET`] (the counters and day summaries wait for
    /// [`Tables::finish`]).
    pub fn write_past_budget(&mut self) -> Result<(), StoreError> {
        if self.metrics.gathered_bytes() > GATHERED_BUDGET {
            self.finish()
        } else if self.metrics.rows_bytes() > ROWS_BUDGET {
            self.metrics.flush_rows()
        } else {
            Ok(())
        }
    }

    /// Stops holding a scratch store's activities of `prospect` (see
    /// [`Tables::open_scratch`]); nothing for other tables.
    pub fn release_activities(&mut self, prospect: ProspectId) {
        if let Some(held) = &mut self.scratch {
            held.remove(&prospect);
        }
    }

    fn logged(&mut self, change: Change<'_>) {
        if self.scratch.is_some() || self.unlogged {
            return;
        }
        let at = self.log.len();
        self.log.extend_from_slice(&[0; 4]);
        rmp_serde::encode::write_named(&mut self.log, &change).expect("changes always encode");
        let len = (self.log.len() - at - 4) as u32;
        self.log[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// The changes made since the last call, for the write-ahead log.
    pub fn take_log(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.log)
    }

    /// Records which write-ahead log entry the tables now hold.
    pub fn set_log_applied(&mut self, seq: u64) -> Result<(), StoreError> {
        self.meta.write()?.insert("wal_seq", seq)?;
        Ok(())
    }

    /// Makes again the changes of a write-ahead log entry.
    pub fn replay(&mut self, changes: &[u8]) -> Result<(), StoreError> {
        let mut rest = changes;
        while rest.len() >= 4 {
            let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            let (one, next) = rest[4..].split_at(len.min(rest.len() - 4));
            rest = next;
            let change: Change = rmp_serde::from_slice(one).map_err(|e| StoreError::Corrupt {
                what: "write-ahead log change",
                key: String::new(),
                message: e.to_string(),
            })?;
            match change {
                Change::Prospect { old, new } => self.put_prospect(old.as_deref(), &new)?,
                Change::Activity(a) => self.insert_activity(&a)?,
                Change::Transition(t) => self.insert_transition(&t)?,
                Change::Version(v) => self.insert_process_version(&v)?,
                Change::Metrics {
                    old,
                    new,
                    moves,
                    at,
                } => self.record_metrics(old.as_deref(), &new, &moves, at)?,
                Change::Alias { old, new } => self.alias(&old, &new)?,
            }
        }
        Ok(())
    }

    /// Counts a prospect's change in the metric counters (see
    /// [`counters::MetricTables::record`]).
    pub fn record_metrics(
        &mut self,
        old: Option<&Prospect>,
        new: &Prospect,
        moves: &[Transition],
        at: Millis,
    ) -> Result<(), StoreError> {
        self.logged(Change::Metrics {
            old: old.map(Cow::Borrowed),
            new: Cow::Borrowed(new),
            moves: Cow::Borrowed(moves),
            at,
        });
        self.metrics.record(old, new, moves, at)
    }

    /// Remembers that stage `old` is now called `new`.
    pub fn alias(&mut self, old: &str, new: &str) -> Result<(), StoreError> {
        self.logged(Change::Alias {
            old: Cow::Borrowed(old),
            new: Cow::Borrowed(new),
        });
        self.metrics.alias(old, new)
    }

    /// Ends a batch: writes the activities of a prospect still held
    /// ([`Tables::fresh_prospect`]), the flow counts gathered, the activity
    /// count and the id counters; called once per batch before commit.
    pub fn finish(&mut self) -> Result<(), StoreError> {
        self.end_fresh()?;
        self.metrics.flush()?;
        let meta = self.meta.write()?;
        if self.added_activities > 0 {
            let count = meta.get("activity_count")?.map_or(0, |v| v.value());
            meta.insert("activity_count", count + self.added_activities)?;
            self.added_activities = 0;
        }
        meta.insert("next_prospect", self.ids.prospect)?;
        meta.insert("next_activity", self.ids.activity)?;
        meta.insert("next_transition", self.ids.transition)?;
        meta.insert("next_process_version", self.ids.process_version)?;
        Ok(())
    }

    pub fn prospect(&self, id: ProspectId) -> Result<Option<Prospect>, StoreError> {
        self.prospects
            .read()?
            .get(id)?
            .map(|v| decode(v.value(), "prospect", id))
            .transpose()
    }

    pub fn prospect_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<ProspectId>, StoreError> {
        if self.scratch.is_some() {
            // A replay writes each prospect once, and keeps no external ids.
            return Ok(None);
        }
        Ok(self
            .external_ids
            .read()?
            .get(external_id)?
            .map(|v| v.value()))
    }

    /// Writes `new`, keeping every index in step with `old` (the stored
    /// version, `None` for a new prospect).
    pub fn put_prospect(
        &mut self,
        old: Option<&Prospect>,
        new: &Prospect,
    ) -> Result<(), StoreError> {
        self.logged(Change::Prospect {
            old: old.map(Cow::Borrowed),
            new: Cow::Borrowed(new),
        });
        let id = new.id;
        if self.scratch.is_some() {
            encode_into(&mut self.buf, new);
            self.prospects.write()?.insert(id, self.buf.as_slice())?;
            return Ok(());
        }
        if let Some(old) = old {
            if old.status == Status::Open && (new.status != Status::Open || old.stage != new.stage)
            {
                self.open_by_stage
                    .write()?
                    .remove((old.stage.as_str(), id))?;
            }
            if let Some(owner) = &old.owner
                && new.owner.as_ref() != Some(owner)
            {
                self.by_owner.write()?.remove((owner.as_str(), id))?;
            }
        }
        let was_open_here = old.is_some_and(|o| o.status == Status::Open && o.stage == new.stage);
        if new.status == Status::Open && !was_open_here {
            self.open_by_stage
                .write()?
                .insert((new.stage.as_str(), id), ())?;
        }
        if let Some(owner) = &new.owner
            && old.and_then(|o| o.owner.as_ref()) != Some(owner)
        {
            self.by_owner.write()?.insert((owner.as_str(), id), ())?;
        }
        if old.is_none()
            && let Some(ext) = &new.external_id
        {
            self.external_ids.write()?.insert(ext.as_str(), id)?;
        }
        encode_into(&mut self.buf, new);
        self.prospects.write()?.insert(id, self.buf.as_slice())?;
        Ok(())
    }

    /// `prospect` was created in this transaction and has no activities
    /// yet: until [`Tables::end_fresh`], the activities recorded for it are
    /// kept here, its facts read from them, and its rows written whole at
    /// the end. (A scratch store holds every prospect's activities anyway.)
    pub fn fresh_prospect(&mut self, prospect: ProspectId) -> Result<(), StoreError> {
        self.end_fresh()?;
        if self.scratch.is_none() {
            self.fresh = Some((prospect, chunks::Chunker::default()));
        }
        Ok(())
    }

    /// Writes the fresh prospect's activities and stops keeping them.
    pub fn end_fresh(&mut self) -> Result<(), StoreError> {
        if let Some((prospect, held)) = self.fresh.take() {
            held.write(
                prospect,
                self.activities.write()?,
                self.activity_kinds.write()?,
            )?;
        }
        Ok(())
    }

    /// The facts `kinds` criteria need about a prospect's activities.
    pub fn activity_facts(
        &self,
        prospect: ProspectId,
        kinds: &[&str],
    ) -> Result<ActivityFacts, StoreError> {
        if let Some((p, held)) = &self.fresh
            && *p == prospect
        {
            return Ok(facts_from(kinds, || held.facts()));
        }
        if let Some(held) = &self.scratch {
            let all = held.get(&prospect).map_or(&[][..], Vec::as_slice);
            return Ok(facts_from(kinds, || {
                all.iter().map(|a| (a.kind.as_str(), a.at, a.actor))
            }));
        }
        chunks::facts_in(self.activity_kinds.read()?, prospect, kinds)
    }

    /// A prospect's activities in recording order.
    pub fn activities(&self, prospect: ProspectId) -> Result<Vec<Activity>, StoreError> {
        if let Some(held) = &self.scratch {
            return Ok(held.get(&prospect).cloned().unwrap_or_default());
        }
        if let Some((p, held)) = &self.fresh
            && *p == prospect
        {
            return held.activities(prospect);
        }
        chunks::activities_in(self.activities.read()?, prospect)
    }

    /// [`Tables::insert_activity`], taking the activity: a scratch store
    /// holds it as it is instead of a copy.
    pub fn add_activity(&mut self, activity: Activity) -> Result<(), StoreError> {
        match &mut self.scratch {
            Some(held) => {
                held.entry(activity.prospect).or_default().push(activity);
                Ok(())
            }
            None => self.insert_activity(&activity),
        }
    }

    pub fn insert_activity(&mut self, activity: &Activity) -> Result<(), StoreError> {
        if self.scratch.is_some() {
            return self.add_activity(activity.clone());
        }
        self.logged(Change::Activity(Cow::Borrowed(activity)));
        self.added_activities += 1;
        encode_into(&mut self.buf, activity);
        if let Some((p, held)) = &mut self.fresh
            && *p == activity.prospect
        {
            held.push(activity, &self.buf);
            return Ok(());
        }
        chunks::append(
            self.activities.write()?,
            self.activity_kinds.write()?,
            activity,
            &self.buf,
        )
    }

    pub fn insert_transition(&mut self, t: &Transition) -> Result<(), StoreError> {
        self.logged(Change::Transition(Cow::Borrowed(t)));
        encode_into(&mut self.buf, t);
        self.transitions
            .write()?
            .insert(t.id, self.buf.as_slice())?;
        self.transitions_by_prospect
            .write()?
            .insert((t.prospect, t.id), ())?;
        if self.scratch.is_some() {
            return Ok(());
        }
        let first = self
            .version_first_at
            .read()?
            .get(t.process_version)?
            .map(|v| v.value());
        if first.is_none_or(|f| t.at.0 < f) {
            self.version_first_at
                .write()?
                .insert(t.process_version, t.at.0)?;
        }
        Ok(())
    }

    /// Ids of the open prospects in `stage`.
    pub fn open_in_stage(&self, stage: &str) -> Result<Vec<ProspectId>, StoreError> {
        let mut ids = Vec::new();
        for entry in self
            .open_by_stage
            .read()?
            .range((stage, 0)..=(stage, u64::MAX))?
        {
            ids.push(entry?.0.value().1);
        }
        Ok(ids)
    }

    /// The distinct stages that hold open prospects, hopping from stage to
    /// stage through the index instead of reading every entry.
    pub fn stages_with_open_prospects(&self) -> Result<Vec<String>, StoreError> {
        let mut stages: Vec<String> = Vec::new();
        loop {
            let next = match stages.last() {
                None => self.open_by_stage.read()?.first()?,
                Some(last) => self
                    .open_by_stage
                    .read()?
                    .range((last.as_str(), u64::MAX)..)?
                    .find(|e| {
                        e.as_ref()
                            .map_or(true, |(k, _)| k.value().0 != last.as_str())
                    })
                    .transpose()?,
            };
            match next {
                Some((k, _)) => stages.push(k.value().0.to_string()),
                None => return Ok(stages),
            }
        }
    }

    pub fn insert_process_version(&mut self, v: &ProcessVersion) -> Result<(), StoreError> {
        self.logged(Change::Version(Cow::Borrowed(v)));
        self.process_versions
            .write()?
            .insert(v.number, encode(v).as_slice())?;
        Ok(())
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    fn m(day: i64) -> Millis {
        Millis(day * Millis::DAY)
    }

    #[test]
    fn windows_start_at_load_unless_history_was_written_after_the_fact() {
        // Live use: loaded on days 10 and 50; a backdated move under version
        // 2 (day 49) does not move its window.
        assert_eq!(
            version_starts(&[(m(10), Some(m(11))), (m(50), Some(m(49)))]),
            vec![m(10), m(50)]
        );
        // The demo: both loaded today (day 400), history written in time
        // order from day 0, the change half-way (day 200).
        assert_eq!(
            version_starts(&[(m(400), Some(m(0))), (m(400), Some(m(200)))]),
            vec![m(0), m(200)]
        );
        // Old history imported under version 2 (day -300) leaves version
        // 1's window alone.
        assert_eq!(
            version_starts(&[(m(10), Some(m(11))), (m(50), Some(m(-300)))]),
            vec![m(10), m(50)]
        );
        // A version nothing was recorded under starts at its load.
        assert_eq!(
            version_starts(&[(m(10), None), (m(20), None)]),
            vec![m(10), m(20)]
        );
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    fn io(code: i32) -> StoreError {
        StoreError::Db(redb::Error::Io(std::io::Error::from_raw_os_error(code)))
    }

    #[test]
    fn storage_failures_keep_their_kind() {
        // ENOSPC and EDQUOT on Linux: the user's disk is full either way.
        assert_eq!(io(28).kind(), StorageKind::DiskFull);
        assert_eq!(io(122).kind(), StorageKind::DiskFull);
        assert_eq!(io(5).kind(), StorageKind::Io);
        assert_eq!(
            StoreError::Db(redb::Error::PreviousIo).kind(),
            StorageKind::Io
        );
        assert_eq!(
            StoreError::Db(redb::Error::Corrupted("bad page".into())).kind(),
            StorageKind::Corrupt
        );
        assert_eq!(
            StoreError::Db(redb::Error::DatabaseClosed).kind(),
            StorageKind::Closed
        );
        let e = StoreError::Corrupt {
            what: "prospect",
            key: "1".into(),
            message: "eof".into(),
        };
        assert_eq!(e.kind(), StorageKind::Corrupt);
    }

    #[test]
    fn a_full_disk_reaches_the_client_as_such() {
        let e = stagecoach_types::error::WriteError::Storage {
            kind: io(28).kind(),
            message: io(28).to_string(),
        };
        let rpc = stagecoach_types::protocol::RpcError::from(e);
        assert_eq!(rpc.code, stagecoach_types::protocol::INTERNAL_ERROR);
        let data = rpc.data.clone().unwrap();
        assert_eq!(
            data.storage,
            Some(stagecoach_types::error::StorageKind::DiskFull)
        );
        assert_eq!(serde_json::to_value(&data).unwrap()["storage"], "disk_full");
        assert!(rpc.hint().unwrap().contains("free space"), "{data:?}");
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;
    use stagecoach_types::model::{FieldValue, TransitionKind};

    fn prospect(id: u64, owner: Option<&str>, fields: &[(&str, FieldValue)]) -> Prospect {
        Prospect {
            id,
            external_id: Some(format!("crm:{id}")),
            name: "Zoë Ngata".into(),
            company: Some("Ōtaki Ltd".into()),
            owner: owner.map(str::to_string),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            stage: "research".into(),
            status: Status::Lost,
            created_at: Millis(1_000),
            stage_entered_at: Millis(2_000),
            last_activity_at: Millis(3_000),
            closed_at: Some(Millis(4_000)),
            owner_since: None,
        }
    }

    /// What a metric over many prospects reads of a stored record (its
    /// head, a move's target) is what the whole record says.
    #[test]
    fn a_prospects_head_and_its_moves_targets_match_the_whole_records() {
        let cases = [
            prospect(
                1,
                Some("maria"),
                &[
                    ("amount", FieldValue::Number(12_500.5)),
                    ("industry", FieldValue::Text("SaaS".into())),
                    ("signed", FieldValue::Bool(true)),
                ],
            ),
            // The amount as text is no number, as `FieldValue::as_number` says.
            prospect(2, None, &[("amount", FieldValue::Text("12500".into()))]),
            prospect(3, Some("ōwner"), &[]),
        ];
        for p in &cases {
            let bytes = encode(p);
            let whole: Prospect = decode(&bytes, "prospect", p.id).unwrap();
            for field in [Some("amount"), Some("missing"), None] {
                let head = head_of(&bytes, p.id, field).unwrap();
                assert_eq!(
                    head,
                    ProspectHead {
                        id: p.id,
                        stage: whole.stage.clone(),
                        status: whole.status,
                        owner: whole.owner.clone(),
                        number: field
                            .and_then(|f| whole.fields.get(f))
                            .and_then(FieldValue::as_number),
                    }
                );
            }
        }
        let t = Transition {
            id: 9,
            prospect: 1,
            from: Some("present".into()),
            to: "close".into(),
            at: Millis(5_000),
            process_version: 2,
            kind: TransitionKind::Forced,
            verdicts: Vec::new(),
            reason: Some("the buyer asked".into()),
            by: Some("maria".into()),
            activity: None,
            imported: true,
        };
        let to: TransitionTo = decode(&encode(&t), "transition", t.id).unwrap();
        assert_eq!(to.to, "close");
    }
}
