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

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    let files = markdown_files();
    assert!(files.len() > 10, "the book has pages: {files:?}");
    for file in &files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
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
                if let Some(anchor) = anchor
                    && dest.extension().is_some_and(|x| x == "md")
                {
                    let there = std::fs::read_to_string(&dest).unwrap();
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
