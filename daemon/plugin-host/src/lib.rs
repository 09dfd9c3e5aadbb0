//! The plugin host: sandboxed WebAssembly components (wasmtime, component
//! model) for exit criteria, methodology checklists and metrics.
//!
//! - The interface is `plugin-sdk/wit/` (0.4.0, packed inputs), read by
//!   the Python and TypeScript SDKs and [`bindings`] here; plugins built for
//!   0.3.0 (`plugin-sdk/wit-0.3.0/`, records: the Rust SDK) run unchanged.
//!   Plugins import only `host.log`; no WASI.
//! - Each plugin is compiled once per content hash and cached on disk
//!   (`DATA_DIR/plugin-cache/`), pre-instantiated with the
//!   pooling allocator, and every call gets a fresh store and instance
//!   (`InstancePre` from wasmtime).
//! - Limits per call: fuel, memory (a [`ResourceLimiter`]), a wall-clock
//!   deadline (epoch interruption), and input and output size. A trap, an
//!   exhausted limit or invalid output *fails closed*: the caller gets a
//!   [`PluginFailure`] to turn into an unmet criterion, the failure is
//!   counted, logged, and pushed to subscribers as `plugin.failed`.

mod input;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Func, HasSelf, Instance, InstancePre,
    Lift, Linker, Lower, TypedFunc,
};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap,
};

pub use input::{CallInput, MetricData};

/// Generated from the WIT of each interface version the daemon runs
/// (documented there).
#[allow(missing_docs)]
pub mod bindings {
    /// 0.4.0, `plugin-sdk/wit/`: inputs packed into bytes.
    pub mod v0_4 {
        wasmtime::component::bindgen!({
            path: "../../plugin-sdk/wit",
            world: "stagecoach-plugin",
            // Inputs borrow the daemon's buffers (see `input`).
            ownership: Borrowing {
                duplicate_if_necessary: false
            },
            // `log-byte` traps a call that logs more than its `max_log_kib`.
            imports: { default: trappable },
        });
    }
    /// 0.3.0, `plugin-sdk/wit-0.3.0/`: inputs as records.
    pub mod v0_3 {
        wasmtime::component::bindgen!({
            path: "../../plugin-sdk/wit-0.3.0",
            world: "stagecoach-plugin",
            ownership: Borrowing {
                duplicate_if_necessary: false
            },
            imports: { default: trappable },
        });
    }
}

use bindings::v0_3::stagecoach::plugin::host::Level;
use bindings::v0_3::stagecoach::plugin::types as wit;
use bindings::v0_4::stagecoach::plugin::types as wit4;

/// The newest interface this daemon speaks: what `plugins build` builds
/// Python and TypeScript plugins for.
pub const INTERFACE: &str = "stagecoach:plugin/plugin@0.4.0";
/// Its version number.
pub const INTERFACE_VERSION: &str = "0.4.0";

/// An interface version the daemon runs plugins of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// Inputs packed into bytes (the Python and TypeScript SDKs).
    V0_4,
    /// Inputs as records (the Rust SDK). Kept working, not refused, so a
    /// plugin built last season runs unchanged.
    V0_3,
}

impl Interface {
    /// Every version the daemon runs, newest first.
    pub const ALL: [Interface; 2] = [Interface::V0_4, Interface::V0_3];

    /// The version number (`0.4.0`).
    pub fn version(self) -> &'static str {
        match self {
            Interface::V0_4 => "0.4.0",
            Interface::V0_3 => "0.3.0",
        }
    }

    /// The name of the exported interface.
    fn export(self) -> &'static str {
        match self {
            Interface::V0_4 => INTERFACE,
            Interface::V0_3 => "stagecoach:plugin/plugin@0.3.0",
        }
    }

    /// The versions, for messages: `0.4.0 and 0.3.0`.
    fn all_versions() -> String {
        Interface::ALL
            .iter()
            .map(|i| i.version())
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// Linear memories one plugin may have (a Rust, C or JS component has one;
/// interpreters linked from several modules a few): no plugin can take the
/// pool's slots from the others.
pub const MAX_MEMORIES: u32 = 4;
/// Tables one plugin may have.
pub const MAX_TABLES: u32 = 16;
/// Core instances one plugin may have.
pub const MAX_CORE_INSTANCES: u32 = 64;

/// How often the epoch advances: the resolution of wall-clock deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(1);
pub use stagecoach_types::api::results::MAX_MEMORY_MIB;

pub use stagecoach_types::api::results::{Capability, Limits, PluginInfo, Runtime};

/// The custom section naming a component's runtime (`python`, `quickjs`),
/// written by `stagecoach plugins build`.
pub const RUNTIME_SECTION: &str = "stagecoach:runtime";

/// The runtime a component says it carries (compiled when it says none).
/// Only the component's own top-level sections are looked at, each skipped
/// by its size: its modules (CPython is most of 18 MiB) are not parsed.
pub fn runtime_of(bytes: &[u8]) -> Runtime {
    fn scan(bytes: &[u8]) -> wasmparser::Result<Option<Runtime>> {
        let mut r = wasmparser::BinaryReader::new(bytes, 0);
        r.read_bytes(8)?; // magic and version
        while !r.eof() {
            let id = r.read_u8()?;
            let size = r.read_var_u32()? as usize;
            let body = r.read_bytes(size)?;
            if id == 0 {
                let mut custom = wasmparser::BinaryReader::new(body, 0);
                if custom.read_string()? == RUNTIME_SECTION {
                    let data = custom.read_bytes(custom.bytes_remaining())?;
                    return Ok(Some(Runtime::from_section(data)));
                }
            }
        }
        Ok(None)
    }
    scan(bytes).ok().flatten().unwrap_or(Runtime::Compiled)
}

/// Why a plugin could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{name}` ({path}): {message}{}", hint.as_ref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
pub struct LoadError {
    /// The plugin's name in `process.toml`.
    pub name: String,
    /// Its file.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it, where one helps.
    pub hint: Option<String>,
}

/// A reason a file is refused, before the plugin's name is attached.
#[derive(Debug)]
struct Refusal {
    message: String,
    hint: Option<String>,
}

impl Refusal {
    fn hinted(message: impl Into<String>, hint: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal {
            message,
            hint: None,
        }
    }
}

/// Why a call failed. The criterion it served is unmet, with this as reason.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("plugin `{plugin}` failed ({kind}): {message}")]
pub struct PluginFailure {
    /// The plugin.
    pub plugin: String,
    /// `trap`, `fuel`, `timeout`, `memory`, `output`, `error`, `unavailable`.
    pub kind: &'static str,
    /// Details.
    pub message: String,
}

/// Per-call measurements, for `stagecoach plugins run` and statistics.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CallStats {
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall time, microseconds.
    pub micros: f64,
    /// Peak linear memory, bytes.
    pub peak_memory: usize,
}

/// Counters per plugin, kept across reloads of the same file.
#[derive(Debug, Default)]
pub struct Counters {
    /// Calls made.
    pub calls: AtomicU64,
    /// Calls that failed.
    pub failures: AtomicU64,
    /// Total wall time, nanoseconds.
    pub nanos: AtomicU64,
    /// Answers reused from the memo instead of calling the plugin.
    pub reused: AtomicU64,
    /// The plugin's log rate, across calls.
    log: Mutex<LogRate>,
}

/// Answers a plugin gave, by the fingerprint of the input and the call.
/// Plugins are pure (no clock, randomness or I/O), so an answer computed
/// ahead of time — on a read snapshot, off the writer — serves the writer
/// when the input it sees is the same; any difference in the input is a
/// different fingerprint, so a stale answer is never used.
#[derive(Default)]
struct Memo {
    answers: Mutex<HashMap<([u8; 32], CallKind), Answer>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CallKind {
    Evaluate,
    Checklist,
}

#[derive(Clone)]
enum Answer {
    Verdict(bool, String),
    Items(Vec<ChecklistItem>),
}

/// Answers kept per plugin; the memo starts over when it is full.
const MEMO_ENTRIES: usize = 4096;

impl Memo {
    fn get(&self, key: [u8; 32], kind: CallKind) -> Option<Answer> {
        self.answers
            .lock()
            .expect("memo")
            .get(&(key, kind))
            .cloned()
    }

    fn put(&self, key: [u8; 32], kind: CallKind, answer: Answer) {
        let mut answers = self.answers.lock().expect("memo");
        if answers.len() >= MEMO_ENTRIES {
            answers.clear();
        }
        answers.insert((key, kind), answer);
    }
}

/// A token bucket of log lines: `max_log_lines_per_second` tokens a second,
/// at most that many saved up.
#[derive(Debug, Default)]
struct LogRate {
    tokens: f64,
    last: Option<Instant>,
    /// Lines dropped since the last one that got through.
    dropped: u64,
}

impl LogRate {
    /// Whether a line may be written now; if so, how many were dropped
    /// before it.
    fn take(&mut self, per_second: u32) -> Option<u64> {
        let now = Instant::now();
        let rate = f64::from(per_second);
        self.tokens = match self.last {
            None => rate,
            Some(last) => (self.tokens + now.duration_since(last).as_secs_f64() * rate).min(rate),
        };
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Some(std::mem::take(&mut self.dropped))
        } else {
            self.dropped += 1;
            None
        }
    }
}

/// Plugin text as it goes into the daemon's log: control characters
/// (newlines, escapes) written as escapes, so a plugin cannot forge a log
/// line or drive a terminal.
pub fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// `text` cut to at most `max` bytes at a character boundary, saying so.
fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!(" … ({} more bytes cut)", total - end));
    text
}

struct HostState {
    plugin: String,
    /// The last error the plugin logged (its panic message, with the SDK's hook).
    last_error: Option<String>,
    /// The line being logged, byte by byte (at most `max_line` bytes kept).
    log_line: Vec<u8>,
    /// Bytes of the line that did not fit.
    log_line_cut: usize,
    max_line: usize,
    /// Log bytes this call may still write.
    log_budget: usize,
    /// The call tried to log beyond its budget.
    log_over: bool,
    max_log_lines_per_second: u32,
    counters: Arc<Counters>,
    max_memory: usize,
    /// Linear memory of all the instance's memories together.
    memory: usize,
    peak_memory: usize,
    memory_refused: bool,
}

impl ResourceLimiter for HostState {
    /// Called for every memory an instance creates (from 0) and every
    /// growth: the limit holds for all of a component's memories together.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.memory.saturating_sub(current) + desired;
        if after > self.max_memory {
            self.memory_refused = true;
            return Ok(false);
        }
        self.memory = after;
        self.peak_memory = self.peak_memory.max(after);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl bindings::v0_3::stagecoach::plugin::host::Host for HostState {
    fn log_byte(&mut self, b: u8) -> wasmtime::Result<()> {
        if self.log_budget == 0 {
            self.log_over = true;
            wasmtime::bail!("logged more than its `max_log_kib`");
        }
        self.log_budget -= 1;
        if self.log_line.len() < self.max_line {
            self.log_line.push(b);
        } else {
            self.log_line_cut += 1;
        }
        Ok(())
    }

    fn log_end(&mut self, level: Level) -> wasmtime::Result<()> {
        let mut message = String::from_utf8_lossy(&std::mem::take(&mut self.log_line)).into_owned();
        let cut = std::mem::take(&mut self.log_line_cut);
        if cut > 0 {
            message.push_str(&format!(" … ({cut} more bytes cut)"));
        }
        if matches!(level, Level::Error) {
            self.last_error = Some(message.clone());
        }
        let taken = self
            .counters
            .log
            .lock()
            .expect("log rate")
            .take(self.max_log_lines_per_second);
        let Some(dropped) = taken else {
            return Ok(());
        };
        let plugin = &self.plugin;
        let text = escaped(&message);
        let dropped = if dropped > 0 {
            format!(" ({dropped} earlier lines dropped: over `max_log_lines_per_second`)")
        } else {
            String::new()
        };
        match level {
            Level::Debug => tracing::debug!(plugin = %plugin, "{text}{dropped}"),
            Level::Info => tracing::info!(plugin = %plugin, "{text}{dropped}"),
            Level::Warn => tracing::warn!(plugin = %plugin, "{text}{dropped}"),
            Level::Error => tracing::error!(plugin = %plugin, "{text}{dropped}"),
        }
        Ok(())
    }
}

impl bindings::v0_3::stagecoach::plugin::types::Host for HostState {}

impl bindings::v0_4::stagecoach::plugin::host::Host for HostState {
    fn log_byte(&mut self, b: u8) -> wasmtime::Result<()> {
        bindings::v0_3::stagecoach::plugin::host::Host::log_byte(self, b)
    }

    fn log_end(
        &mut self,
        level: bindings::v0_4::stagecoach::plugin::host::Level,
    ) -> wasmtime::Result<()> {
        use bindings::v0_4::stagecoach::plugin::host::Level as L;
        let level = match level {
            L::Debug => Level::Debug,
            L::Info => Level::Info,
            L::Warn => Level::Warn,
            L::Error => Level::Error,
        };
        bindings::v0_3::stagecoach::plugin::host::Host::log_end(self, level)
    }
}

impl bindings::v0_4::stagecoach::plugin::types::Host for HostState {}

/// Called with every plugin failure.
type FailureHook = Box<dyn Fn(&PluginFailure) + Send + Sync>;

/// How a fresh instance's linear memory gets its initial contents.
///
/// Measured (`cargo bench --bench languages`, 4 December): a CPython
/// plugin writes to pages all over its heap (13 MiB for `icp-fit-py`) in
/// every call (reference counts), far more separate runs of pages than
/// wasmtime's reset restores one by one (32), so with copy-on-write images every
/// fresh call took ~250 copy-on-write page faults, each with a TLB
/// shootdown on the other core: 1.2-1.3 ms of a 1.3 ms icp-fit call. With
/// private memory kept resident, the ahead thread copies the data segments
/// in while it makes the instance and the call runs on resident pages
/// (0.41 ms). QuickJS and Rust plugins write few pages; for them private
/// memory only made instances slower to make (QuickJS back to back: 0.22
/// -> 0.42 ms), so they keep copy-on-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemoryInit {
    /// Mapped from the module's image; pages are copied when written.
    CopyOnWrite,
    /// Copied in at instantiation into memory the pool keeps resident.
    Private,
}

impl MemoryInit {
    fn of(runtime: Runtime) -> MemoryInit {
        match runtime {
            Runtime::Python => MemoryInit::Private,
            Runtime::Compiled | Runtime::Quickjs => MemoryInit::CopyOnWrite,
        }
    }
}

/// Bytes of each linear memory a pool slot keeps resident between
/// instances (the rest is returned to the kernel on reset).
///
/// Copy-on-write: a plugin's 128 KiB stack, its data and the SDK's 64 KiB
/// arena. Private: CPython's whole heap after its build-time warm-up (13
/// MiB for `icp-fit-py`) with room to grow. The private pool reuses its
/// slots least recently used first (`max_unused_warm_slots(0)`), so the
/// slots ever used, and the memory they keep, are bounded by how many
/// Python instances exist at once (one spare per plugin and one per call
/// in flight): up to 24 MiB resident each (13 MiB for `icp-fit-py`).
fn keep_resident(init: MemoryInit) -> usize {
    match init {
        MemoryInit::CopyOnWrite => 256 << 10,
        MemoryInit::Private => 24 << 20,
    }
}

/// An engine and the host interface linked into it.
struct Kit {
    engine: Engine,
    linker: Linker<HostState>,
}

/// The wasmtime engines, linkers and compile cache shared by every plugin.
pub struct PluginHost {
    /// For plugins whose memory starts copy-on-write (most).
    cow: Kit,
    /// For plugins whose memory is private ([`MemoryInit::Private`]).
    private: Kit,
    cache_dir: Option<PathBuf>,
    stop_ticker: Arc<AtomicBool>,
    counters: Mutex<HashMap<String, Arc<Counters>>>,
    failures: Mutex<Option<FailureHook>>,
    worker: Mutex<Option<CompileWorker>>,
    /// Work done between calls, off the caller's thread (see [`Ahead`]).
    ahead: Mutex<std::sync::mpsc::SyncSender<Ahead>>,
    /// Spare instances alive, all plugins together (at most [`MAX_SPARES`]).
    spares: Arc<AtomicU64>,
    /// Whether calls use instances made ahead (on unless a benchmark
    /// compares without them).
    ahead_on: AtomicBool,
}

/// Spare instances the host keeps at most, so that however many plugins a
/// process declares, most of the pooling allocator's instance slots stay
/// free for calls.
const MAX_SPARES: u64 = 32;

/// A plugin whose instances take at least this long to make gets them made
/// ahead of its calls.
const AHEAD_WORTH: Duration = Duration::from_micros(50);

/// What the host's `stagecoach-ahead` thread does between calls, so that a
/// call pays for neither: make a plugin's next fresh instance before it is
/// needed, and release a used one (the pooling allocator resets its memory
/// then).
enum Ahead {
    /// Make a spare instance for this plugin, if it is still loaded and has none.
    Prepare(Weak<LoadedPlugin>),
    /// Drop a used store.
    Release(Box<Store<HostState>>),
}

/// Jobs waiting for the ahead thread at most. When it falls behind, calls
/// release their own stores and make their own instances, so the pooling
/// allocator's slots held by stores waiting to be released stay bounded.
const AHEAD_QUEUE: usize = 64;

/// The thread that does the [`Ahead`] jobs, in order, until the host is dropped.
fn start_ahead_thread() -> Result<std::sync::mpsc::SyncSender<Ahead>, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Ahead>(AHEAD_QUEUE);
    std::thread::Builder::new()
        .name("stagecoach-ahead".into())
        .spawn(move || {
            for job in rx {
                match job {
                    Ahead::Prepare(plugin) => {
                        if let Some(plugin) = plugin.upgrade() {
                            plugin.prepare_spare();
                        }
                    }
                    Ahead::Release(store) => drop(store),
                }
            }
        })
        .map_err(|e| format!("cannot start the plugin host's ahead thread: {e}"))?;
    Ok(tx)
}

/// How plugins are compiled: the same in the daemon and in a compile worker
/// (so a worker's artifact loads in the daemon).
fn compile_config(init: MemoryInit) -> Config {
    let mut config = Config::new();
    config
        .memory_init_cow(init == MemoryInit::CopyOnWrite)
        .consume_fuel(true)
        .epoch_interruption(true)
        .wasm_component_model(true)
        .concurrency_support(false)
        // Deep recursion traps on stack overflow well before the host's stack.
        .max_wasm_stack(512 * 1024);
    if std::env::var_os("STAGECOACH_PERF_MAP").is_some() {
        // Names plugin functions for `perf` (/tmp/perf-PID.map).
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// Where and within what plugins are compiled when a daemon compiles them
/// in a separate process: a compiler that runs out of time or memory is
/// killed, and the daemon, which only loads the result, is not touched.
#[derive(Debug, Clone)]
pub struct CompileWorker {
    /// The program and its arguments; the worker gets `--in FILE --out FILE
    /// --max-memory-mib N` after them (`stagecoach plugins compile-worker`).
    pub command: Vec<std::ffi::OsString>,
    /// Wall-clock limit for one compilation.
    pub timeout: Duration,
    /// Address-space limit of the worker, MiB.
    pub max_memory_mib: u64,
}

/// How the compile worker's error starts when the bytes are no component.
const INVALID_MARK: &str = "not a component: ";

/// Compiles the component in `input` to a framed artifact in `output`
/// (what the cache holds): the compile worker's whole job. Limits its own
/// address space to `max_memory_mib` first.
pub fn compile_worker(input: &Path, output: &Path, max_memory_mib: u64) -> Result<(), String> {
    let limit = max_memory_mib << 20;
    rustix::process::setrlimit(
        rustix::process::Resource::As,
        rustix::process::Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        },
    )
    .map_err(|e| format!("cannot limit the compiler's memory: {e}"))?;
    let bytes =
        std::fs::read(input).map_err(|e| format!("cannot read `{}`: {e}", input.display()))?;
    let init = MemoryInit::of(runtime_of(&bytes));
    let engine = Engine::new(&compile_config(init)).map_err(|e| format!("{e:#}"))?;
    let component = Component::new(&engine, &bytes).map_err(|e| format!("{INVALID_MARK}{e:#}"))?;
    let serialized = component.serialize().map_err(|e| format!("{e:#}"))?;
    write_framed(output, &serialized)
        .map_err(|e| format!("cannot write `{}`: {e}", output.display()))
}

/// Writes a compiled artifact with its checksum, atomically.
fn write_framed(path: &Path, serialized: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let digest = blake3::hash(serialized);
    let mut framed = digest.as_bytes().to_vec();
    framed.extend_from_slice(serialized);
    std::fs::write(&tmp, &framed)?;
    std::fs::rename(&tmp, path)
}

impl Kit {
    fn new(init: MemoryInit) -> Result<Kit, String> {
        let mut config = compile_config(init);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(256)
            .total_core_instances(512)
            .total_memories(256)
            .total_tables(256)
            .max_memories_per_component(MAX_MEMORIES)
            .max_tables_per_component(MAX_TABLES)
            .max_core_instances_per_component(MAX_CORE_INSTANCES)
            .max_memory_size((MAX_MEMORY_MIB as usize) << 20)
            // Every evaluation gets a fresh instance, so resetting a slot
            // is on the hot path. Measured (`cargo bench --bench plugins`):
            // releasing pages with madvise and re-faulting them, and the TLB
            // shootdowns that go with it, were most of a fresh call. Instead
            // keep the first part of each memory ([`keep_resident`]) and 64
            // KiB of each table resident, and let the kernel's PAGEMAP_SCAN
            // say which pages were written, so a reset restores only those.
            .linear_memory_keep_resident(keep_resident(init))
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        if init == MemoryInit::Private {
            // Reuse the least recently used slot rather than a cold one, so
            // the resident memory is bounded by the instances alive at once.
            pool.max_unused_warm_slots(0);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&config).map_err(|e| format!("cannot start the plugin engine: {e}"))?;
        let mut linker = Linker::new(&engine);
        bindings::v0_4::StagecoachPlugin::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .and_then(|()| {
            bindings::v0_3::StagecoachPlugin::add_to_linker::<HostState, HasSelf<HostState>>(
                &mut linker,
                |s| s,
            )
        })
        .map_err(|e| format!("cannot link the host interface: {e}"))?;
        Ok(Kit { engine, linker })
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl PluginHost {
    /// A host caching compiled plugins in `cache_dir` (none: compile every load).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Arc<PluginHost>, String> {
        let cow = Kit::new(MemoryInit::CopyOnWrite)?;
        let private = Kit::new(MemoryInit::Private)?;
        if let Some(dir) = &cache_dir {
            let _ = std::fs::create_dir_all(dir);
        }
        let stop_ticker = Arc::new(AtomicBool::new(false));
        {
            let engines = [cow.engine.clone(), private.engine.clone()];
            let stop = stop_ticker.clone();
            std::thread::Builder::new()
                .name("stagecoach-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        for engine in &engines {
                            engine.increment_epoch();
                        }
                    }
                })
                .map_err(|e| format!("cannot start the epoch ticker: {e}"))?;
        }
        Ok(Arc::new(PluginHost {
            cow,
            private,
            cache_dir,
            stop_ticker,
            counters: Mutex::new(HashMap::new()),
            failures: Mutex::new(None),
            worker: Mutex::new(None),
            ahead: Mutex::new(start_ahead_thread()?),
            spares: Arc::new(AtomicU64::new(0)),
            ahead_on: AtomicBool::new(true),
        }))
    }

    /// Whether calls use instances made ahead of them (on by default): off,
    /// every call makes its own instance and releases it itself, which is
    /// what the `languages` benchmark compares against.
    pub fn make_instances_ahead(&self, on: bool) {
        self.ahead_on.store(on, Ordering::Relaxed);
    }

    /// Compiles plugins that are not cached yet in a separate process,
    /// within the worker's limits (needs a cache directory).
    pub fn compile_in(&self, worker: CompileWorker) {
        *self.worker.lock().expect("compile worker") = Some(worker);
    }

    /// Calls `f` for every plugin failure (the daemon publishes `plugin.failed`).
    pub fn on_failure(&self, f: impl Fn(&PluginFailure) + Send + Sync + 'static) {
        *self.failures.lock().expect("failure hook") = Some(Box::new(f));
    }

    fn counters(&self, name: &str) -> Arc<Counters> {
        self.counters
            .lock()
            .expect("counters")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    fn kit(&self, init: MemoryInit) -> &Kit {
        match init {
            MemoryInit::CopyOnWrite => &self.cow,
            MemoryInit::Private => &self.private,
        }
    }

    /// Where the compiled form of the component with BLAKE3 `hash` is
    /// cached, compiled for memory initialised as `init`.
    fn cached_path(&self, hash: &str, init: MemoryInit) -> Option<PathBuf> {
        self.cache_dir.as_ref().map(|dir| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.kit(init)
                .engine
                .precompile_compatibility_hash()
                .hash(&mut h);
            dir.join(format!("{hash}-{:016x}.cwasm", h.finish()))
        })
    }

    /// Whether loading the component with BLAKE3 `hash` (hex), carrying
    /// `runtime`, would have to compile it (nothing in the cache): what a
    /// daemon starting up asks before it waits for a plugin.
    pub fn needs_compiling(&self, hash: &str, runtime: Runtime) -> bool {
        self.cached_path(hash, MemoryInit::of(runtime))
            .is_none_or(|p| !p.is_file())
    }

    fn compile(&self, bytes: &[u8], hash: &str, init: MemoryInit) -> Result<Component, Refusal> {
        let engine = &self.kit(init).engine;
        let cached = self.cached_path(hash, init);
        if let Some(path) = &cached
            && path.exists()
        {
            match load_cached(engine, path) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable compiled plugin");
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        let worker = self.worker.lock().expect("compile worker").clone();
        if let (Some(worker), Some(path)) = (worker, &cached) {
            return self.compile_outside(&worker, bytes, path, engine);
        }
        let component = Component::new(engine, bytes)
            .map_err(|e| refusal_for_invalid(bytes, &format!("{e:#}")))?;
        if let Some(path) = &cached
            && let Ok(serialized) = component.serialize()
        {
            let _ = write_framed(path, &serialized);
        }
        Ok(component)
    }

    /// Compiles `bytes` in the compile worker into the cache at `path`,
    /// then loads it from there.
    fn compile_outside(
        &self,
        worker: &CompileWorker,
        bytes: &[u8],
        path: &Path,
        engine: &Engine,
    ) -> Result<Component, Refusal> {
        let input = path.with_extension(format!("{}.wasm", std::process::id()));
        std::fs::write(&input, bytes)
            .map_err(|e| Refusal::from(format!("cannot stage the plugin for compiling: {e}")))?;
        let (program, args) = worker
            .command
            .split_first()
            .ok_or_else(|| Refusal::from("no compile worker command".to_string()))?;
        let child = std::process::Command::new(program)
            .args(args)
            .arg("--in")
            .arg(&input)
            .arg("--out")
            .arg(path)
            .arg("--max-memory-mib")
            .arg(worker.max_memory_mib.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let outcome = child
            .map_err(|e| Refusal::from(format!("cannot start the compile worker: {e}")))
            .and_then(|mut child| {
                let started = Instant::now();
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => break Ok((status, child)),
                        Ok(None) if started.elapsed() > worker.timeout => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break Err(Refusal::hinted(
                                format!(
                                    "compiling took longer than {} s, the limit",
                                    worker.timeout.as_secs()
                                ),
                                "a component this large or complex is not a plugin; raise `--compile-timeout-secs` if it really is one",
                            ));
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                        Err(e) => break Err(Refusal::from(format!("compile worker: {e}"))),
                    }
                }
            });
        let _ = std::fs::remove_file(&input);
        let (status, mut child) = outcome?;
        if !status.success() {
            use std::io::Read;
            let mut text = String::new();
            if let Some(err) = child.stderr.as_mut() {
                let _ = err.take(64 << 10).read_to_string(&mut text);
            }
            let text = text.trim();
            if let Some((_, why)) = text.split_once(INVALID_MARK) {
                // Named as the in-process compile names it.
                return Err(refusal_for_invalid(bytes, why));
            }
            let out_of_memory = text.is_empty()
                || text.contains("allocat")
                || std::os::unix::process::ExitStatusExt::signal(&status).is_some();
            let message = if out_of_memory {
                format!(
                    "compiling ran out of its {} MiB of memory ({status})",
                    worker.max_memory_mib
                )
            } else {
                format!("compiling failed: {}", cut(text.to_string(), 2048))
            };
            return Err(Refusal::hinted(
                message,
                "raise `--compile-memory-mib` if this really is a plugin",
            ));
        }
        load_cached(engine, path)
            .map_err(|e| Refusal::from(format!("cannot load the compiled plugin: {e}")))
    }

    /// Loads the plugin at `path` (its bytes already read) under `name`.
    pub fn load(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
        bytes: &[u8],
        limits: Limits,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let err = |refusal: Refusal| LoadError {
            name: name.to_string(),
            path: path.display().to_string(),
            message: refusal.message,
            hint: refusal.hint,
        };
        if limits.memory_mib > MAX_MEMORY_MIB {
            return Err(err(Refusal::from(format!(
                "`memory_mib` {} exceeds the maximum of {MAX_MEMORY_MIB}",
                limits.memory_mib
            ))));
        }
        let hash = blake3::hash(bytes).to_hex().to_string();
        let runtime = runtime_of(bytes);
        let init = MemoryInit::of(runtime);
        let kit = self.kit(init);
        let component = self.compile(bytes, &hash, init).map_err(err)?;
        check_resources(&component, &limits).map_err(err)?;
        let interface = check_interface(&kit.engine, &component).map_err(err)?;
        let pre = kit
            .linker
            .instantiate_pre(&component)
            .map_err(|e| err(format!("cannot be linked: {e:#}").into()))?;
        let matches = match interface {
            Interface::V0_4 => bindings::v0_4::StagecoachPluginPre::new(pre.clone()).map(drop),
            Interface::V0_3 => bindings::v0_3::StagecoachPluginPre::new(pre.clone()).map(drop),
        };
        matches.map_err(|e| err(format!("does not match the plugin interface: {e:#}").into()))?;
        let exports = Exports::find(&component, interface).map_err(|e| err(e.into()))?;
        let mut plugin = LoadedPlugin {
            name: name.to_string(),
            path: path.to_path_buf(),
            hash,
            limits,
            pre,
            interface,
            exports,
            host: self.clone(),
            counters: self.counters(name),
            memo: Memo::default(),
            description: String::new(),
            provides: Vec::new(),
            reads_activities: true,
            runtime,
            spare: Mutex::new(SpareState::None),
            spare_ready: std::sync::Condvar::new(),
            ahead: AtomicBool::new(false),
            me: Weak::new(),
        };
        let (info, _) = plugin
            .call(|store, instance| {
                plugin.exports.check(store, instance)?;
                plugin.exports.describe(store, instance).map(Ok)
            })
            .map_err(|f| err(format!("`describe` failed: {}", f.message).into()))?;
        plugin.description = info.description;
        plugin.reads_activities = info.reads_activities;
        plugin.provides = info.provides;
        // Making instances ahead pays where making one costs more than
        // handing it over between threads: an interpreter's (CPython's
        // start functions, about 1 ms; QuickJS's, 0.15 ms), not a Rust
        // plugin's few µs (measured, `cargo bench --bench languages`: back
        // to back, a Rust call took twice as long waiting for its instance
        // from the other thread). The fastest of three decides.
        let made = (0..3)
            .map(|_| {
                let started = Instant::now();
                let mut store = plugin.new_store();
                plugin.arm_deadline(&mut store);
                let made = plugin.pre.instantiate(&mut store);
                (started.elapsed(), made.map(|instance| (store, instance)))
            })
            .min_by_key(|(took, _)| *took);
        let spare = match made {
            Some((took, Ok((store, instance)))) if took >= AHEAD_WORTH => {
                SpareCount::take(&self.spares).map(|counted| Spare {
                    store,
                    instance,
                    _counted: counted,
                })
            }
            _ => None,
        };
        plugin.ahead.store(spare.is_some(), Ordering::Relaxed);
        if let Some(spare) = spare {
            *plugin.spare.get_mut().expect("spare") = SpareState::Ready(spare);
        }
        let plugin = Arc::new_cyclic(|me| LoadedPlugin {
            me: me.clone(),
            ..plugin
        });
        Ok(plugin)
    }
}

/// Why `bytes` are not a component we can compile, as plugin authors need
/// to read it.
fn refusal_for_invalid(bytes: &[u8], text: &str) -> Refusal {
    if !bytes.starts_with(b"\0asm") && std::str::from_utf8(bytes).is_err() {
        Refusal::from(
            "not a WebAssembly file (no `\\0asm` header): corrupt or not a plugin".to_string(),
        )
    } else if bytes.starts_with(b"\0asm") && bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        Refusal::hinted(
            "this is a core WebAssembly module, not a component",
            "build it with `stagecoach plugins build`, which wraps it as a component",
        )
    } else {
        Refusal::from(format!("not a valid WebAssembly component: {text}"))
    }
}

#[allow(unsafe_code)]
fn load_cached(engine: &Engine, path: &Path) -> Result<Component, String> {
    let framed = std::fs::read(path).map_err(|e| e.to_string())?;
    if framed.len() < 32 || blake3::hash(&framed[32..]).as_bytes() != &framed[..32] {
        return Err("checksum mismatch".into());
    }
    // SAFETY: the artifact was produced by `Component::serialize` of this
    // engine configuration (the file name carries its compatibility hash),
    // written by this daemon into its private (0700) data directory, and its
    // checksum was verified above, so it is not truncated or corrupted.
    unsafe { Component::deserialize(engine, &framed[32..]) }.map_err(|e| e.to_string())
}

/// Refuses a component whose initial memory alone passes its limit, at
/// load rather than at every call. (How many memories, tables and core
/// instances a component may have is the pooling allocator's to enforce:
/// `Component::new` refuses more than [`MAX_MEMORIES`], [`MAX_TABLES`],
/// [`MAX_CORE_INSTANCES`].)
fn check_resources(component: &Component, limits: &Limits) -> Result<(), Refusal> {
    let Some(r) = component.resources_required() else {
        return Ok(());
    };
    let initial = r.max_initial_memory_size.unwrap_or(0);
    if initial > u64::from(limits.memory_mib) << 20 {
        return Err(Refusal::hinted(
            format!(
                "starts with {} MiB of memory, more than its `memory_mib` of {}",
                initial >> 20,
                limits.memory_mib
            ),
            "raise `memory_mib` in its `[[plugins]]` entry, or shrink the plugin's initial memory",
        ));
    }
    Ok(())
}

/// Checks that the component exports our interface at a version the daemon
/// runs and imports nothing but the host interface; says which version.
fn check_interface(engine: &Engine, component: &Component) -> Result<Interface, Refusal> {
    let ty = component.component_type();
    let foreign: Vec<String> = ty
        .imports(engine)
        .filter(|(name, _)| !name.starts_with("stagecoach:plugin/"))
        .map(|(n, _)| n.to_string())
        .collect();
    if !foreign.is_empty() {
        return Err(Refusal::hinted(
            format!(
                "imports {} which the sandbox does not provide (plugins get no filesystem, network, clock, randomness or environment)",
                foreign
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "build for `wasm32-unknown-unknown` with `stagecoach plugins build`, not for WASI",
        ));
    }
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    if let Some(interface) = Interface::ALL
        .into_iter()
        .find(|i| exports.iter().any(|e| e == i.export()))
    {
        return Ok(interface);
    }
    if let Some(other) = exports
        .iter()
        .find(|e| e.starts_with("stagecoach:plugin/plugin@"))
    {
        let version = other.rsplit('@').next().unwrap_or("?");
        return Err(Refusal::hinted(
            format!(
                "built for plugin interface {version}, but this daemon runs {}",
                Interface::all_versions()
            ),
            "rebuild the plugin with this stagecoach (`stagecoach plugins build DIR`)",
        ));
    }
    Err(Refusal::hinted(
        format!(
            "does not export the Stagecoach plugin interface `{INTERFACE}` (exports: {})",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        ),
        "write it with one of the SDKs (Rust, Python, TypeScript) and build it with `stagecoach plugins build DIR`",
    ))
}

/// What a plugin says of itself, whatever its interface version.
struct Described {
    description: String,
    provides: Vec<Capability>,
    reads_activities: bool,
}

/// Where the interface's functions are in a component, found once at load
/// (by name lookups that every instantiation through the generated
/// bindings would repeat, with a type check of all four functions).
#[derive(Clone)]
struct Exports {
    interface: Interface,
    describe: ComponentExportIndex,
    evaluate: ComponentExportIndex,
    checklist: ComponentExportIndex,
    metric: ComponentExportIndex,
}

/// The exported functions' types, per interface version.
type Evaluate3<'a> = (wit::Input<'a>,);
type Evaluate4<'a> = (wit4::Input<'a>,);
type Metric3<'a> = (wit::MetricInput<'a>,);
type Metric4<'a> = (wit4::MetricInput<'a>,);
type VerdictOut3 = (Result<wit::Verdict, String>,);
type VerdictOut4 = (Result<wit4::Verdict, String>,);
type ItemsOut3 = (Result<Vec<wit::ChecklistItem>, String>,);
type ItemsOut4 = (Result<Vec<wit4::ChecklistItem>, String>,);
type ValuesOut3 = (Result<Vec<wit::MetricValue>, String>,);
type ValuesOut4 = (Result<Vec<wit4::MetricValue>, String>,);

/// Either interface version's checklist items as the host's (the versions'
/// generated types are distinct but have the same fields).
macro_rules! host_items {
    ($items:expr) => {
        $items
            .into_iter()
            .map(|i| ChecklistItem {
                id: i.id,
                label: i.label,
                done: i.done,
                evidence: i.evidence,
            })
            .collect()
    };
}

/// Either version's metric values as the host's.
macro_rules! host_values {
    ($values:expr) => {
        $values
            .into_iter()
            .map(|v| MetricValue {
                name: v.name,
                label: v.label,
                value: v.value,
            })
            .collect()
    };
}

/// A call's answer: the plugin's own error, or its result.
type Answered<T> = wasmtime::Result<Result<T, String>>;

impl Exports {
    fn find(component: &Component, interface: Interface) -> Result<Exports, String> {
        let name = interface.export();
        let index = component
            .get_export_index(None, name)
            .ok_or_else(|| format!("does not export `{name}`"))?;
        let func = |f: &str| {
            component
                .get_export_index(Some(&index), f)
                .ok_or_else(|| format!("does not export `{name}#{f}`"))
        };
        Ok(Exports {
            interface,
            describe: func("describe")?,
            evaluate: func("evaluate")?,
            checklist: func("checklist")?,
            metric: func("metric")?,
        })
    }

    /// The function at `index` in `instance`.
    fn get(
        store: &mut Store<HostState>,
        instance: &Instance,
        index: &ComponentExportIndex,
    ) -> wasmtime::Result<Func> {
        instance
            .get_func(store, index)
            .ok_or_else(|| wasmtime::format_err!("the instance lacks an exported function"))
    }

    /// Type-checks the functions against the host's types, once at load,
    /// in the first instance: a plugin with other signatures is refused
    /// then, not at its first call.
    fn check(&self, store: &mut Store<HostState>, instance: &Instance) -> wasmtime::Result<()> {
        match self.interface {
            Interface::V0_4 => {
                self.typed::<Evaluate4<'_>, VerdictOut4>(store, instance, &self.evaluate)?;
                self.typed::<Evaluate4<'_>, ItemsOut4>(store, instance, &self.checklist)?;
                self.typed::<Metric4<'_>, ValuesOut4>(store, instance, &self.metric)?;
            }
            Interface::V0_3 => {
                self.typed::<Evaluate3<'_>, VerdictOut3>(store, instance, &self.evaluate)?;
                self.typed::<Evaluate3<'_>, ItemsOut3>(store, instance, &self.checklist)?;
                self.typed::<Metric3<'_>, ValuesOut3>(store, instance, &self.metric)?;
            }
        }
        Ok(())
    }

    /// The function at `index`, typed. The type is checked again for every
    /// instance (wasmtime compares the records' names and fields). Skipping
    /// that with `TypedFunc::new_unchecked` saved 0.08 µs of a 9.1 µs call
    /// with a fresh instance (what the daemon does), fastest rounds of the
    /// plugins benchmark: under 1 %, far inside this machine's noise, so
    /// the host calls plugins without `unsafe`.
    fn typed<P, R>(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        index: &ComponentExportIndex,
    ) -> wasmtime::Result<TypedFunc<P, R>>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        Self::get(store, instance, index)?.typed::<P, R>(&*store)
    }

    fn describe(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<Described> {
        fn caps<C>(provides: Vec<C>, f: impl Fn(C) -> Capability) -> Vec<Capability> {
            provides.into_iter().map(f).collect()
        }
        Ok(match self.interface {
            Interface::V0_4 => {
                let (info,) = self
                    .typed::<(), (wit4::Info,)>(store, instance, &self.describe)?
                    .call(&mut *store, ())?;
                Described {
                    description: info.description,
                    reads_activities: info.reads_activities,
                    provides: caps(info.provides, |c| match c {
                        wit4::Capability::Criterion => Capability::Criterion,
                        wit4::Capability::Checklist => Capability::Checklist,
                        wit4::Capability::Metric => Capability::Metric,
                    }),
                }
            }
            Interface::V0_3 => {
                let (info,) = self
                    .typed::<(), (wit::Info,)>(store, instance, &self.describe)?
                    .call(&mut *store, ())?;
                Described {
                    description: info.description,
                    reads_activities: info.reads_activities,
                    provides: caps(info.provides, |c| match c {
                        wit::Capability::Criterion => Capability::Criterion,
                        wit::Capability::Checklist => Capability::Checklist,
                        wit::Capability::Metric => Capability::Metric,
                    }),
                }
            }
        })
    }

    /// Calls `evaluate` with `input` in the form of the plugin's version:
    /// whether it is met, and why.
    fn evaluate(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        input: &CallInput,
        max_input_kib: u32,
        reads_activities: bool,
    ) -> Answered<(bool, String)> {
        let index = &self.evaluate;
        Ok(match self.interface {
            Interface::V0_4 => {
                let f = self.typed::<Evaluate4<'_>, VerdictOut4>(store, instance, index)?;
                input
                    .with_packed(max_input_kib, reads_activities, |i| f.call(store, (i,)))?
                    .0
                    .map(|v| (v.met, v.reason))
            }
            Interface::V0_3 => {
                let f = self.typed::<Evaluate3<'_>, VerdictOut3>(store, instance, index)?;
                input
                    .with_wit(max_input_kib, reads_activities, |i| f.call(store, (i,)))?
                    .0
                    .map(|v| (v.met, v.reason))
            }
        })
    }

    /// Calls `checklist` with `input` in the form of the plugin's version.
    fn checklist(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        input: &CallInput,
        max_input_kib: u32,
        reads_activities: bool,
    ) -> Answered<Vec<ChecklistItem>> {
        let index = &self.checklist;
        Ok(match self.interface {
            Interface::V0_4 => {
                let f = self.typed::<Evaluate4<'_>, ItemsOut4>(store, instance, index)?;
                let items = input
                    .with_packed(max_input_kib, reads_activities, |i| f.call(store, (i,)))?
                    .0;
                items.map(|items| host_items!(items))
            }
            Interface::V0_3 => {
                let f = self.typed::<Evaluate3<'_>, ItemsOut3>(store, instance, index)?;
                let items = input
                    .with_wit(max_input_kib, reads_activities, |i| f.call(store, (i,)))?
                    .0;
                items.map(|items| host_items!(items))
            }
        })
    }

    /// Calls `metric` with `data` in the form of the plugin's version.
    fn metric(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        data: &MetricData,
    ) -> Answered<Vec<MetricValue>> {
        let index = &self.metric;
        Ok(match self.interface {
            Interface::V0_4 => {
                let f = self.typed::<Metric4<'_>, ValuesOut4>(store, instance, index)?;
                let values = data.with_packed(|i| f.call(store, (i,)))?.0;
                values.map(|values| host_values!(values))
            }
            Interface::V0_3 => {
                let f = self.typed::<Metric3<'_>, ValuesOut3>(store, instance, index)?;
                let values = data.with(|i| f.call(store, (i,)))?.0;
                values.map(|values| host_values!(values))
            }
        })
    }
}

/// A loaded plugin, ready to call.
pub struct LoadedPlugin {
    /// Its name in `process.toml`.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// BLAKE3 of its bytes.
    pub hash: String,
    /// Its limits.
    pub limits: Limits,
    /// From its `describe`.
    pub description: String,
    /// From its `describe`.
    pub provides: Vec<Capability>,
    /// From its `describe`: whether it reads the activity log.
    pub reads_activities: bool,
    /// What runs its code.
    pub runtime: Runtime,
    pre: InstancePre<HostState>,
    /// The interface version it was built for.
    pub interface: Interface,
    exports: Exports,
    host: Arc<PluginHost>,
    counters: Arc<Counters>,
    memo: Memo,
    /// A fresh instance made ahead of the call that will use it: every call
    /// still gets an instance nobody has used, but does not wait for it to
    /// be made (for an interpreter, most of a call: CPython's start-up
    /// functions, its memory's pages). At most one; made again after each call.
    spare: Mutex<SpareState>,
    /// Signalled when a spare being made is ready (or could not be made).
    spare_ready: std::sync::Condvar,
    /// Whether calls use spares: set at load for plugins whose instances
    /// are slow to make ([`AHEAD_WORTH`]), cleared if making one fails (calls
    /// then instantiate as they go, and report the failure as their own).
    ahead: AtomicBool,
    /// This plugin, for the jobs it hands the ahead thread.
    me: Weak<LoadedPlugin>,
}

/// Where a plugin's spare instance is.
enum SpareState {
    /// None, and none being made.
    None,
    /// Being made on the ahead thread: a call waits for it rather than
    /// make a second one beside it.
    Making,
    /// Ready for the next call.
    Ready(Spare),
}

/// A store and the instance made in it, not yet called.
struct Spare {
    store: Store<HostState>,
    instance: Instance,
    /// Counts it among the host's spares while it lives.
    _counted: SpareCount,
}

/// One of the host's [`MAX_SPARES`], given back when dropped.
struct SpareCount(Arc<AtomicU64>);

impl SpareCount {
    fn take(spares: &Arc<AtomicU64>) -> Option<SpareCount> {
        spares
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_SPARES).then_some(n + 1)
            })
            .ok()
            .map(|_| SpareCount(spares.clone()))
    }
}

impl Drop for SpareCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .finish()
    }
}

impl LoadedPlugin {
    /// A store with this plugin's memory limit and a full tank of fuel.
    fn new_store(&self) -> Store<HostState> {
        let mut store = Store::new(
            self.pre.engine(),
            HostState {
                plugin: self.name.clone(),
                last_error: None,
                log_line: Vec::new(),
                log_line_cut: 0,
                max_line: self.limits.max_text_bytes as usize,
                log_budget: (self.limits.max_log_kib as usize) << 10,
                log_over: false,
                max_log_lines_per_second: self.limits.max_log_lines_per_second,
                counters: self.counters.clone(),
                max_memory: (self.limits.memory_mib as usize) << 20,
                memory: 0,
                peak_memory: 0,
                memory_refused: false,
            },
        );
        store.limiter(|s| s);
        store.set_fuel(self.limits.fuel).expect("fuel is enabled");
        store
    }

    /// Calls an exported function in a fresh store and instance, within limits.
    fn call<R>(
        &self,
        f: impl FnOnce(&mut Store<HostState>, &Instance) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<(R, CallStats), PluginFailure> {
        let started = Instant::now();
        let fail = |kind: &'static str, message: String| PluginFailure {
            plugin: self.name.clone(),
            kind,
            message,
        };
        let ahead =
            self.host.ahead_on.load(Ordering::Relaxed) && self.ahead.load(Ordering::Relaxed);
        let spare = if ahead { self.take_spare() } else { None };
        let (mut store, instance) = match spare {
            Some(Spare {
                mut store,
                instance,
                ..
            }) => {
                // The call's own limits, from now: making the instance
                // spent some of the first tank and deadline.
                store.set_fuel(self.limits.fuel).expect("fuel is enabled");
                self.arm_deadline(&mut store);
                (store, Ok(instance))
            }
            None => {
                let mut store = self.new_store();
                self.arm_deadline(&mut store);
                let instance = self.pre.instantiate(&mut store);
                (store, instance)
            }
        };
        let outcome = instance.and_then(|instance| f(&mut store, &instance));
        let fuel_used = self.limits.fuel - store.get_fuel().unwrap_or(0);
        let stats = CallStats {
            fuel_used,
            micros: started.elapsed().as_secs_f64() * 1e6,
            peak_memory: store.data().peak_memory,
        };
        let max_text = self.limits.max_text_bytes as usize;
        let result = match outcome {
            Err(_) if store.data().log_over => Err(fail(
                "output",
                format!(
                    "logged more than {} KiB in one call (`max_log_kib`)",
                    self.limits.max_log_kib
                ),
            )),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(message)) => Err(fail("error", cut(message, max_text))),
            Err(e) => Err(match e.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel) => fail(
                    "fuel",
                    format!("ran out of fuel ({} units)", self.limits.fuel),
                ),
                Some(Trap::Interrupt) => fail(
                    "timeout",
                    format!("exceeded its {} ms deadline", self.limits.timeout_ms),
                ),
                Some(Trap::StackOverflow) => {
                    fail("trap", "stack overflow (unbounded recursion?)".into())
                }
                _ if store.data().memory_refused => fail(
                    "memory",
                    format!(
                        "tried to use more than its {} MiB of memory",
                        self.limits.memory_mib
                    ),
                ),
                Some(trap) => match store.data().last_error.clone() {
                    Some(logged) => fail("trap", format!("{} ({trap})", cut(logged, max_text))),
                    None => fail("trap", format!("{trap}")),
                },
                None => fail("trap", cut(format!("{e:#}"), max_text)),
            }),
        };
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        self.counters
            .nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if ahead {
            self.ask_ahead(Ahead::Release(Box::new(store)));
            self.ask_ahead(Ahead::Prepare(self.me.clone()));
        } else {
            drop(store);
        }
        match result {
            Ok(r) => Ok((r, stats)),
            Err(failure) => Err(self.failed(failure)),
        }
    }

    /// Arms a store's wall-clock deadline: the plugin's `timeout_ms` from now.
    fn arm_deadline(&self, store: &mut Store<HostState>) {
        let ticks = self
            .limits
            .timeout_ms
            .div_ceil(EPOCH_TICK.as_millis() as u64)
            .max(1)
            + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
    }

    /// Hands a job to the host's ahead thread. When its queue is full, a
    /// store is released here and no spare is made (the next call makes
    /// its own instance).
    fn ask_ahead(&self, job: Ahead) {
        let sent = self.host.ahead.lock().expect("ahead").try_send(job);
        match sent {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(job))
            | Err(std::sync::mpsc::TrySendError::Disconnected(job)) => drop(job),
        }
    }

    /// The spare instance, waiting for it if it is being made; none if there
    /// is none (the call makes its own).
    fn take_spare(&self) -> Option<Spare> {
        let mut state = self.spare.lock().expect("spare");
        while matches!(*state, SpareState::Making) {
            state = self.spare_ready.wait(state).expect("spare");
        }
        match std::mem::replace(&mut *state, SpareState::None) {
            SpareState::Ready(spare) => Some(spare),
            _ => None,
        }
    }

    /// Makes the spare instance, within the plugin's limits (a component's
    /// start functions run now). If that fails, calls go back to making
    /// their own, so the failure is reported by the call that meets it.
    fn prepare_spare(&self) {
        let counted = {
            let mut state = self.spare.lock().expect("spare");
            if !matches!(*state, SpareState::None) {
                return;
            }
            let Some(counted) = SpareCount::take(&self.host.spares) else {
                return; // enough spares for now; the call makes its own
            };
            *state = SpareState::Making;
            counted
        };
        // Should making it panic, calls must not wait for it forever.
        struct Unmark<'a>(&'a LoadedPlugin);
        impl Drop for Unmark<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let mut state = self.0.spare.lock().unwrap_or_else(|e| e.into_inner());
                    *state = SpareState::None;
                    self.0.ahead.store(false, Ordering::Relaxed);
                    self.0.spare_ready.notify_all();
                }
            }
        }
        let _unmark = Unmark(self);
        let mut store = self.new_store();
        self.arm_deadline(&mut store);
        let made = self.pre.instantiate(&mut store);
        let mut state = self.spare.lock().expect("spare");
        *state = match made {
            Ok(instance) => SpareState::Ready(Spare {
                store,
                instance,
                _counted: counted,
            }),
            Err(_) => {
                self.ahead.store(false, Ordering::Relaxed);
                SpareState::None
            }
        };
        self.spare_ready.notify_all();
    }

    /// Counts, logs and pushes a failure.
    fn failed(&self, failure: PluginFailure) -> PluginFailure {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(plugin = %self.name, kind = failure.kind, "{}", escaped(&failure.message));
        if let Some(hook) = self.host.failures.lock().expect("failure hook").as_ref() {
            hook(&failure);
        }
        failure
    }

    /// Checks what a call returned against the output limits, before any of
    /// it is used: `items` (checklist items or metric values, if a list) and
    /// every string, named by what it is.
    fn check_output<'s>(
        &self,
        what: &str,
        items: Option<usize>,
        strings: impl IntoIterator<Item = (&'static str, &'s str)>,
    ) -> Result<(), PluginFailure> {
        let l = &self.limits;
        let output = |message: String| {
            Err(self.failed(PluginFailure {
                plugin: self.name.clone(),
                kind: "output",
                message,
            }))
        };
        if let Some(n) = items
            && n > l.max_items as usize
        {
            return output(format!(
                "{what} returned {n} items, the limit is {} (`max_items`)",
                l.max_items
            ));
        }
        let mut total = 0usize;
        for (name, text) in strings {
            if text.len() > l.max_text_bytes as usize {
                return output(format!(
                    "{what} returned a {}-byte {name}, the limit is {} bytes (`max_text_bytes`)",
                    text.len(),
                    l.max_text_bytes
                ));
            }
            total += text.len();
        }
        if total > (l.max_output_kib as usize) << 10 {
            return output(format!(
                "{what} returned {total} bytes of text, the limit is {} KiB (`max_output_kib`)",
                l.max_output_kib
            ));
        }
        Ok(())
    }

    /// What a reused answer cost.
    fn reused(&self) -> CallStats {
        self.counters.reused.fetch_add(1, Ordering::Relaxed);
        CallStats {
            fuel_used: 0,
            micros: 0.0,
            peak_memory: 0,
        }
    }

    /// Runs the plugin's exit criterion (or reuses its answer to the same
    /// input).
    pub fn evaluate(
        &self,
        input: &CallInput,
    ) -> Result<(stagecoach_types::model::Verdict, CallStats), PluginFailure> {
        let key = input.fingerprint(self.reads_activities);
        if let Some(Answer::Verdict(met, reason)) = self.memo.get(key, CallKind::Evaluate) {
            let verdict = stagecoach_types::model::Verdict {
                question: String::new(),
                met,
                reason,
                warn: false,
            };
            return Ok((verdict, self.reused()));
        }
        let ((met, reason), stats) = self.call(|store, instance| {
            self.exports.evaluate(
                store,
                instance,
                input,
                self.limits.max_input_kib,
                self.reads_activities,
            )
        })?;
        self.check_output("evaluate", None, [("reason", reason.as_str())])?;
        self.memo.put(
            key,
            CallKind::Evaluate,
            Answer::Verdict(met, reason.clone()),
        );
        Ok((
            stagecoach_types::model::Verdict {
                question: String::new(),
                met,
                reason,
                warn: false,
            },
            stats,
        ))
    }

    /// Runs the plugin's checklist (or reuses its answer to the same input).
    pub fn checklist(
        &self,
        input: &CallInput,
    ) -> Result<(Vec<ChecklistItem>, CallStats), PluginFailure> {
        let key = input.fingerprint(self.reads_activities);
        if let Some(Answer::Items(items)) = self.memo.get(key, CallKind::Checklist) {
            return Ok((items, self.reused()));
        }
        let (items, stats) = self.call(|store, instance| {
            self.exports.checklist(
                store,
                instance,
                input,
                self.limits.max_input_kib,
                self.reads_activities,
            )
        })?;
        self.check_output(
            "checklist",
            Some(items.len()),
            items.iter().flat_map(|i| {
                [
                    ("item id", i.id.as_str()),
                    ("item label", i.label.as_str()),
                    ("item evidence", i.evidence.as_str()),
                ]
            }),
        )?;
        self.memo
            .put(key, CallKind::Checklist, Answer::Items(items.clone()));
        Ok((items, stats))
    }

    /// Runs the plugin's metric.
    pub fn metric(
        &self,
        data: &MetricData,
    ) -> Result<(Vec<MetricValue>, CallStats), PluginFailure> {
        let (values, stats) =
            self.call(|store, instance| self.exports.metric(store, instance, data))?;
        self.check_output(
            "metric",
            Some(values.len()),
            values
                .iter()
                .flat_map(|v| [("name", v.name.as_str()), ("label", v.label.as_str())]),
        )?;
        Ok((values, stats))
    }

    /// A reusable instance for repeated calls (benchmarks): the same store
    /// and instance serve every call, fuel is topped up each time.
    pub fn reusable(&self) -> Result<Reusable, PluginFailure> {
        let mut store = self.new_store();
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| PluginFailure {
                plugin: self.name.clone(),
                kind: "trap",
                message: format!("{e:#}"),
            })?;
        Ok(Reusable {
            store,
            instance,
            exports: self.exports.clone(),
            fuel: self.limits.fuel,
            max_input_kib: self.limits.max_input_kib,
            reads_activities: self.reads_activities,
        })
    }

    /// Mean wall time of its calls so far, µs (none before its first).
    pub fn mean_micros(&self) -> Option<f64> {
        let calls = self.counters.calls.load(Ordering::Relaxed);
        (calls > 0).then(|| self.counters.nanos.load(Ordering::Relaxed) as f64 / calls as f64 / 1e3)
    }

    /// Statistics for `plugins.list`.
    pub fn stats(&self) -> PluginInfo {
        let calls = self.counters.calls.load(Ordering::Relaxed);
        let nanos = self.counters.nanos.load(Ordering::Relaxed);
        PluginInfo {
            name: self.name.clone(),
            path: self.path.display().to_string(),
            hash: self.hash.clone(),
            interface: self.interface.version().to_string(),
            runtime: self.runtime,
            description: self.description.clone(),
            provides: self.provides.clone(),
            reads_activities: self.reads_activities,
            limits: self.limits.clone(),
            calls,
            failures: self.counters.failures.load(Ordering::Relaxed),
            reused: self.counters.reused.load(Ordering::Relaxed),
            mean_micros: if calls == 0 {
                0.0
            } else {
                nanos as f64 / calls as f64 / 1000.0
            },
        }
    }
}

/// One instance kept across calls (see [`LoadedPlugin::reusable`]).
pub struct Reusable {
    store: Store<HostState>,
    instance: Instance,
    exports: Exports,
    fuel: u64,
    max_input_kib: u32,
    reads_activities: bool,
}

impl Reusable {
    /// Runs the exit criterion on this instance.
    pub fn evaluate(&mut self, input: &CallInput) -> Result<bool, String> {
        self.store.set_fuel(self.fuel).map_err(|e| e.to_string())?;
        match self.exports.evaluate(
            &mut self.store,
            &self.instance,
            input,
            self.max_input_kib,
            self.reads_activities,
        ) {
            Ok(Ok((met, _))) => Ok(met),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}

pub use stagecoach_types::api::results::ChecklistItem;

pub use stagecoach_types::api::results::MetricValue;

/// The plugins of one process version, by name.
#[derive(Debug, Default, Clone)]
pub struct PluginSet {
    /// Loaded plugins.
    pub plugins: HashMap<String, Arc<LoadedPlugin>>,
    /// Plugins the process declares that are not loaded yet, and why (being
    /// compiled in the background at start-up, or that load's failure):
    /// their criteria are unmet with this reason until they are.
    pub unavailable: std::collections::BTreeMap<String, String>,
}

impl PluginSet {
    /// A plugin by name.
    pub fn get(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(name)
    }

    /// Why a plugin the process declares is not loaded, if it is not.
    pub fn unavailable(&self, name: &str) -> Option<&str> {
        self.unavailable.get(name).map(String::as_str)
    }

    /// The reason a criterion of an unloaded plugin is unmet.
    pub fn missing_reason(&self, name: &str) -> String {
        match self.unavailable(name) {
            Some(why) => format!("plugin `{name}` {why}"),
            None => format!("plugin `{name}` is not loaded"),
        }
    }
}

/// Why a plugin compiled in the background at start-up is not there yet.
pub const BEING_COMPILED: &str = "is being compiled (the first start with this build); prospects are evaluated again as soon as it is ready";
