//! The command line: `stagecoach serve` runs the daemon, every other
//! subcommand is a client of its socket. Tables for people by default,
//! `--json` for scripts; errors on stderr with a non-zero exit code.
//!
//! - [`args`]: the clap types;
//! - `request`: requests built from them, with the contract's typed parameters;
//! - `render`: tables and text from the answers.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use stagecoach_client::Client;
use stagecoach_types::api::results::Validation;
use stagecoach_types::api::{methods, params};
use stagecoach_types::model::Millis;
use stagecoach_types::protocol::Event;

mod args;
mod history;
mod render;
mod request;

pub use args::*;
pub use history::{DiscoverArgs, ExportArgs, ImportArgs, MappingArgs, discover_local};
use render::*;
use request::*;

fn options_start(o: &crate::demo::DemoOptions) -> Millis {
    Millis(o.now.0 - i64::from(o.months) * 30 * Millis::DAY)
}

/// Runs a client subcommand.
pub async fn run_client(cli: &Cli) -> Result<()> {
    let socket = cli.socket();
    let mut client = match Client::connect(&socket).await {
        Ok(c) => c,
        // A file can be checked without a daemon, only not compared with
        // the version in force.
        Err(e) => match &cli.command {
            Command::Process(ProcessCmd::Validate { file })
                if matches!(e, stagecoach_client::ClientError::Connect { .. }) =>
            {
                return validate_alone(cli, file, &socket);
            }
            _ => return Err(e.into()),
        },
    };
    let (method, params): (&str, Value) = match &cli.command {
        Command::Serve { .. }
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Lint { .. }
        | Command::Test { .. }
        | Command::Plugins(
            PluginCmd::Build { .. }
            | PluginCmd::New { .. }
            | PluginCmd::Test { .. }
            | PluginCmd::Run { .. }
            | PluginCmd::CompileWorker { .. },
        ) => {
            unreachable!("not a client command")
        }
        Command::Plugins(PluginCmd::List) => typed::<methods::PluginsList>(params::NoParams {}),
        Command::Import(args) => return history::import(&mut client, args, cli.json).await,
        Command::Export(args) => {
            if cli.json {
                bail!(
                    "export writes its own formats: `--format ndjson` for JSON lines (--json does not apply)"
                );
            }
            return history::export(&mut client, args).await;
        }
        Command::Discover(args) => {
            let found = client
                .request::<methods::ProcessDiscover>(&history::discover_request(args))
                .await?;
            return history::emit(args, &found, cli.json);
        }
        Command::Metrics(cmd) => metrics_request(cmd)?,
        Command::Report { period, out } => {
            if period.csv {
                bail!(
                    "the report is HTML; for CSV use `stagecoach metrics flow|conversion|owners … --csv`"
                );
            }
            let (from, to) = period.range()?;
            let filters = crate::report::Filters {
                from,
                to,
                owner: period.owner.clone(),
                version: period.version,
                stage: period.stage.clone(),
            };
            let html = crate::report::build(&mut client, &filters).await?;
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
            into_existing,
        } => {
            let status = client
                .request::<methods::DaemonStatus>(&params::NoParams {})
                .await?;
            let held = status.counts.as_ref().map_or(0, |c| c.prospects);
            if held > 0 && !into_existing {
                bail!(
                    "the daemon at {} (data dir {}) already holds {held} prospects; the demo would mix {prospects} invented ones into them, and they cannot be removed afterwards\nhint: run a daemon on an empty data directory for the demo (`stagecoach --data-dir /tmp/stagecoach-demo serve`), or pass `--into-existing` if mixing is what you want",
                    status.socket,
                    status.data_dir
                );
            }
            eprintln!(
                "writing a demo history into the daemon at {} (data dir {})",
                status.socket, status.data_dir
            );
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
                    "mid-way, on {}, the process changed (version {version}): research exits on the shared requirements alone; the process file now says so{}\ncompare: stagecoach metrics compare --a {}..{} --a-version {} --b {}..{} --b-version {version}",
                    &at.to_string()[..10],
                    if s.tests_changed {
                        ", and so does the test case that pinned the old rule"
                    } else {
                        ""
                    },
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
        Command::Watch => return watch(client, cli.json).await,
        Command::Status {
            format: args::StatusFormat::Openmetrics,
        } => {
            let status = client
                .request::<methods::DaemonStatus>(&params::NoParams {})
                .await?;
            let plugins = client
                .request::<methods::PluginsList>(&params::NoParams {})
                .await?;
            print!("{}", crate::openmetrics::render(&status, &plugins));
            return Ok(());
        }
        Command::Status { .. } => typed::<methods::DaemonStatus>(params::NoParams {}),
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
        Command::Process(ProcessCmd::Simulate {
            file,
            period,
            limit,
        }) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read `{}`", file.display()))?;
            let (from, to) = match &period.month {
                Some(m) => {
                    let (f, t) = parse_period(m).map_err(anyhow::Error::msg)?;
                    (Some(f), Some(t))
                }
                None => (period.from, period.to),
            };
            typed::<methods::ProcessSimulate>(params::ProcessSimulate {
                text,
                file: Some(file.display().to_string()),
                from,
                to,
                limit: Some(*limit),
            })
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
    // A simulation replays the whole history: a progress bar from
    // `daemon.status`, asked on a second connection while it runs.
    let progress = matches!(cli.command, Command::Process(ProcessCmd::Simulate { .. }))
        .then(|| simulation_progress(socket.clone()));
    let answer = client.call(method, params).await;
    if let Some((bar, task)) = progress {
        task.abort();
        bar.finish_and_clear();
    }
    let result = match answer {
        Ok(r) => r,
        Err(stagecoach_client::ClientError::Rpc(e)) => {
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&json!({ "error": e }))?);
            }
            let mut message = e.message.clone();
            if let Some(data) = &e.data {
                for v in data.unmet.iter().flatten() {
                    message.push_str(&format!("\n  ✗ {} — {}", v.question, v.reason));
                }
                for err in data.errors.iter().flatten() {
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
        && result.get("valid") == Some(&Value::Bool(false))
    {
        bail!("the process file is invalid");
    }
    Ok(())
}

/// A progress bar for a running simulation, fed by polling `daemon.status`.
fn simulation_progress(socket: PathBuf) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "replaying the history under the draft {bar:30} {pos}/{len} prospects, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let shown = bar.clone();
    let task = tokio::spawn(async move {
        let Ok(mut status) = Client::connect(&socket).await else {
            return;
        };
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let Ok(s) = status
                .request::<methods::DaemonStatus>(&params::NoParams {})
                .await
            else {
                return;
            };
            if let Some((done, total)) = s.simulation {
                shown.set_length(total);
                shown.set_position(done);
            }
        }
    });
    (bar, task)
}

async fn watch(client: Client, as_json: bool) -> Result<()> {
    use futures_util::StreamExt;
    let mut events = client.subscribe().await?;
    eprintln!("watching for events (Ctrl-C to stop)");
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(stagecoach_client::ClientError::Protocol(e)) => {
                eprintln!("skipped a notification this version does not know: {e}");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if as_json {
            println!("{}", event.notification());
            continue;
        }
        match &event {
            Event::ProspectMoved {
                prospect,
                transition: t,
            } => println!(
                "{}  prospect {} ({})  {} → {}  [{}]",
                t.at,
                prospect.id,
                prospect.name,
                t.from.as_deref().unwrap_or("-"),
                t.to,
                t.kind.as_str(),
            ),
            Event::ProcessReloaded {
                version,
                previous,
                changes,
                renamed,
                migrated,
            } => {
                if version == previous {
                    println!(
                        "{}  process file restored: version {version} stays in force",
                        Millis::now()
                    );
                } else {
                    println!(
                        "{}  process version {version} in force (was {previous})",
                        Millis::now()
                    );
                }
                for c in changes {
                    println!("    {c}");
                }
                if *renamed > 0 {
                    println!("    {renamed} prospect(s) followed a renamed stage");
                }
                if *migrated > 0 {
                    println!(
                        "    {migrated} prospect(s) moved out of removed stages by [migrate] (forced moves)"
                    );
                }
            }
            Event::ProcessRejected { version, errors } => {
                println!(
                    "{}  process file refused, version {version} stays in force:",
                    Millis::now()
                );
                for e in errors {
                    println!("    {}", render_process_error(e));
                }
            }
            Event::PluginFailed {
                plugin,
                kind,
                message,
                hint,
            } => {
                println!(
                    "{}  plugin `{plugin}` failed ({kind}): {message}",
                    Millis::now()
                );
                if let Some(h) = hint {
                    println!("    hint: {h}");
                }
            }
            Event::PluginsReloaded { version, changed } => println!(
                "{}  {changed} plugin(s) rebuilt and swapped in for process version {version}",
                Millis::now()
            ),
            Event::Reevaluating { done, total, moved } => println!(
                "{}  re-evaluating: {done} of {total} open prospects, {moved} moved",
                Millis::now()
            ),
            Event::EventsLagged { missed, hint } => {
                println!("{}  missed {missed} event(s): {hint}", Millis::now());
            }
        }
    }
    Ok(())
}

/// `stagecoach process validate FILE` when no daemon answers: the daemon's
/// own parse and lint, without the comparison with the version in force.
fn validate_alone(cli: &Cli, file: &std::path::Path, socket: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    let (answer, _) =
        stagecoach_core::lint::validation(&text, &file.display().to_string(), Millis::now(), None);
    let valid = answer.valid;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        render(&cli.command, &serde_json::to_value(&answer)?);
        println!(
            "(no daemon at `{}`: the file was checked alone, not compared with the version in force)",
            socket.display()
        );
    }
    if !valid {
        bail!("the process file is invalid");
    }
    Ok(())
}

/// The process in `file` with its plugins loaded, as the daemon would run
/// it (compiled plugins cached in `cache`).
fn load_local(
    file: &std::path::Path,
    cache: PathBuf,
) -> Result<stagecoach_core::engine::ActiveProcess> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    let name = file.display().to_string();
    let process = stagecoach_core::process::parse(&text, &name).map_err(|invalid| {
        anyhow::anyhow!(
            "{invalid}\n{} error{} in `{name}`",
            invalid.errors.len(),
            if invalid.errors.len() == 1 { "" } else { "s" }
        )
    })?;
    let host = stagecoach_plugin_host::PluginHost::new(Some(cache)).map_err(anyhow::Error::msg)?;
    let plugins = stagecoach_server::live::load_plugin_set(
        &host,
        &process,
        file,
        None,
        stagecoach_server::live::Loading::Now,
    )
    .map_err(|invalid| anyhow::anyhow!("{invalid}"))?;
    Ok(stagecoach_core::engine::ActiveProcess {
        version: 0,
        hash: stagecoach_core::process::content_hash(&text),
        text,
        loaded_at: Millis::now(),
        process,
        plugins: std::sync::Arc::new(plugins),
    })
}

/// `stagecoach test`: the process's cases, local, no daemon needed.
pub fn test_file(
    cli: &Cli,
    file: &std::path::Path,
    format: TestFormat,
    out: Option<&std::path::Path>,
) -> Result<()> {
    let active = load_local(file, cli.data_dir().join("plugin-cache"))?;
    let scratch = std::env::temp_dir();
    let ran = stagecoach_server::live::run_process_tests(&active, file, None, &scratch)
        .map_err(|e| anyhow::anyhow!("{}", render_process_error(&e)))?;
    let Some((path, results)) = ran else {
        bail!(
            "no tests: `{}` does not exist\nhint: write cases there, as the default process's `process.test.toml` shows",
            stagecoach_core::process_tests::tests_path(file).display()
        );
    };
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    let report = match format {
        TestFormat::Junit => {
            stagecoach_core::process_tests::junit(&file.display().to_string(), &results)
        }
        TestFormat::Text => {
            let mut text = String::new();
            for r in &results {
                if r.failures.is_empty() {
                    text.push_str(&format!("ok    {}\n", r.name));
                } else {
                    text.push_str(&format!(
                        "FAIL  {}  ({}:{})\n",
                        r.name,
                        path.display(),
                        r.line
                    ));
                    for f in &r.failures {
                        text.push_str(&format!("        {f}\n"));
                    }
                }
            }
            text.push_str(&format!(
                "{} case{}, {} passed, {failed} failed\n",
                results.len(),
                if results.len() == 1 { "" } else { "s" },
                results.len() - failed
            ));
            text
        }
    };
    match out {
        Some(o) => {
            std::fs::write(o, &report).with_context(|| format!("cannot write `{}`", o.display()))?
        }
        None => print!("{report}"),
    }
    if failed > 0 {
        bail!(
            "{failed} of {} process test{} failed",
            results.len(),
            if results.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
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
    match stagecoach_core::process::parse(&text, &name) {
        Err(invalid) => {
            if as_json {
                let answer = Validation {
                    valid: false,
                    errors: invalid.errors.clone(),
                    warnings: Vec::new(),
                    stages: None,
                    changes: None,
                };
                println!("{}", serde_json::to_string(&answer)?);
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
                let answer = Validation {
                    valid: true,
                    errors: Vec::new(),
                    warnings: warnings.clone(),
                    stages: Some(process.stages.len()),
                    changes: None,
                };
                println!("{}", serde_json::to_string(&answer)?);
            } else {
                for w in &warnings {
                    println!("{}", render_warning(&name, w));
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
            // The process's own tests, when it has them.
            if stagecoach_core::process_tests::tests_path(file).exists() {
                let active = load_local(file, default_data_dir().join("plugin-cache"))?;
                let ran = stagecoach_server::live::run_process_tests(
                    &active,
                    file,
                    None,
                    &std::env::temp_dir(),
                )
                .map_err(|e| anyhow::anyhow!("{}", render_process_error(&e)))?;
                if let Some((path, results)) = ran {
                    let errors = stagecoach_server::live::failing_cases(&path, &results);
                    for e in &errors {
                        eprintln!("{}", render_process_error(e));
                    }
                    if !errors.is_empty() {
                        bail!("{} of {} process tests fail", errors.len(), results.len());
                    }
                    if !as_json {
                        println!("{}: {} process tests pass", path.display(), results.len());
                    }
                }
            }
            Ok(())
        }
    }
}

/// `stagecoach plugins build` and `plugin run`: local, no daemon needed.
pub fn plugin_local(cmd: &PluginCmd, as_json: bool) -> Result<()> {
    match cmd {
        PluginCmd::Build {
            dirs,
            out,
            target_dir,
            toolchains,
            language,
            compile_cache,
            no_precompile,
        } => {
            use crate::toolchain::Language;
            let wanted = |l: Language| match language {
                None => true,
                Some(args::PluginLanguage::Rust) => l == Language::Rust,
                Some(args::PluginLanguage::Python) => l == Language::Python,
                Some(args::PluginLanguage::Js) => l == Language::Js,
            };
            let dirs: Vec<(PathBuf, Language)> = if dirs.is_empty() {
                let mut found: Vec<(PathBuf, Language)> = std::fs::read_dir("plugins")
                    .context("cannot list `plugins/`; pass the plugin directories")?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter_map(|p| Language::of(&p).ok().map(|l| (p, l)))
                    .filter(|(_, l)| wanted(*l))
                    .collect();
                found.sort_by(|a, b| a.0.cmp(&b.0));
                found
            } else {
                dirs.iter()
                    .map(|d| Language::of(d).map(|l| (d.clone(), l)))
                    .collect::<Result<_, String>>()
                    .map_err(anyhow::Error::msg)?
            };
            if dirs.is_empty() {
                bail!(
                    "no plugins found\nhint: pass the plugin directories, or put them under ./plugins"
                );
            }
            let tc = crate::toolchain::Toolchains::new(toolchains).map_err(anyhow::Error::msg)?;
            let crates: Vec<PathBuf> = dirs
                .iter()
                .filter(|(_, l)| *l == Language::Rust)
                .map(|(d, _)| d.clone())
                .collect();
            let mut built = if crates.is_empty() {
                Vec::new()
            } else {
                crate::plugin_build::build_crates(&crates, out, target_dir)
                    .map_err(anyhow::Error::msg)?
            };
            for (dir, language) in &dirs {
                let file = match language {
                    Language::Rust => continue,
                    Language::Python => crate::toolchain::build_python(dir, out, &tc),
                    Language::Js => crate::toolchain::build_js(dir, out, &tc),
                }
                .map_err(anyhow::Error::msg)?;
                built.push(file);
            }
            for file in &built {
                let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
                println!("built {} ({} KiB)", file.display(), size / 1024);
            }
            if !no_precompile {
                let cache = compile_cache
                    .clone()
                    .unwrap_or_else(|| default_data_dir().join("plugin-cache"));
                crate::plugin_build::precompile(&built, &cache).map_err(anyhow::Error::msg)?;
            }
            Ok(())
        }
        PluginCmd::New { name, lang, dir } => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from(name));
            let next = crate::scaffold::new(name, *lang, &dir).map_err(anyhow::Error::msg)?;
            println!("created {} in {}", name, dir.display());
            println!("next:");
            for line in next {
                println!("  {line}");
            }
            Ok(())
        }
        PluginCmd::Test { dirs, toolchains } => {
            let tc = crate::toolchain::Toolchains::new(toolchains).map_err(anyhow::Error::msg)?;
            let mut failed = Vec::new();
            for dir in dirs {
                if let Err(e) = crate::toolchain::test(dir, &tc) {
                    eprintln!("error: {e}");
                    failed.push(dir.display().to_string());
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                bail!("tests failed in {}", failed.join(", "))
            }
        }
        PluginCmd::Run {
            file,
            input,
            call,
            fuel,
            memory_mib,
            timeout_ms,
            cache,
        } => {
            let set = crate::plugin_build::RunLimits {
                fuel: *fuel,
                memory_mib: *memory_mib,
                timeout_ms: *timeout_ms,
            };
            let r = crate::plugin_build::run_fixture(file, input, *call, set, cache)
                .map_err(anyhow::Error::msg)?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            }
            println!("plugin    {} — {}", r.plugin.name, r.plugin.description);
            println!("result    {}", serde_json::to_string_pretty(&r.result)?);
            println!("fuel      {}", r.fuel_used);
            println!("time      {:.1} µs", r.micros);
            println!("memory    {} KiB peak", r.peak_memory_bytes / 1024);
            Ok(())
        }
        PluginCmd::List | PluginCmd::CompileWorker { .. } => {
            unreachable!("dispatched elsewhere")
        }
    }
}
