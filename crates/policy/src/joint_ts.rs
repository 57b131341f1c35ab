//! Non-contextual Thompson sampling over *joint* actions ([`BetaBernoulliTs`], [`GaussianTs`]), like
//! Braze's Intelligent Selection: one posterior per joint action, no customer features (except
//! eligibility).
//!
//! # Models
//! Each joint action `a` keeps discounted sufficient statistics: a weight `n_a`, a sum `S_a` and a sum
//! of squares `Q_a` of its rewards.
//! - [`BetaBernoulliTs`]: the reward, **clamped to `[0, 1]`**, counts as a fractional success (`r`
//!   successes and `1 − r` failures), so 0/1 metrics are exact Bernoulli updates and a value in between
//!   is a partial success. The posterior is `Beta(1 + S_a, 1 + n_a − S_a)` (uniform prior). Meant for
//!   binary metrics (conversion, retention, renewal); on amounts the clamp makes every reward above 1 a
//!   plain success, so [`BetaBernoulliTs::new`] logs a warning for them.
//! - [`GaussianTs`]: Normal rewards with unknown mean per action and one **pooled** unknown variance.
//!   The variance is estimated from the within-action spread of every action,
//!   `σ² = (Σ_a (Q_a − S_a²/n_a) + v₀) / (Σ_a n_a + 1)`, with one pseudo-observation of the total
//!   reward variance `v₀` (1 until rewards differ) so it never collapses to 0. Each action's mean has
//!   the prior "one pseudo-observation at the grand mean `μ̄`", so its posterior is
//!   `N((S_a + μ̄) / (n_a + 1), σ² / (n_a + 1))`. Pooling the variance lets rarely played actions borrow
//!   the noise level of the others (per-action variances of a few observations are unusable).
//!
//! # Forgetting
//! Each [`Policy::update`] first multiplies every statistic by the forgetting factor `γ`
//! (`PolicySettings::forgetting_factor`) and then adds the batch, so evidence `k` updates old weighs
//! `γ^k` (exponential discounting; `γ = 1` forgets nothing). Both models then follow a change of the
//! best action within about `1 / (1 − γ)` updates.
//!
//! # Decisions with exact propensities
//! For a round, `S` ([`JointTsConfig::samples`], default [`DEFAULT_SAMPLES`]) posterior draws of every
//! joint action's mean are made once, from [`round_rng`]`(seed, round, ·)`. The policy is defined as:
//! *pick one of the `S` draws uniformly at random (the customer's own generator,
//! [`customer_rng`]) and play its best action among the customer's eligible ones* — mixed with the
//! exploration floor `f` (with probability `f·n`, `n` eligible actions, a uniformly random eligible
//! action). The logged propensity is therefore **exact** for what is
//! actually done:
//!
//! ```text
//! π(a) = (1 − f·n) · #{draws whose best eligible action is a} / S + f
//! ```
//!
//! As an estimate of the idealised Thompson probability `p` (with infinitely many draws) it has the
//! Monte-Carlo standard error `√(p(1 − p)/S)`, at most 0.031 for `S = 256`; that error is only a
//! difference between two policies, not a bias of the logged propensities. Actions no draw picks have
//! exactly the floor `f` (0 without a floor: they are not played in that round). Because the posterior
//! does not depend on the customer, the best action of every draw is computed once per round and
//! eligibility mask and shared by every customer with that mask (a small cache; [`Policy::update`]
//! clears it).
//!
//! # Large spaces
//! One posterior per joint action learns nothing useful when there are thousands of them (most would
//! never be tried), and the per-draw maximisation enumerates actions. So a space with more than
//! [`ENUMERATION_LIMIT`] allowed joint actions is **refused** with [`Error::Setting`]; the contextual
//! policies (`lin_ts`, `logistic_ts`), which share strength across options, handle such spaces.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use offerloop_domain::usecase::Algorithm;
use offerloop_domain::{ActionId, Customer, JointAction};
use rand::RngExt as _;
use rand_distr::{Beta, Distribution as _, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::floor::Floor;
use crate::policy::{DecisionRound, Explanation, Feedback, Policy, PolicyDecision, UpdateReport};
use crate::sampling::{ENUMERATION_LIMIT, Eligible, check_features, customer_rng, round_rng};
use crate::setup::Setup;
use crate::snapshot::Snapshot;
use crate::{Error, Result};

/// Posterior draws per round by default.
pub const DEFAULT_SAMPLES: usize = 256;

/// Most posterior draws per round accepted.
pub const MAX_SAMPLES: usize = 65_536;

/// Rounds whose draws are kept (off-policy evaluation may ask about a few rounds in turn).
const CACHED_ROUNDS: usize = 4;

/// Stream ids for [`customer_rng`] / [`round_rng`].
const DECIDE_STREAM: u64 = 0;
const SAMPLE_STREAM: u64 = 1;

/// Tunables of the joint Thompson-sampling policies (saved in snapshots).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JointTsConfig {
    /// Posterior draws per round: the propensity resolution is `1 / samples`.
    pub samples: usize,
}

impl Default for JointTsConfig {
    fn default() -> Self {
        Self {
            samples: DEFAULT_SAMPLES,
        }
    }
}

/// The posterior family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
    Beta,
    Gaussian,
}

/// Discounted sufficient statistics of one joint action's rewards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Stats {
    /// Weight (discounted count).
    n: f64,
    /// Discounted sum of rewards (clamped to `[0, 1]` for the Beta model).
    sum: f64,
    /// Discounted sum of squared rewards.
    sum_sq: f64,
}

impl Stats {
    fn add(&mut self, other: &Self) {
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    fn scale(&mut self, gamma: f64) {
        self.n *= gamma;
        self.sum *= gamma;
        self.sum_sq *= gamma;
    }
}

/// What a snapshot holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TsState {
    config: JointTsConfig,
    stats: BTreeMap<ActionId, Stats>,
    updates: u64,
}

/// The posterior of every action's mean, in the form the draws need.
#[derive(Clone, Copy, Debug)]
enum Posterior {
    Beta { alpha: f64, beta: f64 },
    Normal { mean: f64, sd: f64 },
}

/// The draws of one round and the choices derived from them.
#[derive(Debug)]
struct RoundDraws {
    round: u64,
    /// `samples × actions`, row-major by draw.
    draws: Vec<f64>,
    /// Per eligibility mask (flattened option bits): the best eligible action of every draw.
    choices: HashMap<Vec<u64>, Arc<Choices>>,
}

/// For one eligibility mask in one round: the best eligible action of every draw.
#[derive(Debug)]
struct Choices {
    best: Vec<ActionId>,
    hits: BTreeMap<ActionId, u32>,
}

impl Choices {
    /// The base probability of `action`: the share of draws whose best it is.
    fn share(&self, action: ActionId) -> f64 {
        f64::from(self.hits.get(&action).copied().unwrap_or(0)) / self.best.len().max(1) as f64
    }
}

/// The shared machinery of the two joint Thompson-sampling policies.
struct JointTs {
    setup: Setup,
    model: Model,
    floor: Floor,
    state: TsState,
    /// Every allowed joint action, in id order (at most [`ENUMERATION_LIMIT`]).
    actions: Vec<(ActionId, JointAction)>,
    cache: Mutex<Vec<RoundDraws>>,
}

impl std::fmt::Debug for JointTs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JointTs")
            .field("model", &self.model)
            .field("samples", &self.state.config.samples)
            .field("observed_actions", &self.state.stats.len())
            .field("updates", &self.state.updates)
            .finish_non_exhaustive()
    }
}

impl JointTs {
    fn new(setup: Setup, model: Model, config: JointTsConfig) -> Result<Self> {
        let state = TsState {
            config,
            stats: BTreeMap::new(),
            updates: 0,
        };
        Self::from_state(setup, model, state)
    }

    fn from_state(setup: Setup, model: Model, state: TsState) -> Result<Self> {
        let count = setup.space().count();
        if count > ENUMERATION_LIMIT {
            return Err(Error::Setting {
                setting: "algorithm",
                message: format!(
                    "{} keeps one posterior per joint action and allows at most {ENUMERATION_LIMIT} of them; \
                     this space has {count}: use lin_ts or logistic_ts, which share what they learn across options",
                    name(model)
                ),
            });
        }
        let samples = state.config.samples;
        if !(1..=MAX_SAMPLES).contains(&samples) {
            return Err(Error::Setting {
                setting: "samples",
                message: format!("{samples} posterior draws per round: must be in [1, {MAX_SAMPLES}]"),
            });
        }
        let actions = setup.space().iter().collect();
        Ok(Self {
            floor: Floor::of(&setup),
            setup,
            model,
            state,
            actions,
            cache: Mutex::new(Vec::new()),
        })
    }

    fn restore(setup: Setup, model: Model, state: serde_json::Value) -> Result<Self> {
        let state: TsState =
            serde_json::from_value(state).map_err(|e| Error::Snapshot(format!("{} state: {e}", name(model))))?;
        Self::from_state(setup, model, state)
    }

    fn stats(&self, id: ActionId) -> Stats {
        self.state.stats.get(&id).copied().unwrap_or_default()
    }

    /// Grand mean and pooled variance of the Gaussian model; see the [module docs](self).
    fn pooled(&self) -> (f64, f64) {
        let mut total = Stats::default();
        let mut within = 0.0;
        for s in self.state.stats.values() {
            total.add(s);
            if s.n > 0.0 {
                within += (s.sum_sq - s.sum * s.sum / s.n).max(0.0);
            }
        }
        if total.n <= 0.0 {
            return (0.0, 1.0);
        }
        let mean = total.sum / total.n;
        let spread = (total.sum_sq / total.n - mean * mean).max(0.0);
        let prior = if spread > 0.0 { spread } else { 1.0 };
        (mean, (within + prior) / (total.n + 1.0))
    }

    fn posteriors(&self) -> Vec<Posterior> {
        let pooled = (self.model == Model::Gaussian).then(|| self.pooled());
        self.actions
            .iter()
            .map(|(id, _)| {
                let s = self.stats(*id);
                match pooled {
                    None => Posterior::Beta {
                        alpha: 1.0 + s.sum.max(0.0),
                        beta: 1.0 + (s.n - s.sum).max(0.0),
                    },
                    Some((grand, variance)) => Posterior::Normal {
                        mean: (s.sum + grand) / (s.n + 1.0),
                        sd: (variance / (s.n + 1.0)).sqrt(),
                    },
                }
            })
            .collect()
    }

    /// The posterior draws of `round`: `samples × actions`.
    fn draw(&self, round: u64) -> Vec<f64> {
        let posteriors = self.posteriors();
        let betas: Vec<Option<Beta<f64>>> = posteriors
            .iter()
            .map(|p| match *p {
                Posterior::Beta { alpha, beta } => Beta::new(alpha, beta).ok(),
                Posterior::Normal { .. } => None,
            })
            .collect();
        let mut rng = round_rng(self.setup.settings().seed, round, SAMPLE_STREAM);
        let mut draws = Vec::with_capacity(self.state.config.samples * posteriors.len());
        for _ in 0..self.state.config.samples {
            for (p, beta) in posteriors.iter().zip(&betas) {
                let value = match (*p, beta) {
                    (Posterior::Beta { .. }, Some(b)) => b.sample(&mut rng),
                    // Parameters a Beta refuses cannot arise (both ≥ 1); its mean keeps the policy total.
                    (Posterior::Beta { alpha, beta }, None) => alpha / (alpha + beta),
                    (Posterior::Normal { mean, sd }, _) => {
                        let z: f64 = rng.sample(StandardNormal);
                        mean + sd * z
                    }
                };
                draws.push(value);
            }
        }
        draws
    }

    /// The best eligible action of every draw of `round` for this customer's mask (cached).
    fn choices(&self, eligible: &Eligible<'_>, round: u64) -> Arc<Choices> {
        let key = mask_key(eligible);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let position = match cache.iter().position(|r| r.round == round) {
            Some(p) => p,
            None => {
                if cache.len() >= CACHED_ROUNDS {
                    cache.remove(0);
                }
                cache.push(RoundDraws {
                    round,
                    draws: self.draw(round),
                    choices: HashMap::new(),
                });
                cache.len() - 1
            }
        };
        let Some(entry) = cache.get_mut(position) else {
            // Unreachable: the position was just found or pushed.
            return Arc::new(self.best_per_draw(eligible, &self.draw(round)));
        };
        if let Some(choices) = entry.choices.get(&key) {
            return Arc::clone(choices);
        }
        let choices = Arc::new(self.best_per_draw(eligible, &entry.draws));
        entry.choices.insert(key, Arc::clone(&choices));
        choices
    }

    fn best_per_draw(&self, eligible: &Eligible<'_>, draws: &[f64]) -> Choices {
        let candidates: Vec<usize> = self
            .actions
            .iter()
            .enumerate()
            .filter(|(_, (_, a))| eligible.contains(a))
            .map(|(k, _)| k)
            .collect();
        let width = self.actions.len();
        let mut best = Vec::with_capacity(self.state.config.samples);
        let mut hits = BTreeMap::new();
        for row in draws.chunks_exact(width.max(1)) {
            let mut top: Option<(usize, f64)> = None;
            for &k in &candidates {
                let v = row.get(k).copied().unwrap_or(f64::NEG_INFINITY);
                // Strictly greater: ties go to the lowest id.
                if top.is_none_or(|(_, t)| v > t) {
                    top = Some((k, v));
                }
            }
            // `Eligible::of` guarantees at least one candidate; the fallback keeps the policy total.
            let id = top.and_then(|(k, _)| self.actions.get(k)).map_or_else(
                || eligible.sample_uniform(&mut customer_rng(0, 0, 0, "empty")).0,
                |(id, _)| *id,
            );
            best.push(id);
            *hits.entry(id).or_insert(0u32) += 1;
        }
        Choices { best, hits }
    }

    /// Posterior mean of pooled statistics (an option's marginal score).
    fn score(&self, s: &Stats, grand: f64) -> f64 {
        match self.model {
            Model::Beta => (1.0 + s.sum) / (2.0 + s.n),
            Model::Gaussian => (s.sum + grand) / (s.n + 1.0),
        }
    }
}

/// The eligibility mask as flattened option bits (the cache key).
fn mask_key(eligible: &Eligible<'_>) -> Vec<u64> {
    let mut key = Vec::new();
    let mut bit = 0usize;
    for (d, dim) in eligible.space().dimensions().iter().enumerate() {
        for o in 0..dim.options.len() {
            if bit.is_multiple_of(64) {
                key.push(0);
            }
            if eligible.mask().allows(d, o)
                && let Some(word) = key.last_mut()
            {
                *word |= 1 << (bit % 64);
            }
            bit += 1;
        }
    }
    key
}

fn name(model: Model) -> &'static str {
    match model {
        Model::Beta => "beta_ts",
        Model::Gaussian => "gaussian_ts",
    }
}

impl Policy for JointTs {
    fn model_version(&self) -> String {
        format!("{}/{}", name(self.model), self.state.updates)
    }

    fn decide(&self, customer: &Customer, round: &DecisionRound) -> Result<PolicyDecision> {
        check_features(customer, self.setup.schema())?;
        let eligible = Eligible::of(self.setup.space(), customer)?;
        let choices = self.choices(&eligible, round.round);
        let mut rng = customer_rng(
            self.setup.settings().seed,
            round.round,
            DECIDE_STREAM,
            customer.id.as_str(),
        );
        let action = self.floor.choose(&eligible, &mut rng, |rng| {
            let k = rng.random_range(0..choices.best.len().max(1));
            choices.best.get(k).copied().unwrap_or(ActionId(0))
        });
        Ok(PolicyDecision {
            action,
            propensity: self.floor.probability(&eligible, choices.share(action)),
            model_version: self.model_version(),
        })
    }

    fn decide_batch(&self, customers: &[Customer], round: &DecisionRound) -> Result<Vec<PolicyDecision>> {
        customers.par_iter().map(|c| self.decide(c, round)).collect()
    }

    fn action_probability(&self, customer: &Customer, action: ActionId, round: &DecisionRound) -> Result<f64> {
        check_features(customer, self.setup.schema())?;
        let eligible = Eligible::of(self.setup.space(), customer)?;
        if !eligible.contains_id(action) {
            return Ok(0.0);
        }
        let choices = self.choices(&eligible, round.round);
        Ok(self.floor.probability(&eligible, choices.share(action)))
    }

    fn update(&mut self, feedback: &[Feedback]) -> Result<UpdateReport> {
        crate::validate_feedback(&self.setup, feedback)?;
        let gamma = self.setup.settings().forgetting_factor;
        if gamma < 1.0 {
            for s in self.state.stats.values_mut() {
                s.scale(gamma);
            }
        }
        for f in feedback {
            let r = match self.model {
                Model::Beta => f.reward.clamp(0.0, 1.0),
                Model::Gaussian => f.reward,
            };
            self.state.stats.entry(f.action).or_default().add(&Stats {
                n: 1.0,
                sum: r,
                sum_sq: r * r,
            });
        }
        self.state.updates += 1;
        self.cache.get_mut().unwrap_or_else(PoisonError::into_inner).clear();
        Ok(UpdateReport {
            learned: feedback.len(),
            alerts: Vec::new(),
            model_version: self.model_version(),
        })
    }

    fn snapshot(&self) -> Snapshot {
        let algorithm = match self.model {
            Model::Beta => Algorithm::BetaTs,
            Model::Gaussian => Algorithm::GaussianTs,
        };
        Snapshot::capture(algorithm, self.setup.fingerprint(), &self.state)
    }

    fn explain(&self, customer: &Customer) -> Result<Explanation> {
        check_features(customer, self.setup.schema())?;
        let space = self.setup.space();
        let mask = space.eligibility_mask(&customer.features);
        let mut marginal: Vec<Vec<Stats>> = space
            .dimensions()
            .iter()
            .map(|d| vec![Stats::default(); d.options.len()])
            .collect();
        for (&id, s) in &self.state.stats {
            for (d, options) in marginal.iter_mut().enumerate() {
                if let Some(m) = options.get_mut(space.option_of(id, d)) {
                    m.add(s);
                }
            }
        }
        let grand = if self.model == Model::Gaussian {
            self.pooled().0
        } else {
            0.0
        };
        Ok(Explanation::from_scores(self.model_version(), space, &mask, |d, o| {
            (self.score(&marginal[d][o], grand), Vec::new())
        }))
    }
}

/// Beta–Bernoulli Thompson sampling over joint actions; see the [module docs](self).
#[derive(Debug)]
pub struct BetaBernoulliTs(JointTs);

/// Gaussian Thompson sampling over joint actions (pooled variance); see the [module docs](self).
#[derive(Debug)]
pub struct GaussianTs(JointTs);

impl BetaBernoulliTs {
    /// A new policy at its prior, with [`DEFAULT_SAMPLES`] draws per round.
    ///
    /// # Errors
    /// [`Error::Setting`] when the space has more than [`ENUMERATION_LIMIT`] joint actions.
    pub fn new(setup: Setup) -> Result<Self> {
        Self::with_config(setup, JointTsConfig::default())
    }

    /// A new policy at its prior with `config`.
    ///
    /// # Errors
    /// [`Error::Setting`] when the space has more than [`ENUMERATION_LIMIT`] joint actions or the
    /// number of draws is outside `[1, MAX_SAMPLES]`.
    pub fn with_config(setup: Setup, config: JointTsConfig) -> Result<Self> {
        if !setup.metric().is_binary() {
            tracing::warn!(
                metric = setup.metric().name(),
                "beta_ts clamps rewards to [0, 1]: every amount above 1 counts as one success"
            );
        }
        JointTs::new(setup, Model::Beta, config).map(Self)
    }

    pub(crate) fn restore(setup: Setup, state: serde_json::Value) -> Result<Self> {
        JointTs::restore(setup, Model::Beta, state).map(Self)
    }
}

impl GaussianTs {
    /// A new policy at its prior, with [`DEFAULT_SAMPLES`] draws per round.
    ///
    /// # Errors
    /// [`Error::Setting`] when the space has more than [`ENUMERATION_LIMIT`] joint actions.
    pub fn new(setup: Setup) -> Result<Self> {
        Self::with_config(setup, JointTsConfig::default())
    }

    /// A new policy at its prior with `config`.
    ///
    /// # Errors
    /// [`Error::Setting`] when the space has more than [`ENUMERATION_LIMIT`] joint actions or the
    /// number of draws is outside `[1, MAX_SAMPLES]`.
    pub fn with_config(setup: Setup, config: JointTsConfig) -> Result<Self> {
        JointTs::new(setup, Model::Gaussian, config).map(Self)
    }

    pub(crate) fn restore(setup: Setup, state: serde_json::Value) -> Result<Self> {
        JointTs::restore(setup, Model::Gaussian, state).map(Self)
    }
}

/// Implements [`Policy`] for a newtype over [`JointTs`] by delegation.
macro_rules! delegate_policy {
    ($ty:ty) => {
        impl Policy for $ty {
            fn model_version(&self) -> String {
                self.0.model_version()
            }
            fn decide(&self, customer: &Customer, round: &DecisionRound) -> Result<PolicyDecision> {
                self.0.decide(customer, round)
            }
            fn decide_batch(&self, customers: &[Customer], round: &DecisionRound) -> Result<Vec<PolicyDecision>> {
                self.0.decide_batch(customers, round)
            }
            fn action_probability(&self, customer: &Customer, action: ActionId, round: &DecisionRound) -> Result<f64> {
                self.0.action_probability(customer, action, round)
            }
            fn update(&mut self, feedback: &[Feedback]) -> Result<UpdateReport> {
                self.0.update(feedback)
            }
            fn snapshot(&self) -> Snapshot {
                self.0.snapshot()
            }
            /// Scores each option by the posterior mean of the pooled statistics of every joint action
            /// that contains it (its marginal posterior mean).
            fn explain(&self, customer: &Customer) -> Result<Explanation> {
                self.0.explain(customer)
            }
        }
    };
}

delegate_policy!(BetaBernoulliTs);
delegate_policy!(GaussianTs);

#[cfg(test)]
mod tests {
    use offerloop_domain::action::EligibilityRule;
    use offerloop_domain::dimension::DimensionKind;
    use offerloop_domain::{ActionSpace, Dimension, FeatureSchema, OptionSpec};
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    use super::*;
    use crate::floor::testkit::*;

    /// One simulated day: decide for `n` customers, reward each decision with `reward(action, rng)`,
    /// learn the batch. Returns the decisions.
    fn simulate_day(
        policy: &mut dyn Policy,
        day: u64,
        n: usize,
        rng: &mut StdRng,
        reward: &impl Fn(&JointAction, &mut StdRng) -> f64,
        space: &ActionSpace,
    ) -> Vec<PolicyDecision> {
        let cs: Vec<_> = (0..n).map(|i| customer(i + day as usize * n, i % 3 != 0)).collect();
        let r = round(day);
        let decisions = policy.decide_batch(&cs, &r).unwrap();
        let feedback: Vec<Feedback> = cs
            .iter()
            .zip(&decisions)
            .map(|(c, d)| Feedback {
                features: c.features.clone(),
                action: d.action,
                propensity: d.propensity,
                reward: reward(&space.decode(d.action).unwrap(), rng),
                decided_at: r.decided_at,
                observed: 1.0,
            })
            .collect();
        policy.update(&feedback).unwrap();
        decisions
    }

    fn bernoulli(p: f64, rng: &mut StdRng) -> f64 {
        f64::from(rng.random::<f64>() < p)
    }

    /// pct10 by email converts at 30 %, everything else at 10 %.
    fn conversion_rate(a: &JointAction) -> f64 {
        if a.0 == [1, 0] { 0.3 } else { 0.1 }
    }

    #[test]
    fn prior_decisions_are_deterministic_and_propensities_match_frequencies() {
        let setup = small_setup(settings(5, 0.0, 1.0), conversion(), None);
        let policy = BetaBernoulliTs::new(setup.clone()).unwrap();
        let cs = customers(2000);
        let r = round(40);
        let a = policy.decide_batch(&cs, &r).unwrap();
        let again = BetaBernoulliTs::new(setup.clone())
            .unwrap()
            .decide_batch(&cs, &r)
            .unwrap();
        assert_eq!(a, again);
        let sequential: Vec<_> = cs.iter().map(|c| policy.decide(c, &r).unwrap()).collect();
        assert_eq!(a, sequential);
        let other_seed = BetaBernoulliTs::new(small_setup(settings(6, 0.0, 1.0), conversion(), None)).unwrap();
        assert_ne!(a, other_seed.decide_batch(&cs, &r).unwrap());
        assert_eq!(a[0].model_version, "beta_ts/0");
        let dev = check_frequencies(&policy, setup.space(), &customers(20_000), &r);
        println!("beta_ts at the prior: max |frequency − propensity| = {dev:.5}");
        // Propensities are multiples of 1/S (no floor).
        let dist = distribution(&policy, setup.space(), &customer(0, true), &r);
        assert!(
            dist.iter()
                .all(|(_, p)| (p * DEFAULT_SAMPLES as f64 - (p * DEFAULT_SAMPLES as f64).round()).abs() < 1e-9)
        );
    }

    #[test]
    fn beta_ts_concentrates_on_the_best_joint_action() {
        let setup = small_setup(settings(8, 0.0, 1.0), conversion(), None);
        let mut policy = BetaBernoulliTs::new(setup.clone()).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let best = setup.space().encode(&JointAction(vec![1, 0])).unwrap();
        let reward = |a: &JointAction, rng: &mut StdRng| bernoulli(conversion_rate(a), rng);
        for day in 0..8 {
            simulate_day(&mut policy, day, 500, &mut rng, &reward, setup.space());
        }
        assert_eq!(policy.model_version(), "beta_ts/8");
        let r = round(8);
        let p_best = policy.action_probability(&customer(0, true), best, &r).unwrap();
        println!("beta_ts after 8 days × 500: P(best) = {p_best:.3}");
        assert!(p_best > 0.8, "P(best) = {p_best}");
        let explained = policy.explain(&customer(0, true)).unwrap();
        let offers = &explained.dimensions[0].options;
        assert!(offers[1].score > offers[0].score && offers[1].score > offers[2].score);
        // With a floor, the learned distribution still matches choice frequencies.
        // The floor is a setting, not part of the fingerprint: the learned state restores under it.
        let floored = crate::restore(
            small_setup(settings(8, 0.01, 1.0), conversion(), None),
            policy.snapshot(),
        )
        .unwrap();
        let dev = check_frequencies(floored.as_ref(), setup.space(), &customers(20_000), &r);
        println!("beta_ts learned, floor 0.01: max |frequency − propensity| = {dev:.5}");
        let dist = distribution(floored.as_ref(), setup.space(), &customer(0, true), &r);
        assert!(dist.iter().all(|(_, p)| *p >= 0.01));
    }

    #[test]
    fn forgetting_lets_gaussian_ts_follow_a_change_of_the_best_action() {
        let first = JointAction(vec![1, 0]);
        let second = JointAction(vec![2, 1]);
        let run = |gamma: f64| {
            let setup = small_setup(settings(21, 0.01, gamma), revenue(), None);
            let mut policy = GaussianTs::new(setup.clone()).unwrap();
            let mut rng = StdRng::seed_from_u64(2);
            // Revenue is never negative: a base of 2 keeps the noise's draws above zero (clipped at it
            // with probability 3e-5 a draw).
            let noise = |rng: &mut StdRng| (2.0 + 0.5 * rng.sample::<f64, _>(StandardNormal)).max(0.0);
            let before = |a: &JointAction, rng: &mut StdRng| f64::from(*a == first) + noise(rng);
            let after = |a: &JointAction, rng: &mut StdRng| f64::from(*a == second) + noise(rng);
            for day in 0..10 {
                simulate_day(&mut policy, day, 300, &mut rng, &before, setup.space());
            }
            let id = |a: &JointAction| setup.space().encode(a).unwrap();
            let c = customer(0, true);
            let p_first = policy.action_probability(&c, id(&first), &round(10)).unwrap();
            // P(second) on each of the days after the change.
            let mut trajectory = Vec::new();
            for day in 10..20 {
                simulate_day(&mut policy, day, 300, &mut rng, &after, setup.space());
                trajectory.push(policy.action_probability(&c, id(&second), &round(day + 1)).unwrap());
            }
            let p_second = trajectory[4];
            let dev = check_frequencies(&policy, setup.space(), &customers(20_000), &round(20));
            println!(
                "gaussian_ts γ={gamma}: P(first) before the change {p_first:.3}; P(second) on the days after: \
                 {trajectory:.3?}; max |frequency − propensity| {dev:.5}"
            );
            (p_first, p_second)
        };
        // Five days after the change: with γ = 0.7 the new best action dominates; without forgetting
        // the old one's long record still wins (it takes about twice as long to switch).
        let (before, after) = run(0.7);
        assert!(before > 0.8, "{before}");
        assert!(after > 0.8, "{after}");
        let (before, stuck) = run(1.0);
        assert!(before > 0.8, "{before}");
        assert!(stuck < 0.2, "no forgetting {stuck} vs forgetting {after}");
    }

    #[test]
    fn bad_feedback_learns_nothing_and_snapshots_round_trip() {
        let setup = small_setup(settings(9, 0.01, 0.9), revenue(), None);
        let mut policy = GaussianTs::with_config(setup.clone(), JointTsConfig { samples: 64 }).unwrap();
        let good = feedback(setup.space(), &[0, 1], 2.5, 3);
        policy
            .update(&[good.clone(), feedback(setup.space(), &[1, 0], 1.0, 3)])
            .unwrap();
        let r = round(4);
        let cs = customers(400);
        let decided = policy.decide_batch(&cs, &r).unwrap();
        let before = policy.snapshot();
        let mut excluded = good.clone();
        excluded.action = setup.space().encode(&JointAction(vec![2, 2])).unwrap();
        let mut out_of_space = good.clone();
        out_of_space.action = ActionId(setup.space().size());
        let mut short = good.clone();
        short.features.clear();
        let mut nan = good.clone();
        nan.reward = f64::NAN;
        for bad in [excluded, out_of_space, short, nan] {
            assert!(matches!(
                policy.update(&[good.clone(), bad]),
                Err(Error::BadFeedback { index: 1, .. })
            ));
            assert_eq!(policy.snapshot(), before);
            assert_eq!(policy.decide_batch(&cs, &r).unwrap(), decided);
        }
        let json = serde_json::to_string(&policy.snapshot()).unwrap();
        let restored = crate::restore(setup.clone(), serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(restored.snapshot(), before);
        assert_eq!(restored.model_version(), "gaussian_ts/1");
        assert_eq!(restored.decide_batch(&cs, &r).unwrap(), decided);
        // And for Beta–Bernoulli.
        let beta_setup = small_setup(settings(9, 0.0, 1.0), conversion(), None);
        let mut beta = BetaBernoulliTs::new(beta_setup.clone()).unwrap();
        beta.update(&[feedback(beta_setup.space(), &[0, 1], 1.0, 3)]).unwrap();
        let restored = crate::restore(beta_setup, beta.snapshot()).unwrap();
        assert_eq!(
            restored.decide_batch(&cs, &r).unwrap(),
            beta.decide_batch(&cs, &r).unwrap()
        );
    }

    #[test]
    fn winback_eligibility_and_frequencies() {
        let use_case = winback();
        let setup = Setup::from_use_case(&use_case).unwrap();
        let mut policy = BetaBernoulliTs::new(setup.clone()).unwrap();
        // Some evidence: push by lunch converts.
        let channel = setup.space().dimension_index("channel").unwrap();
        let feedback: Vec<Feedback> = setup
            .space()
            .iter()
            .map(|(id, a)| Feedback {
                features: winback_customer(0).features,
                action: id,
                propensity: 1.0 / 64.0,
                reward: f64::from(a.option(channel) == Some(2)),
                decided_at: round(700).decided_at,
                observed: 1.0,
            })
            .collect();
        policy.update(&feedback).unwrap();
        let cs: Vec<_> = (0..20_000).map(winback_customer).collect();
        let dev = check_frequencies(&policy, setup.space(), &cs, &round(701));
        println!("beta_ts, winback (floor 0.002): max |frequency − propensity| = {dev:.5}");
    }

    #[test]
    fn spaces_too_large_to_enumerate_are_refused() {
        let dim = |name: &str| {
            Dimension::new(
                id(name),
                DimensionKind::Custom,
                (0..6).map(|o| OptionSpec::new(id(&format!("o{o}")))).collect(),
            )
            .unwrap()
        };
        let space = ActionSpace::new(
            (0..5).map(|d| dim(&format!("d{d}"))).collect(),
            vec![],
            Vec::<EligibilityRule>::new(),
        )
        .unwrap();
        assert_eq!(space.count(), 7776);
        let setup = Setup::new(
            space,
            FeatureSchema::default(),
            settings(1, 0.0, 1.0),
            conversion(),
            None,
        )
        .unwrap();
        assert!(matches!(
            BetaBernoulliTs::new(setup.clone()),
            Err(Error::Setting {
                setting: "algorithm",
                ..
            })
        ));
        assert!(matches!(
            GaussianTs::new(setup.clone()),
            Err(Error::Setting {
                setting: "algorithm",
                ..
            })
        ));
        assert!(crate::build_with(setup, Algorithm::BetaTs).is_err());
        let small = small_setup(settings(1, 0.0, 1.0), conversion(), None);
        assert!(matches!(
            GaussianTs::with_config(small, JointTsConfig { samples: 0 }),
            Err(Error::Setting { setting: "samples", .. })
        ));
    }
}
