//! `cargo xtask report-check`: render the demo's HTML report in headless Chromium and check what a reader sees.
//!
//! The report is a self-contained HTML file (inline SVG charts, no scripts), so unit tests of the report
//! crate can check the markup it writes but not that a browser renders it. This task closes that gap: it
//! builds the debug `offerloop` binary, runs a short `offerloop demo`, then runs Chromium twice on the
//! report, once for a screenshot (kept in `target/report-check/` as the CI artifact) and once to dump the
//! rendered DOM with the page's console on stderr. The DOM must show a headline uplift with a number and at
//! least [`MIN_CHARTS`] charts, each with an inline `<svg>`; the page must log nothing to the console and
//! must not reference files outside itself.
//!
//! Two facts about Chromium shape the checks. It logs every page console message at `INFO` level
//! (`[pid:tid:time:INFO:CONSOLE:12] "x", source: file:///… (12)`; older releases wrote `CONSOLE(12)`),
//! whatever the console method, so a `console.error` cannot be told from a `console.log`: since the report
//! has no scripts, any console message fails the check. And it logs nothing when a `file://` page points
//! at a missing file, so instead of waiting for a "Failed to load resource" line (still matched, for
//! `http` pages) the rendered DOM is searched for attributes that load other files.
//!
//! The DOM and console checks are pure functions over strings, unit-tested below without a browser.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The step name used in messages and in `cargo xtask ci`'s timings.
pub(crate) const STEP: &str = "report-check";

/// The fewest charts the report must render.
pub(crate) const MIN_CHARTS: usize = 4;

/// The arguments of the demo run, after `--out DIR`.
const DEMO_ARGS: [&str; 5] = ["demo", "--days", "21", "--customers", "3000"];

/// The browsers looked for on `PATH`, in order; the environment variable `CHROME` overrides them.
const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// Flags of both Chromium runs (each run adds its own `--user-data-dir`).
const CHROMIUM_FLAGS: [&str; 4] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
];

/// How long one Chromium run may take before it is killed.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

/// The screenshot must be larger than this. It guards against an empty or cut-off file only: a blank white
/// 1366×2400 page still compresses to about 15 KiB, so what the page shows is checked in its DOM.
const MIN_SCREENSHOT_BYTES: u64 = 10 * 1024;

/// Runs the whole report check from the repository root.
///
/// # Errors
///
/// [`Error::StepFailed`] when the build, the demo or Chromium fails or Chromium times out;
/// [`Error::Spawn`] when a program cannot start, including when no Chromium is installed; [`Error::Io`]
/// when the report or the screenshot is missing or the rendered report fails a check (each failure is
/// printed first).
pub(crate) fn run(root: &Path) -> Result<()> {
    let out = crate::target_dir(root).join("report-check");
    let demo_dir = out.join("demo");

    crate::run_cargo(root, STEP, &["build", "-p", "offerloop-cli", "--bin", "offerloop"])?;
    let report = run_demo(
        root,
        &crate::target_dir(root).join("debug").join("offerloop"),
        &demo_dir,
    )?;
    let report = std::fs::canonicalize(&report).map_err(|source| Error::Io {
        path: report.clone(),
        source,
    })?;
    let url = file_url(&report);

    let browser = find_browser()?;
    let profile = std::env::temp_dir().join(format!("offerloop-report-check-{}", std::process::id()));
    let result = check_in_browser(&browser, &profile, &out, &url);
    // The profiles are scratch space; a leftover in the temp directory is harmless.
    let _ = std::fs::remove_dir_all(&profile);
    result?;
    println!("report-check: ok ({})", report.display());
    Ok(())
}

/// Runs `offerloop demo … --out <dir>` from a fresh `dir`, echoing its output, and returns the report's path.
fn run_demo(root: &Path, binary: &Path, dir: &Path) -> Result<PathBuf> {
    remove_dir(dir)?;
    let mut args: Vec<String> = DEMO_ARGS.iter().map(|a| (*a).to_owned()).collect();
    args.extend(["--out".to_owned(), dir.display().to_string()]);
    let command = format!("{} {}", binary.display(), args.join(" "));
    println!("==> {STEP}: {command}");
    let spawn_error = |source| Error::Spawn {
        step: STEP,
        command: command.clone(),
        source,
    };
    let mut child = Command::new(binary)
        .args(&args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let mut printed: Option<PathBuf> = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(spawn_error)?;
            println!("{line}");
            if let Some(path) = printed_report_path(&line) {
                printed = Some(root.join(path));
            }
        }
    }
    let status = child.wait().map_err(spawn_error)?;
    if !status.success() {
        return Err(Error::StepFailed {
            step: STEP,
            command,
            status,
        });
    }
    let expected = dir.join("report").join("report.html");
    let report = printed.clone().unwrap_or_else(|| expected.clone());
    if report.is_file() {
        return Ok(report);
    }
    let said = match printed {
        Some(path) => format!("though it printed `report: {}`", path.display()),
        None => "and printed no `report: <path>` line".to_owned(),
    };
    Err(Error::Io {
        path: report,
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("`offerloop demo` succeeded but wrote no HTML report here ({said})"),
        ),
    })
}

/// The path in a `report: <path>` line of the demo's output, if this is one.
fn printed_report_path(line: &str) -> Option<&str> {
    let path = line.trim().strip_prefix("report:")?.trim();
    (!path.is_empty()).then_some(path)
}

/// Removes a directory tree; a directory that does not exist is fine.
fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            path: dir.to_path_buf(),
            source,
        }),
        _ => Ok(()),
    }
}

/// A `file://` URL for an absolute path, percent-encoding every byte outside the unreserved set and `/`.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// The Chromium to run: `CHROME` if set, else the first of [`BROWSERS`] on `PATH`.
pub(crate) fn find_browser() -> Result<PathBuf> {
    let chrome = std::env::var_os("CHROME").filter(|c| !c.is_empty());
    let path = std::env::var_os("PATH").unwrap_or_default();
    let (found, wanted) = match &chrome {
        Some(chrome) => (
            locate(&[Path::new(chrome)], &path),
            format!("CHROME={}", chrome.to_string_lossy()),
        ),
        None => {
            let names: Vec<&Path> = BROWSERS.iter().map(Path::new).collect();
            (locate(&names, &path), format!("{} on PATH", BROWSERS.join(", ")))
        }
    };
    found.ok_or_else(|| Error::Spawn {
        step: STEP,
        command: BROWSERS[0].to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no Chromium found ({wanted}); install it with `apt-get install chromium` \
                 (Debian, as root), or set CHROME to a Chromium or Chrome binary"
            ),
        ),
    })
}

/// The first candidate that is a file: a candidate with a `/` is taken as a path, a bare name is looked up
/// in the directories of `path` (a `PATH`-style list).
fn locate(candidates: &[&Path], path: &std::ffi::OsStr) -> Option<PathBuf> {
    candidates.iter().find_map(|candidate| {
        if candidate.components().count() > 1 {
            candidate.is_file().then(|| candidate.to_path_buf())
        } else {
            std::env::split_paths(path)
                .map(|dir| dir.join(candidate))
                .find(|p| p.is_file())
        }
    })
}

/// Both Chromium runs and every check on their output; the files land in `out`.
fn check_in_browser(browser: &Path, profile: &Path, out: &Path, url: &str) -> Result<()> {
    let screenshot = out.join("report.png");
    remove_file(&screenshot)?;
    let shot_arg = format!("--screenshot={}", screenshot.display());
    chromium(
        browser,
        &profile.join("screenshot"),
        &[&shot_arg, "--window-size=1366,2400", url],
        &out.join("chromium-screenshot.out"),
        &out.join("chromium-screenshot.log"),
    )?;
    let bytes = check_screenshot(&screenshot)?;
    println!(
        "report-check: screenshot {} ({} KiB)",
        screenshot.display(),
        bytes / 1024
    );

    let dom_path = out.join("dom.html");
    let log_path = out.join("chromium-dom.log");
    chromium(
        browser,
        &profile.join("dom"),
        &["--dump-dom", "--enable-logging=stderr", "--v=0", url],
        &dom_path,
        &log_path,
    )?;
    let dom = read(&dom_path)?;
    let log = read(&log_path)?;
    let findings = Findings::of(&dom, &log);
    findings.print();
    let problems = findings.problems();
    for problem in &problems {
        println!("report-check: FAILED: {problem}");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let s = if problems.len() == 1 { "" } else { "s" };
        Err(Error::Io {
            path: dom_path,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the report rendered by Chromium fails {} check{s} (listed above; Chromium's log: {})",
                    problems.len(),
                    log_path.display()
                ),
            ),
        })
    }
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
        _ => Ok(()),
    }
}

fn read(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The screenshot's size, once it is known to be a PNG of at least [`MIN_SCREENSHOT_BYTES`].
fn check_screenshot(path: &Path) -> Result<u64> {
    let invalid = |message: String| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    };
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(invalid("Chromium's screenshot is not a PNG".to_owned()));
    }
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len <= MIN_SCREENSHOT_BYTES {
        return Err(invalid(format!(
            "Chromium's screenshot has only {len} bytes (at most {MIN_SCREENSHOT_BYTES} means a blank page)"
        )));
    }
    Ok(len)
}

/// Runs Chromium headless with [`CHROMIUM_FLAGS`], a fresh profile and `args`, stdout and stderr to files,
/// killing it after [`CHROMIUM_TIMEOUT`].
fn chromium(browser: &Path, profile: &Path, args: &[&str], stdout: &Path, stderr: &Path) -> Result<()> {
    let profile_arg = format!("--user-data-dir={}", profile.display());
    let mut all: Vec<&str> = CHROMIUM_FLAGS.to_vec();
    all.push(&profile_arg);
    all.extend_from_slice(args);
    let command = format!("{} {}", browser.display(), all.join(" "));
    println!("==> {STEP}: {command}");
    let create = |path: &Path| {
        File::create(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut cmd = Command::new(browser);
    cmd.args(&all)
        .stdin(Stdio::null())
        .stdout(create(stdout)?)
        .stderr(create(stderr)?);
    // Its own process group, so a timeout kills the renderer and GPU processes with the browser.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let spawn_error = |source| Error::Spawn {
        step: STEP,
        command: command.clone(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_error)?;
    let status = match wait_with_timeout(&mut child, CHROMIUM_TIMEOUT).map_err(spawn_error)? {
        Some(status) => status,
        None => {
            println!(
                "report-check: Chromium took more than {} s; killed (its log: {})",
                CHROMIUM_TIMEOUT.as_secs(),
                stderr.display()
            );
            kill(&mut child).map_err(spawn_error)?
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(Error::StepFailed {
            step: STEP,
            command,
            status,
        })
    }
}

/// Waits for the child; `None` if it is still running after `timeout`.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the child's process group (on Unix) and the child, and reaps it.
fn kill(child: &mut Child) -> std::io::Result<ExitStatus> {
    #[cfg(unix)]
    {
        // Best effort: `kill` is in every Unix base system; the direct kill below still stops the browser.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
    }
    // The group kill may already have ended it; then this reports "no such process", which is fine.
    let _ = child.kill();
    child.wait()
}

/// What the rendered report shows, as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Findings {
    /// The text of the `id="headline-uplift"` element, whitespace collapsed; `None` if there is none.
    headline: Option<String>,
    /// Every `<figure class="chart">`, in document order.
    charts: Vec<Chart>,
    /// The lines of Chromium's log that are page console messages or failed loads.
    console: Vec<String>,
    /// Attributes that load another file, as `tag attr="value"`.
    external: Vec<String>,
}

/// One `<figure class="chart">` of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chart {
    /// Its `data-chart` attribute, if any.
    name: Option<String>,
    /// Whether an `<svg>` element is inside it.
    has_svg: bool,
}

impl Findings {
    /// Inspects the rendered DOM and Chromium's stderr.
    fn of(dom: &str, log: &str) -> Self {
        Self {
            headline: headline_uplift(dom),
            charts: charts(dom),
            console: console_messages(log).into_iter().map(str::to_owned).collect(),
            external: external_resources(dom),
        }
    }

    /// What was checked, with counts.
    fn print(&self) {
        match &self.headline {
            Some(text) => println!("report-check: headline-uplift: {text:?}"),
            None => println!("report-check: headline-uplift: no element with id=\"headline-uplift\""),
        }
        let with_svg = self.charts.iter().filter(|c| c.has_svg).count();
        let names: Vec<&str> = self.charts.iter().map(|c| c.name.as_deref().unwrap_or("?")).collect();
        println!(
            "report-check: charts: {} <figure class=\"chart\"> (at least {MIN_CHARTS} wanted), {with_svg} with an <svg>{}",
            self.charts.len(),
            if names.is_empty() {
                String::new()
            } else {
                format!(": {}", names.join(", "))
            }
        );
        println!("report-check: console messages: {}", self.console.len());
        println!("report-check: references to other files: {}", self.external.len());
    }

    /// Every failed check, as a sentence; empty when the report passes.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.headline {
            None => problems.push("no element with id=\"headline-uplift\" in the rendered DOM".to_owned()),
            Some(text) if !text.bytes().any(|b| b.is_ascii_digit()) => {
                problems.push(format!("the headline uplift {text:?} holds no number"));
            }
            Some(_) => {}
        }
        if self.charts.len() < MIN_CHARTS {
            problems.push(format!(
                "{} <figure class=\"chart\"> in the rendered DOM, fewer than {MIN_CHARTS}",
                self.charts.len()
            ));
        }
        for (i, chart) in self.charts.iter().enumerate().filter(|(_, c)| !c.has_svg) {
            let name = chart
                .name
                .as_deref()
                .map_or_else(|| format!("number {}", i + 1), |n| format!("{n:?}"));
            problems.push(format!("chart {name} has no <svg>"));
        }
        for line in &self.console {
            problems.push(format!("the page logged to the console: {line}"));
        }
        for reference in &self.external {
            problems.push(format!("the report is not self-contained: {reference}"));
        }
        problems
    }
}

/// The text inside the element with `id="headline-uplift"`, tags dropped and whitespace collapsed.
fn headline_uplift(dom: &str) -> Option<String> {
    let mut tags = Tags::new(dom);
    let open = tags
        .by_ref()
        .find(|t| !t.closing && attr(t.attrs, "id") == Some("headline-uplift"))?;
    let mut text = String::new();
    if !open.self_closing {
        let mut depth = 1_usize;
        let mut last_end = open.end;
        for tag in tags {
            text.push_str(&dom[last_end..tag.start]);
            text.push(' ');
            last_end = tag.end;
            if tag.name.eq_ignore_ascii_case(open.name) {
                if tag.closing {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                } else if !tag.self_closing {
                    depth += 1;
                }
            }
        }
    }
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Every `<figure>` whose class list has `chart`, with whether an `<svg>` is inside.
fn charts(dom: &str) -> Vec<Chart> {
    let mut charts: Vec<Chart> = Vec::new();
    // The open figures, innermost last: the index into `charts` of a chart figure, `None` for another.
    let mut open: Vec<Option<usize>> = Vec::new();
    for tag in Tags::new(dom) {
        if tag.name.eq_ignore_ascii_case("figure") {
            if tag.closing {
                open.pop();
            } else if attr(tag.attrs, "class").is_some_and(|c| c.split_ascii_whitespace().any(|c| c == "chart")) {
                open.push(Some(charts.len()));
                charts.push(Chart {
                    name: attr(tag.attrs, "data-chart").map(str::to_owned),
                    has_svg: false,
                });
            } else {
                open.push(None);
            }
        } else if !tag.closing
            && tag.name.eq_ignore_ascii_case("svg")
            && let Some(chart) = open.iter().rev().flatten().next().and_then(|&i| charts.get_mut(i))
        {
            chart.has_svg = true;
        }
    }
    charts
}

/// The lines of Chromium's stderr that are page console messages or failed resource loads.
///
/// A console message is `[…:INFO:CONSOLE:12] "text", source: url (12)` (`CONSOLE(12)` before Chromium
/// 120 or so); DBus, GPU and sandbox warnings are not, however alarming they look.
fn console_messages(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| {
            let console = line
                .match_indices(":CONSOLE")
                .any(|(at, m)| matches!(line[at + m.len()..].bytes().next(), Some(b'(' | b':')));
            console || line.contains("Failed to load resource")
        })
        .collect()
}

/// Attributes of the DOM that make the browser load another file: any `src`, a `<link href>`, and an SVG
/// `<image>`/`<use>` `href` that is not a `#fragment`; `data:` URLs are inline and fine.
fn external_resources(dom: &str) -> Vec<String> {
    let mut found = Vec::new();
    for tag in Tags::new(dom).filter(|t| !t.closing) {
        let name = tag.name.to_ascii_lowercase();
        let mut names = vec!["src"];
        match name.as_str() {
            "link" => names.push("href"),
            "image" | "use" => names.extend(["href", "xlink:href"]),
            _ => {}
        }
        for attr_name in names {
            if let Some(value) = attr(tag.attrs, attr_name) {
                let inline =
                    value.starts_with("data:") || (attr_name != "src" && name != "link" && value.starts_with('#'));
                if !inline {
                    found.push(format!("<{} {attr_name}=\"{value}\">", tag.name));
                }
            }
        }
    }
    found
}

/// One tag of an HTML text.
#[derive(Debug, Clone, Copy)]
struct Tag<'a> {
    /// The tag name as written (`svg`, `linearGradient`).
    name: &'a str,
    /// Whether this is an end tag (`</p>`).
    closing: bool,
    /// Whether the start tag ends in `/>`.
    self_closing: bool,
    /// The text between the name and the closing `>` (or `/>`).
    attrs: &'a str,
    /// The byte offset of `<`.
    start: usize,
    /// The byte offset just after `>`.
    end: usize,
}

/// The start and end tags of an HTML text, in order, skipping comments, doctypes and the contents of
/// `<script>` and `<style>`. Enough for Chromium's serialised DOM (quoted attributes, well nested), not a
/// general HTML parser.
#[derive(Debug)]
struct Tags<'a> {
    html: &'a str,
    at: usize,
}

impl<'a> Tags<'a> {
    fn new(html: &'a str) -> Self {
        Self { html, at: 0 }
    }
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        let html = self.html;
        loop {
            let start = self.at + html.get(self.at..)?.find('<')?;
            let rest = &html[start + 1..];
            if let Some(comment) = rest.strip_prefix("!--") {
                self.at = comment.find("-->").map_or(html.len(), |i| start + 4 + i + 3);
                continue;
            }
            if rest.starts_with(['!', '?']) {
                self.at = rest.find('>').map_or(html.len(), |i| start + 1 + i + 1);
                continue;
            }
            let (closing, body) = match rest.strip_prefix('/') {
                Some(body) => (true, body),
                None => (false, rest),
            };
            let name_len = body
                .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
                .unwrap_or(body.len());
            if name_len == 0 || !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
                // A `<` in text (`a < b`): not a tag.
                self.at = start + 1;
                continue;
            }
            let name = &body[..name_len];
            let after_name = &body[name_len..];
            let attrs_len = tag_end(after_name);
            let attrs_raw = &after_name[..attrs_len];
            let self_closing = attrs_raw.ends_with('/');
            let attrs = attrs_raw.strip_suffix('/').unwrap_or(attrs_raw);
            let end = (start + 1 + usize::from(closing) + name_len + attrs_len + 1).min(html.len());
            self.at = end;
            if !closing && (name.eq_ignore_ascii_case("script") || name.eq_ignore_ascii_case("style")) {
                // Raw text: skip to the end tag, which the next call returns.
                let close = format!("</{}", name.to_ascii_lowercase());
                let lower = html[end..].to_ascii_lowercase();
                self.at = lower.find(&close).map_or(html.len(), |i| end + i);
            }
            return Some(Tag {
                name,
                closing,
                self_closing,
                attrs,
                start,
                end,
            });
        }
    }
}

/// The length of a tag's text up to its closing `>` (exclusive), skipping quoted attribute values.
fn tag_end(s: &str) -> usize {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '>') => return i,
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    s.len()
}

/// The value of attribute `name` (ASCII case-insensitive) in a tag's attribute text; `""` for a bare one.
fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = attrs;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            return None;
        }
        let name_len = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let this = &rest[..name_len];
        rest = rest[name_len..].trim_start();
        let mut value = "";
        if let Some(after_eq) = rest.strip_prefix('=') {
            let after_eq = after_eq.trim_start();
            let (v, remaining) = match after_eq.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = &after_eq[1..];
                    let close = inner.find(q).unwrap_or(inner.len());
                    (&inner[..close], inner.get(close + 1..).unwrap_or(""))
                }
                _ => {
                    let len = after_eq
                        .find(|c: char| c.is_ascii_whitespace())
                        .unwrap_or(after_eq.len());
                    after_eq.split_at(len)
                }
            };
            value = v;
            rest = remaining;
        }
        if this.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{
        Chart, Findings, attr, charts, console_messages, external_resources, file_url, headline_uplift, locate,
        printed_report_path,
    };

    const FIGURE: &str = r#"<figure class="chart" data-chart="NAME"><svg viewBox="0 0 10 10"><rect></rect></svg><figcaption>c</figcaption></figure>"#;

    fn report(headline: &str, charts: &[&str]) -> String {
        let figures: String = charts.iter().map(|n| FIGURE.replace("NAME", n)).collect();
        format!(
            "<!DOCTYPE html>\n<html><head><style>p > b {{ color: red }}</style></head><body>\
             <section id=\"headline\"><h1>Headline</h1>{headline}</section>{figures}</body></html>"
        )
    }

    fn good() -> String {
        report(
            r#"<p id="headline-uplift">Uplift <strong>+3.2 pp</strong> (95% CI 1.1 to 5.3)</p>"#,
            &["uplift", "daily", "arms", "propensity"],
        )
    }

    #[test]
    fn a_good_report_passes_every_check() {
        let findings = Findings::of(
            &good(),
            "[1:2:1129/1.2:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n",
        );
        assert_eq!(findings.headline.as_deref(), Some("Uplift +3.2 pp (95% CI 1.1 to 5.3)"));
        assert_eq!(findings.charts.len(), 4);
        assert_eq!(findings.problems(), Vec::<String>::new());
    }

    #[test]
    fn the_headline_must_exist_and_hold_a_number() {
        let missing = Findings::of(&report("<p>Uplift 3 pp</p>", &["a", "b", "c", "d"]), "");
        assert_eq!(missing.headline, None);
        assert_eq!(
            missing.problems(),
            ["no element with id=\"headline-uplift\" in the rendered DOM"]
        );

        let no_number = Findings::of(
            &report(r#"<p id="headline-uplift">n/a</p><p>42</p>"#, &["a", "b", "c", "d"]),
            "",
        );
        assert_eq!(no_number.headline.as_deref(), Some("n/a"));
        assert_eq!(no_number.problems(), ["the headline uplift \"n/a\" holds no number"]);
    }

    #[test]
    fn the_headline_text_stops_at_its_own_end_tag() {
        let dom = r#"<div id="headline-uplift">up <div>by <b>2</b></div> pp</div><div>99</div>"#;
        assert_eq!(headline_uplift(dom).as_deref(), Some("up by 2 pp"));
        let empty = r#"<span id="headline-uplift"></span> 7"#;
        assert_eq!(headline_uplift(empty).as_deref(), Some(""));
    }

    #[test]
    fn charts_are_counted_and_each_needs_an_svg() {
        let three = Findings::of(&report(r#"<p id="headline-uplift">1</p>"#, &["a", "b", "c"]), "");
        assert_eq!(
            three.problems(),
            ["3 <figure class=\"chart\"> in the rendered DOM, fewer than 4"]
        );

        let dom = r#"<figure class="chart wide" data-chart="a"><svg></svg></figure>
            <figure class="chart" data-chart="b"><img alt="x"></figure>
            <figure class="photo"><svg></svg></figure>
            <figure class="chart"><figure class="inner"></figure><SVG></SVG></figure>
            <figure class="charts"><svg></svg></figure>"#;
        assert_eq!(
            charts(dom),
            [
                Chart {
                    name: Some("a".to_owned()),
                    has_svg: true
                },
                Chart {
                    name: Some("b".to_owned()),
                    has_svg: false
                },
                Chart {
                    name: None,
                    has_svg: true
                },
            ]
        );
        let findings = Findings {
            headline: Some("1".to_owned()),
            charts: charts(dom),
            console: Vec::new(),
            external: Vec::new(),
        };
        assert_eq!(
            findings.problems(),
            [
                "3 <figure class=\"chart\"> in the rendered DOM, fewer than 4",
                "chart \"b\" has no <svg>"
            ]
        );
    }

    #[test]
    fn only_console_lines_and_failed_loads_count() {
        // Chromium 156's stderr for a page with `console.error("x")` and an uncaught exception, with the
        // DBus and GPU noise it prints in a container.
        let log = r#"/usr/bin/chromium: 9: [: 25275437056: unexpected operator
[9127:9157:1129/153733.312630:ERROR:dbus/bus.cc:405] Failed to connect to the bus: Failed to connect to socket /run/dbus/system_bus_socket: No such file or directory
[9175:9175:1129/153733.500489:WARNING:media/gpu/vaapi/vaapi_wrapper.cc:1655] drmGetDevices2() has not found any devices
[9127:9127:1129/153733.591913:ERROR:dbus/object_proxy.cc:572] Failed to call method: org.freedesktop.DBus.NameHasOwner: object_path= /org/freedesktop/DBus: unknown error type:
[9127:9127:1129/153734.145048:INFO:CONSOLE:2] "x", source: file:///tmp/rc/bad.html (2)
[9127:9127:1129/153734.147678:INFO:CONSOLE:3] "Uncaught ReferenceError: undefinedFn is not defined", source: file:///tmp/rc/bad.html (3)
[1:1:0101/000000.000000:INFO:CONSOLE(7)] "old format", source: file:///r.html (7)
[1:1:0101/000000.000000:ERROR:CONSOLE(0)] "Failed to load resource: net::ERR_FILE_NOT_FOUND", source: http://x/a.png (0)
[1:1:0101/000000.000000:INFO:CONSOLEX:1] not a console line
Failed to load resource: the server responded with a status of 404"#;
        assert_eq!(
            console_messages(log),
            [
                r#"[9127:9127:1129/153734.145048:INFO:CONSOLE:2] "x", source: file:///tmp/rc/bad.html (2)"#,
                r#"[9127:9127:1129/153734.147678:INFO:CONSOLE:3] "Uncaught ReferenceError: undefinedFn is not defined", source: file:///tmp/rc/bad.html (3)"#,
                r#"[1:1:0101/000000.000000:INFO:CONSOLE(7)] "old format", source: file:///r.html (7)"#,
                r#"[1:1:0101/000000.000000:ERROR:CONSOLE(0)] "Failed to load resource: net::ERR_FILE_NOT_FOUND", source: http://x/a.png (0)"#,
                "Failed to load resource: the server responded with a status of 404",
            ]
        );
        let findings = Findings::of(&good(), log);
        assert_eq!(findings.problems().len(), 5);
        assert!(findings.problems()[0].starts_with("the page logged to the console: "));
        assert_eq!(
            console_messages("[1:2:3/4:WARNING:ui/base/idle/idle_linux.cc:111] D-Bus\n"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn references_to_other_files_are_reported() {
        let dom = r##"<img src="missing.png"><img src="data:image/png;base64,AAAA"><script src='app.js'></script>
            <link rel="stylesheet" href="style.css"><a href="https://example.com">docs</a>
            <svg><use href="#dot"></use><image xlink:href="pic.svg"></image></svg>"##;
        assert_eq!(
            external_resources(dom),
            [
                r#"<img src="missing.png">"#,
                r#"<script src="app.js">"#,
                r#"<link href="style.css">"#,
                r#"<image xlink:href="pic.svg">"#,
            ]
        );
        assert_eq!(external_resources(&good()), Vec::<String>::new());
    }

    #[test]
    fn scripts_styles_comments_and_stray_angles_are_not_tags() {
        let dom = r#"<!-- <figure class="chart"><svg> --><script>if (a <figure) {}</script>
            <style>figure > svg {}</style><p>1 < 2</p><figure class="chart"><svg/></figure>"#;
        assert_eq!(
            charts(dom),
            [Chart {
                name: None,
                has_svg: true
            }]
        );
    }

    #[test]
    fn attributes_parse_in_every_quoting() {
        let attrs = r#" id="a b" data-x='q"uote' hidden CLASS=chart title="1 > 0""#;
        assert_eq!(attr(attrs, "id"), Some("a b"));
        assert_eq!(attr(attrs, "data-x"), Some("q\"uote"));
        assert_eq!(attr(attrs, "hidden"), Some(""));
        assert_eq!(attr(attrs, "class"), Some("chart"));
        assert_eq!(attr(attrs, "title"), Some("1 > 0"));
        assert_eq!(attr(attrs, "src"), None);
    }

    #[test]
    fn the_report_line_and_the_url() {
        assert_eq!(
            printed_report_path("report: target/x/report.html"),
            Some("target/x/report.html")
        );
        assert_eq!(printed_report_path("  report:   /abs/r.html  "), Some("/abs/r.html"));
        assert_eq!(printed_report_path("report:"), None);
        assert_eq!(printed_report_path("uplift report: 3"), None);
        assert_eq!(
            file_url(Path::new("/w/main/target/r c/ré.html")),
            "file:///w/main/target/r%20c/r%C3%A9.html"
        );
    }

    #[test]
    fn browsers_are_found_on_the_path_or_by_path() {
        let dir = std::env::temp_dir().join(format!("xtask-report-check-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin").join("chromium-browser"), "").unwrap();
        let path = std::env::join_paths([dir.join("empty"), dir.join("bin")]).unwrap();
        let names = [Path::new("chromium"), Path::new("chromium-browser")];
        assert_eq!(locate(&names, &path), Some(dir.join("bin").join("chromium-browser")));
        assert_eq!(locate(&[Path::new("google-chrome")], &path), None);
        let full = dir.join("bin").join("chromium-browser");
        assert_eq!(locate(&[full.as_path()], std::ffi::OsStr::new("")), Some(full.clone()));
        assert_eq!(locate(&[dir.join("nope").as_path()], &path), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
