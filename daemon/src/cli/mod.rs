//! The command line: `stagecoach serve` runs the daemon, every other
//! subcommand is a client of its socket. Tables for people by default,
//! `--json` for scripts; errors on stderr with a non-zero exit code.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::{Cell, Color, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Map, Value, json};

use stagecoach_client::Client;
use stagecoach_types::api::{Method, methods, params};
use stagecoach_types::model::{FieldValue, Millis};

mod history;
pub use history::{DiscoverArgs, ExportArgs, ImportArgs, MappingArgs, discover_local};

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
        /// Longest request line, in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        max_line: usize,
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
        /// Make every commit save what the check after a crash would
        /// rebuild: a second sync per commit, and a start after `kill -9`
        /// as quick as any other instead of a full check of the file.
        #[arg(long)]
        quick_repair: bool,
    },
    /// Show what the daemon is running and how it is doing.
    Status,
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
    /// Write a self-contained HTML report (funnel, flow, time in stage,
    /// conversion, stalled, latest process change) for a period.
    Report {
        /// The period.
        #[command(flatten)]
        period: PeriodArgs,
        /// The HTML file to write.
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
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
    },
    /// Import a CRM's CSV export (HubSpot, Salesforce, Pipedrive, …: deals,
    /// activities, stage history): outcomes as the source has them, dated
    /// stage history where it has one, otherwise activities replayed under
    /// the exit criteria; nothing written unless every row resolves;
    /// idempotent by external id.
    Import(ImportArgs),
    /// Export prospects, activities or transitions as CSV or NDJSON.
    Export(ExportArgs),
    /// Learn the process from closed deals (the database, or CSV files with
    /// `--prospects` and `--activities`): steps, graph, paths, owners, and a
    /// draft `process.toml`.
    Discover(DiscoverArgs),
    /// WebAssembly plugins: build, run, list.
    #[command(subcommand)]
    Plugin(PluginCmd),
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

/// A period: `--month 2026-07`, `--quarter 2026-Q3`, or `--from` and `--to`.
#[derive(Debug, Args, Clone)]
pub struct PeriodArgs {
    /// A calendar month, `YYYY-MM`.
    #[arg(long, conflicts_with_all = ["quarter", "from", "to"])]
    month: Option<String>,
    /// A calendar quarter, `YYYY-Qn`.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    quarter: Option<String>,
    /// Start (inclusive): RFC 3339 or a date.
    #[arg(long, value_parser = parse_time)]
    from: Option<Millis>,
    /// End (exclusive): RFC 3339 or a date [default: now].
    #[arg(long, value_parser = parse_time)]
    to: Option<Millis>,
    /// Only this stage.
    #[arg(long)]
    stage: Option<String>,
    /// Only this rep's prospects.
    #[arg(long)]
    owner: Option<String>,
    /// Only while this process version was in force.
    #[arg(long)]
    version: Option<u64>,
    /// Print CSV.
    #[arg(long)]
    csv: bool,
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
    /// `--stage` is an error, not ignored, where a figure is not per stage.
    fn refuse_stage(&self, why: &str) -> Result<()> {
        match &self.stage {
            Some(_) => anyhow::bail!("`--stage` does not apply here: {why}"),
            None => Ok(()),
        }
    }

    fn range(&self) -> Result<(Millis, Millis)> {
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

    fn period(&self) -> Result<params::Period> {
        let (from, to) = self.range()?;
        Ok(params::Period {
            from,
            to,
            stage: self.stage.clone(),
            owner: self.owner.clone(),
            version: self.version,
        })
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
    /// Open prospects idle longer than their stage allows.
    Stalled {
        /// Only this rep's prospects.
        #[arg(long)]
        owner: Option<String>,
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
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

/// `stagecoach plugin …`
#[derive(Debug, Subcommand)]
pub enum PluginCmd {
    /// Build plugin crates into components (`wasm32-unknown-unknown`, no WASI).
    Build {
        /// Plugin crate directories [default: every crate under ./plugins].
        dirs: Vec<PathBuf>,
        /// Where to write `<name>.wasm`.
        #[arg(long, default_value = "plugins")]
        out: PathBuf,
        /// Cargo's target directory for the wasm builds.
        #[arg(long, default_value = "target/plugin-build")]
        target_dir: PathBuf,
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
        /// Fuel limit.
        #[arg(long, default_value_t = 10_000_000)]
        fuel: u64,
        /// Memory limit, MiB.
        #[arg(long, default_value_t = 32)]
        memory_mib: u32,
        /// Wall-clock limit, ms.
        #[arg(long, default_value_t = 50)]
        timeout_ms: u64,
    },
    /// List the daemon's loaded plugins with calls, failures and mean time.
    List,
}

/// `stagecoach prospect …`
#[derive(Debug, Subcommand)]
pub enum ProspectCmd {
    /// Add a prospect (in the first stage unless `--stage`).
    Add {
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
    /// Show a prospect: stage, each exit criterion met or unmet, history.
    Show {
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
    at: Option<Millis>,
}

fn parse_time(text: &str) -> Result<Millis, String> {
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

fn key_values(pairs: &[String], what: &str) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("{what} `{pair}` is not `key=value`\nhint: for example `--{what} budget=12000`");
        };
        map.insert(k.trim().to_string(), json!(FieldValue::parse_cli(v.trim())));
    }
    Ok(map)
}

fn options_start(o: &crate::demo::DemoOptions) -> Millis {
    Millis(o.now.0 - i64::from(o.months) * 30 * Millis::DAY)
}

/// Runs a client subcommand.
pub async fn run_client(cli: &Cli) -> Result<()> {
    let socket = cli.socket();
    let mut client = Client::connect(&socket).await?;
    let (method, params): (&str, Value) = match &cli.command {
        Command::Serve { .. }
        | Command::Lint { .. }
        | Command::Plugin(PluginCmd::Build { .. } | PluginCmd::Run { .. }) => {
            unreachable!("not a client command")
        }
        Command::Plugin(PluginCmd::List) => typed::<methods::PluginsList>(params::NoParams {}),
        Command::Import(args) => return history::import(&mut client, args, cli.json).await,
        Command::Export(args) => return history::export(&mut client, args).await,
        Command::Discover(args) => {
            let found = client
                .request::<methods::ProcessDiscover>(&history::discover_request(args))
                .await?;
            return history::emit(args, &found, cli.json);
        }
        Command::Metrics(cmd) => metrics_request(cmd)?,
        Command::Report { period, out } => {
            let (from, to) = period.range()?;
            let html = crate::report::build(&mut client, from, to).await?;
            std::fs::write(out, html)
                .with_context(|| format!("cannot write `{}`", out.display()))?;
            println!("wrote {}", out.display());
            return Ok(());
        }
        Command::Demo {
            prospects,
            months,
            seed,
            keep_process,
        } => {
            let started = std::time::Instant::now();
            let options = crate::demo::DemoOptions {
                prospects: *prospects,
                months: *months,
                seed: *seed,
                now: Millis::now(),
                change_process: !keep_process,
            };
            let s = crate::demo::run(&mut client, &options).await?;
            println!(
                "demo: {} prospects, {} activities, {} won, {} lost in {:.1} s{}",
                s.prospects,
                s.activities,
                s.won,
                s.lost,
                started.elapsed().as_secs_f64(),
                if s.refused > 0 {
                    format!(" ({} requests refused)", s.refused)
                } else {
                    String::new()
                }
            );
            match (&s.process_change, &s.no_change) {
                (Some((version, at)), _) => println!(
                    "mid-way, on {}, the process changed (version {version}): research exits on the shared requirements alone; the process file now says so\ncompare: stagecoach metrics compare --a {}..{} --a-version {} --b {}..{} --b-version {version}",
                    &at.to_string()[..10],
                    &options_start(&options).to_string()[..10],
                    &at.to_string()[..10],
                    version - 1,
                    &at.to_string()[..10],
                    &options.now.to_string()[..10],
                ),
                (None, Some(why)) => println!("no process change: {why}"),
                (None, None) => {}
            }
            println!(
                "try: stagecoach metrics flow --from {} ",
                &options_start(&options).to_string()[..10]
            );
            return Ok(());
        }
        Command::Watch => return watch(&mut client, cli.json).await,
        Command::Status => typed::<methods::DaemonStatus>(params::NoParams {}),
        Command::Process(ProcessCmd::Show { version, .. }) => {
            typed::<methods::ProcessGet>(params::ProcessGet { version: *version })
        }
        Command::Process(ProcessCmd::Versions) => {
            typed::<methods::ProcessVersions>(params::NoParams {})
        }
        Command::Process(ProcessCmd::Diff { from, to }) => {
            typed::<methods::ProcessDiff>(params::ProcessDiff {
                from: *from,
                to: *to,
            })
        }
        Command::Process(ProcessCmd::Reload) => {
            typed::<methods::ProcessReload>(params::ProcessReload::default())
        }
        Command::Process(ProcessCmd::Reevaluate) => {
            typed::<methods::ProcessReevaluate>(params::ProcessReevaluate::default())
        }
        Command::Process(ProcessCmd::Validate { file }) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read `{}`", file.display()))?;
            typed::<methods::ProcessValidate>(params::ProcessValidate {
                text,
                file: Some(file.display().to_string()),
            })
        }
        Command::Prospect(cmd) => prospect_request(cmd)?,
        Command::Activity(ActivityCmd::Record {
            id,
            kind,
            actor,
            data,
            at,
        }) => typed::<methods::ActivityRecord>(params::NewActivity {
            prospect: *id,
            kind: kind.clone(),
            actor: actor.as_deref().map(|a| choice("--actor", a)).transpose()?,
            at: at.at,
            data: key_values(data, "data")?,
        }),
        Command::Activity(ActivityCmd::List { id, kind }) => {
            typed::<methods::ActivityList>(params::ActivityList {
                prospect: *id,
                kind: kind.clone(),
            })
        }
    };
    let result = match client.call(method, params).await {
        Ok(r) => r,
        Err(stagecoach_client::ClientError::Rpc(e)) => {
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&json!({ "error": e }))?);
            }
            let mut message = e.message.clone();
            if let Some(unmet) = e
                .data
                .as_ref()
                .and_then(|d| d.get("unmet"))
                .and_then(Value::as_array)
            {
                for v in unmet {
                    message.push_str(&format!(
                        "\n  ✗ {} — {}",
                        v["question"].as_str().unwrap_or(""),
                        v["reason"].as_str().unwrap_or("")
                    ));
                }
            }
            if let Some(errors) = e
                .data
                .as_ref()
                .and_then(|d| d.get("errors"))
                .and_then(Value::as_array)
            {
                for err in errors {
                    message.push_str(&format!("\n  {}", render_process_error(err)));
                }
            }
            bail!(message);
        }
        Err(e) => return Err(e.into()),
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    render(&cli.command, &result);
    if let Command::Process(ProcessCmd::Validate { .. }) = &cli.command
        && result["valid"] == json!(false)
    {
        bail!("the process file is invalid");
    }
    Ok(())
}

fn prospect_request(cmd: &ProspectCmd) -> Result<(&'static str, Value)> {
    Ok(match cmd {
        ProspectCmd::Add {
            name,
            company,
            owner,
            fields,
            stage,
            external_id,
            at,
        } => typed::<methods::ProspectCreate>(params::NewProspect {
            name: name.clone(),
            company: company.clone(),
            owner: owner.clone(),
            fields: serde_json::from_value(Value::Object(key_values(fields, "field")?))?,
            stage: stage.clone(),
            external_id: external_id.clone(),
            at: at.at,
        }),
        ProspectCmd::Show { id } => {
            typed::<methods::ProspectGet>(params::ById { id: *id, at: None })
        }
        ProspectCmd::Evaluate { id } => {
            typed::<methods::ProspectEvaluate>(params::ById { id: *id, at: None })
        }
        ProspectCmd::List {
            stage,
            owner,
            status,
            limit,
            after,
        } => typed::<methods::ProspectList>(params::ProspectList {
            stage: stage.clone(),
            owner: owner.clone(),
            status: status
                .as_deref()
                .map(|s| choice("--status", s))
                .transpose()?,
            limit: Some(*limit),
            after: *after,
        }),
        ProspectCmd::Update {
            id,
            name,
            company,
            owner,
            fields,
            unset,
            at,
        } => {
            let mut f = key_values(fields, "field")?;
            for k in unset {
                f.insert(k.clone(), Value::Null);
            }
            typed::<methods::ProspectUpdate>(params::ProspectUpdate {
                id: *id,
                name: name.clone(),
                company: company.clone(),
                owner: owner.clone(),
                fields: f,
                at: at.at,
            })
        }
        ProspectCmd::Advance { id, at } => {
            typed::<methods::ProspectAdvance>(params::ById { id: *id, at: at.at })
        }
        ProspectCmd::Move {
            id,
            stage,
            reason,
            at,
        } => typed::<methods::ProspectMove>(params::ProspectMove {
            id: *id,
            to: stage.clone(),
            reason: reason.clone(),
            by: std::env::var("USER").ok(),
            at: at.at,
        }),
        ProspectCmd::Close {
            id,
            outcome,
            reason,
            at,
        } => typed::<methods::ProspectClose>(params::ProspectClose {
            id: *id,
            outcome: choice("outcome", outcome)?,
            reason: reason.clone(),
            at: at.at,
        }),
    })
}

/// One of an enum's wire values (`won`, `rep`, …), or an error listing
/// what the argument accepts.
fn choice<T: serde::de::DeserializeOwned>(what: &str, value: &str) -> Result<T> {
    serde_json::from_value(Value::String(value.to_string()))
        .map_err(|e| anyhow::anyhow!("{what} `{value}`: {e}"))
}

async fn watch(client: &mut Client, as_json: bool) -> Result<()> {
    client.call("events.subscribe", json!({})).await?;
    eprintln!("watching for events (Ctrl-C to stop)");
    while let Some(message) = client.next_message().await? {
        if as_json {
            println!("{message}");
            continue;
        }
        let method = message["method"].as_str().unwrap_or("?");
        let p = &message["params"];
        match method {
            "prospect.moved" => {
                let t = &p["transition"];
                println!(
                    "{}  prospect {} ({})  {} → {}  [{}]",
                    t["at"].as_str().unwrap_or(""),
                    p["prospect"]["id"],
                    p["prospect"]["name"].as_str().unwrap_or(""),
                    t["from"].as_str().unwrap_or("-"),
                    t["to"].as_str().unwrap_or(""),
                    t["kind"].as_str().unwrap_or(""),
                );
            }
            _ => println!("{method}  {p}"),
        }
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(headers.to_vec());
    t
}

fn render_process_error(e: &Value) -> String {
    let mut s = format!(
        "{}:{}:{}: ",
        text(&e["file"]),
        text(&e["line"]),
        text(&e["column"])
    );
    if let Some(key) = e["key"].as_str().filter(|k| !k.is_empty()) {
        s.push_str(key);
        s.push_str(": ");
    }
    s.push_str(&text(&e["message"]));
    if let Some(h) = e["hint"].as_str() {
        s.push_str(&format!("\n    hint: {h}"));
    }
    s
}

fn render_moves(moves: &Value) {
    for m in moves.as_array().into_iter().flatten() {
        if m["kind"] == "created" {
            continue;
        }
        println!(
            "moved {} → {} ({}) at {}",
            text(&m["from"]),
            text(&m["to"]),
            text(&m["kind"]),
            text(&m["at"])
        );
    }
}

fn render_verdicts(verdicts: &Value) {
    for v in verdicts.as_array().into_iter().flatten() {
        let mark = if v["met"] == json!(true) {
            "✓"
        } else {
            "✗"
        };
        println!(
            "  {mark} {}  — {}",
            text(&v["question"]),
            text(&v["reason"])
        );
    }
}

fn render(command: &Command, r: &Value) {
    match command {
        Command::Status => {
            println!(
                "stagecoach {}  pid {}  up {}s",
                text(&r["version"]),
                r["pid"],
                r["uptime_seconds"]
            );
            println!("socket    {}", text(&r["socket"]));
            println!("data dir  {}", text(&r["data_dir"]));
            let p = &r["process"];
            println!(
                "process   {} v{} ({}) from {}",
                text(&p["name"]),
                p["version"],
                &text(&p["hash"])[..12.min(text(&p["hash"]).len())],
                text(&p["path"])
            );
            if let Some(message) = p["review"]["message"].as_str() {
                println!("review due: {message}");
            }
            if !p["last_error"].is_null() {
                println!("last rejected edit:");
                for e in p["last_error"]["errors"].as_array().into_iter().flatten() {
                    println!("  {}", render_process_error(e));
                }
            }
            let c = &r["counts"];
            println!(
                "prospects {} ({} open)  activities {}  transitions {}",
                c["prospects"], c["open_prospects"], c["activities"], c["transitions"]
            );
            println!(
                "connections {}  commits {}  writes {}",
                r["connections"], r["writer"]["commits"], r["writer"]["requests"]
            );
        }
        Command::Process(ProcessCmd::Show {
            text: show_text, ..
        }) => {
            if *show_text || r.get("process").is_none() {
                print!("{}", text(&r["text"]));
                return;
            }
            let p = &r["process"];
            println!(
                "{} — version {} loaded {}",
                text(&p["name"]),
                r["version"],
                text(&r["loaded_at"])
            );
            let mut t = table(&["#", "stage", "name", "advance", "exit criteria"]);
            for (i, s) in p["stages"].as_array().into_iter().flatten().enumerate() {
                let criteria: Vec<String> = s["exit"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| text(&c["question"]))
                    .collect();
                t.add_row(vec![
                    (i + 1).to_string(),
                    text(&s["id"]),
                    text(&s["name"]),
                    text(&s["advance"]),
                    criteria.join("\n"),
                ]);
            }
            println!("{t}");
        }
        Command::Process(ProcessCmd::Versions) => {
            let mut t = table(&["version", "loaded at", "in force from", "hash", "path"]);
            for v in r["versions"].as_array().into_iter().flatten() {
                let mark = if v["version"] == r["current"] {
                    " (current)"
                } else {
                    ""
                };
                t.add_row(vec![
                    format!("{}{mark}", v["version"]),
                    text(&v["loaded_at"]),
                    text(&v["in_force_from"]),
                    text(&v["hash"]).chars().take(12).collect(),
                    text(&v["path"]),
                ]);
            }
            println!("{t}");
        }
        Command::Process(ProcessCmd::Validate { .. }) => {
            if r["valid"] == json!(true) {
                println!("valid: {} stages", r["stages"]);
                for w in r["warnings"].as_array().into_iter().flatten() {
                    println!("{}", render_warning("", w));
                }
                let changes = r["changes"].as_array().map_or(0, Vec::len);
                if changes > 0 {
                    println!("compared with the version in force:");
                    for c in r["changes"].as_array().into_iter().flatten() {
                        println!("  {}", text(c));
                    }
                }
            } else {
                for e in r["errors"].as_array().into_iter().flatten() {
                    eprintln!("{}", render_process_error(e));
                }
            }
        }
        Command::Prospect(ProspectCmd::Add { .. }) => {
            println!("prospect {} created in `{}`", r["id"], text(&r["stage"]));
            render_moves(&r["moves"]);
        }
        Command::Prospect(ProspectCmd::Show { .. } | ProspectCmd::Evaluate { .. }) => {
            println!("prospect {}: {}", r["id"], text(&r["name"]));
            if !r["company"].is_null() {
                println!("company   {}", text(&r["company"]));
            }
            if !r["owner"].is_null() {
                println!("owner     {}", text(&r["owner"]));
            }
            println!(
                "stage     {} ({})  status {}  since {}",
                text(&r["stage_name"]),
                text(&r["stage"]),
                text(&r["status"]),
                text(&r["stage_entered_at"])
            );
            if let Some(fields) = r["fields"].as_object().filter(|f| !f.is_empty()) {
                let list: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", text(v)))
                    .collect();
                println!("fields    {}", list.join("  "));
            }
            if r.get("verdicts").is_some() {
                let ready = if r["ready"] == json!(true) {
                    format!("ready to move to `{}`", text(&r["next_stage"]))
                } else {
                    "not ready to move on".to_string()
                };
                println!("exit criteria ({ready}):");
                render_verdicts(&r["verdicts"]);
            }
            for c in r["checklists"].as_array().into_iter().flatten() {
                if let Some(e) = c["error"].as_str() {
                    println!("checklist {}: unavailable ({e})", text(&c["name"]));
                    continue;
                }
                println!(
                    "checklist {} ({}/{} done):",
                    text(&c["name"]),
                    c["done"],
                    c["total"]
                );
                for item in c["items"].as_array().into_iter().flatten() {
                    let mark = if item["done"] == json!(true) {
                        "✓"
                    } else {
                        "·"
                    };
                    println!(
                        "  {mark} {}  — {}",
                        text(&item["label"]),
                        text(&item["evidence"])
                    );
                }
            }
            if let Some(history) = r["transitions"].as_array() {
                let mut t = table(&["at", "from", "to", "kind", "version", "reason"]);
                for m in history {
                    t.add_row(vec![
                        text(&m["at"]),
                        text(&m["from"]),
                        text(&m["to"]),
                        text(&m["kind"]),
                        text(&m["process_version"]),
                        text(&m["reason"]),
                    ]);
                }
                println!("{t}");
            }
        }
        Command::Prospect(ProspectCmd::List { .. }) => {
            let mut t = table(&[
                "id",
                "name",
                "company",
                "owner",
                "stage",
                "status",
                "in stage since",
            ]);
            for p in r["prospects"].as_array().into_iter().flatten() {
                let status = text(&p["status"]);
                let status_cell = match status.as_str() {
                    "won" => Cell::new(status).fg(Color::Green),
                    "lost" => Cell::new(status).fg(Color::Red),
                    _ => Cell::new(status),
                };
                t.add_row(vec![
                    Cell::new(text(&p["id"])),
                    Cell::new(text(&p["name"])),
                    Cell::new(text(&p["company"])),
                    Cell::new(text(&p["owner"])),
                    Cell::new(text(&p["stage"])),
                    status_cell,
                    Cell::new(text(&p["stage_entered_at"])),
                ]);
            }
            println!("{t}");
            if !r["next"].is_null() {
                println!("more: --after {}", r["next"]);
            }
        }
        Command::Prospect(ProspectCmd::Update { .. }) => {
            println!(
                "prospect {} updated; stage `{}`",
                r["id"],
                text(&r["stage"])
            );
            render_moves(&r["moves"]);
        }
        Command::Prospect(_) => {
            render_moves(&r["moves"]);
            println!("now: {} ({})", text(&r["stage"]), text(&r["status"]));
        }
        Command::Activity(ActivityCmd::Record { .. }) => {
            let a = &r["activity"];
            println!(
                "recorded `{}` by the {} at {}",
                text(&a["kind"]),
                text(&a["actor"]),
                text(&a["at"])
            );
            render_moves(&r["moves"]);
            println!("now: {} ({})", text(&r["stage"]), text(&r["status"]));
        }
        Command::Activity(ActivityCmd::List { .. }) => {
            let mut t = table(&["id", "at", "kind", "actor", "data"]);
            for a in r["activities"].as_array().into_iter().flatten() {
                let data = if a["data"].is_null() {
                    String::new()
                } else {
                    a["data"].to_string()
                };
                t.add_row(vec![
                    text(&a["id"]),
                    text(&a["at"]),
                    text(&a["kind"]),
                    text(&a["actor"]),
                    data,
                ]);
            }
            println!("{t}");
        }
        Command::Process(ProcessCmd::Diff { .. }) => {
            println!("version {} → {}:", r["from"], r["to"]);
            let changes = r["changes"].as_array().cloned().unwrap_or_default();
            if changes.is_empty() {
                println!("  no changes");
            }
            for c in changes {
                println!("  {}", text(&c));
            }
        }
        Command::Process(ProcessCmd::Reload) => match r["outcome"].as_str() {
            Some("unchanged") => println!("unchanged: version {} is in force", r["version"]),
            _ => {
                println!(
                    "version {} is in force (was {})",
                    r["version"], r["previous"]
                );
                for c in r["changes"].as_array().into_iter().flatten() {
                    println!("  {}", text(c));
                }
            }
        },
        Command::Process(ProcessCmd::Reevaluate) => {
            println!(
                "evaluated {} open prospects against version {}: {} moved ({} transitions)",
                r["evaluated"], r["process_version"], r["moved"], r["transitions"]
            );
        }
        Command::Plugin(PluginCmd::List) => {
            let mut t = table(&[
                "plugin",
                "provides",
                "hash",
                "interface",
                "calls",
                "failures",
                "mean µs",
            ]);
            for p in r["plugins"].as_array().into_iter().flatten() {
                let provides: Vec<String> = p["provides"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                t.add_row(vec![
                    text(&p["name"]),
                    provides.join(", "),
                    text(&p["hash"]).chars().take(12).collect(),
                    text(&p["interface"]),
                    text(&p["calls"]),
                    text(&p["failures"]),
                    format!("{:.1}", p["mean_micros"].as_f64().unwrap_or(0.0)),
                ]);
            }
            println!("{t}");
        }
        Command::Metrics(cmd) => render_metrics(cmd, r),
        Command::Serve { .. }
        | Command::Watch
        | Command::Lint { .. }
        | Command::Plugin(_)
        | Command::Demo { .. }
        | Command::Import(_)
        | Command::Export(_)
        | Command::Discover(_)
        | Command::Report { .. } => {}
    }
}

fn render_warning(file: &str, w: &Value) -> String {
    let position = match (w["line"].as_u64(), w["column"].as_u64()) {
        (Some(l), Some(c)) if l > 0 => format!("{file}:{l}:{c}: "),
        _ if !file.is_empty() => format!("{file}: "),
        _ => String::new(),
    };
    format!(
        "{position}warning[{}]: {}: {}\n    hint: {}",
        text(&w["rule"]),
        text(&w["key"]),
        text(&w["message"]),
        text(&w["hint"])
    )
}

/// `stagecoach lint`: local, no daemon needed.
pub fn lint_file(file: &std::path::Path, strict: bool, as_json: bool) -> Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    let name = file.display().to_string();
    let changed = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Millis(d.as_millis() as i64));
    match stagecoach_core::process::Process::parse(&text, &name) {
        Err(invalid) => {
            if as_json {
                println!(
                    "{}",
                    json!({ "valid": false, "errors": invalid.errors, "warnings": [] })
                );
            } else {
                eprintln!("{invalid}");
            }
            bail!(
                "{} error{} in `{name}`",
                invalid.errors.len(),
                if invalid.errors.len() == 1 { "" } else { "s" }
            );
        }
        Ok(process) => {
            let warnings = stagecoach_core::lint::lint(&process, Millis::now(), changed);
            if as_json {
                println!(
                    "{}",
                    json!({ "valid": true, "errors": [], "warnings": warnings })
                );
            } else {
                for w in &warnings {
                    println!("{}", render_warning(&name, &json!(w)));
                }
                println!(
                    "{name}: {} stages, {} warning{}",
                    process.stages.len(),
                    warnings.len(),
                    if warnings.len() == 1 { "" } else { "s" }
                );
            }
            if strict && !warnings.is_empty() {
                bail!("warnings in `{name}` (--strict)");
            }
            Ok(())
        }
    }
}

/// `stagecoach plugin build` and `plugin run`: local, no daemon needed.
pub fn plugin_local(cmd: &PluginCmd, as_json: bool) -> Result<()> {
    match cmd {
        PluginCmd::Build {
            dirs,
            out,
            target_dir,
        } => {
            let dirs = if dirs.is_empty() {
                let mut found: Vec<PathBuf> = std::fs::read_dir("plugins")
                    .context("cannot list `plugins/`; pass the plugin crate directories")?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join("Cargo.toml").exists())
                    .collect();
                found.sort();
                found
            } else {
                dirs.clone()
            };
            if dirs.is_empty() {
                bail!(
                    "no plugin crates found\nhint: pass the crate directories, or put them under ./plugins"
                );
            }
            let built = crate::plugin_build::build_crates(&dirs, out, target_dir)
                .map_err(anyhow::Error::msg)?;
            for file in &built {
                let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
                println!("built {} ({} KiB)", file.display(), size / 1024);
            }
            Ok(())
        }
        PluginCmd::Run {
            file,
            input,
            call,
            fuel,
            memory_mib,
            timeout_ms,
        } => {
            let limits = stagecoach_plugin_host::Limits {
                fuel: *fuel,
                memory_mib: *memory_mib,
                timeout_ms: *timeout_ms,
                ..Default::default()
            };
            let r = crate::plugin_build::run_fixture(file, input, *call, limits)
                .map_err(anyhow::Error::msg)?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            }
            println!(
                "plugin    {} — {}",
                text(&r["plugin"]["name"]),
                text(&r["plugin"]["description"])
            );
            println!("result    {}", serde_json::to_string_pretty(&r["result"])?);
            println!("fuel      {}", r["fuel_used"]);
            println!("time      {:.1} µs", r["micros"].as_f64().unwrap_or(0.0));
            println!(
                "memory    {} KiB peak",
                r["peak_memory_bytes"].as_u64().unwrap_or(0) / 1024
            );
            Ok(())
        }
        PluginCmd::List => unreachable!("a client command"),
    }
}

/// A request for method `M`, built from its typed parameters: the name and
/// the parameters come from the contract the daemon serves.
fn typed<M: Method>(params: M::Params) -> (&'static str, Value) {
    (
        M::NAME,
        serde_json::to_value(params).expect("parameters serialize"),
    )
}

fn metrics_request(cmd: &MetricsCmd) -> Result<(&'static str, Value)> {
    Ok(match cmd {
        MetricsCmd::Flow(p) => typed::<methods::MetricsFlow>(p.period()?),
        MetricsCmd::TimeInStage(p) => typed::<methods::MetricsTimeInStage>(p.period()?),
        MetricsCmd::Conversion(p) => {
            p.refuse_stage("conversion is per stage already")?;
            let period = p.period()?;
            typed::<methods::MetricsConversion>(params::ConversionPeriod {
                from: period.from,
                to: period.to,
                owner: period.owner,
                version: period.version,
            })
        }
        MetricsCmd::Outcomes(p) => {
            p.refuse_stage("outcomes are of closed deals, whatever stage they closed from")?;
            if p.version.is_some() {
                anyhow::bail!(
                    "`--version` does not apply to `metrics outcomes`: give the period the version was in force (`stagecoach process versions` lists the windows)"
                );
            }
            let period = p.period()?;
            typed::<methods::MetricsOutcomes>(params::OutcomesPeriod {
                from: period.from,
                to: period.to,
                owner: period.owner,
                amount_field: None,
            })
        }
        MetricsCmd::Stalled { owner, stage, .. } => {
            typed::<methods::MetricsStalled>(params::MetricsStalled {
                owner: owner.clone(),
                stage: stage.clone(),
            })
        }
        MetricsCmd::Compare {
            a,
            b,
            a_version,
            b_version,
            owner,
        } => {
            let side = |text: &str, version: Option<u64>| -> Result<params::Period> {
                let (from, to) = parse_period(text).map_err(anyhow::Error::msg)?;
                Ok(params::Period {
                    from,
                    to,
                    stage: None,
                    owner: owner.clone(),
                    version,
                })
            };
            typed::<methods::MetricsCompare>(params::MetricsCompare {
                a: side(a, *a_version)?,
                b: side(b, *b_version)?,
            })
        }
    })
}

fn num(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.2}"),
            _ => n.to_string(),
        },
        other => text(other),
    }
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or("-".into(), |f| format!("{:.1}%", f * 100.0))
}

/// Prints rows as CSV (`--csv`) or as a table.
fn emit(csv_out: bool, headers: &[&str], rows: Vec<Vec<String>>) {
    if csv_out {
        let mut w = csv::Writer::from_writer(std::io::stdout());
        let _ = w.write_record(headers);
        for r in rows {
            let _ = w.write_record(&r);
        }
        let _ = w.flush();
        return;
    }
    let mut t = table(headers);
    for r in rows {
        t.add_row(r);
    }
    println!("{t}");
}

fn render_metrics(cmd: &MetricsCmd, r: &Value) {
    let rows_of = |r: &Value| r["rows"].as_array().cloned().unwrap_or_default();
    match cmd {
        MetricsCmd::Flow(p) => {
            if !p.csv {
                println!("flow {} → {}", text(&r["from"]), text(&r["to"]));
            }
            let kinds = ["advanced", "skipped", "regressed", "forced", "won", "lost"];
            let mut headers = vec!["stage", "start", "entered", "exited", "end"];
            headers.extend(kinds);
            let rows = rows_of(r)
                .iter()
                .map(|x| {
                    let mut row = vec![
                        text(&x["stage"]),
                        num(&x["start"]),
                        num(&x["entered"]),
                        num(&x["exited"]),
                        num(&x["end"]),
                    ];
                    row.extend(kinds.iter().map(|k| num(&x["exited_by_kind"][k])));
                    row
                })
                .collect();
            emit(p.csv, &headers, rows);
        }
        MetricsCmd::TimeInStage(p) => {
            let rows = rows_of(r)
                .iter()
                .map(|x| {
                    let c = &x["completed"];
                    let o = &x["open_ages"];
                    vec![
                        text(&x["stage"]),
                        num(&c["count"]),
                        num(&c["mean_days"]),
                        num(&c["median_days"]),
                        num(&c["p90_days"]),
                        num(&o["count"]),
                        num(&o["median_days"]),
                    ]
                })
                .collect();
            emit(
                p.csv,
                &[
                    "stage",
                    "stays ended",
                    "mean days",
                    "median days",
                    "p90 days",
                    "open now",
                    "open median days",
                ],
                rows,
            );
        }
        MetricsCmd::Conversion(p) => {
            if !p.csv {
                println!("{}", text(&r["direct"]["label"]));
            }
            let rows = r["direct"]["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    vec![
                        text(&x["stage"]),
                        text(&x["next"]),
                        num(&x["moved_on"]),
                        num(&x["exits"]),
                        pct(&x["rate"]),
                    ]
                })
                .collect();
            emit(
                p.csv,
                &["stage", "next", "moved on", "exits", "direct rate"],
                rows,
            );
            if !p.csv {
                println!("{}", text(&r["reached"]["label"]));
                let rows = r["reached"]["rows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| vec![text(&x["stage"]), num(&x["reached"]), pct(&x["share"])])
                    .collect();
                emit(false, &["stage", "reached", "share of cohort"], rows);
            }
        }
        MetricsCmd::Outcomes(p) => {
            let rows = vec![
                vec!["won".into(), num(&r["won"])],
                vec!["lost".into(), num(&r["lost"])],
                vec!["win rate".into(), pct(&r["win_rate"])],
                vec!["cycle median days".into(), num(&r["cycle"]["median_days"])],
                vec!["cycle mean days".into(), num(&r["cycle"]["mean_days"])],
                vec![
                    "lost cycle median days".into(),
                    num(&r["lost_cycle"]["median_days"]),
                ],
                vec![
                    "lost cycle mean days".into(),
                    num(&r["lost_cycle"]["mean_days"]),
                ],
                vec!["won imported, not earned".into(), num(&r["won_imported"])],
                vec!["open".into(), num(&r["open"])],
                vec!["won amount".into(), num(&r["won_amount"])],
                vec!["mean won amount".into(), num(&r["mean_won_amount"])],
                vec!["velocity per day".into(), num(&r["velocity_per_day"])],
                vec!["weighted pipeline".into(), num(&r["weighted_pipeline"])],
            ];
            emit(p.csv, &["metric", "value"], rows);
        }
        MetricsCmd::Stalled { csv, .. } => {
            let rows = r["stalled"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    vec![
                        num(&x["id"]),
                        text(&x["name"]),
                        text(&x["owner"]),
                        text(&x["stage"]),
                        num(&x["idle_days"]),
                        num(&x["stall_after_days"]),
                    ]
                })
                .collect();
            emit(
                *csv,
                &["id", "name", "owner", "stage", "idle days", "stalls after"],
                rows,
            );
        }
        MetricsCmd::Compare { .. } => {
            println!(
                "A: {} → {} (version {})   B: {} → {} (version {})",
                text(&r["a"]["from"]),
                text(&r["a"]["to"]),
                num(&r["a"]["version"]),
                text(&r["b"]["from"]),
                text(&r["b"]["to"]),
                num(&r["b"]["version"])
            );
            let rows = rows_of(r)
                .iter()
                .map(|x| {
                    vec![
                        text(&x["stage"]),
                        format!(
                            "{} / {}",
                            num(&x["a"]["flow"]["entered"]),
                            num(&x["b"]["flow"]["entered"])
                        ),
                        format!(
                            "{} / {}",
                            num(&x["a"]["flow"]["exited"]),
                            num(&x["b"]["flow"]["exited"])
                        ),
                        format!(
                            "{} / {}",
                            pct(&x["a"]["advance_rate"]),
                            pct(&x["b"]["advance_rate"])
                        ),
                        format!(
                            "{} / {}",
                            num(&x["a"]["time_in_stage"]["median_days"]),
                            num(&x["b"]["time_in_stage"]["median_days"])
                        ),
                    ]
                })
                .collect();
            emit(
                false,
                &[
                    "stage",
                    "entered A / B",
                    "exited A / B",
                    "advance rate A / B",
                    "median days A / B",
                ],
                rows,
            );
        }
    }
}
