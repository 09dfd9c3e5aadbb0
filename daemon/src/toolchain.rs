//! Plugins written in Python and TypeScript/JavaScript: finding out which
//! language a plugin directory is in, installing the toolchain it needs into
//! a project-local cache on first use (pinned versions, by package name),
//! building it into a component that imports only the Stagecoach interface,
//! and running its native tests.
//!
//! The SDKs and the WIT travel inside this binary, so a plugin built by a
//! given `stagecoach` always speaks that binary's interface version, from
//! any directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Python toolchain: componentize-py (which carries CPython) and pytest.
pub const PYTHON_PACKAGES: &[&str] = &["componentize-py==0.25.1", "pytest==8.3.4"];

/// The JavaScript toolchain: QuickJS components, bundling (TypeScript
/// included) and TypeScript under node's test runner.
pub const NPM_PACKAGES: &[&str] = &["componentize-qjs@0.4.5", "esbuild@0.25.12", "tsx@4.20.6"];

/// The custom section that tells the daemon which runtime a component
/// carries, so interpreted plugins get limits that fit an interpreter.
pub const RUNTIME_SECTION: &str = stagecoach_plugin_host::RUNTIME_SECTION;

/// A plugin's language, from the manifest in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// `Cargo.toml`.
    Rust,
    /// `pyproject.toml`.
    Python,
    /// `package.json` (TypeScript or JavaScript).
    Js,
}

impl Language {
    /// The language of the plugin in `dir`.
    pub fn of(dir: &Path) -> Result<Language, String> {
        if dir.join("Cargo.toml").is_file() {
            Ok(Language::Rust)
        } else if dir.join("pyproject.toml").is_file() {
            Ok(Language::Python)
        } else if dir.join("package.json").is_file() {
            Ok(Language::Js)
        } else if !dir.is_dir() {
            Err(format!("`{}` is not a directory", dir.display()))
        } else {
            Err(format!(
                "`{}` is not a plugin: it has no Cargo.toml, pyproject.toml or package.json\n\
                 hint: see \"Writing a plugin\" in the README for each language",
                dir.display()
            ))
        }
    }
}

/// The SDK and WIT files this binary carries, by path under the SDK root.
const SDK_FILES: &[(&str, &str)] = &[
    (
        "wit/host.wit",
        include_str!("../../plugin-sdk/wit/host.wit"),
    ),
    (
        "wit/plugin.wit",
        include_str!("../../plugin-sdk/wit/plugin.wit"),
    ),
    (
        "wit/types.wit",
        include_str!("../../plugin-sdk/wit/types.wit"),
    ),
    (
        "python/stagecoach_plugin/__init__.py",
        include_str!("../../plugin-sdk/python/src/stagecoach_plugin/__init__.py"),
    ),
    (
        "python/stagecoach_plugin/_component.py",
        include_str!("../../plugin-sdk/python/src/stagecoach_plugin/_component.py"),
    ),
    (
        "python/stagecoach_plugin/_pool.py",
        include_str!("../../plugin-sdk/python/src/stagecoach_plugin/_pool.py"),
    ),
    (
        "js/package.json",
        include_str!("../../plugin-sdk/js/package.json"),
    ),
    (
        "js/src/index.ts",
        include_str!("../../plugin-sdk/js/src/index.ts"),
    ),
    (
        "js/src/component.ts",
        include_str!("../../plugin-sdk/js/src/component.ts"),
    ),
    (
        "js/src/pool.ts",
        include_str!("../../plugin-sdk/js/src/pool.ts"),
    ),
    (
        "js/wit-types/stagecoach-plugin.d.ts",
        include_str!("../../plugin-sdk/js/wit-types/stagecoach-plugin.d.ts"),
    ),
    (
        "js/wit-types/interfaces/stagecoach-plugin-host.d.ts",
        include_str!("../../plugin-sdk/js/wit-types/interfaces/stagecoach-plugin-host.d.ts"),
    ),
    (
        "js/wit-types/interfaces/stagecoach-plugin-plugin.d.ts",
        include_str!("../../plugin-sdk/js/wit-types/interfaces/stagecoach-plugin-plugin.d.ts"),
    ),
    (
        "js/wit-types/interfaces/stagecoach-plugin-types.d.ts",
        include_str!("../../plugin-sdk/js/wit-types/interfaces/stagecoach-plugin-types.d.ts"),
    ),
];

/// The toolchain cache: `<root>/python`, `<root>/js`, `<root>/sdk-<hash>`.
#[derive(Debug, Clone)]
pub struct Toolchains {
    root: PathBuf,
}

/// A command's failure, with what it printed and a hint.
fn failed(what: &str, out: &Output, hint: &str) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        text = format!("{stdout}{text}");
    }
    // The end of the output is where tools say what went wrong.
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    format!("{what} failed ({})\n{tail}\nhint: {hint}", out.status)
}

fn run(cmd: &mut Command, what: &str, hint: &str) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}\nhint: {hint}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(failed(what, &out, hint))
    }
}

fn absolute(p: &Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("`{}`: {e}", p.display()))
}

impl Toolchains {
    /// The cache at `root` (created on first use).
    pub fn new(root: &Path) -> Result<Toolchains, String> {
        Ok(Toolchains {
            root: absolute(root)?,
        })
    }

    /// The SDKs and WIT this binary carries, written out once per version.
    pub fn sdk(&self) -> Result<PathBuf, String> {
        let mut hasher = blake3::Hasher::new();
        for (path, text) in SDK_FILES {
            hasher.update(path.as_bytes());
            hasher.update(text.as_bytes());
        }
        let hash = hasher.finalize().to_hex();
        let dir = self.root.join(format!("sdk-{}", &hash[..12]));
        if dir.is_dir() {
            return Ok(dir);
        }
        let tmp = self
            .root
            .join(format!("sdk-{}.tmp{}", &hash[..12], std::process::id()));
        for (path, text) in SDK_FILES {
            let file = tmp.join(path);
            std::fs::create_dir_all(file.parent().expect("a file has a parent"))
                .and_then(|()| std::fs::write(&file, text))
                .map_err(|e| format!("cannot write `{}`: {e}", file.display()))?;
        }
        // Another build may have written it meanwhile: theirs is as good.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Ok(dir)
    }

    /// The Python virtual environment with [`PYTHON_PACKAGES`]; its `bin/`.
    pub fn python(&self) -> Result<PathBuf, String> {
        let dir = self.root.join("python");
        let marker = dir.join("installed");
        let want = PYTHON_PACKAGES.join(" ");
        if std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
            return Ok(dir.join("bin"));
        }
        eprintln!(
            "installing the Python plugin toolchain ({want}) into {}",
            dir.display()
        );
        let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
        run(
            Command::new(&python)
                .args(["-m", "venv", "--clear"])
                .arg(&dir),
            "creating a Python virtual environment",
            "Python plugins need python3 with venv (Debian: apt install python3-venv); \
             set PYTHON to use another interpreter",
        )?;
        run(
            Command::new(dir.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(PYTHON_PACKAGES),
            "installing the Python toolchain",
            "pip needs to reach PyPI (or a mirror set with PIP_INDEX_URL)",
        )?;
        std::fs::write(&marker, want).map_err(|e| format!("`{}`: {e}", marker.display()))?;
        Ok(dir.join("bin"))
    }

    /// The npm packages in [`NPM_PACKAGES`]; their `node_modules`.
    pub fn js(&self) -> Result<PathBuf, String> {
        let dir = self.root.join("js");
        let marker = dir.join("installed");
        let want = NPM_PACKAGES.join(" ");
        if std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
            return Ok(dir.join("node_modules"));
        }
        eprintln!(
            "installing the JavaScript plugin toolchain ({want}) into {}",
            dir.display()
        );
        std::fs::create_dir_all(&dir)
            .and_then(|()| {
                std::fs::write(
                    dir.join("package.json"),
                    "{ \"private\": true, \"description\": \"Stagecoach's plugin toolchain\" }\n",
                )
            })
            .map_err(|e| format!("cannot write `{}`: {e}", dir.display()))?;
        run(
            Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--save-exact",
                    "--loglevel=error",
                ])
                .args(NPM_PACKAGES)
                .current_dir(&dir),
            "installing the JavaScript toolchain",
            "TypeScript and JavaScript plugins need node (20 or later) and npm, \
             and npm needs to reach its registry",
        )?;
        std::fs::write(&marker, want).map_err(|e| format!("`{}`: {e}", marker.display()))?;
        Ok(dir.join("node_modules"))
    }

    /// A scratch directory for one build, removed when dropped.
    fn scratch(&self) -> Result<tempfile::TempDir, String> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| format!("cannot create `{}`: {e}", self.root.display()))?;
        tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&self.root)
            .map_err(|e| format!("cannot create a build directory: {e}"))
    }
}

/// What a build of the plugin in `dir` depends on: its files (not
/// `node_modules`, `target`, caches, dot-directories, built components or
/// `skip`: the output and toolchain directories), the SDK and the
/// toolchain's versions. componentize-py's output differs from run to run (its snapshot
/// holds build-time randomness), and each new output means compiling it
/// again in the daemon (~30 s for CPython): an unchanged plugin is not
/// rebuilt.
fn fingerprint(
    dir: &Path,
    sdk: &Path,
    toolchain: &[&str],
    skip: &[&Path],
) -> Result<String, String> {
    fn walk(dir: &Path, skip: &[&Path], files: &mut Vec<PathBuf>) -> Result<(), String> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot list `{}`: {e}", dir.display()))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let kind = e.file_type().map_err(|e| e.to_string())?;
            if name.starts_with('.')
                || ["node_modules", "__pycache__", "target"].contains(&name.as_str())
                || name.ends_with(".wasm")
                || skip.contains(&path.as_path())
            {
                continue;
            }
            if kind.is_dir() {
                walk(&path, skip, files)?;
            } else if kind.is_file() {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, skip, &mut files)?;
    files.sort();
    let mut h = blake3::Hasher::new();
    h.update(sdk.to_string_lossy().as_bytes());
    for t in toolchain {
        h.update(t.as_bytes());
    }
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        h.update(rel.to_string_lossy().as_bytes());
        h.update(&[0]);
        let bytes = std::fs::read(&f).map_err(|e| format!("cannot read `{}`: {e}", f.display()))?;
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().to_hex()[..24].to_string())
}

impl Toolchains {
    /// The component built before from the same inputs, written to `out`.
    fn reuse(&self, inputs: &str, name: &str, out: &Path) -> Result<Option<PathBuf>, String> {
        let cached = self
            .root
            .join("built")
            .join(format!("{name}-{inputs}.wasm"));
        let Ok(bytes) = std::fs::read(&cached) else {
            return Ok(None);
        };
        let dest = out.join(format!("{name}.wasm"));
        if std::fs::read(&dest).is_ok_and(|b| b == bytes) {
            return Ok(Some(dest));
        }
        std::fs::create_dir_all(out)
            .map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
        let tmp = dest.with_extension("wasm.tmp");
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, &dest))
            .map_err(|e| format!("cannot write `{}`: {e}", dest.display()))?;
        Ok(Some(dest))
    }

    /// Keeps a build for [`Toolchains::reuse`] (best effort).
    fn remember(&self, inputs: &str, built: &Path) {
        let dir = self.root.join("built");
        let name = built.file_stem().unwrap_or_default().to_string_lossy();
        let _ = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::copy(built, dir.join(format!("{name}-{inputs}.wasm"))));
    }
}

/// `[project] name` and the module to build (`[tool.stagecoach] module`,
/// or the name with `-` as `_`).
fn python_manifest(dir: &Path) -> Result<(String, String), String> {
    let path = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let name = doc
        .get("project")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("`{}` has no `[project] name`", path.display()))?
        .to_string();
    let module = doc
        .get("tool")
        .and_then(|t| t.get("stagecoach"))
        .and_then(|s| s.get("module"))
        .and_then(|m| m.as_str())
        .map_or_else(|| name.replace('-', "_"), str::to_string);
    if !dir.join(format!("{module}.py")).is_file()
        && !dir.join(&module).join("__init__.py").is_file()
    {
        return Err(format!(
            "`{}` has neither `{module}.py` nor `{module}/__init__.py`\n\
             hint: name the plugin's module in pyproject.toml: [tool.stagecoach] module = \"…\"",
            dir.display()
        ));
    }
    Ok((name, module))
}

/// `name` and the entry module (`main`, or `src/index.ts`, `index.ts`,
/// `src/index.js`, `index.js`).
fn js_manifest(dir: &Path) -> Result<(String, PathBuf), String> {
    let path = dir.join("package.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let name = doc
        .get("name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("`{}` has no `name`", path.display()))?;
    // A scoped package (`@team/plugin`) is built as `plugin.wasm`.
    let name = name.rsplit('/').next().unwrap_or(name).to_string();
    let candidates: Vec<String> = match doc.get("main").and_then(|m| m.as_str()) {
        Some(main) => vec![main.to_string()],
        None => ["src/index.ts", "index.ts", "src/index.js", "index.js"]
            .map(String::from)
            .to_vec(),
    };
    let main = candidates
        .iter()
        .map(|c| dir.join(c))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "`{}` has no entry module (looked for {})\n\
                 hint: set `main` in package.json to the file whose default export is the plugin",
                dir.display(),
                candidates.join(", ")
            )
        })?;
    Ok((name, main))
}

/// Makes `import … from "stagecoach-plugin"` resolve in `dir` for node and
/// editors: `node_modules/stagecoach-plugin` links to the SDK (a real
/// installed package there is left alone).
pub fn link_js_sdk(dir: &Path, sdk: &Path) -> Result<(), String> {
    let modules = dir.join("node_modules");
    let link = modules.join("stagecoach-plugin");
    let target = sdk.join("js");
    match std::fs::symlink_metadata(&link) {
        Ok(m) if !m.file_type().is_symlink() => return Ok(()),
        Ok(_) => {
            if std::fs::read_link(&link).is_ok_and(|t| t == target) {
                return Ok(());
            }
            std::fs::remove_file(&link).map_err(|e| format!("`{}`: {e}", link.display()))?;
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(&modules).map_err(|e| format!("`{}`: {e}", modules.display()))?;
    std::os::unix::fs::symlink(&target, &link).map_err(|e| format!("`{}`: {e}", link.display()))
}

/// The interfaces a component may import: ours (at a version the daemon
/// runs), nothing else.
const ALLOWED_IMPORTS: &[&str] = &[
    "stagecoach:plugin/host@0.4.0",
    "stagecoach:plugin/types@0.4.0",
    "stagecoach:plugin/host@0.3.0",
    "stagecoach:plugin/types@0.3.0",
];

/// What a component imports beyond the Stagecoach interface.
pub fn foreign_imports(component: &[u8]) -> Result<Vec<String>, String> {
    let decoded =
        wit_component::decode(component).map_err(|e| format!("not a readable component: {e:#}"))?;
    let world = match &decoded {
        wit_component::DecodedWasm::Component(_, world) => *world,
        wit_component::DecodedWasm::WitPackage(..) => {
            return Err("this is a WIT package, not a component".into());
        }
    };
    let resolve = decoded.resolve();
    let mut foreign = Vec::new();
    for key in resolve.worlds[world].imports.keys() {
        let name = resolve.name_world_key(key);
        if !ALLOWED_IMPORTS.contains(&name.as_str()) {
            foreign.push(name);
        }
    }
    Ok(foreign)
}

/// Checks a freshly built component, marks its runtime and writes it to
/// `<out>/<name>.wasm` (by rename, so a watching daemon never reads half).
pub fn finish(
    mut component: Vec<u8>,
    runtime: &str,
    name: &str,
    out: &Path,
    hint: &str,
) -> Result<PathBuf, String> {
    let foreign = foreign_imports(&component).map_err(|e| format!("`{name}`: {e}"))?;
    if !foreign.is_empty() {
        return Err(format!(
            "`{name}` imports {}, which the daemon does not provide (plugins get only \
             stagecoach:plugin/host)\nhint: {hint}",
            foreign.join(", ")
        ));
    }
    use wasm_encoder::Encode as _;
    component.push(0); // a custom section
    wasm_encoder::CustomSection {
        name: RUNTIME_SECTION.into(),
        data: runtime.as_bytes().into(),
    }
    .encode(&mut component);
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    let dest = out.join(format!("{name}.wasm"));
    let tmp = dest.with_extension("wasm.tmp");
    std::fs::write(&tmp, &component)
        .and_then(|()| std::fs::rename(&tmp, &dest))
        .map_err(|e| format!("cannot write `{}`: {e}", dest.display()))?;
    Ok(dest)
}

/// Builds the Python plugin in `dir` into `<out>/<project name>.wasm`.
pub fn build_python(dir: &Path, out: &Path, tc: &Toolchains) -> Result<PathBuf, String> {
    let dir = absolute(dir)?;
    let (name, module) = python_manifest(&dir)?;
    let sdk = tc.sdk()?;
    let out_dir = absolute(out)?;
    let inputs = fingerprint(&dir, &sdk, PYTHON_PACKAGES, &[&out_dir, &tc.root])?;
    if let Some(dest) = tc.reuse(&inputs, &name, out)? {
        return Ok(dest);
    }
    let bin = tc.python()?;
    let scratch = tc.scratch()?;
    let entry = scratch.path().join("entry");
    std::fs::create_dir_all(&entry)
        .and_then(|()| {
            std::fs::write(
                entry.join("stagecoach_entry.py"),
                format!(
                    "import {module} as _plugin\n\
                     from stagecoach_plugin._component import export\n\n\
                     Plugin = export(_plugin)\n"
                ),
            )
        })
        .map_err(|e| format!("cannot write the entry module: {e}"))?;
    let wasm = scratch.path().join("out.wasm");
    run(
        Command::new(bin.join("componentize-py"))
            .arg("-d")
            .arg(sdk.join("wit"))
            .args([
                "-w",
                "stagecoach-plugin",
                "componentize",
                "stagecoach_entry",
            ])
            .arg("-p")
            .arg(&entry)
            .arg("-p")
            .arg(&dir)
            .arg("-p")
            .arg(sdk.join("python"))
            // Every WASI import becomes a trapping stub: the daemon offers
            // none, and the SDK sends print() to the host's log instead.
            .arg("--stub-wasi")
            .arg("-o")
            .arg(&wasm)
            // componentize-py would add an active virtualenv's packages.
            .env_remove("VIRTUAL_ENV")
            // Leave no __pycache__ in the plugin's source directory.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(&dir),
        &format!("building `{name}` with componentize-py"),
        "the plugin module is imported at build time: the Python error above is in it or in \
         what it imports (only the standard library and pure-Python code in the plugin's \
         directory are bundled)",
    )?;
    let bytes = std::fs::read(&wasm).map_err(|e| format!("`{}`: {e}", wasm.display()))?;
    let dest = finish(
        bytes,
        "python",
        &name,
        out,
        "a Python plugin reaches the outside world only through the SDK; \
         remove the import that needs it",
    )?;
    tc.remember(&inputs, &dest);
    Ok(dest)
}

/// Builds the TypeScript/JavaScript plugin in `dir` into
/// `<out>/<package name>.wasm`, on QuickJS.
pub fn build_js(dir: &Path, out: &Path, tc: &Toolchains) -> Result<PathBuf, String> {
    let dir = absolute(dir)?;
    let (name, main) = js_manifest(&dir)?;
    let sdk = tc.sdk()?;
    let out_dir = absolute(out)?;
    let inputs = fingerprint(&dir, &sdk, NPM_PACKAGES, &[&out_dir, &tc.root])?;
    if let Some(dest) = tc.reuse(&inputs, &name, out)? {
        return Ok(dest);
    }
    let modules = tc.js()?;
    let scratch = tc.scratch()?;
    let entry = scratch.path().join("entry.ts");
    let quote = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("a string");
    std::fs::write(
        &entry,
        format!(
            "import userPlugin from {};\n\
             import {{ exportPlugin }} from {};\n\
             export const plugin = exportPlugin(userPlugin);\n",
            quote(&main),
            quote(&sdk.join("js/src/component.ts")),
        ),
    )
    .map_err(|e| format!("cannot write the entry module: {e}"))?;
    let bundle = scratch.path().join("bundle.js");
    run(
        Command::new(modules.join(".bin/esbuild"))
            .arg(&entry)
            .args([
                "--bundle",
                "--format=esm",
                "--platform=neutral",
                "--target=es2022",
                "--log-level=warning",
                "--external:stagecoach:plugin/*",
            ])
            .arg(format!(
                "--alias:stagecoach-plugin={}",
                sdk.join("js/src/index.ts").display()
            ))
            .arg(format!("--outfile={}", bundle.display()))
            .current_dir(&dir),
        &format!("bundling `{name}` with esbuild"),
        "a plugin may import only the SDK (`stagecoach-plugin`) and its own modules; \
         node's built-in modules are not there inside the daemon",
    )?;
    let wasm = scratch.path().join("out.wasm");
    run(
        Command::new(modules.join(".bin/componentize-qjs"))
            .arg("--wit")
            .arg(sdk.join("wit"))
            .args(["--world", "stagecoach-plugin", "--js"])
            .arg(&bundle)
            // The daemon offers no WASI and no component-model async.
            .args(["--stub-wasi", "--sync", "-o"])
            .arg(&wasm)
            .current_dir(scratch.path()),
        &format!("building `{name}` with componentize-qjs"),
        "the plugin's module runs once at build time: the JavaScript error above is in it",
    )?;
    let bytes = std::fs::read(&wasm).map_err(|e| format!("`{}`: {e}", wasm.display()))?;
    let dest = finish(
        bytes,
        "quickjs",
        &name,
        out,
        "a JavaScript plugin reaches the outside world only through the SDK",
    )?;
    tc.remember(&inputs, &dest);
    Ok(dest)
}

/// Runs the native tests of the plugin in `dir`: `cargo test`, pytest, or
/// node's test runner on `*.test.ts`/`*.test.js` (TypeScript through tsx).
pub fn test(dir: &Path, tc: &Toolchains) -> Result<(), String> {
    let dir = absolute(dir)?;
    let status = match Language::of(&dir)? {
        Language::Rust => Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .arg("test")
            .arg("--manifest-path")
            .arg(dir.join("Cargo.toml"))
            .status(),
        Language::Python => {
            let sdk = tc.sdk()?;
            let bin = tc.python()?;
            let path = std::env::join_paths([dir.clone(), sdk.join("python")])
                .map_err(|e| e.to_string())?;
            Command::new(bin.join("python"))
                .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
                .env("PYTHONPATH", path)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .current_dir(&dir)
                .status()
        }
        Language::Js => {
            let sdk = tc.sdk()?;
            let modules = tc.js()?;
            link_js_sdk(&dir, &sdk)?;
            let mut files = Vec::new();
            collect_js_tests(&dir, &mut files);
            files.sort();
            if files.is_empty() {
                return Err(format!(
                    "`{}` has no tests (files named *.test.ts or *.test.js)",
                    dir.display()
                ));
            }
            Command::new("node")
                .arg("--import")
                .arg(modules.join("tsx/dist/esm/index.mjs"))
                .arg("--test")
                .args(&files)
                .current_dir(&dir)
                .status()
        }
    }
    .map_err(|e| format!("cannot run the tests: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the tests of `{}` failed ({status})",
            dir.display()
        ))
    }
}

fn collect_js_tests(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "node_modules" && !name.starts_with('.') {
                collect_js_tests(&path, out);
            }
        } else if [".test.ts", ".test.js", ".test.mts", ".test.mjs"]
            .iter()
            .any(|s| name.ends_with(s))
        {
            out.push(path);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Asserts that every file ending in `ext` in `dir` is in `table`
    /// under `prefix/NAME`, with the same text.
    pub(crate) fn assert_carried(table: &[(&str, &str)], dir: &Path, prefix: &str, ext: &str) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == ext) {
                let name = format!("{prefix}/{}", path.file_name().unwrap().to_string_lossy());
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    table.iter().any(|(p, t)| *p == name && *t == text),
                    "`{name}` is not carried (or differs)"
                );
            }
        }
    }

    /// Every source file of the SDKs travels in the binary: one left out
    /// would build plugins whose imports fail inside the daemon.
    #[test]
    fn the_binary_carries_every_sdk_source_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
        for (dir, prefix, ext) in [
            (
                "python/src/stagecoach_plugin",
                "python/stagecoach_plugin",
                "py",
            ),
            ("js/src", "js/src", "ts"),
            ("wit", "wit", "wit"),
        ] {
            assert_carried(SDK_FILES, &root.join(dir), prefix, ext);
        }
    }

    #[test]
    fn a_directory_says_its_language() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        assert_eq!(Language::of(&root.join("plugins/bant")), Ok(Language::Rust));
        assert_eq!(
            Language::of(&root.join("plugins/bant-py")),
            Ok(Language::Python)
        );
        assert_eq!(
            Language::of(&root.join("plugins/bant-ts")),
            Ok(Language::Js)
        );
        let err = Language::of(&root.join("docs")).unwrap_err();
        assert!(
            err.contains("no Cargo.toml, pyproject.toml or package.json"),
            "{err}"
        );
    }
}
