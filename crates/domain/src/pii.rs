//! The PII guard: the one place that lists what offerloop refuses to read.
//!
//! offerloop decides from consented, non-identifying profile fields only. A use case that asks for a
//! refused field is invalid, and the export request is built from the validated feature list, so a
//! refused field is never requested from Braze, never parsed, never stored.
//!
//! Two lists:
//! - [`REFUSED_PROFILE_FIELDS`]: Braze standard export fields that are personal data;
//! - custom-attribute names whose words say they hold personal data ([`REFUSED_WORDS`] alone, or
//!   [`REFUSED_WORD_PAIRS`] next to each other, after splitting the name on `_`, `-`, `.`, spaces and
//!   camelCase), plus a custom attribute named exactly `name`.
//!
//! There is deliberately no override: a field that only looks like PII should be renamed in Braze (or
//! exported as a derived, non-identifying attribute such as an age band).

use std::fmt;

/// Braze standard profile fields that are refused, with the reason shown to the user.
pub const REFUSED_PROFILE_FIELDS: &[(&str, &str)] = &[
    ("email", "an email address"),
    ("phone", "a phone number"),
    ("first_name", "a person's name"),
    ("last_name", "a person's name"),
    ("dob", "a date of birth"),
    ("home_city", "part of a home address"),
    ("last_coordinates", "a precise location"),
    ("gender", "a sensitive personal characteristic"),
    ("push_tokens", "device push tokens"),
    ("devices", "device and advertising identifiers"),
    ("user_aliases", "alternate identifiers (often emails or CRM ids)"),
];

/// Words that, alone, mark a custom attribute as personal data.
pub const REFUSED_WORDS: &[&str] = &[
    "email",
    "mail",
    "phone",
    "mobile",
    "msisdn",
    "surname",
    "address",
    "street",
    "postcode",
    "zipcode",
    "zip",
    "ssn",
    "passport",
    "iban",
    "dob",
    "birthday",
    "birthdate",
    "ip",
    "latitude",
    "longitude",
    "lat",
    "lng",
    "password",
    "idfa",
    "idfv",
    "gaid",
];

/// Word pairs that, next to each other, mark a custom attribute as personal data.
pub const REFUSED_WORD_PAIRS: &[(&str, &str)] = &[
    ("first", "name"),
    ("last", "name"),
    ("full", "name"),
    ("given", "name"),
    ("family", "name"),
    ("middle", "name"),
    ("birth", "date"),
    ("of", "birth"),
    ("postal", "code"),
    ("zip", "code"),
    ("social", "security"),
    ("national", "id"),
    ("tax", "id"),
    ("card", "number"),
    ("credit", "card"),
    ("device", "id"),
    ("advertising", "id"),
    ("ad", "id"),
    ("push", "token"),
];

/// A field was refused because it holds personal data.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub struct PiiRefused {
    /// The field as written in the configuration.
    pub field: String,
    /// What kind of personal data it is.
    pub reason: String,
}

impl fmt::Display for PiiRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is personal data ({}); offerloop refuses PII fields: decide from consented, non-identifying attributes instead",
            self.field, self.reason
        )
    }
}

/// Checks a Braze standard export field name.
///
/// # Errors
/// [`PiiRefused`] when the field is in [`REFUSED_PROFILE_FIELDS`].
pub fn check_profile_field(field: &str) -> Result<(), PiiRefused> {
    match REFUSED_PROFILE_FIELDS.iter().find(|(name, _)| *name == field) {
        Some((_, reason)) => Err(PiiRefused {
            field: field.to_owned(),
            reason: (*reason).to_owned(),
        }),
        None => Ok(()),
    }
}

/// Checks a custom attribute name (the part after `custom_attributes.`).
///
/// # Errors
/// [`PiiRefused`] when its words mark it as personal data.
pub fn check_custom_attribute(name: &str) -> Result<(), PiiRefused> {
    let refuse = |reason: String| {
        Err(PiiRefused {
            field: format!("custom_attributes.{name}"),
            reason,
        })
    };
    let words = split_words(name);
    if words.len() == 1 && words[0] == "name" {
        return refuse("a person's name".to_owned());
    }
    if let Some(word) = words.iter().find(|w| REFUSED_WORDS.contains(&w.as_str())) {
        return refuse(format!("its name contains `{word}`"));
    }
    for pair in words.windows(2) {
        if REFUSED_WORD_PAIRS.iter().any(|(a, b)| pair[0] == *a && pair[1] == *b) {
            return refuse(format!("its name contains `{} {}`", pair[0], pair[1]));
        }
    }
    Ok(())
}

/// Splits an attribute name into lowercase words at `_`, `-`, `.`, spaces, digits-to-letters and
/// camelCase boundaries: `homeZIPCode` → `home`, `zip`, `code`.
fn split_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let boundary = match prev {
            Some(p) if p.is_alphanumeric() => {
                (p.is_lowercase() && c.is_uppercase())
                    || (p.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase))
                    || (p.is_ascii_digit() != c.is_ascii_digit())
            }
            _ => false,
        };
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_pii_fields_are_refused() {
        for (field, _) in REFUSED_PROFILE_FIELDS {
            assert!(check_profile_field(field).is_err(), "{field}");
        }
        for ok in [
            "country",
            "language",
            "time_zone",
            "total_revenue",
            "email_subscribe",
            "push_subscribe",
        ] {
            assert!(check_profile_field(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn custom_attributes_are_judged_by_their_words() {
        for bad in [
            "email",
            "work_email",
            "homeZIPCode",
            "FirstName",
            "date_of_birth",
            "mobile-number",
            "ip_address",
            "name",
            "customer.postal_code",
            "credit_card_last4",
        ] {
            assert!(check_custom_attribute(bad).is_err(), "{bad} should be refused");
        }
        for ok in [
            "plan",
            "plan_name",
            "tenure_days",
            "lifetime_value",
            "emailable_segment_v2",
            "zipper_fan",
            "loyalty_tier",
        ] {
            // `emailable` and `zipper` are single words that merely start like a refused one.
            assert!(check_custom_attribute(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn words_split_on_case_and_separators() {
        assert_eq!(split_words("homeZIPCode"), ["home", "zip", "code"]);
        assert_eq!(split_words("last_order-at.v2"), ["last", "order", "at", "v", "2"]);
    }

    #[test]
    fn refusal_message_names_the_field() {
        let err = check_custom_attribute("phone_number").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`custom_attributes.phone_number` is personal data"),
            "{err}"
        );
    }
}
