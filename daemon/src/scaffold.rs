//! `stagecoach plugins new`: a plugin project anywhere on disk, in Rust,
//! Python or TypeScript, that builds with `stagecoach plugins build` and
//! tests natively without a checkout of this repository. The Python and
//! TypeScript SDKs come from this binary at build and test time; the Rust
//! SDK is vendored into the project (it is a crate cargo must see).

use std::path::Path;

/// The Rust SDK's sources, vendored into a new Rust plugin project.
const RUST_SDK: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../plugin-sdk/src/lib.rs")),
    (
        "src/arena.rs",
        include_str!("../../plugin-sdk/src/arena.rs"),
    ),
    (
        "src/types.rs",
        include_str!("../../plugin-sdk/src/types.rs"),
    ),
    (
        "wit-0.3.0/host.wit",
        include_str!("../../plugin-sdk/wit-0.3.0/host.wit"),
    ),
    (
        "wit-0.3.0/plugin.wit",
        include_str!("../../plugin-sdk/wit-0.3.0/plugin.wit"),
    ),
    (
        "wit-0.3.0/types.wit",
        include_str!("../../plugin-sdk/wit-0.3.0/types.wit"),
    ),
];

/// The vendored SDK's manifest: the workspace's, standing alone.
const RUST_SDK_MANIFEST: &str = r#"[package]
name = "stagecoach-plugin-sdk"
version = "0.3.0"
edition = "2024"
description = "Write Stagecoach plugins in Rust (vendored by `stagecoach plugins new`)"
license = "MIT OR Apache-2.0"

[features]
default = ["arena"]
arena = []

[dependencies]
wit-bindgen = { version = "=0.63.0", default-features = false, features = ["macros", "realloc", "std"] }
"#;

/// A plugin project's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate (the SDK vendored into it).
    Rust,
    /// A Python package.
    Python,
    /// A TypeScript package.
    Ts,
}

fn write(root: &Path, files: &[(String, String)]) -> Result<(), String> {
    for (path, text) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().expect("a file has a parent"))
            .and_then(|()| std::fs::write(&file, text))
            .map_err(|e| format!("cannot write `{}`: {e}", file.display()))?;
    }
    Ok(())
}

/// Creates the project for plugin `name` at `dir`; returns what to run next.
pub fn new(name: &str, lang: Lang, dir: &Path) -> Result<Vec<String>, String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.starts_with('-')
    {
        return Err(format!(
            "`{name}` is not a plugin name: use lowercase letters, digits and `-` (`big-enough`)"
        ));
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(format!(
            "`{}` already exists and is not empty: nothing was written",
            dir.display()
        ));
    }
    let module = name.replace('-', "_");
    let shown = dir.display().to_string();
    let files: Vec<(String, String)> = match lang {
        Lang::Rust => {
            let mut files = vec![
                ("Cargo.toml".into(), rust_manifest(name)),
                ("src/lib.rs".into(), rust_lib(name)),
                (".gitignore".into(), "/target\n*.wasm\n".into()),
            ];
            files.push((
                "stagecoach-plugin-sdk/Cargo.toml".into(),
                RUST_SDK_MANIFEST.into(),
            ));
            for (path, text) in RUST_SDK {
                files.push((format!("stagecoach-plugin-sdk/{path}"), (*text).into()));
            }
            files
        }
        Lang::Python => vec![
            ("pyproject.toml".into(), python_manifest(name, &module)),
            (format!("{module}.py"), python_module(name)),
            (format!("tests/test_{module}.py"), python_test(&module)),
            (
                ".gitignore".into(),
                "/target\n*.wasm\n__pycache__/\n".into(),
            ),
        ],
        Lang::Ts => vec![
            ("package.json".into(), ts_manifest(name)),
            ("src/index.ts".into(), ts_module(name)),
            (format!("test/{name}.test.ts"), ts_test()),
            (
                ".gitignore".into(),
                "/target\n/node_modules\n*.wasm\n".into(),
            ),
        ],
    };
    write(dir, &files)?;
    Ok(vec![
        format!("stagecoach plugins test {shown}"),
        format!("stagecoach plugins build {shown}   # → plugins/{name}.wasm"),
    ])
}

fn rust_manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
stagecoach-plugin-sdk = {{ path = "stagecoach-plugin-sdk" }}

# A project of its own, not a member of any workspace around it.
[workspace]
"#
    )
}

fn rust_lib(name: &str) -> String {
    format!(
        r#"//! `{name}`: an exit criterion. Build it with `stagecoach plugins build .`,
//! test it with `cargo test`.

use stagecoach_plugin_sdk::{{Capability, Input, Num, Plugin, Verdict, register_plugin}};

/// The plugin.
pub struct ThePlugin;

impl Plugin for ThePlugin {{
    const NAME: &'static str = "{name}";
    const DESCRIPTION: &'static str = "At least `min_employees` employees.";
    const PROVIDES: &'static [Capability] = &[Capability::Criterion];
    // Only fields are read: the daemon can leave the activity log out.
    const READS_ACTIVITIES: bool = false;

    fn evaluate(input: &Input) -> Result<Verdict, String> {{
        let min = input.config.number("min_employees").unwrap_or(50.0);
        Ok(match input.prospect.number("employees") {{
            Some(n) if n >= min => Verdict::met(format!("{{}} employees", Num(n))),
            Some(n) => Verdict::unmet(format!("only {{}} employees, needs {{}}", Num(n), Num(min))),
            None => Verdict::unmet("`employees` is not set"),
        }})
    }}
}}

register_plugin!(ThePlugin);

#[cfg(test)]
mod tests {{
    use super::*;
    use stagecoach_plugin_sdk::{{Config, Prospect}};

    #[test]
    fn counts_employees() {{
        let p = Prospect::new("connect").with_field("employees", 120);
        let v = ThePlugin::evaluate(&Input::new(p, 0, Config::default().with("min_employees", 100)))
            .unwrap();
        assert!(v.met);
        assert_eq!(v.reason, "120 employees");
    }}
}}
"#
    )
}

fn python_manifest(name: &str, module: &str) -> String {
    format!(
        r#"[project]
name = "{name}"
version = "0.1.0"
dependencies = ["stagecoach-plugin"]

# `stagecoach plugins build .` bundles this module, the SDK and CPython.
[tool.stagecoach]
module = "{module}"
"#
    )
}

fn python_module(name: &str) -> String {
    format!(
        r#""""`{name}`: an exit criterion. Build it with `stagecoach plugins build .`,
test it with `stagecoach plugins test .`."""

from stagecoach_plugin import Input, Plugin, Verdict, num


class ThePlugin(Plugin):
    name = "{name}"
    description = "At least `min_employees` employees."
    reads_activities = False  # only fields are read: the daemon leaves the log out

    def evaluate(self, input: Input) -> Verdict:
        minimum = input.config.number("min_employees")
        if minimum is None:
            minimum = 50
        n = input.prospect.number("employees")
        if n is None:
            return Verdict(False, "`employees` is not set")
        if n >= minimum:
            return Verdict(True, f"{{num(n)}} employees")
        return Verdict(False, f"only {{num(n)}} employees, needs {{num(minimum)}}")
"#
    )
}

fn python_test(module: &str) -> String {
    format!(
        r#"from {module} import ThePlugin
from stagecoach_plugin import Config, Input, Prospect


def test_counts_employees():
    p = Prospect("connect", fields={{"employees": 120}})
    v = ThePlugin().evaluate(Input(p, 0, Config({{"min_employees": 100}})))
    assert v.met
    assert v.reason == "120 employees"
"#
    )
}

fn ts_manifest(name: &str) -> String {
    format!(
        r#"{{
  "name": "{name}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "main": "src/index.ts"
}}
"#
    )
}

fn ts_module(name: &str) -> String {
    format!(
        r#"/**
 * `{name}`: an exit criterion. Build it with `stagecoach plugins build .`,
 * test it with `stagecoach plugins test .`.
 */

import {{ definePlugin, num }} from "stagecoach-plugin";

export default definePlugin({{
  name: "{name}",
  description: "At least `min_employees` employees.",
  readsActivities: false,

  evaluate({{ prospect, config }}) {{
    const min = config.number("min_employees") ?? 50;
    const n = prospect.number("employees");
    if (n === undefined) return {{ met: false, reason: "`employees` is not set" }};
    return n >= min
      ? {{ met: true, reason: `${{num(n)}} employees` }}
      : {{ met: false, reason: `only ${{num(n)}} employees, needs ${{num(min)}}` }};
  }},
}});
"#
    )
}

fn ts_test() -> String {
    r#"import assert from "node:assert/strict";
import { test } from "node:test";

import { Config, Input, Prospect } from "stagecoach-plugin";

import plugin from "../src/index.ts";

test("counts employees", () => {
  const p = new Prospect("connect", { fields: { employees: 120 } });
  const v = plugin.evaluate(new Input(p, 0, new Config({ min_employees: 100 })));
  assert.deepEqual(v, { met: true, reason: "120 employees" });
});
"#
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored Rust SDK is the repository's, file for file.
    #[test]
    fn the_vendored_rust_sdk_is_the_sdk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
        for (dir, prefix, ext) in [("src", "src", "rs"), ("wit-0.3.0", "wit-0.3.0", "wit")] {
            crate::toolchain::tests::assert_carried(RUST_SDK, &root.join(dir), prefix, ext);
        }
    }

    #[test]
    fn names_and_directories_are_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let err = new("Big Enough", Lang::Python, &dir.path().join("x")).unwrap_err();
        assert!(err.contains("not a plugin name"), "{err}");
        std::fs::write(dir.path().join("taken"), "").unwrap();
        let err = new("big-enough", Lang::Ts, dir.path()).unwrap_err();
        assert!(err.contains("not empty"), "{err}");
        assert!(!dir.path().join("package.json").exists());
    }
}
