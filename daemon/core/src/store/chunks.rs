//! A prospect's activities, and the index of them by kind that exit
//! criteria read, stored a few KiB at a time instead of one row per
//! activity.
//!
//! Two B-tree inserts per activity (the record and its index entry) were
//! half of the writer's time in an import (`perf` of a 100k-deal HubSpot
//! import, where the writer records little else). Rows hold activities in
//! recording (id) order and are keyed by the id of their first one; a new
//! activity goes at the end of its prospect's last row while that stays
//! within [`CHUNK_BYTES`], else it starts a row. An import writes a new
//! prospect's rows once, whole ([`Chunker`]), to the same boundaries that
//! recording its activities one by one gives.

use redb::{ReadableTable, TableDefinition};

use stagecoach_types::model::{Activity, ActivityFacts, Actor, Millis, ProspectId};

use super::{StoreError, decode};

/// (prospect, id of the row's first activity) → its activities, each a
/// little-endian u32 length and the MessagePack record.
pub(crate) const ACTIVITY_CHUNKS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("activity_chunks");
/// (prospect, kind, id of the row's first activity of that kind) → one
/// [`FACT_BYTES`] entry per activity: id, time and whether the prospect
/// acted. What exit criteria read.
pub(crate) const KIND_CHUNKS: TableDefinition<(u64, &str, u64), &[u8]> =
    TableDefinition::new("activity_kind_chunks");

/// Most bytes in one row of either table; an activity larger than this is
/// a row of its own.
pub(crate) const CHUNK_BYTES: usize = 4096;
/// One entry of the kind index: id (u64), time (i64, ms), prospect acted (u8).
const FACT_BYTES: usize = 17;

fn corrupt(prospect: ProspectId, what: &'static str) -> StoreError {
    StoreError::Corrupt {
        what,
        key: prospect.to_string(),
        message: "a row ends inside an entry".into(),
    }
}

/// Appends `encoded` (one activity's record) to a row, framed.
pub(crate) fn frame(row: &mut Vec<u8>, encoded: &[u8]) {
    let len = u32::try_from(encoded.len()).expect("an activity's record is under 4 GiB");
    row.extend_from_slice(&len.to_le_bytes());
    row.extend_from_slice(encoded);
}

/// Whether `more` bytes still go into a row of `len` bytes.
fn fits(len: usize, more: usize) -> bool {
    len + more <= CHUNK_BYTES
}

/// Appends one kind index entry to a row.
pub(crate) fn fact(row: &mut Vec<u8>, id: u64, at: Millis, actor: Actor) {
    row.extend_from_slice(&id.to_le_bytes());
    row.extend_from_slice(&at.0.to_le_bytes());
    row.push(u8::from(actor == Actor::Prospect));
}

/// Decodes every activity of a row onto `out`.
fn decode_row(prospect: ProspectId, row: &[u8], out: &mut Vec<Activity>) -> Result<(), StoreError> {
    let mut rest = row;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(prospect, "activity row"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return Err(corrupt(prospect, "activity row"));
        }
        let (one, tail) = tail.split_at(len);
        out.push(decode(one, "activity", prospect)?);
        rest = tail;
    }
    Ok(())
}

/// A prospect's activities in recording order.
pub(crate) fn activities_in(
    table: &impl ReadableTable<(u64, u64), &'static [u8]>,
    prospect: ProspectId,
) -> Result<Vec<Activity>, StoreError> {
    let mut out = Vec::new();
    for entry in table.range((prospect, 0)..=(prospect, u64::MAX))? {
        decode_row(prospect, entry?.1.value(), &mut out)?;
    }
    Ok(out)
}

/// Up to `limit` activities from `(prospect, activity id)` on, in
/// (prospect, id) order.
pub(crate) fn page(
    table: &impl ReadableTable<(u64, u64), &'static [u8]>,
    start: (u64, u64),
    limit: usize,
) -> Result<Vec<Activity>, StoreError> {
    // The row holding `start` began at or before it.
    let first = match table.range(..=start)?.next_back().transpose()? {
        Some((k, _)) if k.value().0 == start.0 => k.value(),
        _ => start,
    };
    let (mut out, mut row) = (Vec::new(), Vec::new());
    for entry in table.range(first..)? {
        let (k, v) = entry?;
        let prospect = k.value().0;
        decode_row(prospect, v.value(), &mut row)?;
        // The row holding `start` may begin before it.
        out.extend(
            row.drain(..)
                .filter(|a| prospect != start.0 || a.id >= start.1),
        );
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    Ok(out)
}

/// The facts `kinds` criteria need about a prospect's activities: by kind,
/// in id order.
pub(crate) fn facts_in(
    table: &impl ReadableTable<(u64, &'static str, u64), &'static [u8]>,
    prospect: ProspectId,
    kinds: &[&str],
) -> Result<ActivityFacts, StoreError> {
    let mut facts = ActivityFacts::default();
    for kind in kinds {
        for entry in table.range((prospect, *kind, 0)..=(prospect, *kind, u64::MAX))? {
            let (_, v) = entry?;
            let row = v.value();
            if row.len() % FACT_BYTES != 0 {
                return Err(corrupt(prospect, "activity kind row"));
            }
            for e in row.chunks_exact(FACT_BYTES) {
                let at = i64::from_le_bytes(e[8..16].try_into().expect("8 bytes"));
                let actor = if e[16] == 1 {
                    Actor::Prospect
                } else {
                    Actor::Rep
                };
                facts.add(kind, Millis(at), actor);
            }
        }
    }
    Ok(facts)
}

/// The key of the row `more` bytes go into: the prospect's `last` row
/// (first id, bytes), copied into `row`, when they fit there, else a new
/// row keyed by `id`.
fn continue_row(last: Option<(u64, Vec<u8>)>, more: usize, id: u64, row: &mut Vec<u8>) -> u64 {
    match last {
        Some((first, old)) if fits(old.len(), more) => {
            row.extend_from_slice(&old);
            first
        }
        _ => id,
    }
}

/// Records one more activity of a prospect that may already have rows:
/// at the end of its last row when that has room, else in a new row.
pub(crate) fn append(
    activities: &mut redb::Table<'_, (u64, u64), &'static [u8]>,
    kinds: &mut redb::Table<'_, (u64, &'static str, u64), &'static [u8]>,
    a: &Activity,
    encoded: &[u8],
) -> Result<(), StoreError> {
    let p = a.prospect;
    let mut row = Vec::with_capacity(CHUNK_BYTES);
    let last = activities
        .range((p, 0)..=(p, u64::MAX))?
        .next_back()
        .transpose()?
        .map(|(k, v)| (k.value().1, v.value().to_vec()));
    let key = continue_row(last, 4 + encoded.len(), a.id, &mut row);
    frame(&mut row, encoded);
    activities.insert((p, key), row.as_slice())?;

    row.clear();
    let kind = a.kind.as_str();
    let last = kinds
        .range((p, kind, 0)..=(p, kind, u64::MAX))?
        .next_back()
        .transpose()?
        .map(|(k, v)| (k.value().2, v.value().to_vec()));
    let key = continue_row(last, FACT_BYTES, a.id, &mut row);
    fact(&mut row, a.id, a.at, a.actor);
    kinds.insert((p, kind, key), row.as_slice())?;
    Ok(())
}

/// A new prospect's activities, gathered while it is imported and written
/// as whole rows at the end: the rows [`append`] would have made one
/// activity at a time, without reading any of them back.
#[derive(Default)]
pub(crate) struct Chunker {
    /// Each activity's id, kind, time and actor, and where its framed
    /// record ends in `frames`, in id order.
    entries: Vec<(u64, String, Millis, Actor, usize)>,
    frames: Vec<u8>,
}

impl Chunker {
    pub(crate) fn push(&mut self, a: &Activity, encoded: &[u8]) {
        frame(&mut self.frames, encoded);
        self.entries
            .push((a.id, a.kind.clone(), a.at, a.actor, self.frames.len()));
    }

    /// Each activity's kind, time and actor, in id order.
    pub(crate) fn facts(&self) -> impl Iterator<Item = (&str, Millis, Actor)> {
        self.entries
            .iter()
            .map(|(_, k, at, actor, _)| (k.as_str(), *at, *actor))
    }

    /// The activities, decoded.
    pub(crate) fn activities(&self, prospect: ProspectId) -> Result<Vec<Activity>, StoreError> {
        let mut out = Vec::with_capacity(self.entries.len());
        decode_row(prospect, &self.frames, &mut out)?;
        Ok(out)
    }

    /// Writes the rows of `prospect`, which has none yet.
    pub(crate) fn write(
        &self,
        prospect: ProspectId,
        activities: &mut redb::Table<'_, (u64, u64), &'static [u8]>,
        kinds: &mut redb::Table<'_, (u64, &'static str, u64), &'static [u8]>,
    ) -> Result<(), StoreError> {
        // Where the current row begins and its last frame ends, in `frames`.
        let (mut start, mut end, mut first) = (0, 0, None);
        for &(id, .., frame_end) in &self.entries {
            if let Some(key) = first
                && !fits(end - start, frame_end - end)
            {
                activities.insert((prospect, key), &self.frames[start..end])?;
                (start, first) = (end, None);
            }
            first.get_or_insert(id);
            end = frame_end;
        }
        if let Some(key) = first {
            activities.insert((prospect, key), &self.frames[start..end])?;
        }

        let mut by_kind: Vec<&(u64, String, Millis, Actor, usize)> = self.entries.iter().collect();
        by_kind.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        let mut row = Vec::with_capacity(CHUNK_BYTES);
        for group in by_kind.chunk_by(|a, b| a.1 == b.1) {
            for run in group.chunks(CHUNK_BYTES / FACT_BYTES) {
                row.clear();
                for (id, _, at, actor, _) in run {
                    fact(&mut row, *id, *at, *actor);
                }
                kinds.insert((prospect, group[0].1.as_str(), run[0].0), row.as_slice())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(id: u64, kind: &str, data: usize) -> Activity {
        Activity {
            id,
            prospect: 7,
            kind: kind.into(),
            actor: if id.is_multiple_of(3) {
                Actor::Prospect
            } else {
                Actor::Rep
            },
            at: Millis(id as i64 * 1000),
            data: serde_json::json!({ "note": "x".repeat(data) })
                .as_object()
                .cloned()
                .unwrap(),
        }
    }

    type Rows = (
        Vec<((u64, u64), Vec<u8>)>,
        Vec<((u64, String, u64), Vec<u8>)>,
    );

    fn rows(db: &redb::Database) -> Rows {
        use redb::ReadableDatabase;
        let txn = db.begin_read().unwrap();
        let a = txn.open_table(ACTIVITY_CHUNKS).unwrap();
        let k = txn.open_table(KIND_CHUNKS).unwrap();
        (
            a.iter()
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.value(), v.value().to_vec())
                })
                .collect(),
            k.iter()
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    let (p, kind, id) = k.value();
                    ((p, kind.to_string(), id), v.value().to_vec())
                })
                .collect(),
        )
    }

    #[test]
    fn whole_rows_are_the_rows_of_one_by_one_and_read_back_in_order() {
        // Small and large records, an activity larger than a row, and one
        // kind with more entries than a row holds.
        let all: Vec<Activity> = (1..=900u64)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    "call"
                } else {
                    ["email", "meeting"][(i % 4 / 2) as usize]
                };
                activity(
                    i,
                    kind,
                    if i == 450 {
                        9000
                    } else {
                        (i as usize * 37) % 300
                    },
                )
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let (one, whole) = (dir.path().join("one"), dir.path().join("whole"));
        let dbs = [
            redb::Database::create(&one).unwrap(),
            redb::Database::create(&whole).unwrap(),
        ];
        {
            let txn = dbs[0].begin_write().unwrap();
            let mut a = txn.open_table(ACTIVITY_CHUNKS).unwrap();
            let mut k = txn.open_table(KIND_CHUNKS).unwrap();
            for x in &all {
                append(&mut a, &mut k, x, &super::super::encode(x)).unwrap();
            }
            drop((a, k));
            txn.commit().unwrap();
        }
        {
            let txn = dbs[1].begin_write().unwrap();
            let mut a = txn.open_table(ACTIVITY_CHUNKS).unwrap();
            let mut k = txn.open_table(KIND_CHUNKS).unwrap();
            let mut c = Chunker::default();
            for x in &all {
                c.push(x, &super::super::encode(x));
            }
            assert_eq!(c.activities(7).unwrap(), all);
            c.write(7, &mut a, &mut k).unwrap();
            drop((a, k));
            txn.commit().unwrap();
        }
        let (r1, r2) = (rows(&dbs[0]), rows(&dbs[1]));
        assert_eq!(r1, r2);
        assert!(
            r1.0.len() > 10 && r1.1.len() > 3,
            "{} {}",
            r1.0.len(),
            r1.1.len()
        );
        assert!(
            r1.0.iter()
                .all(|(_, v)| v.len() <= CHUNK_BYTES || v.len() > 9000)
        );

        use redb::ReadableDatabase;
        let txn = dbs[0].begin_read().unwrap();
        let a = txn.open_table(ACTIVITY_CHUNKS).unwrap();
        assert_eq!(activities_in(&a, 7).unwrap(), all);
        assert!(activities_in(&a, 8).unwrap().is_empty());
        for (start, limit) in [(0, 5), (1, 1000), (333, 7), (450, 2), (899, 10), (901, 3)] {
            let want: Vec<_> = all
                .iter()
                .filter(|x| x.id >= start)
                .take(limit)
                .cloned()
                .collect();
            assert_eq!(page(&a, (7, start), limit).unwrap(), want, "from {start}");
        }
        assert!(page(&a, (8, 0), 10).unwrap().is_empty());
        let k = txn.open_table(KIND_CHUNKS).unwrap();
        let facts = facts_in(&k, 7, &["call", "meeting", "none"]).unwrap();
        let want = ActivityFacts::from_activities(
            &all.iter()
                .filter(|x| x.kind != "email")
                .cloned()
                .collect::<Vec<_>>(),
        );
        for kind in ["call", "meeting", "none"] {
            assert_eq!(facts.of_kind(kind), want.of_kind(kind), "{kind}");
        }
        assert_eq!(facts.of_kind("call").len(), 450);
    }

    #[test]
    fn a_schema_4_database_gets_its_activities_in_rows_once() {
        use super::super::{ACTIVITIES, ACTIVITY_KINDS, META, Store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        drop(Store::open(&path).unwrap());
        // Schema 4: one row and one index entry per activity, no count.
        let mut all: Vec<Activity> = Vec::new();
        for p in [3u64, 7, 9] {
            for i in 0..(p * 40) {
                let mut a = activity(p * 1000 + i, ["call", "email"][(i % 2) as usize], 200);
                a.prospect = p;
                all.push(a);
            }
        }
        {
            let db = redb::Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(ACTIVITY_CHUNKS).unwrap();
            txn.delete_table(KIND_CHUNKS).unwrap();
            {
                let mut rows = txn.open_table(ACTIVITIES).unwrap();
                let mut kinds = txn.open_table(ACTIVITY_KINDS).unwrap();
                for a in &all {
                    rows.insert((a.prospect, a.id), super::super::encode(a).as_slice())
                        .unwrap();
                    kinds
                        .insert(
                            (a.prospect, a.kind.as_str(), a.id),
                            (a.at.0, a.actor == Actor::Prospect),
                        )
                        .unwrap();
                }
                let mut meta = txn.open_table(META).unwrap();
                meta.insert("schema_version", 4).unwrap();
                meta.remove("activity_count").unwrap();
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.counts().unwrap().activities, all.len() as u64);
        assert_eq!(store.activities_page(None, usize::MAX).unwrap(), all);
        let snap = store.snapshot().unwrap();
        for p in [3u64, 7, 9] {
            let mine: Vec<Activity> = all.iter().filter(|a| a.prospect == p).cloned().collect();
            assert_eq!(store.activities(p).unwrap(), mine);
            let facts = snap.activity_facts(p, &["call", "email"]).unwrap();
            let want = ActivityFacts::from_activities(&mine);
            assert_eq!(facts.of_kind("call"), want.of_kind("call"));
            assert_eq!(facts.of_kind("email"), want.of_kind("email"));
        }
        drop((snap, store));
        // Once: the old tables are gone, and opening again changes nothing.
        let db = redb::Database::open(&path).unwrap();
        let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
        assert!(txn.open_table(ACTIVITIES).is_err());
        assert!(txn.open_table(ACTIVITY_KINDS).is_err());
    }
}
