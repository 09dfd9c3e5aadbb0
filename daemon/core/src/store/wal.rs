//! The write-ahead log: what makes a write durable between checkpoints.
//!
//! A batch's changes (what it did to the tables, not the requests that
//! asked for it) are appended here and synced before its redb commit,
//! which is then non-durable: one small sequential sync per batch instead
//! of redb's. Every few MiB the writer checkpoints: a durable redb commit
//! that also saves redb's allocator state (quick repair), after which the
//! log starts again from its beginning. After a crash redb reopens at the
//! last checkpoint without checking the whole file, and the entries logged
//! since are applied again, in order.
//!
//! The file is written in full when created, so appending needs no new
//! disk blocks (a full disk cannot fail it half-way) and a sync writes only
//! data. Each entry is `magic, length, sequence number, checksum, body`;
//! entries of an earlier round that lie past the current end have lower
//! sequence numbers, so the scan stops at them.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::Ids;
use super::media::LogFile;

const MAGIC: u32 = 0x5343_5731; // "SCW1"
const HEADER: usize = 4 + 4 + 8 + 8;

/// An entry read back from the log.
pub(crate) struct Entry {
    pub seq: u64,
    pub ids: Ids,
    /// The changes, as [`super::Tables`] logged them.
    pub changes: Vec<u8>,
}

/// The log file, open for appending.
pub(crate) struct Wal {
    file: Box<dyn LogFile>,
    size: u64,
    offset: u64,
    next_seq: u64,
}

fn checksum(seq: u64, body: &[u8]) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(body);
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

fn encode_ids(ids: &Ids, out: &mut Vec<u8>) {
    for n in [
        ids.prospect,
        ids.activity,
        ids.transition,
        ids.process_version,
    ] {
        out.extend_from_slice(&n.to_le_bytes());
    }
}

fn decode_ids(b: &[u8]) -> Ids {
    let n = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    Ids {
        prospect: n(0),
        activity: n(1),
        transition: n(2),
        process_version: n(3),
    }
}

impl Wal {
    /// Opens (or creates, allocated to `size` bytes) the log at `path` and
    /// returns the entries after `applied`, the last sequence number the
    /// database holds.
    pub fn open(path: &Path, size: u64, applied: u64) -> io::Result<(Wal, Vec<Entry>)> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        Wal::open_on(Box::new(file), size, applied)
    }

    /// [`Wal::open`] on a log file already open (or simulated).
    pub fn open_on(
        file: Box<dyn LogFile>,
        size: u64,
        applied: u64,
    ) -> io::Result<(Wal, Vec<Entry>)> {
        let len = file.len()?;
        if len < size {
            allocate(&*file, size)?;
            file.sync_all()?;
        }
        let size = len.max(size);
        let mut entries = Vec::new();
        let mut offset = 0u64;
        let mut expected: Option<u64> = None;
        let mut header = [0u8; HEADER];
        while offset + HEADER as u64 <= size {
            file.read_exact_at(&mut header, offset)?;
            let magic = u32::from_le_bytes(header[0..4].try_into().expect("4"));
            let body_len = u32::from_le_bytes(header[4..8].try_into().expect("4")) as u64;
            let seq = u64::from_le_bytes(header[8..16].try_into().expect("8"));
            let sum = u64::from_le_bytes(header[16..24].try_into().expect("8"));
            let end = offset + HEADER as u64 + body_len;
            if magic != MAGIC || body_len < 32 || end > size || expected.is_some_and(|e| e != seq) {
                break;
            }
            if expected.is_none() && seq > applied + 1 {
                // The first entry continues a later round than the database
                // knows: a checkpoint was lost, which redb's durable commit
                // before any reset rules out.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the write-ahead log begins at entry {seq} but the database holds entries up to {applied}"
                    ),
                ));
            }
            let mut body = vec![0u8; body_len as usize];
            file.read_exact_at(&mut body, offset + HEADER as u64)?;
            if checksum(seq, &body) != sum {
                break; // torn at a crash: never answered
            }
            if seq > applied {
                let changes = body.split_off(32);
                entries.push(Entry {
                    seq,
                    ids: decode_ids(&body),
                    changes,
                });
            } // else already in the database (a checkpoint covered it)
            expected = Some(seq + 1);
            offset = end;
        }
        let next_seq = entries.last().map_or(applied + 1, |e| e.seq + 1);
        let offset = if entries.is_empty() { 0 } else { offset };
        Ok((
            Wal {
                file,
                size,
                offset,
                next_seq,
            },
            entries,
        ))
    }

    /// The sequence number the next entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Bytes used since the last checkpoint.
    pub fn used(&self) -> u64 {
        self.offset
    }

    /// Whether an entry of `changes` bytes fits.
    pub fn fits(&self, changes: usize) -> bool {
        self.offset + (HEADER + 32 + changes) as u64 <= self.size
    }

    /// Appends an entry and syncs it; returns where it starts.
    pub fn append(&mut self, ids: &Ids, changes: &[u8]) -> io::Result<u64> {
        let seq = self.next_seq;
        let mut buf = Vec::with_capacity(HEADER + 32 + changes.len());
        buf.extend_from_slice(&MAGIC.to_le_bytes());
        buf.extend_from_slice(&((32 + changes.len()) as u32).to_le_bytes());
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&[0u8; 8]);
        encode_ids(ids, &mut buf);
        buf.extend_from_slice(changes);
        let sum = checksum(seq, &buf[HEADER..]);
        buf[16..24].copy_from_slice(&sum.to_le_bytes());
        let at = self.offset;
        self.file.write_all_at(&buf, at)?;
        if let Err(e) = self.file.sync_data() {
            // The entry is refused to its clients, but its bytes may reach
            // the disk anyway: its header is zeroed, so that a later scan
            // stops there (best effort: this write and sync may fail too).
            let _ = self.file.write_all_at(&[0u8; HEADER], at);
            let _ = self.file.sync_data();
            return Err(e);
        }
        self.offset += buf.len() as u64;
        self.next_seq += 1;
        Ok(at)
    }

    /// After a checkpoint: the next entry goes at the start again.
    pub fn reset(&mut self) {
        self.offset = 0;
    }
}

/// Writes the whole file once with zeros: its blocks are then allocated
/// and written, so a sync of an entry writes only that data (blocks merely
/// reserved by `fallocate` are converted on first write, a metadata change
/// each sync would have to journal).
fn allocate(file: &dyn LogFile, size: u64) -> io::Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> Ids {
        Ids {
            prospect: n,
            activity: n + 1,
            transition: n + 2,
            process_version: 1,
        }
    }

    #[test]
    fn entries_come_back_in_order_and_rounds_do_not_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut wal, entries) = Wal::open(&path, 4096, 0).unwrap();
        assert!(entries.is_empty());
        for n in 1..=5u8 {
            wal.append(&ids(u64::from(n)), &[n; 100]).unwrap();
        }
        drop(wal);
        let (mut wal, entries) = Wal::open(&path, 4096, 2).unwrap();
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(entries[0].changes, [3u8; 100]);
        assert_eq!(entries[0].ids.prospect, 3);
        // A checkpoint at 5, then two entries of the next round over the
        // first round's: the scan stops at the old entry that follows.
        wal.reset();
        wal.append(&ids(6), &[6; 10]).unwrap();
        wal.append(&ids(7), &[8; 10]).unwrap();
        drop(wal);
        let (_, entries) = Wal::open(&path, 4096, 5).unwrap();
        let got: Vec<(u64, u8)> = entries.iter().map(|e| (e.seq, e.changes[0])).collect();
        assert_eq!(got, [(6, 6), (7, 8)]);
        // Nothing after a checkpoint that covered everything.
        let (wal, entries) = Wal::open(&path, 4096, 7).unwrap();
        assert!(entries.is_empty());
        assert_eq!(wal.next_seq(), 8);
        assert_eq!(wal.used(), 0);
    }

    #[test]
    fn a_torn_entry_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut wal, _) = Wal::open(&path, 4096, 0).unwrap();
        wal.append(&ids(1), &[1; 50]).unwrap();
        let at = wal.append(&ids(2), &[2; 50]).unwrap();
        drop(wal);
        // A crash mid-write: the second entry's body is half old bytes.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xff; 10], at + HEADER as u64 + 40)
            .unwrap();
        let (wal, entries) = Wal::open(&path, 4096, 0).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(wal.next_seq(), 2);
    }

    #[test]
    fn a_log_ahead_of_the_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut wal, _) = Wal::open(&path, 4096, 9).unwrap();
        wal.append(&ids(1), &[1; 5]).unwrap();
        drop(wal);
        assert!(Wal::open(&path, 4096, 3).is_err());
    }

    /// An entry whose sync failed was refused to its clients: even if its
    /// bytes reach the disk, a later start must not apply it.
    #[test]
    fn an_entry_whose_sync_failed_is_never_read_back() {
        use crate::store::media::sim::SimDisk;
        let disk = std::sync::Arc::new(SimDisk::default());
        let (mut wal, _) = Wal::open_on(Box::new(disk.clone()), 4096, 0).unwrap();
        wal.append(&ids(1), &[1; 20]).unwrap();
        disk.fail_next_sync();
        assert!(wal.append(&ids(2), &[2; 20]).is_err());
        drop(wal);
        // Power cut; every write not synced reaches the disk all the same.
        disk.cut(&mut || true);
        disk.restart();
        let (_, entries) = Wal::open_on(Box::new(disk), 4096, 0).unwrap();
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1]);
    }
}
