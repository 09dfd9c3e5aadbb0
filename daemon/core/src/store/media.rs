//! Where the database and its write-ahead log are kept: files (the
//! daemon), or, in tests, a simulated disk that loses every write not yet
//! synced when the power is cut — what kill -9 can never show, since the
//! page cache survives a killed process (Jepsen's LazyFS does the same for
//! real files).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The operations the write-ahead log makes on its file.
pub(crate) trait LogFile: Send + Sync {
    fn len(&self) -> io::Result<u64>;
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()>;
    fn write_all_at(&self, buf: &[u8], at: u64) -> io::Result<()>;
    /// Makes the data written so far durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the data and the file's size durable.
    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

impl LogFile for File {
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, at)
    }
    fn write_all_at(&self, buf: &[u8], at: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, at)
    }
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
    fn sync_all(&self) -> io::Result<()> {
        File::sync_all(self)
    }
}

#[cfg(test)]
pub(crate) mod sim {
    //! A disk in memory whose unsynced writes are lost at a power cut.

    use std::io;
    use std::sync::{Arc, Mutex};

    use redb::StorageBackend;

    #[derive(Debug, Default)]
    struct State {
        /// What reads see: every write, synced or not.
        volatile: Vec<u8>,
        /// What survives a power cut: the state at the last sync.
        durable: Vec<u8>,
        /// The ranges written since the last sync.
        dirty: Vec<(usize, usize)>,
        /// The power is off: every operation fails until the restart.
        off: bool,
        /// Writes fail (as on a full disk) while this is set.
        refuse_writes: bool,
        /// A disk that starts refusing writes when this one next syncs.
        refuse_on_sync: Option<Arc<SimDisk>>,
        /// The next sync fails, having written nothing.
        fail_next_sync: bool,
    }

    /// One simulated file.
    #[derive(Debug, Default)]
    pub struct SimDisk(Mutex<State>);

    fn power_off() -> io::Error {
        io::Error::other("the power is off")
    }

    impl SimDisk {
        fn with<T>(&self, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
            let mut s = self.0.lock().unwrap();
            if s.off {
                return Err(power_off());
            }
            f(&mut s)
        }

        fn read(&self, at: u64, out: &mut [u8]) -> io::Result<()> {
            self.with(|s| {
                let at = at as usize;
                let end = at + out.len();
                if end > s.volatile.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "read past the end",
                    ));
                }
                out.copy_from_slice(&s.volatile[at..end]);
                Ok(())
            })
        }

        fn write(&self, at: u64, data: &[u8]) -> io::Result<()> {
            self.with(|s| {
                if s.refuse_writes {
                    return Err(io::Error::from(io::ErrorKind::StorageFull));
                }
                let at = at as usize;
                let end = at + data.len();
                if end > s.volatile.len() {
                    s.volatile.resize(end, 0);
                }
                s.volatile[at..end].copy_from_slice(data);
                s.dirty.push((at, end));
                Ok(())
            })
        }

        fn set_len(&self, len: u64) -> io::Result<()> {
            self.with(|s| {
                s.volatile.resize(len as usize, 0);
                Ok(())
            })
        }

        fn sync(&self) -> io::Result<()> {
            if let Some(other) = self.0.lock().unwrap().refuse_on_sync.take() {
                other.refuse_writes(true);
            }
            self.with(|s| {
                if std::mem::take(&mut s.fail_next_sync) {
                    return Err(io::Error::other("the sync failed"));
                }
                let len = s.volatile.len();
                s.durable.resize(len, 0);
                for (a, b) in std::mem::take(&mut s.dirty) {
                    let b = b.min(len);
                    if a < b {
                        let (volatile, durable) = (&s.volatile, &mut s.durable);
                        durable[a..b].copy_from_slice(&volatile[a..b]);
                    }
                }
                Ok(())
            })
        }

        /// The power goes off: every later operation fails. Of the writes
        /// not yet synced, those `keep` picks reached the disk anyway (a
        /// disk may have written any of them, in any order).
        pub fn cut(&self, keep: &mut dyn FnMut() -> bool) {
            let mut guard = self.0.lock().unwrap();
            let s = &mut *guard;
            for (a, b) in std::mem::take(&mut s.dirty) {
                let len = s.volatile.len();
                let b = b.min(len);
                if a < b && keep() {
                    if s.durable.len() < b {
                        s.durable.resize(b, 0);
                    }
                    let (volatile, durable) = (&s.volatile, &mut s.durable);
                    durable[a..b].copy_from_slice(&volatile[a..b]);
                }
            }
            s.off = true;
        }

        /// From now on writes fail as on a full disk (`true`), or succeed.
        pub fn refuse_writes(&self, refuse: bool) {
            self.0.lock().unwrap().refuse_writes = refuse;
        }

        /// The next sync fails (its writes stay unsynced).
        pub fn fail_next_sync(&self) {
            self.0.lock().unwrap().fail_next_sync = true;
        }

        /// `other` starts refusing writes the next time this disk syncs.
        pub fn on_next_sync_refuse_writes_of(&self, other: &Arc<SimDisk>) {
            self.0.lock().unwrap().refuse_on_sync = Some(other.clone());
        }

        /// The power comes back: only what was synced is there.
        pub fn restart(&self) {
            let mut s = self.0.lock().unwrap();
            s.volatile = s.durable.clone();
            s.dirty.clear();
            s.off = false;
        }
    }

    /// The database's disk and the log's.
    #[derive(Debug, Default)]
    pub struct SimMedia {
        pub db: Arc<SimDisk>,
        pub log: Arc<SimDisk>,
    }

    impl SimMedia {
        /// Cuts the power to both at once; `keep` picks which unsynced
        /// writes reached the disk all the same.
        pub fn cut(&self, keep: &mut dyn FnMut() -> bool) {
            self.db.cut(keep);
            self.log.cut(keep);
        }
        /// Brings both back with what each had synced.
        pub fn restart(&self) {
            self.db.restart();
            self.log.restart();
        }
    }

    /// redb on a simulated disk.
    #[derive(Debug)]
    pub struct Backend(pub Arc<SimDisk>);

    impl StorageBackend for Backend {
        fn len(&self) -> Result<u64, io::Error> {
            self.0.with(|s| Ok(s.volatile.len() as u64))
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
            self.0.read(offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), io::Error> {
            self.0.set_len(len)
        }
        fn sync_data(&self) -> Result<(), io::Error> {
            self.0.sync()
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
            self.0.write(offset, data)
        }
    }

    impl super::LogFile for Arc<SimDisk> {
        fn len(&self) -> io::Result<u64> {
            self.with(|s| Ok(s.volatile.len() as u64))
        }
        fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
            self.read(at, buf)
        }
        fn write_all_at(&self, buf: &[u8], at: u64) -> io::Result<()> {
            self.write(at, buf)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.sync()
        }
    }
}
