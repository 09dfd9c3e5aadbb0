//! Watching files the way people save them.
//!
//! Editors and tools save in many ways: write in place, truncate and write,
//! write a temporary file and rename it over the original (vim, VS Code,
//! `sed -i`), or delete and recreate. Watching the file itself misses the
//! renames (the watch follows the old inode), so this watches each file's
//! *directory* and reports a file whenever an event names it, debounced so a
//! burst of events from one save is one change.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// A watch on a set of files.
pub struct FileWatcher {
    _watcher: RecommendedWatcher,
    rx: mpsc::UnboundedReceiver<PathBuf>,
}

/// Why a watch could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch `{path}`: {message}")]
pub struct WatchError {
    /// The directory that could not be watched.
    pub path: PathBuf,
    /// Why.
    pub message: String,
}

fn directory_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl FileWatcher {
    /// Watches `files` (which need not exist yet; their directories must).
    pub fn new(files: &[PathBuf]) -> Result<FileWatcher, WatchError> {
        // (canonical directory, file name) → the path as the caller gave it.
        let mut wanted: HashMap<(PathBuf, OsString), PathBuf> = HashMap::new();
        let mut dirs = BTreeSet::new();
        for file in files {
            let dir = directory_of(file);
            let canonical = dir.canonicalize().map_err(|e| WatchError {
                path: dir.clone(),
                message: e.to_string(),
            })?;
            let Some(name) = file.file_name() else {
                continue;
            };
            wanted.insert((canonical.clone(), name.to_os_string()), file.clone());
            dirs.insert(canonical);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                for path in &event.paths {
                    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                        continue;
                    };
                    if let Some(file) = wanted.get(&(dir.to_path_buf(), name.to_os_string())) {
                        let _ = tx.send(file.clone());
                    }
                }
            })
            .map_err(|e| WatchError {
                path: PathBuf::from("."),
                message: e.to_string(),
            })?;
        for dir in &dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| WatchError {
                    path: dir.clone(),
                    message: e.to_string(),
                })?;
        }
        Ok(FileWatcher {
            _watcher: watcher,
            rx,
        })
    }

    /// Waits for the next change and returns every file that changed, once
    /// no event has arrived for `quiet`. `None` when the watch has ended.
    pub async fn next_change(&mut self, quiet: Duration) -> Option<BTreeSet<PathBuf>> {
        let mut changed = BTreeSet::new();
        changed.insert(self.rx.recv().await?);
        loop {
            match tokio::time::timeout(quiet, self.rx.recv()).await {
                Ok(Some(path)) => {
                    changed.insert(path);
                }
                Ok(None) => return Some(changed),
                Err(_) => return Some(changed),
            }
        }
    }
}
