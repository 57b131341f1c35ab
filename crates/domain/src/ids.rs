//! Validated newtypes: identifiers, customer ids, probabilities and fractions.
//!
//! Each is checked once, when built, so code that holds one never checks again.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The longest identifier accepted, in bytes. Identifiers become Liquid property names and database
/// keys, so they are kept short.
pub const MAX_IDENTIFIER_LEN: usize = 64;

/// A configuration identifier: a use case, dimension, option or feature name.
///
/// Guaranteed to be 1 to [`MAX_IDENTIFIER_LEN`] bytes of `[a-z0-9_-]`, starting with a letter or digit,
/// so it is safe as a Liquid property name, a file name and a metric label.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Identifier(String);

impl Identifier {
    /// Checks `value` and wraps it.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`] when it is empty, too long, or has characters outside `[a-z0-9_-]`.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        match identifier_problem(&value) {
            None => Ok(Self(value)),
            Some(reason) => Err(Error::InvalidIdentifier { value, reason }),
        }
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why `value` is not an [`Identifier`], or `None` when it is one.
pub(crate) fn identifier_problem(value: &str) -> Option<&'static str> {
    let Some(first) = value.bytes().next() else {
        return Some("cannot be empty");
    };
    if value.len() > MAX_IDENTIFIER_LEN {
        return Some("longer than 64 bytes");
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Some("must start with a lowercase letter or a digit");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Some("only lowercase letters, digits, `_` and `-` are allowed");
    }
    None
}

impl TryFrom<String> for Identifier {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<Identifier> for String {
    fn from(value: Identifier) -> Self {
        value.0
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for Identifier {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A customer's Braze `external_id`.
///
/// Guaranteed non-empty and at most 512 bytes. It is a pseudonymous key, never an email address or a
/// phone number: offerloop identifies customers by `external_id` only.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

impl CustomerId {
    /// The longest external id accepted, in bytes.
    pub const MAX_LEN: usize = 512;

    /// Checks `value` and wraps it.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`] when it is empty or longer than [`Self::MAX_LEN`] bytes.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if value.is_empty() {
            return Err(Error::InvalidIdentifier {
                value,
                reason: "a customer id cannot be empty",
            });
        }
        if value.len() > Self::MAX_LEN {
            return Err(Error::InvalidIdentifier {
                value,
                reason: "a customer id is at most 512 bytes",
            });
        }
        Ok(Self(value))
    }

    /// The external id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CustomerId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<CustomerId> for String {
    fn from(value: CustomerId) -> Self {
        value.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomerId({:?})", self.0)
    }
}

/// The probability with which a policy chose an action: guaranteed finite and in `(0, 1]`.
///
/// A logged propensity of zero would make every inverse-propensity estimate undefined, so it cannot be
/// represented.
#[derive(Clone, Copy, PartialEq, PartialOrd, Debug, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Probability(f64);

impl Probability {
    /// Certainty.
    pub const ONE: Self = Self(1.0);

    /// Checks `value` and wraps it.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] unless `0 < value <= 1`.
    pub fn new(value: f64) -> Result<Self> {
        if value.is_finite() && value > 0.0 && value <= 1.0 {
            Ok(Self(value))
        } else {
            Err(Error::OutOfRange {
                what: "a propensity",
                range: "(0, 1]",
                value,
            })
        }
    }

    /// The probability as a number.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Probability {
    type Error = Error;
    fn try_from(value: f64) -> Result<Self> {
        Self::new(value)
    }
}

impl From<Probability> for f64 {
    fn from(value: Probability) -> Self {
        value.0
    }
}

/// A share of the audience: guaranteed finite and in `[0, 1)`.
///
/// A control share of 1 would leave nobody to treat, so it cannot be represented.
#[derive(Clone, Copy, PartialEq, PartialOrd, Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Fraction(f64);

impl Fraction {
    /// Nobody.
    pub const ZERO: Self = Self(0.0);

    /// Checks `value` and wraps it.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] unless `0 <= value < 1`.
    pub fn new(value: f64) -> Result<Self> {
        if value.is_finite() && (0.0..1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Error::OutOfRange {
                what: "a fraction of the audience",
                range: "[0, 1)",
                value,
            })
        }
    }

    /// The fraction as a number.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Fraction {
    type Error = Error;
    fn try_from(value: f64) -> Result<Self> {
        Self::new(value)
    }
}

impl From<Fraction> for f64 {
    fn from(value: Fraction) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_accept_liquid_safe_names_only() {
        assert!(Identifier::new("pct_10").is_ok());
        assert!(Identifier::new("9am").is_ok());
        assert!(Identifier::new("win-back").is_ok());
        for bad in ["", "Email", "_x", "a b", "a.b", "é", &"x".repeat(65)] {
            assert!(Identifier::new(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn probability_excludes_zero_and_fraction_excludes_one() {
        assert!(Probability::new(0.0).is_err());
        assert!(Probability::new(1.0).is_ok());
        assert!(Probability::new(f64::NAN).is_err());
        assert!(Fraction::new(0.0).is_ok());
        assert!(Fraction::new(1.0).is_err());
        assert!(Fraction::new(-0.1).is_err());
    }

    #[test]
    fn serde_revalidates() {
        assert!(serde_json::from_str::<Probability>("0").is_err());
        assert!(serde_json::from_str::<Identifier>("\"Bad\"").is_err());
        let p: Probability = serde_json::from_str("0.25").unwrap();
        assert_eq!(p.get(), 0.25);
    }
}
