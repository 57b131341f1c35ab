//! Typed requests and responses of every Braze endpoint offerloop uses, one module per resource.
//!
//! Request structs are serialisable values whose optional fields are skipped when absent; response
//! structs tolerate unknown fields and keep Braze's non-fatal `errors` arrays. Each request implements
//! [`crate::endpoint::Request`], which names its endpoint and response type.
//!
//! Conventions shared by every module:
//! - **Requests** are `#[non_exhaustive]`: build them with `new(required fields)` and chainable setters
//!   taking `impl Into<_>`, so Braze can grow optional fields without breaking callers. `GET` requests
//!   hold only scalar fields, because the client sends them as a query string.
//! - **Responses** are plain structs with public fields and `Default`, so mocks and the simulator can
//!   build them. Every field Braze may omit has a default; `message` defaults to empty rather than
//!   failing, because refusing a 2xx body of a message send would hide a send that happened. Fields a
//!   caller cannot do without (`object_prefix`, `send_id`, `email_template_id`) are required.
//! - Both sides derive `Serialize` and `Deserialize`, so the simulator and tests can round-trip them.
//! - PII is not modelled: no typed email, phone or name attribute fields. Lookup keys Braze requires
//!   as such (`/users/export/ids` by email address or phone) are the only exception.

pub mod catalog;
pub mod messaging;
pub mod templates;
pub mod users;

pub use catalog::{PagedRequest, SortDirection};
pub use messaging::{Recipient, RecipientId, Schedule};
pub use users::{UserAlias, UserIdentifier};

/// Deserializes `null` as the type's default: Braze sends `null` for some fields its documentation
/// shows as always present (arrays, names).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(deserializer)?.unwrap_or_default())
}

/// Helpers shared by the wire-type tests of every module.
#[cfg(test)]
pub(crate) mod test_support {
    use std::fmt::Debug;
    use std::path::PathBuf;

    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    /// The fixture file of an endpoint: its path without the leading slash, `/` → `_`, plus `.json`.
    pub(crate) fn fixture_name(endpoint: crate::Endpoint) -> String {
        format!("{}.json", endpoint.path().trim_start_matches('/').replace('/', "_"))
    }

    /// The text of `tests/fixtures/responses/<name>`.
    pub(crate) fn fixture_text(name: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/responses")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// Asserts that a POST request serialises to exactly `expected` and reads back as itself.
    pub(crate) fn check_body<T>(request: &T, expected: Value)
    where
        T: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let body = serde_json::to_value(request).unwrap();
        assert_eq!(body, expected);
        let back: T = serde_json::from_value(body).unwrap();
        assert_eq!(&back, request);
    }

    /// Asserts that a GET request serialises (as the client does, with `serde_urlencoded`) to exactly
    /// the `expected` query pairs, in order, and reads back as itself. Returns the query string.
    pub(crate) fn check_query<T>(request: &T, expected: &[(&str, &str)]) -> String
    where
        T: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let query = serde_urlencoded::to_string(request).unwrap();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(pairs, expected, "query `{query}`");
        let back: T = serde_urlencoded::from_str(&query).unwrap();
        assert_eq!(&back, request);
        query
    }

    /// Parses a response fixture and checks what every response type promises:
    /// - it parses, and survives a serialise/parse round trip unchanged;
    /// - it tolerates unknown fields: some non-empty top-level field of the fixture is not modelled
    ///   (each fixture carries at least one);
    /// - it keeps Braze's `errors` array: the fixture's own, or, when the fixture has none (a clean
    ///   success), one injected into it.
    pub(crate) fn check_response<R>(name: &str, errors: impl Fn(&R) -> &[Value]) -> R
    where
        R: Serialize + DeserializeOwned + PartialEq + Debug + Clone,
    {
        let text = fixture_text(name);
        let raw: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let mut jd = serde_json::Deserializer::from_str(&text);
        let parsed: R = serde_path_to_error::deserialize(&mut jd).unwrap_or_else(|e| panic!("{name}: {e}"));

        let reserialised = serde_json::to_value(&parsed).unwrap();
        let again: R = serde_json::from_value(reserialised.clone()).unwrap();
        assert_eq!(again, parsed, "{name}: round trip");

        let raw_object = raw.as_object().unwrap_or_else(|| panic!("{name}: not an object"));
        let unknown: Vec<&String> = raw_object
            .iter()
            .filter(|(key, value)| !is_empty(value) && reserialised.get(key.as_str()).is_none())
            .map(|(key, _)| key)
            .collect();
        assert!(
            !unknown.is_empty(),
            "{name}: add an unmodelled field to prove unknown fields are tolerated"
        );

        let injected = json!([{"type": "'external_id' is required", "input_array": "recipients", "index": 3}]);
        let (expected_errors, with_errors) = match raw_object.get("errors") {
            Some(own) => (own.clone(), parsed.clone()),
            None => {
                let mut body = raw.clone();
                body["errors"] = injected.clone();
                (injected, serde_json::from_value::<R>(body).unwrap())
            }
        };
        assert_eq!(
            Value::Array(errors(&with_errors).to_vec()),
            expected_errors,
            "{name}: errors kept"
        );
        parsed
    }

    /// Whether a JSON value is one that optional fields skip when serialising (so its absence after a
    /// round trip does not prove the field is unknown).
    fn is_empty(value: &Value) -> bool {
        match value {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::test_support::{fixture_name, fixture_text};
    use super::{catalog, messaging, templates, users};
    use crate::endpoint::{Endpoint, Request};

    /// The endpoint of a request type, after checking that its fixture parses as its response type.
    fn covered<T>() -> Endpoint
    where
        T: Request,
        T::Response: Serialize + PartialEq + Debug + DeserializeOwned,
    {
        let name = fixture_name(T::ENDPOINT);
        let text = fixture_text(&name);
        if let Err(e) = serde_json::from_str::<T::Response>(&text) {
            panic!("{name} does not parse as the response of {}: {e}", T::ENDPOINT);
        }
        T::ENDPOINT
    }

    #[test]
    fn every_endpoint_has_exactly_one_request_type_and_a_fixture() {
        let mut covered = vec![
            covered::<users::ExportIdsRequest>(),
            covered::<users::ExportSegmentRequest>(),
            covered::<users::TrackRequest>(),
            covered::<messaging::MessagesSendRequest>(),
            covered::<messaging::MessagesScheduleRequest>(),
            covered::<messaging::CampaignTriggerSendRequest>(),
            covered::<messaging::CampaignTriggerScheduleRequest>(),
            covered::<messaging::CanvasTriggerSendRequest>(),
            covered::<messaging::CanvasTriggerScheduleRequest>(),
            covered::<catalog::CampaignListRequest>(),
            covered::<catalog::CampaignDetailsRequest>(),
            covered::<catalog::CampaignDataSeriesRequest>(),
            covered::<catalog::CanvasListRequest>(),
            covered::<catalog::CanvasDetailsRequest>(),
            covered::<catalog::CanvasDataSeriesRequest>(),
            covered::<catalog::SegmentListRequest>(),
            covered::<catalog::SegmentDetailsRequest>(),
            covered::<catalog::SegmentDataSeriesRequest>(),
            covered::<catalog::SendDataSeriesRequest>(),
            covered::<catalog::SendIdCreateRequest>(),
            covered::<templates::EmailTemplateCreateRequest>(),
            covered::<templates::EmailTemplateUpdateRequest>(),
            covered::<templates::EmailTemplateInfoRequest>(),
            covered::<templates::EmailTemplateListRequest>(),
        ];
        let listed = covered.len();
        covered.sort();
        covered.dedup();
        assert_eq!(covered.len(), listed, "two request types share an endpoint");
        let mut all = Endpoint::ALL.to_vec();
        all.sort();
        assert_eq!(covered, all);
    }
}
