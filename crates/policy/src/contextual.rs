//! [`Contextual`]: the contextual bandits — `LinTs`, `LinUcb` and `LogisticTs` — over a [`BlockGlm`]
//! of context × option and option × option terms.
//!
//! # What is modelled
//! - `LinTs` / `LinUcb`: the reward itself, `E[r | x, a] = η(x, a)` (identity link).
//! - `LogisticTs` on a 0/1 metric (conversion, retention): `P(r = 1 | x, a) = σ(η(x, a))`.
//! - `LogisticTs` on an amount (revenue, ARPU, event value): a *hurdle* model,
//!   `E[r | x, a] = σ(η(x, a)) · V(x, a) − cost(a)`, where `σ(η)` is the probability of a conversion
//!   (the reward plus the action's option costs is positive), `V` a Bayesian linear model of the
//!   reward-plus-cost of conversions (posterior mean; context plus option terms), and `cost(a)` the
//!   summed option costs of the use case.
//!
//! # How it decides: Thompson sampling with exact propensities
//! For a round, [`SAMPLES`] parameter vectors are drawn once from the posterior, with standard
//! deviations scaled by [`ContextualConfig::posterior_scale`] (a narrowed posterior explores less,
//! which pays on marketing data where most actions are clearly worse). For a customer, each draw's
//! best eligible joint action is found; the policy then plays the best action of one draw picked
//! uniformly at random — or, with probability `f · n`, a uniformly random eligible action (the
//! exploration floor `f` of the use case, `n` eligible actions). So the logged propensity is *exact*:
//! `π(a) = (1 − f·n) · #{draws whose best is a} / SAMPLES + f`. `LinUcb` has one "draw": the
//! posterior mean plus [`ContextualConfig::ucb_alpha`] posterior standard deviations; it is
//! deterministic apart from the floor.
//!
//! # Large action spaces
//! Each draw's best action is found by enumerating the customer's eligible joint actions when there are
//! at most [`crate::sampling::ENUMERATION_LIMIT`]. Beyond that, it is approximated by coordinate
//! ascent: start from the best option of each dimension on its own term, then repeatedly re-choose
//! each dimension's option with the others fixed (full objective, pair terms included, excluded
//! combinations skipped) until nothing changes or [`MAX_SWEEPS`] sweeps; a candidate option is scored
//! from the change of its dimension's terms alone, `O(D)` ([`crate::ascent`]). Without pair terms and with
//! a monotone objective (LinTs, LogisticTs on conversions) the start is already exact, because the
//! objective decomposes per dimension.
//!
//! # Partial rewards
//! A reward read before its attribution window closed ([`Feedback::observed`] `= F < 1`, see
//! [`crate::delay`]) arrives as the unbiased estimate `r̂ = offset + S(e)/F` of the final reward and is
//! learned once, with weight `F`: the Laplace step's gradient is `F (r̂ − η)` (identity link) or
//! `F (ŷ − σ(η))` with `ŷ = 1{converted} / F` (logit link, so the score `1{converted by e} − F σ(η)`
//! has mean zero at the truth), and its curvature is `F` times a full observation's. The hurdle's value
//! model learns the value of a conversion already seen as observed, `S(e)`, with full weight (one
//! purchase per conversion: a later purchase of the same decision would be missed). The drift
//! residuals are weighted the same way. A final reward has `F = 1`: everything is as before.
//!
//! # Non-stationarity
//! Each update first discounts old evidence by the use case's forgetting factor (see
//! [`crate::glm`]). With drift detection on, the calibration residuals (observed minus predicted, per
//! decision, before learning) feed a [`DriftMonitor`]. An alert starts a *challenger*
//! ([`crate::challenger`]): a copy of the whole posterior — all of it, because a market change rarely
//! moves one option alone — tempered to the share [`ContextualConfig::drift_relax`] of its evidence
//! ([`BlockGlm::relax`]: precision and mean alike, so beliefs that rested on old evidence fall back to
//! the prior instead of lingering). Both models learn every batch, the one that raised the alert
//! included; the champion keeps deciding until the challenger predicts the new batches better, and
//! then the challenger takes its place (the posterior scale then doubles for
//! [`ContextualConfig::drift_boost_rounds`] updates, none by default). A challenger that does not
//! prove better is dropped, so a false alarm costs nothing but the computation. Detection pauses while
//! a challenger runs and restarts from a fresh baseline after. It starts after
//! [`ContextualConfig::drift_warmup_updates`] updates, while
//! residuals still move because the model is finding the base rate.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use offerloop_domain::usecase::Algorithm;
use offerloop_domain::{ActionId, Customer, JointAction};
use rand::RngExt as _;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ascent::{self, Additive, Layout};
use crate::challenger::{Challenger, ChallengerConfig, Verdict};
use crate::drift::{DriftAlert, DriftConfig, DriftMonitor};
use crate::featurize::{Featurizer, FeaturizerConfig};
use crate::glm::{BlockGlm, Link, Observation, Samples, Shape, UcbCache, exp_fast, sigmoid, sigmoid_fast};
use crate::policy::{DecisionRound, Explanation, Feedback, Policy, PolicyDecision, UpdateReport};
use crate::sampling::{Eligible, check_features, customer_rng, round_rng};
use crate::setup::Setup;
use crate::snapshot::Snapshot;
use crate::{Error, Result};

/// Posterior draws per round (Thompson sampling).
pub const SAMPLES: usize = 32;

/// Most coordinate-ascent sweeps for spaces too large to enumerate.
pub const MAX_SWEEPS: usize = 4;

/// Stream ids for [`customer_rng`] / [`round_rng`].
const DECIDE_STREAM: u64 = 0;
const SAMPLE_STREAM: u64 = 1;

/// Tunables of the contextual policies (saved in snapshots).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextualConfig {
    /// Encoding of categorical features.
    pub featurizer: FeaturizerConfig,
    /// Prior precision of every weight (a ridge penalty); 2 by default (on the bench, 1 left the
    /// weakest static row at 87.7 % / 94.3 % of the oracle, 2 lifts it to 88.4 % / 95.3 %).
    pub prior_precision: f64,
    /// Standard-deviation scale of Thompson draws (1 = the posterior).
    pub posterior_scale: f64,
    /// Posterior standard deviations added by `LinUcb`.
    pub ucb_alpha: f64,
    /// On a drift alert, the share of the posterior's evidence the challenger keeps (1 % by default;
    /// on the bench's drift scenario, seeds 0–9, 5 % kept every day after an alert within 3.3 points of
    /// not reacting but lowered the drift totals by about a point, `docs/benchmarks.md`).
    pub drift_relax: f64,
    /// Updates after a challenger is promoted during which exploration is doubled (none by default:
    /// on the bench's drift scenario, halving it instead for three updates did not help either,
    /// `docs/benchmarks.md`).
    pub drift_boost_rounds: u32,
    /// Updates learned before drift detection starts: while the model is still finding the base
    /// rate its residuals move for that reason alone, and relaxing it then would only slow learning.
    #[serde(default = "default_drift_warmup")]
    pub drift_warmup_updates: u64,
    /// When the challenger an alert starts replaces the model that decides ([`crate::challenger`]).
    #[serde(default)]
    pub drift_challenger: ChallengerConfig,
    /// The drift detectors.
    pub drift: DriftConfig,
    /// How an action is chosen from the model (Thompson sampling unless set; ignored by `LinUcb`).
    #[serde(default)]
    pub selection: Selection,
}

/// How [`Contextual`] chooses from its model. Every mode logs its exact propensity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Selection {
    /// Thompson sampling over the round's shared posterior draws (see the [module docs](self)).
    #[default]
    Thompson,
    /// The best action under the posterior mean (plus the exploration floor).
    Greedy,
    /// The posterior-mean best with probability `1 − ε`, else a uniformly random eligible action:
    /// `π(a) = (1 − ε) · [a = best] + ε / n` (the floor applies when it is larger).
    EpsilonGreedy {
        /// The exploration share ε, in `[0, 1]`.
        epsilon: f64,
    },
    /// Boltzmann exploration over the posterior-mean objective:
    /// `π(a) ∝ exp(objective(a) / temperature)` among eligible actions. Needs an enumerable space;
    /// above [`crate::sampling::ENUMERATION_LIMIT`] eligible actions it is greedy (documented fallback).
    Softmax {
        /// The temperature, in the objective's units (> 0).
        temperature: f64,
    },
}

impl Default for ContextualConfig {
    fn default() -> Self {
        Self {
            featurizer: FeaturizerConfig::default(),
            prior_precision: 2.0,
            posterior_scale: 0.5,
            ucb_alpha: 1.0,
            drift_relax: 0.01,
            drift_boost_rounds: 0,
            drift_warmup_updates: default_drift_warmup(),
            drift_challenger: ChallengerConfig::default(),
            drift: DriftConfig::default(),
            selection: Selection::Thompson,
        }
    }
}

/// For one customer: the eligible actions, each draw's best action, and the softmax distribution when
/// that is the selection.
type DrawChoices<'a> = (Eligible<'a>, Vec<ActionId>, Option<Vec<(ActionId, f64)>>);

/// The option costs the objective subtracts: those the metric subtracts from the reward
/// (`subtract_option_cost`), none otherwise — the policy maximises the metric as defined.
fn objective_cost(setup: &Setup, action: &JointAction) -> f64 {
    if setup.reward_nets_option_cost() {
        setup.cost(action)
    } else {
        0.0
    }
}

/// Dimension and option names, for the drift monitor.
fn drift_dimensions(setup: &Setup) -> Vec<(String, Vec<String>)> {
    setup
        .space()
        .dimensions()
        .iter()
        .map(|d| (d.name.to_string(), d.options.iter().map(|o| o.id.to_string()).collect()))
        .collect()
}

fn default_drift_warmup() -> u64 {
    3
}

/// What a snapshot holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct State {
    config: ContextualConfig,
    featurizer: Featurizer,
    /// The reward model (identity link) or the conversion model (logit).
    model: BlockGlm,
    /// The value-of-a-conversion model of the hurdle form.
    value: Option<BlockGlm>,
    drift: Option<DriftMonitor>,
    boost_left: u32,
    /// The model re-learning since the last drift alert, while it is being judged.
    #[serde(default)]
    challenger: Option<Challenger>,
    updates: u64,
}

/// The enumerable joint actions with what scoring needs, flat: for candidate `i`, its option blocks
/// `terms[i·dims..]`, its pair cells `pairs[i·pairs_per..]`, its cost.
#[derive(Debug, Default)]
struct Candidates {
    ids: Vec<ActionId>,
    actions: Vec<JointAction>,
    terms: Vec<u32>,
    pairs: Vec<u32>,
    costs: Vec<f64>,
    dims: usize,
    pairs_per: usize,
}

impl Candidates {
    fn terms_of(&self, i: usize) -> &[u32] {
        &self.terms[i * self.dims..(i + 1) * self.dims]
    }

    fn pairs_of(&self, i: usize) -> &[u32] {
        &self.pairs[i * self.pairs_per..(i + 1) * self.pairs_per]
    }
}

/// Per-round draws, shared by every customer of the round.
struct RoundCache {
    round: u64,
    samples: Samples,
    ucb: Option<UcbCache>,
    value_means: Option<Samples>,
    /// Per enumerable candidate `i`, the sum of its pair cells in each draw `s`:
    /// `pair_sums[i · samples.len() + s]` (none without pair terms or enumeration).
    pair_sums: Option<Vec<f64>>,
    /// `e^{−pair_sums}`, for the hurdle form's product of exponentials (with a value model).
    pair_neg_exp: Option<Vec<f64>>,
}

/// Per-thread buffers of [`Contextual::best_per_draw`], reused across decisions so that deciding
/// allocates little (decisions run on rayon's threads; each has its own).
#[derive(Default)]
struct Scratch {
    /// The encoded context.
    x: Vec<f64>,
    /// Its non-zero slots, and those of the raw-scale encoding (value model).
    nonzero: Vec<(u32, f64)>,
    raw_nonzero: Vec<(u32, f64)>,
    /// Every draw's block terms, `t[b · draws + s]`, and their `e^{−t}` (hurdle form).
    t: Vec<f64>,
    neg_exp: Vec<f64>,
    /// One candidate's objective in every draw, and each draw's best so far.
    row: Vec<f64>,
    best_value: Vec<f64>,
    best_k: Vec<usize>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// A contextual bandit; see the [module docs](self).
pub struct Contextual {
    setup: Setup,
    algorithm: Algorithm,
    state: State,
    /// Non-excluded joint actions, when few enough to enumerate, with their scoring indices.
    actions: Option<Candidates>,
    /// The eligible actions of every customer, when the use case has no eligibility rules.
    everyone: Option<u64>,
    /// Where option terms and pair cells sit, for coordinate ascent.
    layout: Layout,
    /// Each option's cost in the objective, indexed like the model's block terms (base term 0).
    cost_terms: Vec<f64>,
    cache: Mutex<Option<Arc<RoundCache>>>,
}

impl std::fmt::Debug for Contextual {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contextual")
            .field("algorithm", &self.algorithm)
            .field("updates", &self.state.updates)
            .finish_non_exhaustive()
    }
}

impl Contextual {
    /// A new policy of `algorithm` (`LinTs`, `LinUcb` or `LogisticTs`) at its prior.
    ///
    /// # Errors
    /// [`Error::Setting`] for another algorithm.
    pub fn new(setup: Setup, algorithm: Algorithm, config: ContextualConfig) -> Result<Self> {
        let link = match algorithm {
            Algorithm::LinTs | Algorithm::LinUcb => Link::Identity,
            Algorithm::LogisticTs => Link::Logit,
            other => {
                return Err(Error::Setting {
                    setting: "algorithm",
                    message: format!("`{other:?}` is not a contextual algorithm"),
                });
            }
        };
        let featurizer = Featurizer::new(setup.schema(), config.featurizer);
        let options: Vec<usize> = setup.space().dimensions().iter().map(|d| d.options.len()).collect();
        let shape = Shape {
            width: featurizer.width(),
            options: options.clone(),
            pairs: setup.settings().pairwise_interactions && options.len() > 1,
        };
        let model = BlockGlm::new(shape, link, config.prior_precision);
        let value = (link == Link::Logit && !setup.binary_reward()).then(|| {
            BlockGlm::new(
                Shape {
                    width: featurizer.width(),
                    options,
                    pairs: false,
                },
                Link::Identity,
                config.prior_precision,
            )
        });
        let drift = setup
            .settings()
            .drift_detection
            .then(|| DriftMonitor::new(config.drift.clone(), drift_dimensions(&setup)));
        let state = State {
            config,
            featurizer,
            model,
            value,
            drift,
            boost_left: 0,
            challenger: None,
            updates: 0,
        };
        Ok(Self::from_state(setup, algorithm, state))
    }

    fn from_state(setup: Setup, algorithm: Algorithm, state: State) -> Self {
        let space = setup.space();
        let actions = (space.count() <= crate::sampling::ENUMERATION_LIMIT).then(|| {
            let shape = state.model.shape();
            let probe = state.model.means();
            let mut table = Candidates::default();
            for (id, action) in space.iter() {
                table.terms.extend(
                    action
                        .0
                        .iter()
                        .enumerate()
                        .map(|(d, &o)| shape.option_block(d, o as usize) as u32),
                );
                table.pairs.extend(probe.pair_cells(&action.0));
                table.costs.push(objective_cost(&setup, &action));
                table.ids.push(id);
                table.actions.push(action);
            }
            table.dims = space.dimensions().len();
            table.pairs_per = probe.pair_cells(&vec![0; table.dims]).len();
            table
        });
        let everyone = space.eligibility_rules().is_empty().then(|| space.count());
        let shape = state.model.shape();
        let layout = Layout::new(shape);
        let mut cost_terms = vec![0.0; 1 + shape.options.iter().sum::<usize>()];
        if setup.reward_nets_option_cost() {
            for (d, &k) in shape.options.iter().enumerate() {
                for o in 0..k {
                    cost_terms[shape.option_block(d, o)] = setup.option_cost(d, o);
                }
            }
        }
        Self {
            setup,
            algorithm,
            state,
            actions,
            everyone,
            layout,
            cost_terms,
            cache: Mutex::new(None),
        }
    }

    pub(crate) fn restore(setup: Setup, algorithm: Algorithm, state: serde_json::Value) -> Result<Self> {
        let state: State =
            serde_json::from_value(state).map_err(|e| Error::Snapshot(format!("{algorithm:?} state: {e}")))?;
        Ok(Self::from_state(setup, algorithm, state))
    }

    fn name(&self) -> &'static str {
        match self.algorithm {
            Algorithm::LinUcb => "lin_ucb",
            Algorithm::LogisticTs => "logistic_ts",
            _ => "lin_ts",
        }
    }

    /// Encodes a feedback batch for learning (the featurizer's statistics as they are now). A partial
    /// reward (observed share F < 1) is the unbiased estimate `offset + S(e)/F` and is learned with
    /// weight F; the hurdle's conversion indicator is corrected the same way, `1{S(e) > 0} / F`, and
    /// the value of a conversion already seen is the value observed, `S(e) = gross · F`.
    fn prepare(&self, feedback: &[Feedback]) -> Result<Prepared> {
        let space = self.setup.space();
        let actions: Vec<JointAction> = feedback
            .iter()
            .map(|f| space.decode(f.action))
            .collect::<Result<_, _>>()?;
        let featurizer = &self.state.featurizer;
        let xs: Vec<Vec<f64>> = feedback
            .par_iter()
            .map(|f| featurizer.encode(&f.features, f.decided_at))
            .collect();
        let binary_target = self.setup.binary_reward() || self.state.model_link() == Link::Identity;
        let targets: Vec<(f64, f64)> = feedback
            .iter()
            .zip(&actions)
            .map(|(f, a)| {
                if binary_target {
                    (f.reward, f.reward)
                } else {
                    let gross = f.reward + objective_cost(&self.setup, a);
                    (f64::from(u8::from(gross > 1e-9)) / f.observed, gross * f.observed)
                }
            })
            .collect();
        // The value model reads amounts on their raw scale (see `Featurizer::encode_raw_into`).
        let raw = if self.state.value.is_some() {
            feedback
                .iter()
                .zip(&targets)
                .map(|(f, (_, gross))| (*gross > 1e-9).then(|| featurizer.encode_raw(&f.features, f.decided_at)))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Prepared {
            actions,
            xs,
            raw,
            targets,
        })
    }

    /// The draws of `round`, computed once and shared.
    fn round_cache(&self, round: u64) -> Arc<RoundCache> {
        let mut guard = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cache) = guard.as_ref().filter(|c| c.round == round) {
            return Arc::clone(cache);
        }
        let model = &self.state.model;
        let (samples, ucb) = if self.algorithm == Algorithm::LinUcb {
            (model.means(), Some(model.ucb_cache()))
        } else if self.state.config.selection != Selection::Thompson {
            (model.means(), None)
        } else {
            let scale = if self.state.boost_left > 0 {
                (self.state.config.posterior_scale * 2.0).min(1.0)
            } else {
                self.state.config.posterior_scale
            };
            let mut rng = round_rng(self.setup.settings().seed, round, SAMPLE_STREAM);
            (model.sample(SAMPLES, scale, &mut rng), None)
        };
        let pair_sums = self.actions.as_ref().filter(|_| model.shape().pairs).map(|table| {
            let count = samples.len();
            let mut sums = vec![0.0; table.ids.len() * count];
            for (i, out) in sums.chunks_exact_mut(count).enumerate() {
                samples.add_pair_sums(table.pairs_of(i), out);
            }
            sums
        });
        let pair_neg_exp = pair_sums
            .as_ref()
            .filter(|_| self.state.value.is_some())
            .map(|sums| sums.iter().map(|v| exp_fast(-v)).collect());
        let cache = Arc::new(RoundCache {
            round,
            samples,
            ucb,
            value_means: self.state.value.as_ref().map(BlockGlm::means),
            pair_sums,
            pair_neg_exp,
        });
        *guard = Some(Arc::clone(&cache));
        cache
    }

    /// For one customer: the best eligible action of each draw.
    fn best_per_draw(&self, cache: &RoundCache, customer: &Customer, round: &DecisionRound) -> Result<DrawChoices<'_>> {
        check_features(customer, self.setup.schema())?;
        let eligible = match self.everyone {
            Some(count) => Eligible::everyone(self.setup.space(), count),
            None => Eligible::of(self.setup.space(), customer)?,
        };
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            self.best_per_draw_in(&mut scratch, eligible, cache, customer, round)
        })
    }

    /// [`Contextual::best_per_draw`] with the buffers of `scratch`.
    fn best_per_draw_in<'s>(
        &'s self,
        scratch: &mut Scratch,
        eligible: Eligible<'s>,
        cache: &RoundCache,
        customer: &Customer,
        round: &DecisionRound,
    ) -> Result<DrawChoices<'s>> {
        let Scratch {
            x,
            nonzero,
            raw_nonzero,
            t,
            neg_exp,
            row,
            best_value,
            best_k,
        } = scratch;
        let featurizer = &self.state.featurizer;
        x.resize(featurizer.width(), 0.0);
        nonzero.clear();
        raw_nonzero.clear();
        if self.state.value.is_some() {
            featurizer.encode_raw_into(&customer.features, round.decided_at, x);
            raw_nonzero.extend(
                x.iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0.0)
                    .map(|(j, v)| (j as u32, *v)),
            );
        }
        featurizer.encode_into(&customer.features, round.decided_at, x);
        nonzero.extend(
            x.iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(j, v)| (j as u32, *v)),
        );
        let x = &*x;
        let samples = &cache.samples;
        // Until a conversion has been seen there is no value to learn from: the objective is then the
        // conversion model alone, so the first decisions follow its draws instead of the cheapest action.
        let hurdle = cache
            .value_means
            .as_ref()
            .filter(|_| self.state.value.as_ref().is_some_and(|v| v.seen > 0.0));
        let value_terms: Option<Vec<f64>> = hurdle.map(|v| {
            let mut vt = vec![0.0; v.terms_len()];
            v.block_terms_sparse(0, raw_nonzero, &mut vt);
            vt
        });
        // Every draw's block terms at once: `t[b · count + s]`.
        let count = samples.len();
        let n_terms = samples.terms_len();
        t.resize(n_terms * count, 0.0);
        samples.all_block_terms(nonzero, t);
        let alpha = self.state.config.ucb_alpha;
        // UCB: the posterior variance's parts for this context, once.
        let variance = cache.ucb.as_ref().map(|u| u.variance_parts(x));
        if let Some(table) = &self.actions {
            let chosen: Vec<usize> = if self.everyone.is_some() {
                (0..table.ids.len()).collect()
            } else {
                (0..table.ids.len())
                    .filter(|&i| eligible.contains(&table.actions[i]))
                    .collect()
            };
            let softmax_selection =
                matches!(self.state.config.selection, Selection::Softmax { .. }) && cache.ucb.is_none();
            let mut objectives = Vec::with_capacity(if softmax_selection { chosen.len() } else { 0 });
            // Candidate by candidate, every draw at once (vectors over the draws): its objective, and
            // the running best of each draw (ties keep the first candidate).
            best_value.clear();
            best_value.resize(count, f64::NEG_INFINITY);
            best_k.clear();
            best_k.resize(count, 0);
            row.resize(count, 0.0);
            // Hurdle form: σ(η) = 1 / (1 + e^{−η}), and e^{−η} is the product of e^{−term} over η's
            // terms — one exponential per block term and draw instead of one per candidate and draw.
            // Each factor is finite and non-zero, so a product never is NaN.
            if value_terms.is_some() {
                neg_exp.clear();
                neg_exp.extend(t.iter().map(|v| exp_fast(-v)));
            }
            for (k, &i) in chosen.iter().enumerate() {
                if let Some(vt) = &value_terms {
                    let e = &*neg_exp;
                    row.copy_from_slice(&e[..count]);
                    if let Some(pair_exp) = &cache.pair_neg_exp {
                        for (r, p) in row.iter_mut().zip(&pair_exp[i * count..(i + 1) * count]) {
                            *r *= p;
                        }
                    }
                    for &b in table.terms_of(i) {
                        let b = b as usize;
                        for (r, v) in row.iter_mut().zip(&e[b * count..(b + 1) * count]) {
                            *r *= v;
                        }
                    }
                    let value = (vt[0] + table.terms_of(i).iter().map(|&b| vt[b as usize]).sum::<f64>()).max(0.0);
                    let cost = table.costs[i];
                    for r in row.iter_mut() {
                        *r = value / (1.0 + *r) - cost;
                    }
                } else {
                    row.copy_from_slice(&t[..count]);
                    if let Some(sums) = &cache.pair_sums {
                        for (r, p) in row.iter_mut().zip(&sums[i * count..(i + 1) * count]) {
                            *r += p;
                        }
                    }
                    for &b in table.terms_of(i) {
                        let b = b as usize;
                        for (r, v) in row.iter_mut().zip(&t[b * count..(b + 1) * count]) {
                            *r += v;
                        }
                    }
                    if let Some((blocks, pairs)) = &variance {
                        let var = blocks[0]
                            + table.terms_of(i).iter().map(|&b| blocks[b as usize]).sum::<f64>()
                            + table.pairs_of(i).iter().map(|&c| pairs[c as usize]).sum::<f64>();
                        let bonus = alpha * var.max(0.0).sqrt();
                        for r in row.iter_mut() {
                            *r += bonus;
                        }
                    }
                }
                if softmax_selection {
                    objectives.push(row[0]);
                }
                // Branch-free, so that it vectorises.
                for ((r, top), at) in row.iter().zip(best_value.iter_mut()).zip(best_k.iter_mut()) {
                    let better = *r > *top;
                    *top = if better { *r } else { *top };
                    *at = if better { k } else { *at };
                }
            }
            let best = best_k.iter().map(|&k| table.ids[chosen[k]]).collect();
            let softmax = match self.state.config.selection {
                Selection::Softmax { temperature } if softmax_selection => {
                    let max = objectives.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let t = temperature.max(1e-12);
                    let weights: Vec<f64> = objectives.iter().map(|e| ((e - max) / t).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    Some(
                        chosen
                            .iter()
                            .zip(weights)
                            .map(|(&i, w)| (table.ids[i], w / total))
                            .collect(),
                    )
                }
                _ => None,
            };
            return Ok((eligible, best, softmax));
        }
        // Too many to enumerate: coordinate ascent per draw over the pairwise-additive parts of the
        // objective — η, then its variance (UCB), then value and cost (hurdle form).
        let layout = &self.layout;
        let allowed: Vec<Vec<u32>> = (0..layout.dims())
            .map(|d| {
                eligible
                    .mask()
                    .allowed(d)
                    .map(|set| set.iter().map(|o| o as u32).collect())
                    .unwrap_or_default()
            })
            .collect();
        let var_at = variance.as_ref().map(|_| 1);
        let value_at = value_terms.as_ref().map(|_| 1 + usize::from(variance.is_some()));
        let objective = |parts: &[f64]| -> f64 {
            let mut eta = parts[0];
            if let Some(v) = var_at {
                eta += alpha * parts[v].max(0.0).sqrt();
            }
            match value_at {
                Some(v) => sigmoid_fast(eta) * parts[v].max(0.0) - parts[v + 1],
                None => eta,
            }
        };
        let space = self.setup.space();
        let mut terms = vec![0.0; n_terms];
        let mut best = Vec::with_capacity(count);
        for s in 0..count {
            for (b, cell) in terms.iter_mut().enumerate() {
                *cell = t[b * count + s];
            }
            let mut quantities = vec![Additive {
                terms: &terms,
                pairs: samples.pairs(s),
            }];
            if let Some((blocks, pairs)) = &variance {
                quantities.push(Additive { terms: blocks, pairs });
            }
            if let Some(vt) = &value_terms {
                quantities.push(Additive { terms: vt, pairs: &[] });
                quantities.push(Additive {
                    terms: &self.cost_terms,
                    pairs: &[],
                });
            }
            // Start from each dimension's best option on its own term.
            let start: Vec<u32> = allowed
                .iter()
                .enumerate()
                .map(|(d, options)| {
                    options
                        .iter()
                        .copied()
                        .max_by(|&a, &b| terms[layout.term(d, a)].total_cmp(&terms[layout.term(d, b)]))
                        .unwrap_or(0)
                })
                .collect();
            let mask = eligible.mask();
            let found = ascent::maximise(
                layout,
                &quantities,
                start,
                &allowed,
                |a| space.is_allowed(&JointAction(a.to_vec()), mask),
                objective,
                MAX_SWEEPS,
            );
            best.push(match found {
                Some(action) => eligible.encode(&JointAction(action)),
                None => {
                    // No single-option change reached an allowed action: a deterministic draw.
                    let mut rng = customer_rng(0, 0, 0, "coordinate-ascent");
                    eligible.sample_uniform(&mut rng).0
                }
            });
        }
        Ok((eligible, best, None))
    }

    fn decide_with(&self, cache: &RoundCache, customer: &Customer, round: &DecisionRound) -> Result<PolicyDecision> {
        let (eligible, best, softmax) = self.best_per_draw(cache, customer, round)?;
        let from_draws = softmax.is_none();
        let base = base_distribution(&best, softmax);
        let mut rng = customer_rng(
            self.setup.settings().seed,
            round.round,
            DECIDE_STREAM,
            customer.id.as_str(),
        );
        let u: f64 = rng.random();
        let action = if u < self.uniform_share(&eligible) {
            eligible.sample_uniform(&mut rng).0
        } else if from_draws {
            // One of the draws' best actions, uniformly: probability = its share of the draws.
            best[rng.random_range(0..best.len())]
        } else {
            let mut v: f64 = rng.random();
            let mut chosen = base[base.len() - 1].0;
            for &(id, p) in &base {
                if v < p {
                    chosen = id;
                    break;
                }
                v -= p;
            }
            chosen
        };
        Ok(PolicyDecision {
            action,
            propensity: self.propensity(&eligible, &base, action),
            model_version: self.model_version(),
        })
    }

    /// The probability of a uniformly random eligible action: the exploration floor's `f · n`, or ε
    /// for ε-greedy when larger.
    fn uniform_share(&self, eligible: &Eligible<'_>) -> f64 {
        let floor = self.setup.settings().exploration_floor * eligible.count() as f64;
        let epsilon = match self.state.config.selection {
            Selection::EpsilonGreedy { epsilon } if self.algorithm != Algorithm::LinUcb => epsilon.clamp(0.0, 1.0),
            _ => 0.0,
        };
        floor.max(epsilon).min(1.0)
    }

    fn propensity(&self, eligible: &Eligible<'_>, base: &[(ActionId, f64)], action: ActionId) -> f64 {
        if !eligible.contains_id(action) {
            return 0.0;
        }
        let share = self.uniform_share(eligible);
        let p = base.iter().find(|(id, _)| *id == action).map_or(0.0, |(_, p)| *p);
        (1.0 - share) * p + share / eligible.count() as f64
    }
}

/// The choice before uniform exploration: the softmax distribution when there is one, else each draw's
/// best with equal weight (merged per action, in first-seen order).
fn base_distribution(best: &[ActionId], softmax: Option<Vec<(ActionId, f64)>>) -> Vec<(ActionId, f64)> {
    if let Some(distribution) = softmax {
        return distribution;
    }
    let mut out: Vec<(ActionId, f64)> = Vec::new();
    let share = 1.0 / best.len().max(1) as f64;
    for &b in best {
        match out.iter_mut().find(|(id, _)| *id == b) {
            Some(entry) => entry.1 += share,
            None => out.push((b, share)),
        }
    }
    out
}

impl Policy for Contextual {
    fn model_version(&self) -> String {
        format!("{}/{}", self.name(), self.state.updates)
    }

    fn decide(&self, customer: &Customer, round: &DecisionRound) -> Result<PolicyDecision> {
        self.decide_with(&self.round_cache(round.round), customer, round)
    }

    fn decide_batch(&self, customers: &[Customer], round: &DecisionRound) -> Result<Vec<PolicyDecision>> {
        // The round's draws once, outside the parallel section; no lock inside it.
        let cache = self.round_cache(round.round);
        customers
            .par_iter()
            .map(|c| self.decide_with(&cache, c, round))
            .collect()
    }

    fn action_probability(&self, customer: &Customer, action: ActionId, round: &DecisionRound) -> Result<f64> {
        let (eligible, best, softmax) = self.best_per_draw(&self.round_cache(round.round), customer, round)?;
        Ok(self.propensity(&eligible, &base_distribution(&best, softmax), action))
    }

    fn action_distribution(
        &self,
        customer: &Customer,
        eligible: &Eligible<'_>,
        round: &DecisionRound,
    ) -> Result<Vec<(ActionId, f64)>> {
        crate::policy::ensure_enumerable(customer, eligible)?;
        // One scoring of every action, instead of one per action.
        let (own, best, softmax) = self.best_per_draw(&self.round_cache(round.round), customer, round)?;
        let base = base_distribution(&best, softmax);
        Ok(eligible
            .iter()
            .map(|(id, _)| (id, self.propensity(&own, &base, id)))
            .collect())
    }

    fn learns_partial(&self) -> bool {
        true
    }

    fn update(&mut self, feedback: &[Feedback]) -> Result<UpdateReport> {
        crate::validate_partial_feedback(&self.setup, feedback)?;
        for f in feedback {
            self.state.featurizer.observe(&f.features, f.decided_at);
        }
        let batch = self.prepare(feedback)?;
        let observations = batch.observations(feedback);
        let converted = batch.converted(&observations);
        let gamma = self.setup.settings().forgetting_factor;
        let state = &mut self.state;
        // Calibration residuals, before learning this batch.
        let alerts = state.detect(&observations, feedback);
        // A running challenger is judged on this batch before either model learns it; a new alert
        // starts one (a market change rarely moves one option alone, so the whole posterior is
        // tempered, once, whatever the number of alerts). The batch that raised the alert is the
        // first evidence of the new market: both models learn it.
        let verdict = match state.challenger.as_mut() {
            Some(challenger) => challenger.judge(&state.model, &observations, &state.config.drift_challenger),
            None => Verdict::Continue,
        };
        if !alerts.is_empty() {
            state.challenger = Some(Challenger::new(
                &state.model,
                state.value.as_ref(),
                state.config.drift_relax,
            ));
        }
        learn_batch(&mut state.model, state.value.as_mut(), gamma, &observations, &converted);
        if let Some(challenger) = state.challenger.as_mut() {
            learn_batch(
                &mut challenger.model,
                challenger.value.as_mut(),
                gamma,
                &observations,
                &converted,
            );
        }
        state.boost_left = state.boost_left.saturating_sub(1);
        match verdict {
            Verdict::Continue => {}
            Verdict::Promote | Verdict::Drop => {
                if let Some(challenger) = state.challenger.take()
                    && verdict == Verdict::Promote
                {
                    state.model = challenger.model;
                    state.value = challenger.value;
                    state.boost_left = state.config.drift_boost_rounds;
                }
                // Either way the detectors restart from a fresh baseline of the model now deciding.
                if let Some(monitor) = state.drift.as_mut() {
                    *monitor = DriftMonitor::new(state.config.drift.clone(), drift_dimensions(&self.setup));
                }
            }
        }
        state.updates += 1;
        *self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(UpdateReport {
            learned: feedback.len(),
            alerts,
            model_version: self.model_version(),
        })
    }

    /// Final rewards of decisions learned early feed the detectors (nothing is learned, and the model
    /// that decides is untouched). An alert starts a challenger as in `update`, which learns these
    /// rewards: they are the first evidence of the new market (the champion learned them already, from
    /// their partial rewards).
    fn monitor(&mut self, finals: &[Feedback]) -> Result<Vec<DriftAlert>> {
        crate::validate_feedback(&self.setup, finals)?;
        if finals.is_empty() || self.state.drift.is_none() {
            return Ok(Vec::new());
        }
        let batch = self.prepare(finals)?;
        let observations = batch.observations(finals);
        let alerts = self.state.detect(&observations, finals);
        if !alerts.is_empty() {
            let state = &mut self.state;
            let mut challenger = Challenger::new(&state.model, state.value.as_ref(), state.config.drift_relax);
            let converted = batch.converted(&observations);
            learn_batch(
                &mut challenger.model,
                challenger.value.as_mut(),
                1.0,
                &observations,
                &converted,
            );
            state.challenger = Some(challenger);
        }
        Ok(alerts)
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::capture(self.algorithm, self.setup.fingerprint(), &self.state)
    }

    fn explain(&self, customer: &Customer) -> Result<Explanation> {
        check_features(customer, self.setup.schema())?;
        let at = Timestamp::UNIX_EPOCH;
        let x = self.state.featurizer.encode(&customer.features, at);
        let mask = self.setup.space().eligibility_mask(&customer.features);
        Ok(Explanation::from_scores(
            self.model_version(),
            self.setup.space(),
            &mask,
            |d, o| {
                let w = self.state.model.option_mean(d, o);
                let mut contributions: Vec<(String, f64)> = w
                    .iter()
                    .zip(&x)
                    .enumerate()
                    .filter(|(_, (_, xi))| **xi != 0.0)
                    .map(|(j, (wj, xj))| (self.state.featurizer.slot_name(j).to_owned(), wj * xj))
                    .collect();
                contributions.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
                contributions.truncate(5);
                (w.iter().zip(&x).map(|(a, b)| a * b).sum(), contributions)
            },
        ))
    }
}

/// A feedback batch encoded for learning: each record's action, context, and targets (of the main
/// model, and the gross reward of the value model).
struct Prepared {
    actions: Vec<JointAction>,
    xs: Vec<Vec<f64>>,
    /// The value model's raw-scale context of each converted record (hurdle form only).
    raw: Vec<Option<Vec<f64>>>,
    targets: Vec<(f64, f64)>,
}

impl Prepared {
    fn observations<'a>(&'a self, feedback: &[Feedback]) -> Vec<Observation<'a>> {
        self.xs
            .iter()
            .zip(&self.actions)
            .zip(&self.targets)
            .zip(feedback)
            .map(|(((x, a), (y, _)), f)| Observation {
                x,
                options: &a.0,
                y: *y,
                weight: f.observed,
            })
            .collect()
    }

    /// The value model's batch: the converted records, their gross reward on the raw scale.
    fn converted<'a>(&'a self, observations: &[Observation<'a>]) -> Vec<Observation<'a>> {
        observations
            .iter()
            .zip(&self.targets)
            .zip(&self.raw)
            .filter_map(|((o, (_, gross)), x)| {
                x.as_ref().map(|x| Observation {
                    x,
                    options: o.options,
                    y: *gross,
                    weight: 1.0,
                })
            })
            .collect()
    }
}

/// Learns one batch into a model (and its value model): forget, then update.
fn learn_batch(
    model: &mut BlockGlm,
    value: Option<&mut BlockGlm>,
    gamma: f64,
    observations: &[Observation<'_>],
    converted: &[Observation<'_>],
) {
    model.forget(gamma);
    model.update(observations);
    if let Some(value) = value {
        value.forget(gamma);
        value.update(converted);
    }
}

impl State {
    fn model_link(&self) -> Link {
        self.model.link()
    }

    /// Feeds the calibration residuals of the batch's fully observed rewards to the drift monitor,
    /// when detection is on, warmed up, and no challenger is being judged; returns the alerts.
    fn detect(&mut self, observations: &[Observation<'_>], feedback: &[Feedback]) -> Vec<DriftAlert> {
        let detecting = self.updates >= self.config.drift_warmup_updates && self.challenger.is_none();
        if self.drift.is_none() || !detecting {
            return Vec::new();
        }
        let sd = self.model.noise_variance().sqrt().max(1e-9);
        let link = self.model_link();
        let model = &self.model;
        // Only fully observed rewards feed the detectors: a partial one's residual is unbiased only
        // as far as the delay model is right, and that model is itself re-estimated every run as
        // windows close, which can move the residuals' mean with no change in the market (in the
        // default demo, alerts on days 7 and 27 reset the model to near-uniform play). The final
        // reward of a decision learned early comes back through `Policy::monitor`.
        let items: Vec<(Vec<usize>, f64, Timestamp)> = observations
            .iter()
            .zip(feedback)
            .filter(|(_, f)| f.observed >= 1.0)
            .map(|(o, f)| {
                let eta = model.mean_eta(o.x, o.options);
                let residual = match link {
                    Link::Logit => o.y - sigmoid(eta),
                    Link::Identity => (o.y - eta) / sd,
                };
                (o.options.iter().map(|&i| i as usize).collect(), residual, f.decided_at)
            })
            .collect();
        match self.drift.as_mut() {
            Some(monitor) if !items.is_empty() => monitor.observe_batch(items),
            _ => Vec::new(),
        }
    }
}
