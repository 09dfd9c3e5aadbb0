//! Test helpers: a real daemon (the built binary) in its own temporary
//! directory, and a line-oriented JSON-RPC client over the real socket.
//!
//! When a test fails, the daemon's stderr is printed so the failure can be
//! read without re-running.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The `stagecoach` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stagecoach")
}

/// The repository root (for `process.toml` and `examples/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The default process file's text, its plugin paths pointing at the
/// plugins built for the tests.
pub fn default_process() -> String {
    let text = std::fs::read_to_string(repo_root().join("process.toml")).unwrap();
    text.replace(
        "path = \"plugins/",
        &format!("path = \"{}/", plugins_dir().display()),
    )
}

/// The standard plugins and the hostile test plugin, built once per test run
/// with `stagecoach plugin build` (which the tests thereby exercise).
pub fn plugins_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = repo_root();
        let out = root.join("target/test-plugins");
        let mut dirs = plugin_dirs(&["Cargo.toml"]);
        dirs.push(root.join("tests/fixtures/hostile"));
        build_plugins(&out, &dirs);
        out
    })
}

/// The directories under `plugins/` with one of these manifests, sorted.
fn plugin_dirs(manifests: &[&str]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo_root().join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| manifests.iter().any(|m| p.join(m).exists()))
        .collect();
    dirs.sort();
    dirs
}

/// `stagecoach plugins build DIRS --out OUT`, with the test run's target,
/// toolchain and compiled-plugin directories.
fn build_plugins(out: &Path, dirs: &[PathBuf]) {
    let root = repo_root();
    let output = Command::new(bin())
        .args(["plugins", "build", "--out"])
        .arg(out)
        .arg("--target-dir")
        .arg(root.join("target/plugin-build"))
        .arg("--toolchains")
        .arg(root.join("target/plugin-toolchains"))
        .arg("--compile-cache")
        .arg(root.join("target/test-plugin-cache"))
        .args(dirs)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building {dirs:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The plugins written in Python and TypeScript (`plugins/*-py`,
/// `plugins/*-ts`) and the hostile fixtures in both languages, built once
/// per test run with `stagecoach plugins build` into the same directory as
/// [`plugins_dir`], and compiled into the daemons' cache ahead of time.
/// The toolchains are installed into `target/plugin-toolchains` the first
/// time (pip and npm, pinned).
pub fn polyglot_plugins_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = repo_root();
        let out = root.join("target/test-plugins");
        let mut dirs = plugin_dirs(&["pyproject.toml", "package.json"]);
        dirs.push(root.join("tests/fixtures/hostile-py"));
        dirs.push(root.join("tests/fixtures/hostile-ts"));
        build_plugins(&out, &dirs);
        out
    })
}

/// A running daemon with its own data directory.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub process: PathBuf,
    child: Option<Child>,
    log: PathBuf,
    /// Extra environment for the daemon process (set before `spawn`).
    pub env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts a daemon on the default process.
    pub fn start() -> Daemon {
        Daemon::start_with(&default_process())
    }

    /// Starts a daemon on a process with this text.
    pub fn start_with(process_text: &str) -> Daemon {
        Daemon::start_with_flags(process_text, &[])
    }

    /// Starts a daemon on a process with this text and these `serve` flags.
    pub fn start_with_flags(process_text: &str, flags: &[&str]) -> Daemon {
        let mut d = Daemon::prepare(process_text);
        d.spawn(flags);
        d
    }

    /// A daemon's directory with this process file, not started yet
    /// ([`Daemon::spawn`] starts it).
    pub fn prepare(process_text: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let process = dir.path().join("process.toml");
        std::fs::write(&process, process_text).unwrap();
        Daemon {
            socket: dir.path().join("data/stagecoach.sock"),
            log: dir.path().join("daemon.log"),
            process,
            dir,
            child: None,
            env: Vec::new(),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--process")
            .arg(&self.process)
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--socket")
            .arg(&self.socket)
            .args(extra)
            .env("RUST_LOG", "stagecoach=debug")
            .env(
                "STAGECOACH_PLUGIN_CACHE",
                repo_root().join("target/test-plugin-cache"),
            )
            .env_remove("STAGECOACH_SOCKET")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    }

    /// Starts the daemon process and waits until its socket answers.
    pub fn spawn(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = self.command(extra).stderr(log).spawn().unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // While it starts, the daemon answers -32006, and a connection
            // made just as it finishes starting may be closed unanswered:
            // probe without assuming the write or the answer gets through.
            if let Ok(mut c) = Client::try_connect(&self.socket)
                && c.send_bytes(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n")
                    .is_ok()
                && c.read().is_some_and(|a| a.get("result").is_some())
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "daemon exited with {status} during start-up\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not start\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `stagecoach serve` to completion with extra flags (for start-up failures).
    pub fn run_serve(&self, extra: &[&str]) -> Output {
        let mut cmd = self.command(extra);
        cmd.stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        wait_output(child, Duration::from_secs(20))
    }

    /// A new connection.
    pub fn client(&self) -> Client {
        Client::try_connect(&self.socket).unwrap()
    }

    /// Runs a client subcommand of the CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `stagecoach demo` with the tests' small history (300 prospects over
    /// six months, seed 3) and `extra` flags.
    pub fn demo(&self, extra: &[&str]) -> Output {
        let mut args = vec!["demo", "--prospects", "300", "--months", "6", "--seed", "3"];
        args.extend_from_slice(extra);
        self.cli(&args)
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, rustix::process::Signal::TERM);
            let status = wait_timeout(&mut child, Duration::from_secs(20));
            assert!(
                status.success(),
                "daemon exited with {status}\n{}",
                self.log_text()
            );
        }
    }

    /// Kills the daemon with SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Stops and starts again on the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(&[]);
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The daemon's resident memory, KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- daemon log ({}) ---\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

fn wait_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    wait_timeout(&mut child, limit);
    child.wait_with_output().unwrap()
}

/// A JSON-RPC client speaking one JSON value per line.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    /// Connects.
    pub fn try_connect(socket: &Path) -> std::io::Result<Client> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
        })
    }

    /// Calls a method: `Ok(result)` or `Err(error object)`.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(
            &json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string(),
        );
        loop {
            let answer = self.read().expect("the daemon closed the connection");
            if answer.get("method").is_some() {
                continue; // a notification
            }
            assert_eq!(
                answer["id"],
                json!(id),
                "answer to another request: {answer}"
            );
            return match answer.get("error") {
                Some(e) => Err(e.clone()),
                None => Ok(answer["result"].clone()),
            };
        }
    }

    /// Calls and expects success.
    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        match self.call(method, params.clone()) {
            Ok(v) => v,
            Err(e) => panic!("{method} {params} failed: {e}"),
        }
    }

    /// Calls and expects an error; returns it.
    pub fn err(&mut self, method: &str, params: Value) -> Value {
        match self.call(method, params.clone()) {
            Ok(v) => panic!("{method} {params} succeeded unexpectedly: {v}"),
            Err(e) => e,
        }
    }

    /// Sends one raw line.
    pub fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).unwrap();
        self.writer.write_all(b"\n").unwrap();
    }

    /// Sends raw bytes without a newline.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Reads one JSON line; `None` at end of stream.
    pub fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}")),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Reads until a notification with this method arrives.
    pub fn wait_notification(&mut self, method: &str) -> Value {
        loop {
            let message = self
                .read()
                .expect("connection closed while waiting for a notification");
            if message["method"] == method {
                return message["params"].clone();
            }
        }
    }
}

/// Creates a prospect and returns its id.
pub fn create(c: &mut Client, name: &str, extra: Value) -> u64 {
    let mut params = json!({ "name": name });
    if let Value::Object(m) = extra {
        params.as_object_mut().unwrap().extend(m);
    }
    c.ok("prospect.create", params)["id"].as_u64().unwrap()
}

/// Records a prospect action and returns the result.
pub fn record(c: &mut Client, id: u64, kind: &str) -> Value {
    c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": kind, "actor": "prospect" }),
    )
}

/// The sum of a JSON object's counts (`{"connect": 2, "close": 1}` → 3).
pub fn total(counts: &Value) -> u64 {
    counts
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}

/// Every figure of a report: `data-k` → `data-v`.
pub fn figures(html: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for part in html.split("data-k=\"").skip(1) {
        let key = &part[..part.find('"').unwrap()];
        let rest = &part[part.find("data-v=\"").unwrap() + 8..];
        let value = &rest[..rest.find('"').unwrap()];
        let shown_start = rest.find('>').unwrap() + 1;
        let shown = &rest[shown_start..shown_start + rest[shown_start..].find('<').unwrap()];
        assert!(!shown.is_empty(), "{key} is shown");
        assert!(
            out.insert(key.to_string(), value.to_string()).is_none(),
            "{key} appears once"
        );
    }
    out
}
