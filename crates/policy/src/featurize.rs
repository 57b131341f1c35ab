//! [`Featurizer`]: a customer's feature values → a fixed-width numeric vector for the linear models.
//!
//! Layout (fixed when the policy is built, from the schema alone, so model blocks never resize):
//! - slot 0: the intercept, always 1;
//! - a **number** or **timestamp** feature: its standardised value (online mean and variance over the
//!   feedback learned so far, clipped to ±[`CLIP`]), and a *missing* slot that is 1 when the value is
//!   missing (the value slot is then 0, the mean). Timestamps become days before the decision time.
//!   A number that is never negative and right-skewed (sample skewness above [`LOG_SKEWNESS`] over its
//!   first [`SHAPE_SAMPLES`] values) and that `ln(1 + x)` makes much more symmetric (less than half
//!   the skewness in absolute value) — spend, tenure, recency — is standardised as `ln(1 + x)`, the
//!   scale on which such quantities usually act; counts and 0/1 flags stay linear. The choice is made
//!   once and then kept;
//! - a **boolean**: 1/0 in one slot, plus a missing slot;
//! - a **category**: one-hot. The first `max_categories` labels seen in feedback get their own slot;
//!   later ones, and labels never seen when deciding, are hashed (XXH3) into `hash_buckets` shared
//!   slots. A missing category is the label `""`, so it gets a slot like any other.
//!
//! Standardisation statistics and category dictionaries change only in [`Featurizer::observe`]
//! (called by `update`), never while deciding, so decisions stay deterministic.

use jiff::Timestamp;
use offerloop_domain::{FeatureSchema, FeatureType, FeatureValue};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// Standardised values are clipped to `[-CLIP, CLIP]`, so one outlier cannot dominate a score.
pub const CLIP: f64 = 5.0;

/// Skewness above which a non-negative number is log-transformed.
pub const LOG_SKEWNESS: f64 = 1.0;

/// Values a number's shape is judged on before its transform is fixed.
pub const SHAPE_SAMPLES: f64 = 500.0;

/// How a number is transformed before standardisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Not decided yet: the raw value.
    #[default]
    Undecided,
    /// The raw value.
    Identity,
    /// `ln(1 + x)`.
    Log1p,
}

impl Transform {
    fn apply(self, x: f64) -> f64 {
        match self {
            Self::Log1p => x.max(0.0).ln_1p(),
            _ => x,
        }
    }
}

/// Raw power sums of the first values of a number, to judge its shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Shape {
    n: f64,
    sum: f64,
    sum2: f64,
    sum3: f64,
    min: f64,
    #[serde(default)]
    log: [f64; 3],
}

impl Shape {
    fn push(&mut self, x: f64) {
        self.min = if self.n == 0.0 { x } else { self.min.min(x) };
        self.n += 1.0;
        self.sum += x;
        self.sum2 += x * x;
        self.sum3 += x * x * x;
        let l = x.max(0.0).ln_1p();
        self.log[0] += l;
        self.log[1] += l * l;
        self.log[2] += l * l * l;
    }

    fn skewness(&self) -> f64 {
        skewness(self.n, self.sum, self.sum2, self.sum3)
    }

    fn log_skewness(&self) -> f64 {
        skewness(self.n, self.log[0], self.log[1], self.log[2])
    }

    /// The transform the values seen so far call for; see the [module docs](self).
    fn decide(&self) -> Transform {
        let skew = self.skewness();
        if self.min >= 0.0 && skew > LOG_SKEWNESS && self.log_skewness().abs() < 0.5 * skew {
            Transform::Log1p
        } else {
            Transform::Identity
        }
    }
}

/// Sample skewness from power sums.
fn skewness(n: f64, sum: f64, sum2: f64, sum3: f64) -> f64 {
    let n = n.max(1.0);
    let mean = sum / n;
    let var = (sum2 / n - mean * mean).max(0.0);
    if var <= 1e-12 {
        return 0.0;
    }
    let m3 = sum3 / n - 3.0 * mean * sum2 / n + 2.0 * mean.powi(3);
    m3 / var.powf(1.5)
}

/// How categorical features are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeaturizerConfig {
    /// Labels per categorical feature that get their own one-hot slot (first seen, first served).
    pub max_categories: usize,
    /// Shared slots the other labels are hashed into.
    pub hash_buckets: usize,
}

impl Default for FeaturizerConfig {
    fn default() -> Self {
        Self {
            max_categories: 6,
            hash_buckets: 2,
        }
    }
}

/// Online mean and variance (Welford), weighted so that forgetting can discount it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Moments {
    weight: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        self.weight += 1.0;
        let delta = x - self.mean;
        self.mean += delta / self.weight;
        self.m2 += delta * (x - self.mean);
    }

    fn standardise(&self, x: f64) -> f64 {
        let sd = if self.weight > 1.0 {
            (self.m2 / (self.weight - 1.0)).sqrt()
        } else {
            1.0
        };
        let sd = if sd > 1e-9 { sd } else { 1.0 };
        ((x - self.mean) / sd).clamp(-CLIP, CLIP)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Column {
    Number {
        offset: usize,
        moments: Moments,
        #[serde(default)]
        transform: Transform,
        #[serde(default)]
        shape: Shape,
        /// The first values, kept only until the transform is decided (then emptied).
        #[serde(default)]
        pending: Vec<f64>,
        /// Moments of the raw value, for [`Featurizer::encode_raw_into`].
        #[serde(default)]
        raw: Moments,
    },
    Timestamp {
        offset: usize,
        moments: Moments,
    },
    Boolean {
        offset: usize,
    },
    Category {
        offset: usize,
        dictionary: Vec<String>,
    },
}

/// Encodes feature vectors; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Featurizer {
    config: FeaturizerConfig,
    columns: Vec<Column>,
    names: Vec<String>,
    width: usize,
}

impl Featurizer {
    /// The encoder of `schema`.
    pub fn new(schema: &FeatureSchema, config: FeaturizerConfig) -> Self {
        let mut names = vec!["intercept".to_owned()];
        let mut columns = Vec::with_capacity(schema.len());
        for spec in schema.specs() {
            let offset = names.len();
            let name = spec.name.as_str();
            match spec.ty {
                FeatureType::Number | FeatureType::Timestamp | FeatureType::Boolean => {
                    names.push(name.to_owned());
                    names.push(format!("{name}=missing"));
                    columns.push(match spec.ty {
                        FeatureType::Number => Column::Number {
                            offset,
                            moments: Moments::default(),
                            transform: Transform::Undecided,
                            shape: Shape::default(),
                            pending: Vec::new(),
                            raw: Moments::default(),
                        },
                        FeatureType::Timestamp => Column::Timestamp {
                            offset,
                            moments: Moments::default(),
                        },
                        _ => Column::Boolean { offset },
                    });
                }
                FeatureType::Category => {
                    for i in 0..config.max_categories {
                        names.push(format!("{name}=#{i}"));
                    }
                    for i in 0..config.hash_buckets {
                        names.push(format!("{name}=hash{i}"));
                    }
                    columns.push(Column::Category {
                        offset,
                        dictionary: Vec::new(),
                    });
                }
            }
        }
        let width = names.len();
        Self {
            config,
            columns,
            names,
            width,
        }
    }

    /// The encoded width (intercept included).
    pub fn width(&self) -> usize {
        self.width
    }

    /// The name of encoded slot `i` (`age`, `age=missing`, `region=north`, `region=hash1`, ...).
    pub fn slot_name(&self, i: usize) -> &str {
        self.names.get(i).map_or("?", String::as_str)
    }

    /// Learns standardisation statistics and category labels from one feature vector.
    pub fn observe(&mut self, values: &[FeatureValue], at: Timestamp) {
        let max = self.config.max_categories;
        for (column, value) in self.columns.iter_mut().zip(values) {
            match column {
                Column::Number {
                    moments,
                    transform,
                    shape,
                    pending,
                    raw,
                    ..
                } => {
                    if let FeatureValue::Number(x) = value {
                        raw.push(*x);
                        if *transform == Transform::Undecided {
                            shape.push(*x);
                            pending.push(*x);
                            moments.push(*x);
                            if shape.n >= SHAPE_SAMPLES {
                                *transform = shape.decide();
                                // Restart the moments on the chosen scale, from the values seen so far.
                                *moments = Moments::default();
                                for v in pending.drain(..) {
                                    moments.push(transform.apply(v));
                                }
                            }
                        } else {
                            moments.push(transform.apply(*x));
                        }
                    }
                }
                Column::Timestamp { moments, .. } => {
                    if let FeatureValue::Timestamp(t) = value {
                        moments.push(days_before(*t, at));
                    }
                }
                Column::Boolean { .. } => {}
                Column::Category { offset, dictionary } => {
                    let label = label(value);
                    if dictionary.len() < max && !dictionary.iter().any(|l| l == label) {
                        dictionary.push(label.to_owned());
                        self.names[*offset + dictionary.len() - 1] = format!(
                            "{}={label}",
                            self.names[*offset + dictionary.len() - 1]
                                .split_once('=')
                                .map_or("", |(n, _)| n)
                        );
                    }
                }
            }
        }
    }

    /// Encodes one feature vector (schema order) into `out` (length [`Featurizer::width`]).
    pub fn encode_into(&self, values: &[FeatureValue], at: Timestamp, out: &mut [f64]) {
        self.encode_with(values, at, out, false);
    }

    /// Like [`Featurizer::encode_into`], but numbers are standardised on their raw scale even when
    /// they are log-transformed for [`Featurizer::encode_into`]: amounts (a basket's value) are linear
    /// in raw spend, while the odds of buying are linear in its log.
    pub fn encode_raw_into(&self, values: &[FeatureValue], at: Timestamp, out: &mut [f64]) {
        self.encode_with(values, at, out, true);
    }

    fn encode_with(&self, values: &[FeatureValue], at: Timestamp, out: &mut [f64], raw_scale: bool) {
        out.fill(0.0);
        if let Some(first) = out.first_mut() {
            *first = 1.0;
        }
        for (column, value) in self.columns.iter().zip(values) {
            match column {
                Column::Number {
                    offset,
                    moments,
                    transform,
                    raw,
                    ..
                } => match value {
                    FeatureValue::Number(x) if raw_scale => out[*offset] = raw.standardise(*x),
                    FeatureValue::Number(x) => out[*offset] = moments.standardise(transform.apply(*x)),
                    _ => out[*offset + 1] = 1.0,
                },
                Column::Timestamp { offset, moments } => match value {
                    FeatureValue::Timestamp(t) => out[*offset] = moments.standardise(days_before(*t, at)),
                    _ => out[*offset + 1] = 1.0,
                },
                Column::Boolean { offset } => match value {
                    FeatureValue::Boolean(b) => out[*offset] = f64::from(u8::from(*b)),
                    FeatureValue::Number(x) => out[*offset] = f64::from(u8::from(*x != 0.0)),
                    _ => out[*offset + 1] = 1.0,
                },
                Column::Category { offset, dictionary } => {
                    let label = label(value);
                    let slot = match dictionary.iter().position(|l| l == label) {
                        Some(i) => i,
                        None => {
                            let buckets = self.config.hash_buckets.max(1) as u64;
                            self.config.max_categories + (xxh3_64(label.as_bytes()) % buckets) as usize
                        }
                    };
                    if let Some(cell) = out.get_mut(*offset + slot) {
                        *cell = 1.0;
                    }
                }
            }
        }
    }

    /// Encodes one feature vector on the raw scale into a new vector ([`Featurizer::encode_raw_into`]).
    pub fn encode_raw(&self, values: &[FeatureValue], at: Timestamp) -> Vec<f64> {
        let mut out = vec![0.0; self.width];
        self.encode_raw_into(values, at, &mut out);
        out
    }

    /// Encodes one feature vector into a new vector.
    pub fn encode(&self, values: &[FeatureValue], at: Timestamp) -> Vec<f64> {
        let mut out = vec![0.0; self.width];
        self.encode_into(values, at, &mut out);
        out
    }
}

fn label(value: &FeatureValue) -> &str {
    match value {
        FeatureValue::Category(s) => s.as_str(),
        FeatureValue::Boolean(true) => "true",
        FeatureValue::Boolean(false) => "false",
        _ => "",
    }
}

fn days_before(t: Timestamp, at: Timestamp) -> f64 {
    (at.as_second() - t.as_second()) as f64 / 86_400.0
}

#[cfg(test)]
mod shape_tests {
    use offerloop_domain::{FeatureSpec, Identifier};

    use super::*;

    #[test]
    fn heavy_tailed_non_negative_numbers_are_log_transformed_once() {
        let spec = |name: &str| FeatureSpec {
            name: Identifier::new(name).unwrap(),
            field: offerloop_domain::features::FieldPath::parse(&format!("custom_attributes.{name}")).unwrap(),
            ty: FeatureType::Number,
        };
        let schema = FeatureSchema::new(vec![spec("spend"), spec("age")]).unwrap();
        let mut f = Featurizer::new(&schema, FeaturizerConfig::default());
        let at = Timestamp::UNIX_EPOCH;
        // spend: exp of a uniform spread (heavy right tail); age: symmetric.
        for i in 0..1000 {
            // A shuffled sweep of [0, 1): customers arrive in no particular order.
            let u = f64::from((i * 389) % 1000) / 1000.0;
            f.observe(
                &[
                    FeatureValue::Number((6.0 * u).exp()),
                    FeatureValue::Number(20.0 + 40.0 * u),
                ],
                at,
            );
        }
        let transforms: Vec<Transform> = f
            .columns
            .iter()
            .map(|c| match c {
                Column::Number { transform, pending, .. } => {
                    assert!(pending.is_empty(), "the first values are not kept once decided");
                    *transform
                }
                _ => Transform::Undecided,
            })
            .collect();
        assert_eq!(transforms, [Transform::Log1p, Transform::Identity]);
        // On the log scale the spread is uniform, so the middle value standardises near 0.
        let mid = f.encode(&[FeatureValue::Number(3.0f64.exp()), FeatureValue::Number(40.0)], at);
        assert!(mid[1].abs() < 0.1 && mid[3].abs() < 0.1, "{mid:?}");
    }
}

#[cfg(test)]
mod tests {
    use offerloop_domain::{FeatureSpec, Identifier};

    use super::*;

    fn schema() -> FeatureSchema {
        let spec = |name: &str, field: &str, ty| FeatureSpec {
            name: Identifier::new(name).unwrap(),
            field: offerloop_domain::features::FieldPath::parse(field).unwrap(),
            ty,
        };
        FeatureSchema::new(vec![
            spec("age", "custom_attributes.age", FeatureType::Number),
            spec("region", "custom_attributes.region", FeatureType::Category),
            spec("vip", "custom_attributes.vip", FeatureType::Boolean),
        ])
        .unwrap()
    }

    #[test]
    fn layout_standardisation_missing_and_hashing() {
        let config = FeaturizerConfig {
            max_categories: 2,
            hash_buckets: 1,
        };
        let mut f = Featurizer::new(&schema(), config);
        // intercept + age(2) + region(2 + 1) + vip(2)
        assert_eq!(f.width(), 8);
        let at = Timestamp::UNIX_EPOCH;
        for (age, region) in [(20.0, "north"), (40.0, "south"), (60.0, "east")] {
            f.observe(
                &[
                    FeatureValue::Number(age),
                    FeatureValue::Category(region.into()),
                    FeatureValue::Missing,
                ],
                at,
            );
        }
        let x = f.encode(
            &[
                FeatureValue::Number(60.0),
                FeatureValue::Category("south".into()),
                FeatureValue::Boolean(true),
            ],
            at,
        );
        // mean 40, sd 20 → (60 − 40) / 20 = 1
        assert!((x[1] - 1.0).abs() < 1e-12, "{x:?}");
        assert_eq!(x[2], 0.0);
        assert_eq!(&x[3..6], &[0.0, 1.0, 0.0], "south has its own slot");
        assert_eq!(&x[6..8], &[1.0, 0.0]);
        // `east` came third: past max_categories, so it hashes into the shared slot, as does a new label.
        let east = f.encode(
            &[
                FeatureValue::Missing,
                FeatureValue::Category("east".into()),
                FeatureValue::Missing,
            ],
            at,
        );
        assert_eq!(&east[1..3], &[0.0, 1.0], "missing number is explicit");
        assert_eq!(east[5], 1.0);
        assert_eq!(east[7], 1.0, "missing boolean is explicit");
        assert_eq!(f.slot_name(3), "region=north");
    }
}
