//! Benchmarks of the domain's hot paths: counting and encoding a 10^10 action space, per-customer
//! eligibility, holdout assignment and parsing a use-case file. Figures go to `docs/benchmarks.md`.

// Benchmark set-up may panic on a broken fixture.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use offerloop_domain::action::ExclusionRule;
use offerloop_domain::{
    ActionId, ActionSpace, ControlAction, CustomerId, Dimension, DimensionKind, Fraction, Holdout, Identifier,
    OptionSpec,
};

fn id(s: &str) -> Identifier {
    Identifier::new(s).unwrap()
}

fn ten_by_ten(rules: usize) -> ActionSpace {
    let dims = (0..10)
        .map(|d| {
            let options = (0..10).map(|o| OptionSpec::new(id(&format!("o{o}")))).collect();
            Dimension::new(id(&format!("d{d}")), DimensionKind::Custom, options).unwrap()
        })
        .collect();
    // Overlapping rules, each forbidding a pair of options in two dimensions.
    let rules = (0..rules)
        .map(|r| ExclusionRule {
            name: format!("r{r}"),
            conditions: BTreeMap::from([
                (id(&format!("d{}", r % 10)), vec![id(&format!("o{}", r % 10))]),
                (
                    id(&format!("d{}", (r + 3) % 10)),
                    vec![id(&format!("o{}", (r * 7) % 10)), id("o9")],
                ),
            ]),
        })
        .collect();
    ActionSpace::new(dims, rules, vec![]).unwrap()
}

fn bench(c: &mut Criterion) {
    let plain = ten_by_ten(0);
    let ruled = ten_by_ten(12);
    c.bench_function("action_space/count 10^10, 12 overlapping rules", |b| {
        b.iter(|| black_box(&ruled).count())
    });
    c.bench_function("action_space/decode+encode 10^10", |b| {
        let mut x = 0u64;
        b.iter(|| {
            x = x.wrapping_add(7_777_777_777) % plain.size();
            let a = plain.decode(ActionId(x)).unwrap();
            black_box(plain.encode(&a).unwrap())
        })
    });
    let holdout = Holdout::new(
        "bench",
        Fraction::new(0.1).unwrap(),
        Fraction::new(0.05).unwrap(),
        ControlAction::NoMessage,
    )
    .unwrap();
    let ids: Vec<CustomerId> = (0..1000)
        .map(|i| CustomerId::new(format!("customer-{i:08}")).unwrap())
        .collect();
    c.bench_function("holdout/assign 1000 customers", |b| {
        b.iter(|| {
            ids.iter()
                .filter(|c| holdout.assign(c) == offerloop_domain::Group::Control)
                .count()
        })
    });
    let source = include_str!("../../../examples/winback.toml");
    c.bench_function("config/parse winback.toml", |b| {
        b.iter(|| offerloop_domain::config::parse_use_case(black_box(source), "winback.toml").unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
