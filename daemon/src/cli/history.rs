//! `stagecoach import`, `export` and `discover`: arguments, running, and
//! the readable reports.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use super::{num, pct, table};
use crate::history::export::{Format, Table};
use crate::history::import::{ImportOptions, Summary};
use crate::history::source::{self, Files, Mapping};
use stagecoach_client::Client;
use stagecoach_types::api::params;
use stagecoach_types::api::results::Discovery;
use stagecoach_types::model::{Actor, Millis};

/// How another system's columns and values map onto Stagecoach's.
#[derive(Debug, Args)]
pub struct MappingArgs {
    /// A mapping file (TOML: `[prospects]`, `[activities]`, `[stages]`,
    /// `[kinds]`, `date_format`); see the README.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// A column by its header, e.g. `prospects.owner="Deal Owner"` (repeatable).
    #[arg(long = "column", value_name = "FILE.NAME=HEADER")]
    pub columns: Vec<String>,
    /// A source stage value, e.g. `"Appointment Scheduled=connect"` or `"Closed Won=won"`.
    #[arg(long = "stage", value_name = "SOURCE=STAGE")]
    pub stages: Vec<String>,
    /// A source activity type, e.g. `"Email reply=replied"`.
    #[arg(long = "kind", value_name = "SOURCE=KIND")]
    pub kinds: Vec<String>,
    /// Activity kinds that are the prospect's actions where a row does not
    /// say whose action it is (comma-separated, repeatable), e.g.
    /// `--prospect-kinds meeting` for Pipedrive, whose export has no direction.
    #[arg(long = "prospect-kinds", value_name = "KIND,…")]
    pub prospect_kinds: Vec<String>,
    /// The source's date format (strftime, e.g. `%d/%m/%Y %H:%M`); RFC 3339,
    /// ISO dates and the CRMs' usual layouts are always read.
    #[arg(long)]
    pub date_format: Option<String>,
}

impl MappingArgs {
    fn mapping(&self) -> Result<Mapping> {
        let mut m = match &self.mapping {
            Some(path) => source::read_mapping(path)?,
            None => Mapping::default(),
        };
        source::apply_flags(
            &mut m,
            &self.columns,
            &self.stages,
            &self.kinds,
            &self.prospect_kinds,
            self.date_format.as_deref(),
        )?;
        Ok(m)
    }
}

/// `stagecoach import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Prospects (deals, opportunities): id, name, created date; optional
    /// company, owner, pipeline, stage, status / won / closed, close, won
    /// and lost dates, amount, lost reason, HubSpot's `Date entered "…"`
    /// stage history; other columns become fields.
    #[arg(long)]
    pub prospects: PathBuf,
    /// Activities (engagements, tasks and events): deal id(s) or name, type,
    /// date; optional id, actor or direction, done, data.
    #[arg(long)]
    pub activities: Option<PathBuf>,
    /// Dated stage history: `stagecoach export transitions`, or a stage
    /// history report (Salesforce's Opportunity History). Moves come in as
    /// the source dated them, marked imported.
    #[arg(long, visible_alias = "stage-history")]
    pub transitions: Option<PathBuf>,
    /// Column and value mapping.
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// Where the recorded activities do not meet the exit criteria of the
    /// stages in between, move the prospect to the source's stage anyway
    /// (a forced move, reason recorded).
    #[arg(long)]
    pub trust_source_stage: bool,
    /// Deals sent together (one JSON-RPC batch, committed as one group).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Read and check everything, print the summary, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import the rows that passed even when others were rejected (by
    /// default one rejected row stops the import before anything is written).
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Write batch by batch instead of in one import session: each batch
    /// is durable as it goes and other writes go between them, but an
    /// interrupted import leaves what was written, and it is slower (the
    /// metric counters are rewritten and the log written with every batch).
    #[arg(long)]
    pub no_session: bool,
}

/// `stagecoach export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export (with `--format parquet`, none: all three into the
    /// `--out` directory; with `--format ocel`, none: the whole history).
    #[arg(value_enum)]
    pub table: Option<Table>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// The file to write [default: stdout], or the directory for all three
    /// Parquet files.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// How `discover` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiscoverFormat {
    /// A readable report.
    Text,
    /// Everything, as JSON.
    Json,
    /// The directly-follows graph in Graphviz DOT.
    Dot,
    /// The draft `process.toml`.
    Toml,
}

/// `stagecoach discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Read deals from this CSV export instead of the daemon's database.
    #[arg(long, requires = "activities")]
    pub prospects: Option<PathBuf>,
    /// The activities of those deals (with `--prospects`).
    #[arg(long, requires = "prospects")]
    pub activities: Option<PathBuf>,
    /// Column and value mapping (with `--prospects`).
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// A process file whose `[activities]` say whose action each kind is
    /// (with `--prospects`; otherwise guessed from the names).
    #[arg(long)]
    pub process: Option<PathBuf>,
    /// Also analyse lost deals (graph, variants, owners).
    #[arg(long)]
    pub include_lost: bool,
    /// A kind is a main step when at least this share of won deals show it.
    #[arg(long, default_value_t = 0.5)]
    pub min_support: f64,
    /// Leave kinds seen in fewer than this share of deals out of the graph.
    #[arg(long, default_value_t = 0.05)]
    pub min_share: f64,
    /// Only the most recently closed N deals ("the last ten deals").
    #[arg(long)]
    pub last: Option<usize>,
    /// Only deals closed by this rep (from the database).
    #[arg(long)]
    pub owner: Option<String>,
    /// Only deals closed at or after (RFC 3339 or a date).
    #[arg(long, value_parser = super::parse_time)]
    pub from: Option<Millis>,
    /// Only deals closed before.
    #[arg(long, value_parser = super::parse_time)]
    pub to: Option<Millis>,
    /// What to print.
    #[arg(long, value_enum, default_value_t = DiscoverFormat::Text)]
    pub format: DiscoverFormat,
    /// Also write the draft `process.toml` here.
    #[arg(long)]
    pub draft: Option<PathBuf>,
    /// Also write the graph (DOT; SVG when the name ends in `.svg` and
    /// Graphviz's `dot` is installed).
    #[arg(long)]
    pub graph: Option<PathBuf>,
}

/// Runs `stagecoach import` and prints its summary. Fails (after the
/// summary) when any row was rejected, so scripts notice.
pub async fn import(client: &mut Client, args: &ImportArgs, as_json: bool) -> Result<()> {
    let options = ImportOptions {
        files: Files {
            prospects: args.prospects.clone(),
            activities: args.activities.clone(),
            transitions: args.transitions.clone(),
        },
        mapping: args.mapping.mapping()?,
        trust_source_stage: args.trust_source_stage,
        batch: args.batch,
        progress: std::io::stderr().is_terminal(),
        dry_run: args.dry_run,
        skip_bad_rows: args.skip_bad_rows,
        session: !args.no_session,
    };
    let started = std::time::Instant::now();
    let summary = crate::history::import::run(client, &options).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary, started.elapsed().as_secs_f64());
    }
    let rejected = summary.rejected.len();
    if summary.refused {
        bail!(
            "{rejected} row(s) rejected: nothing was written\nhint: fix the rows or the mapping and run again, or import the rest with --skip-bad-rows"
        );
    }
    if rejected > 0 && summary.dry_run {
        bail!("{rejected} row(s) would be rejected (--skip-bad-rows); a dry run writes nothing");
    }
    if rejected > 0 {
        bail!(
            "{rejected} row(s) rejected and not imported (--skip-bad-rows); the rest was written"
        );
    }
    Ok(())
}

fn print_summary(s: &Summary, seconds: f64) {
    if s.refused {
        let causes = s.rejected.len() as u64 - s.dependent;
        let also = if s.dependent > 0 {
            format!(", and {} more only because their deal was", s.dependent)
        } else {
            String::new()
        };
        println!("refused: {causes} row(s) cannot be imported{also}; nothing was written");
    } else if s.dry_run {
        println!("dry run: nothing was written; this is what the import would do");
    }
    let mut t = table(&["rows", "imported", "already present", "rejected"]);
    for (name, c) in [
        ("deals", s.prospects),
        ("activities", s.activities),
        ("stage moves", s.transitions),
    ] {
        t.add_row(vec![
            name.to_string(),
            c.imported.to_string(),
            c.skipped.to_string(),
            c.rejected.to_string(),
        ]);
    }
    if !s.refused {
        println!("{t}");
        let unearned: u64 = s.unearned.values().sum();
        println!(
            "closed as the source has them: {} won, {} lost  [{seconds:.1} s]",
            s.closed_won, s.closed_lost
        );
        if s.with_stage_history > 0 {
            println!(
                "stage history from the source: {} deal(s), {} move(s) as the source dated them (marked imported; criteria not re-applied)",
                s.with_stage_history, s.imported_moves
            );
        }
        if unearned > 0 {
            let by: Vec<String> = s
                .unearned
                .iter()
                .map(|(stage, n)| format!("{n} from `{stage}`"))
                .collect();
            println!(
                "won in the source but not earned under this process: {unearned} ({}), recorded won and marked imported",
                by.join(", ")
            );
        }
        if s.forced > 0 {
            println!(
                "moved to the source's stage (--trust-source-stage): {}",
                s.forced
            );
        }
    }
    if let Some(column) = &s.matched_by_name {
        println!(
            "\nactivities were matched to deals by name (column `{column}`): the file has no deal id column"
        );
    }
    if s.without_deal > 0 {
        println!(
            "activity rows associated with no deal, not imported: {}",
            s.without_deal
        );
    }
    if s.not_done > 0 {
        println!(
            "activity rows not done yet (planned, not history), not imported: {}",
            s.not_done
        );
    }
    if !s.unused_dates.is_empty() {
        println!("\ndate columns not read as history:");
        for u in &s.unused_dates {
            println!("  {} `{}`: {}", u.file, u.column, u.why);
        }
    }
    if !s.without_direction.is_empty() {
        println!(
            "\nactivity kinds whose rows do not say whose action they were (imported as the rep's unless process.toml declares them; map with --prospect-kinds KIND,… or a direction column):"
        );
        for (k, n) in &s.without_direction {
            println!("  `{k}`: {n} row(s)");
        }
    }
    if !s.unknown_stages.is_empty() {
        println!("\nsource stages that match no stage (map them with --stage 'SOURCE=STAGE'):");
        for (v, n) in &s.unknown_stages {
            println!("  `{v}`: {n} row(s)");
        }
    }
    if !s.undeclared_kinds.is_empty() {
        println!(
            "\nactivity kinds process.toml does not declare (map them with --kind 'SOURCE=KIND', or declare them):"
        );
        for (k, n) in &s.undeclared_kinds {
            println!("  `{k}`: {n} row(s)");
        }
    }
    if !s.differences.is_empty() {
        println!(
            "\n{} open deal(s) stand where the source does not put them (exit criteria enforced):",
            s.differences.len()
        );
        for d in s.differences.iter().take(20) {
            println!(
                "  line {}: `{}` is in `{}` here, `{}` in the source: {}",
                d.line, d.external_id, d.here, d.source, d.reason
            );
        }
        if s.differences.len() > 20 {
            println!("  … {} more (all with --json)", s.differences.len() - 20);
        }
    }
    if !s.rejected.is_empty() {
        println!("\nrejected rows:");
        for r in s.rejected.iter().take(50) {
            println!("  {r}");
        }
        if s.rejected.len() > 50 {
            println!("  … {} more (all with --json)", s.rejected.len() - 50);
        }
    }
}

/// Runs `stagecoach export`.
pub async fn export(client: &mut Client, args: &ExportArgs) -> Result<()> {
    use crate::history::export::{run, run_parquet};
    // Written beside the target and renamed over it once complete: an export
    // that fails or is killed half-way leaves no partial file at `--out`.
    type Out = std::io::BufWriter<tempfile::NamedTempFile>;
    let file = |path: &Path| -> Result<Out> {
        if path.is_dir() {
            bail!(
                "`{}` is a directory: give a file name (with `--format parquet` and no table, all three files go into a directory)",
                path.display()
            );
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        // 0666 less the umask, as a file the shell creates (a temporary
        // file is 0600 by default).
        let f = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .prefix(".stagecoach-export-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot write in `{}`", dir.display()))?;
        Ok(std::io::BufWriter::new(f))
    };
    let done = |w: Out, path: &Path| -> Result<()> {
        let f = w.into_inner().map_err(|e| e.into_error())?;
        // (the rename's own error already names the cause)
        f.persist(path)
            .map_err(|e| anyhow::anyhow!("cannot write `{}`: {}", path.display(), e.error))?;
        Ok(())
    };
    match (args.format, args.table, &args.out) {
        (Format::Ocel, Some(t), _) => bail!(
            "an OCEL log holds prospects, activities and transitions together: leave out `{}`",
            t.to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        ),
        (Format::Ocel, None, out) => {
            let written = match out {
                Some(path) => {
                    let mut w = file(path)?;
                    let written = crate::history::ocel::write(client, &mut w).await?;
                    done(w, path)?;
                    written
                }
                None => {
                    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                    crate::history::ocel::write(client, &mut w).await?
                }
            };
            eprintln!(
                "wrote an OCEL 2.0 log: {} prospects and {} owners as objects, {} activities and {} transitions as events{}",
                written.prospects,
                written.owners,
                written.activities,
                written.transitions,
                out.as_ref()
                    .map(|p| format!(", to {}", p.display()))
                    .unwrap_or_default()
            );
        }
        (Format::Parquet, None, None) => bail!(
            "name the table to export, or give `--out DIR` for prospects, activities and transitions together"
        ),
        (Format::Parquet, None, Some(dir)) if dir.extension().is_some_and(|e| e == "parquet") => {
            bail!(
                "`{}` looks like a file: name the table to export into it, or give a directory for all three",
                dir.display()
            )
        }
        (Format::Parquet, None, Some(dir)) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            for t in [
                Table::Prospects,
                Table::Activities,
                Table::Transitions,
                Table::Stages,
            ] {
                let name = t.to_possible_value().expect("a table has a name");
                let path = dir.join(format!("{}.parquet", name.get_name()));
                let (rows, w) = run_parquet(client, t, file(&path)?).await?;
                done(w, &path)?;
                eprintln!("wrote {rows} rows to {}", path.display());
            }
        }
        (Format::Parquet, Some(t), Some(path)) => {
            let (rows, w) = run_parquet(client, t, file(path)?).await?;
            done(w, path)?;
            eprintln!("wrote {rows} rows to {}", path.display());
        }
        (Format::Parquet, Some(t), None) => {
            if std::io::stdout().is_terminal() {
                bail!("Parquet is binary: give `--out FILE`, or redirect standard output");
            }
            let (_, mut w) =
                run_parquet(client, t, std::io::BufWriter::new(std::io::stdout())).await?;
            w.flush()?;
        }
        (_, None, _) => bail!(
            "name the table to export: prospects, activities or transitions (all three at once: `--format parquet --out DIR`, or `--format ocel`)"
        ),
        (format, Some(t), Some(path)) => {
            let mut out = file(path)?;
            let rows = run(client, t, format, &mut out).await?;
            done(out, path)?;
            eprintln!("wrote {rows} rows to {}", path.display());
        }
        (format, Some(t), None) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            run(client, t, format, &mut out).await?;
        }
    }
    Ok(())
}

/// Discovery straight from CSV files: no daemon needed.
pub fn discover_local(args: &DiscoverArgs, as_json: bool) -> Result<()> {
    let (Some(prospects), Some(activities)) = (&args.prospects, &args.activities) else {
        bail!("`--prospects` and `--activities` go together");
    };
    let files = Files {
        prospects: prospects.clone(),
        activities: Some(activities.clone()),
        transitions: None,
    };
    let src = source::read(&files, &args.mapping.mapping()?, &[], &|_| false)?;
    for r in src.rejected.iter().take(20) {
        eprintln!("warning: {r}");
    }
    if src.rejected.len() > 20 {
        eprintln!("warning: … {} more rejected rows", src.rejected.len() - 20);
    }
    let mut declared: HashMap<String, Actor> = HashMap::new();
    if let Some(path) = &args.process {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let process = stagecoach_core::process::parse(&text, &path.display().to_string())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (kind, decl) in &process.activities {
            if let Some(actor) = decl.actor {
                declared.insert(kind.clone(), actor);
            }
        }
    }
    let mut deals = crate::history::deals_from(&src, &declared);
    deals.retain(|d| {
        args.owner
            .as_ref()
            .is_none_or(|o| d.owner.as_ref() == Some(o))
            && args.from.is_none_or(|f| d.closed >= f)
            && args.to.is_none_or(|t| d.closed < t)
    });
    if let Some(last) = args.last {
        deals.sort_by_key(|d| std::cmp::Reverse(d.closed));
        deals.truncate(last);
    }
    let options = stagecoach_core::discover::options(
        args.include_lost,
        Some(args.min_support),
        Some(args.min_share),
        None,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let mut found = stagecoach_core::discover::discover(&deals, &options, Millis::now());
    found.without_direction = src.without_direction;
    emit(args, &found, as_json)
}

/// The `process.discover` request for `args`.
pub fn discover_request(args: &DiscoverArgs) -> params::ProcessDiscover {
    params::ProcessDiscover {
        include_lost: args.include_lost,
        min_support: Some(args.min_support),
        min_share: Some(args.min_share),
        variants: None,
        from: args.from,
        to: args.to,
        owner: args.owner.clone(),
        last: args.last,
    }
}

/// Prints a discovery and writes the requested files.
pub fn emit(args: &DiscoverArgs, d: &Discovery, as_json: bool) -> Result<()> {
    let (draft, dot) = (&d.draft, &d.dot);
    if let Some(path) = &args.draft {
        std::fs::write(path, draft)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        eprintln!(
            "wrote the draft process to {} (check it: stagecoach lint {})",
            path.display(),
            path.display()
        );
    }
    if let Some(path) = &args.graph {
        write_graph(path, dot)?;
    }
    let format = if as_json {
        DiscoverFormat::Json
    } else {
        args.format
    };
    match format {
        DiscoverFormat::Json => println!("{}", serde_json::to_string_pretty(d)?),
        DiscoverFormat::Dot => print!("{dot}"),
        DiscoverFormat::Toml => print!("{draft}"),
        DiscoverFormat::Text => print_discovery(d),
    }
    Ok(())
}

fn write_graph(path: &std::path::Path, dot: &str) -> Result<()> {
    if path.extension().is_some_and(|e| e == "svg") {
        let mut child = std::process::Command::new("dot")
            .args(["-Tsvg", "-o"])
            .arg(path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .context("writing SVG needs Graphviz's `dot`\nhint: install graphviz, or write `.dot` and render it elsewhere")?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(dot.as_bytes())?;
        let status = child.wait()?;
        if !status.success() {
            bail!("`dot` failed ({status})");
        }
    } else {
        std::fs::write(path, dot).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    eprintln!("wrote the graph to {}", path.display());
    Ok(())
}

/// Days with one decimal, `-` for none.
fn days(v: Option<f64>) -> String {
    v.map_or("-".into(), |d| format!("{d:.1}"))
}

fn print_discovery(d: &Discovery) {
    let date = |v: Option<Millis>| {
        v.map_or("-".to_string(), |m| {
            m.to_string().chars().take(10).collect()
        })
    };
    println!(
        "{} closed deals ({} won, {} lost) by {} owner(s), created {} .. closed {}",
        d.deals,
        d.won,
        d.lost,
        d.owners_count,
        date(d.from),
        date(d.to)
    );
    println!(
        "cycle, won: median {} days, p90 {}, mean {}",
        days(d.won_cycle.median_days),
        days(d.won_cycle.p90_days),
        days(d.won_cycle.mean_days)
    );
    if d.lost > 0 {
        println!(
            "cycle, lost: median {} days, p90 {}",
            days(d.lost_cycle.median_days),
            days(d.lost_cycle.p90_days)
        );
    }

    println!("\nSteps (won deals; main steps first, in order):");
    let mut t = table(&[
        "kind",
        "actor",
        "won deals",
        "share",
        "median days from start",
        "p90",
        "ends stage",
    ]);
    for s in d.steps.iter().filter(|s| s.main || s.support >= 0.05) {
        t.add_row(vec![
            format!("{}{}", s.kind, if s.main { "" } else { " (minor)" }),
            s.actor.as_str().to_string(),
            s.won_deals.to_string(),
            pct(Some(s.support)),
            days(s.from_start.median_days),
            days(s.from_start.p90_days),
            s.stage.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");

    println!("\nDirectly-follows graph (top steps; all with --format json or dot):");
    let mut t = table(&["from", "to", "deals", "median days", "p90 days"]);
    for e in d.edges.iter().take(20) {
        t.add_row(vec![
            e.from.clone(),
            e.to.clone(),
            e.count.to_string(),
            days(e.days.median_days),
            days(e.days.p90_days),
        ]);
    }
    println!("{t}");

    println!("\nMost common paths (main prospect actions):");
    let mut t = table(&["share", "deals", "won", "path"]);
    for v in &d.variants {
        t.add_row(vec![
            pct(Some(v.share)),
            v.deals.to_string(),
            v.won.to_string(),
            if v.path.is_empty() {
                "(none of the main steps)".into()
            } else {
                v.path.join(" → ")
            },
        ]);
    }
    println!("{t}");

    println!("\nBy owner:");
    let mut t = table(&[
        "owner",
        "deals",
        "won",
        "win rate",
        "median won cycle (days)",
        "median activities",
    ]);
    for o in &d.owners {
        t.add_row(vec![
            o.owner.clone(),
            o.deals.to_string(),
            o.won.to_string(),
            pct(Some(o.win_rate)),
            days(o.won_cycle.median_days),
            num(Some(o.median_activities)),
        ]);
    }
    println!("{t}");

    println!("\nOnto the generic stages:");
    let mut t = table(&[
        "stage",
        "ends when the prospect…",
        "median days in stage",
        "p90",
    ]);
    for s in &d.stages {
        t.add_row(vec![
            s.name.clone(),
            s.exit.join(" + "),
            days(s.days.median_days),
            days(s.days.p90_days),
        ]);
    }
    println!("{t}");
    let fit = &d.fit;
    println!("\nThe draft replayed over these deals (where it would leave them):");
    let mut t = table(&["stage", "won in the source", "lost", "open"]);
    for r in &fit.stages {
        t.add_row(vec![
            r.stage.clone(),
            r.won.to_string(),
            r.lost.to_string(),
            r.open.to_string(),
        ]);
    }
    println!("{t}");
    println!(
        "closing: {}{}",
        fit.close_note,
        if fit.manual_close {
            " (the draft's last stage closes won by hand: advance = \"manual\")"
        } else {
            ""
        }
    );
    if !d.without_direction.is_empty() {
        let list: Vec<String> = d
            .without_direction
            .iter()
            .map(|(k, n)| format!("`{k}` ({n})"))
            .collect();
        println!(
            "kinds whose rows do not say whose action they were, read as the rep's (never exit criteria): {}\nhint: if some are the prospect's, say so with --prospect-kinds KIND,… or a direction column",
            list.join(", ")
        );
    }
    println!(
        "\nthe draft process.toml: --draft FILE (or --format toml); the graph: --graph FILE.dot|.svg"
    );
}
