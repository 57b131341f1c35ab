//! Coordinate ascent over pairwise-additive quantities: the approximate maximiser the contextual
//! policies use for joint action spaces too large to enumerate.
//!
//! Every quantity a contextual objective is built from — the linear predictor `η`, its posterior
//! variance (UCB), the value of a conversion, the option costs — is *pairwise additive* in the joint
//! action `a`: a base term, one term per dimension's option, and one cell per pair of dimensions'
//! options ([`Additive`]). Changing dimension `d` alone therefore changes each quantity by the
//! difference of `d`'s own term and of its `D − 1` pair cells, so [`maximise`] evaluates a candidate
//! option in `O(D)` instead of re-summing the whole action in `O(D²)`.
//!
//! The search starts from a given action and repeatedly re-chooses each dimension's option with the
//! others fixed, accepting only strict improvements among allowed actions, until a sweep changes
//! nothing or `max_sweeps` sweeps. The result is a local optimum for single-dimension changes; it is
//! the exact argmax when the objective is monotone in a quantity without pair cells, because that
//! quantity's maximum decomposes per dimension.

use crate::glm::Shape;

/// Where each dimension's option terms and each pair of dimensions' cells sit, for a model [`Shape`].
#[derive(Clone, Debug)]
pub struct Layout {
    options: Vec<usize>,
    /// Index of each dimension's first option term (term 0 is the base).
    block_base: Vec<usize>,
    /// `pair_offset[d · D + e]`, for `d < e`: the first cell of the pair; empty without pair terms.
    pair_offset: Vec<usize>,
}

impl Layout {
    /// The layout of `shape`'s option blocks and pair cells.
    pub fn new(shape: &Shape) -> Self {
        let dims = shape.options.len();
        let block_base = (0..dims).map(|d| shape.option_block(d, 0)).collect();
        let mut pair_offset = Vec::new();
        if shape.pairs {
            pair_offset = vec![0; dims * dims];
            for (d, e, offset) in shape.pair_offsets() {
                pair_offset[d * dims + e] = offset;
            }
        }
        Self {
            options: shape.options.clone(),
            block_base,
            pair_offset,
        }
    }

    /// Number of dimensions.
    pub fn dims(&self) -> usize {
        self.options.len()
    }

    /// The term index of option `o` of dimension `d`.
    pub fn term(&self, d: usize, o: u32) -> usize {
        self.block_base[d] + o as usize
    }

    /// Where the cells of dimension `d`'s options with option `oe` of dimension `e` (`e ≠ d`) sit:
    /// option `o`'s cell is `base + o · stride`.
    fn pair_row(&self, d: usize, e: usize, oe: u32) -> (usize, usize) {
        let dims = self.dims();
        if d < e {
            (self.pair_offset[d * dims + e] + oe as usize, self.options[e])
        } else {
            (self.pair_offset[e * dims + d] + oe as usize * self.options[d], 1)
        }
    }

    /// The cell of options `od` of `d` and `oe` of `e` (`d ≠ e`, either order).
    fn cell(&self, d: usize, od: u32, e: usize, oe: u32) -> usize {
        let dims = self.dims();
        if d < e {
            self.pair_offset[d * dims + e] + od as usize * self.options[e] + oe as usize
        } else {
            self.pair_offset[e * dims + d] + oe as usize * self.options[d] + od as usize
        }
    }
}

/// One pairwise-additive quantity of a joint action `a`:
/// `terms[0] + Σ_d terms[term(d, a_d)] + Σ_{d<e} pairs[cell(d, a_d, e, a_e)]`.
/// `pairs` may be empty (no pair cells).
#[derive(Clone, Copy, Debug)]
pub struct Additive<'a> {
    /// The base term, then the option terms (indexed as in [`Layout::term`]).
    pub terms: &'a [f64],
    /// The pair cells, or empty.
    pub pairs: &'a [f64],
}

impl Additive<'_> {
    /// The quantity's value for `action`.
    pub fn total(&self, layout: &Layout, action: &[u32]) -> f64 {
        let mut total = self.terms[0];
        for (d, &o) in action.iter().enumerate() {
            total += self.terms[layout.term(d, o)];
        }
        if !self.pairs.is_empty() {
            for d in 0..action.len() {
                for e in d + 1..action.len() {
                    total += self.pairs[layout.cell(d, action[d], e, action[e])];
                }
            }
        }
        total
    }

    /// What every option of dimension `d` contributes given the other dimensions of `action` (its
    /// term and its pair cells with them), into `out` (one value per option of `d`).
    fn contributions(&self, layout: &Layout, action: &[u32], d: usize, out: &mut [f64]) {
        let base = layout.block_base[d];
        out.copy_from_slice(&self.terms[base..base + out.len()]);
        if !self.pairs.is_empty() {
            for (e, &oe) in action.iter().enumerate() {
                if e != d {
                    let (start, stride) = layout.pair_row(d, e, oe);
                    for (o, slot) in out.iter_mut().enumerate() {
                        *slot += self.pairs[start + o * stride];
                    }
                }
            }
        }
    }

    /// What option `o` of dimension `d` contributes given the other dimensions of `action`: its term
    /// and its pair cells with them.
    #[cfg(test)]
    fn contribution(&self, layout: &Layout, action: &[u32], d: usize, o: u32) -> f64 {
        let mut total = self.terms[layout.term(d, o)];
        if !self.pairs.is_empty() {
            for (e, &oe) in action.iter().enumerate() {
                if e != d {
                    total += self.pairs[layout.cell(d, o, e, oe)];
                }
            }
        }
        total
    }
}

/// Coordinate ascent from `start` (see the [module docs](self)).
///
/// - `quantities`: the additive parts; `objective` maps their values (same order) to the score.
/// - `allowed[d]`: the options dimension `d` may take; `is_allowed` checks a whole action (rules).
///
/// Returns the best allowed action reached, or `None` when neither `start` nor any single-option
/// change of it is allowed.
pub fn maximise(
    layout: &Layout,
    quantities: &[Additive<'_>],
    start: Vec<u32>,
    allowed: &[Vec<u32>],
    is_allowed: impl Fn(&[u32]) -> bool,
    objective: impl Fn(&[f64]) -> f64,
    max_sweeps: usize,
) -> Option<Vec<u32>> {
    let mut action = start;
    let mut parts: Vec<f64> = quantities.iter().map(|q| q.total(layout, &action)).collect();
    let mut best = if is_allowed(&action) {
        objective(&parts)
    } else {
        f64::NEG_INFINITY
    };
    let k = quantities.len();
    let mut candidate = vec![0.0; k];
    let mut kept = parts.clone();
    // gains[q · k_d + o]: what option `o` of the dimension being re-chosen contributes to quantity q.
    let mut gains = Vec::new();
    for _ in 0..max_sweeps {
        let mut changed = false;
        for (d, options) in allowed.iter().enumerate() {
            let current = action[d];
            let kd = layout.options[d];
            gains.clear();
            gains.resize(k * kd, 0.0);
            for (q, out) in quantities.iter().zip(gains.chunks_exact_mut(kd)) {
                q.contributions(layout, &action, d, out);
            }
            kept.copy_from_slice(&parts);
            let mut best_option = current;
            for &o in options {
                if o == current {
                    continue;
                }
                for (i, slot) in candidate.iter_mut().enumerate() {
                    *slot = parts[i] - gains[i * kd + current as usize] + gains[i * kd + o as usize];
                }
                let value = objective(&candidate);
                if value > best {
                    // The rules are only checked for an improvement.
                    action[d] = o;
                    let ok = is_allowed(&action);
                    action[d] = current;
                    if ok {
                        best = value;
                        best_option = o;
                        kept.copy_from_slice(&candidate);
                    }
                }
            }
            action[d] = best_option;
            parts.copy_from_slice(&kept);
            changed |= best_option != current;
        }
        if !changed {
            break;
        }
    }
    (best > f64::NEG_INFINITY).then_some(action)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    use super::*;

    fn shape(options: Vec<usize>, pairs: bool) -> Shape {
        Shape {
            width: 1,
            options,
            pairs,
        }
    }

    fn cells(shape: &Shape) -> usize {
        shape
            .pair_offsets()
            .last()
            .map_or(0, |&(d, e, off)| off + shape.options[d] * shape.options[e])
    }

    /// Every joint action of `options`, in odometer order.
    fn every_action(options: &[usize]) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new()];
        for &k in options {
            out = out
                .into_iter()
                .flat_map(|a| {
                    (0..k as u32).map(move |o| {
                        let mut a = a.clone();
                        a.push(o);
                        a
                    })
                })
                .collect();
        }
        out
    }

    fn random_terms(rng: &mut StdRng, n: usize) -> Vec<f64> {
        (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
    }

    #[test]
    fn without_pairs_a_monotone_objective_reaches_the_exact_argmax() {
        let shape = shape(vec![3, 4, 2, 5], false);
        let layout = Layout::new(&shape);
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..50 {
            let terms = random_terms(&mut rng, 1 + 14);
            let eta = Additive {
                terms: &terms,
                pairs: &[],
            };
            let allowed: Vec<Vec<u32>> = shape.options.iter().map(|&k| (0..k as u32).collect()).collect();
            let found = maximise(&layout, &[eta], vec![0; 4], &allowed, |_| true, |p| p[0], 10).unwrap();
            let best = every_action(&shape.options)
                .into_iter()
                .max_by(|a, b| eta.total(&layout, a).total_cmp(&eta.total(&layout, b)))
                .unwrap();
            assert_eq!(found, best);
        }
    }

    #[test]
    fn contributions_match_totals_for_either_order_of_a_pair() {
        let shape = shape(vec![2, 3, 4], true);
        let layout = Layout::new(&shape);
        let mut rng = StdRng::seed_from_u64(3);
        let terms = random_terms(&mut rng, 10);
        let pairs = random_terms(&mut rng, cells(&shape));
        let q = Additive {
            terms: &terms,
            pairs: &pairs,
        };
        for action in every_action(&shape.options) {
            for d in 0..3 {
                for o in 0..shape.options[d] as u32 {
                    let mut moved = action.clone();
                    moved[d] = o;
                    let delta = q.contribution(&layout, &action, d, o) - q.contribution(&layout, &action, d, action[d]);
                    assert!((q.total(&layout, &moved) - q.total(&layout, &action) - delta).abs() < 1e-12);
                    let mut all = vec![0.0; shape.options[d]];
                    q.contributions(&layout, &action, d, &mut all);
                    assert!((all[o as usize] - q.contribution(&layout, &action, d, o)).abs() < 1e-12);
                }
            }
        }
    }

    proptest! {
        /// The result is allowed, and no allowed single-dimension change improves it (evaluated afresh,
        /// not through the incremental parts), whatever the terms, pairs, rules and objective shape.
        #[test]
        fn the_result_is_an_allowed_local_optimum(
            options in prop::collection::vec(2usize..5, 2..5),
            seed in any::<u64>(),
            banned in prop::collection::vec((0usize..4, 0u32..4), 0..4),
            hurdle in any::<bool>(),
        ) {
            let shape = shape(options, true);
            let layout = Layout::new(&shape);
            let mut rng = StdRng::seed_from_u64(seed);
            let n_terms = 1 + shape.options.iter().sum::<usize>();
            let eta_terms = random_terms(&mut rng, n_terms);
            let eta_pairs = random_terms(&mut rng, cells(&shape));
            let value_terms: Vec<f64> = random_terms(&mut rng, n_terms).iter().map(|v| v + 2.0).collect();
            let quantities = [
                Additive { terms: &eta_terms, pairs: &eta_pairs },
                Additive { terms: &value_terms, pairs: &[] },
            ];
            // A rule: an action is excluded when it takes a banned option of a banned dimension.
            let is_allowed = |a: &[u32]| !banned.iter().any(|&(d, o)| a.get(d) == Some(&o));
            let objective = |p: &[f64]| if hurdle { crate::glm::sigmoid(p[0]) * p[1].max(0.0) } else { p[0] };
            let fresh = |a: &[u32]| {
                let parts: Vec<f64> = quantities.iter().map(|q| q.total(&layout, a)).collect();
                objective(&parts)
            };
            let allowed: Vec<Vec<u32>> = shape.options.iter().map(|&k| (0..k as u32).collect()).collect();
            let start: Vec<u32> = vec![0; shape.options.len()];
            match maximise(&layout, &quantities, start.clone(), &allowed, is_allowed, objective, 100) {
                Some(found) => {
                    prop_assert!(is_allowed(&found));
                    let value = fresh(&found);
                    for d in 0..found.len() {
                        for o in 0..shape.options[d] as u32 {
                            let mut moved = found.clone();
                            moved[d] = o;
                            if is_allowed(&moved) {
                                prop_assert!(fresh(&moved) <= value + 1e-9, "{:?} beats {:?}", moved, found);
                            }
                        }
                    }
                }
                None => {
                    // Only when neither the start nor any single change of it is allowed.
                    prop_assert!(!is_allowed(&start));
                    for d in 0..start.len() {
                        for o in 0..shape.options[d] as u32 {
                            let mut moved = start.clone();
                            moved[d] = o;
                            prop_assert!(!is_allowed(&moved));
                        }
                    }
                }
            }
        }
    }
}
