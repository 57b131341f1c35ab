//! Policy throughput: decisions/s (one core and all cores) and updates/s, for the bench harness's shape
//! (3 dimensions, 4 × 3 × 3 = 36 joint actions, 15 features) and for 10 dimensions × 10 options
//! (10^10 joint actions, decided without enumeration), for every contextual algorithm.
//!
//! Run: `cargo bench -p offerloop-policy --bench policy` (or `cargo xtask bench policy`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use offerloop_domain::config::parse_use_case;
use offerloop_domain::usecase::Algorithm;
use offerloop_domain::{ActionId, Customer, CustomerId, FeatureValue, UseCase};
use offerloop_policy::{DecisionRound, Feedback, Policy, Setup, build_with};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

/// The metric sections: a conversion, or revenue net of option costs (the hurdle model's shape).
const CONVERSION: &str = "[metric]\nkind = \"conversion\"\nevent = \"purchase\"\nattribution_window_days = 7\n\n";
const REVENUE: &str = "[metric]\nkind = \"revenue\"\nattribution_window_days = 7\nsubtract_option_cost = true\n\n";

/// A use case with `dims` dimensions of `options` options, 11 numeric and 4 categorical features.
fn use_case(dims: &[usize], metric: &str) -> UseCase {
    let mut toml = String::from(
        "[use_case]\nname = \"bench\"\nkind = \"custom\"\ntime_zone = \"UTC\"\n\n\
         [braze]\nendpoint = \"https://rest.iad-01.braze.com\"\napi_key_env = \"K\"\n\n\
         [audience]\nsegment_id = \"s\"\n\n[holdout]\nsalt = \"t\"\ncontrol_fraction = 0.0\ncontrol = \"no_message\"\n\n[activation]\ncampaign_id = \"camp-1\"\n\n\
         [policy]\nexploration_floor = 0.0\n\n",
    );
    for i in 0..11 {
        writeln!(
            toml,
            "[[feature]]\nname = \"n{i}\"\nfield = \"custom_attributes.n{i}\"\ntype = \"number\"\n"
        )
        .unwrap();
    }
    for i in 0..4 {
        writeln!(
            toml,
            "[[feature]]\nname = \"c{i}\"\nfield = \"custom_attributes.c{i}\"\ntype = \"category\"\n"
        )
        .unwrap();
    }
    for (d, &k) in dims.iter().enumerate() {
        writeln!(toml, "[[dimension]]\nname = \"d{d}\"\nkind = \"custom\"\n").unwrap();
        for o in 0..k {
            // Option costs (used by the revenue metric): a cent per option index.
            writeln!(
                toml,
                "  [[dimension.options]]\n  id = \"o{o}\"\n  cost = {}\n",
                f64::from(o as u32) * 0.01
            )
            .unwrap();
        }
    }
    toml.push_str(metric);
    parse_use_case(&toml, "bench.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn customers(n: usize, seed: u64) -> Vec<Customer> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let mut features: Vec<FeatureValue> = (0..11)
                .map(|_| FeatureValue::Number(rng.random::<f64>() * 10.0))
                .collect();
            features.extend((0..4).map(|_| FeatureValue::Category(format!("k{}", rng.random_range(0..5)))));
            Customer {
                id: CustomerId::new(format!("c{i}")).unwrap(),
                features,
                time_zone: None,
            }
        })
        .collect()
}

/// Logged feedback: uniform actions, a 5 % conversion rate; on the revenue metric a conversion is
/// worth 20–120 and every record pays 0.05 of option costs.
fn feedback(space_size: u64, customers: &[Customer], seed: u64, revenue: bool) -> Vec<Feedback> {
    let mut rng = StdRng::seed_from_u64(seed);
    customers
        .iter()
        .map(|c| Feedback {
            features: c.features.clone(),
            action: ActionId(rng.random_range(0..space_size)),
            propensity: 1.0 / 36.0,
            reward: {
                let converted = rng.random::<f64>() < 0.05;
                match (revenue, converted) {
                    (false, c) => f64::from(u8::from(c)),
                    (true, true) => 20.0 + 100.0 * rng.random::<f64>(),
                    (true, false) => -0.05,
                }
            },
            decided_at: Timestamp::UNIX_EPOCH,
            observed: 1.0,
        })
        .collect()
}

fn bench_shape(c: &mut Criterion, label: &str, dims: &[usize], metric: &str, algorithms: &[Algorithm]) {
    let uc = use_case(dims, metric);
    let revenue = metric == REVENUE;
    let size = uc.actions.size();
    let batch = customers(4096, 1);
    for &algorithm in algorithms {
        let mut policy = build_with(Setup::from_use_case(&uc).unwrap(), algorithm).unwrap();
        // A trained model: one batch of 20k feedback records.
        policy
            .update(&feedback(size, &customers(20_000, 2), 3, revenue))
            .unwrap();
        let round = DecisionRound::at(Timestamp::UNIX_EPOCH);
        policy.decide_batch(&batch[..1], &round).unwrap();
        let mut group = c.benchmark_group(format!("{label}/{algorithm:?}"));
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("decide", "one-core"), |b| {
            b.iter(|| {
                for customer in &batch {
                    black_box(policy.decide(customer, &round).unwrap());
                }
            });
        });
        group.bench_function(BenchmarkId::new("decide_batch", "all-cores"), |b| {
            b.iter(|| black_box(policy.decide_batch(&batch, &round).unwrap()));
        });
        let updates = feedback(size, &batch, 4, revenue);
        group.bench_function(BenchmarkId::new("update", "one-batch"), |b| {
            b.iter_batched(
                || build_with(Setup::from_use_case(&uc).unwrap(), algorithm).unwrap(),
                |mut fresh: Box<dyn Policy>| black_box(fresh.update(&updates).unwrap()),
                criterion::BatchSize::PerIteration,
            );
        });
        group.finish();
        let bytes = serde_json::to_vec(&policy.snapshot()).unwrap().len();
        eprintln!("{label}/{algorithm:?}: snapshot {:.1} KiB", bytes as f64 / 1024.0);
    }
}

fn policies(c: &mut Criterion) {
    let all = [Algorithm::LogisticTs, Algorithm::LinTs, Algorithm::LinUcb];
    bench_shape(c, "36-actions", &[4, 3, 3], CONVERSION, &all);
    // The bench harness's metric: revenue net of option costs, the default algorithm's hurdle model.
    bench_shape(c, "36-actions-revenue", &[4, 3, 3], REVENUE, &[Algorithm::LogisticTs]);
    bench_shape(c, "10x10", &[10; 10], CONVERSION, &all);
    bench_shape(c, "10x10-revenue", &[10; 10], REVENUE, &[Algorithm::LogisticTs]);
}

criterion_group!(benches, policies);
criterion_main!(benches);
