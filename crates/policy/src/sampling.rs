//! Seeded randomness and the eligible joint actions of one customer, shared by every policy.
//!
//! - [`customer_rng`]: the generator of one customer's decision, derived from the policy seed, the round
//!   and the customer id, so decisions do not depend on batch order or thread count.
//! - [`Eligible`]: the joint actions one customer may receive (eligibility mask and exclusion rules),
//!   with their count (without enumerating) and uniform sampling among them.

use offerloop_domain::{ActionId, ActionSpace, Customer, EligibilityMask, FeatureSchema, JointAction};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use xxhash_rust::xxh3::Xxh3;

use crate::{Error, Result};

/// Above this many eligible joint actions, policies do not enumerate them (see each policy's docs).
pub const ENUMERATION_LIMIT: u64 = 4096;

/// Uniform draws rejected (excluded by a rule) before falling back to enumeration.
const MAX_REJECTIONS: usize = 256;

/// The generator for one customer in one round: a hash of (seed, round, stream, customer id).
/// `stream` separates independent uses (the decision draw, a Monte-Carlo estimate, ...).
pub fn customer_rng(seed: u64, round: u64, stream: u64, customer_id: &str) -> StdRng {
    let mut h = Xxh3::new();
    h.update(&seed.to_le_bytes());
    h.update(&round.to_le_bytes());
    h.update(&stream.to_le_bytes());
    h.update(customer_id.as_bytes());
    StdRng::seed_from_u64(h.digest())
}

/// The generator for what a whole round shares (e.g. posterior samples): (seed, round, stream).
pub fn round_rng(seed: u64, round: u64, stream: u64) -> StdRng {
    let mut h = Xxh3::new();
    h.update(b"round");
    h.update(&seed.to_le_bytes());
    h.update(&round.to_le_bytes());
    h.update(&stream.to_le_bytes());
    StdRng::seed_from_u64(h.digest())
}

/// A fingerprint of an action space and feature schema: dimension and option names in order, the
/// exclusion rules, and feature names and types. A snapshot only restores onto the same fingerprint.
pub fn space_fingerprint(space: &ActionSpace, schema: &FeatureSchema) -> u64 {
    let mut h = Xxh3::new();
    for d in space.dimensions() {
        h.update(d.name.as_str().as_bytes());
        h.update(&[0]);
        for o in &d.options {
            h.update(o.id.as_str().as_bytes());
            h.update(&[1]);
        }
        h.update(&[2]);
    }
    for r in space.rules() {
        h.update(format!("{:?}", r.conditions).as_bytes());
    }
    for f in schema.specs() {
        h.update(f.name.as_str().as_bytes());
        h.update(f.ty.as_str().as_bytes());
        h.update(&[3]);
    }
    h.digest()
}

/// Checks a customer's feature vector against the schema length.
///
/// # Errors
/// [`Error::FeatureCount`].
pub fn check_features(customer: &Customer, schema: &FeatureSchema) -> Result<()> {
    if customer.features.len() == schema.len() {
        Ok(())
    } else {
        Err(Error::FeatureCount {
            customer: customer.id.to_string(),
            found: customer.features.len(),
            expected: schema.len(),
        })
    }
}

/// The joint actions one customer may receive.
#[derive(Debug, Clone)]
pub struct Eligible<'a> {
    space: &'a ActionSpace,
    mask: EligibilityMask,
    count: u64,
}

impl<'a> Eligible<'a> {
    /// The eligible actions of `customer` (whose features were checked against the schema).
    ///
    /// # Errors
    /// [`Error::NoEligibleAction`] when eligibility and rules leave nothing.
    pub fn of(space: &'a ActionSpace, customer: &Customer) -> Result<Self> {
        let mask = space.eligibility_mask(&customer.features);
        let count = space.count_for(&mask);
        if count == 0 {
            return Err(Error::NoEligibleAction {
                customer: customer.id.to_string(),
            });
        }
        Ok(Self { space, mask, count })
    }

    /// Every action of `space` allowed by the rules, for a space without eligibility rules (so the
    /// same for every customer); `count` must be `space.count()`.
    pub fn everyone(space: &'a ActionSpace, count: u64) -> Self {
        Self {
            space,
            mask: space.full_mask(),
            count,
        }
    }

    /// The action space.
    pub fn space(&self) -> &'a ActionSpace {
        self.space
    }

    /// The per-dimension eligibility mask.
    pub fn mask(&self) -> &EligibilityMask {
        &self.mask
    }

    /// How many joint actions are eligible (at least 1).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether `action` is eligible.
    pub fn contains(&self, action: &JointAction) -> bool {
        self.space.is_allowed(action, &self.mask)
    }

    /// Whether the action with this id is eligible (false for an id outside the space).
    pub fn contains_id(&self, id: ActionId) -> bool {
        self.space.decode(id).is_ok_and(|a| self.contains(&a))
    }

    /// Every eligible action, in id order (lazy).
    pub fn iter(&self) -> impl Iterator<Item = (ActionId, JointAction)> + '_ {
        self.space.iter_for(self.mask.clone())
    }

    /// Whether the eligible actions are few enough to enumerate ([`ENUMERATION_LIMIT`]).
    pub fn enumerable(&self) -> bool {
        self.count <= ENUMERATION_LIMIT
    }

    /// A uniformly random eligible action: draws an option per dimension from the mask and rejects
    /// excluded combinations; after many rejections (rules that exclude nearly everything) it picks
    /// the k-th eligible action by enumeration instead. Either way every eligible action has
    /// probability `1 / count()`.
    pub fn sample_uniform(&self, rng: &mut StdRng) -> (ActionId, JointAction) {
        let options: Vec<Vec<u32>> = (0..self.space.dimensions().len())
            .map(|d| {
                self.mask
                    .allowed(d)
                    .map(|set| set.iter().map(|o| o as u32).collect())
                    .unwrap_or_default()
            })
            .collect();
        for _ in 0..MAX_REJECTIONS {
            let action = JointAction(options.iter().map(|o| o[rng.random_range(0..o.len())]).collect());
            if !self.space.is_excluded(&action) {
                return (self.encode(&action), action);
            }
        }
        let k = rng.random_range(0..self.count);
        // `count` is the exact number of items `iter` yields, so the k-th exists.
        self.iter()
            .nth(usize::try_from(k).unwrap_or(usize::MAX))
            .unwrap_or_else(|| self.fallback())
    }

    /// The id of an action of this space (the action was built from the space's own options).
    pub fn encode(&self, action: &JointAction) -> ActionId {
        // Invariant: actions built from mask options have the right length and in-range indices.
        self.space.encode(action).unwrap_or(ActionId(0))
    }

    fn fallback(&self) -> (ActionId, JointAction) {
        // Unreachable when `count` is exact; the first eligible action keeps the policy total.
        self.iter().next().unwrap_or((ActionId(0), JointAction(Vec::new())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_rng_depends_on_every_input() {
        let draw = |seed, round, stream, id: &str| customer_rng(seed, round, stream, id).random::<u64>();
        let base = draw(1, 2, 3, "c-1");
        assert_eq!(base, draw(1, 2, 3, "c-1"));
        assert_ne!(base, draw(9, 2, 3, "c-1"));
        assert_ne!(base, draw(1, 9, 3, "c-1"));
        assert_ne!(base, draw(1, 2, 9, "c-1"));
        assert_ne!(base, draw(1, 2, 3, "c-2"));
    }
}
