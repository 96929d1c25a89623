//! The docs cannot drift from the tool: the reference pages are what the code generates, every
//! relative link and anchor of the README, the contributor guides and the book resolves, and
//! the book builds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, wasm_ipc};

/// The pages `wasm-ipc reference` makes, each kept in `docs/src/reference/<name>.md`.
const PAGES: [&str; 3] = ["cli", "scenario-keys", "report-fields"];

/// Each generated page equals what the binary prints now; `UPDATE_DOCS=1` rewrites them. A
/// key, field, column or flag added without its doc line fails its own test first (the key
/// table's, `tests/fields.rs`, `cli::tests`); this one fails when the page is not regenerated.
#[test]
fn the_reference_pages_are_what_the_code_generates() {
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    for page in PAGES {
        let out = wasm_ipc(&["reference", page]);
        assert!(out.status.success(), "{page}: {}", util::stderr(&out));
        let now = String::from_utf8(out.stdout).unwrap();
        let path = util::root().join(format!("docs/src/reference/{page}.md"));
        if update {
            std::fs::write(&path, &now).unwrap();
            continue;
        }
        let kept =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            kept == now,
            "{} is stale: run `UPDATE_DOCS=1 cargo test --release --test all docs`",
            path.display()
        );
    }
    let out = wasm_ipc(&["reference", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(util::stderr(&out).contains("the pages are cli, scenario-keys, report-fields"));
}

/// The Markdown files whose links are checked: the top-level guides and the book's pages.
fn markdown_files() -> Vec<PathBuf> {
    let root = util::root();
    let mut files: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "CONTRIBUTING.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    let mut dirs = vec![root.join("docs/src")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// The anchors of a Markdown file's headings, as mdBook and GitHub make them: lowercase, spaces
/// to `-`, every character but letters, digits, `-` and `_` dropped; a repeated heading gets
/// `-1`, `-2`, ….
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose(text) {
        let Some(title) = line.trim_start_matches('#').strip_prefix(' ') else {
            continue;
        };
        if !line.starts_with('#') {
            continue;
        }
        let slug: String = title
            .trim()
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    Some(c.to_lowercase().next().unwrap_or(c))
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        let mut id = slug.clone();
        let mut n = 1;
        while seen.contains(&id) {
            id = format!("{slug}-{n}");
            n += 1;
        }
        seen.insert(id);
    }
    seen
}

/// The targets of the inline links `[text](target)` on `line`, inline code left out.
fn links(line: &str) -> Vec<String> {
    let mut plain = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 0 {
            plain.push_str(part);
        }
    }
    let mut found = Vec::new();
    let mut rest = plain.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        found.push(target.to_string());
        rest = &rest[end..];
    }
    found
}

/// `text` with mdBook's `{{#include PATH}}`, `{{#include PATH:ANCHOR}}` and
/// `{{#include PATH:FROM:}}` expanded (paths relative to `dir`), as the book renders it: an
/// anchor's lines are those between `ANCHOR: NAME` and `ANCHOR_END: NAME`, lines naming any
/// anchor left out. An include that names a missing file or anchor is an error.
fn expand(text: &str, dir: &Path) -> Result<String, String> {
    let mut out = String::new();
    for line in text.lines() {
        let Some(spec) = line
            .trim()
            .strip_prefix("{{#include ")
            .and_then(|s| s.strip_suffix("}}"))
        else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let mut parts = spec.trim().split(':');
        let path = dir.join(parts.next().unwrap_or(""));
        let whole = std::fs::read_to_string(&path)
            .map_err(|e| format!("{{{{#include {spec}}}}}: {}: {e}", path.display()))?;
        let lines: Vec<&str> = whole.lines().collect();
        let chosen: Vec<&str> = match (parts.next(), parts.next()) {
            (None, _) => lines,
            (Some(from), Some("")) => {
                let from: usize = from.parse().map_err(|_| format!("bad include {spec}"))?;
                lines[from.saturating_sub(1)..].to_vec()
            }
            (Some(anchor), None) => {
                let begin = format!("ANCHOR: {anchor} ");
                let end = format!("ANCHOR_END: {anchor} ");
                let at = lines
                    .iter()
                    .position(|l| l.contains(&begin))
                    .ok_or_else(|| format!("{{{{#include {spec}}}}}: no `{begin}`"))?;
                let stop = lines[at..]
                    .iter()
                    .position(|l| l.contains(&end))
                    .ok_or_else(|| format!("{{{{#include {spec}}}}}: no `{end}`"))?;
                lines[at + 1..at + stop]
                    .iter()
                    .filter(|l| !l.contains("ANCHOR:") && !l.contains("ANCHOR_END:"))
                    .copied()
                    .collect()
            }
            _ => return Err(format!("include form not checked here: {spec}")),
        };
        for l in chosen {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    let files = markdown_files();
    let book = util::root().join("docs/src").canonicalize().unwrap();
    assert!(files.len() > 10, "the book has pages: {files:?}");
    for file in &files {
        let raw =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let in_book = file.canonicalize().unwrap().starts_with(&book);
        // A book page is checked as rendered, its includes expanded: an included text's links
        // resolve from the page that includes it.
        let text = if in_book {
            match expand(&raw, file.parent().unwrap()) {
                Ok(t) => t,
                Err(e) => {
                    broken.push(format!("{}: {e}", file.display()));
                    continue;
                }
            }
        } else {
            raw
        };
        for line in prose(&text) {
            for target in links(line) {
                if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let dest = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                let shown = format!("{}: ({target})", file.display());
                if !dest.exists() {
                    broken.push(format!("{shown}: no such file"));
                    continue;
                }
                // The rendered book holds only docs/src: a link out of it works on GitHub and
                // nowhere else. Name the file in code or include it instead.
                if in_book && !dest.canonicalize().unwrap().starts_with(&book) {
                    broken.push(format!("{shown}: leaves the book"));
                    continue;
                }
                if let Some(anchor) = anchor
                    && dest.extension().is_some_and(|x| x == "md")
                {
                    let there = std::fs::read_to_string(&dest).unwrap();
                    let there = if dest.canonicalize().unwrap().starts_with(&book) {
                        expand(&there, dest.parent().unwrap()).unwrap_or_default()
                    } else {
                        there
                    };
                    if !anchors(&there).contains(anchor) {
                        broken.push(format!("{shown}: no heading `#{anchor}` there"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The anchor rule agrees with mdBook's on the headings this book has.
#[test]
fn anchors_are_made_as_mdbook_makes_them() {
    let a = anchors("# The `zenoh` backend\n## Write a plugin in C, AssemblyScript\n# A\n# A\n");
    let want = [
        "the-zenoh-backend",
        "write-a-plugin-in-c-assemblyscript",
        "a",
        "a-1",
    ];
    assert_eq!(a, want.iter().map(|s| s.to_string()).collect());
    assert_eq!(links("see [x](a.md#b) and `[y](no.md)`"), vec!["a.md#b"]);
}

/// Includes expand as mdBook expands them, and a missing anchor is an error.
#[test]
fn includes_expand_as_the_book_renders_them() {
    let dir = tempfile::tempdir().unwrap();
    let body = "a\n<!-- ANCHOR: one -->\nb\n<!-- ANCHOR: two -->\nc\n<!-- ANCHOR_END: two -->\n\
                <!-- ANCHOR_END: one -->\nd\n";
    std::fs::write(dir.path().join("f.md"), body).unwrap();
    let got = |spec: &str| expand(&format!("x\n{{{{#include {spec}}}}}\ny"), dir.path());
    assert_eq!(got("f.md:one").unwrap(), "x\nb\nc\ny\n");
    assert_eq!(got("f.md:two").unwrap(), "x\nc\ny\n");
    assert_eq!(got("f.md:8:").unwrap(), "x\nd\ny\n");
    assert!(
        got("f.md:three")
            .unwrap_err()
            .contains("no `ANCHOR: three `")
    );
    assert!(got("g.md").is_err());
}

/// `mdbook build` (installed by `scripts/setup.sh`) builds the book without an error or a
/// warning, into a folder of its own.
#[test]
fn the_book_builds() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new("mdbook")
        .arg("build")
        .arg(util::root().join("docs"))
        .arg("--dest-dir")
        .arg(out_dir.path())
        .output()
        .expect("mdbook is installed by scripts/setup.sh");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("WARN") && !log.contains("ERROR"), "{log}");
    assert!(Path::new(&out_dir.path().join("index.html")).exists());
}

/// The `wasm-ipc …` commands a page shows: every inline code span that starts with one, every
/// line of a `sh` block, and every `$ ` line of another block (the lines under it are output).
/// Continuation lines (`\`) are joined; each command is cut at a pipe, `&&`, `;`, a redirection
/// or a comment. Each comes with whether it was shown in a block (a whole command) or inline
/// (often a fragment, such as `wasm-ipc bench --across`).
fn shown_commands(text: &str) -> Vec<(String, bool)> {
    let mut candidates = Vec::new();
    let mut fence: Option<String> = None;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(lang.trim().to_string()),
            };
            continue;
        }
        match &fence {
            Some(lang) => {
                // Outside `sh` blocks a line is a command after `$ `, or when it starts with
                // `wasm-ipc SUBCOMMAND` (a synopsis); `wasm-ipc agent: …` is output.
                let synopsis = trimmed
                    .strip_prefix("wasm-ipc ")
                    .and_then(|r| r.split_whitespace().next())
                    .is_some_and(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
                let line = if lang == "sh" || !pending.is_empty() || synopsis {
                    Some(trimmed.strip_prefix("$ ").unwrap_or(trimmed))
                } else {
                    trimmed.strip_prefix("$ ")
                };
                let Some(line) = line else { continue };
                pending.push_str(line.trim_end_matches('\\'));
                pending.push(' ');
                if !line.ends_with('\\') {
                    candidates.push((std::mem::take(&mut pending), true));
                }
            }
            None => {
                for (i, span) in line.split('`').enumerate() {
                    if i % 2 == 1 {
                        candidates.push((span.to_string(), false));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    for (c, block) in candidates {
        for part in c
            .split("&&")
            .flat_map(|p| p.split(';'))
            .flat_map(|p| p.split('|'))
        {
            // `$(…)` (as in `TOKEN=$(cat FILE)`) is left out: it is not the command.
            let mut part = part.to_string();
            while let Some(at) = part.find("$(") {
                let Some(end) = part[at..].find(')') else {
                    break;
                };
                part.replace_range(at..at + end + 1, "");
            }
            let words: Vec<&str> = part.split_whitespace().collect();
            // The command word, after any `NAME=value` prefixes.
            let Some(at) = words
                .iter()
                .position(|w| !w.contains('=') || w.starts_with('-'))
            else {
                continue;
            };
            if !matches!(
                words[at],
                "wasm-ipc" | "target/release/wasm-ipc" | "./target/release/wasm-ipc"
            ) {
                continue;
            }
            let args: Vec<&str> = words[at + 1..]
                .iter()
                .take_while(|w| !w.starts_with('#') && !w.starts_with('>') && !w.starts_with("2>"))
                .copied()
                .collect();
            if !args.is_empty() {
                found.push((args.join(" "), block));
            }
        }
    }
    found
}

/// Every `wasm-ipc` command the book, the README and the contributor guide show names a real
/// subcommand and real flags of it; every complete one shown in a block (no `[…]` or `UPPER`
/// placeholders) parses, values included: it is given to the binary with `--help` appended, which clap
/// refuses after an unknown subcommand, flag or value. The reference pages are generated, so
/// they are left out.
#[test]
fn every_command_the_docs_show_parses() {
    let root = util::root();
    let mut helps: std::collections::BTreeMap<String, String> = Default::default();
    let mut bad = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        if file.starts_with(root.join("docs/src/reference")) && !file.ends_with("errors.md") {
            continue;
        }
        let raw = std::fs::read_to_string(&file).unwrap();
        let text = expand(&raw, file.parent().unwrap()).unwrap_or(raw);
        for (cmd, block) in shown_commands(&text) {
            let shown = format!("{}: `wasm-ipc {cmd}`", file.display());
            let words: Vec<&str> = cmd.split_whitespace().collect();
            let sub = words[0];
            if sub.starts_with('-') || sub.chars().all(|c| c.is_ascii_uppercase()) {
                continue; // `wasm-ipc --version`, or a placeholder: `wasm-ipc SUBCOMMAND`
            }
            let help = helps.entry(sub.to_string()).or_insert_with(|| {
                let out = wasm_ipc(&[sub, "--help"]);
                if out.status.success() {
                    String::from_utf8_lossy(&out.stdout).into_owned()
                } else {
                    String::new()
                }
            });
            if help.is_empty() {
                bad.push(format!("{shown}: no subcommand `{sub}`"));
                continue;
            }
            for w in &words[1..] {
                let w = w.trim_matches(|c| c == '[' || c == ']');
                if let Some(flag) = w.strip_prefix("--") {
                    let flag = flag.split('=').next().unwrap();
                    if !help.contains(&format!("--{flag} "))
                        && !help.contains(&format!("--{flag}\n"))
                    {
                        bad.push(format!("{shown}: `{sub}` has no flag `--{flag}`"));
                    }
                }
            }
            let placeholder = words.iter().any(|w| {
                w.contains('[')
                    || w.contains("...")
                    || w.contains('…')
                    || (w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            });
            if block && !placeholder {
                let mut args = words.clone();
                args.push("--help");
                let out = wasm_ipc(&args);
                if !out.status.success() {
                    bad.push(format!("{shown}: {}", util::stderr(&out).trim()));
                }
            }
            checked += 1;
        }
    }
    assert!(
        bad.is_empty(),
        "commands in the docs that do not parse:\n{}",
        bad.join("\n")
    );
    assert!(
        checked >= 20,
        "only {checked} commands found: the scan is broken"
    );
}

/// The scan finds commands in the three places they are shown, and a wrong flag is caught.
#[test]
fn shown_commands_are_found_where_pages_show_them() {
    let page = "Run `wasm-ipc run --backend msg` or `--quick`.\n\
                ```sh\nscripts/x.sh && wasm-ipc check a.toml # note\n```\n\
                ```text\n$ X=$(cat f) target/release/wasm-ipc compare --json \\\n  b.toml | jq .\nwasm-ipc agent: out\n\
                wasm-ipc bench [--rounds N]\n```\n";
    assert_eq!(
        shown_commands(page),
        vec![
            ("run --backend msg".to_string(), false),
            ("check a.toml".to_string(), true),
            ("compare --json b.toml".to_string(), true),
            ("bench [--rounds N]".to_string(), true)
        ]
    );
    let out = wasm_ipc(&["run", "--no-such-flag", "--help"]);
    assert!(
        !out.status.success(),
        "clap refuses an unknown flag before --help"
    );
    let out = wasm_ipc(&["run", "--repeat", "many", "--help"]);
    assert!(
        !out.status.success(),
        "clap refuses an unknown value before --help"
    );
}

/// Every bundled scenario's first line says how to run it (`# Run: wasm-ipc … scenarios/X.toml`,
/// naming the file itself), and that command parses.
#[test]
fn every_bundled_scenario_says_how_to_run_it() {
    let root = util::root();
    let mut dirs = vec![root.join("scenarios")];
    let mut seen = 0;
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let rel = p.strip_prefix(&root).unwrap().display().to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            let first = text.lines().next().unwrap_or("");
            let Some(cmd) = first.strip_prefix("# Run: ") else {
                panic!("{rel}: the first line is not `# Run: wasm-ipc …`: {first:?}");
            };
            let found = shown_commands(&format!("```sh\n{cmd}\n```\n"));
            let [(args, true)] = found.as_slice() else {
                panic!("{rel}: no wasm-ipc command in {cmd:?}");
            };
            let words: Vec<&str> = args.split_whitespace().collect();
            assert_eq!(
                words.last(),
                Some(&rel.as_str()),
                "{rel}: runs another file"
            );
            let mut with_help = words.clone();
            with_help.push("--help");
            let out = wasm_ipc(&with_help);
            assert!(out.status.success(), "{rel}: {}", util::stderr(&out));
            seen += 1;
        }
    }
    assert!(seen >= 10, "only {seen} scenarios");
}
