//! Worker processes (`offerloop worker`) sharing a day on the real PostgreSQL against the
//! simulator: every decision sent once (checked against the simulator's event log), workers killed
//! with SIGKILL at several points, a worker of another version refused.
//!
//! PostgreSQL: `OFFERLOOP_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`); each
//! test works in a schema of its own. `OFFERLOOP_TEST_POSTGRES=skip` skips them, saying so.

#![allow(clippy::print_stderr)] // a skip says so on stderr

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jiff::SignedDuration;
use offerloop_cli::demo_cmd;
use offerloop_sim::state::EventKind;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use offerloop_store::{BatchState, ShardState, Store, StoreLocation};

const CUSTOMERS: usize = 900;

/// The test database's URL, or `None` (said on stderr) when the tests are to be skipped.
fn postgres() -> Option<String> {
    match std::env::var("OFFERLOOP_TEST_POSTGRES") {
        Ok(v) if v == "skip" => {
            eprintln!("skipped: OFFERLOOP_TEST_POSTGRES=skip");
            None
        }
        Ok(v) => Some(v),
        Err(_) => Some("postgres://postgres@127.0.0.1:5432/test".to_owned()),
    }
}

/// A simulated Braze workspace, the use case pointed at it, and a fresh schema of the database.
struct Day {
    dir: tempfile::TempDir,
    sim: SimBraze,
    use_case: PathBuf,
    store: String,
    date: jiff::civil::Date,
}

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

async fn day(database: &str) -> Day {
    let mut scenario = Scenario::from_toml_str(demo_cmd::SCENARIO, None).unwrap();
    scenario.customers = CUSTOMERS;
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        export_delay: Duration::from_millis(20),
        export_dir: Some(dir.path().join("sim-exports")),
        ..SimConfig::default()
    };
    let sim = SimBraze::start(World::new(scenario).unwrap(), config).await.unwrap();
    // 01:00 in New York: the day's local send times are ahead.
    sim.advance_clock(SignedDuration::from_hours(6));
    let text = demo_cmd::demo_use_case_text(&sim.base_url());
    let use_case = dir.path().join("winback.toml");
    std::fs::write(&use_case, &text).unwrap();
    let parsed = offerloop_domain::config::parse_use_case(&text, "winback.toml").unwrap();
    let date = offerloop_cli::run_cmd::today(&parsed, sim.now()).unwrap();
    let schema = format!(
        "w_{}_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::SeqCst),
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0_u8) % 1_000_000_000
    );
    let separator = if database.contains('?') { '&' } else { '?' };
    Day {
        dir,
        sim,
        use_case,
        store: format!("{database}{separator}schema={schema}"),
        date,
    }
}

impl Day {
    /// `offerloop worker` for this day (2 batches in flight, leases of 5 s: a dead worker's shard is
    /// taken over soon, and a live one, renewing every 1.7 s, has slack on a loaded machine), its
    /// stderr piped; `pause_at` stops it at a point (`OFFERLOOP_PAUSE_AT`).
    fn worker(&self, use_case: &std::path::Path, pause_at: Option<&str>) -> Child {
        self.worker_sending(use_case, pause_at, 2)
    }

    /// [`Day::worker`] with `concurrency` batches in flight.
    fn worker_sending(&self, use_case: &std::path::Path, pause_at: Option<&str>, concurrency: usize) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_offerloop"));
        command
            .args(["worker", "--use-case"])
            .arg(use_case)
            .args(["--store", &self.store, "--date", &self.date.to_string()])
            .args([
                "--shard-size",
                "150",
                "--lease-ttl",
                "2s",
                "--concurrency",
                &concurrency.to_string(),
            ])
            .args(["--processes", "4", "--sim-clock", &self.sim.base_url()])
            .current_dir(self.dir.path())
            .env("OFFERLOOP_BRAZE_API_KEY", offerloop_sim::state::DEFAULT_API_KEY)
            .env_remove("OFFERLOOP_LOG")
            .env_remove("OFFERLOOP_PAUSE_AT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(point) = pause_at {
            command.env("OFFERLOOP_PAUSE_AT", point);
        }
        command.spawn().expect("the offerloop binary runs")
    }

    /// Waits for `child` to end; its exit status and its output (stdout then stderr).
    fn finish(child: Child) -> (bool, String) {
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// The store, opened from the test.
    fn open(&self) -> Arc<dyn Store> {
        offerloop_store::open(&StoreLocation::parse(&self.store, "OFFERLOOP_TEST_NO_PASSWORD").unwrap()).unwrap()
    }

    /// Sends per customer in the simulator's event log, once the day's schedules have fired.
    fn sends(&self) -> HashMap<String, usize> {
        self.sim.advance_clock(SignedDuration::from_hours(30));
        let ws = self.sim.state().lock();
        let mut out = HashMap::new();
        for e in ws.events.iter().filter(|e| e.kind == EventKind::Send) {
            *out.entry(e.external_user_id.clone()).or_default() += 1;
        }
        out
    }

    /// Checks the finished day: done, every shard done, every message decision sent exactly once
    /// or in a batch whose fate is unknown (reported, never resent), nobody sent twice. Returns the
    /// number of unknown batches.
    fn check_done(&self) -> usize {
        let store = self.open();
        let run = store
            .run("winback-lapsed-90d", self.date)
            .unwrap()
            .expect("the day's run");
        assert_eq!(run.phase, offerloop_store::RunPhase::Done);
        let shards = store.shards(run.id).unwrap();
        let plan = store.shard_plan(run.id).unwrap().expect("the day's shard plan");
        assert!(plan.customers > 300, "a real audience: {plan:?}");
        assert_eq!(shards.len() as u64, plan.customers.div_ceil(150));
        assert!(shards.iter().all(|s| s.state == ShardState::Done), "{shards:?}");
        let batches = store.batches(run.id).unwrap();
        let messages: std::collections::HashSet<String> = batches
            .iter()
            .filter(|b| b.target.is_message())
            .flat_map(|b| b.decision_ids.iter().cloned())
            .collect();
        let unknown: Vec<_> = batches.iter().filter(|b| b.state == BatchState::Unknown).collect();
        assert!(
            batches
                .iter()
                .all(|b| b.state == BatchState::Sent || b.state == BatchState::Unknown),
            "every batch has a final fate"
        );
        let in_unknown: std::collections::HashSet<String> = unknown
            .iter()
            .filter(|b| b.target.is_message())
            .flat_map(|b| b.decision_ids.iter().cloned())
            .collect();
        let decisions = store.decisions(run.id).unwrap();
        let messaged: Vec<_> = decisions.iter().filter(|d| messages.contains(&d.id)).collect();
        let summary = run.summary.clone().unwrap();
        assert_eq!(
            summary["messages"].as_u64().unwrap() as usize,
            messaged.len(),
            "{summary}"
        );
        let sends = self.sends();
        assert!(sends.values().all(|&n| n == 1), "somebody got two sends");
        for d in &messaged {
            let sent = sends.get(d.customer_id.as_str()).copied().unwrap_or(0);
            if in_unknown.contains(&d.id) {
                assert!(sent <= 1);
            } else {
                assert_eq!(sent, 1, "{} was decided a message and got none", d.customer_id.as_str());
            }
        }
        assert!(sends.len() <= messaged.len(), "nobody outside the decisions got a send");
        unknown.len()
    }
}

/// The shards a worker's output says it completed (`worker …: …, 3 shard(s) [0, 2, 5], …`).
fn shards_completed(output: &str) -> Vec<u32> {
    output
        .lines()
        .filter(|l| l.trim_start().starts_with("worker "))
        .filter_map(|l| l.split_once("shard(s) [").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once(']').map(|(list, _)| list))
        .flat_map(|list| {
            list.split(", ")
                .filter_map(|n| n.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Reads `child`'s stderr until it says it paused (returning the lines read) — or fails after a
/// minute.
fn wait_for_pause(child: &mut Child) -> Vec<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let paused = line.contains("offerloop: paused at");
            seen.push(line);
            if paused {
                let _ = tx.send(seen.clone());
            }
        }
        let _ = tx.send(seen);
    });
    let lines = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the worker paused within two minutes");
    assert!(
        lines.last().is_some_and(|l| l.contains("offerloop: paused at")),
        "the worker ended before its pause point: {lines:?}"
    );
    lines
}

async fn workers_finish_a_day(processes: usize) {
    let Some(database) = postgres() else { return };
    let day = day(&database).await;
    let children: Vec<Child> = (0..processes).map(|_| day.worker(&day.use_case, None)).collect();
    let outputs = tokio::task::spawn_blocking(move || children.into_iter().map(Day::finish).collect::<Vec<_>>())
        .await
        .unwrap();
    for (ok, text) in &outputs {
        assert!(ok, "a worker failed:\n{text}");
    }
    let planned = outputs.iter().filter(|(_, t)| t.contains("planned the day")).count();
    assert_eq!(planned, 1, "one worker planned the day");
    // Which process worked which shard depends on timing; that each shard was completed by exactly
    // one of them does not.
    let mut completed: Vec<u32> = outputs.iter().flat_map(|(_, t)| shards_completed(t)).collect();
    completed.sort_unstable();
    let store = day.open();
    let run = store.run("winback-lapsed-90d", day.date).unwrap().unwrap();
    let plan = store.shard_plan(run.id).unwrap().unwrap();
    assert_eq!(completed, (0..plan.shards).collect::<Vec<_>>(), "{outputs:?}");
    assert_eq!(day.check_done(), 0, "no batch of unknown fate without a crash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_send_every_decision_once() {
    workers_finish_a_day(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_worker_processes_send_every_decision_once() {
    workers_finish_a_day(4).await;
}

/// Kills a worker sending `concurrency` batches at a time with SIGKILL at `point`; two more finish
/// the day. Returns the day's unknown batches.
async fn a_worker_killed_at(point: &str, concurrency: usize) -> usize {
    let Some(database) = postgres() else { return 0 };
    let day = day(&database).await;
    let mut doomed = day.worker_sending(&day.use_case, Some(point), concurrency);
    wait_for_pause(&mut doomed);
    doomed.kill().unwrap(); // SIGKILL on Unix
    doomed.wait().unwrap();
    let store = day.open();
    let run = store.run("winback-lapsed-90d", day.date).unwrap().unwrap();
    let held: Vec<u32> = store
        .shards(run.id)
        .unwrap()
        .iter()
        .filter(|s| s.state == ShardState::Leased)
        .map(|s| s.shard)
        .collect();
    assert_eq!(held.len(), 1, "the dead worker held one shard");
    let survivors: Vec<Child> = (0..2).map(|_| day.worker(&day.use_case, None)).collect();
    let outputs = tokio::task::spawn_blocking(move || survivors.into_iter().map(Day::finish).collect::<Vec<_>>())
        .await
        .unwrap();
    for (ok, text) in &outputs {
        assert!(ok, "a worker failed:\n{text}");
    }
    assert!(
        outputs
            .iter()
            .any(|(_, t)| t.contains(&format!("took over [{}]", held[0]))),
        "a survivor took the dead worker's shard over: {outputs:?}"
    );
    day.check_done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_deciding_loses_nothing() {
    assert_eq!(a_worker_killed_at("decide-slice", 2).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_batches_loses_nothing_and_sends_nothing_twice() {
    // One batch at a time, so that nothing else is in flight when it stops after its second batch.
    assert_eq!(a_worker_killed_at("batch-sent:2", 1).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_inside_a_send_leaves_one_unknown_batch_never_resent() {
    let Some(_) = postgres() else { return };
    // The batch paused inside its send, and at most one more in flight beside it (`--concurrency 2`):
    // their fate is unknown, they are reported and never resent (`check_done`).
    let unknown = a_worker_killed_at("batch-sending:2", 2).await;
    assert!((1..=2).contains(&unknown), "{unknown} unknown batches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_another_version_of_the_use_case_refuses_to_join() {
    let Some(database) = postgres() else { return };
    let day = day(&database).await;
    // The day is planned (and paused right after its first decisions) by the shipped version.
    let mut planner = day.worker(&day.use_case, Some("decide-slice"));
    wait_for_pause(&mut planner);
    let changed = day.dir.path().join("winback-changed.toml");
    let text = std::fs::read_to_string(&day.use_case).unwrap();
    std::fs::write(
        &changed,
        text.replace("max_cost_per_run = 25000.0", "max_cost_per_run = 100.0"),
    )
    .unwrap();
    let (ok, text) = Day::finish(day.worker(&changed, None));
    planner.kill().unwrap();
    planner.wait().unwrap();
    assert!(!ok, "the changed worker must refuse:\n{text}");
    assert!(text.contains("is not the version the day was planned with"), "{text}");
}
