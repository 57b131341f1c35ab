//! [`BlockGlm`]: a Bayesian generalised linear model over context × option and option × option
//! features, with a Gaussian posterior that is full within each block and independent across blocks.
//!
//! # Parameters
//! For encoded context `x` (width `p`) and joint action `a = (a_1, ..., a_D)`, the linear predictor is
//!
//! ```text
//! η(x, a) = w_0 · x  +  Σ_d w_{d, a_d} · x  +  Σ_{d<e} φ_{d,e}[a_d, a_e]
//! ```
//!
//! - a base block `w_0` (context only: how likely this customer is to respond at all);
//! - one block `w_{d,o}` of `p` weights per option `o` of dimension `d` (context × option);
//! - when pairwise interactions are on, one scalar `φ_{d,e}[o, o']` per pair of options of two
//!   dimensions (option × option, e.g. sms × evening), each its own block of size 1.
//!
//! Within a block the posterior has a full precision matrix; across blocks it is independent. Because
//! option features are one-hot, the Hessian has no coupling between the options of one dimension, so
//! the only approximation is dropping the coupling between dimensions (and with the base block).
//!
//! # Learning: Laplace, by block Gauss–Seidel Newton steps
//! Each [`BlockGlm::update`] takes the current posterior as the prior (after forgetting), and finds the
//! posterior mode of the batch by block coordinate Newton steps: for each block in turn, accumulate the
//! gradient and the Hessian over the observations that touch it (a rank-one update `h · x xᵀ` per
//! observation, on the upper triangle), add the prior's, solve by Cholesky, step, and update every
//! touched observation's `η`. Sweeping the blocks in turn (Gauss–Seidel rather than Jacobi) keeps the
//! shared intercept directions from overshooting. The new precision of a block is the prior's plus the
//! Hessian at the mode. With the identity link one sweep is exact per block; the logit link takes
//! [`SWEEPS`] sweeps. No matrix is inverted: sampling and solving use Cholesky factors.
//!
//! # Forgetting
//! Before each batch, the evidence is discounted by the forgetting factor γ:
//! `P ← P_0 + γ (P − P_0)` for every block (the prior's precision `P_0` never decays), so old batches
//! weigh `γ^age`. [`BlockGlm::relax`] does the same with a stronger factor for the blocks a drift
//! alert names.

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_distr::{Distribution as _, StandardNormal};
use serde::{Deserialize, Serialize};

/// Newton sweeps over the blocks per batch for the logit link.
pub const SWEEPS: usize = 2;

/// Smallest curvature `p (1 − p)` used for a logit observation, so confident mistakes still count.
const MIN_CURVATURE: f64 = 1e-4;

/// The link between the linear predictor and the mean reward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// Gaussian rewards: mean `η`; precisions are in units of the noise variance.
    Identity,
    /// Binary rewards: `P(y = 1) = σ(η)`.
    Logit,
}

/// One Gaussian block: mean and precision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Block {
    mean: DVector<f64>,
    precision: DMatrix<f64>,
}

/// Shape of the model: context width, options per dimension, whether pair terms exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Encoded context width `p`.
    pub width: usize,
    /// Options per dimension.
    pub options: Vec<usize>,
    /// Whether option × option terms are modelled.
    pub pairs: bool,
}

impl Shape {
    /// Index of block `w_{d,o}` (the base block is 0); also the index of its term in
    /// [`Samples::block_terms_sparse`].
    pub fn option_block(&self, d: usize, o: usize) -> usize {
        1 + self.options[..d].iter().sum::<usize>() + o
    }

    fn option_blocks(&self) -> usize {
        self.options.iter().sum()
    }

    /// The pairs of dimensions `(d, e)`, `d < e`, in order, with the offset of their first cell.
    pub fn pair_offsets(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        if !self.pairs {
            return out;
        }
        let mut offset = 0;
        for d in 0..self.options.len() {
            for e in d + 1..self.options.len() {
                out.push((d, e, offset));
                offset += self.options[d] * self.options[e];
            }
        }
        out
    }

    fn pair_cells(&self) -> usize {
        self.pair_offsets()
            .last()
            .map_or(0, |&(d, e, off)| off + self.options[d] * self.options[e])
    }
}

/// One observation to learn from: encoded context, chosen option per dimension, target.
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    /// Encoded context (width `p`).
    pub x: &'a [f64],
    /// Chosen option index per dimension.
    pub options: &'a [u32],
    /// Target: 0/1 for the logit link, the reward for the identity link.
    pub y: f64,
    /// Weight of the observation (1 normally).
    pub weight: f64,
}

/// The model; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockGlm {
    shape: Shape,
    link: Link,
    prior_precision: f64,
    /// Base block then option blocks, in dimension-major order.
    blocks: Vec<Block>,
    /// Pair cells: mean and precision (each cell is a block of size 1).
    pair_mean: Vec<f64>,
    pair_precision: Vec<f64>,
    /// Running estimate of the noise variance (identity link; 1 for logit).
    noise_variance: f64,
    /// Observations learned (discounted by forgetting).
    pub(crate) seen: f64,
}

impl BlockGlm {
    /// A model at its prior: zero means, precision `prior_precision · I`.
    pub fn new(shape: Shape, link: Link, prior_precision: f64) -> Self {
        let p = shape.width;
        let n_blocks = 1 + shape.option_blocks();
        let block = Block {
            mean: DVector::zeros(p),
            precision: DMatrix::identity(p, p) * prior_precision,
        };
        let cells = shape.pair_cells();
        Self {
            link,
            prior_precision,
            blocks: vec![block; n_blocks],
            pair_mean: vec![0.0; cells],
            pair_precision: vec![prior_precision; cells],
            noise_variance: 1.0,
            seen: 0.0,
            shape,
        }
    }

    /// The model's shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The link.
    pub fn link(&self) -> Link {
        self.link
    }

    /// The noise variance estimate (1 for the logit link).
    pub fn noise_variance(&self) -> f64 {
        self.noise_variance
    }

    /// Posterior mean of `η(x, a)`.
    pub fn mean_eta(&self, x: &[f64], options: &[u32]) -> f64 {
        let mut eta = dot(self.blocks[0].mean.as_slice(), x);
        for (d, &o) in options.iter().enumerate() {
            eta += dot(self.blocks[self.shape.option_block(d, o as usize)].mean.as_slice(), x);
        }
        for (d, e, off) in self.shape.pair_offsets() {
            eta += self.pair_mean[off + options[d] as usize * self.shape.options[e] + options[e] as usize];
        }
        eta
    }

    /// The posterior covariances, computed once so that [`UcbCache::var_eta`] costs `p²` per block.
    pub fn ucb_cache(&self) -> UcbCache {
        let covs = self
            .blocks
            .iter()
            .map(|b| {
                let p = b.precision.nrows();
                b.precision
                    .clone()
                    .cholesky()
                    .map_or_else(|| DMatrix::zeros(p, p), |c| c.inverse())
            })
            .collect();
        UcbCache {
            shape: self.shape.clone(),
            covs,
            pair_var: self.pair_precision.iter().map(|q| 1.0 / q).collect(),
            noise_variance: self.noise_variance,
        }
    }

    /// The posterior mean of the base block and of option `o` of dimension `d`'s block.
    pub fn option_mean(&self, d: usize, o: usize) -> &[f64] {
        self.blocks[self.shape.option_block(d, o)].mean.as_slice()
    }

    /// Discounts the evidence: `P ← P_0 + γ (P − P_0)` on every block.
    pub fn forget(&mut self, gamma: f64) {
        if gamma >= 1.0 {
            return;
        }
        let p0 = self.prior_precision;
        for block in &mut self.blocks {
            discount(&mut block.precision, p0, gamma);
        }
        for q in &mut self.pair_precision {
            *q = p0 + gamma * (*q - p0);
        }
        self.seen *= gamma;
    }

    /// Relaxes towards the prior the blocks of option `o` of dimension `d` (and every pair cell that
    /// involves it), or every block when `option` is `None`, by tempering their evidence by `ρ`:
    /// `P ← P_0 + ρ (P − P_0)` and `m ← P⁻¹ ρ P_old m` (see `temper`), so a mean that rested on little
    /// evidence falls back towards the prior instead of being kept at full strength.
    pub fn relax(&mut self, option: Option<(usize, usize)>, rho: f64) {
        let p0 = self.prior_precision;
        let blocks: Vec<usize> = match option {
            None => (0..self.blocks.len()).collect(),
            Some((d, o)) => vec![self.shape.option_block(d, o)],
        };
        for b in blocks {
            temper(&mut self.blocks[b], p0, rho);
        }
        for (d1, e1, off) in self.shape.pair_offsets() {
            for o1 in 0..self.shape.options[d1] {
                for o2 in 0..self.shape.options[e1] {
                    let named = option.is_none_or(|(d, o)| (d1 == d && o1 == o) || (e1 == d && o2 == o));
                    if named {
                        let cell = off + o1 * self.shape.options[e1] + o2;
                        let q = self.pair_precision[cell];
                        let relaxed = p0 + rho * (q - p0);
                        // Tempered like the blocks: the mean keeps the share ρ·q/q' of its evidence.
                        self.pair_mean[cell] *= rho * q / relaxed;
                        self.pair_precision[cell] = relaxed;
                    }
                }
            }
        }
    }

    /// Learns a batch (see the [module docs](self)).
    pub fn update(&mut self, batch: &[Observation<'_>]) {
        if batch.is_empty() {
            return;
        }
        let p = self.shape.width;
        let mut eta: Vec<f64> = batch.iter().map(|o| self.mean_eta(o.x, o.options)).collect();
        let nonzero: Vec<Vec<(u32, f64)>> = batch
            .iter()
            .map(|o| {
                o.x.iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0.0)
                    .map(|(j, v)| (j as u32, *v))
                    .collect()
            })
            .collect();
        // Observations per block.
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); self.blocks.len()];
        members[0] = (0..batch.len()).collect();
        for (i, obs) in batch.iter().enumerate() {
            for (d, &o) in obs.options.iter().enumerate() {
                members[self.shape.option_block(d, o as usize)].push(i);
            }
        }
        let priors: Vec<Block> = self.blocks.clone();
        let prior_pair_mean = self.pair_mean.clone();
        let prior_pair_precision = self.pair_precision.clone();
        let sweeps = if self.link == Link::Identity { 1 } else { SWEEPS };
        let mut hessian = vec![0.0; p * p];
        let mut grad = vec![0.0; p];
        for _ in 0..sweeps {
            for b in 0..self.blocks.len() {
                if members[b].is_empty() {
                    continue;
                }
                hessian.fill(0.0);
                grad.fill(0.0);
                for &i in &members[b] {
                    let obs = &batch[i];
                    let (g, h) = self.link.grad_curv(obs.y, eta[i]);
                    let (g, h) = (g * obs.weight, h * obs.weight);
                    // Rank-one update on the upper triangle, over the non-zero slots only (ascending).
                    let nz = &nonzero[i];
                    for (a, &(j, xj)) in nz.iter().enumerate() {
                        let j = j as usize;
                        grad[j] += g * xj;
                        let hx = h * xj;
                        let row = &mut hessian[j * p..(j + 1) * p];
                        for &(k, xk) in &nz[a..] {
                            row[k as usize] += hx * xk;
                        }
                    }
                }
                let prior = &priors[b];
                let mut precision = prior.precision.clone();
                for j in 0..p {
                    for k in j..p {
                        let v = hessian[j * p + k];
                        precision[(j, k)] += v;
                        if k != j {
                            precision[(k, j)] += v;
                        }
                    }
                }
                // Gradient of the log posterior: data term minus prior pull.
                let offset = &self.blocks[b].mean - &prior.mean;
                let pull = &prior.precision * offset;
                let g = DVector::from_iterator(p, grad.iter().zip(pull.iter()).map(|(a, b)| a - b));
                let Some(chol) = precision.clone().cholesky() else {
                    // Not positive definite only through rounding on a degenerate block: skip it.
                    continue;
                };
                let step = chol.solve(&g);
                self.blocks[b].mean += &step;
                self.blocks[b].precision = precision;
                for &i in &members[b] {
                    eta[i] += dot(step.as_slice(), batch[i].x);
                }
            }
            // Pair cells: one scalar Newton step each.
            for (d, e, off) in self.shape.pair_offsets() {
                let ke = self.shape.options[e];
                let cells = self.shape.options[d] * ke;
                let mut g = vec![0.0; cells];
                let mut h = vec![0.0; cells];
                for (i, obs) in batch.iter().enumerate() {
                    let c = obs.options[d] as usize * ke + obs.options[e] as usize;
                    let (gi, hi) = self.link.grad_curv(obs.y, eta[i]);
                    g[c] += gi * obs.weight;
                    h[c] += hi * obs.weight;
                }
                let mut steps = vec![0.0; cells];
                for c in 0..cells {
                    let q0 = prior_pair_precision[off + c];
                    let q = q0 + h[c];
                    let grad = g[c] - q0 * (self.pair_mean[off + c] - prior_pair_mean[off + c]);
                    steps[c] = grad / q;
                    self.pair_mean[off + c] += steps[c];
                    self.pair_precision[off + c] = q;
                }
                for (i, obs) in batch.iter().enumerate() {
                    eta[i] += steps[obs.options[d] as usize * ke + obs.options[e] as usize];
                }
            }
        }
        let w: f64 = batch.iter().map(|o| o.weight).sum();
        if self.link == Link::Identity {
            // Noise variance: running mean (discounted with the evidence) of the squared residuals of
            // the fitted model.
            let sse: f64 = batch.iter().zip(&eta).map(|(o, e)| o.weight * (o.y - e).powi(2)).sum();
            let prior_weight = self.seen;
            self.noise_variance = ((self.noise_variance * prior_weight + sse) / (prior_weight + w)).max(1e-9);
        }
        self.seen += w;
    }

    /// Draws `count` parameter samples from the posterior with standard deviations scaled by `scale`
    /// (1 = the posterior; below 1 narrows it).
    pub fn sample(&self, count: usize, scale: f64, rng: &mut impl Rng) -> Samples {
        let p = self.shape.width;
        let n_blocks = self.blocks.len();
        // weights[s][b * p + j]
        let mut weights = vec![vec![0.0; n_blocks * p]; count];
        let noise_sd = self.noise_variance.sqrt();
        for (b, block) in self.blocks.iter().enumerate() {
            let chol = block.precision.clone().cholesky();
            for sample in &mut weights {
                let z = DVector::from_iterator(p, (0..p).map(|_| StandardNormal.sample(rng)));
                // P = L Lᵀ, so w = m + L⁻ᵀ z has covariance P⁻¹.
                let dev = chol
                    .as_ref()
                    .and_then(|c| c.l().transpose().solve_upper_triangular(&z))
                    .unwrap_or_else(|| DVector::zeros(p));
                for j in 0..p {
                    sample[b * p + j] = block.mean[j] + scale * noise_sd * dev[j];
                }
            }
        }
        let pairs = (0..count)
            .map(|_| {
                self.pair_mean
                    .iter()
                    .zip(&self.pair_precision)
                    .map(|(m, q)| {
                        let z: f64 = StandardNormal.sample(rng);
                        m + scale * noise_sd * z / q.sqrt()
                    })
                    .collect()
            })
            .collect();
        Samples::new(self.shape.clone(), weights, pairs)
    }

    /// The posterior means as a single "sample" (for greedy and UCB scoring).
    pub fn means(&self) -> Samples {
        let p = self.shape.width;
        let mut w = vec![0.0; self.blocks.len() * p];
        for (b, block) in self.blocks.iter().enumerate() {
            w[b * p..(b + 1) * p].copy_from_slice(block.mean.as_slice());
        }
        Samples::new(self.shape.clone(), vec![w], vec![self.pair_mean.clone()])
    }
}

impl Link {
    /// Gradient of the log-likelihood in `η`, and the curvature (minus the second derivative).
    fn grad_curv(self, y: f64, eta: f64) -> (f64, f64) {
        match self {
            Self::Identity => (y - eta, 1.0),
            Self::Logit => {
                let p = sigmoid(eta);
                (y - p, (p * (1.0 - p)).max(MIN_CURVATURE))
            }
        }
    }
}

/// Parameter samples of a [`BlockGlm`], laid out for fast scoring.
#[derive(Clone, Debug)]
pub struct Samples {
    shape: Shape,
    weights: Vec<Vec<f64>>,
    pairs: Vec<Vec<f64>>,
    /// The same weights feature-major for scoring every draw at once:
    /// `by_feature[(j · blocks + b) · count + s]` is weight `j` of block `b` in sample `s`.
    by_feature: Vec<f64>,
}

impl Samples {
    fn new(shape: Shape, weights: Vec<Vec<f64>>, pairs: Vec<Vec<f64>>) -> Self {
        let p = shape.width;
        let count = weights.len();
        let blocks = 1 + shape.option_blocks();
        let mut by_feature = vec![0.0; p * blocks * count];
        for (s, w) in weights.iter().enumerate() {
            for b in 0..blocks {
                for j in 0..p {
                    by_feature[(j * blocks + b) * count + s] = w[b * p + j];
                }
            }
        }
        Self {
            shape,
            weights,
            pairs,
            by_feature,
        }
    }

    /// Every sample's block terms at once, for a context given by its non-zero slots:
    /// `out[b · len() + s]` is block `b`'s term in sample `s` (block 0 is the base; option blocks as in
    /// [`Shape::option_block`]). One contiguous multiply-add over all blocks and samples per non-zero
    /// slot, which vectorises; `out` must hold `terms_len() · len()` values.
    pub fn all_block_terms(&self, nonzero: &[(u32, f64)], out: &mut [f64]) {
        let stride = out.len();
        out.fill(0.0);
        for &(j, v) in nonzero {
            let column = &self.by_feature[j as usize * stride..(j as usize + 1) * stride];
            for (acc, w) in out.iter_mut().zip(column) {
                *acc += w * v;
            }
        }
    }

    /// For each sample, the sum of the pair cells `cells` (a joint action's, from
    /// [`Samples::pair_cells`]), added into `out` (length `len()`).
    pub fn add_pair_sums(&self, cells: &[u32], out: &mut [f64]) {
        for (acc, pairs) in out.iter_mut().zip(&self.pairs) {
            for &c in cells {
                *acc += pairs[c as usize];
            }
        }
    }
    /// How many samples.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// For sample `s` and a context given by its non-zero slots `(index, value)`: writes into `out`
    /// the base term (index 0) and every option's term (`1 + Σ_{d'<d} k_{d'} + o`), one sparse dot
    /// product per block (encoded contexts are mostly zeros: one-hot categories, missing slots).
    pub fn block_terms_sparse(&self, s: usize, nonzero: &[(u32, f64)], out: &mut [f64]) {
        let p = self.shape.width;
        let w = &self.weights[s];
        for (b, cell) in out.iter_mut().enumerate() {
            let block = &w[b * p..(b + 1) * p];
            let mut acc = [0.0f64; 4];
            let mut chunks = nonzero.chunks_exact(4);
            for c in &mut chunks {
                for k in 0..4 {
                    acc[k] += block[c[k].0 as usize] * c[k].1;
                }
            }
            let mut tail = 0.0;
            for &(j, v) in chunks.remainder() {
                tail += block[j as usize] * v;
            }
            *cell = (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail;
        }
    }

    /// The pair-cell values of sample `s` (empty without pair terms).
    pub fn pairs(&self, s: usize) -> &[f64] {
        self.pairs.get(s).map_or(&[], Vec::as_slice)
    }

    /// The pair cells a joint action touches, as indices into [`Samples::pairs`].
    pub fn pair_cells(&self, options: &[u32]) -> Vec<u32> {
        self.shape
            .pair_offsets()
            .into_iter()
            .map(|(d, e, off)| (off + options[d] as usize * self.shape.options[e] + options[e] as usize) as u32)
            .collect()
    }

    /// Number of block terms ([`Samples::block_terms_sparse`]'s `out` length).
    pub fn terms_len(&self) -> usize {
        1 + self.shape.option_blocks()
    }
}

/// Posterior covariances of a [`BlockGlm`], for upper confidence bounds.
#[derive(Clone, Debug)]
pub struct UcbCache {
    shape: Shape,
    covs: Vec<DMatrix<f64>>,
    pair_var: Vec<f64>,
    noise_variance: f64,
}

impl UcbCache {
    /// Posterior variance of `η(x, a)` under the block-independent posterior.
    pub fn var_eta(&self, x: &[f64], options: &[u32]) -> f64 {
        let mut var = quad(&self.covs[0], x);
        for (d, &o) in options.iter().enumerate() {
            var += quad(&self.covs[self.shape.option_block(d, o as usize)], x);
        }
        for (d, e, off) in self.shape.pair_offsets() {
            var += self.pair_var[off + options[d] as usize * self.shape.options[e] + options[e] as usize];
        }
        var * self.noise_variance
    }

    /// The parts [`UcbCache::var_eta`] sums, for evaluating many actions of one context: per block
    /// (base, then option blocks) `xᵀ Σ_b x`, and per pair cell its variance, all scaled by the
    /// noise variance. `var_eta(x, a)` is the base part plus `a`'s option blocks and pair cells.
    pub fn variance_parts(&self, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let blocks = self.covs.iter().map(|c| quad(c, x) * self.noise_variance).collect();
        let pairs = self.pair_var.iter().map(|v| v * self.noise_variance).collect();
        (blocks, pairs)
    }
}

/// `xᵀ Σ x`, skipping zero slots of `x`.
fn quad(cov: &DMatrix<f64>, x: &[f64]) -> f64 {
    let p = x.len();
    let mut total = 0.0;
    for j in 0..p {
        if x[j] == 0.0 {
            continue;
        }
        let mut row = 0.0;
        for k in 0..p {
            row += cov[(j, k)] * x[k];
        }
        total += x[j] * row;
    }
    total
}

/// The logistic function.
pub fn sigmoid(eta: f64) -> f64 {
    1.0 / (1.0 + (-eta).exp())
}

/// The logistic function through [`exp_fast`]: relative error below `1e-13`, branch-free so that a
/// loop over a slice vectorises. Scoring calls it once per candidate and posterior draw.
#[inline]
pub fn sigmoid_fast(eta: f64) -> f64 {
    1.0 / (1.0 + exp_fast(-eta))
}

/// `eˣ` without a libm call: `x = k·ln 2 + r` with `|r| ≤ ln 2 / 2`, a degree-11 Taylor polynomial
/// for `eʳ` (truncation error `r¹²/12! < 7e-15`), and `2ᵏ` built from its bits. `x` is clamped to
/// `[-708, 709]`, where `eˣ` is a normal double; the rounding of `k` uses the `1.5·2⁵²` trick, so no
/// step branches.
#[inline]
pub fn exp_fast(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = x.clamp(-708.0, 709.0);
    let t = x * std::f64::consts::LOG2_E + MAGIC;
    let k = t - MAGIC;
    // The low bits of `t` hold k as a two's-complement integer (|k| ≤ 1023 ≪ 2^51).
    let k_bits = t.to_bits().wrapping_sub(MAGIC.to_bits());
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 39_916_800.0;
    for c in [
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    p * f64::from_bits(k_bits.wrapping_add(1023) << 52)
}

/// Dot product with eight independent accumulators: a plain `.sum()` over `f64` is one serial
/// dependency chain (IEEE order), which neither pipelines nor vectorises; this is ~4–8× faster and
/// still deterministic (always the same order).
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for k in chunks * 8..n {
        tail += a[k] * b[k];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Tempers a block's evidence by `rho`: with prior `N(0, p0⁻¹ I)` and posterior `N(m, P⁻¹)`, the
/// evidence is `P − p0 I` with natural mean `P m`; keeping the share `rho` of it gives
/// `P' = p0 I + rho (P − p0 I)` and `m' = P'⁻¹ (rho P m)`. Well-measured directions keep their mean,
/// weakly measured ones fall back towards the prior's 0.
fn temper(block: &mut Block, p0: f64, rho: f64) {
    let natural = &block.precision * &block.mean * rho;
    discount(&mut block.precision, p0, rho);
    if let Some(chol) = block.precision.clone().cholesky() {
        block.mean = chol.solve(&natural);
    }
}

fn discount(precision: &mut DMatrix<f64>, p0: f64, gamma: f64) {
    let n = precision.nrows();
    for j in 0..n {
        for k in 0..n {
            let prior = if j == k { p0 } else { 0.0 };
            precision[(j, k)] = prior + gamma * (precision[(j, k)] - prior);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt as _, SeedableRng as _};

    use super::*;

    fn shape() -> Shape {
        Shape {
            width: 3,
            options: vec![2, 3],
            pairs: true,
        }
    }

    #[test]
    fn fast_exp_and_sigmoid_match_libm() {
        let mut worst: f64 = 0.0;
        let mut x = -700.0;
        while x < 700.0 {
            worst = worst.max((exp_fast(x) - x.exp()).abs() / x.exp());
            worst = worst.max((sigmoid_fast(x / 20.0) - sigmoid(x / 20.0)).abs() / sigmoid(x / 20.0));
            x += 0.0137;
        }
        assert!(worst < 1e-13, "relative error {worst}");
        assert_eq!(exp_fast(0.0), 1.0);
        assert!(exp_fast(-1e6) > 0.0 && exp_fast(1e6).is_finite());
        assert!(sigmoid_fast(-1e6) >= 0.0 && sigmoid_fast(1e6) <= 1.0);
    }

    /// Data from a known logistic model; the posterior mean must rank options like the truth.
    #[test]
    fn logit_recovers_the_better_option_per_context() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut model = BlockGlm::new(shape(), Link::Logit, 1.0);
        for _ in 0..20 {
            let xs: Vec<[f64; 3]> = (0..2000).map(|_| [1.0, rng.random::<f64>() * 2.0 - 1.0, 0.0]).collect();
            let acts: Vec<[u32; 2]> = (0..2000)
                .map(|_| [rng.random_range(0..2u32), rng.random_range(0..3u32)])
                .collect();
            let ys: Vec<f64> = xs
                .iter()
                .zip(&acts)
                .map(|(x, a)| {
                    // option 1 of dim 0 is better when x1 > 0; option 2 of dim 1 is always better.
                    let eta =
                        -1.0 + if a[0] == 1 { 1.5 * x[1] } else { -1.5 * x[1] } + if a[1] == 2 { 0.8 } else { 0.0 };
                    f64::from(u8::from(rng.random::<f64>() < sigmoid(eta)))
                })
                .collect();
            let batch: Vec<Observation<'_>> = (0..2000)
                .map(|i| Observation {
                    x: &xs[i],
                    options: &acts[i],
                    y: ys[i],
                    weight: 1.0,
                })
                .collect();
            model.update(&batch);
        }
        let pos = [1.0, 0.8, 0.0];
        let neg = [1.0, -0.8, 0.0];
        assert!(model.mean_eta(&pos, &[1, 0]) > model.mean_eta(&pos, &[0, 0]));
        assert!(model.mean_eta(&neg, &[0, 0]) > model.mean_eta(&neg, &[1, 0]));
        assert!(model.mean_eta(&pos, &[1, 2]) > model.mean_eta(&pos, &[1, 1]));
        // Calibrated: predicted probability near the truth.
        let truth = sigmoid(-1.0 + 1.5 * 0.8 + 0.8);
        let got = sigmoid(model.mean_eta(&pos, &[1, 2]));
        assert!((got - truth).abs() < 0.05, "{got} vs {truth}");
    }

    #[test]
    fn identity_link_fits_a_linear_reward() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut model = BlockGlm::new(shape(), Link::Identity, 1.0);
        let xs: Vec<[f64; 3]> = (0..4000)
            .map(|_| [1.0, rng.random::<f64>(), rng.random::<f64>()])
            .collect();
        let acts: Vec<[u32; 2]> = (0..4000)
            .map(|_| [rng.random_range(0..2u32), rng.random_range(0..3u32)])
            .collect();
        let ys: Vec<f64> = xs
            .iter()
            .zip(&acts)
            .map(|(x, a)| 2.0 * x[1] + f64::from(a[1]) * x[2] + 0.1 * (rng.random::<f64>() - 0.5))
            .collect();
        let batch: Vec<Observation<'_>> = (0..4000)
            .map(|i| Observation {
                x: &xs[i],
                options: &acts[i],
                y: ys[i],
                weight: 1.0,
            })
            .collect();
        for _ in 0..3 {
            model.update(&batch);
        }
        let x = [1.0, 0.5, 0.5];
        let err = (model.mean_eta(&x, &[0, 2]) - 2.0).abs();
        assert!(err < 0.1, "prediction error {err}");
        assert!(model.noise_variance() < 0.1);
        // The variance parts sum to the posterior variance of η for every action.
        let ucb = model.ucb_cache();
        let (blocks, pairs) = ucb.variance_parts(&x);
        let layout = crate::ascent::Layout::new(model.shape());
        for a in [[0u32, 0], [1, 2], [0, 1]] {
            let parts = crate::ascent::Additive {
                terms: &blocks,
                pairs: &pairs,
            };
            let direct = ucb.var_eta(&x, &a);
            assert!((parts.total(&layout, &a) - direct).abs() < 1e-12 * direct.max(1.0));
        }
    }

    #[test]
    fn forgetting_moves_precision_towards_the_prior_and_sampling_is_seeded() {
        let mut model = BlockGlm::new(shape(), Link::Logit, 2.0);
        let x = [1.0, 0.5, -0.5];
        let batch = vec![
            Observation {
                x: &x,
                options: &[0, 1],
                y: 1.0,
                weight: 1.0,
            };
            100
        ];
        model.update(&batch);
        let before = model.blocks[0].precision[(0, 0)];
        model.forget(0.5);
        let after = model.blocks[0].precision[(0, 0)];
        assert!((after - (2.0 + 0.5 * (before - 2.0))).abs() < 1e-12);
        let a = model.sample(4, 1.0, &mut StdRng::seed_from_u64(3));
        let b = model.sample(4, 1.0, &mut StdRng::seed_from_u64(3));
        assert_eq!(a.weights, b.weights);
    }

    /// Relaxing tempers the evidence: precision `P_0 + ρ (P − P_0)`, and the mean `P'⁻¹ ρ P m` — a
    /// well-measured block keeps (nearly) its mean, a weakly measured one falls back towards 0.
    #[test]
    fn relaxing_tempers_precision_and_mean() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut model = BlockGlm::new(shape(), Link::Identity, 1.0);
        let xs: Vec<[f64; 3]> = (0..3000).map(|_| [1.0, rng.random::<f64>(), 0.0]).collect();
        // Option 1 of dimension 0 is seen 3,000 times, option 0 of dimension 1 three times.
        let heavy: Vec<Observation<'_>> = xs
            .iter()
            .map(|x| Observation {
                x,
                options: &[1, 1],
                y: 2.0,
                weight: 1.0,
            })
            .collect();
        let light: Vec<Observation<'_>> = xs[..3]
            .iter()
            .map(|x| Observation {
                x,
                options: &[0, 0],
                y: 2.0,
                weight: 1.0,
            })
            .collect();
        for _ in 0..3 {
            model.update(&heavy);
            model.update(&light);
        }
        let block = |m: &BlockGlm, d, o| m.blocks[m.shape.option_block(d, o)].clone();
        let (strong, weak) = (block(&model, 0, 1), block(&model, 1, 0));
        let rho = 0.05;
        let mut relaxed = model.clone();
        relaxed.relax(None, rho);
        let (strong_after, weak_after) = (block(&relaxed, 0, 1), block(&relaxed, 1, 0));
        // Precision: exactly P_0 + ρ (P − P_0).
        let expected = strong.precision[(0, 0)] * rho + 1.0 * (1.0 - rho);
        assert!((strong_after.precision[(0, 0)] - expected).abs() < 1e-9);
        // Mean: exactly P'⁻¹ ρ P m, which keeps a well-measured mean and shrinks a weak one.
        let natural = &strong.precision * &strong.mean * rho;
        assert!((&strong_after.precision * &strong_after.mean - natural).norm() < 1e-9);
        let keep = |before: &Block, after: &Block| after.mean.norm() / before.mean.norm();
        assert!(keep(&strong, &strong_after) > 0.9, "{}", keep(&strong, &strong_after));
        assert!(keep(&weak, &weak_after) < 0.5, "{}", keep(&weak, &weak_after));
    }
}
