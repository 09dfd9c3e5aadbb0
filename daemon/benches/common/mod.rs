//! Shared by the benchmarks: the real daemon, started from the built binary.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod history;

/// How many prospects a scale benchmark generates:
/// `STAGECOACH_BENCH_PROSPECTS`, or `default`.
#[allow(dead_code)]
pub fn bench_prospects(default: u64) -> u64 {
    std::env::var("STAGECOACH_BENCH_PROSPECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The daemon binary benchmarked: this build's, or another build's given as
/// `STAGECOACH_BENCH_BIN` (to compare two versions in one session,
/// interleaving runs of each).
#[allow(dead_code)] // not every benchmark starts a daemon
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
    #[allow(dead_code)] // not every benchmark starts a daemon
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
        // Until `daemon.status` answers: while it starts, the daemon answers
        // every request with -32006.
        let stream = loop {
            if let Ok(s) = UnixStream::connect(&socket) {
                let mut probe = Conn::from(s.try_clone().unwrap());
                probe.send(0, "daemon.status", json!({}));
                if probe.try_recv().is_some_and(|v| v.get("result").is_some()) {
                    break s;
                }
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

/// Operations, their wall time and each one's latency.
#[allow(dead_code)]
pub struct Stats {
    /// How many.
    pub ops: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Each operation's.
    pub latencies: Vec<Duration>,
}

#[allow(dead_code)]
impl Stats {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile of latency.
    pub fn pct(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        if l.is_empty() {
            return Duration::ZERO;
        }
        l[((l.len() - 1) as f64 * p).round() as usize]
    }

    /// One line: rate, p50, p99.
    pub fn print(&self, name: &str) {
        println!(
            "{name:<58} {:>10.0} /s   p50 {:>8.3} ms   p99 {:>8.3} ms",
            self.rate(),
            self.pct(0.50).as_secs_f64() * 1e3,
            self.pct(0.99).as_secs_f64() * 1e3
        );
    }
}

/// The CPU, cores and kernel, for the header of every benchmark.
#[allow(dead_code)]
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

/// A connection to the daemon, one JSON line each way.
#[allow(dead_code)]
pub struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    line: String,
}

impl From<UnixStream> for Conn {
    fn from(s: UnixStream) -> Conn {
        Conn {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            line: String::new(),
        }
    }
}

#[allow(dead_code)]
impl Conn {
    /// Connects.
    pub fn new(socket: &Path) -> Conn {
        let s = UnixStream::connect(socket).unwrap();
        Conn {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            line: String::new(),
        }
    }

    /// Sends one request.
    pub fn send(&mut self, id: usize, method: &str, params: Value) {
        let mut line =
            json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).unwrap();
    }

    /// Reads one answer, whatever it is; none if the connection closed.
    pub fn try_recv(&mut self) -> Option<Value> {
        self.line.clear();
        self.reader.read_line(&mut self.line).ok()?;
        serde_json::from_str(&self.line).ok()
    }

    /// Reads one answer (asserting it succeeded).
    pub fn recv(&mut self) -> Value {
        self.line.clear();
        self.reader.read_line(&mut self.line).unwrap();
        let v: Value = serde_json::from_str(&self.line).unwrap();
        assert!(v.get("result").is_some(), "request failed: {v}");
        v
    }
}

/// Builds the plugin crate at `crate_dir` (relative to the repository).
#[allow(dead_code)]
pub fn build_plugin(out: &Path, crate_dir: &str) -> PathBuf {
    let status = Command::new(env!("CARGO_BIN_EXE_stagecoach"))
        .args(["plugin", "build", "--out"])
        .arg(out)
        .arg("--target-dir")
        .arg(root().join("target/plugin-build"))
        .arg(root().join(crate_dir))
        .current_dir(root())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "building {crate_dir} failed");
    let name = Path::new(crate_dir).file_name().unwrap().to_str().unwrap();
    out.join(format!("{name}.wasm"))
}

#[allow(dead_code)]
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}
