//! `wasm-ipc new`: a new plugin from `plugins/templates/<lang>/` (`--kind stream`, the
//! default) or `plugins/templates/request-reply/<lang>/` (`--kind request-reply`), with a
//! scenario that builds and runs it at once: the plugin twice, `NAME-producer` with port `out`
//! → `NAME-consumer` with port `in`; or two clients `NAME-client#0`, `#1` (port `db`) calling
//! one `NAME-server` (port `queries`).
//!
//! Templates are files whose contents and names may hold `{{name}}` (the plugin's name) and
//! `{{root}}` (the repository root, where the SDKs live).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::Outcome;

/// Languages with a stream template.
pub const LANGUAGES: &[&str] = &[
    "rust",
    "c",
    "assemblyscript",
    "zig",
    "wat",
    "python",
    "javascript",
];

/// Languages with a request/reply template (`--kind request-reply`).
pub const REQUEST_REPLY_LANGUAGES: &[&str] = &["rust", "c"];

/// The kinds of plugin `new` makes.
pub const KINDS: &[&str] = &["stream", "request-reply"];

fn substitute(text: &str, name: &str, root: &str) -> String {
    text.replace("{{name}}", name).replace("{{root}}", root)
}

fn copy_tree(from: &Path, to: &Path, name: &str, root: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .with_context(|| format!("reading {}", from.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if matches!(
            file_name.as_str(),
            "target" | "node_modules" | "zig-cache" | ".zig-cache" | "__pycache__"
        ) {
            continue;
        }
        let dest = to.join(substitute(&file_name, name, root));
        let ty = entry.file_type()?;
        if ty.is_dir() {
            copy_tree(&entry.path(), &dest, name, root)?;
        } else {
            let bytes = std::fs::read(entry.path())?;
            let out = match String::from_utf8(bytes) {
                Ok(text) => substitute(&text, name, root).into_bytes(),
                Err(e) => e.into_bytes(),
            };
            std::fs::write(&dest, out).with_context(|| format!("writing {}", dest.display()))?;
            let mode = std::fs::metadata(entry.path())?.permissions();
            std::fs::set_permissions(&dest, mode)?;
        }
    }
    Ok(())
}

/// Creates `parent/name/` from the `lang` template of `kind`; returns the generated
/// scenario's path.
pub fn generate(lang: &str, kind: &str, name: &str, parent: &Path) -> anyhow::Result<PathBuf> {
    if !LANGUAGES.contains(&lang) {
        bail!(
            "unknown language `{lang}`: expected one of {}",
            LANGUAGES.join(", ")
        );
    }
    let request_reply = match kind {
        "stream" => false,
        "request-reply" => true,
        _ => bail!(
            "unknown kind `{kind}`: expected one of {}",
            KINDS.join(", ")
        ),
    };
    if request_reply && !REQUEST_REPLY_LANGUAGES.contains(&lang) {
        bail!(
            "no request-reply template for {lang} yet (there is one for {}); the {lang} SDK has \
             the calls: see plugins/examples/ for a client or a server in {lang}",
            REQUEST_REPLY_LANGUAGES.join(", ")
        );
    }
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "plugin name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter"
        );
    }
    let root = wasm_ipc_lab::repo_root();
    let template = if request_reply {
        root.join("plugins/templates/request-reply").join(lang)
    } else {
        root.join("plugins/templates").join(lang)
    };
    if !template.is_dir() {
        bail!(
            "no template for {lang} at {} (set WASM_IPC_ROOT to the wasm-ipc repository)",
            template.display()
        );
    }
    let dest = parent.join(name);
    if dest.exists() {
        bail!("{} already exists", dest.display());
    }
    let root_text = root.to_string_lossy().into_owned();
    let result = copy_tree(&template, &dest, name, &root_text).and_then(|()| {
        let scenario = dest.join("scenario.toml");
        let text = if request_reply {
            request_reply_scenario(lang, name)
        } else {
            stream_scenario(lang, name)
        };
        std::fs::write(&scenario, text)?;
        Ok(scenario)
    });
    if result.is_err() {
        // Leave nothing half-made behind.
        let _ = std::fs::remove_dir_all(&dest);
    }
    result
}

fn stream_scenario(lang: &str, name: &str) -> String {
    // A component's template runs on every backend (capacity 8: `mq` holds at most
    // fs.mqueue.msg_max = 10 messages per queue by default); the others on shm and msg.
    let (capacity, backends) = if matches!(lang, "python" | "javascript") {
        (8, r#"["shm", "msg", "pipe", "mq", "tcp", "udp", "zenoh"]"#)
    } else {
        (16, r#"["shm", "msg"]"#)
    };
    format!(
        r#"# {name}: generated by `wasm-ipc new --lang {lang} {name}`.
# Run: wasm-ipc compare scenario.toml   (builds {name}.wasm first with build.sh)
name = "{name}"
description = "The {name} plugin publishing to itself: one instance produces, one consumes."

[[plugin]]
name = "{name}-producer"
wasm = "{name}.wasm"
build = "sh build.sh"
source = "."
config = {{ count = 1000, size = 256 }}

[[plugin]]
name = "{name}-consumer"
wasm = "{name}.wasm"
build = "sh build.sh"
source = "."

[[channel]]
from = "{name}-producer.out"
to = ["{name}-consumer.in"]
slot_size = "4KiB"
capacity = {capacity}

[run]
backends = {backends}
timeout = "60s"
"#
    )
}

fn request_reply_scenario(lang: &str, name: &str) -> String {
    format!(
        r#"# {name}: generated by `wasm-ipc new --lang {lang} --kind request-reply {name}`.
# Run: wasm-ipc compare scenario.toml   (builds {name}.wasm first with build.sh)
name = "{name}"
description = "The {name} plugin calling itself: two client instances call one server instance, which answers each call (request/reply, ABI 0.2.0)."

[[plugin]]
name = "{name}-client"
instances = 2
wasm = "{name}.wasm"
build = "sh build.sh"
source = "."
config = {{ calls = 500, size = 256 }}

[[plugin]]
name = "{name}-server"
wasm = "{name}.wasm"
build = "sh build.sh"
source = "."
config = {{ size = 256 }}

# Each client's port `db` calls the server's port `queries`.
[[channel]]
pattern = "request-reply"
from = "{name}-client[*].db"
to = "{name}-server.queries"
slot_size = "4KiB"

[run]
backends = ["shm", "msg"]
timeout = "60s"
"#
    )
}

/// `new --lang LANG [--kind KIND] NAME [--dir DIR]`.
pub fn run(lang: &str, kind: &str, name: &str, dir: &Path) -> Outcome {
    let scenario = generate(lang, kind, name, dir)?;
    out!(
        "created {}\nrun it: wasm-ipc compare {}",
        scenario.parent().unwrap_or(dir).display(),
        scenario.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}
