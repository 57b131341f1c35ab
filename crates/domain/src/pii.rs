//! The PII guard: the one place that lists what offerloop refuses to read.
//!
//! offerloop decides from consented, non-identifying profile fields only. A use case that asks for a
//! refused field is invalid, and the export request is built from the validated feature list, so a
//! refused field is never requested from Braze, never parsed, never stored.
//!
//! Two lists:
//! - [`REFUSED_PROFILE_FIELDS`]: Braze standard export fields that are personal data;
//! - custom-attribute names whose words say they hold personal data. A name is split into lowercase
//!   words at `_`, `-`, `.`, spaces, camelCase and digit boundaries (`homeZIPCode` → `home`, `zip`,
//!   `code`), and it is refused when its only word is `name` (or `names`), when some neighbouring
//!   words spell one of the [`REFUSED_TERMS`], or when they spell one of the [`CONTACT_WORDS`] not
//!   qualified as being about the channel (see below).
//!
//! A term matches words that *spell* it, however they are split: `first_name`, `firstName`,
//! `FIRSTNAME` and `firstname` all spell `first name`, and `dateOfBirth`, `DateofBirth` and
//! `date_of_birth` all spell `date of birth`; a trailing `s` or `es` (a plural) is allowed. A term
//! never matches part of a word: `zipper_fan`, `emailable_segment_v2`, `vip_status` and `addressable`
//! are accepted.
//!
//! A contact word (`email`, `phone`, `mobile`...) usually names the address or number itself, but a
//! channel's consent and engagement attributes are not personal data: the word is accepted when the
//! next word is one of the [`CHANNEL_QUALIFIERS`] (`email_opt_in`, `email_opens_30d`, `phone_consent`,
//! `mobile_app_sessions`) or the previous word is `has` or `no` (`has_email`). Alone or followed by
//! anything else (`work_email`, `email_address`, `email_domain`, `home_phone`) it is refused.
//!
//! Names of things are not names of people: `campaign_name`, `product_name`, `plan_name` and
//! `company_name` are accepted; only the [`REFUSED_TERMS`] ending in `name` (`first name`,
//! `user name`, `customer name`, `display name`...) are refused.
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

/// Terms (one or more words) that mark a custom attribute as personal data wherever neighbouring
/// words of its name spell them.
pub const REFUSED_TERMS: &[&[&str]] = &[
    // A person's name (`name` alone is refused too; names of things are not).
    &["surname"],
    &["first", "name"],
    &["last", "name"],
    &["full", "name"],
    &["given", "name"],
    &["family", "name"],
    &["middle", "name"],
    &["maiden", "name"],
    &["birth", "name"],
    &["nick", "name"],
    &["user", "name"],
    &["login", "name"],
    &["screen", "name"],
    &["display", "name"],
    &["customer", "name"],
    &["contact", "name"],
    &["person", "name"],
    &["member", "name"],
    &["owner", "name"],
    &["holder", "name"],
    &["cardholder", "name"],
    &["recipient", "name"],
    &["billing", "name"],
    &["shipping", "name"],
    &["legal", "name"],
    &["real", "name"],
    &["preferred", "name"],
    &["parent", "name"],
    &["spouse", "name"],
    &["guardian", "name"],
    // An email address or a phone number, whatever the word after it.
    &["email", "address"],
    &["phone", "number"],
    &["telephone", "number"],
    &["mobile", "number"],
    &["cell", "number"],
    &["sms", "number"],
    &["whatsapp", "number"],
    &["msisdn"],
    &["fax"],
    // Network, device and advertising identifiers.
    &["ip"],
    &["ip", "address"],
    &["ipv4"],
    &["ipv6"],
    &["idfa"],
    &["idfv"],
    &["gaid"],
    &["device", "id"],
    &["advertising", "id"],
    &["ad", "id"],
    &["push", "token"],
    // National identifiers.
    &["ssn"],
    &["social", "security"],
    &["social", "insurance"],
    &["national", "insurance"],
    &["ni", "number"],
    &["nino"],
    &["nhs", "number"],
    &["national", "id"],
    &["national", "identity"],
    &["identity", "card"],
    &["id", "card"],
    &["tax", "id"],
    &["tax", "number"],
    &["passport"],
    &["driver", "license"],
    &["drivers", "license"],
    &["driver", "licence"],
    &["drivers", "licence"],
    &["driving", "license"],
    &["driving", "licence"],
    // A postal address.
    &["address"],
    &["street"],
    &["house", "number"],
    &["postcode"],
    &["post", "code"],
    &["postal", "code"],
    &["zip"],
    &["zip", "code"],
    &["home", "city"],
    &["home", "town"],
    // A date (or place) of birth.
    &["dob"],
    &["birth"],
    &["birthday"],
    &["birth", "date"],
    &["date", "of", "birth"],
    &["birthplace"],
    // A precise location.
    &["latitude"],
    &["longitude"],
    &["lat"],
    &["lng"],
    &["lon"],
    &["geo", "location"],
    &["gps"],
    &["coordinate"],
    // Credentials and payment details.
    &["password"],
    &["passwd"],
    &["iban"],
    &["cvv"],
    &["credit", "card"],
    &["card", "number"],
    &["bank", "account"],
    &["account", "number"],
    &["sort", "code"],
    // Sensitive personal characteristics.
    &["gender"],
    &["sex"],
    &["ethnicity"],
    &["religion"],
];

/// Words that name a way to reach a person: refused unless the next word is one of the
/// [`CHANNEL_QUALIFIERS`] or the previous word is `has` or `no` (see the [module docs](self)).
pub const CONTACT_WORDS: &[&str] = &["email", "mail", "phone", "telephone", "cellphone", "mobile", "tel"];

/// Words that, right after a contact word, say the attribute is about the channel (consent,
/// subscription, engagement), not the address or number itself; their plurals count too.
pub const CHANNEL_QUALIFIERS: &[&str] = &[
    "opt",
    "optin",
    "opted",
    "optout",
    "consent",
    "consented",
    "permission",
    "subscribe",
    "subscribed",
    "subscriber",
    "subscription",
    "unsubscribe",
    "unsubscribed",
    "status",
    "marketing",
    "preference",
    "eligible",
    "eligibility",
    "enabled",
    "disabled",
    "reachable",
    "capable",
    "verified",
    "channel",
    "open",
    "opened",
    "click",
    "clicked",
    "send",
    "sent",
    "received",
    "engagement",
    "engaged",
    "bounce",
    "bounced",
    "rate",
    "count",
    "frequency",
    "app",
    "os",
    "platform",
];

/// Words that, right before a contact word, make it a flag (`has_email`, `no_phone`).
const FLAG_PREFIXES: &[&str] = &["has", "no"];

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
/// [`PiiRefused`] when its words mark it as personal data (see the [module docs](self)).
pub fn check_custom_attribute(name: &str) -> Result<(), PiiRefused> {
    let refuse = |reason: String| {
        Err(PiiRefused {
            field: format!("custom_attributes.{name}"),
            reason,
        })
    };
    let words = split_words(name);
    if let [only] = words.as_slice()
        && (only == "name" || only == "names")
    {
        return refuse("a person's name".to_owned());
    }
    // The first match from the left names the reason, a contact word before a term starting at the
    // same word.
    for start in 0..words.len() {
        for contact in CONTACT_WORDS {
            if let Some(end) = spelled_at(&words, start, &[contact]) {
                let qualified = words.get(end).is_some_and(|w| is_channel_qualifier(w))
                    || start
                        .checked_sub(1)
                        .is_some_and(|i| FLAG_PREFIXES.contains(&words[i].as_str()));
                if !qualified {
                    return refuse(format!("its name contains `{contact}`"));
                }
            }
        }
        if let Some(term) = REFUSED_TERMS.iter().find(|t| spelled_at(&words, start, t).is_some()) {
            return refuse(format!("its name contains `{}`", term.join(" ")));
        }
    }
    Ok(())
}

/// One of the [`CHANNEL_QUALIFIERS`], or its plural (`opens`, `clicks`, `preferences`).
fn is_channel_qualifier(word: &str) -> bool {
    let singular = word.strip_suffix('s').unwrap_or(word);
    CHANNEL_QUALIFIERS.contains(&word) || CHANNEL_QUALIFIERS.contains(&singular)
}

/// Whether the words from `start` on spell `term` (its words run together, possibly plural), however
/// the name split them: `first`+`name`, `firstname` and `first`+`names` all spell `first name`.
/// Returns the index after the last word of the spelling.
fn spelled_at(words: &[String], start: usize, term: &[&str]) -> Option<usize> {
    let joined: String = term.concat();
    let mut spelled = String::new();
    for (end, word) in words.iter().enumerate().skip(start) {
        spelled.push_str(word);
        if spelled.len() > joined.len() + 2 || !spelled.starts_with(&joined[..joined.len().min(spelled.len())]) {
            return None;
        }
        if let Some(rest) = spelled.strip_prefix(&joined)
            && matches!(rest, "" | "s" | "es")
        {
            return Some(end + 1);
        }
    }
    None
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

    /// Custom attribute names the guard refuses, by kind of personal data, in the spellings seen in
    /// real workspaces: snake_case, camelCase, PascalCase, kebab-case, spaces, dots, upper case, and
    /// words run together.
    const REFUSED_NAMES: &[&str] = &[
        // A person's name.
        "name",
        "Name",
        "names",
        "first_name",
        "firstName",
        "FirstName",
        "firstname",
        "FIRST_NAME",
        "first-name",
        "first name",
        "last_name",
        "lastName",
        "lastname",
        "surname",
        "full_name",
        "fullName",
        "fullname",
        "Full Name",
        "given_name",
        "family_name",
        "middle_name",
        "maiden_name",
        "nickname",
        "nick_name",
        "user_name",
        "userName",
        "username",
        "UserName",
        "usernames",
        "customer_name",
        "customerName",
        "customername",
        "contact_name",
        "display_name",
        "legal_name",
        "preferred_name",
        "account_holder_name",
        "cardholder_name",
        "billing_name",
        "shipping_name",
        "recipient_name",
        // Email.
        "email",
        "Email",
        "EMAIL",
        "e-mail",
        "e_mail",
        "emails",
        "work_email",
        "workEmail",
        "email_address",
        "emailAddress",
        "EmailAddress",
        "emailaddress",
        "email-address",
        "email address",
        "secondary_emails",
        "email_hash",
        "email_domain",
        "contact.email",
        // Telephone.
        "phone",
        "phone_number",
        "phoneNumber",
        "phonenumber",
        "telephone",
        "Telephone",
        "telephone_number",
        "tel",
        "tel_no",
        "cellphone",
        "cell_phone",
        "cellPhone",
        "cell_number",
        "mobile",
        "mobile_number",
        "mobile-number",
        "mobileNumber",
        "mobilePhoneNumber",
        "msisdn",
        "fax",
        "fax_number",
        "sms_number",
        "whatsapp_number",
        "home_phone",
        // Network and device identifiers.
        "ip",
        "IP",
        "ip_address",
        "ipAddress",
        "IPAddress",
        "ipaddress",
        "last_ip",
        "ipv4",
        "ipv6",
        "ip_v4",
        "idfa",
        "idfv",
        "gaid",
        "device_id",
        "deviceId",
        "advertising_id",
        "ad_id",
        "push_token",
        "push_tokens",
        // National identifiers.
        "ssn",
        "SSN",
        "social_security_number",
        "socialSecurityNumber",
        "social_insurance_number",
        "national_insurance_number",
        "nationalInsuranceNumber",
        "national insurance number",
        "ni_number",
        "nino",
        "national_id",
        "nationalId",
        "nationalid",
        "national_identity_number",
        "tax_id",
        "taxId",
        "taxid",
        "tax_number",
        "passport",
        "passport_number",
        "passportNo",
        "drivers_license",
        "driver_license_number",
        "driving_licence",
        "id_card_number",
        "identity_card",
        // Postal address.
        "address",
        "street",
        "street_address",
        "streetAddress",
        "home_address",
        "postal_address",
        "postalAddress",
        "billing_address",
        "shipping_address",
        "address_line_1",
        "addressLine1",
        "addresses",
        "postcode",
        "post_code",
        "postal_code",
        "postalCode",
        "zip",
        "zip_code",
        "zipcode",
        "homeZIPCode",
        "house_number",
        "home_city",
        "customer.postal_code",
        // Birth.
        "dob",
        "DOB",
        "date_of_birth",
        "dateOfBirth",
        "DateOfBirth",
        "dateofbirth",
        "Date of Birth",
        "birth_date",
        "birthDate",
        "birthdate",
        "birthday",
        "birth_year",
        "year_of_birth",
        "place_of_birth",
        "birthplace",
        // Location.
        "latitude",
        "longitude",
        "lat",
        "lng",
        "lon",
        "geolocation",
        "geo_location",
        "gps",
        "coordinates",
        "last_coordinates",
        // Credentials and payment.
        "password",
        "passwd",
        "iban",
        "credit_card",
        "creditCardNumber",
        "card_number",
        "credit_card_last4",
        "bank_account",
        "account_number",
        "sort_code",
        // Sensitive characteristics.
        "gender",
        "sex",
        "ethnicity",
        "religion",
        // Harmless, but their words say personal data (documented: rename them).
        "birthday_club_member",
        "password_reset_count",
        "last_name_change_days",
    ];

    /// Custom attribute names the guard accepts: behaviour, consent flags and names of things, not of
    /// people; and words that merely start or end like a refused one.
    const ACCEPTED_NAMES: &[&str] = &[
        "plan",
        "plan_name",
        "planName",
        "campaign_name",
        "product_name",
        "brand_name",
        "company_name",
        "store_name",
        "tier_name",
        "category_name",
        "last_campaign_name",
        "segment_name",
        "event_name",
        "sender_name",
        "account_name",
        "name_length",
        "country",
        "language",
        "time_zone",
        "region",
        "delivery_region",
        "city",
        "home_store",
        "home_country",
        "email_opt_in",
        "emailOptIn",
        "email_opted_in",
        "email_consent",
        "email_subscribe",
        "email_subscription_status",
        "email_opens_30d",
        "email_click_rate",
        "email_engagement",
        "email_frequency",
        "email_bounced",
        "is_email_verified",
        "has_email",
        "phone_opt_in",
        "mobile_app_sessions",
        "mobile_os",
        "sms_consent",
        "sms_opt_in",
        "sms_marketing_consent",
        "whatsapp_marketing_consent",
        "push_enabled",
        "push_subscribe",
        "emailable_segment_v2",
        "mailchimp_status",
        "zipper_fan",
        "vip_status",
        "is_vip",
        "tip_count",
        "latte_lover",
        "addressable",
        "tenure_days",
        "lifetime_value",
        "order_count",
        "newsletter_open_rate",
        "loyalty_tier",
        "loyalty.tier",
        "days_since_last_purchase",
        "first_purchase_date",
        "last_order_date",
        "age_years",
        "age_band",
        "device",
        "app_version",
        "user_id",
        "customer_id",
        "tax_rate",
        "taxable",
        "national_holiday_fan",
        "race_entries",
    ];

    #[test]
    fn the_name_table_is_refused_and_accepted_as_written() {
        let wrongly_accepted: Vec<&str> = REFUSED_NAMES
            .iter()
            .copied()
            .filter(|n| check_custom_attribute(n).is_ok())
            .collect();
        let wrongly_refused: Vec<String> = ACCEPTED_NAMES
            .iter()
            .filter_map(|n| check_custom_attribute(n).err().map(|e| format!("{n}: {}", e.reason)))
            .collect();
        assert!(
            wrongly_accepted.is_empty() && wrongly_refused.is_empty(),
            "accepted but personal data: {wrongly_accepted:?}\nrefused but not personal data: {wrongly_refused:?}"
        );
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
