//! Live process iteration: `process.toml` is watched, and every saved change
//! that validates becomes the next process version, swapped in atomically.
//!
//! A bad edit never replaces a good process: the running version stays, the
//! error (file, line, column, key, hint) is logged, kept for
//! `daemon.status` / `process.get`, and pushed to subscribers as
//! `process.rejected`. A later good save clears it and pushes
//! `process.reloaded`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::context::Ctx;
use crate::files::{read_regular, read_text, read_text_if_any};
use crate::watch::FileWatcher;
use stagecoach_core::engine::{ActiveProcess, EngineError, Event, NewVersion, WriteOp};
use stagecoach_core::process::{Check, InvalidProcess, Process, ProcessError, content_hash};
use stagecoach_core::writer::WriteError;
use stagecoach_plugin_host::{Capability, PluginHost, PluginSet};
use stagecoach_types::api::results::Review;
use stagecoach_types::api::{ReloadOutcome, ReloadResult};
use stagecoach_types::model::Millis;

/// How long a save must be quiet before the file is read: one save is often
/// several events (truncate, write, rename).
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// How long a rejected read waits for a follow-up write before it is reported.
const SETTLE: Duration = Duration::from_millis(150);

/// What a reload did.
#[derive(Debug)]
pub enum Reload {
    /// The text is the version in force, or a new version is in force
    /// (`process.reload`'s answer).
    Applied(ReloadResult),
    /// The file was refused; the running version stays.
    Rejected(InvalidProcess),
}

/// An error about the whole file (unreadable, refused for its effect).
pub fn whole_file_error(file: &str, message: String, hint: Option<String>) -> InvalidProcess {
    InvalidProcess {
        errors: vec![ProcessError {
            file: file.to_string(),
            line: 1,
            column: 1,
            key: String::new(),
            message,
            hint,
        }],
    }
}

/// Reads the process file and, if it changed and validates, makes it the
/// next version. Publishes `process.reloaded` or `process.rejected`.
pub async fn reload(ctx: &Arc<Ctx>) -> Reload {
    crate::notify::reloading();
    let outcome = read_and_apply(ctx).await;
    publish(ctx, &outcome);
    ready_again(ctx);
    outcome
}

/// Tells systemd the daemon is ready again, with whichever version is in
/// force now (a refused edit leaves the previous one).
fn ready_again(ctx: &Ctx) {
    let active = ctx.process.read().expect("process").clone();
    crate::notify::ready(&active.process.name, active.version);
}

/// Reads the file and applies it if it changed and validates; publishes
/// nothing. The file is read under the reload lock, so an edit over the
/// socket that is refused and put back is never read half-way.
async fn read_and_apply(ctx: &Arc<Ctx>) -> Reload {
    let _one_at_a_time = ctx.reload_lock.lock().await;
    let path = ctx.process_path.clone();
    let file = path.display().to_string();
    let read = {
        let (path, max) = (path.clone(), ctx.max_process_file);
        tokio::task::spawn_blocking(move || read_text(&path, max))
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    };
    match read {
        Err(e) => Reload::Rejected(whole_file_error(
            &file,
            e,
            Some("the running version stays in force until the file is readable again".into()),
        )),
        Ok(text) => apply_text(ctx, &file, text).await,
    }
}

/// Writes `text` to the process file (atomically: a temporary file renamed
/// over it) and applies it, for clients that edit the process over the
/// socket; with `tests`, the process's test file is checked against the
/// text and written with it. A text that fails any check (parsing, its
/// plugins, the tests) is refused to the caller before a file is touched;
/// one the writer then refuses (a removed stage that holds prospects) puts
/// the files back as they were. The watcher then sees them unchanged.
pub async fn write_and_reload(ctx: &Arc<Ctx>, text: String, tests: Option<String>) -> Reload {
    let outcome = write_checked(ctx, text, tests).await;
    // A refused text is the caller's error only: the files and the
    // version in force are as they were.
    if let Reload::Applied(_) = outcome {
        publish(ctx, &outcome);
    }
    outcome
}

async fn write_checked(ctx: &Arc<Ctx>, text: String, tests: Option<String>) -> Reload {
    let path = ctx.process_path.clone();
    let file = path.display().to_string();
    let _one_at_a_time = ctx.reload_lock.lock().await;
    let current = ctx.active();
    let tests_path = stagecoach_core::process_tests::tests_path(&path);
    // What the files hold now (None: absent), to compare and to put back.
    let before = {
        let (path, max) = (path.clone(), ctx.max_process_file);
        tokio::task::spawn_blocking(move || -> Result<_, String> {
            Ok((read_text_if_any(&path, max)?, read_tests(&path)?))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
    };
    let before = match before {
        Ok(b) => b,
        Err(e) => {
            return Reload::Rejected(whole_file_error(
                &file,
                format!("cannot read the process files before writing them: {e}"),
                Some("nothing was written; the running version stays in force".into()),
            ));
        }
    };
    let same_text = before.0.as_deref() == Some(text.as_str());
    let same_tests = tests
        .as_deref()
        .is_none_or(|t| before.1.as_deref() == Some(t));
    if content_hash(&text) == current.hash && same_text && same_tests {
        return Reload::Applied(ReloadResult::unchanged(current.version));
    }
    let checked = match check_text(ctx, &file, &text, tests.clone(), &current).await {
        Ok(c) => c,
        Err(invalid) => return Reload::Rejected(invalid),
    };
    let restore = |before: (Option<String>, Option<String>)| {
        let mut files = vec![(path.clone(), before.0.map(String::into_bytes))];
        if tests.is_some() {
            files.push((tests_path.clone(), before.1.map(String::into_bytes)));
        }
        files
    };
    let mut writes = Vec::new();
    if let Some(t) = &tests {
        writes.push((tests_path.clone(), Some(t.clone().into_bytes())));
    }
    writes.push((path.clone(), Some(text.clone().into_bytes())));
    if let Err(e) = write_files(writes).await {
        // Both or neither: the tests may have been written already.
        if let Err(e) = write_files(restore(before)).await {
            tracing::error!("could not restore the process files after a failed write: {e}");
        }
        return Reload::Rejected(whole_file_error(
            &file,
            format!("cannot write the process file: {e}"),
            Some("the running version stays in force".into()),
        ));
    }
    if content_hash(&text) == current.hash {
        // The version in force, written back (or only its tests changed).
        return Reload::Applied(ReloadResult::unchanged(current.version));
    }
    let outcome = commit(ctx, &file, text, checked, &current).await;
    if let Reload::Rejected(_) = outcome
        && let Err(e) = write_files(restore(before)).await
    {
        tracing::error!("could not restore the process files after a refused edit: {e}");
    }
    outcome
}

/// Writes each file atomically (a temporary file beside it, synced, renamed
/// over it); `None` removes it.
async fn write_files(files: Vec<(PathBuf, Option<Vec<u8>>)>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        for (path, bytes) in files {
            let Some(bytes) = bytes else {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => continue,
                }
            };
            let mut tmp = path.clone().into_os_string();
            tmp.push(".stagecoach-tmp");
            let tmp = PathBuf::from(tmp);
            let written = (|| {
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written?;
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Parses a process text on the blocking pool: a large one must not stall
/// the runtime's threads (other clients' requests).
async fn parse_off_runtime(
    text: &str,
    file: &str,
) -> Result<stagecoach_core::process::Process, InvalidProcess> {
    let (text, name) = (text.to_string(), file.to_string());
    tokio::task::spawn_blocking(move || stagecoach_core::process::parse(&text, &name))
        .await
        .unwrap_or_else(|e| {
            Err(whole_file_error(
                file,
                format!("the parser failed: {e}"),
                None,
            ))
        })
}

/// Loads `process`'s plugins on the blocking pool, reusing `current`'s
/// unchanged ones.
async fn load_plugins_off_runtime(
    ctx: &Arc<Ctx>,
    process: &Process,
    file: &str,
    current: &ActiveProcess,
) -> Result<PluginSet, InvalidProcess> {
    let host = ctx.plugin_host.clone();
    let path = ctx.process_path.clone();
    let process = process.clone();
    let previous = current.plugins.clone();
    match tokio::task::spawn_blocking(move || {
        load_plugin_set(&host, &process, &path, Some(&previous), Loading::Now)
    })
    .await
    {
        Ok(result) => result,
        Err(e) => Err(whole_file_error(
            file,
            format!("loading plugins failed: {e}"),
            None,
        )),
    }
}

/// The text of the test file beside `process_path` (`process.test.toml`),
/// if there is one.
pub fn read_tests(process_path: &Path) -> Result<Option<String>, String> {
    read_text_if_any(
        &stagecoach_core::process_tests::tests_path(process_path),
        4 << 20,
    )
}

/// Runs the cases of `tests`, or of the test file beside `process_path` if
/// there is one,
/// against `active` in a scratch store under `scratch_dir` (removed after):
/// the file and every case's result, or why the file cannot be read.
pub fn run_process_tests(
    active: &ActiveProcess,
    process_path: &Path,
    tests: Option<String>,
    scratch_dir: &Path,
) -> Result<Option<(PathBuf, Vec<stagecoach_core::process_tests::CaseResult>)>, ProcessError> {
    use stagecoach_core::process_tests;
    let path = process_tests::tests_path(process_path);
    let file = path.display().to_string();
    let whole = |message: String| ProcessError {
        file: file.clone(),
        line: 0,
        column: 0,
        key: String::new(),
        message,
        hint: None,
    };
    let text = match tests {
        Some(t) => t,
        None => match read_tests(process_path).map_err(whole)? {
            Some(t) => t,
            None => return Ok(None),
        },
    };
    let (tests, lines) = process_tests::parse(&text).map_err(whole)?;
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let scratch_path = scratch_dir.join(format!(
        "process-tests-{}-{}.redb",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    /// Removes the scratch file however the run ends.
    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _scratch = Scratch(scratch_path.clone());
    let result = stagecoach_core::store::Store::open_with(&scratch_path, 16)
        .and_then(|scratch| process_tests::run(active, &tests, &lines, &scratch));
    let results = result.map_err(|e| whole(format!("cannot run the process tests: {e}")))?;
    Ok(Some((path, results)))
}

/// The failing cases as process errors: file, the case's line, expected
/// and actual.
pub fn failing_cases(
    path: &Path,
    results: &[stagecoach_core::process_tests::CaseResult],
) -> Vec<ProcessError> {
    results
        .iter()
        .filter(|r| !r.failures.is_empty())
        .map(|r| ProcessError {
            file: path.display().to_string(),
            line: r.line,
            column: 1,
            key: format!("case \"{}\"", r.name),
            message: r.failures.join("; "),
            hint: Some(
                "the process's own tests fail with this version: fix the process or the case"
                    .into(),
            ),
        })
        .collect()
}

/// A draft process as it would run, its plugins loaded under their limits,
/// without applying it: what `process.simulate` replays history under.
/// Refused as `process.reload` refuses it.
pub async fn prepare_draft(
    ctx: &Arc<Ctx>,
    text: String,
    file: &str,
) -> Result<ActiveProcess, InvalidProcess> {
    let process = parse_off_runtime(&text, file).await?;
    let current = ctx.active();
    let plugins = load_plugins_off_runtime(ctx, &process, file, &current).await?;
    Ok(ActiveProcess {
        version: current.version + 1,
        hash: content_hash(&text),
        text,
        loaded_at: ctx.clock.now(),
        process,
        plugins: Arc::new(plugins),
    })
}

/// Applies a text read from the file; the caller holds the reload lock.
async fn apply_text(ctx: &Arc<Ctx>, file: &str, text: String) -> Reload {
    let current = ctx.active();
    if content_hash(&text) == current.hash {
        return Reload::Applied(ReloadResult::unchanged(current.version));
    }
    match check_text(ctx, file, &text, None, &current).await {
        Ok(checked) => commit(ctx, file, text, checked, &current).await,
        Err(invalid) => Reload::Rejected(invalid),
    }
}

/// A text that passed every check before it becomes the next version: its
/// parsed process and loaded plugins.
struct Checked {
    hash: String,
    process: Process,
    plugins: Arc<PluginSet>,
}

/// Every check a new process text must pass, without applying it: it
/// parses, its plugins load, and the process's own tests (`tests`, or the
/// file beside the process) pass under it.
async fn check_text(
    ctx: &Arc<Ctx>,
    file: &str,
    text: &str,
    tests: Option<String>,
    current: &Arc<ActiveProcess>,
) -> Result<Checked, InvalidProcess> {
    let hash = content_hash(text);
    let process = parse_off_runtime(text, file).await?;
    let plugins = Arc::new(load_plugins_off_runtime(ctx, &process, file, current).await?);
    let candidate = ActiveProcess {
        version: current.version + 1,
        hash: hash.clone(),
        text: String::new(),
        loaded_at: ctx.clock.now(),
        process: process.clone(),
        plugins: plugins.clone(),
    };
    let (path, dir) = (ctx.process_path.clone(), ctx.data_dir.clone());
    let ran =
        tokio::task::spawn_blocking(move || run_process_tests(&candidate, &path, tests, &dir))
            .await
            .unwrap_or_else(|e| {
                Err(ProcessError {
                    file: file.to_string(),
                    line: 0,
                    column: 0,
                    key: String::new(),
                    message: format!("running the process tests failed: {e}"),
                    hint: None,
                })
            });
    match ran {
        Err(e) => return Err(InvalidProcess { errors: vec![e] }),
        Ok(Some((path, results))) => {
            let errors = failing_cases(&path, &results);
            if !errors.is_empty() {
                return Err(InvalidProcess { errors });
            }
        }
        Ok(None) => {}
    }
    Ok(Checked {
        hash,
        process,
        plugins,
    })
}

/// Makes a checked text the next version (the writer may still refuse it:
/// a removed stage that holds prospects).
async fn commit(
    ctx: &Arc<Ctx>,
    file: &str,
    text: String,
    checked: Checked,
    current: &Arc<ActiveProcess>,
) -> Reload {
    let Checked {
        hash,
        process,
        plugins,
    } = checked;
    let at = ctx.clock.now();
    let changes = stagecoach_core::diff::describe(&current.process, &process);
    let op = WriteOp::ApplyProcessVersion(Box::new(NewVersion {
        text: text.clone(),
        hash: hash.clone(),
        path: file.to_string(),
        at,
        process: process.clone(),
        previous: Some(current.clone()),
    }));
    match ctx.writer.write(current.clone(), op).await {
        Ok(result) => {
            let applied = result.version_applied();
            let version = applied.version;
            let active = ActiveProcess {
                version,
                hash,
                text,
                loaded_at: at,
                process,
                plugins,
            };
            *ctx.process.write().expect("process lock") = Arc::new(active);
            Reload::Applied(ReloadResult {
                outcome: ReloadOutcome::Reloaded,
                version,
                previous: current.version,
                changes,
                renamed: applied.renamed,
                migrated: applied.migrated,
            })
        }
        Err(WriteError::Refused(e @ EngineError::OrphanedStages(_))) => {
            let hint = e.hint();
            let message = e.to_string();
            Reload::Rejected(whole_file_error(file, message, hint))
        }
        Err(e) => Reload::Rejected(whole_file_error(
            file,
            format!("cannot store the new version: {e}"),
            None,
        )),
    }
}

fn publish(ctx: &Arc<Ctx>, outcome: &Reload) {
    let event = match outcome {
        Reload::Applied(ReloadResult {
            outcome: ReloadOutcome::Unchanged,
            version,
            ..
        }) => {
            // Saving the running content again clears an earlier rejection.
            if ctx
                .last_process_error
                .lock()
                .expect("error lock")
                .take()
                .is_none()
            {
                return;
            }
            tracing::info!(version, "process file restored to the running version");
            Event::ProcessReloaded {
                version: *version,
                previous: *version,
                changes: Vec::new(),
                renamed: 0,
                migrated: 0,
            }
        }
        Reload::Applied(ReloadResult {
            version,
            previous,
            changes,
            renamed,
            migrated,
            ..
        }) => {
            *ctx.last_process_error.lock().expect("error lock") = None;
            tracing::info!(
                version,
                previous,
                changes = changes.len(),
                renamed,
                migrated,
                "process reloaded"
            );
            for change in changes {
                tracing::info!(version, "  {change}");
            }
            Event::ProcessReloaded {
                version: *version,
                previous: *previous,
                changes: changes.clone(),
                renamed: *renamed,
                migrated: *migrated,
            }
        }
        Reload::Rejected(invalid) => {
            tracing::error!(
                version = ctx.active().version,
                "process edit rejected, running version kept:\n{invalid}"
            );
            *ctx.last_process_error.lock().expect("error lock") = Some(invalid.clone());
            Event::ProcessRejected {
                version: ctx.active().version,
                errors: invalid.errors.clone(),
            }
        }
    };
    let _ = ctx.events.send(event);
}

/// Components at least this large that are not compiled yet are left to
/// compile in the background when the daemon starts ([`Loading::Start`]):
/// an interpreter's (CPython's 18 MiB takes 25–30 s to compile, QuickJS's
/// 1.7 MiB about 5 s), where a Rust plugin of 100 KiB takes a fraction of a
/// second and is waited for.
pub const COMPILE_IN_BACKGROUND_BYTES: usize = 1 << 20;

/// How [`load_plugin_set`] treats a plugin it would have to compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loading {
    /// Compile it now: the set is complete when it is returned.
    Now,
    /// The daemon is starting: leave a large one
    /// ([`COMPILE_IN_BACKGROUND_BYTES`]) [`unavailable`](PluginSet::unavailable),
    /// to be loaded by [`reload_plugins`] while the daemon serves.
    Start,
}

/// Loads every plugin `process` declares (paths relative to the process
/// file), reusing the ones in `previous` whose file and limits are unchanged.
/// A plugin that fails to load makes the whole set fail, pointing at its
/// `[[plugins]]` entry.
pub fn load_plugin_set(
    host: &Arc<PluginHost>,
    process: &Process,
    process_path: &Path,
    previous: Option<&PluginSet>,
    loading: Loading,
) -> Result<PluginSet, InvalidProcess> {
    let file = process_path.display().to_string();
    let mut set = PluginSet::default();
    let mut errors = Vec::new();
    for (i, decl) in process.plugins.iter().enumerate() {
        let path = plugin_path(process_path, &decl.path);
        let error = |message: String, hint: Option<String>| ProcessError {
            file: file.clone(),
            line: decl.at.0,
            column: decl.at.1,
            key: format!("plugins[{i}]"),
            message,
            hint,
        };
        let bytes = match read_regular(&path, u64::from(decl.limits.max_file_mib) << 20) {
            Ok(b) => b,
            Err(e) => {
                let hint = (!path.exists()).then(|| {
                    "build the plugins with `stagecoach plugins build` (scripts/serve does)".into()
                });
                errors.push(error(format!("plugin `{}`: {e}", decl.name), hint));
                continue;
            }
        };
        let hash = blake3::hash(&bytes).to_hex().to_string();
        let runtime = stagecoach_plugin_host::runtime_of(&bytes);
        let limits = decl.limits_for(runtime);
        if let Some(old) = previous.and_then(|p| p.get(&decl.name))
            && old.hash == hash
            && old.limits == limits
        {
            set.plugins.insert(decl.name.clone(), old.clone());
            continue;
        }
        if loading == Loading::Start
            && bytes.len() >= COMPILE_IN_BACKGROUND_BYTES
            && host.needs_compiling(&hash, runtime)
        {
            tracing::info!(plugin = %decl.name, bytes = bytes.len(), "not compiled yet: compiling it in the background while the daemon serves");
            set.unavailable.insert(
                decl.name.clone(),
                stagecoach_plugin_host::BEING_COMPILED.to_string(),
            );
            continue;
        }
        match host.load(&decl.name, &path, &bytes, limits) {
            Ok(plugin) => {
                set.plugins.insert(decl.name.clone(), plugin);
            }
            Err(e) => {
                errors.push(error(
                    format!("plugin `{}`: {}", decl.name, e.message),
                    e.hint,
                ));
            }
        }
    }
    errors.extend(misused(process, &set, &file, None));
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(InvalidProcess { errors })
    }
}

/// Where `process` uses a loaded plugin for what it does not provide (a
/// checklist as an exit criterion, …), for every plugin or `only` one.
fn misused(
    process: &Process,
    set: &PluginSet,
    file: &str,
    only: Option<&str>,
) -> Vec<ProcessError> {
    let mut errors = Vec::new();
    for (i, stage) in process.stages.iter().enumerate() {
        let uses = stage
            .exit
            .iter()
            .enumerate()
            .filter_map(|(j, c)| match &c.check {
                Check::Plugin { plugin, .. } => Some((
                    format!("stages[{i}].exit[{j}]"),
                    plugin,
                    Capability::Criterion,
                    c.at,
                )),
                Check::Checklist { checklist, .. } => Some((
                    format!("stages[{i}].exit[{j}]"),
                    checklist,
                    Capability::Checklist,
                    c.at,
                )),
                _ => None,
            })
            .chain(stage.checklists.iter().enumerate().map(|(j, name)| {
                (
                    format!("stages[{i}].checklists[{j}]"),
                    name,
                    Capability::Checklist,
                    (stage.line, 1),
                )
            }));
        for (key, name, needed, (line, column)) in uses {
            if let Some(p) = set.get(name)
                && only.is_none_or(|o| o == name.as_str())
                && !p.provides.contains(&needed)
            {
                errors.push(ProcessError {
                    file: file.to_string(),
                    line,
                    column,
                    key,
                    message: format!(
                        "plugin `{name}` does not provide a {}",
                        match needed {
                            Capability::Criterion => "exit criterion",
                            Capability::Checklist => "checklist",
                            Capability::Metric => "metric",
                        }
                    ),
                    hint: Some(format!("it provides: {:?}", p.provides).to_lowercase()),
                });
            }
        }
    }
    errors
}

/// A plugin path from `process.toml`, relative to the file's directory.
pub fn plugin_path(process_path: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match process_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

/// Re-reads changed plugin files, and loads the ones not loaded yet (left
/// to compile in the background at start-up). A plugin that no longer
/// loads keeps its previous build running; the failure is logged and
/// pushed as `plugin.failed`. When a plugin that was not loaded becomes
/// available, open prospects are evaluated again (their criteria were
/// unmet for want of it).
pub async fn reload_plugins(ctx: &Arc<Ctx>) {
    let current = ctx.active();
    let host = ctx.plugin_host.clone();
    let path = ctx.process_path.clone();
    let snapshot = current.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut set = (*snapshot.plugins).clone();
        let mut failures = Vec::new();
        let mut changed = 0;
        let mut arrived = 0;
        for decl in &snapshot.process.plugins {
            let file = plugin_path(&path, &decl.path);
            let bytes = match read_regular(&file, u64::from(decl.limits.max_file_mib) << 20) {
                Ok(b) => b,
                Err(e) => {
                    failures.push((decl.name.clone(), e, None));
                    continue;
                }
            };
            let hash = blake3::hash(&bytes).to_hex().to_string();
            if set.get(&decl.name).is_some_and(|p| p.hash == hash) {
                continue;
            }
            let limits = decl.limits_for(stagecoach_plugin_host::runtime_of(&bytes));
            match host.load(&decl.name, &file, &bytes, limits) {
                Ok(p) => {
                    set.plugins.insert(decl.name.clone(), p);
                    if set.unavailable.contains_key(&decl.name) {
                        // Loaded in the background: the uses the process
                        // makes of it are checked now.
                        let name = path.display().to_string();
                        let wrong = misused(&snapshot.process, &set, &name, Some(&decl.name));
                        if let Some(e) = wrong.first() {
                            set.plugins.remove(&decl.name);
                            let why = format!("cannot be used as the process does: {}", e.message);
                            set.unavailable.insert(decl.name.clone(), why.clone());
                            failures.push((decl.name.clone(), why, e.hint.clone()));
                            changed += 1;
                            continue;
                        }
                        set.unavailable.remove(&decl.name);
                        arrived += 1;
                    }
                    changed += 1;
                }
                Err(e) => {
                    if set.unavailable.contains_key(&decl.name) {
                        set.unavailable
                            .insert(decl.name.clone(), format!("did not load: {}", e.message));
                        changed += 1;
                    }
                    failures.push((decl.name.clone(), e.message, e.hint))
                }
            }
        }
        (set, changed, arrived, failures)
    })
    .await;
    let Ok((set, changed, arrived, failures)) = outcome else {
        return;
    };
    for (plugin, message, hint) in failures {
        tracing::error!(plugin = %plugin, hint = ?hint, "new plugin build refused; the previous one keeps running: {message}");
        let _ = ctx.events.send(Event::PluginFailed {
            plugin,
            kind: "load".into(),
            message,
            hint,
        });
    }
    if changed == 0 {
        return;
    }
    {
        let mut guard = ctx.process.write().expect("process lock");
        if guard.version != current.version {
            return; // a process reload raced us; it loaded plugins itself
        }
        *guard = Arc::new(ActiveProcess {
            version: current.version,
            hash: current.hash.clone(),
            text: current.text.clone(),
            loaded_at: current.loaded_at,
            process: current.process.clone(),
            plugins: Arc::new(set),
        });
    }
    tracing::info!(changed, "plugins reloaded");
    let _ = ctx.events.send(Event::PluginsReloaded {
        version: current.version,
        changed: changed as u64,
    });
    if arrived > 0 {
        match crate::rpc::reevaluate_open(ctx, ctx.clock.now()).await {
            Ok(r) => tracing::info!(
                evaluated = r.evaluated,
                moved = r.moved,
                "plugins ready: open prospects evaluated again"
            ),
            Err(e) => {
                tracing::error!(error = %e.message, "plugins ready, but evaluating open prospects again failed")
            }
        }
    }
}

fn watched_files(ctx: &Ctx) -> Vec<PathBuf> {
    let active = ctx.active();
    let mut files = vec![ctx.process_path.clone()];
    files.extend(
        active
            .process
            .plugins
            .iter()
            .map(|d| plugin_path(&ctx.process_path, &d.path)),
    );
    files
}

/// Watches the process file and its plugins until `stop` is cancelled,
/// reloading on every change.
///
/// The watch starts when this is called, not when the future is first
/// polled: a daemon watches its file before it serves its first request, so
/// a save made right after it answers is never missed.
pub fn watch_process(
    ctx: Arc<Ctx>,
    stop: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send {
    let path = ctx.process_path.clone();
    let files = watched_files(&ctx);
    let watcher = FileWatcher::new(&files);
    if watcher.is_ok() {
        tracing::info!(path = %path.display(), plugins = files.len() - 1, "watching the process file and its plugins");
    }
    async move {
        match watcher {
            Ok(watcher) => watch_loop(ctx, stop, path, files, watcher).await,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch the process file; edits need `stagecoach process reload`");
            }
        }
    }
}

async fn watch_loop(
    ctx: Arc<Ctx>,
    stop: CancellationToken,
    path: PathBuf,
    mut files: Vec<PathBuf>,
    mut watcher: FileWatcher,
) {
    loop {
        let changed = tokio::select! {
            _ = stop.cancelled() => return,
            changed = watcher.next_change(DEBOUNCE) => changed,
        };
        let Some(changed) = changed else { return };
        if !changed.contains(&path) {
            reload_plugins(&ctx).await;
            continue;
        }
        // A delete-and-recreate save can leave the file briefly missing.
        crate::notify::reloading();
        if !Path::new(&path).exists() {
            tokio::time::sleep(DEBOUNCE * 4).await;
        }
        let mut outcome = read_and_apply(&ctx).await;
        // A save caught half-way (truncated, not yet written) reads as a bad
        // file: report a rejection only if no further write follows soon.
        while matches!(outcome, Reload::Rejected(_)) {
            match tokio::time::timeout(SETTLE, watcher.next_change(DEBOUNCE)).await {
                Ok(Some(_)) => outcome = read_and_apply(&ctx).await,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        publish(&ctx, &outcome);
        ready_again(&ctx);
        // The new version may use other plugin files.
        let now_watched = watched_files(&ctx);
        if now_watched != files {
            match FileWatcher::new(&now_watched) {
                Ok(w) => {
                    watcher = w;
                    files = now_watched;
                }
                Err(e) => tracing::error!(error = %e, "cannot watch the new plugin files"),
            }
        }
    }
}

/// The review warning for `daemon.status`: days since the process last
/// changed, when that is longer than `review_every_days`.
pub fn review_overdue(active: &ActiveProcess, now: Millis) -> Option<Review> {
    let days = active.process.review_every_days?;
    let age = active.loaded_at.days_until(now);
    (age > f64::from(days)).then(|| Review {
        message: format!(
            "the process has not changed for {} days; review it every {days} days",
            age.floor()
        ),
        days_since_change: age.floor(),
        review_every_days: days,
    })
}
