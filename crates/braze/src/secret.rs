//! The REST API key, held so that it never prints.
//!
//! [`ApiKey`] wraps a [`secrecy::SecretString`]: its `Debug` shows `ApiKey(***)`, it has no `Display`,
//! it is zeroed on drop, and the only way to read it is [`ApiKey::expose`], called in one place: when
//! the `Authorization` header is built (and that header is marked sensitive, so HTTP-level logging
//! redacts it too).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{BrazeError, Result};

/// A Braze REST API key.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a key.
    ///
    /// # Errors
    /// [`BrazeError::Config`] when it is empty, quoted, or has whitespace (Braze answers 401 to quoted
    /// keys). The message never contains the key.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key: String = key.into();
        let problem = if key.is_empty() {
            Some("the API key is empty")
        } else if key.starts_with(['"', '\'']) || key.ends_with(['"', '\'']) {
            Some("the API key is quoted; remove the quotes (Braze answers 401 to quoted keys)")
        } else if key.chars().any(char::is_whitespace) {
            Some("the API key contains whitespace")
        } else {
            None
        };
        match problem {
            Some(p) => Err(BrazeError::Config(p.to_owned())),
            None => Ok(Self(SecretString::from(key))),
        }
    }

    /// Reads the key from the environment variable `name`.
    ///
    /// # Errors
    /// [`BrazeError::Config`] naming the variable (never its value) when it is unset or invalid.
    pub fn from_env(name: &str) -> Result<Self> {
        let value = std::env::var(name).map_err(|_| {
            BrazeError::Config(format!(
                "the environment variable `{name}` that should hold the Braze API key is not set"
            ))
        })?;
        Self::new(value.trim_end_matches(['\n', '\r'])).map_err(|e| match e {
            BrazeError::Config(m) => BrazeError::Config(format!("{m} (in `{name}`)")),
            other => other,
        })
    }

    /// The key itself. Only for building the `Authorization` header.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new("sk-very-secret-123").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(format!("{:?}", Some(key.clone())), "Some(ApiKey(***))");
        assert_eq!(key.expose(), "sk-very-secret-123");
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for bad in ["", "\"sk-quoted\"", "sk with space"] {
            let err = ApiKey::new(bad).unwrap_err().to_string();
            assert!(bad.is_empty() || !err.contains(bad.trim_matches('"')), "{err}");
        }
    }
}
