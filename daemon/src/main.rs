//! The `stagecoach` binary: arguments, logging, then the library.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stagecoach::cli::{
    Cli, Command, LogFormat, PluginCmd, discover_local, lint_file, plugin_local, run_client,
};
use stagecoach_core::clock::Clock;
use stagecoach_server::{Limits, ServeConfig};
use tracing_subscriber::EnvFilter;

/// The daemon's allocator: mimalloc. A replay of 1M prospects spent ~20%
/// of its samples in glibc's malloc and free (its reading thread allocates
/// what its writing thread frees) and took 25 s with mimalloc against
/// 30-32 s (`process simulate` through the daemon, interleaved).
///
/// The compile worker (`plugins compile-worker`) keeps the system's: it
/// runs under an address-space limit (`--compile-memory-mib`, 64 MiB in
/// the sandbox test), and mimalloc reserves address space 32 MiB or more
/// at a time, which that limit counts whether it is used or not. Which one
/// serves is decided once, before the first allocation ([`TUNE_ALLOCATOR`]),
/// and never changes, so every block is freed by the allocator that made it.
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

struct Allocator;

/// Set for the compile worker, before anything allocates. Elsewhere than
/// on glibc's Linux, where that choice and mimalloc's options cannot be
/// made before the first allocation (`TUNE_ALLOCATOR`), the system's
/// allocator serves throughout.
static SYSTEM_ALLOCATOR: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(!cfg!(all(target_os = "linux", target_env = "gnu")));

impl Allocator {
    fn system() -> bool {
        SYSTEM_ALLOCATOR.load(std::sync::atomic::Ordering::Relaxed)
    }
}

// SAFETY: every call is forwarded to one of two allocators, the same one
// for the life of the process (see `ALLOCATOR`).
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if Self::system() {
                std::alloc::System.alloc(layout)
            } else {
                mimalloc::MiMalloc.alloc(layout)
            }
        }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if Self::system() {
                std::alloc::System.alloc_zeroed(layout)
            } else {
                mimalloc::MiMalloc.alloc_zeroed(layout)
            }
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract, passed on; `ptr` came from the same allocator.
        unsafe {
            if Self::system() {
                std::alloc::System.dealloc(ptr, layout)
            } else {
                mimalloc::MiMalloc.dealloc(ptr, layout)
            }
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on; `ptr` came from the same allocator.
        unsafe {
            if Self::system() {
                std::alloc::System.realloc(ptr, layout, new_size)
            } else {
                mimalloc::MiMalloc.realloc(ptr, layout, new_size)
            }
        }
    }
}

/// Chooses the allocator and sets mimalloc's options before anything
/// allocates (an `.init_array` entry that runs ahead of mimalloc's own
/// start-up and of the Rust runtime's; options mimalloc reads once, at its
/// first allocation, cannot be changed later): freed memory goes back to
/// the kernel at once (`purge_delay` 0, not 10 ms later) and arenas are
/// committed as they are used, not eagerly. With mimalloc's defaults the
/// daemon held 56 MiB idle and 70-92 MiB after the bounds tests' clients
/// (glibc: 33 and 37-43); with these, 35 and 41-47, at no measurable cost
/// to the replay.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
#[used]
#[unsafe(link_section = ".init_array.00098")]
static TUNE_ALLOCATOR: extern "C" fn(i32, *const *const std::ffi::c_char) = tune_allocator;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
extern "C" fn tune_allocator(argc: i32, argv: *const *const std::ffi::c_char) {
    // mimalloc's `mi_option_e` (include/mimalloc.h, the same in v2 and v3).
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: glibc calls `.init_array` entries with the program's
    // arguments (argc strings, each NUL-terminated); they are only read.
    // Setting an option stores into mimalloc's option table; this runs
    // once, at load, before any thread or allocation exists.
    unsafe {
        let worker = (0..usize::try_from(argc).unwrap_or(0)).any(|i| {
            let arg = *argv.add(i);
            !arg.is_null() && std::ffi::CStr::from_ptr(arg).to_bytes() == b"compile-worker"
        });
        if worker {
            SYSTEM_ALLOCATOR.store(true, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

fn init_logging(cli: &Cli, default_level: &str) {
    let level = if cli.log_level == "info" {
        default_level
    } else {
        &cli.log_level
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed now, not when the future is first polled (after start-up):
    // a SIGTERM that arrives while the daemon starts must stop it cleanly,
    // not kill it (a test saw "exited with signal 15" right after start).
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}

/// Makes glibc serve every allocation of 256 KiB or more with its own
/// mapping, returned to the kernel when freed. By default glibc raises that
/// threshold to the size of the largest block freed so far (up to 32 MiB),
/// after which large transient buffers — a plugin's refused 30 MiB error
/// string, a big export page — stay in each thread's heap for good: the
/// sandbox tests measured 27 → 152 MiB retained after three such calls, and
/// 30 MiB with the threshold fixed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn return_large_blocks_to_the_kernel() {
    const M_MMAP_THRESHOLD: i32 = -3;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: `mallopt` only sets an allocator parameter; it is called
    // before any other thread exists, with a documented parameter and value.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 256 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_blocks_to_the_kernel() {}

/// A client command ends quietly when its reader goes away (`stagecoach
/// prospect list | head -1`), as `git` and `cat` do: Rust ignores SIGPIPE,
/// so every `println!` after the pipe closed would panic instead. The daemon
/// keeps ignoring it: a client that leaves is an error on its connection.
#[cfg(unix)]
#[allow(unsafe_code)]
fn die_quietly_on_a_closed_pipe() {
    // SAFETY: restores the default disposition of one signal, before any
    // other thread exists; no handler code is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn die_quietly_on_a_closed_pipe() {}

/// Threads for blocking work (store reads, parsing, validation).
const BLOCKING_THREADS: usize = 16;

/// An empty `STAGECOACH_*` variable counts as unset, as `VAR= command`
/// means in a shell (clap would refuse it: "a value is required for
/// '--socket <SOCKET>'", naming a flag nobody typed).
#[allow(unsafe_code)]
fn ignore_empty_settings() {
    let empty: Vec<_> = std::env::vars_os()
        .filter(|(k, v)| k.to_string_lossy().starts_with("STAGECOACH_") && v.is_empty())
        .map(|(k, _)| k)
        .collect();
    for k in empty {
        // SAFETY: the first thing main does, before any thread exists, so
        // nothing reads the environment while it changes.
        unsafe { std::env::remove_var(k) };
    }
}

fn main() -> ExitCode {
    ignore_empty_settings();
    return_large_blocks_to_the_kernel();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        die_quietly_on_a_closed_pipe();
    }
    // The daemon's compile worker: nothing else in its process (no
    // runtime, no threads), so its memory limit is the compiler's alone.
    if let Command::Plugins(PluginCmd::CompileWorker {
        input,
        out,
        max_memory_mib,
    }) = &cli.command
    {
        return match stagecoach_plugin_host::compile_worker(input, out, *max_memory_mib) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    // Reads, parses and validations run on the blocking pool: tokio's
    // default of 512 threads lets one pipelining client start hundreds of
    // threads (tens of MiB of stacks) for work two cores do in turn.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .expect("starting the tokio runtime");
    let result: anyhow::Result<()> = runtime.block_on(async {
        match &cli.command {
            Command::Serve {
                process,
                idle_timeout,
                max_connections,
                import_idle_secs,
                import_max_secs,
                max_line,
                max_batch,
                max_queued_mib,
                max_process_mib,
                no_watch,
                plugin_cache,
                cache_mib,
                quick_repair: _,
                min_free_mib,
                compile_timeout_secs,
                compile_memory_mib,
            } => {
                init_logging(&cli, "info");
                let config = ServeConfig {
                    process_path: process.clone(),
                    data_dir: cli.data_dir(),
                    socket: cli.socket(),
                    limits: Limits {
                        max_line: *max_line,
                        idle_timeout: Duration::from_secs(*idle_timeout),
                        max_connections: *max_connections,
                        max_batch: *max_batch as usize,
                        max_queued: (*max_queued_mib as usize) << 20,
                        import_idle: Duration::from_secs(*import_idle_secs),
                        import_max: Duration::from_secs(*import_max_secs),
                        ..Limits::default()
                    },
                    clock: Clock::system(),
                    watch: !no_watch,
                    plugin_cache: plugin_cache.clone(),
                    cache_mib: *cache_mib,
                    min_free_mib: *min_free_mib,
                    max_process_mib: *max_process_mib,
                    compile_worker: std::env::current_exe().ok().map(|exe| {
                        stagecoach_plugin_host::CompileWorker {
                            command: vec![exe.into(), "plugins".into(), "compile-worker".into()],
                            timeout: Duration::from_secs(*compile_timeout_secs),
                            max_memory_mib: *compile_memory_mib,
                        }
                    }),
                };
                stagecoach_server::run(config, shutdown_signal()).await?;
                Ok(())
            }
            Command::Plugins(
                cmd @ (PluginCmd::Build { .. }
                | PluginCmd::New { .. }
                | PluginCmd::Test { .. }
                | PluginCmd::Run { .. }),
            ) => {
                init_logging(&cli, "warn");
                plugin_local(cmd, cli.json)
            }
            Command::Discover(args) if args.prospects.is_some() => {
                init_logging(&cli, "warn");
                discover_local(args, cli.json)
            }
            Command::Completions { shell } => {
                let mut cmd = <Cli as clap::CommandFactory>::command();
                clap_complete::generate(*shell, &mut cmd, "stagecoach", &mut std::io::stdout());
                Ok(())
            }
            Command::Man { dir } => {
                let cmd = <Cli as clap::CommandFactory>::command();
                match dir {
                    Some(dir) => {
                        std::fs::create_dir_all(dir)?;
                        clap_mangen::generate_to(cmd, dir)?;
                        println!("wrote the manual pages to {}", dir.display());
                    }
                    // The page lists every command with what it does.
                    None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?,
                }
                Ok(())
            }
            Command::Lint { file, strict } => {
                init_logging(&cli, "warn");
                lint_file(file, *strict, cli.json)
            }
            Command::Test { file, format, out } => {
                init_logging(&cli, "warn");
                stagecoach::cli::test_file(&cli, file, *format, out.as_deref())
            }
            _ => {
                init_logging(&cli, "warn");
                run_client(&cli).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
