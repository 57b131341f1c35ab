//! The action space: every joint action (one option in every dimension) a customer may receive.
//!
//! # Encoding
//! A joint action is a vector of option indices, one per dimension ([`JointAction`]). Its
//! [`ActionId`] is the mixed-radix number whose digits are those indices, the first dimension most
//! significant: `id = Σ index[d] · stride[d]` with `stride[last] = 1` and
//! `stride[d] = stride[d+1] · options(d+1)`. Increasing ids are therefore the lexicographic order of the
//! index vectors, which is the stable iteration order. Ten dimensions of ten options (10^10 joint actions)
//! encode in a `u64`; a space whose product overflows `u64` is refused when built.
//!
//! # Exclusions and eligibility
//! An [`ExclusionRule`] forbids every joint action that matches all of its conditions
//! (`channel = sms` and `send_time ∈ {evening, night}`). An [`EligibilityRule`] makes one option
//! available only to customers whose features satisfy a [`Predicate`]; for one customer that yields an
//! [`EligibilityMask`] (the allowed options of each dimension).
//!
//! # Counting without enumerating
//! The number of allowed joint actions is the product of the allowed options per dimension minus the
//! size of the union of the rules' match sets, computed by inclusion–exclusion over the rules. Each
//! term is an intersection of per-dimension option sets, whose size is a product, so no joint action is
//! ever listed. Intersections that are empty are pruned with all their supersets, so the work is the
//! number of non-empty rule intersections: linear in the rules when they touch disjoint options, at
//! worst `2^rules` (the reader caps a use case at [`MAX_RULES`] rules).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::dimension::{Dimension, OptionSpec};
use crate::features::FeatureValue;
use crate::ids::Identifier;
use crate::predicate::Predicate;
use crate::{Error, Result};

/// Most exclusion rules one action space accepts (inclusion–exclusion is exponential in the worst
/// case; 24 overlapping rules are still fast, and real use cases have a handful).
pub const MAX_RULES: usize = 24;

/// The compact code of a joint action in its [`ActionSpace`]; see the [module docs](self).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionId(pub u64);

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a{}", self.0)
    }
}

/// One option index per dimension, in dimension order.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JointAction(pub Vec<u32>);

impl JointAction {
    /// The option index chosen in dimension `d`.
    pub fn option(&self, d: usize) -> Option<usize> {
        self.0.get(d).map(|&i| i as usize)
    }
}

/// A set of option indices of one dimension.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OptionSet {
    words: Vec<u64>,
    len: usize,
}

impl OptionSet {
    /// The set of all `len` options.
    pub fn full(len: usize) -> Self {
        let mut words = vec![u64::MAX; len.div_ceil(64)];
        if let Some(last) = words.last_mut() {
            let used = len % 64;
            if used != 0 {
                *last = (1u64 << used) - 1;
            }
        }
        Self { words, len }
    }

    /// The empty set over `len` options.
    pub fn empty(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Whether option `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// Adds option `i` (ignored when out of range).
    pub fn insert(&mut self, i: usize) {
        if i < self.len {
            self.words[i / 64] |= 1 << (i % 64);
        }
    }

    /// Removes option `i`.
    pub fn remove(&mut self, i: usize) {
        if i < self.len {
            self.words[i / 64] &= !(1 << (i % 64));
        }
    }

    /// How many options are in the set.
    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The intersection with `other` (same dimension).
    pub fn intersection(&self, other: &Self) -> Self {
        let words = self.words.iter().zip(&other.words).map(|(a, b)| a & b).collect();
        Self { words, len: self.len }
    }

    /// The members, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|&i| self.contains(i))
    }
}

/// A rule that forbids every joint action matching all its conditions.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ExclusionRule {
    /// Name shown in reports and errors.
    pub name: String,
    /// For each constrained dimension, the options that (together with the others) are forbidden.
    pub conditions: BTreeMap<Identifier, Vec<Identifier>>,
}

/// A rule that makes one option available only to customers satisfying a predicate.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct EligibilityRule {
    /// The dimension of the option.
    pub dimension: Identifier,
    /// The option.
    pub option: Identifier,
    /// Who may receive it (feature indices refer to the use case's schema).
    pub when: Predicate,
}

/// For one customer, the options of each dimension they may receive.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EligibilityMask {
    allowed: Vec<OptionSet>,
}

impl EligibilityMask {
    /// The allowed options of dimension `d`.
    pub fn allowed(&self, d: usize) -> Option<&OptionSet> {
        self.allowed.get(d)
    }

    /// Whether option `o` of dimension `d` is allowed.
    pub fn allows(&self, d: usize, o: usize) -> bool {
        self.allowed.get(d).is_some_and(|s| s.contains(o))
    }
}

/// A rule compiled to one option set per dimension (`None`: unconstrained).
#[derive(Clone, Debug)]
struct Pattern {
    sets: Vec<Option<OptionSet>>,
}

impl Pattern {
    fn matches(&self, action: &JointAction) -> bool {
        self.sets
            .iter()
            .zip(&action.0)
            .all(|(set, &o)| set.as_ref().is_none_or(|s| s.contains(o as usize)))
    }
}

/// Every joint action of a use case; see the [module docs](self).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "ActionSpaceDef", into = "ActionSpaceDef")]
pub struct ActionSpace {
    dimensions: Vec<Dimension>,
    rules: Vec<ExclusionRule>,
    eligibility: Vec<EligibilityRule>,
    strides: Vec<u64>,
    size: u64,
    patterns: Vec<Pattern>,
    /// `(dimension index, option index, predicate)` of every eligibility rule.
    gates: Vec<(usize, usize, Predicate)>,
}

/// The serialised form: what defines a space; the rest is derived when it is read back.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ActionSpaceDef {
    dimensions: Vec<Dimension>,
    rules: Vec<ExclusionRule>,
    eligibility: Vec<EligibilityRule>,
}

impl TryFrom<ActionSpaceDef> for ActionSpace {
    type Error = Error;
    fn try_from(def: ActionSpaceDef) -> Result<Self> {
        Self::new(def.dimensions, def.rules, def.eligibility)
    }
}

impl From<ActionSpace> for ActionSpaceDef {
    fn from(space: ActionSpace) -> Self {
        Self {
            dimensions: space.dimensions,
            rules: space.rules,
            eligibility: space.eligibility,
        }
    }
}

impl ActionSpace {
    /// Builds a space from dimensions, exclusion rules and eligibility rules.
    ///
    /// # Errors
    /// [`Error::NoDimensions`], [`Error::EmptyDimension`], [`Error::Duplicate`] (dimension names),
    /// [`Error::ActionSpaceTooLarge`], [`Error::UnknownDimension`] / [`Error::UnknownOption`] in a rule,
    /// [`Error::OutOfRange`] for more than [`MAX_RULES`] rules, and [`Error::EmptyActionSpace`] when the
    /// rules forbid every joint action.
    pub fn new(
        dimensions: Vec<Dimension>,
        rules: Vec<ExclusionRule>,
        eligibility: Vec<EligibilityRule>,
    ) -> Result<Self> {
        if dimensions.is_empty() {
            return Err(Error::NoDimensions);
        }
        for (i, d) in dimensions.iter().enumerate() {
            if d.options.is_empty() {
                return Err(Error::EmptyDimension(d.name.to_string()));
            }
            if dimensions[..i].iter().any(|e| e.name == d.name) {
                return Err(Error::Duplicate {
                    what: "dimension",
                    name: d.name.to_string(),
                });
            }
        }
        if rules.len() > MAX_RULES {
            return Err(Error::OutOfRange {
                what: "the number of exclusion rules",
                range: "[0, 24]",
                value: rules.len() as f64,
            });
        }
        let mut strides = vec![1u64; dimensions.len()];
        let mut size: u64 = 1;
        for d in (0..dimensions.len()).rev() {
            strides[d] = size;
            size = size
                .checked_mul(dimensions[d].options.len() as u64)
                .ok_or(Error::ActionSpaceTooLarge)?;
        }
        let mut space = Self {
            dimensions,
            rules,
            eligibility,
            strides,
            size,
            patterns: Vec::new(),
            gates: Vec::new(),
        };
        space.patterns = space.rules.iter().map(|r| space.compile(r)).collect::<Result<_>>()?;
        space.gates = space
            .eligibility
            .iter()
            .map(|g| {
                let (d, o) = space.resolve(g.dimension.as_str(), g.option.as_str())?;
                Ok((d, o, g.when.clone()))
            })
            .collect::<Result<_>>()?;
        if space.count() == 0 {
            return Err(Error::EmptyActionSpace);
        }
        Ok(space)
    }

    fn compile(&self, rule: &ExclusionRule) -> Result<Pattern> {
        let mut sets: Vec<Option<OptionSet>> = vec![None; self.dimensions.len()];
        for (dim, options) in &rule.conditions {
            let d = self
                .dimension_index(dim.as_str())
                .ok_or_else(|| Error::UnknownDimension(dim.to_string()))?;
            let mut set = OptionSet::empty(self.dimensions[d].options.len());
            for o in options {
                let (_, i) = self.resolve(dim.as_str(), o.as_str())?;
                set.insert(i);
            }
            sets[d] = Some(set);
        }
        Ok(Pattern { sets })
    }

    /// The dimensions, in encoding order.
    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    /// The exclusion rules.
    pub fn rules(&self) -> &[ExclusionRule] {
        &self.rules
    }

    /// The eligibility rules.
    pub fn eligibility_rules(&self) -> &[EligibilityRule] {
        &self.eligibility
    }

    /// The index of the dimension named `name`.
    pub fn dimension_index(&self, name: &str) -> Option<usize> {
        self.dimensions.iter().position(|d| d.name.as_str() == name)
    }

    /// `(dimension index, option index)` of `dimension.option`.
    ///
    /// # Errors
    /// [`Error::UnknownDimension`] or [`Error::UnknownOption`].
    pub fn resolve(&self, dimension: &str, option: &str) -> Result<(usize, usize)> {
        let d = self
            .dimension_index(dimension)
            .ok_or_else(|| Error::UnknownDimension(dimension.to_owned()))?;
        let o = self.dimensions[d]
            .option_index(option)
            .ok_or_else(|| Error::UnknownOption {
                dimension: dimension.to_owned(),
                option: option.to_owned(),
            })?;
        Ok((d, o))
    }

    /// The number of joint actions before exclusions: the product of the dimensions' sizes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The mask that allows every option (no customer-specific eligibility).
    pub fn full_mask(&self) -> EligibilityMask {
        EligibilityMask {
            allowed: self
                .dimensions
                .iter()
                .map(|d| OptionSet::full(d.options.len()))
                .collect(),
        }
    }

    /// The options a customer with these feature values (schema order) may receive.
    pub fn eligibility_mask(&self, features: &[FeatureValue]) -> EligibilityMask {
        let mut mask = self.full_mask();
        for (d, o, when) in &self.gates {
            if !when.eval(features) {
                mask.allowed[*d].remove(*o);
            }
        }
        mask
    }

    /// The number of joint actions no rule excludes.
    pub fn count(&self) -> u64 {
        self.count_for(&self.full_mask())
    }

    /// The number of joint actions allowed under `mask` and not excluded by any rule, computed without
    /// enumerating (see the [module docs](self)).
    pub fn count_for(&self, mask: &EligibilityMask) -> u64 {
        let sizes: Vec<u64> = mask.allowed.iter().map(OptionSet::count).collect();
        let all = product(&sizes);
        if all == 0 {
            return 0;
        }
        let excluded = self.union_size(0, &mask.allowed, 0);
        // The union of subsets of the allowed product is never larger than the product.
        (i128::from(all) - excluded).clamp(0, i128::from(all)) as u64
    }

    /// Σ over non-empty subsets S of rules `start..`, extending the intersection `current`, of
    /// `(-1)^(|S|+1) · |current ∩ ⋂S|`.
    fn union_size(&self, start: usize, current: &[OptionSet], depth: u32) -> i128 {
        let mut sum = 0i128;
        for j in start..self.patterns.len() {
            let next: Vec<OptionSet> = current
                .iter()
                .zip(&self.patterns[j].sets)
                .map(|(c, p)| match p {
                    Some(p) => c.intersection(p),
                    None => c.clone(),
                })
                .collect();
            let size = product(&next.iter().map(OptionSet::count).collect::<Vec<_>>());
            if size == 0 {
                continue;
            }
            let sign = if depth.is_multiple_of(2) { 1 } else { -1 };
            sum += sign * i128::from(size) + self.union_size(j + 1, &next, depth + 1);
        }
        sum
    }

    /// Encodes a joint action.
    ///
    /// # Errors
    /// [`Error::MalformedAction`] when it has the wrong length or an index past a dimension's end.
    pub fn encode(&self, action: &JointAction) -> Result<ActionId> {
        if action.0.len() != self.dimensions.len() {
            return Err(Error::MalformedAction(format!(
                "{} option indices for {} dimensions",
                action.0.len(),
                self.dimensions.len()
            )));
        }
        let mut id = 0u64;
        for (d, &o) in action.0.iter().enumerate() {
            if o as usize >= self.dimensions[d].options.len() {
                return Err(Error::MalformedAction(format!(
                    "option index {o} in dimension `{}` of {} options",
                    self.dimensions[d].name,
                    self.dimensions[d].options.len()
                )));
            }
            id += u64::from(o) * self.strides[d];
        }
        Ok(ActionId(id))
    }

    /// Decodes an id into its joint action.
    ///
    /// # Errors
    /// [`Error::ActionIdOutOfRange`] when `id >= size()`.
    pub fn decode(&self, id: ActionId) -> Result<JointAction> {
        if id.0 >= self.size {
            return Err(Error::ActionIdOutOfRange {
                id: id.0,
                size: self.size,
            });
        }
        Ok(JointAction(
            (0..self.dimensions.len())
                .map(|d| self.option_of(id, d) as u32)
                .collect(),
        ))
    }

    /// The option index an id chooses in dimension `d`, without decoding the rest.
    pub fn option_of(&self, id: ActionId, d: usize) -> usize {
        let radix = self.dimensions.get(d).map_or(1, |dim| dim.options.len() as u64);
        let stride = self.strides.get(d).copied().unwrap_or(1);
        ((id.0 / stride) % radix) as usize
    }

    /// Whether a rule forbids this joint action.
    pub fn is_excluded(&self, action: &JointAction) -> bool {
        self.patterns.iter().any(|p| p.matches(action))
    }

    /// Whether the joint action is allowed under `mask` and by the rules.
    pub fn is_allowed(&self, action: &JointAction, mask: &EligibilityMask) -> bool {
        action.0.len() == self.dimensions.len()
            && action.0.iter().enumerate().all(|(d, &o)| mask.allows(d, o as usize))
            && !self.is_excluded(action)
    }

    /// The rule that forbids this joint action, if any.
    pub fn excluding_rule(&self, action: &JointAction) -> Option<&ExclusionRule> {
        self.patterns
            .iter()
            .position(|p| p.matches(action))
            .map(|i| &self.rules[i])
    }

    /// Every allowed joint action, in increasing [`ActionId`] order. Lazy: it never materialises the
    /// space, so the first items of a 10^10 space come at once.
    pub fn iter(&self) -> ActionIter<'_> {
        self.iter_for(self.full_mask())
    }

    /// Every joint action allowed under `mask` and by the rules, in increasing [`ActionId`] order.
    pub fn iter_for(&self, mask: EligibilityMask) -> ActionIter<'_> {
        let choices: Vec<Vec<u32>> = mask
            .allowed
            .iter()
            .map(|s| s.iter().map(|i| i as u32).collect())
            .collect();
        let done = choices.iter().any(Vec::is_empty);
        ActionIter {
            space: self,
            positions: vec![0; choices.len()],
            choices,
            done,
        }
    }

    /// The `(dimension, option)` pairs a joint action chooses.
    pub fn options<'a>(
        &'a self,
        action: &'a JointAction,
    ) -> impl Iterator<Item = (&'a Dimension, &'a OptionSpec)> + 'a {
        self.dimensions
            .iter()
            .zip(&action.0)
            .filter_map(|(d, &o)| d.options.get(o as usize).map(|opt| (d, opt)))
    }

    /// The joint action that picks, in each dimension, the option named in `choice`.
    ///
    /// # Errors
    /// [`Error::UnknownDimension`] / [`Error::UnknownOption`], or [`Error::MalformedAction`] when a
    /// dimension has no choice.
    pub fn action_from_names(&self, choice: &BTreeMap<Identifier, Identifier>) -> Result<JointAction> {
        for dim in choice.keys() {
            if self.dimension_index(dim.as_str()).is_none() {
                return Err(Error::UnknownDimension(dim.to_string()));
            }
        }
        let indices = self
            .dimensions
            .iter()
            .map(|d| {
                let option = choice
                    .get(&d.name)
                    .ok_or_else(|| Error::MalformedAction(format!("no option chosen for dimension `{}`", d.name)))?;
                let (_, o) = self.resolve(d.name.as_str(), option.as_str())?;
                Ok(o as u32)
            })
            .collect::<Result<_>>()?;
        Ok(JointAction(indices))
    }
}

fn product(sizes: &[u64]) -> u64 {
    // Each factor is at most the dimension's size, whose product was checked to fit a u64 when the
    // space was built, so this saturating product never actually saturates.
    sizes.iter().fold(1u64, |acc, &s| acc.saturating_mul(s))
}

/// Lazy iterator over allowed joint actions; see [`ActionSpace::iter`].
#[derive(Debug)]
pub struct ActionIter<'a> {
    space: &'a ActionSpace,
    choices: Vec<Vec<u32>>,
    positions: Vec<usize>,
    done: bool,
}

impl Iterator for ActionIter<'_> {
    type Item = (ActionId, JointAction);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let action = JointAction(self.positions.iter().zip(&self.choices).map(|(&p, c)| c[p]).collect());
            // Advance the odometer: the last dimension turns fastest, matching the id order.
            self.done = true;
            for d in (0..self.positions.len()).rev() {
                self.positions[d] += 1;
                if self.positions[d] < self.choices[d].len() {
                    self.done = false;
                    break;
                }
                self.positions[d] = 0;
            }
            if !self.space.is_excluded(&action) {
                let id = self.space.encode(&action).ok()?;
                return Some((id, action));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimension::DimensionKind;

    pub(crate) fn id(s: &str) -> Identifier {
        Identifier::new(s).unwrap()
    }

    fn dim(name: &str, options: &[&str]) -> Dimension {
        Dimension::new(
            id(name),
            DimensionKind::Custom,
            options.iter().map(|o| OptionSpec::new(id(o))).collect(),
        )
        .unwrap()
    }

    fn rule(conditions: &[(&str, &[&str])]) -> ExclusionRule {
        ExclusionRule {
            name: "r".into(),
            conditions: conditions
                .iter()
                .map(|(d, os)| (id(d), os.iter().map(|o| id(o)).collect()))
                .collect(),
        }
    }

    #[test]
    fn ten_by_ten_is_counted_and_encoded_without_enumeration() {
        let options: Vec<String> = (0..10).map(|i| format!("o{i}")).collect();
        let refs: Vec<&str> = options.iter().map(String::as_str).collect();
        let dims: Vec<Dimension> = (0..10).map(|i| dim(&format!("d{i}"), &refs)).collect();
        let rules = vec![
            rule(&[("d0", &["o1"]), ("d1", &["o2", "o3"])]),
            rule(&[("d1", &["o3"]), ("d9", &["o9"])]),
        ];
        let space = ActionSpace::new(dims, rules, vec![]).unwrap();
        assert_eq!(space.size(), 10_000_000_000);
        // Rule A forbids 1·2·10^8 = 2·10^8, rule B 10^8, both 1·1·1·10^7 = 10^7.
        assert_eq!(space.count(), 10_000_000_000 - 200_000_000 - 100_000_000 + 10_000_000);
        let last = ActionId(9_999_999_999);
        assert_eq!(space.decode(last).unwrap(), JointAction(vec![9; 10]));
        assert_eq!(space.encode(&JointAction(vec![9; 10])).unwrap(), last);
        assert_eq!(space.iter().next().unwrap().0, ActionId(0));
        assert!(space.decode(ActionId(10_000_000_000)).is_err());
    }

    #[test]
    fn iteration_skips_excluded_and_ineligible() {
        let space = ActionSpace::new(
            vec![dim("channel", &["email", "sms"]), dim("time", &["morning", "evening"])],
            vec![rule(&[("channel", &["sms"]), ("time", &["evening"])])],
            vec![EligibilityRule {
                dimension: id("channel"),
                option: id("sms"),
                when: Predicate::Eq {
                    feature: 0,
                    value: crate::predicate::Literal::Boolean(true),
                },
            }],
        )
        .unwrap();
        let all: Vec<u64> = space.iter().map(|(id, _)| id.0).collect();
        assert_eq!(all, [0, 1, 2]);
        let no_sms = space.eligibility_mask(&[FeatureValue::Boolean(false)]);
        assert_eq!(space.count_for(&no_sms), 2);
        assert_eq!(space.iter_for(no_sms).map(|(id, _)| id.0).collect::<Vec<_>>(), [0, 1]);
        let excluded = JointAction(vec![1, 1]);
        assert_eq!(space.excluding_rule(&excluded).map(|r| r.name.as_str()), Some("r"));
    }

    #[test]
    fn a_space_with_nothing_left_is_refused() {
        let err = ActionSpace::new(
            vec![dim("channel", &["email"])],
            vec![rule(&[("channel", &["email"])])],
            vec![],
        )
        .unwrap_err();
        assert!(matches!(err, Error::EmptyActionSpace));
    }

    #[test]
    fn overflow_is_refused() {
        let options: Vec<String> = (0..256).map(|i| format!("o{i}")).collect();
        let refs: Vec<&str> = options.iter().map(String::as_str).collect();
        let dims: Vec<Dimension> = (0..9).map(|i| dim(&format!("d{i}"), &refs)).collect();
        assert!(matches!(
            ActionSpace::new(dims, vec![], vec![]),
            Err(Error::ActionSpaceTooLarge)
        ));
    }

    #[test]
    fn serde_round_trip_rebuilds_derived_state() {
        let space = ActionSpace::new(
            vec![dim("a", &["x", "y", "z"]), dim("b", &["p", "q"])],
            vec![rule(&[("a", &["y"]), ("b", &["q"])])],
            vec![],
        )
        .unwrap();
        let json = serde_json::to_string(&space).unwrap();
        let back: ActionSpace = serde_json::from_str(&json).unwrap();
        assert_eq!(back.count(), 5);
        assert_eq!(back.iter().collect::<Vec<_>>(), space.iter().collect::<Vec<_>>());
    }
}
