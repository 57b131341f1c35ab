//! Predicates on customer features: who is eligible for an option.
//!
//! A [`Predicate`] refers to features by their position in the [`crate::FeatureSchema`] (resolved once,
//! when the use case is read), so evaluating it for millions of customers does no name look-ups.
//! A missing value satisfies only [`Predicate::Missing`]: a customer whose SMS consent is unknown is not
//! eligible for SMS.

use serde::{Deserialize, Serialize};

use crate::features::FeatureValue;

/// A literal to compare a feature with.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Literal {
    /// A boolean.
    Boolean(bool),
    /// A number.
    Number(f64),
    /// A text (categories).
    Text(String),
}

impl Literal {
    fn matches(&self, value: &FeatureValue) -> bool {
        match (self, value) {
            (Self::Boolean(a), FeatureValue::Boolean(b)) => a == b,
            (Self::Number(a), FeatureValue::Number(b)) => a == b,
            (Self::Text(a), FeatureValue::Category(b)) => a == b,
            // Categories read from numbers or booleans compare by their text.
            (Self::Number(a), FeatureValue::Category(b)) => b.parse::<f64>().is_ok_and(|b| b == *a),
            (Self::Boolean(a), FeatureValue::Category(b)) => b == if *a { "true" } else { "false" },
            _ => false,
        }
    }
}

/// An ordering comparison.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

/// A condition on one customer's features.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Predicate {
    /// The feature equals the literal.
    Eq {
        /// Feature index in the schema.
        feature: usize,
        /// Value to compare with.
        value: Literal,
    },
    /// The feature is present and differs from the literal.
    Ne {
        /// Feature index in the schema.
        feature: usize,
        /// Value to compare with.
        value: Literal,
    },
    /// The feature equals one of the literals.
    In {
        /// Feature index in the schema.
        feature: usize,
        /// Accepted values.
        values: Vec<Literal>,
    },
    /// The feature is present and equals none of the literals.
    NotIn {
        /// Feature index in the schema.
        feature: usize,
        /// Refused values.
        values: Vec<Literal>,
    },
    /// A numeric comparison (timestamps compare as epoch seconds).
    Compare {
        /// Feature index in the schema.
        feature: usize,
        /// The comparison.
        op: Comparison,
        /// The right-hand side.
        value: f64,
    },
    /// The feature has a value.
    Present {
        /// Feature index in the schema.
        feature: usize,
    },
    /// The feature has no value.
    Missing {
        /// Feature index in the schema.
        feature: usize,
    },
    /// Every inner predicate holds.
    All(Vec<Predicate>),
    /// At least one inner predicate holds.
    Any(Vec<Predicate>),
    /// The inner predicate does not hold.
    Not(Box<Predicate>),
}

impl Predicate {
    /// Evaluates the predicate on one customer's feature values (in schema order). A feature index past
    /// the end reads as missing.
    pub fn eval(&self, features: &[FeatureValue]) -> bool {
        let get = |i: usize| features.get(i).unwrap_or(&FeatureValue::Missing);
        match self {
            Self::Eq { feature, value } => value.matches(get(*feature)),
            Self::Ne { feature, value } => {
                let v = get(*feature);
                !v.is_missing() && !value.matches(v)
            }
            Self::In { feature, values } => values.iter().any(|l| l.matches(get(*feature))),
            Self::NotIn { feature, values } => {
                let v = get(*feature);
                !v.is_missing() && !values.iter().any(|l| l.matches(v))
            }
            Self::Compare { feature, op, value } => {
                let x = match get(*feature) {
                    FeatureValue::Number(x) => *x,
                    FeatureValue::Timestamp(t) => t.as_second() as f64,
                    _ => return false,
                };
                match op {
                    Comparison::Gt => x > *value,
                    Comparison::Gte => x >= *value,
                    Comparison::Lt => x < *value,
                    Comparison::Lte => x <= *value,
                }
            }
            Self::Present { feature } => !get(*feature).is_missing(),
            Self::Missing { feature } => get(*feature).is_missing(),
            Self::All(ps) => ps.iter().all(|p| p.eval(features)),
            Self::Any(ps) => ps.iter().any(|p| p.eval(features)),
            Self::Not(p) => !p.eval(features),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_values_satisfy_only_missing() {
        let f = [FeatureValue::Missing];
        let lit = Literal::Text("opted_in".into());
        assert!(
            !Predicate::Eq {
                feature: 0,
                value: lit.clone()
            }
            .eval(&f)
        );
        assert!(
            !Predicate::Ne {
                feature: 0,
                value: lit.clone()
            }
            .eval(&f)
        );
        assert!(
            !Predicate::NotIn {
                feature: 0,
                values: vec![lit]
            }
            .eval(&f)
        );
        assert!(Predicate::Missing { feature: 0 }.eval(&f));
    }

    #[test]
    fn combinators_and_comparisons() {
        let f = [FeatureValue::Category("subscribed".into()), FeatureValue::Number(42.0)];
        let consent = Predicate::In {
            feature: 0,
            values: vec![Literal::Text("opted_in".into()), Literal::Text("subscribed".into())],
        };
        let big = Predicate::Compare {
            feature: 1,
            op: Comparison::Gte,
            value: 40.0,
        };
        assert!(Predicate::All(vec![consent.clone(), big.clone()]).eval(&f));
        assert!(!Predicate::Not(Box::new(big)).eval(&f));
        assert!(Predicate::Any(vec![Predicate::Missing { feature: 1 }, consent]).eval(&f));
        assert!(
            Predicate::Eq {
                feature: 1,
                value: Literal::Number(42.0)
            }
            .eval(&f)
        );
    }
}
