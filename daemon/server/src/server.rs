//! The daemon: start-up, the Unix socket, connections, and graceful
//! shutdown.
//!
//! One JSON value per line in each direction. A connection reads requests in
//! order, starts each (writes are queued to the writer immediately) and
//! answers each as soon as it is done, so a client may pipeline. Limits
//! (line length, batch size, idle time, connections, requests in flight and
//! the bytes a connection holds) answer with an error, pause reading or
//! close; they never take the daemon down.

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, Semaphore, broadcast, mpsc};
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::live::{Loading, load_plugin_set, whole_file_error};
use crate::rpc::{Ctx, dispatch};
use stagecoach_core::clock::Clock;
use stagecoach_core::engine::{ActiveProcess, Event, NewVersion, WriteOp};
use stagecoach_core::process::{InvalidProcess, content_hash};
use stagecoach_core::store::{Store, StoreError};
use stagecoach_core::writer::{WriteError, Writer, WriterStats};
use stagecoach_plugin_host::PluginHost;
use stagecoach_types::protocol::{self, INVALID_REQUEST, PARSE_ERROR, RpcError, UNAVAILABLE};

/// Limits that protect the daemon from clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest request line in bytes.
    pub max_line: usize,
    /// A connection with nothing to do for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more are refused with an error.
    pub max_connections: usize,
    /// Requests one connection may have in flight; reading pauses beyond.
    pub max_in_flight: usize,
    /// Requests in one batch; a longer batch is refused whole.
    pub max_batch: usize,
    /// Bytes one connection may hold: requests read but not yet answered,
    /// answers and notifications not yet taken by the client. Beyond it
    /// the daemon reads no more requests until the client reads; a
    /// notification that does not fit disconnects the client.
    pub max_queued: usize,
    /// An import session (`import.begin`) sent nothing for this long is
    /// given up, nothing of it written: while one is open, other writes
    /// wait, so a client that vanishes mid-import must not hold them long.
    pub import_idle: Duration,
    /// An import session still open after this long is given up, however
    /// busy: bounds how long one client can hold the other writes.
    pub import_max: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 1 << 20,
            idle_timeout: Duration::from_secs(300),
            max_connections: 1024,
            max_in_flight: 1024,
            max_batch: DEFAULT_MAX_BATCH,
            max_queued: DEFAULT_MAX_QUEUED_MIB << 20,
            import_idle: Duration::from_secs(DEFAULT_IMPORT_IDLE_SECS),
            import_max: Duration::from_secs(DEFAULT_IMPORT_MAX_SECS),
        }
    }
}

/// Seconds an import session may go without a request unless told otherwise.
pub const DEFAULT_IMPORT_IDLE_SECS: u64 = 30;
/// Seconds an import session may stay open unless told otherwise.
pub const DEFAULT_IMPORT_MAX_SECS: u64 = 3600;
/// Requests in one batch unless told otherwise.
pub const DEFAULT_MAX_BATCH: usize = 1000;
/// MiB one connection may hold unless told otherwise.
pub const DEFAULT_MAX_QUEUED_MIB: usize = 8;
/// What a request in flight holds besides its bytes (its parsed form, its
/// task, its answer while it is built), counted against `max_queued` so
/// that a batch of tiny requests cannot hold ten times its size.
const REQUEST_OVERHEAD: usize = 1 << 10;
/// Lines longer than this are parsed on the blocking pool, not on the
/// runtime's threads that read every client.
const PARSE_OFF_RUNTIME: usize = 64 << 10;

/// How long a closing connection may take to deliver its last answers.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What `serve` needs: paths, limits and the clock, all passed in.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The process file to serve (and, later, watch).
    pub process_path: PathBuf,
    /// Where the database lives.
    pub data_dir: PathBuf,
    /// The socket path.
    pub socket: PathBuf,
    /// Client limits.
    pub limits: Limits,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Watch the process file and reload it on every save.
    pub watch: bool,
    /// Compiled-plugin cache; `DATA_DIR/plugin-cache` when `None`.
    pub plugin_cache: Option<PathBuf>,
    /// The database's page cache, MiB.
    pub cache_mib: usize,
    /// Writes are refused while the database's disk has less free, MiB.
    pub min_free_mib: u64,
    /// The largest process file read, MiB.
    pub max_process_mib: u64,
    /// Compile plugins in a separate process within these limits (none:
    /// in the daemon, unbounded).
    pub compile_worker: Option<stagecoach_plugin_host::CompileWorker>,
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The process file could not be read and no earlier version is stored.
    #[error("cannot read process file `{path}`: {source}")]
    ProcessRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The process file is invalid and no earlier version is stored.
    #[error("process file is invalid:\n{0}")]
    Process(InvalidProcess),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Storing the process version failed.
    #[error(transparent)]
    Write(WriteError),
    /// Another daemon answers on the socket.
    #[error(
        "another stagecoach daemon is already serving on `{0}`\nhint: stop it, or pass `--socket` and `--data-dir` for a second daemon"
    )]
    AlreadyServing(PathBuf),
    /// Something else is at the socket path.
    #[error("`{0}` exists and is not a socket\nhint: remove it or choose another `--socket`")]
    NotASocket(PathBuf),
    /// File system trouble with the data directory or socket.
    #[error("{what} `{path}`: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ServeError + 'a {
    move |source| ServeError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Removes the scratch stores a daemon killed mid-run left in its data
/// directory (`simulate-PID-N.redb`, up to ~1 GiB per million prospects,
/// and `process-tests-PID-N.redb`): each run removes its own when it ends,
/// unless the process dies first. Only files of exactly those names whose
/// process is gone: a data directory shared with `stagecoach test` (which
/// puts its scratch stores in the temporary directory) keeps a running
/// one's.
fn remove_stale_scratch(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(scratch_owner) else {
            continue;
        };
        // A live process (or one not ours to signal) keeps its file; only
        // "no such process" frees it.
        let gone = rustix::process::Pid::from_raw(pid).is_some_and(|pid| {
            rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
        });
        if !gone {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(
                file = %path.display(),
                "removed a scratch store a stopped daemon left behind"
            ),
            Err(e) => tracing::warn!(
                file = %path.display(),
                error = %e,
                "could not remove a scratch store a stopped daemon left behind"
            ),
        }
    }
}

/// The process id in a scratch store's name: `simulate-PID.redb` (before
/// runs were numbered), `simulate-PID-N.redb` or `process-tests-PID-N.redb`.
fn scratch_owner(name: &str) -> Option<i32> {
    let stem = name.strip_suffix(".redb")?;
    let (rest, numbered) = match stem.strip_prefix("simulate-") {
        Some(rest) => (rest, false),
        None => (stem.strip_prefix("process-tests-")?, true),
    };
    let (pid, run) = match rest.split_once('-') {
        Some((pid, run)) => (pid, Some(run)),
        None if !numbered => (rest, None),
        None => return None,
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !number(pid) || run.is_some_and(|r| !number(r)) {
        return None;
    }
    pid.parse().ok()
}

/// The database file inside a data directory.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("stagecoach.redb")
}

/// Runs the daemon until `shutdown` resolves, then finishes in-flight
/// requests and returns.
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    create_private_dir(&config.data_dir)?;
    if let Some(parent) = config.socket.parent() {
        create_private_dir(parent)?;
    }
    check_socket_free(&config.socket)?;
    raise_descriptor_limit();

    // Listen at once: while the database is checked and plugins compile,
    // clients get -32006 saying so, not a missing socket.
    let listener =
        UnixListener::bind(&config.socket).map_err(io_err("cannot bind socket", &config.socket))?;
    let socket_ino = std::fs::metadata(&config.socket).map(|m| m.ino()).ok();
    let mut bound = Bound {
        path: config.socket.clone(),
        ino: socket_ino,
        armed: true,
    };
    std::fs::set_permissions(&config.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err("cannot set permissions on socket", &config.socket))?;
    let phase = Arc::new(Mutex::new("opening the database".to_string()));
    let started = CancellationToken::new();
    let starting = answer_while_starting(
        listener,
        phase.clone(),
        started.clone(),
        config.limits.max_line,
    );

    let db_path = database_path(&config.data_dir);
    let store = {
        let (path, cache) = (db_path.clone(), config.cache_mib);
        let data_dir = config.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            let store = Store::open_with(&path, cache)?;
            // Once the database is ours: no other daemon uses this directory.
            remove_stale_scratch(&data_dir);
            Ok::<_, StoreError>(store)
        })
        .await
        .map_err(|e| ServeError::Io {
            what: "cannot open the database",
            path: db_path.clone(),
            source: std::io::Error::other(e.to_string()),
        })??
    };
    store.set_min_free_mib(config.min_free_mib);
    *phase.lock().expect("phase") = "applying the write-ahead log".into();
    let (events, _) = broadcast::channel::<Event>(4096);
    let writer_stats = Arc::new(WriterStats::default());
    let (writer, writer_thread) = Writer::start(
        store.clone(),
        config.clock.clone(),
        events.clone(),
        writer_stats.clone(),
    )?;

    let plugin_host = PluginHost::new(Some(
        config
            .plugin_cache
            .clone()
            .unwrap_or_else(|| config.data_dir.join("plugin-cache")),
    ))
    .map_err(|message| ServeError::Io {
        what: "cannot start the plugin host",
        path: config.data_dir.clone(),
        source: std::io::Error::other(message),
    })?;
    if let Some(worker) = &config.compile_worker {
        plugin_host.compile_in(worker.clone());
    }
    {
        let events = events.clone();
        plugin_host.on_failure(move |f| {
            let _ = events.send(Event::PluginFailed {
                plugin: f.plugin.clone(),
                kind: f.kind.to_string(),
                message: f.message.clone(),
                hint: None,
            });
        });
    }
    *phase.lock().expect("phase") = "loading the process and compiling its plugins".into();
    let (active, startup_error) =
        load_initial_process(&config, &store, &writer, &plugin_host).await?;
    tracing::info!(
        process = %active.process.name,
        version = active.version,
        stages = active.process.stages.len(),
        "process loaded"
    );

    started.cancel();
    let listener = starting.await.map_err(|e| ServeError::Io {
        what: "cannot take over the socket",
        path: config.socket.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    tracing::info!(socket = %config.socket.display(), database = %db_path.display(), "listening");

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let ahead = Arc::new(
        crate::ahead::AheadPool::new(cores).map_err(|source| ServeError::Io {
            what: "cannot start the plugin threads",
            path: config.data_dir.clone(),
            source,
        })?,
    );
    let ctx = Arc::new(Ctx {
        ahead,
        store,
        writer,
        process: Arc::new(std::sync::RwLock::new(Arc::new(active))),
        plugin_host,
        process_path: config.process_path.clone(),
        max_process_file: config.max_process_mib << 20,
        last_process_error: Mutex::new(startup_error),
        clock: config.clock.clone(),
        events,
        writer_stats,
        started_at: config.clock.now(),
        socket: config.socket.clone(),
        data_dir: config.data_dir.clone(),
        connections: Default::default(),
        reload_lock: tokio::sync::Mutex::new(()),
        import: Mutex::new(None),
        import_sessions: Default::default(),
        import_limits: stagecoach_core::writer::session::SessionLimits {
            idle: config.limits.import_idle,
            longest: config.limits.import_max,
        },
    });

    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    if config.watch {
        tracker.spawn(crate::live::watch_process(ctx.clone(), token.clone()));
    }
    tracker.spawn(trim_memory(token.clone()));
    if !ctx.active().plugins.unavailable.is_empty() {
        // Large plugins not compiled yet: the daemon serves meanwhile
        // (their criteria unmet, saying why), then swaps them in and
        // evaluates open prospects again.
        let ctx = ctx.clone();
        tokio::spawn(async move { crate::live::reload_plugins(&ctx).await });
    }
    {
        let active = ctx.process.read().expect("process").clone();
        crate::notify::ready(&active.process.name, active.version);
    }
    if let Some(every) = crate::notify::watchdog_interval() {
        let token = token.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tick.tick() => crate::notify::watchdog(),
                }
            }
        });
    }
    // A descriptor kept in reserve: when the daemon runs out, it is given
    // up to accept the connection waiting, tell the client, and close it.
    let mut reserve = std::fs::File::open("/dev/null").ok();
    let mut shed: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let ctx = ctx.clone();
                    let token = token.clone();
                    let limits = config.limits.clone();
                    tracker.spawn(async move { connection(ctx, stream, token, limits).await });
                }
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MFILE.raw_os_error()) => {
                    shed_one(&listener, &mut reserve, &mut shed).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
    crate::notify::stopping();
    drop(listener);
    token.cancel();
    tracker.close();
    tracker.wait().await;
    drop(ctx);
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    bound.remove();
    tracing::info!("stopped");
    Ok(())
}

/// Raises the soft limit on open descriptors to the hard one (each client
/// is one), saying what it is.
fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    let now = getrlimit(Resource::Nofile);
    tracing::debug!(soft = ?now.current, hard = ?now.maximum, "open-file limit");
}

/// Out of descriptors: accepts the waiting connection with the reserve
/// one, answers it -32006 and closes it, then takes the reserve back. Logs
/// the first time and every 1000th, not every connection.
async fn shed_one(listener: &UnixListener, reserve: &mut Option<std::fs::File>, shed: &mut u64) {
    *shed += 1;
    if *shed == 1 || (*shed).is_multiple_of(1000) {
        tracing::warn!(
            refused = *shed,
            "out of file descriptors: refusing connections with -32006 (raise `ulimit -n` or lower --max-connections)"
        );
    }
    drop(reserve.take());
    if let Ok(Ok((mut stream, _))) =
        tokio::time::timeout(Duration::from_millis(100), listener.accept()).await
    {
        let e = RpcError::new(
            UNAVAILABLE,
            "the daemon is out of file descriptors; try again later",
        );
        let mut line = protocol::err(Value::Null, e).to_string();
        line.push('\n');
        let _ = tokio::time::timeout(
            Duration::from_millis(100),
            stream.write_all(line.as_bytes()),
        )
        .await;
    }
    *reserve = std::fs::File::open("/dev/null").ok();
    if reserve.is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The socket file this daemon bound: removed when the daemon stops or
/// fails to start, if it is still ours.
struct Bound {
    path: PathBuf,
    ino: Option<u64>,
    armed: bool,
}

impl Bound {
    fn remove(&mut self) {
        if self.armed
            && let Ok(meta) = std::fs::metadata(&self.path)
            && Some(meta.ino()) == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
        self.armed = false;
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        self.remove();
    }
}

/// How long a connection accepted while starting is still answered once
/// the daemon serves.
const HANDOVER_GRACE: Duration = Duration::from_millis(500);

/// Until `started` is cancelled, answers every request on `listener` with
/// -32006 naming what the daemon is doing (`phase`); then hands the
/// listener back, and closes those connections [`HANDOVER_GRACE`] later
/// (what they send meanwhile is answered -32006 too).
fn answer_while_starting(
    listener: UnixListener,
    phase: Arc<Mutex<String>>,
    started: CancellationToken,
    max_line: usize,
) -> tokio::task::JoinHandle<UnixListener> {
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = started.cancelled() => return listener,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let (phase, started) = (phase.clone(), started.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = FramedRead::new(read, line_codec(max_line));
                // Once the daemon serves, a connection accepted here is not
                // dropped unanswered (its client would meet a broken pipe):
                // what it sends within a moment is answered -32006 like the
                // rest, then it is closed, and the client connects again.
                let mut grace: Option<tokio::time::Instant> = None;
                loop {
                    let line = match grace {
                        None => tokio::select! {
                            _ = started.cancelled() => {
                                grace = Some(tokio::time::Instant::now() + HANDOVER_GRACE);
                                continue;
                            }
                            line = lines.next() => line,
                        },
                        Some(until) => match tokio::time::timeout_at(until, lines.next()).await {
                            Ok(line) => line,
                            Err(_) => return,
                        },
                    };
                    let id = match line {
                        None | Some(Err(AnyDelimiterCodecError::Io(_))) => return,
                        Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => Value::Null,
                        Some(Ok(bytes)) => serde_json::from_slice::<Value>(&bytes)
                            .ok()
                            .and_then(|v| v.get("id").cloned())
                            .unwrap_or(Value::Null),
                    };
                    let what = phase.lock().expect("phase").clone();
                    let e = RpcError::new(UNAVAILABLE, format!("the daemon is starting: {what}"))
                        .with_data(protocol::ErrorData {
                        hint: Some(
                            "try again in a moment; `stagecoach status` answers once it listens"
                                .into(),
                        ),
                        ..protocol::ErrorData::default()
                    });
                    let mut reply = protocol::err(id, e).to_string();
                    reply.push('\n');
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

fn create_private_dir(dir: &Path) -> Result<(), ServeError> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("cannot create directory", dir))
}

/// Refuses a socket another daemon answers on; removes a stale one.
fn check_socket_free(path: &Path) -> Result<(), ServeError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("cannot inspect socket", path)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ServeError::NotASocket(path.to_path_buf()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ServeError::AlreadyServing(path.to_path_buf())),
        Err(_) => {
            tracing::info!(socket = %path.display(), "removing stale socket");
            std::fs::remove_file(path).map_err(io_err("cannot remove stale socket", path))
        }
    }
}

/// Reads the process file and loads its plugins. A bad file (or a bad
/// plugin) falls back to the newest stored version, so a typo never keeps
/// the team's data offline.
async fn load_initial_process(
    config: &ServeConfig,
    store: &Store,
    writer: &Writer,
    host: &Arc<PluginHost>,
) -> Result<(ActiveProcess, Option<InvalidProcess>), ServeError> {
    let file_name = config.process_path.display().to_string();
    let stored = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.process_versions())
            .await
            .expect("reading process versions")?
    };
    let previous: Option<ActiveProcess> = match stored.last() {
        None => None,
        Some(v) => {
            let process =
                stagecoach_core::process::parse(&v.text, &v.path).map_err(ServeError::Process)?;
            let plugins =
                match load_plugin_set(host, &process, &config.process_path, None, Loading::Start) {
                    Ok(set) => set,
                    Err(e) => {
                        tracing::error!(
                            version = v.number,
                            "plugins of the stored process version do not load:\n{e}"
                        );
                        Default::default()
                    }
                };
            Some(ActiveProcess {
                version: v.number,
                hash: v.hash.clone(),
                text: v.text.clone(),
                loaded_at: v.loaded_at,
                process,
                plugins: Arc::new(plugins),
            })
        }
    };
    let candidate =
        match crate::files::read_text(&config.process_path, config.max_process_mib << 20) {
            Err(message) if previous.is_none() => {
                return Err(ServeError::ProcessRead {
                    path: config.process_path.clone(),
                    source: std::io::Error::other(message),
                });
            }
            Err(message) => Err(whole_file_error(&file_name, message, None)),
            Ok(text) => stagecoach_core::process::parse(&text, &file_name).and_then(|process| {
                // Only a version already in force may start with plugins
                // still compiling (a restart after the compile cache was
                // emptied, or with a new daemon build): a new edit's
                // plugins must load before it replaces a good version.
                let restart = previous
                    .as_ref()
                    .is_some_and(|p| p.hash == content_hash(&text));
                let loading = if restart {
                    Loading::Start
                } else {
                    Loading::Now
                };
                let plugins = load_plugin_set(host, &process, &config.process_path, None, loading)?;
                Ok((text, process, plugins))
            }),
        };
    let (text, process, plugins) = match candidate {
        Ok(c) => c,
        Err(invalid) => {
            let Some(previous) = previous else {
                return Err(ServeError::Process(invalid));
            };
            tracing::error!(
                version = previous.version,
                "process file refused; serving the last stored version:\n{invalid}"
            );
            return Ok((previous, Some(invalid)));
        }
    };
    let hash = content_hash(&text);
    if let Some(p) = previous.as_ref().filter(|p| p.hash == hash) {
        return Ok((
            ActiveProcess {
                version: p.version,
                hash,
                text,
                loaded_at: p.loaded_at,
                process,
                plugins: Arc::new(plugins),
            },
            None,
        ));
    }
    let at = config.clock.now();
    let previous = previous.map(Arc::new);
    let stamp = previous.clone().unwrap_or_else(|| {
        Arc::new(ActiveProcess {
            version: 0,
            hash: hash.clone(),
            text: String::new(),
            loaded_at: at,
            process: process.clone(),
            plugins: Default::default(),
        })
    });
    let op = WriteOp::ApplyProcessVersion(Box::new(NewVersion {
        text: text.clone(),
        hash: hash.clone(),
        path: file_name.clone(),
        at,
        process: process.clone(),
        previous: previous.clone(),
    }));
    match writer.write(stamp, op).await {
        Ok(result) => Ok((
            ActiveProcess {
                version: result.version_applied().version,
                hash,
                text,
                loaded_at: at,
                process,
                plugins: Arc::new(plugins),
            },
            None,
        )),
        Err(WriteError::Refused(e)) => {
            let previous = previous.expect("only a stored version holds prospects");
            let invalid = whole_file_error(&file_name, e.to_string(), e.hint());
            tracing::error!(
                version = previous.version,
                "process file refused; serving the last stored version:\n{invalid}"
            );
            let previous = Arc::try_unwrap(previous).unwrap_or_else(|arc| ActiveProcess {
                version: arc.version,
                hash: arc.hash.clone(),
                text: arc.text.clone(),
                loaded_at: arc.loaded_at,
                process: arc.process.clone(),
                plugins: arc.plugins.clone(),
            });
            Ok((previous, Some(invalid)))
        }
        Err(e) => Err(ServeError::Write(e)),
    }
}

/// Lines of bytes, at most `max_line` long: UTF-8 is checked per line, so
/// a bad line is answered, not the end of the connection.
fn line_codec(max_line: usize) -> AnyDelimiterCodec {
    AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), b"\n".to_vec(), max_line)
}

/// A request line, parsed.
enum Incoming {
    /// As JSON: a request, or anything else (refused later).
    Json(Value),
    /// A lone request whose `params` object is already parsed into its
    /// method's parameter type ([`parse_large`]).
    Lone {
        /// The request without its `params`.
        envelope: Value,
        params: Box<dyn std::any::Any + Send>,
        /// `params` is `{}`.
        empty: bool,
    },
    /// A batch: its requests.
    Batch(Vec<Incoming>),
}

/// A request's members, each as its JSON text.
type Members = std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>;

/// A large line, off the runtime. The requests of a lone request or a
/// batch have their `params` parsed straight into their methods' types:
/// parsing them into a `Value` and then, on the connection's task, into
/// the type was a third of the daemon's CPU in an import, and held up
/// reading the next line. A line that does not parse that way whole, as
/// it would into a `Value` (bad JSON, bad parameters, anything else), is
/// parsed as [`parse_line`] does, and answered as it always was.
fn parse_large(bytes: &[u8]) -> Result<Incoming, RpcError> {
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    let typed_line = match text.trim_start().as_bytes().first() {
        Some(b'{') => serde_json::from_str::<Members>(text)
            .ok()
            .and_then(|members| typed(members, 1)),
        Some(b'[') => serde_json::from_str::<Vec<Members>>(text)
            .ok()
            .filter(|all| !all.is_empty())
            .and_then(|all| {
                all.into_iter()
                    .map(|members| typed(members, 2))
                    .collect::<Option<Vec<_>>>()
            })
            .map(Incoming::Batch),
        _ => None,
    };
    match typed_line {
        Some(incoming) => Ok(incoming),
        None => parse_line(bytes).map(Incoming::Json),
    }
}

/// One request of [`parse_large`], `levels` deep in its line: its
/// `params` parsed by its method when it names one and they are an
/// object. `None` when a member does not parse as it would into a `Value`.
fn typed(mut members: Members, levels: usize) -> Option<Incoming> {
    let entry = members
        .get("method")
        .and_then(|m| serde_json::from_str::<&str>(m.get()).ok())
        .and_then(crate::rpc::method);
    let raw = members.remove("params");
    let lone = match (entry, raw) {
        (Some(entry), Some(raw)) if raw.get().trim_start().starts_with('{') => {
            let empty = raw
                .get()
                .bytes()
                .filter(|b| !b.is_ascii_whitespace())
                .count()
                == 2;
            Some(((entry.parse)(raw.get(), levels)?, empty))
        }
        (_, raw) => {
            if let Some(raw) = raw {
                members.insert("params".into(), raw);
            }
            None
        }
    };
    // The members the map holds are JSON as far as it checks, not as far as
    // a `Value` does (numbers out of range, lone surrogates).
    let envelope = Value::Object(
        members
            .into_iter()
            .map(|(k, v)| serde_json::from_str(v.get()).ok().map(|v| (k, v)))
            .collect::<Option<_>>()?,
    );
    Some(match lone {
        Some((params, empty)) => Incoming::Lone {
            envelope,
            params,
            empty,
        },
        None => Incoming::Json(envelope),
    })
}

/// One line as JSON: `-32700` for bytes that are not UTF-8 or not JSON.
fn parse_line(bytes: &[u8]) -> Result<Value, RpcError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        RpcError::new(
            PARSE_ERROR,
            format!(
                "parse error: the line is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    serde_json::from_str(text).map_err(|e| RpcError::new(PARSE_ERROR, format!("parse error: {e}")))
}

/// The bytes a connection holds for its client: requests read but not yet
/// answered, and answers and notifications not yet written to it.
struct Held {
    bytes: AtomicUsize,
    peak: AtomicUsize,
    limit: usize,
    room: Notify,
}

impl Held {
    fn new(limit: usize) -> Held {
        Held {
            bytes: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limit,
            room: Notify::new(),
        }
    }

    fn take(&self, n: usize) {
        let now = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn give(&self, n: usize) {
        let before = self.bytes.fetch_sub(n, Ordering::Relaxed);
        if before >= self.limit && before - n < self.limit {
            self.room.notify_waiters();
        }
    }

    fn now(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Counts `n` bytes until the returned charge is dropped.
    fn charge(self: &Arc<Held>, n: usize) -> Charge {
        self.take(n);
        Charge {
            held: self.clone(),
            bytes: n,
        }
    }

    /// Resolves once the connection holds less than its limit.
    async fn room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.now() < self.limit {
                return;
            }
            notified.await;
        }
    }
}

/// Bytes a request holds while it is in flight: given back when dropped,
/// on every path (answered, refused, or the connection ending).
struct Charge {
    held: Arc<Held>,
    bytes: usize,
}

impl Charge {
    fn add(&mut self, n: usize) {
        self.held.take(n);
        self.bytes += n;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.held.give(self.bytes);
    }
}

/// The way out to one client: lines for its output task, counted in what
/// the connection holds until they are written.
#[derive(Clone)]
struct Out {
    tx: mpsc::UnboundedSender<String>,
    held: Arc<Held>,
}

impl Out {
    /// Queues an answer. Answers are never dropped: the limit pauses
    /// reading instead, so at most the requests in flight answer past it.
    fn answer(&self, line: String) {
        self.held.take(line.len() + 1);
        let _ = self.tx.send(line);
    }

    /// Queues a notification if it fits within the limit; `false` if the
    /// client has left it unread so long that it does not.
    fn notify(&self, line: String) -> bool {
        if self.held.now() + line.len() + 1 > self.held.limit {
            return false;
        }
        self.answer(line);
        true
    }
}

/// Serves one client until it disconnects, idles out or the daemon stops.
async fn connection(ctx: Arc<Ctx>, stream: UnixStream, token: CancellationToken, limits: Limits) {
    let open = ctx.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let _guard = ConnectionGuard(ctx.clone());
    let (read_half, mut write_half) = stream.into_split();

    if open > limits.max_connections {
        tracing::warn!(
            open,
            limit = limits.max_connections,
            "connection refused: too many connections"
        );
        let message = format!("too many connections (limit {})", limits.max_connections);
        refuse(&mut write_half, message).await;
        return;
    }
    let peer = write_half.as_ref().peer_cred().map(|c| c.uid());
    let me = rustix::process::getuid().as_raw();
    if peer.as_ref().ok() != Some(&me) {
        tracing::warn!(peer = ?peer, "connection refused: peer is another user");
        refuse(
            &mut write_half,
            "access refused: the daemon serves only its own user".into(),
        )
        .await;
        return;
    }

    let held = Arc::new(Held::new(limits.max_queued));
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let out = Out {
        tx: out_tx,
        held: held.clone(),
    };
    let conn_token = token.child_token();
    let output = {
        let held = held.clone();
        // A client gone (or its socket broken) ends the connection, even
        // while it waits for room to read.
        let gone = conn_token.clone();
        tokio::spawn(async move {
            let mut w = tokio::io::BufWriter::new(write_half);
            while let Some(line) = out_rx.recv().await {
                let written = w.write_all(line.as_bytes()).await.is_ok()
                    && w.write_all(b"\n").await.is_ok()
                    // Flush once nothing else is ready, so a burst of answers shares a write.
                    && (!out_rx.is_empty() || w.flush().await.is_ok());
                if !written {
                    gone.cancel();
                    return;
                }
                held.give(line.len() + 1);
            }
            let _ = w.flush().await;
            let _ = w.shutdown().await;
        })
    };

    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    let mut session = Session::new(out.clone(), conn_token.clone());
    let mut lines = FramedRead::new(read_half, line_codec(limits.max_line));
    loop {
        // Holding its limit, the connection reads nothing more until the
        // client takes its answers (or, after the idle time, is closed).
        if held.now() >= held.limit {
            let waited = tokio::select! {
                _ = conn_token.cancelled() => break,
                waited = tokio::time::timeout(limits.idle_timeout, held.room()) => waited,
            };
            if waited.is_err() {
                tracing::info!(
                    held = held.now(),
                    "closing a connection whose client has not read its answers within the idle time"
                );
                break;
            }
        }
        let next = tokio::select! {
            _ = conn_token.cancelled() => break,
            next = tokio::time::timeout(limits.idle_timeout, lines.next()) => next,
        };
        let line = match next {
            Err(_) => {
                let busy = in_flight.available_permits() < limits.max_in_flight;
                if session.subscribed || busy {
                    continue;
                }
                tracing::debug!("closing idle connection");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded))) => {
                let e = RpcError::new(
                    INVALID_REQUEST,
                    format!(
                        "request line longer than {} bytes; connection closed",
                        limits.max_line
                    ),
                );
                tracing::info!(limit = limits.max_line, "request rejected: line too long");
                out.answer(protocol::err(Value::Null, e).to_string());
                break;
            }
            Ok(Some(Err(AnyDelimiterCodecError::Io(e)))) => {
                tracing::debug!(error = %e, "connection read failed");
                break;
            }
            Ok(Some(Ok(line))) => line,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let size = line.len();
        let mut charge = held.charge(size);
        let permit = tokio::select! {
            _ = conn_token.cancelled() => break,
            permit = in_flight.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let parsed = if size > PARSE_OFF_RUNTIME {
            tokio::task::spawn_blocking(move || parse_large(&line))
                .await
                .unwrap_or_else(|e| Err(RpcError::new(PARSE_ERROR, format!("parse error: {e}"))))
        } else {
            parse_line(&line).map(Incoming::Json)
        };
        let value = match parsed {
            Ok(Incoming::Json(Value::Array(items))) => {
                Incoming::Batch(items.into_iter().map(Incoming::Json).collect())
            }
            Ok(v) => v,
            Err(e) => {
                session.rejected.fetch_add(1, Ordering::Relaxed);
                out.answer(protocol::err(Value::Null, e).to_string());
                continue;
            }
        };
        match value {
            Incoming::Batch(items) if items.is_empty() || items.len() > limits.max_batch => {
                let e = if items.is_empty() {
                    RpcError::new(INVALID_REQUEST, "empty batch")
                } else {
                    tracing::info!(
                        items = items.len(),
                        limit = limits.max_batch,
                        "batch refused: too many requests"
                    );
                    RpcError::new(
                        INVALID_REQUEST,
                        format!(
                            "a batch of {} requests is over the limit of {}; nothing of it was done (send smaller batches)",
                            items.len(),
                            limits.max_batch
                        ),
                    )
                };
                session.rejected.fetch_add(1, Ordering::Relaxed);
                out.answer(protocol::err(Value::Null, e).to_string());
            }
            Incoming::Batch(items) => {
                charge.add(items.len() * REQUEST_OVERHEAD);
                let pending: Vec<_> = items
                    .into_iter()
                    .map(|item| start(&ctx, item, &mut session))
                    .collect();
                let out = out.clone();
                tokio::spawn(async move {
                    let answers: Vec<Value> = futures_util::future::join_all(pending)
                        .await
                        .into_iter()
                        .flatten()
                        .collect();
                    if !answers.is_empty() {
                        out.answer(Value::Array(answers).to_string());
                    }
                    drop((charge, permit));
                });
            }
            single => {
                charge.add(REQUEST_OVERHEAD);
                let pending = start(&ctx, single, &mut session);
                let out = out.clone();
                tokio::spawn(async move {
                    if let Some(answer) = pending.await {
                        out.answer(answer.to_string());
                    }
                    drop((charge, permit));
                });
            }
        }
    }
    let rejected = session.rejected.load(Ordering::Relaxed);
    if rejected > 0 {
        tracing::info!(
            rejected,
            "connection closed; some of its requests were answered with an error"
        );
    }
    let dropped = session.dropped.load(Ordering::Relaxed);
    let import_begun = session.import_begun.clone();
    // The session's sender too: the output task ends once every answer
    // already started has been handed to it.
    drop(session);
    if dropped {
        // A subscriber that does not read: what it was sent goes now.
        output.abort();
        conn_token.cancel();
        drop(out);
        release_memory(&held);
        crate::rpc::give_up_import(&ctx, import_begun.load(Ordering::Relaxed));
        return;
    }
    // Answer everything already started before closing, but do not let a
    // client that stopped reading hold the daemon hostage.
    let finish = async {
        let _ = in_flight.acquire_many(limits.max_in_flight as u32).await;
        conn_token.cancel();
        drop(out);
    };
    let abort = output.abort_handle();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        finish.await;
        let _ = output.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("client did not read its answers within {SHUTDOWN_GRACE:?}; closing");
        abort.abort();
    }
    conn_token.cancel();
    release_memory(&held);
    // After its requests are answered: an `import.commit` in flight ends
    // the session first.
    crate::rpc::give_up_import(&ctx, import_begun.load(Ordering::Relaxed));
}

/// After a connection that held a MiB or more, asks for the freed
/// heap to be handed back to the system (glibc keeps it otherwise).
fn release_memory(held: &Held) {
    if held.peak.load(Ordering::Relaxed) >= 1 << 20 {
        // Twice: now, and once the blocking threads that served it have
        // gone idle and returned their caches.
        TRIMS_WANTED.store(2, Ordering::Relaxed);
    }
}

/// Trims still wanted by [`release_memory`].
static TRIMS_WANTED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// How often [`trim_memory`] looks for trims wanted.
const TRIM_EVERY: Duration = Duration::from_secs(6);

/// Hands freed heap back to the system when a connection that held a lot
/// has gone, off the runtime's threads. This is glibc's heap: the
/// `stagecoach` binary allocates with mimalloc, which returns freed memory
/// by itself (at once, as the binary sets it up), so there it only
/// concerns what C code took from glibc; a server built into another
/// program on the system allocator gets the whole of it.
async fn trim_memory(token: CancellationToken) {
    let mut tick = tokio::time::interval(TRIM_EVERY);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let wanted = TRIMS_WANTED.load(Ordering::Relaxed);
        if wanted == 0 {
            continue;
        }
        TRIMS_WANTED.store(wanted - 1, Ordering::Relaxed);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        #[allow(unsafe_code)]
        let _ = tokio::task::spawn_blocking(|| {
            // SAFETY: `malloc_trim` only returns free heap pages to the kernel.
            unsafe { libc::malloc_trim(0) };
        })
        .await;
    }
}

async fn refuse(w: &mut tokio::net::unix::OwnedWriteHalf, message: String) {
    let line = protocol::err(Value::Null, RpcError::new(UNAVAILABLE, message)).to_string() + "\n";
    let _ = w.write_all(line.as_bytes()).await;
    let _ = w.shutdown().await;
}

struct ConnectionGuard(Arc<Ctx>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one connection remembers between its requests.
struct Session {
    subscribed: bool,
    out: Out,
    token: CancellationToken,
    /// Requests refused (logged once, when the connection closes).
    rejected: Arc<AtomicU64>,
    /// Disconnected for not reading its notifications.
    dropped: Arc<AtomicBool>,
    /// Writes started on this connection, numbered from 1.
    writes_started: u64,
    /// The highest write number answered: a request waits for every write
    /// sent before it on the same connection, so it sees their effects.
    writes_done: Arc<tokio::sync::watch::Sender<u64>>,
    /// The highest write number handed to the writer: writes reach it in
    /// the order they arrived.
    writes_submitted: Arc<tokio::sync::watch::Sender<u64>>,
    /// The import session this connection began last (0: none): given up
    /// when the connection closes, if still open, so that a client gone
    /// mid-import does not hold the other writes until its idle time.
    import_begun: Arc<AtomicU64>,
}

impl Session {
    fn new(out: Out, token: CancellationToken) -> Session {
        Session {
            subscribed: false,
            out,
            token,
            rejected: Arc::default(),
            dropped: Arc::default(),
            writes_started: 0,
            writes_done: Arc::new(tokio::sync::watch::channel(0).0),
            writes_submitted: Arc::new(tokio::sync::watch::channel(0).0),
            import_begun: Arc::default(),
        }
    }
}

/// Starts one request; resolves to its answer (none for notifications).
fn start(
    ctx: &Arc<Ctx>,
    incoming: Incoming,
    session: &mut Session,
) -> std::pin::Pin<Box<dyn Future<Output = Option<Value>> + Send>> {
    let (value, typed) = match incoming {
        Incoming::Json(v) => (v, None),
        // Batches are taken apart before this; one inside another is not
        // a request.
        Incoming::Batch(_) => (Value::Array(Vec::new()), None),
        Incoming::Lone {
            envelope,
            params,
            empty,
        } => (envelope, Some((params, empty))),
    };
    let request = match protocol::parse_request(value) {
        Ok(r) => r,
        Err((id, e)) => {
            tracing::debug!(code = e.code, message = %e.message, "request rejected");
            session.rejected.fetch_add(1, Ordering::Relaxed);
            return Box::pin(std::future::ready(Some(protocol::err(id, e))));
        }
    };
    let started = Instant::now();
    let method = request.method;
    let id = request.id;
    let entry = crate::rpc::method(&method);
    // Subscribing takes no parameters: with any, the method answers -32602
    // and the connection is not subscribed.
    let no_params = match &typed {
        Some((_, empty)) => *empty,
        None => request.params.as_object().is_some_and(|o| o.is_empty()),
    };
    let params = match typed {
        Some((parsed, _)) => crate::rpc::Params::Typed(parsed),
        None => crate::rpc::Params::Json(request.params),
    };
    if entry.is_some_and(|m| m.subscribes) && no_params && !session.subscribed {
        session.subscribed = true;
        forward_events(
            ctx.events.subscribe(),
            session.out.clone(),
            session.token.clone(),
            session.dropped.clone(),
        );
    }
    let done = session.writes_done.clone();
    let reply = if entry.is_some_and(|m| m.writes) {
        // Writes reach the writer in arrival order (the writer keeps it).
        session.writes_started += 1;
        let number = session.writes_started;
        let gate = crate::context::WriteGate {
            number,
            submitted: session.writes_submitted.clone(),
            done: done.clone(),
        };
        let reply = crate::context::gated(gate, || dispatch(ctx, entry, &method, params));
        Box::pin(async move {
            let result = reply.await;
            done.send_modify(|d| *d = (*d).max(number));
            result
        }) as crate::rpc::Reply
    } else if *done.borrow() >= session.writes_started {
        dispatch(ctx, entry, &method, params)
    } else {
        // A read after a write still in flight: start it once that write
        // (and every earlier one) is answered.
        let after = session.writes_started;
        let mut rx = done.subscribe();
        let ctx = ctx.clone();
        let name = method.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|d| *d >= after).await;
            dispatch(&ctx, entry, &name, params).await
        })
    };
    let rejected = session.rejected.clone();
    let begun = (method
        == <stagecoach_types::api::methods::ImportBegin as stagecoach_types::api::Method>::NAME)
        .then(|| session.import_begun.clone());
    Box::pin(async move {
        let result = reply.await;
        if let (Some(begun), Ok(answer)) = (begun, &result)
            && let Some(number) = answer.get("session").and_then(Value::as_u64)
        {
            begun.store(number, Ordering::Relaxed);
        }
        let micros = started.elapsed().as_micros() as u64;
        match &result {
            Ok(_) => tracing::debug!(%method, micros, "ok"),
            Err(e) => {
                rejected.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%method, micros, code = e.code, message = %e.message, "request rejected");
            }
        }
        let id = id?;
        Some(match result {
            Ok(v) => protocol::ok(id, v),
            Err(e) => protocol::err(id, e),
        })
    })
}

/// Sends each event to a subscriber; one that leaves more than its limit
/// unread is disconnected (the events it missed are its to re-read).
fn forward_events(
    mut rx: broadcast::Receiver<Event>,
    out: Out,
    token: CancellationToken,
    dropped: Arc<AtomicBool>,
) {
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = token.cancelled() => return,
                e = rx.recv() => e,
            };
            let line = match event {
                Ok(e) => e.notification(),
                Err(broadcast::error::RecvError::Lagged(missed)) => Event::EventsLagged {
                    missed,
                    hint: "the client read too slowly; re-read state with prospect.get".into(),
                }
                .notification(),
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if !out.notify(line.to_string()) {
                tracing::warn!(
                    held = out.held.now(),
                    limit = out.held.limit,
                    "disconnecting a subscriber that does not read its notifications"
                );
                dropped.store(true, Ordering::Relaxed);
                token.cancel();
                return;
            }
        }
    });
}
