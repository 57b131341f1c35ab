//! Segment-export reading benchmark: throughput and peak memory of `ExportReader` on a large export.
//!
//! `cargo bench -p offerloop-braze --bench export` generates a ZIP of 200,000 realistic users (custom
//! attributes, 3 custom events, 2 purchases, 2 campaigns and a canvas each) in entries of 5,000 users
//! laid out like Braze's, into a temporary file, then reads it in a child process (`export read FILE`;
//! then `export read-all FILE`, parsing every typed field instead of the requested ones; then
//! `export stream FILE`, the async adapter), so each child's peak RSS (`VmHWM`) reflects reading only,
//! not generation. A single large run tells more here than criterion's repeated samples.
//! Options: `EXPORT_BENCH_USERS` (default 200000).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::error::Error;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use offerloop_braze::export::{ExportReader, FieldSet};
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const USERS_PER_FILE: u64 = 5_000;
const FIELDS: [&str; 13] = [
    "external_id",
    "braze_id",
    "country",
    "language",
    "time_zone",
    "created_at",
    "total_revenue",
    "email_subscribe",
    "push_subscribe",
    "random_bucket",
    "custom_attributes",
    "custom_events",
    "purchases",
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    match args.as_slice() {
        [mode, file] if mode == "read" => read(Path::new(file), FieldSet::from_fields_to_export(FIELDS)),
        [mode, file] if mode == "read-all" => read(Path::new(file), FieldSet::all()),
        [mode, file] if mode == "stream" => stream(Path::new(file)),
        _ => generate_then_read(),
    }
}

/// Peak resident set size of this process so far, in KiB (`VmHWM` of /proc/self/status).
fn peak_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmHWM line")?.parse()?)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn generate_then_read() -> Result<()> {
    let users: u64 = std::env::var("EXPORT_BENCH_USERS")
        .ok()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(200_000);
    let rss_start = peak_rss_kib()?;
    let dir = tempfile::tempdir()?;
    let zip = dir.path().join("segment-export.zip");
    let started = Instant::now();
    let (entries, uncompressed) = write_export(&zip, users)?;
    let zip_size = std::fs::metadata(&zip)?.len();
    println!(
        "generated: {users} users in {entries} entries of {USERS_PER_FILE} in {:.1?}",
        started.elapsed()
    );
    println!(
        "ZIP size: {:.1} MiB; uncompressed NDJSON: {:.1} MiB ({:.0} bytes/user)",
        mib(zip_size),
        mib(uncompressed),
        uncompressed as f64 / users as f64
    );
    println!(
        "generator peak RSS (VmHWM): {rss_start} KiB at start, {} KiB after generation",
        peak_rss_kib()?
    );
    let exe = std::env::current_exe()?;
    for mode in ["read", "read-all", "stream"] {
        let status = std::process::Command::new(&exe).arg(mode).arg(&zip).status()?;
        if !status.success() {
            return Err(format!("`export {mode}` failed: {status}").into());
        }
    }
    Ok(())
}

/// Writes the export ZIP; returns the number of entries and the uncompressed size.
fn write_export(path: &Path, users: u64) -> Result<(u64, u64)> {
    let mut zip = zip::ZipWriter::new(BufWriter::new(std::fs::File::create(path)?));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut rng = SplitMix(0x0ff3_7100_9000_0001);
    let (mut entries, mut bytes, mut line) = (0, 0, Vec::with_capacity(2048));
    for i in 0..users {
        if i % USERS_PER_FILE == 0 {
            // Braze's bucket layout: segment-export/<segment_id>/<date>/<object_prefix>/<random>.json
            let name = format!(
                "segment-export/seg-0001/2026-11-29/bb8e2a91-c4aa-478b-b3f2-a4ee91731ad1-1764374400/{:016x}-{entries:04}.json",
                rng.next()
            );
            zip.start_file(name, options)?;
            entries += 1;
        }
        line.clear();
        serde_json::to_writer(&mut line, &user(i, &mut rng))?;
        line.push(b'\n');
        zip.write_all(&line)?;
        bytes += line.len() as u64;
    }
    zip.finish()?.flush()?;
    Ok((entries, bytes))
}

/// A deterministic pseudo-random generator (SplitMix64), so every run reads the same data.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len() as u64) as usize]
    }

    fn date(&mut self) -> String {
        format!(
            "2026-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            1 + self.below(11),
            1 + self.below(28),
            self.below(24),
            self.below(60),
            self.below(60)
        )
    }
}

/// One user export object, shaped like Braze's, with the fields offerloop requests.
fn user(i: u64, rng: &mut SplitMix) -> serde_json::Value {
    let subscribe = ["opted_in", "subscribed", "unsubscribed"];
    let events = ["viewed_offer", "added_to_cart", "opened_app", "searched", "shared"];
    json!({
        "external_id": format!("cust-{i:08}"),
        "braze_id": format!("{:024x}", u128::from(rng.next()) << 32 | u128::from(rng.next() >> 32)),
        "country": rng.pick(&["FR", "DE", "US", "GB", "ES", "IT", "NL", "BR"]),
        "language": rng.pick(&["fr", "de", "en", "es", "it", "nl", "pt"]),
        "time_zone": rng.pick(&["Europe/Paris", "Europe/Berlin", "America/New_York", "Europe/London", "America/Sao_Paulo"]),
        "created_at": rng.date(),
        "total_revenue": rng.below(100_000) as f64 / 100.0,
        "email_subscribe": rng.pick(&subscribe),
        "push_subscribe": rng.pick(&subscribe),
        "random_bucket": rng.below(10_000),
        "custom_attributes": {
            "loyalty_tier": rng.pick(&["bronze", "silver", "gold", "platinum"]),
            "lifetime_orders": rng.below(120),
            "favourite_category": rng.pick(&["shoes", "outdoor", "kitchen", "books", "toys", "beauty"]),
            "last_store_visited": format!("store-{:04}", rng.below(2_000)),
            "app_version": format!("7.{}.{}", rng.below(20), rng.below(10)),
            "is_vip": rng.below(10) == 0,
            "churn_score": rng.below(1_000) as f64 / 1_000.0,
            "preferred_channel": rng.pick(&["email", "push", "sms"]),
            "interests": [rng.pick(&["running", "cooking", "travel"]), rng.pick(&["music", "gaming", "design"])],
        },
        "custom_events": (0..3).map(|k| json!({
            "name": events[(i as usize + k) % events.len()],
            "first": rng.date(),
            "last": rng.date(),
            "count": 1 + rng.below(400),
        })).collect::<Vec<_>>(),
        "purchases": (0..2).map(|_| json!({
            "name": format!("sku-{:05}", rng.below(50_000)),
            "first": rng.date(),
            "last": rng.date(),
            "count": 1 + rng.below(20),
        })).collect::<Vec<_>>(),
        "campaigns_received": (0..2).map(|k| json!({
            "name": format!("Winback wave {k}"),
            "api_campaign_id": format!("{:032x}", u128::from(rng.next())),
            "last_received": rng.date(),
            "engaged": {"opened_email": rng.below(2) == 0, "clicked_email": rng.below(5) == 0},
            "converted": rng.below(10) == 0,
            "in_control": false,
            "variation_name": "Variant 1",
        })).collect::<Vec<_>>(),
        "canvases_received": [{
            "name": "Onboarding",
            "api_canvas_id": format!("{:032x}", u128::from(rng.next())),
            "last_received_message": rng.date(),
            "last_entered": rng.date(),
            "in_control": false,
            "steps_received": [{"name": "Welcome", "api_canvas_step_id": "step-1", "last_received": rng.date()}],
        }],
    })
}

/// What a reading pass found, to check that nothing was skipped or optimised away.
#[derive(Default)]
struct Totals {
    users: u64,
    revenue: f64,
    events: u64,
}

impl Totals {
    fn add(&mut self, user: &offerloop_braze::ExportedUser) {
        self.users += 1;
        self.revenue += user.total_revenue.unwrap_or_default();
        self.events += user.custom_events.iter().map(|e| e.count).sum::<u64>();
    }

    fn report(&self, mode: &str, started: Instant, rss_before: u64) -> Result<()> {
        let elapsed = started.elapsed();
        println!(
            "{mode}: {} users in {:.2?} = {:.0} users/s; sum(total_revenue) = {:.2}, sum(custom_events.count) = {}",
            self.users,
            elapsed,
            self.users as f64 / elapsed.as_secs_f64(),
            self.revenue,
            self.events
        );
        println!(
            "{mode}: reading process peak RSS (VmHWM): {rss_before} KiB before reading, {} KiB after",
            peak_rss_kib()?
        );
        Ok(())
    }
}

/// Reads `file` with the `Iterator`; `fields` as offerloop would request them (`FIELDS`: campaigns and
/// canvases are then skipped unparsed), or every typed field, to show what the field filter saves.
fn read(file: &Path, fields: FieldSet) -> Result<()> {
    let mode = if fields == FieldSet::all() {
        "read-all (Iterator, every typed field)"
    } else {
        "read (Iterator)"
    };
    let rss_before = peak_rss_kib()?;
    let started = Instant::now();
    let mut totals = Totals::default();
    for user in ExportReader::new([PathBuf::from(file)]).fields(fields) {
        totals.add(&user?);
    }
    totals.report(mode, started, rss_before)
}

fn stream(file: &Path) -> Result<()> {
    use futures::StreamExt as _;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build()?;
    let rss_before = peak_rss_kib()?;
    let started = Instant::now();
    let totals = runtime.block_on(async {
        let mut totals = Totals::default();
        let mut users = ExportReader::new([PathBuf::from(file)])
            .fields_to_export(FIELDS)
            .into_stream();
        while let Some(user) = users.next().await {
            totals.add(&user?);
        }
        Ok::<_, offerloop_braze::export::ExportError>(totals)
    })?;
    totals.report("stream (into_stream)", started, rss_before)
}
