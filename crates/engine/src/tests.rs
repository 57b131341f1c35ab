//! Unit tests of [`crate::DailyRun`] with in-memory fakes: phases, resumption, the send ledger and
//! errors before anything is written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use offerloop_activation::{ActivationRequest, Activator, BatchOutcome, PlannedBatch};
use offerloop_braze::api::users::ExportIdsResponse;
use offerloop_braze::{BrazeError, Endpoint, MockBrazeApi};
use offerloop_domain::{Group, UseCase};
use offerloop_store::{BatchState, RunPhase, Store};

use crate::testing::{FakeActivator, FakeStore};
use crate::{DailyRun, ManualClock, NO_MESSAGE_VERSION, RunOptions};

pub(crate) const CUSTOMERS: usize = 240;

/// The example's algorithm, the prefix of its model versions (`logistic_ts/1`).
fn algorithm() -> &'static str {
    use_case().policy.algorithm.as_str()
}

pub(crate) fn use_case() -> UseCase {
    let text = include_str!("../../../examples/winback.toml")
        .replace("segment_id = \"3b4f5c2e-lapsed-90d\"", "ids_file = \"ids.txt\"");
    offerloop_domain::config::parse_use_case(&text, "winback.toml").unwrap()
}

fn profile(id: &str, i: usize) -> serde_json::Value {
    serde_json::json!({
        "external_id": id,
        "total_revenue": (i % 7) as f64 * 10.0,
        "country": if i.is_multiple_of(2) { "US" } else { "FR" },
        "push_subscribe": if i.is_multiple_of(3) { "opted_in" } else { "unsubscribed" },
        "time_zone": "America/New_York",
        "custom_attributes": {
            "days_since_last_purchase": 90 + i % 50,
            "order_count": i % 5,
            "membership": if i.is_multiple_of(4) { "basic" } else { "plus" },
            "sms_marketing_consent": i.is_multiple_of(2)
        }
    })
}

pub(crate) fn braze() -> MockBrazeApi {
    let mut api = MockBrazeApi::new();
    api.expect_export_ids().returning(|request| {
        let users = request
            .external_ids
            .iter()
            .map(|id| {
                let i: usize = id.trim_start_matches("cust-").parse().unwrap();
                serde_json::from_value(profile(id, i)).unwrap()
            })
            .collect();
        Ok(ExportIdsResponse {
            message: "success".into(),
            users,
            ..ExportIdsResponse::default()
        })
    });
    api
}

pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Arc<FakeStore>,
    pub(crate) clock: Arc<ManualClock>,
}

pub(crate) fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ids: String = (0..CUSTOMERS).map(|i| format!("cust-{i:06}\n")).collect();
    std::fs::write(dir.path().join("ids.txt"), ids).unwrap();
    World {
        dir,
        store: Arc::new(FakeStore::in_memory().unwrap()),
        clock: Arc::new(ManualClock::new("2026-01-05T12:00:00Z".parse().unwrap())),
    }
}

pub(crate) fn run(w: &World, api: MockBrazeApi, activator: Arc<dyn Activator>, date: Date) -> DailyRun {
    run_with(w, use_case(), api, activator, date)
}

fn run_with(w: &World, uc: UseCase, api: MockBrazeApi, activator: Arc<dyn Activator>, date: Date) -> DailyRun {
    DailyRun::builder(uc, date)
        .braze(Arc::new(api))
        .store(w.store.clone())
        .activator(activator)
        .clock(w.clock.clone())
        .options(RunOptions {
            base_dir: w.dir.path().to_path_buf(),
            export_dir: w.dir.path().join("exports"),
            chunk: 64,
            retry_delay: std::time::Duration::from_millis(1),
            ..RunOptions::default()
        })
        .build()
        .unwrap()
}

pub(crate) const DAY: Date = Date::constant(2026, 1, 5);

/// A builder of the default use case's run with the harness's options, for tests that change one.
fn builder(w: &World, activator: Arc<FakeActivator>, date: Date) -> crate::DailyRunBuilder {
    let options = run(w, braze(), activator.clone(), date).options().clone();
    DailyRun::builder(use_case(), date)
        .braze(Arc::new(braze()))
        .store(w.store.clone())
        .activator(activator)
        .clock(w.clock.clone())
        .options(options)
}

/// A run of the default use case with `early_learning_share` set to `share`.
fn run_sharing(w: &World, activator: Arc<FakeActivator>, date: Date, share: Option<f64>) -> DailyRun {
    let mut options = run(w, braze(), activator.clone(), date).options().clone();
    options.early_learning_share = share;
    builder(w, activator, date).options(options).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_send_every_batch_exactly_once() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    let mut options = run(&w, braze(), activator.clone(), DAY).options().clone();
    options.concurrency = 3;
    let summary = DailyRun::builder(use_case(), DAY)
        .braze(Arc::new(braze()))
        .store(w.store.clone())
        .activator(activator.clone())
        .clock(w.clock.clone())
        .options(options)
        .build()
        .unwrap()
        .execute()
        .await
        .unwrap();
    let batches = w.store.batches(summary.run_id).unwrap();
    assert!(batches.len() > 2, "enough batches to overlap: {}", batches.len());
    assert!(batches.iter().all(|b| b.state == BatchState::Sent));
    let mut executed = activator.executed.lock().unwrap().clone();
    assert_eq!(executed.len(), batches.len());
    executed.sort();
    executed.dedup();
    assert_eq!(executed.len(), batches.len(), "no batch executed twice");
}

#[tokio::test]
async fn a_fresh_run_decides_everyone_once_and_sends_every_batch() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    let summary = run(&w, braze(), activator.clone(), DAY).execute().await.unwrap();
    assert_eq!(summary.audience, CUSTOMERS as u64);
    assert_eq!(summary.decisions + summary.guardrails.total(), CUSTOMERS as u64);
    let g = &summary.groups;
    assert_eq!(g.treatment + g.control + g.random_control, summary.decisions);
    assert!(
        g.treatment > g.control && g.control > 0 && g.random_control > 0,
        "{g:?}"
    );
    let run_id = summary.run_id;
    let decisions = w.store.decisions(run_id).unwrap();
    assert_eq!(decisions.len() as u64, summary.decisions);
    for d in &decisions {
        let p = d.propensity.get();
        assert!(p > 0.0 && p <= 1.0);
        match d.group {
            Group::Control => assert_eq!(p, 1.0),
            Group::RandomControl => assert!(p < 0.1, "uniform over many actions: {p}"),
            Group::Treatment => assert!(d.policy_version.starts_with(algorithm())),
        }
        assert_ne!(
            d.policy_version, NO_MESSAGE_VERSION,
            "winback's control is business as usual"
        );
    }
    let batches = w.store.batches(run_id).unwrap();
    assert_eq!(batches.len(), summary.messages.div_ceil(50) as usize);
    assert!(batches.iter().all(|b| b.state == BatchState::Sent));
    assert_eq!(summary.batches.sent as usize, batches.len());
    assert_eq!(
        w.store.run("winback-lapsed-90d", DAY).unwrap().unwrap().phase,
        RunPhase::Done
    );
    assert!(w.store.latest_model("winback-lapsed-90d").unwrap().is_some());

    // Re-running the same date does nothing: no decision, no send.
    let again = run(&w, braze(), activator.clone(), DAY).execute().await.unwrap();
    assert_eq!(again, summary);
    assert_eq!(activator.executed.lock().unwrap().len(), batches.len());
}

#[tokio::test]
async fn rejected_batches_are_retried_and_unknown_ones_are_not() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    activator.script.lock().unwrap().extend([
        (
            0,
            BatchOutcome::Rejected {
                error: "429".into(),
                retryable: true,
            },
        ),
        (
            2,
            BatchOutcome::Unknown {
                error: "timeout".into(),
            },
        ),
        (
            3,
            BatchOutcome::Rejected {
                error: "400 bad".into(),
                retryable: false,
            },
        ),
    ]);
    let summary = run(&w, braze(), activator.clone(), DAY).execute().await.unwrap();
    let executed = activator.executed.lock().unwrap().clone();
    // Batch 0 twice (rejected, then sent), batch 1 once (unknown), batch 2 once (rejected for good).
    assert_eq!(executed[0], executed[1]);
    assert_eq!(summary.batches.retries, 1);
    assert_eq!(summary.batches.unknown, 1);
    assert_eq!(summary.batches.failed, 1);
    assert_eq!(executed.len() as u64, summary.batches.sent + 1 + 1 + 1);
    assert_eq!(w.store.unknown_batches("winback-lapsed-90d").unwrap().len(), 1);
}

/// An activator that "crashes" (panics) after applying its `k`-th batch, before the ledger hears
/// about it.
#[derive(Debug)]
struct Crashing {
    inner: FakeActivator,
    k: usize,
}

#[async_trait::async_trait]
impl Activator for Crashing {
    fn plan(
        &self,
        use_case: &UseCase,
        date: Date,
        requests: &[ActivationRequest],
    ) -> offerloop_activation::Result<Vec<PlannedBatch>> {
        self.inner.plan(use_case, date, requests)
    }
    async fn execute(&self, batch: &PlannedBatch) -> BatchOutcome {
        let outcome = self.inner.execute(batch).await;
        if self.inner.executed.lock().unwrap().len() == self.k {
            panic!("simulated crash after applying batch {}", batch.id);
        }
        outcome
    }
}

#[tokio::test]
async fn a_crash_mid_activation_resumes_without_sending_anything_twice() {
    let w = world();
    let crashing = Arc::new(Crashing {
        inner: FakeActivator::default(),
        k: 2,
    });
    let first = Arc::new(run(&w, braze(), crashing.clone(), DAY));
    let crashed = tokio::spawn(async move { first.execute().await }).await;
    assert!(crashed.is_err(), "the run crashed");
    let run_id = w.store.run("winback-lapsed-90d", DAY).unwrap().unwrap().id;
    assert_eq!(
        w.store.run("winback-lapsed-90d", DAY).unwrap().unwrap().phase,
        RunPhase::Decided
    );
    let decided = w.store.decisions(run_id).unwrap();

    let activator = Arc::new(FakeActivator::default());
    let summary = run(&w, braze(), activator.clone(), DAY).execute().await.unwrap();
    assert_eq!(summary.resumed_from, Some(RunPhase::Decided));
    assert_eq!(w.store.decisions(run_id).unwrap(), decided, "nothing re-decided");
    let before: Vec<String> = crashing.inner.executed.lock().unwrap().clone();
    let after: Vec<String> = activator.executed.lock().unwrap().clone();
    assert_eq!(before.len(), 2);
    assert!(after.iter().all(|b| !before.contains(b)), "no batch sent twice");
    assert_eq!(summary.batches.unknown, 1, "the batch in flight at the crash");
    assert_eq!(summary.batches.sent as usize, 1 + after.len());
    assert_eq!(
        summary.batches.planned + summary.batches.sending + summary.batches.failed,
        0
    );
}

#[tokio::test]
async fn a_missing_permission_is_named_and_nothing_is_written() {
    let w = world();
    let mut api = MockBrazeApi::new();
    api.expect_export_ids().returning(|_| {
        Err(BrazeError::MissingPermission {
            endpoint: Endpoint::UsersExportIds,
            permission: "users.export.ids",
            message: "Access Denied".into(),
        })
    });
    let err = run(&w, api, Arc::new(FakeActivator::default()), DAY)
        .execute()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("users.export.ids"), "{err}");
    assert_eq!(w.store.writes(), 0);
}

#[tokio::test]
async fn later_runs_learn_from_matured_rewards_and_respect_spacing() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    // Final rewards only: what is learned early is tested below.
    let first = run_sharing(&w, activator.clone(), DAY, None).execute().await.unwrap();
    assert!(first.messages > 0);
    // The next day: everybody messaged yesterday is within `min_days_between_messages = 3`.
    w.clock.set("2026-01-06T12:00:00Z".parse::<Timestamp>().unwrap());
    let second = run_sharing(&w, activator.clone(), Date::constant(2026, 1, 6), None)
        .execute()
        .await
        .unwrap();
    assert_eq!(second.guardrails.min_days_between, first.messages);
    // Fifteen days later, the first day's 14-day windows have closed: rewards are final and learned.
    w.clock.set("2026-01-20T12:00:00Z".parse::<Timestamp>().unwrap());
    let later = run_sharing(&w, activator, Date::constant(2026, 1, 20), None)
        .execute()
        .await
        .unwrap();
    assert_eq!(later.rewards_final, first.decisions + second.decisions);
    assert_eq!(later.rewards_learned, first.decisions + second.decisions);
    assert_ne!(later.model_version, first.model_version);
}

#[tokio::test]
async fn pending_rewards_are_learned_once_when_enough_of_them_is_observed() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    let share = Some(0.7);
    let first = run_sharing(&w, activator.clone(), DAY, share).execute().await.unwrap();
    // A day later, less than 70 % of a reward has been observed by the prior delay model (no outcome
    // yet: an exponential delay with a mean of a day from the send, which was at 09:00 in New York at
    // the earliest, 22 hours before): nothing is learned.
    w.clock.set("2026-01-06T12:00:00Z".parse::<Timestamp>().unwrap());
    let second = run_sharing(&w, activator.clone(), Date::constant(2026, 1, 6), share)
        .execute()
        .await
        .unwrap();
    assert_eq!((second.rewards_learned, second.rewards_learned_early), (0, 0));
    let delay = second.delay.as_ref().expect("the delay model is summarised");
    assert_eq!(delay.records, 0, "no reward has closed yet: the prior");
    // Two days after the first run (36 to 46 hours after the sends), the first day's rewards are
    // learned, early.
    w.clock.set("2026-01-07T12:00:00Z".parse::<Timestamp>().unwrap());
    let third = run_sharing(&w, activator.clone(), Date::constant(2026, 1, 7), share)
        .execute()
        .await
        .unwrap();
    assert!(first.decisions > 0);
    assert_eq!(third.rewards_learned, first.decisions);
    assert_eq!(third.rewards_learned_early, first.decisions);
    // Learned early: their final rewards are still to be judged by the drift detectors.
    assert_eq!(w.store.unmonitored().unwrap().len() as u64, first.decisions);
    assert_ne!(third.model_version, first.model_version);
    // When their windows close they are not learned again; the later days' rewards are.
    w.clock.set("2026-01-21T12:00:00Z".parse::<Timestamp>().unwrap());
    let later = run_sharing(&w, activator, Date::constant(2026, 1, 21), share)
        .execute()
        .await
        .unwrap();
    assert_eq!(later.rewards_learned, second.decisions + third.decisions);
    assert!(w.store.matured_feedback("winback-lapsed-90d").unwrap().is_empty());
    assert!(w.store.pending_feedback("winback-lapsed-90d").unwrap().is_empty());
    // Their final rewards were judged by the drift detectors, once: nothing is left to judge.
    assert!(w.store.unmonitored().unwrap().is_empty());
    assert!(w.store.unmonitored_feedback("winback-lapsed-90d").unwrap().is_empty());
}

#[tokio::test]
async fn a_crash_after_learning_early_marks_the_same_decisions_on_resumption() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    // The first day's messages go out at 09:00, 12:30 and 19:00 in New York (14:00, 17:30 and 00:00
    // UTC). At 03:00 UTC two days later the prior delay model says 79 %, 75 % and 68 % of their
    // rewards are observed: with a share of 0.75 the evening ones wait.
    let share = Some(0.75);
    let first = run_sharing(&w, activator.clone(), DAY, share).execute().await.unwrap();
    w.clock.set("2026-01-07T03:00:00Z".parse::<Timestamp>().unwrap());
    let date = Date::constant(2026, 1, 7);
    *w.store.fail_next_mark_learned.lock().unwrap() = true;
    assert!(run_sharing(&w, activator.clone(), date, share).execute().await.is_err());
    let saved = w.store.latest_model("winback-lapsed-90d").unwrap().unwrap();
    assert_eq!(
        saved.version,
        format!("{}/1+run2", algorithm()),
        "learned early and saved before the crash"
    );
    // Resumed later in the day, when the evening messages would qualify too: the selection depends
    // on the run's start only, so they are neither learned nor marked.
    w.clock.set("2026-01-07T20:00:00Z".parse::<Timestamp>().unwrap());
    let resumed = run_sharing(&w, activator, date, share).execute().await.unwrap();
    assert_eq!(resumed.rewards_learned, 0, "not learned again");
    assert_eq!(resumed.model_version, format!("{}/1", algorithm()));
    let pending = w.store.pending_feedback("winback-lapsed-90d").unwrap();
    let evening: Timestamp = "2026-01-06T00:00:00Z".parse().unwrap();
    assert!(!pending.is_empty() && (pending.len() as u64) < first.decisions);
    assert!(
        pending.iter().all(|r| r.decision.planned_send_at == Some(evening)),
        "only the evening messages are still to learn"
    );
}

#[tokio::test]
async fn without_early_learning_only_matured_rewards_are_learned() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    let first = run_sharing(&w, activator.clone(), DAY, None).execute().await.unwrap();
    w.clock.set("2026-01-08T12:00:00Z".parse::<Timestamp>().unwrap());
    let later = run_sharing(&w, activator, Date::constant(2026, 1, 8), None)
        .execute()
        .await
        .unwrap();
    assert!(first.decisions > 0);
    assert_eq!((later.rewards_learned, later.rewards_learned_early), (0, 0));
    assert_eq!(later.delay, None);
}

#[tokio::test]
async fn profile_deltas_become_outcomes_attributed_to_the_decision_before_them() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let w = world();
    let bought = Arc::new(AtomicBool::new(false));
    let api = |bought: Arc<AtomicBool>| {
        let mut api = MockBrazeApi::new();
        api.expect_export_ids().returning(move |request| {
            let users = request
                .external_ids
                .iter()
                .map(|id| {
                    let i: usize = id.trim_start_matches("cust-").parse().unwrap();
                    let mut p = profile(id, i);
                    if i == 1 && bought.load(Ordering::SeqCst) {
                        p["purchases"] =
                            serde_json::json!([{"name": "winback-order", "count": 1, "last": "2026-01-06T01:00:00Z"}]);
                        p["total_revenue"] = serde_json::json!(p["total_revenue"].as_f64().unwrap() + 50.0);
                    }
                    serde_json::from_value(p).unwrap()
                })
                .collect();
            Ok(ExportIdsResponse {
                message: "success".into(),
                users,
                ..ExportIdsResponse::default()
            })
        });
        api
    };
    let activator = Arc::new(FakeActivator::default());
    let first = run(&w, api(bought.clone()), activator.clone(), DAY)
        .execute()
        .await
        .unwrap();
    let decision = w
        .store
        .decisions(first.run_id)
        .unwrap()
        .into_iter()
        .find(|d| d.customer_id.as_str() == "cust-000001")
        .expect("customer 1 was decided");
    bought.store(true, Ordering::SeqCst);
    w.clock.set("2026-01-06T12:00:00Z".parse::<Timestamp>().unwrap());
    let second = run(&w, api(bought), activator, Date::constant(2026, 1, 6))
        .execute()
        .await
        .unwrap();
    assert_eq!(second.outcomes_new, 1);
    let from: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let rewards = w
        .store
        .rewards_between("winback-lapsed-90d", from, "2026-01-07T00:00:00Z".parse().unwrap())
        .unwrap();
    let reward = rewards.iter().find(|r| r.decision_id == decision.id).unwrap();
    assert_eq!(reward.attributed_outcomes, 1);
    assert!((reward.value - (50.0 - decision.cost)).abs() < 1e-9, "{reward:?}");
    assert_eq!(reward.status, offerloop_domain::RewardStatus::Pending);
    assert!(
        rewards
            .iter()
            .filter(|r| r.decision_id != decision.id)
            .all(|r| r.value == -first_cost(&w, &r.decision_id))
    );
}

fn first_cost(w: &World, decision_id: &str) -> f64 {
    w.store
        .decisions(1)
        .unwrap()
        .into_iter()
        .find(|d| d.id == decision_id)
        .map_or(0.0, |d| d.cost)
}

#[tokio::test]
async fn a_crash_after_saving_the_model_does_not_learn_twice() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    let first = run(&w, braze(), activator.clone(), DAY).execute().await.unwrap();
    w.clock.set("2026-01-20T12:00:00Z".parse::<Timestamp>().unwrap());
    let later = Date::constant(2026, 1, 20);
    *w.store.fail_next_mark_learned.lock().unwrap() = true;
    assert!(run(&w, braze(), activator.clone(), later).execute().await.is_err());
    let saved = w.store.latest_model("winback-lapsed-90d").unwrap().unwrap();
    assert_eq!(
        saved.version,
        format!("{}/1+run2", algorithm()),
        "learned once and saved before the crash"
    );
    let resumed = run(&w, braze(), activator, later).execute().await.unwrap();
    assert_eq!(resumed.resumed_from, Some(RunPhase::Outcomes));
    assert_eq!(resumed.rewards_learned, 0, "not learned again");
    assert_eq!(resumed.model_version, format!("{}/1", algorithm()));
    assert_eq!(w.store.latest_model("winback-lapsed-90d").unwrap().unwrap(), saved);
    assert!(w.store.matured_feedback("winback-lapsed-90d").unwrap().is_empty());
    assert!(first.decisions > 0);
}

#[tokio::test]
async fn holdout_propensities_are_exact() {
    let w = world();
    let summary = run(&w, braze(), Arc::new(FakeActivator::default()), DAY)
        .execute()
        .await
        .unwrap();
    let uc = use_case();
    let setup = offerloop_policy::Setup::from_use_case(&uc).unwrap();
    let bau = uc.actions.encode(setup.business_as_usual().unwrap()).unwrap();
    let audience = w.store.audience(summary.run_id).unwrap();
    let mut seen_random = 0;
    for d in w.store.decisions(summary.run_id).unwrap() {
        assert_eq!(d.group, uc.holdout.assign(&d.customer_id), "groups are the salted hash");
        let row = audience
            .iter()
            .find(|r| r.customer_id == d.customer_id.as_str())
            .unwrap();
        let customer = offerloop_domain::Customer {
            id: d.customer_id.clone(),
            features: crate::AudienceFeatures::from_json(&row.features).unwrap().values,
            time_zone: None,
        };
        let eligible = offerloop_policy::sampling::Eligible::of(&uc.actions, &customer).unwrap();
        assert!(eligible.contains_id(d.action), "{d:?}");
        match d.group {
            Group::Control => assert_eq!((d.action, d.propensity.get()), (bau, 1.0)),
            Group::RandomControl => {
                seen_random += 1;
                assert_eq!(d.propensity.get(), 1.0 / eligible.count() as f64);
            }
            Group::Treatment => {}
        }
    }
    assert!(seen_random > 0);
}

#[tokio::test]
async fn quiet_hours_drop_evening_sends_and_send_times_are_planned_locally() {
    let w = world();
    let mut uc = use_case();
    uc.guardrails.quiet_hours = Some((
        offerloop_domain::LocalTime::parse("18:00").unwrap(),
        offerloop_domain::LocalTime::parse("08:00").unwrap(),
    ));
    let summary = run_with(&w, uc.clone(), braze(), Arc::new(FakeActivator::default()), DAY)
        .execute()
        .await
        .unwrap();
    assert!(summary.guardrails.quiet_hours > 0, "{:?}", summary.guardrails);
    let send_time = uc.actions.dimension_index("send_time").unwrap();
    let evening = uc.actions.dimensions()[send_time].option_index("evening").unwrap();
    for d in w.store.decisions(summary.run_id).unwrap() {
        assert_ne!(uc.actions.option_of(d.action, send_time), evening);
        let planned = d.planned_send_at.expect("every winback message has a send time");
        let local = jiff::tz::TimeZone::get("America/New_York")
            .unwrap()
            .to_datetime(planned);
        assert_eq!(local.date(), DAY);
        assert!([9, 12].contains(&local.hour()), "{local}");
    }
}

/// `n` customers of [`use_case`], read from [`profile`]s as an export would give them.
fn customers(uc: &UseCase, n: usize) -> Vec<offerloop_domain::Customer> {
    (0..n)
        .map(|i| {
            let id = format!("cust-{i:06}");
            let user: offerloop_braze::ExportedUser = serde_json::from_value(profile(&id, i)).unwrap();
            crate::customer_from_export(&uc.features, &user).unwrap().customer
        })
        .collect()
}

#[test]
fn a_paused_treatment_gets_business_as_usual() {
    let uc = use_case();
    let setup = offerloop_policy::Setup::from_use_case(&uc).unwrap();
    let policy = offerloop_policy::build(&uc).unwrap();
    let customers = customers(&uc, 100);
    let history = crate::MessageHistory::default();
    let at: Timestamp = "2026-01-05T12:00:00Z".parse().unwrap();
    let ctx = |paused| crate::decide::DecideContext {
        use_case: &uc,
        setup: &setup,
        policy: policy.as_ref(),
        round: offerloop_policy::DecisionRound::at(at),
        date: DAY,
        history: &history,
        chunk: 16,
        paused,
        not_before: at,
    };
    let bar = crate::progress::Silent;
    let bau = uc.actions.encode(setup.business_as_usual().unwrap()).unwrap();
    let paused = crate::decide::Decider::with_budget(ctx(true), crate::Budget::default())
        .decide(&customers, &bar)
        .unwrap();
    let treated: Vec<_> = paused.iter().filter(|d| d.group == Group::Treatment).collect();
    assert!(!treated.is_empty());
    assert!(
        treated
            .iter()
            .all(|d| d.policy_version == crate::PAUSED_VERSION && d.action == bau && d.propensity.get() == 1.0)
    );
    let normal = crate::decide::Decider::with_budget(ctx(false), crate::Budget::default())
        .decide(&customers, &bar)
        .unwrap();
    assert!(
        normal
            .iter()
            .filter(|d| d.group == Group::Treatment)
            .all(|d| d.policy_version.starts_with(algorithm()))
    );
    // Deterministic: the same inputs decide the same.
    assert_eq!(
        crate::decide::Decider::with_budget(ctx(false), crate::Budget::default())
            .decide(&customers, &bar)
            .unwrap(),
        normal
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    /// Deciding an audience slice by slice (as a run does, to bound memory) gives exactly the
    /// decisions and guardrail counts of one call for everyone, budgets included.
    #[test]
    fn deciding_slice_by_slice_equals_deciding_at_once(slice in 1usize..90, max_sends in 5u64..60) {
        let mut uc = use_case();
        uc.guardrails.max_sends_per_run = Some(max_sends);
        let setup = offerloop_policy::Setup::from_use_case(&uc).unwrap();
        let policy = offerloop_policy::build(&uc).unwrap();
        let customers = customers(&uc, 120);
        let history = crate::MessageHistory::default();
        let ctx = crate::decide::DecideContext {
            use_case: &uc,
            setup: &setup,
            policy: policy.as_ref(),
            round: offerloop_policy::DecisionRound::at("2026-01-05T12:00:00Z".parse().unwrap()),
            date: DAY,
            history: &history,
            chunk: 16,
            paused: false,
            not_before: "2026-01-05T12:00:00Z".parse().unwrap(),
        };
        let bar = crate::progress::Silent;
        let mut whole = crate::decide::Decider::with_budget(ctx, crate::Budget::default());
        let all = whole.decide(&customers, &bar).unwrap();
        let mut sliced = crate::decide::Decider::with_budget(ctx, crate::Budget::default());
        let mut parts = Vec::new();
        for chunk in customers.chunks(slice) {
            parts.extend(sliced.decide(chunk, &bar).unwrap());
        }
        proptest::prop_assert_eq!(&parts, &all);
        proptest::prop_assert_eq!(sliced.guardrails(), whole.guardrails());
        proptest::prop_assert!(whole.guardrails().total() > 0, "the budget must bind for the test to mean anything");
    }
}

/// Plans with the real planner (profile attributes as deltas), executes like [`FakeActivator`].
#[derive(Debug, Default)]
struct Planning {
    inner: FakeActivator,
}

#[async_trait::async_trait]
impl Activator for Planning {
    fn plan(
        &self,
        use_case: &UseCase,
        date: Date,
        requests: &[ActivationRequest],
    ) -> offerloop_activation::Result<Vec<PlannedBatch>> {
        offerloop_activation::plan::plan(use_case, date, requests)
    }
    async fn execute(&self, batch: &PlannedBatch) -> BatchOutcome {
        self.inner.execute(batch).await
    }
}

/// Winback without the spacing guardrails, so the same customers get a message two days in a row.
fn daily_use_case() -> UseCase {
    let mut uc = use_case();
    uc.guardrails.min_days_between_messages = None;
    uc.guardrails.max_messages_per_customer_per_week = None;
    uc
}

/// The `/users/track` attribute objects of a run, by customer, and the decision ids they carry.
fn attribute_writes(w: &World, run_id: i64) -> (std::collections::BTreeMap<String, serde_json::Value>, Vec<String>) {
    let mut objects = std::collections::BTreeMap::new();
    let mut decisions = Vec::new();
    for batch in w.store.batches(run_id).unwrap() {
        if batch.target != offerloop_store::BatchTarget::UsersTrack {
            continue;
        }
        decisions.extend(batch.decision_ids.clone());
        let request: serde_json::Value = serde_json::from_str(&batch.request).unwrap();
        for object in request["attributes"].as_array().unwrap() {
            let customer = object["external_id"].as_str().unwrap().to_owned();
            assert!(
                objects.insert(customer, object.clone()).is_none(),
                "one object per customer"
            );
        }
    }
    (objects, decisions)
}

/// The attribute object a customer should get: the dimensions whose option differs from
/// `previous` (all without one), `None` when nothing changed.
fn expected_object(
    uc: &UseCase,
    customer: &str,
    options: &[u32],
    previous: Option<&[u32]>,
) -> Option<serde_json::Value> {
    let mut object = serde_json::json!({"external_id": customer, "_update_existing_only": true});
    let mut changed = false;
    for (d, dimension) in uc.actions.dimensions().iter().enumerate() {
        if previous.is_some_and(|p| p[d] == options[d]) {
            continue;
        }
        changed = true;
        object[format!("offerloop_{}", dimension.name)] =
            serde_json::json!(dimension.options[options[d] as usize].id.to_string());
    }
    changed.then_some(object)
}

/// Checks the `/users/track` writes of `run_id` against `previous` (a customer's options known to
/// be on the profile) and counts the customers with no write, a partial one and a full one.
fn check_deltas(
    w: &World,
    uc: &UseCase,
    run_id: i64,
    messages: u64,
    previous: impl Fn(&str) -> Option<Vec<u32>>,
) -> (usize, usize, usize) {
    let (objects, decisions) = attribute_writes(w, run_id);
    let (mut unchanged, mut partial, mut full) = (0, 0, 0);
    let mut expected_decisions = Vec::new();
    let stored = w.store.decisions(run_id).unwrap();
    assert_eq!(stored.len() as u64, messages, "every winback decision is a message");
    for d in stored {
        let customer = d.customer_id.as_str();
        let options = uc.actions.decode(d.action).unwrap().0;
        let expected = expected_object(uc, customer, &options, previous(customer).as_deref());
        assert_eq!(objects.get(customer), expected.as_ref(), "{customer}");
        match &expected {
            None => unchanged += 1,
            Some(object) if object.as_object().unwrap().len() == 2 + uc.actions.dimensions().len() => full += 1,
            Some(_) => partial += 1,
        }
        if expected.is_some() {
            expected_decisions.push(d.id.clone());
        }
    }
    expected_decisions.sort();
    assert_eq!(
        decisions, expected_decisions,
        "a decision is in a track batch iff it has a delta"
    );
    (unchanged, partial, full)
}

/// Each message decision's options in `run_id`, by customer.
fn options_by_customer(w: &World, uc: &UseCase, run_id: i64) -> HashMap<String, (String, Vec<u32>)> {
    w.store
        .decisions(run_id)
        .unwrap()
        .into_iter()
        .map(|d| {
            let options = uc.actions.decode(d.action).unwrap().0;
            (d.customer_id.as_str().to_owned(), (d.id, options))
        })
        .collect()
}

/// The decisions of `run_id`'s `/users/track` batches, in plan order, after checking their fates.
fn track_batches(w: &World, run_id: i64, states: &[BatchState]) -> Vec<Vec<String>> {
    let batches: Vec<_> = w
        .store
        .batches(run_id)
        .unwrap()
        .into_iter()
        .filter(|b| b.target == offerloop_store::BatchTarget::UsersTrack)
        .collect();
    assert!(batches.len() >= states.len());
    for (batch, state) in batches.iter().zip(states) {
        assert_eq!(batch.state, *state);
    }
    batches.into_iter().map(|b| b.decision_ids).collect()
}

#[tokio::test]
async fn later_days_write_only_the_attributes_that_changed_since_a_sent_write() {
    let w = world();
    let uc = daily_use_case();
    let activator = Arc::new(Planning::default());
    // Scripts the fate of the `k`-th batch of the next run (its `/users/track` requests come first).
    let script = |k: usize, outcome: BatchOutcome| {
        let next = activator.inner.executed.lock().unwrap().len();
        activator.inner.script.lock().unwrap().insert(next + k, outcome);
    };
    let day = |n: i8| Date::constant(2026, 1, n);
    let at = |n: i8| {
        w.clock
            .set(format!("2026-01-{n:02}T12:00:00Z").parse::<Timestamp>().unwrap());
    };
    let latest = |run_id: i64| -> HashMap<String, (String, Vec<u32>)> { options_by_customer(&w, &uc, run_id) };

    // Day 1: no history, every attribute.
    let first = run_with(&w, uc.clone(), braze(), activator.clone(), day(5))
        .execute()
        .await
        .unwrap();
    let (unchanged, partial, full) = check_deltas(&w, &uc, first.run_id, first.messages, |_| None);
    assert_eq!((unchanged, partial, full as u64), (0, 0, first.messages));
    let day1 = latest(first.run_id);
    let after_day1 = |customer: &str| day1.get(customer).map(|(_, options)| options.clone());

    // Day 2: deltas against day 1. Its first track batch's fate is unknown (maybe applied), its
    // second is certainly rejected.
    at(6);
    script(
        0,
        BatchOutcome::Unknown {
            error: "timeout".into(),
        },
    );
    script(
        1,
        BatchOutcome::Rejected {
            error: "400 bad".into(),
            retryable: false,
        },
    );
    let second = run_with(&w, uc.clone(), braze(), activator.clone(), day(6))
        .execute()
        .await
        .unwrap();
    let (unchanged, partial, _) = check_deltas(&w, &uc, second.run_id, second.messages, after_day1);
    assert!(unchanged > 0 && partial > 0, "{unchanged} {partial}");
    let track = track_batches(&w, second.run_id, &[BatchState::Unknown, BatchState::Failed]);
    let (unknown, rejected) = (&track[0], &track[1]);
    let day2 = latest(second.run_id);

    // Day 3: against day 2, except for the customers whose day-2 write may or may not have landed
    // (everything), and those whose day-2 write was rejected (against day 1 again).
    at(7);
    let third = run_with(&w, uc.clone(), braze(), activator.clone(), day(7))
        .execute()
        .await
        .unwrap();
    let after_day2 = |customer: &str| match day2.get(customer) {
        Some((id, _)) if unknown.contains(id) => None,
        Some((id, _)) if rejected.contains(id) => after_day1(customer),
        Some((_, options)) => Some(options.clone()),
        None => after_day1(customer),
    };
    let (unchanged, partial, full) = check_deltas(&w, &uc, third.run_id, third.messages, after_day2);
    assert!(
        unchanged > 0 && partial > 0 && full >= unknown.len(),
        "{unchanged} {partial} {full}"
    );
    assert_eq!((third.batches.unknown, third.batches.failed), (0, 0));
    let day3 = latest(third.run_id);
    // Both rules changed what some customer got (else the check above proves nothing about them).
    let mattered = |ids: &[String], rule: &dyn Fn(&str) -> Option<Vec<u32>>| {
        day2.iter()
            .filter(|(_, (id, _))| ids.contains(id))
            .filter(|(c, (_, options))| {
                day3.get(*c).is_some_and(|(_, now)| {
                    expected_object(&uc, c, now, rule(c).as_deref()) != expected_object(&uc, c, now, Some(options))
                })
            })
            .count()
    };
    assert!(mattered(unknown, &|_| None) > 0);
    assert!(mattered(rejected, &after_day1) > 0);

    // Day 4: day 3's batches were all sent (its batches are not even read), so its decisions are what
    // the profiles hold, those that wrote nothing included.
    at(8);
    let fourth = run_with(&w, uc.clone(), braze(), activator.clone(), day(8))
        .execute()
        .await
        .unwrap();
    let (unchanged, partial, _) = check_deltas(&w, &uc, fourth.run_id, fourth.messages, |c| {
        day3.get(c).map(|(_, options)| options.clone())
    });
    assert!(unchanged > 0 && partial > 0, "{unchanged} {partial}");
}

#[tokio::test]
async fn after_a_configuration_change_every_attribute_is_written_again() {
    let w = world();
    let uc = daily_use_case();
    let activator = Arc::new(Planning::default());
    run_with(&w, uc.clone(), braze(), activator.clone(), DAY)
        .execute()
        .await
        .unwrap();
    w.clock.set("2026-01-06T12:00:00Z".parse::<Timestamp>().unwrap());
    let mut changed = uc.clone();
    changed.guardrails.max_cost_per_run = Some(24_000.0);
    let second = run_with(&w, changed, braze(), activator, Date::constant(2026, 1, 6))
        .execute()
        .await
        .unwrap();
    let (day2, _) = attribute_writes(&w, second.run_id);
    assert_eq!(day2.len() as u64, second.messages);
    assert!(
        day2.values()
            .all(|o| o.as_object().unwrap().len() == 2 + uc.actions.dimensions().len())
    );
}

/// A run at 15:00 UTC (10:00 in New York): the 09:00 sends have passed, so they are decided and
/// scheduled for 09:00 the next day; 12:30 and 19:00 stay on the run date. Actions and propensities
/// are those of the same run without the move.
#[tokio::test]
async fn a_send_time_that_has_passed_is_planned_and_scheduled_for_the_next_day() {
    let w = world();
    w.clock.set("2026-01-05T15:00:00Z".parse().unwrap());
    let mut uc = use_case();
    uc.activation.write_profile_attributes = false;
    let summary = run_with(&w, uc.clone(), braze(), Arc::new(Planning::default()), DAY)
        .execute()
        .await
        .unwrap();
    let send_time = uc.actions.dimension_index("send_time").unwrap();
    let morning = uc.actions.dimensions()[send_time].option_index("morning").unwrap();
    let new_york = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let decisions = w.store.decisions(summary.run_id).unwrap();
    let mut moved = 0;
    for d in decisions.iter().filter(|d| crate::is_message(&uc, d)) {
        let planned = d.planned_send_at.unwrap();
        assert!(
            planned >= crate::Clock::now(w.clock.as_ref()),
            "{} planned in the past: {planned}",
            d.id
        );
        let local = new_york.to_datetime(planned);
        if uc.actions.option_of(d.action, send_time) == morning {
            assert_eq!((local.date(), local.hour()), (DAY.tomorrow().unwrap(), 9), "{local}");
            moved += 1;
        } else {
            assert_eq!(local.date(), DAY, "{local}");
        }
    }
    assert!(moved > 0, "some customers chose the morning");
    // Activation schedules exactly the decided instants.
    for batch in w.store.batches(summary.run_id).unwrap() {
        let request: serde_json::Value = serde_json::from_str(&batch.request).unwrap();
        let time = request["schedule"]["time"].as_str().unwrap();
        for id in &batch.decision_ids {
            let d = decisions.iter().find(|d| &d.id == id).unwrap();
            let local = new_york.to_datetime(d.planned_send_at.unwrap());
            assert_eq!(time, local.strftime("%Y-%m-%dT%H:%M:%S").to_string());
        }
    }
    assert_eq!(summary.deliveries, crate::DeliveryCounts::default(), "nothing late");

    // The same audience decided at 12:00 UTC (07:00 local, nothing passed): the same actions and
    // propensities, only the morning sends' dates differ.
    let early = world();
    let again = run_with(&early, uc.clone(), braze(), Arc::new(Planning::default()), DAY)
        .execute()
        .await
        .unwrap();
    let strip = |ds: Vec<offerloop_domain::Decision>| -> Vec<_> {
        ds.into_iter()
            .map(|d| (d.id, d.action, d.propensity, d.group))
            .collect()
    };
    assert_eq!(
        strip(early.store.decisions(again.run_id).unwrap()),
        strip(decisions.clone())
    );
}

/// Executes like [`FakeActivator`] after moving the clock: the request reaches Braze late.
#[derive(Debug)]
struct Slow {
    inner: FakeActivator,
    clock: Arc<ManualClock>,
    by: jiff::SignedDuration,
}

#[async_trait::async_trait]
impl Activator for Slow {
    fn plan(
        &self,
        use_case: &UseCase,
        date: Date,
        requests: &[ActivationRequest],
    ) -> offerloop_activation::Result<Vec<PlannedBatch>> {
        self.inner.plan(use_case, date, requests)
    }
    async fn execute(&self, batch: &PlannedBatch) -> BatchOutcome {
        self.clock.advance(self.by);
        self.inner.execute(batch).await
    }
}

#[tokio::test]
async fn rejected_and_late_messages_are_counted_and_not_learned() {
    use offerloop_store::DeliveryStatus;
    // Batch 0 certainly rejected: its 50 messages never go out.
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    activator.script.lock().unwrap().insert(
        0,
        BatchOutcome::Rejected {
            error: "400 invalid campaign".into(),
            retryable: false,
        },
    );
    let summary = run(&w, braze(), activator.clone(), DAY).execute().await.unwrap();
    assert_eq!(summary.deliveries.rejected, 50);
    assert_eq!(summary.deliveries.not_delivered(), 50);
    let batch0 = w.store.batches(summary.run_id).unwrap().remove(0);
    let learned = w.store.learned().unwrap();
    assert!(batch0.decision_ids.iter().all(|id| learned.contains(id)));
    assert_eq!(learned.len(), 50, "only the rejected are consumed without learning");
    let records = w
        .store
        .deliveries_between("winback-lapsed-90d", Timestamp::MIN, Timestamp::MAX)
        .unwrap();
    assert!(records.iter().all(|r| r.status == DeliveryStatus::Rejected));

    // Every request reaches Braze 13 hours after the decisions: later than every send time today.
    let w = world();
    let slow = Arc::new(Slow {
        inner: FakeActivator::default(),
        clock: w.clock.clone(),
        by: jiff::SignedDuration::from_hours(13),
    });
    let summary = run(&w, braze(), slow, DAY).execute().await.unwrap();
    assert!(summary.messages > 0);
    assert_eq!(summary.deliveries.late, summary.messages);
    assert_eq!(w.store.learned().unwrap().len() as u64, summary.messages);
}

/// A Currents-like source with message events only.
#[derive(Debug, Default)]
struct Events(std::sync::Mutex<Vec<crate::MessageEvent>>);

#[async_trait::async_trait]
impl crate::OutcomeSource for Events {
    async fn outcomes(
        &self,
        _use_case: &UseCase,
        _from: Timestamp,
        _to: Timestamp,
    ) -> crate::Result<Vec<offerloop_domain::Outcome>> {
        Ok(Vec::new())
    }
    async fn message_events(
        &self,
        _use_case: &UseCase,
        from: Timestamp,
        to: Timestamp,
    ) -> crate::Result<Option<Vec<crate::MessageEvent>>> {
        let events = self.0.lock().unwrap();
        Ok(Some(
            events
                .iter()
                .filter(|e| e.occurred_at >= from && e.occurred_at < to)
                .cloned()
                .collect(),
        ))
    }
}

/// Day 1 decides; the feed then shows every third customer's message bounced, every third never
/// sent, the rest delivered. Day 2 finds them: the never-sent ones are not learned, the bounced are.
#[tokio::test]
async fn the_feed_finds_messages_never_sent_and_bounces() {
    use crate::MessageEventKind;
    use offerloop_domain::dimension::MessageTarget;
    let w = world();
    let uc = use_case();
    let events = Arc::new(Events::default());
    let run_on = |date: Date| {
        DailyRun::builder(uc.clone(), date)
            .braze(Arc::new(braze()))
            .store(w.store.clone())
            .activator(Arc::new(FakeActivator::default()))
            .clock(w.clock.clone())
            .outcome_source(events.clone())
            .options(RunOptions {
                base_dir: w.dir.path().to_path_buf(),
                export_dir: w.dir.path().join("exports"),
                // Final rewards only: "not learned yet" must mean "not consumed".
                early_learning_share: None,
                ..RunOptions::default()
            })
            .build()
            .unwrap()
    };
    let first = run_on(DAY).execute().await.unwrap();
    let messages: Vec<offerloop_domain::Decision> = w
        .store
        .decisions(first.run_id)
        .unwrap()
        .into_iter()
        .filter(|d| crate::is_message(&uc, d))
        .collect();
    let (mut bounced, mut never) = (Vec::new(), Vec::new());
    for (i, d) in messages.iter().enumerate() {
        let (campaign_id, canvas_id) = match crate::delivery::message_target(&uc, d).unwrap() {
            MessageTarget::Campaign(id) => (Some(id), None),
            MessageTarget::Canvas(id) => (None, Some(id)),
        };
        let event = |kind| crate::MessageEvent {
            customer_id: d.customer_id.clone(),
            kind,
            occurred_at: d.planned_send_at.unwrap(),
            channel: "email".into(),
            ids: offerloop_currents::MessageIds {
                campaign_id: campaign_id.clone(),
                canvas_id: canvas_id.clone(),
                ..Default::default()
            },
        };
        let mut feed = events.0.lock().unwrap();
        match i % 3 {
            0 => never.push(d.id.clone()),
            1 => {
                feed.push(event(MessageEventKind::Sent));
                feed.push(event(MessageEventKind::Failed));
                bounced.push(d.id.clone());
            }
            _ => {
                feed.push(event(MessageEventKind::Sent));
                feed.push(event(MessageEventKind::Delivered));
            }
        }
    }
    assert!(!never.is_empty() && !bounced.is_empty());
    // The next day, after every message's send time plus the 12-hour grace.
    w.clock.set("2026-01-06T13:00:00Z".parse().unwrap());
    let second = run_on(DAY.tomorrow().unwrap()).execute().await.unwrap();
    assert_eq!(second.deliveries.not_sent, never.len() as u64);
    assert_eq!(second.deliveries.bounced, bounced.len() as u64);
    let learned = w.store.learned().unwrap();
    assert!(
        never.iter().all(|id| learned.contains(id)),
        "never sent: consumed without learning"
    );
    assert!(
        bounced.iter().all(|id| !learned.contains(id)),
        "bounced: learned when final"
    );
    // The findings are made once: a third day finds nothing new about day 1.
    w.clock.set("2026-01-07T13:00:00Z".parse().unwrap());
    let third = run_on(DAY.tomorrow().unwrap().tomorrow().unwrap())
        .execute()
        .await
        .unwrap();
    assert_eq!(third.deliveries.not_sent + third.deliveries.bounced, 0);
}

/// Early learning never learns a message that did not go out: it waits until the delivery is judged
/// (`delivery_grace` after the send), and the outcomes phase consumes the undelivered ones first.
#[tokio::test]
async fn early_learning_skips_messages_never_sent() {
    use crate::MessageEventKind;
    use offerloop_domain::dimension::MessageTarget;
    let w = world();
    let uc = use_case();
    let events = Arc::new(Events::default());
    let run_on = |date: Date| {
        DailyRun::builder(uc.clone(), date)
            .braze(Arc::new(braze()))
            .store(w.store.clone())
            .activator(Arc::new(FakeActivator::default()))
            .clock(w.clock.clone())
            .outcome_source(events.clone())
            .options(RunOptions {
                base_dir: w.dir.path().to_path_buf(),
                export_dir: w.dir.path().join("exports"),
                // Anything observed at all is enough: only the delivery decides.
                early_learning_share: Some(0.01),
                ..RunOptions::default()
            })
            .build()
            .unwrap()
    };
    let first = run_on(DAY).execute().await.unwrap();
    let decisions = w.store.decisions(first.run_id).unwrap();
    assert!(decisions.iter().all(|d| crate::is_message(&uc, d)));
    let mut never = 0;
    for (i, d) in decisions.iter().enumerate() {
        if i % 4 == 0 {
            never += 1;
            continue;
        }
        let (campaign_id, canvas_id) = match crate::delivery::message_target(&uc, d).unwrap() {
            MessageTarget::Campaign(id) => (Some(id), None),
            MessageTarget::Canvas(id) => (None, Some(id)),
        };
        events.0.lock().unwrap().push(crate::MessageEvent {
            customer_id: d.customer_id.clone(),
            kind: MessageEventKind::Delivered,
            occurred_at: d.planned_send_at.unwrap(),
            channel: "email".into(),
            ids: offerloop_currents::MessageIds {
                campaign_id,
                canvas_id,
                ..Default::default()
            },
        });
    }
    // 11 hours after the last send (00:00 UTC): within its grace, nothing of it is learned yet.
    w.clock.set("2026-01-06T11:00:00Z".parse().unwrap());
    let early = run_on(DAY.tomorrow().unwrap()).execute().await.unwrap();
    assert!(early.rewards_learned > 0 && early.rewards_learned < first.decisions - never);
    // A day later every delivery is judged: the delivered ones are learned, the others consumed.
    w.clock.set("2026-01-07T11:00:00Z".parse().unwrap());
    let later = run_on(DAY.tomorrow().unwrap().tomorrow().unwrap())
        .execute()
        .await
        .unwrap();
    assert_eq!(early.rewards_learned + later.rewards_learned, first.decisions - never);
    assert_eq!(early.deliveries.not_sent + later.deliveries.not_sent, never);
}

/// The production path for outcomes: a Braze Currents bucket. A purchase Braze wrote there after
/// day 1's decision (and written again in a later file, as at-least-once delivery does) becomes that
/// decision's reward on day 2, once; the files read are checkpointed in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_in_a_currents_bucket_becomes_the_reward_of_the_decision_before_it() {
    use crate::CurrentsFeed;
    use crate::testing::{PURCHASE, currents_key, purchase, write_avro};

    let w = world();
    let bucket = w.dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let url = format!("file://{}", bucket.display());
    let with_feed = |date: Date, activator: Arc<FakeActivator>| {
        builder(&w, activator, date)
            .outcome_source(Arc::new(CurrentsFeed::open(&url, w.store.clone()).unwrap()))
            .build()
            .unwrap()
    };
    let activator = Arc::new(FakeActivator::default());
    let first = with_feed(DAY, activator.clone()).execute().await.unwrap();
    let decision = w
        .store
        .decisions(first.run_id)
        .unwrap()
        .into_iter()
        .find(|d| d.group == Group::Treatment && d.policy_version != NO_MESSAGE_VERSION)
        .expect("a treated customer");
    let customer = decision.customer_id.as_str().to_owned();
    let bought_at = i32::try_from(decision.decided_at.as_second() + 7_200).unwrap();
    let record = || purchase("evt-1", Some(&customer), bought_at, 50.0);
    write_avro(
        &bucket,
        &currents_key("users.behaviors.Purchase", "2026-01-05-14", 1),
        PURCHASE,
        vec![record()],
    );
    write_avro(
        &bucket,
        &currents_key("users.behaviors.Purchase", "2026-01-05-15", 2),
        PURCHASE,
        vec![record()],
    );

    w.clock.set("2026-01-06T12:00:00Z".parse::<Timestamp>().unwrap());
    let second = with_feed(Date::constant(2026, 1, 6), activator)
        .execute()
        .await
        .unwrap();
    assert_eq!(second.outcomes_new, 1, "the duplicate is one outcome");
    let rewards = w
        .store
        .rewards_between(
            "winback-lapsed-90d",
            "2026-01-01T00:00:00Z".parse().unwrap(),
            "2026-01-07T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    let reward = rewards.iter().find(|r| r.decision_id == decision.id).unwrap();
    assert_eq!(reward.attributed_outcomes, 1);
    assert!((reward.value - (50.0 - decision.cost)).abs() < 1e-9, "{reward:?}");
    assert_eq!(w.store.feed_keys_read("winback-lapsed-90d", &url).unwrap().len(), 2);
}

/// What a two-day programme left, for the crash matrix.
struct TwoDays {
    /// Batches the activator executed on day 2, in order (a batch executed twice would be a double send).
    executed: Vec<String>,
    /// Day 2's batches by id, with their fate.
    fates: HashMap<String, BatchState>,
    /// The model saved at the end (version, snapshot).
    model: (String, serde_json::Value),
    /// Decisions marked learned.
    learned: HashSet<String>,
    /// Store writes day 2 made.
    writes: usize,
}

/// Day 1 runs; on day 2, when its rewards have matured, the store fails every write from the
/// `crash_at`-th of the day on — as a process killed there leaves it — and a fresh run resumes it.
async fn two_days(crash_at: Option<usize>) -> TwoDays {
    let w = world();
    let day1 = Arc::new(FakeActivator::default());
    run(&w, braze(), day1, DAY).execute().await.unwrap();
    w.clock.set("2026-01-20T12:00:00Z".parse::<Timestamp>().unwrap());
    let later = Date::constant(2026, 1, 20);
    let activator = Arc::new(FakeActivator::default());
    let before = w.store.writes();
    if let Some(n) = crash_at {
        *w.store.fail_writes_from.lock().unwrap() = Some(before + n);
        let crashed = run(&w, braze(), activator.clone(), later).execute().await;
        assert!(crashed.is_err(), "write {n} of day 2 failed, so did the run");
        *w.store.fail_writes_from.lock().unwrap() = None;
    }
    let summary = run(&w, braze(), activator.clone(), later).execute().await.unwrap();
    let model = w.store.latest_model("winback-lapsed-90d").unwrap().unwrap();
    TwoDays {
        executed: activator.executed.lock().unwrap().clone(),
        fates: w
            .store
            .batch_states(summary.run_id)
            .unwrap()
            .into_iter()
            .map(|b| (b.id, b.state))
            .collect(),
        model: (model.version, model.snapshot),
        learned: w.store.learned().unwrap(),
        writes: w.store.writes() - before,
    }
}

/// Issue 17, the crash matrix: a day killed at every store write in turn — each phase boundary and
/// every ledger move of activation — and resumed, ends where an uninterrupted day ends: every batch
/// sent exactly once (or, when the kill fell between Braze's answer and the ledger, reported unknown
/// and never resent), every matured reward learned once, the same model saved.
#[tokio::test]
async fn a_day_killed_at_any_store_write_resumes_to_the_uninterrupted_result() {
    let reference = two_days(None).await;
    assert!(reference.fates.values().all(|s| *s == BatchState::Sent));
    assert!(!reference.learned.is_empty(), "day 2 learns day 1's rewards");
    assert!(reference.writes > 20, "{} writes: every phase writes", reference.writes);
    let expected: HashSet<&String> = reference.executed.iter().collect();
    for n in 1..=reference.writes {
        let got = two_days(Some(n)).await;
        let executed: HashSet<&String> = got.executed.iter().collect();
        assert_eq!(
            executed.len(),
            got.executed.len(),
            "crash at write {n}: a batch was sent twice"
        );
        assert_eq!(executed, expected, "crash at write {n}: the same batches were sent");
        let unknown = got.fates.values().filter(|s| **s == BatchState::Unknown).count();
        assert!(unknown <= 1, "crash at write {n}: {unknown} unknown batches");
        assert!(
            got.fates
                .values()
                .all(|s| matches!(s, BatchState::Sent | BatchState::Unknown)),
            "crash at write {n}: {:?}",
            got.fates
        );
        assert_eq!(got.learned, reference.learned, "crash at write {n}: learned once each");
        assert_eq!(got.model, reference.model, "crash at write {n}: the same model");
    }
}

/// A reward outside its metric's range (here a revenue of 10^13, beyond any plausible amount, as a
/// corrupt feed might yield) is not learned and does not stop the day: it is counted, consumed, and
/// the rest is learned.
#[tokio::test]
async fn an_implausible_reward_is_refused_alone_and_the_day_still_learns() {
    let w = world();
    let activator = Arc::new(FakeActivator::default());
    let first = run(&w, braze(), activator.clone(), DAY).execute().await.unwrap();
    let treated = w
        .store
        .decisions(first.run_id)
        .unwrap()
        .into_iter()
        .find(|d| d.policy_version != crate::NO_MESSAGE_VERSION && crate::is_message(&use_case(), d))
        .unwrap();
    w.store
        .upsert_rewards(&[offerloop_domain::Reward {
            decision_id: treated.id.clone(),
            value: 1e13,
            status: offerloop_domain::RewardStatus::Final,
            attributed_outcomes: 5,
        }])
        .unwrap();
    w.clock.set("2026-01-20T12:00:00Z".parse::<Timestamp>().unwrap());
    let later = run(&w, braze(), activator, Date::constant(2026, 1, 20))
        .execute()
        .await
        .unwrap();
    assert_eq!(later.rewards_refused, 1);
    assert!(later.rewards_learned > 0, "the other rewards are learned");
    assert!(
        w.store.learned().unwrap().contains(&treated.id),
        "consumed, never to block a run again"
    );
}
