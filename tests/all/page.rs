//! The HTML report in headless Chromium: what a reader sees first, real tables, a verdict per
//! pair of backends, nothing from the network, and a page that fits 1280 pixels.

use std::path::Path;
use std::process::Command;

use crate::util::{self, heavy, wasm_ipc};

/// Headless Chromium with the flags this machine's closed network needs (no background
/// connections), a fresh profile, and a window 1280 pixels wide and `height` tall.
fn chromium(profile: &Path, height: u32) -> Command {
    let mut c = Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--window-size=1280,{height}"))
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The DOM of `page` after load, with the document's scroll width and the window's width
/// written onto `<body>` by a probe appended to a copy of the page (the page itself has no
/// script).
pub(crate) fn rendered(page: &Path, dir: &Path) -> String {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = "<script>document.body.setAttribute('data-scroll-width', \
                 document.documentElement.scrollWidth);document.body.setAttribute(\
                 'data-window-width', window.innerWidth);</script></body>";
    let copy = dir.join("probed.html");
    std::fs::write(&copy, html.replace("</body>", probe)).unwrap();
    let out = chromium(&dir.join("profile-dom"), 900)
        .arg("--dump-dom")
        .arg(format!("file://{}", copy.display()))
        .output()
        .expect("chromium (Debian) loads the page headless; scripts/setup.sh installs it");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that the rendered page is no wider than the 1280-pixel window.
pub(crate) fn assert_fits(dom: &str) {
    let (scroll, window) = (
        body_attr(dom, "data-scroll-width"),
        body_attr(dom, "data-window-width"),
    );
    assert_eq!(window, 1280);
    assert!(
        scroll <= window,
        "the page is {scroll} px wide in a {window} px window"
    );
}

/// The number in `name="…"` on the body.
fn body_attr(dom: &str, name: &str) -> u64 {
    let at = dom
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("no {name} on the body: the probe did not run"));
    let rest = &dom[at + name.len() + 2..];
    rest[..rest.find('"').unwrap()].parse().unwrap()
}

/// The main job, three rounds of small counts: the page opens with the machine, the plan and
/// the verdicts (one per pair of backends and figure), then one table row per row of the
/// terminal table, the winner marked; it loads nothing from elsewhere and fits a 1280-pixel
/// window without horizontal scrolling. The screenshot is kept in
/// `target/test-artefacts/report-main.png`.
#[test]
fn the_main_jobs_page_reads_at_a_glance_in_chromium() {
    let _g = heavy();
    util::plugins();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let scenario = util::root().join("scenarios/producer-consumer.toml");
    let small = [
        "--repeat",
        "3",
        "--no-warmup",
        "--set",
        "plugin.producer.config.count=20000",
        "--set",
        "plugin.consumer.config.expect=20000",
    ];
    let out = wasm_ipc(
        &[
            &["compare", "--html", page.to_str().unwrap()][..],
            &small,
            &[scenario.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", util::stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let html = std::fs::read_to_string(&page).unwrap();
    for outside in ["<link", "src=", "href=", "url(", "@import", "<script"] {
        assert!(!html.contains(outside), "the page refers to {outside:?}");
    }
    assert!(!html.contains("http"), "the page names a web address");

    let dom = rendered(&page, dir.path());
    // What a reader acts on comes first: the machine and the plan, then the verdicts, then
    // the figures, and the raw JSON last, folded.
    let order: Vec<usize> = [
        "id=\"machine\"",
        "id=\"plan\"",
        "id=\"verdicts\"",
        "class=\"results\"",
        "<details id=\"raw\"",
    ]
    .iter()
    .map(|w| dom.find(w).unwrap_or_else(|| panic!("the page has no {w}")))
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "out of order: {order:?}"
    );
    // A verdict per pair of backends and figure: 3 pairs × 3 figures.
    assert_eq!(dom.matches("class=\"verdict-row\"").count(), 9, "{dom}");
    for pair in ["shm-msg", "shm-zenoh", "msg-zenoh"] {
        assert!(dom.contains(&format!("data-pair=\"{pair}\"")), "{pair}");
    }
    // A table row per row of the terminal table (all but `scenario:`, `backend` and the
    // lines under the table), each with one cell per backend.
    let rows: Vec<&str> = table
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with("verdicts (") && !l.starts_with("warning:"))
        .collect();
    assert!(rows.len() > 15, "{table}");
    assert_eq!(
        dom.matches("<tr class=\"figure\">").count(),
        rows.len(),
        "{table}"
    );
    for row in &rows {
        let name = row.trim_start().split("  ").next().unwrap();
        assert!(
            dom.contains(&format!("<th scope=\"row\">{name}</th>")),
            "no row {name:?}"
        );
    }
    // shm's throughput lead on 4 KiB messages is called, and marked in its table.
    assert!(dom.contains("class=\"win\">"), "no winner marked");
    // It fits: nothing wider than the window.
    assert_fits(&dom);
    // The screenshot, kept for people to look at.
    let artefacts = util::root().join("target/test-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let shot = artefacts.join("report-main.png");
    let _ = std::fs::remove_file(&shot);
    // Tall enough for the verdicts and the whole table.
    let out = chromium(&dir.path().join("profile-shot"), 1700)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "an empty screenshot"
    );
    // The terminal table fits 120 columns.
    let widest = table
        .lines()
        .take(rows.len() + 2)
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!(
        widest <= 120,
        "the table is {widest} columns wide:\n{table}"
    );
}
