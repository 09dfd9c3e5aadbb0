//! The command line's arguments: clap types only.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

use stagecoach_types::model::Millis;

use super::history::{DiscoverArgs, ExportArgs, ImportArgs};

/// Stagecoach: a rules engine for your sales process.
#[derive(Debug, Parser)]
#[command(name = "stagecoach", version, about, long_about = None)]
pub struct Cli {
    /// The daemon's socket [default: DATA_DIR/stagecoach.sock].
    #[arg(long, global = true, env = "STAGECOACH_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Where the database (and default socket) live [default: $XDG_DATA_HOME/stagecoach].
    #[arg(long, global = true, env = "STAGECOACH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log level when `RUST_LOG` is not set.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve {
        /// The process definition to serve.
        #[arg(long, env = "STAGECOACH_PROCESS", default_value = "process.toml")]
        process: PathBuf,
        /// Close connections idle for this many seconds.
        #[arg(long, default_value_t = 300)]
        idle_timeout: u64,
        /// Refuse connections beyond this many.
        #[arg(long, default_value_t = 1024)]
        max_connections: usize,
        /// Give up an import session (nothing of it written) after this
        /// many seconds without a request; other writes wait while one is open.
        #[arg(long, default_value_t = stagecoach_server::DEFAULT_IMPORT_IDLE_SECS)]
        import_idle_secs: u64,
        /// Give up an import session still open after this many seconds,
        /// however busy (nothing of it written): other writes wait meanwhile.
        #[arg(long, default_value_t = stagecoach_server::DEFAULT_IMPORT_MAX_SECS)]
        import_max_secs: u64,
        /// Longest request line, in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        max_line: usize,
        /// Most requests in one batch (a longer batch is refused whole).
        #[arg(long, default_value_t = stagecoach_server::DEFAULT_MAX_BATCH as u64,
              value_parser = clap::value_parser!(u64).range(1..))]
        max_batch: u64,
        /// Most a connection may hold for its client, MiB: requests not yet
        /// answered and answers not yet read. Beyond it reading pauses; a
        /// subscriber that leaves this much unread is disconnected.
        #[arg(long, default_value_t = stagecoach_server::DEFAULT_MAX_QUEUED_MIB as u64,
              value_parser = clap::value_parser!(u64).range(1..=65536))]
        max_queued_mib: u64,
        /// The largest process file read, MiB (a larger one is refused, the
        /// version in force stays).
        #[arg(long, default_value_t = stagecoach_server::files::DEFAULT_MAX_PROCESS_MIB,
              value_parser = clap::value_parser!(u64).range(1..=1024))]
        max_process_mib: u64,
        /// Do not watch the process file (reload with `stagecoach process reload`).
        #[arg(long)]
        no_watch: bool,
        /// Where compiled plugins are cached [default: DATA_DIR/plugin-cache].
        #[arg(long, env = "STAGECOACH_PLUGIN_CACHE")]
        plugin_cache: Option<PathBuf>,
        /// Memory for the database's page cache, MiB (most of the daemon's
        /// memory at scale).
        #[arg(long, env = "STAGECOACH_CACHE_MIB", default_value_t = stagecoach_core::store::DEFAULT_CACHE_MIB)]
        cache_mib: usize,
        /// No longer needed: every durable commit saves what the check
        /// after a crash would rebuild, and the write-ahead log makes the
        /// writes between them durable. Accepted for old scripts.
        #[arg(long, hide = true)]
        quick_repair: bool,
        /// Refuse writes while the database's disk has less than this free,
        /// MiB (0: never), so that a full disk never fails a commit half-way.
        #[arg(long, env = "STAGECOACH_MIN_FREE_MIB", default_value_t = stagecoach_core::store::DEFAULT_MIN_FREE_MIB)]
        min_free_mib: u64,
        /// Longest a plugin may take to compile, in seconds (compiled in a
        /// separate process, killed when it passes this).
        #[arg(long, default_value_t = 120)]
        compile_timeout_secs: u64,
        /// Most memory compiling a plugin may take, MiB (the compiling
        /// process's address space).
        #[arg(long, default_value_t = 3072)]
        compile_memory_mib: u64,
    },
    /// Show what the daemon is running and how it is doing.
    Status {
        /// `text`, or `openmetrics` for scrapers and node_exporter's
        /// textfile collector.
        #[arg(long, value_enum, default_value = "text")]
        format: StatusFormat,
    },
    /// The process definition.
    #[command(subcommand)]
    Process(ProcessCmd),
    /// Prospects.
    #[command(subcommand)]
    Prospect(ProspectCmd),
    /// The activity log.
    #[command(subcommand)]
    Activity(ActivityCmd),
    /// Print events as they happen (moves, process reloads).
    Watch,
    /// Measure the process: flow, time in stage, conversion, outcomes, stalled.
    #[command(subcommand)]
    Metrics(MetricsCmd),
    /// Write a self-contained HTML report for a sales manager: headline
    /// figures against the previous period, funnel, conversion, flow, time
    /// in stage, twelve months, lost reasons, stalled deals, a scorecard
    /// per rep, the latest process change. `--owner`, `--stage` and
    /// `--version` filter it as they filter `metrics`.
    Report {
        /// The period.
        #[command(flatten)]
        period: PeriodArgs,
        /// The HTML file to write.
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
    },
    /// Print shell completions (`stagecoach completions bash > /etc/bash_completion.d/stagecoach`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff: `stagecoach man > stagecoach.1`), or
    /// write one page per command into a directory.
    Man {
        /// Write `stagecoach.1` and a `stagecoach-COMMAND.1` for every
        /// command here (for `/usr/share/man/man1`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Fill the daemon with a realistic demo history (through the normal
    /// write path, criteria enforced).
    Demo {
        /// How many prospects.
        #[arg(long, default_value_t = 5000)]
        prospects: u64,
        /// Over how many months before now.
        #[arg(long, default_value_t = 12)]
        months: u32,
        /// Random seed (the same seed gives the same history).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Do not change the process half-way (by default the demo makes
        /// one change, written to the process file, so versions compare).
        #[arg(long)]
        keep_process: bool,
        /// Write the demo into a daemon that already holds prospects (they
        /// cannot be told apart or removed afterwards).
        #[arg(long)]
        into_existing: bool,
    },
    /// Import a CRM's CSV export (HubSpot, Salesforce, Pipedrive, …: deals,
    /// activities, stage history): outcomes as the source has them, dated
    /// stage history where it has one, otherwise activities replayed under
    /// the exit criteria; nothing written unless every row resolves;
    /// idempotent by external id.
    Import(ImportArgs),
    /// Export prospects, activities or transitions as CSV, NDJSON or Parquet, or the whole history as an OCEL 2.0 log.
    Export(ExportArgs),
    /// Learn the process from closed deals (the database, or CSV files with
    /// `--prospects` and `--activities`): steps, graph, paths, owners, and a
    /// draft `process.toml`.
    Discover(DiscoverArgs),
    /// WebAssembly plugins: build, run, list (`plugin` also works).
    #[command(subcommand, visible_alias = "plugin")]
    Plugins(PluginCmd),
    /// Check a process file for errors and for the guide's mistakes (no
    /// daemon needed). Exits non-zero on errors, or on warnings with `--strict`.
    Lint {
        /// The file to check.
        #[arg(default_value = "process.toml")]
        file: PathBuf,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Run the process's tests (`process.test.toml` beside it) against the
    /// process and its real plugins, no daemon needed. Exits non-zero when a
    /// case fails.
    Test {
        /// The process file.
        #[arg(default_value = "process.toml")]
        file: PathBuf,
        /// `text`, or `junit` for CI systems.
        #[arg(long, value_enum, default_value_t = TestFormat::Text)]
        format: TestFormat,
        /// Write the report here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `stagecoach test --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TestFormat {
    /// One line per case, failures with expected and actual.
    Text,
    /// JUnit XML.
    Junit,
}

/// `stagecoach process …`
#[derive(Debug, Subcommand)]
pub enum ProcessCmd {
    /// Show the process in force (or an earlier version).
    Show {
        /// A stored version number.
        #[arg(long)]
        version: Option<u64>,
        /// Print the file's text.
        #[arg(long)]
        text: bool,
    },
    /// List stored process versions.
    Versions,
    /// Validate a file with the daemon's rules, applying nothing.
    Validate {
        /// The file to check.
        file: PathBuf,
    },
    /// Replay the stored history under a draft before it goes live: where
    /// every prospect would stand, which criteria would hold whom, and the
    /// period's figures beside the actual ones. Writes nothing.
    Simulate {
        /// The draft process file.
        file: PathBuf,
        /// The period measured [default: the 90 days before now].
        #[command(flatten)]
        period: SimPeriod,
        /// At most this many prospects listed.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Say in words what changed between two versions (to: the current one).
    Diff {
        /// The older version.
        from: u64,
        /// The newer version [default: the version in force].
        to: Option<u64>,
    },
    /// Re-read the process file now (the daemon also does this on every save).
    Reload,
    /// Re-evaluate every open prospect against the process in force now.
    Reevaluate,
}

/// An optional period for `process simulate`.
#[derive(Debug, Args, Clone)]
pub struct SimPeriod {
    /// A calendar month, `YYYY-MM`.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub(crate) month: Option<String>,
    /// Start (inclusive).
    #[arg(long, value_parser = parse_time)]
    pub(crate) from: Option<Millis>,
    /// End (exclusive) [default: now].
    #[arg(long, value_parser = parse_time)]
    pub(crate) to: Option<Millis>,
}

/// A period: `--month 2026-07`, `--quarter 2026-Q3`, or `--from` and `--to`.
#[derive(Debug, Args, Clone)]
pub struct PeriodArgs {
    /// A calendar month, `YYYY-MM`.
    #[arg(long, conflicts_with_all = ["quarter", "from", "to"])]
    pub(crate) month: Option<String>,
    /// A calendar quarter, `YYYY-Qn`.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub(crate) quarter: Option<String>,
    /// Start (inclusive): RFC 3339 or a date.
    #[arg(long, value_parser = parse_time)]
    pub(crate) from: Option<Millis>,
    /// End (exclusive): RFC 3339 or a date [default: now].
    #[arg(long, value_parser = parse_time)]
    pub(crate) to: Option<Millis>,
    /// Only this stage.
    #[arg(long)]
    pub(crate) stage: Option<String>,
    /// Only this rep's prospects.
    #[arg(long)]
    pub(crate) owner: Option<String>,
    /// Only while this process version was in force.
    #[arg(long)]
    pub(crate) version: Option<u64>,
    /// Print CSV.
    #[arg(long)]
    pub(crate) csv: bool,
}

/// Parses `YYYY-MM`, `YYYY-Qn` or `FROM..TO` into [from, to).
pub fn parse_period(text: &str) -> Result<(Millis, Millis), String> {
    let date =
        |y: i16, m: i8| -> Result<Millis, String> { Millis::parse(&format!("{y:04}-{m:02}-01")) };
    if let Some((from, to)) = text.split_once("..") {
        return Ok((Millis::parse(from)?, Millis::parse(to)?));
    }
    let bad = || {
        format!("`{text}` is not a period; use `2026-07`, `2026-Q3` or `2026-07-01..2026-08-15`")
    };
    let (y, rest) = text.split_once('-').ok_or_else(bad)?;
    let y: i16 = y.parse().map_err(|_| bad())?;
    if let Some(q) = rest.strip_prefix('Q').or_else(|| rest.strip_prefix('q')) {
        let q: i8 = q.parse().map_err(|_| bad())?;
        if !(1..=4).contains(&q) {
            return Err(bad());
        }
        let start = date(y, (q - 1) * 3 + 1)?;
        let end = if q == 4 {
            date(y + 1, 1)?
        } else {
            date(y, q * 3 + 1)?
        };
        return Ok((start, end));
    }
    let m: i8 = rest.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) {
        return Err(bad());
    }
    let end = if m == 12 {
        date(y + 1, 1)?
    } else {
        date(y, m + 1)?
    };
    Ok((date(y, m)?, end))
}

impl PeriodArgs {
    pub(crate) fn range(&self) -> Result<(Millis, Millis)> {
        if let Some(m) = &self.month {
            return parse_period(m).map_err(anyhow::Error::msg);
        }
        if let Some(q) = &self.quarter {
            return parse_period(q).map_err(anyhow::Error::msg);
        }
        let to = self.to.unwrap_or_else(Millis::now);
        let from = self
            .from
            .ok_or_else(|| anyhow::anyhow!("give a period: `--month 2026-07`, `--quarter 2026-Q3`, or `--from DATE [--to DATE]`"))?;
        Ok((from, to))
    }
}

/// `stagecoach metrics …`
#[derive(Debug, Subcommand)]
pub enum MetricsCmd {
    /// Per stage: start, entered, exited (by kind), end.
    Flow(PeriodArgs),
    /// Per stage: completed stays in the period, and open stays' ages.
    TimeInStage(PeriodArgs),
    /// Direct conversion per stage, and how far the period's cohort got.
    Conversion(PeriodArgs),
    /// Win rate, cycle length, velocity, weighted pipeline.
    Outcomes(PeriodArgs),
    /// Open prospects idle longer than their stage allows, most idle (or
    /// largest) first, with amounts and a total.
    Stalled {
        /// Only this rep's prospects.
        #[arg(long)]
        owner: Option<String>,
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Order by idle days or by amount.
        #[arg(long, value_enum, default_value_t = StalledOrder::Idle)]
        sort: StalledOrder,
        /// Show at most this many (0: all); the totals count every one.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print CSV.
        #[arg(long)]
        csv: bool,
    },
    /// A scorecard per rep: open pipeline, moves, won, lost, win rate,
    /// cycle, stalled, forced moves, value.
    Owners(PeriodArgs),
    /// Per exit criterion and checklist item: do the deals that met it win
    /// more often? And how often did a warn-mode criterion go unmet?
    Criteria(PeriodArgs),
    /// Are we following our own process? Moves per stage and per owner by
    /// who decided them, why moves were forced, imported outcomes.
    Conformance(PeriodArgs),
    /// Flow, conversion and win rate month by month.
    Trends {
        /// How many months, ending with the current one (or `--to`'s).
        #[arg(long, default_value_t = 12)]
        months: u32,
        /// A date in the last month [default: now].
        #[arg(long, value_parser = parse_time)]
        to: Option<Millis>,
        /// Only this rep's prospects.
        #[arg(long)]
        owner: Option<String>,
        /// Print CSV.
        #[arg(long)]
        csv: bool,
    },
    /// Two periods or process versions side by side.
    Compare {
        /// First period: `2026-06`, `2026-Q2` or `FROM..TO`.
        #[arg(long)]
        a: String,
        /// Second period.
        #[arg(long)]
        b: String,
        /// Restrict the first period to this process version.
        #[arg(long)]
        a_version: Option<u64>,
        /// Restrict the second period to this process version.
        #[arg(long)]
        b_version: Option<u64>,
        /// Only this rep's prospects.
        #[arg(long)]
        owner: Option<String>,
    },
}

/// `metrics stalled --sort`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StalledOrder {
    /// Most idle days first.
    Idle,
    /// Largest amount first.
    Value,
}

/// `stagecoach plugin …`
#[derive(Debug, Subcommand)]
pub enum PluginCmd {
    /// Build plugins into components that import only the Stagecoach
    /// interface: Rust crates (Cargo.toml), Python (pyproject.toml) and
    /// TypeScript/JavaScript (package.json, on QuickJS).
    Build {
        /// Plugin directories [default: every plugin under ./plugins].
        dirs: Vec<PathBuf>,
        /// Where to write `<name>.wasm`.
        #[arg(long, default_value = "plugins")]
        out: PathBuf,
        /// Cargo's target directory for the wasm builds.
        #[arg(long, default_value = "target/plugin-build")]
        target_dir: PathBuf,
        /// Where the Python and JavaScript toolchains are installed on
        /// first use (pinned versions, from PyPI and npm).
        #[arg(
            long,
            default_value = "target/plugin-toolchains",
            env = "STAGECOACH_TOOLCHAINS"
        )]
        toolchains: PathBuf,
        /// Only plugins in this language (with the default directories).
        #[arg(long, value_enum)]
        language: Option<PluginLanguage>,
        /// Compile the built plugins into this cache, so a daemon using it
        /// starts without compiling them (an interpreter takes 10-40 s)
        /// [default: the default data directory's plugin-cache, which
        /// `serve` uses].
        #[arg(long, env = "STAGECOACH_PLUGIN_CACHE")]
        compile_cache: Option<PathBuf>,
        /// Do not compile the built plugins ahead of time.
        #[arg(long, conflicts_with = "compile_cache")]
        no_precompile: bool,
    },
    /// Start a plugin project anywhere on disk (an exit criterion to edit),
    /// with a native test; it builds with `plugins build`.
    New {
        /// The plugin's name (`big-enough`).
        name: String,
        /// Its language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: crate::scaffold::Lang,
        /// Where [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run plugins' native tests: `cargo test`, pytest, or node's test
    /// runner (TypeScript through tsx), with the SDK on the path.
    Test {
        /// Plugin directories (or an SDK's: plugin-sdk/python, plugin-sdk/js).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the Python and JavaScript toolchains are installed.
        #[arg(
            long,
            default_value = "target/plugin-toolchains",
            env = "STAGECOACH_TOOLCHAINS"
        )]
        toolchains: PathBuf,
    },
    /// Compile one component for the daemon's cache: what the daemon runs
    /// to compile a plugin outside its own process.
    #[command(hide = true)]
    CompileWorker {
        /// The component.
        #[arg(long = "in")]
        input: PathBuf,
        /// The compiled artifact.
        #[arg(long)]
        out: PathBuf,
        /// Address-space limit, MiB.
        #[arg(long)]
        max_memory_mib: u64,
    },
    /// Run one plugin on one input, outside the daemon: result, fuel, time, memory.
    Run {
        /// The component file.
        file: PathBuf,
        /// A JSON fixture: `{ "prospect": {...}, "now": ..., "config": {...} }`
        /// (metrics: `{ "prospects": [...], "transitions": [...] }`).
        #[arg(long)]
        input: PathBuf,
        /// Which export to call [default: the first the plugin provides].
        #[arg(long, value_enum)]
        call: Option<crate::plugin_build::Call>,
        /// Fuel limit [default: the daemon's for the plugin's runtime].
        #[arg(long)]
        fuel: Option<u64>,
        /// Memory limit, MiB [default: as the daemon's].
        #[arg(long)]
        memory_mib: Option<u32>,
        /// Wall-clock limit, ms [default: as the daemon's].
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Where compiled plugins are cached (an interpreter's compiles once).
        #[arg(long, default_value = "target/plugin-toolchains/compiled")]
        cache: PathBuf,
    },
    /// List the daemon's loaded plugins with calls, failures and mean time.
    List,
}

/// `status --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// For people.
    Text,
    /// The OpenMetrics text format.
    Openmetrics,
}

/// A plugin's language, for `plugins build --language`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PluginLanguage {
    /// Rust crates.
    Rust,
    /// Python packages.
    Python,
    /// TypeScript and JavaScript packages.
    Js,
}

/// `stagecoach prospect …`
#[derive(Debug, Subcommand)]
pub enum ProspectCmd {
    /// Create a prospect (in the first stage unless `--stage`; `add` also works).
    #[command(visible_alias = "add")]
    Create {
        /// Person or deal name.
        name: String,
        /// Company.
        #[arg(long)]
        company: Option<String>,
        /// Owning rep.
        #[arg(long)]
        owner: Option<String>,
        /// A field, `key=value` (numbers and yes/no are typed). Repeatable.
        #[arg(long = "field", value_name = "KEY=VALUE")]
        fields: Vec<String>,
        /// Starting stage.
        #[arg(long)]
        stage: Option<String>,
        /// Id in another system (makes re-imports idempotent).
        #[arg(long)]
        external_id: Option<String>,
        /// When it happened.
        #[command(flatten)]
        at: At,
    },
    /// Get a prospect: stage, each exit criterion met or unmet, history
    /// (`show` also works).
    #[command(visible_alias = "show")]
    Get {
        /// Prospect id.
        id: u64,
    },
    /// List prospects.
    List {
        /// Only open prospects in this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Only this rep's prospects.
        #[arg(long)]
        owner: Option<String>,
        /// Only open, won or lost.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only ids after this one (paging).
        #[arg(long)]
        after: Option<u64>,
    },
    /// Change a prospect's details or fields (recorded in its history).
    Update {
        /// Prospect id.
        id: u64,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New company.
        #[arg(long)]
        company: Option<String>,
        /// New owner.
        #[arg(long)]
        owner: Option<String>,
        /// Set a field, `key=value`. Repeatable.
        #[arg(long = "field", value_name = "KEY=VALUE")]
        fields: Vec<String>,
        /// Remove a field. Repeatable.
        #[arg(long = "unset", value_name = "KEY")]
        unset: Vec<String>,
        /// When it happened.
        #[command(flatten)]
        at: At,
    },
    /// Dry run: which exit criteria are met now.
    Evaluate {
        /// Prospect id.
        id: u64,
    },
    /// Move to the next stage if every exit criterion is met.
    Advance {
        /// Prospect id.
        id: u64,
        /// When it happened.
        #[command(flatten)]
        at: At,
    },
    /// Force a move regardless of the exit criteria (recorded as forced).
    Move {
        /// Prospect id.
        id: u64,
        /// Target stage id.
        stage: String,
        /// Why the criteria are overridden.
        #[arg(long)]
        reason: String,
        /// When it happened.
        #[command(flatten)]
        at: At,
    },
    /// Close as won (from the last stage, criteria met) or lost.
    Close {
        /// Prospect id.
        id: u64,
        /// `won` or `lost`.
        outcome: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        /// When it happened.
        #[command(flatten)]
        at: At,
    },
}

/// `stagecoach activity …`
#[derive(Debug, Subcommand)]
pub enum ActivityCmd {
    /// Record what a prospect (or rep) did; moves the prospect on when its
    /// stage's exit criteria are now met.
    Record {
        /// Prospect id.
        id: u64,
        /// What happened (`replied`, `demo_attended`, …).
        kind: String,
        /// `prospect` or `rep` [default: the kind's declared actor].
        #[arg(long)]
        actor: Option<String>,
        /// Extra data, `key=value`. Repeatable.
        #[arg(long = "data", value_name = "KEY=VALUE")]
        data: Vec<String>,
        /// When it happened.
        #[command(flatten)]
        at: At,
    },
    /// List a prospect's activities.
    List {
        /// Prospect id.
        id: u64,
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
    },
}

/// `--at TIME` for history recorded after the fact.
#[derive(Debug, Args)]
pub struct At {
    /// When it happened: RFC 3339 or a date [default: now].
    #[arg(long, value_parser = parse_time)]
    pub(crate) at: Option<Millis>,
}

pub(crate) fn parse_time(text: &str) -> Result<Millis, String> {
    Millis::parse(text)
}

/// The default data directory: `$XDG_DATA_HOME/stagecoach` or `~/.local/share/stagecoach`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("stagecoach");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/stagecoach")
}

impl Cli {
    /// The data directory in force.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// The socket path in force.
    pub fn socket(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| self.data_dir().join("stagecoach.sock"))
    }
}
