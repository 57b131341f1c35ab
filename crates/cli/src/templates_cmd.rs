//! `offerloop templates sync`: the options' email templates in Braze.
//!
//! Options of creative, subject-line and custom dimensions may name local template files
//! (`template = { html = ..., text = ..., subject = ..., preheader = ... }`); `sync` creates or updates
//! them as Braze email templates, looked up by name ([`offerloop_activation::templates`]), records the
//! ids in the state file ([`TEMPLATE_IDS_FILE`] by default) and says what it did per option. It is
//! idempotent: a second run sends no write request and says `nothing to change`. `--dry-run` prints the
//! plan with a line diff of every changed field and writes nothing, neither to Braze nor to the file.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use offerloop_activation::templates::{self, SyncOutcome, TemplateIds};
use offerloop_braze::BrazeApi;
use offerloop_domain::UseCase;

pub use offerloop_activation::templates::TEMPLATE_IDS_FILE;

use crate::run_cmd::{braze_client, load_use_case};

/// Loads the use case at `use_case_path`, connects to its Braze workspace (the key from the
/// environment variable it names) and syncs its templates; returns the text to print.
///
/// # Errors
/// An invalid use-case file, a missing key variable, an unreadable template file, a failed Braze
/// request, a state file that cannot be read or written, or the use case busy in the store (its
/// lock, [`offerloop_store::lock_file`], is held by a run or another sync).
pub async fn sync(
    use_case_path: &Path,
    dry_run: bool,
    state_file: &Path,
    store: Option<&str>,
) -> anyhow::Result<String> {
    let use_case = load_use_case(use_case_path)?;
    let now = offerloop_engine::Clock::now(&crate::run_cmd::SystemClock);
    let holder = offerloop_store::LockHolder::this_process("offerloop templates sync", now);
    // An SQLite store's lock is a file beside it (the database need not exist); a PostgreSQL one is
    // held by a connection of the store.
    let location = crate::store_cmd::location(store, Some(&use_case))?;
    let (_lock, _store) = match &location {
        offerloop_store::StoreLocation::Sqlite(path) => {
            (offerloop_store::lock_file(path, use_case.name.as_str(), &holder)?, None)
        }
        _ => {
            let store = crate::store_cmd::open(&location)?;
            (store.lock_use_case(use_case.name.as_str(), &holder)?, Some(store))
        }
    };
    let client = braze_client(&use_case)?;
    let base_dir = use_case_path.parent().unwrap_or(Path::new(""));
    sync_with(client.as_ref(), &use_case, base_dir, dry_run, state_file).await
}

/// [`sync`] through `api`, for a use case already loaded, its template paths relative to `base_dir`.
///
/// # Errors
/// As [`sync`], except for loading the use case and building the client.
pub async fn sync_with(
    api: &dyn BrazeApi,
    use_case: &UseCase,
    base_dir: &Path,
    dry_run: bool,
    state_file: &Path,
) -> anyhow::Result<String> {
    let plan = templates::plan_sync(api, use_case, base_dir)
        .await
        .with_context(|| format!("planning the template sync of `{}`", use_case.name))?;
    let mut out = String::new();
    if plan.templates.is_empty() {
        let _ = writeln!(
            out,
            "no option of `{}` has a template (`template = {{ html = \"...\" }}`): nothing to sync",
            use_case.name
        );
        return Ok(out);
    }
    if dry_run {
        out.push_str(&plan.render_diff());
        if plan.has_changes() {
            out.push_str("dry run: nothing was written\n");
        }
        return Ok(out);
    }
    let report = templates::apply(api, &plan)
        .await
        .with_context(|| format!("syncing the templates of `{}`", use_case.name))?;
    let width = report
        .templates
        .iter()
        .map(|t| t.dimension.chars().count() + t.option.chars().count() + 1)
        .max()
        .unwrap_or(0);
    for t in &report.templates {
        let key = format!("{}.{}", t.dimension, t.option);
        let fields = match t.outcome {
            SyncOutcome::Updated => {
                let names: Vec<&str> = t.fields.iter().map(|f| f.as_str()).collect();
                format!(" ({})", names.join(", "))
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{key:<width$}  {:<9}  `{}` {}{fields}",
            t.outcome.as_str(),
            t.name,
            t.email_template_id
        );
    }
    let mut ids =
        TemplateIds::load(state_file).with_context(|| format!("reading the template ids {}", state_file.display()))?;
    if ids.record(&report) {
        ids.save(state_file)
            .with_context(|| format!("recording the template ids in {}", state_file.display()))?;
        let _ = writeln!(out, "template ids recorded in {}", state_file.display());
    }
    if report.writes() == 0 {
        out.push_str("nothing to change\n");
    } else {
        let created = report
            .templates
            .iter()
            .filter(|t| t.outcome == SyncOutcome::Created)
            .count();
        let _ = writeln!(out, "{created} created, {} updated", report.writes() - created);
    }
    Ok(out)
}
