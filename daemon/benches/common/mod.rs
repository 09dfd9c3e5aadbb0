//! Shared by the benchmarks: the real daemon, started from the built binary.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon binary benchmarked: this build's, or another build's given as
/// `STAGECOACH_BENCH_BIN` (to compare two versions in one session,
/// interleaving runs of each).
pub fn daemon_binary() -> std::path::PathBuf {
    std::env::var_os("STAGECOACH_BENCH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_stagecoach").into())
}

/// A daemon serving `process` (written to `dir/process.toml`), killed on drop.
pub struct BenchDaemon {
    child: Child,
    /// Its socket, for more connections (not every benchmark opens one).
    #[allow(dead_code)]
    pub socket: PathBuf,
}

impl BenchDaemon {
    /// Starts the daemon with `extra` serve flags and returns it with a
    /// connection once its socket answers.
    pub fn start(dir: &Path, process: &str, extra: &[&str]) -> (BenchDaemon, UnixStream) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("process.toml"), process).unwrap();
        let socket = dir.join("stagecoach.sock");
        let child = Command::new(daemon_binary())
            .arg("serve")
            .args(extra)
            .arg("--process")
            .arg(dir.join("process.toml"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--socket")
            .arg(&socket)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // A start after a crash checks the whole database first.
        let deadline = Instant::now() + Duration::from_secs(120);
        let stream = loop {
            if let Ok(s) = UnixStream::connect(&socket) {
                break s;
            }
            assert!(Instant::now() < deadline, "daemon did not start");
            // Fine enough to time a start-up (the metrics benchmark does).
            std::thread::sleep(Duration::from_millis(1));
        };
        (BenchDaemon { child, socket }, stream)
    }

    /// The daemon's process id.
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the daemon with `signal` (`TERM`, `KILL`) and waits for it.
    #[allow(dead_code)]
    pub fn stop(mut self, signal: &str) {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -s {signal} failed");
        self.child.wait().unwrap();
    }
}

impl Drop for BenchDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
