//! Holdout: which customers keep business as usual, so uplift can be proven.
//!
//! Assignment is a pure function of `(salt, customer id)`: the 64-bit XXH3 hash (a published,
//! versioned algorithm, identical on every machine and Rust version) of the salt, a `0xFF` separator
//! byte (which never occurs in UTF-8, so `("ab","c")` and `("a","bc")` differ), and the id's bytes. Its
//! top 53 bits make a uniform number `u` in `[0, 1)`:
//! - `u < control` → [`Group::Control`] (business as usual);
//! - `u < control + random_control` → [`Group::RandomControl`] (a uniformly random eligible action, the
//!   unbiased baseline for off-policy evaluation);
//! - otherwise [`Group::Treatment`] (the policy decides).
//!
//! The same id and salt give the same group in every run. Raising the control share never moves a
//! customer out of control (with a random-control slice, the slice's boundaries shift with it, so some
//! random-control customers become control and some treatment customers random control). Change the
//! salt to reshuffle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::ids::{CustomerId, Fraction, Identifier};
use crate::{Error, Result};

/// The group a customer belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Business as usual: the control the uplift is measured against.
    Control,
    /// A uniformly random eligible action: exploration that keeps off-policy estimates honest.
    RandomControl,
    /// The policy decides.
    Treatment,
}

impl Group {
    /// The name used in logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::RandomControl => "random_control",
            Self::Treatment => "treatment",
        }
    }
}

/// What the control group receives.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ControlAction {
    /// The business-as-usual joint action: for each dimension, by name, the option sent today.
    BusinessAsUsual {
        /// Dimension name → option id.
        options: BTreeMap<Identifier, Identifier>,
    },
    /// No message at all: a pure holdout.
    NoMessage,
}

/// The holdout configuration of a use case.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Holdout {
    salt: String,
    control: Fraction,
    random_control: Fraction,
    control_action: ControlAction,
}

impl Holdout {
    /// A holdout with `salt`, a control share and a random-control share.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when the two shares add up to 1 or more (nobody would be treated), and
    /// [`Error::InvalidIdentifier`] for an empty salt.
    pub fn new(
        salt: impl Into<String>,
        control: Fraction,
        random_control: Fraction,
        control_action: ControlAction,
    ) -> Result<Self> {
        let salt = salt.into();
        if salt.is_empty() {
            return Err(Error::InvalidIdentifier {
                value: salt,
                reason: "the holdout salt cannot be empty",
            });
        }
        let total = control.get() + random_control.get();
        if total >= 1.0 {
            return Err(Error::OutOfRange {
                what: "control_fraction + random_control_fraction",
                range: "[0, 1)",
                value: total,
            });
        }
        Ok(Self {
            salt,
            control,
            random_control,
            control_action,
        })
    }

    /// The salt.
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The control share.
    pub fn control_fraction(&self) -> Fraction {
        self.control
    }

    /// The random-control share.
    pub fn random_control_fraction(&self) -> Fraction {
        self.random_control
    }

    /// What control customers receive.
    pub fn control_action(&self) -> &ControlAction {
        &self.control_action
    }

    /// The customer's position in `[0, 1)`; see the [module docs](self).
    pub fn position(&self, customer: &CustomerId) -> f64 {
        let mut hasher = Xxh3::new();
        hasher.update(self.salt.as_bytes());
        hasher.update(&[0xFF]);
        hasher.update(customer.as_str().as_bytes());
        (hasher.digest() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The customer's group.
    pub fn assign(&self, customer: &CustomerId) -> Group {
        let u = self.position(customer);
        if u < self.control.get() {
            Group::Control
        } else if u < self.control.get() + self.random_control.get() {
            Group::RandomControl
        } else {
            Group::Treatment
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holdout(control: f64, random: f64) -> Holdout {
        Holdout::new(
            "salt",
            Fraction::new(control).unwrap(),
            Fraction::new(random).unwrap(),
            ControlAction::NoMessage,
        )
        .unwrap()
    }

    #[test]
    fn position_depends_on_salt_and_id_only() {
        let id = CustomerId::new("customer-42").unwrap();
        let p = holdout(0.1, 0.05).position(&id);
        assert!((0.0..1.0).contains(&p));
        // The shares do not move a customer's position, only the cut points.
        assert_eq!(p.to_bits(), holdout(0.3, 0.0).position(&id).to_bits());
        let other_salt = Holdout::new("other", Fraction::ZERO, Fraction::ZERO, ControlAction::NoMessage).unwrap();
        assert_ne!(other_salt.position(&id).to_bits(), p.to_bits());
        // The separator keeps (salt, id) pairs that concatenate alike apart.
        let a = Holdout::new("ab", Fraction::ZERO, Fraction::ZERO, ControlAction::NoMessage).unwrap();
        let b = Holdout::new("a", Fraction::ZERO, Fraction::ZERO, ControlAction::NoMessage).unwrap();
        assert_ne!(
            a.position(&CustomerId::new("c").unwrap()).to_bits(),
            b.position(&CustomerId::new("bc").unwrap()).to_bits()
        );
    }

    #[test]
    fn shares_adding_to_one_are_refused() {
        let r = Holdout::new(
            "s",
            Fraction::new(0.6).unwrap(),
            Fraction::new(0.4).unwrap(),
            ControlAction::NoMessage,
        );
        assert!(matches!(r, Err(Error::OutOfRange { .. })));
    }
}
