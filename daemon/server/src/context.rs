//! Everything a request may touch, shared by all connections.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use serde_json::Value;
use stagecoach_core::clock::Clock;
use stagecoach_core::engine::{ActiveProcess, Event, ProcessHandle, WriteOp};
use stagecoach_core::process::InvalidProcess;
use stagecoach_core::store::Store;
use stagecoach_core::writer::{Writer, WriterStats};
use stagecoach_types::model::Millis;
use stagecoach_types::protocol::RpcError;

/// A method's answer, computed later.
pub type Reply = Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send>>;

/// Everything a request may touch, shared by all connections.
pub struct Ctx {
    /// The database (reads).
    pub store: Store,
    /// The single writer (writes).
    pub writer: Writer,
    /// The process version in force.
    pub process: ProcessHandle,
    /// The plugin host.
    pub plugin_host: Arc<stagecoach_plugin_host::PluginHost>,
    /// The process file being served.
    pub process_path: PathBuf,
    /// The last rejected edit of the process file, until a good one.
    pub last_process_error: Mutex<Option<InvalidProcess>>,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Notifications for subscribers.
    pub events: broadcast::Sender<Event>,
    /// Writer statistics.
    pub writer_stats: Arc<WriterStats>,
    /// When the daemon started.
    pub started_at: Millis,
    /// The socket path.
    pub socket: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Open connections.
    pub connections: AtomicUsize,
    /// Held while a process text is compared with the version in force and
    /// applied, so the watcher and `process.reload` never both apply one edit.
    pub reload_lock: tokio::sync::Mutex<()>,
}

impl Ctx {
    /// The process version in force now; a request keeps it to the end.
    pub fn active(&self) -> Arc<ActiveProcess> {
        self.process.read().expect("process lock").clone()
    }

    /// Queues `op` with the writer; the reply resolves when it is committed.
    pub(crate) fn write(&self, op: WriteOp) -> Reply {
        let rx = self.writer.submit(self.active(), op);
        Box::pin(async move {
            match rx.await {
                Ok(result) => result
                    .map(|answer| serde_json::to_value(answer).expect("answers serialize"))
                    .map_err(RpcError::from),
                Err(_) => Err(RpcError::from(
                    stagecoach_core::writer::WriteError::ShuttingDown,
                )),
            }
        })
    }
}
