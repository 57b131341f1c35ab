//! User data: `POST /users/export/ids` (profiles by identifier), `POST /users/export/segment` (an
//! asynchronous export of a whole segment) and `POST /users/track` (attributes, events, purchases).
//!
//! A `/users/track` object names its user by exactly one identifier; [`UserIdentifier`] makes "exactly
//! one" a type (an enum flattened into the object) instead of three optional fields a caller could
//! leave all empty or set twice. Profile attributes are an open map, not typed fields: offerloop writes
//! custom attributes only, and typed email/phone/name fields would invite writing PII.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::endpoint::{Endpoint, Request};
use crate::export::ExportedUser;

/// A user alias: a label (the alias's namespace) and a name unique within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserAlias {
    /// The alias itself, unique within its label.
    pub alias_name: String,
    /// The alias's namespace, e.g. `crm_id`.
    pub alias_label: String,
}

impl UserAlias {
    /// An alias `name` under `label`.
    pub fn new(name: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            alias_name: name.into(),
            alias_label: label.into(),
        }
    }
}

/// How a `/users/track` object names its user: exactly one of `external_id`, `user_alias`, `braze_id`.
///
/// Flattened into the object, so `UserIdentifier::ExternalId("c-1")` is the key `"external_id": "c-1"`.
/// Braze also accepts `email` and `phone`; offerloop does not identify users by PII.
///
/// Reading refuses an object with no identifier or with more than one, as Braze does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "UserIdentifierFields")]
#[non_exhaustive]
pub enum UserIdentifier {
    /// The customer's id in the customer's own systems.
    ExternalId(String),
    /// A user alias.
    UserAlias(UserAlias),
    /// Braze's own id of the profile.
    BrazeId(String),
}

impl UserIdentifier {
    /// An `external_id`.
    pub fn external_id(id: impl Into<String>) -> Self {
        Self::ExternalId(id.into())
    }

    /// A `user_alias`.
    pub fn alias(name: impl Into<String>, label: impl Into<String>) -> Self {
        Self::UserAlias(UserAlias::new(name, label))
    }

    /// A `braze_id`.
    pub fn braze_id(id: impl Into<String>) -> Self {
        Self::BrazeId(id.into())
    }
}

/// The identifier keys of a `/users/track` object as read, before checking that exactly one is set.
#[derive(Deserialize)]
struct UserIdentifierFields {
    external_id: Option<String>,
    user_alias: Option<UserAlias>,
    braze_id: Option<String>,
}

impl TryFrom<UserIdentifierFields> for UserIdentifier {
    type Error = String;

    fn try_from(fields: UserIdentifierFields) -> Result<Self, Self::Error> {
        match (fields.external_id, fields.user_alias, fields.braze_id) {
            (Some(id), None, None) => Ok(Self::ExternalId(id)),
            (None, Some(alias), None) => Ok(Self::UserAlias(alias)),
            (None, None, Some(id)) => Ok(Self::BrazeId(id)),
            _ => Err("a user object needs exactly one of `external_id`, `user_alias`, `braze_id`".to_owned()),
        }
    }
}

impl From<UserAlias> for UserIdentifier {
    fn from(alias: UserAlias) -> Self {
        Self::UserAlias(alias)
    }
}

/// `POST /users/export/ids`: whole profiles of up to 50 users (external ids and aliases combined; see
/// [`crate::limits::MAX_EXPORT_IDS`]), or of the one user with a given device id, email address or phone.
///
/// Braze allows at most one of `device_id`, `email_address`, `phone` per request. List
/// `fields_to_export`: it is required for workspaces created since August 2024 and keeps the response
/// small; without it older workspaces export every field, PII included.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportIdsRequest {
    /// External ids to export.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_ids: Vec<String>,
    /// Aliases to export (they count toward the 50 with `external_ids`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_aliases: Vec<UserAlias>,
    /// A device id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// A Braze id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub braze_id: Option<String>,
    /// An email address (a lookup key; the export itself never returns PII to offerloop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    /// A phone number in E.164 form (a lookup key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The profile fields to return, e.g. `external_id`, `custom_attributes`, `purchases`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields_to_export: Vec<String>,
}

impl ExportIdsRequest {
    /// An empty request; add identifiers and fields with the setters.
    pub fn new() -> Self {
        Self::default()
    }

    /// A request for these external ids.
    pub fn by_external_ids(ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::new().external_ids(ids)
    }

    /// Sets the external ids.
    pub fn external_ids(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.external_ids = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the aliases.
    pub fn user_aliases(mut self, aliases: impl IntoIterator<Item = UserAlias>) -> Self {
        self.user_aliases = aliases.into_iter().collect();
        self
    }

    /// Sets the device id.
    pub fn device_id(mut self, id: impl Into<String>) -> Self {
        self.device_id = Some(id.into());
        self
    }

    /// Sets the Braze id.
    pub fn braze_id(mut self, id: impl Into<String>) -> Self {
        self.braze_id = Some(id.into());
        self
    }

    /// Sets the email address to look up.
    pub fn email_address(mut self, email: impl Into<String>) -> Self {
        self.email_address = Some(email.into());
        self
    }

    /// Sets the phone number (E.164) to look up.
    pub fn phone(mut self, phone: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self
    }

    /// Sets the fields to export.
    pub fn fields_to_export(mut self, fields: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.fields_to_export = fields.into_iter().map(Into::into).collect();
        self
    }
}

impl Request for ExportIdsRequest {
    const ENDPOINT: Endpoint = Endpoint::UsersExportIds;
    type Response = ExportIdsResponse;
}

/// The response of `POST /users/export/ids`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExportIdsResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// The profiles found, restricted to the requested fields (and to non-PII by [`ExportedUser`]).
    #[serde(default)]
    pub users: Vec<ExportedUser>,
    /// Requested identifiers that matched no user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_user_ids: Vec<String>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// The archive format of a segment export. `gzip` is only available with the customer's own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OutputFormat {
    /// ZIP archives (Braze's default).
    Zip,
    /// Gzip files.
    Gzip,
}

/// `POST /users/export/segment`: starts an asynchronous export of every user of a segment.
///
/// Braze runs at most one export per segment at a time (a second one is refused with 429); the
/// response only says where the files will appear (see [`crate::export`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportSegmentRequest {
    /// The segment to export.
    pub segment_id: String,
    /// The profile fields to export (required by Braze).
    #[serde(default)]
    pub fields_to_export: Vec<String>,
    /// Up to 500 named custom attributes (ignored when `custom_attributes` is in `fields_to_export`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_attributes_to_export: Vec<String>,
    /// A URL Braze POSTs `{"success": true}` (and the download `url`) to when the export is ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_endpoint: Option<String>,
    /// The archive format (default zip).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
}

impl ExportSegmentRequest {
    /// An export of `segment_id` with these fields.
    pub fn new(segment_id: impl Into<String>, fields_to_export: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            segment_id: segment_id.into(),
            fields_to_export: fields_to_export.into_iter().map(Into::into).collect(),
            custom_attributes_to_export: Vec::new(),
            callback_endpoint: None,
            output_format: None,
        }
    }

    /// Sets the named custom attributes to export. Braze ignores this list when `fields_to_export`
    /// holds `custom_attributes` and then exports **every** custom attribute (personal ones
    /// included), so a non-empty list also takes `custom_attributes` out of `fields_to_export`; the
    /// named attributes still arrive under `custom_attributes`.
    pub fn custom_attributes_to_export(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.custom_attributes_to_export = names.into_iter().map(Into::into).collect();
        if !self.custom_attributes_to_export.is_empty() {
            self.fields_to_export.retain(|f| f != "custom_attributes");
        }
        self
    }

    /// The profile fields the export's files hold: `fields_to_export`, plus `custom_attributes` when
    /// named attributes are requested.
    pub fn exported_fields(&self) -> Vec<String> {
        let mut fields = self.fields_to_export.clone();
        if !self.custom_attributes_to_export.is_empty() && !fields.iter().any(|f| f == "custom_attributes") {
            fields.push("custom_attributes".to_owned());
        }
        fields
    }

    /// Sets the completion callback URL.
    pub fn callback_endpoint(mut self, url: impl Into<String>) -> Self {
        self.callback_endpoint = Some(url.into());
        self
    }

    /// Sets the archive format.
    pub fn output_format(mut self, format: OutputFormat) -> Self {
        self.output_format = Some(format);
        self
    }
}

impl Request for ExportSegmentRequest {
    const ENDPOINT: Endpoint = Endpoint::UsersExportSegment;
    type Response = ExportSegmentResponse;
}

/// The immediate response of `POST /users/export/segment`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExportSegmentResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// The export's directory name in the customer's bucket:
    /// `segment-export/<segment_id>/<date>/<object_prefix>/`.
    pub object_prefix: String,
    /// Where Braze hosts the finished ZIP when no bucket is configured; not valid until the export is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// A `/users/track` attributes object: one user's identifier and the attributes to set.
///
/// Attribute values use Braze's forms: a scalar or array sets the value, `null` removes it, and
/// `{"inc": n}`, `{"add": [..]}`, `{"remove": [..]}` update it. Do not put identifier keys
/// (`external_id`, `user_alias`, `braze_id`) or `_update_existing_only` in `attributes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttributesObject {
    /// The user.
    #[serde(flatten)]
    pub identifier: UserIdentifier,
    /// `_update_existing_only`: when true, unknown users are not created. Braze's default is false for
    /// `external_id` and true for aliases (which must set it to false to create an alias-only profile).
    #[serde(rename = "_update_existing_only", default, skip_serializing_if = "Option::is_none")]
    pub update_existing_only: Option<bool>,
    /// The attributes, by name.
    #[serde(flatten)]
    pub attributes: BTreeMap<String, Value>,
}

impl AttributesObject {
    /// An attributes object for `identifier`, with no attributes yet.
    pub fn new(identifier: impl Into<UserIdentifier>) -> Self {
        Self {
            identifier: identifier.into(),
            update_existing_only: None,
            attributes: BTreeMap::new(),
        }
    }

    /// Sets one attribute (replacing an earlier value of the same name).
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Sets `_update_existing_only`.
    pub fn update_existing_only(mut self, only_existing: bool) -> Self {
        self.update_existing_only = Some(only_existing);
        self
    }
}

/// A `/users/track` event object: one custom event of one user.
///
/// Every object is a separate occurrence: Braze does not deduplicate events, so sending the same
/// object twice counts it twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventObject {
    /// The user.
    #[serde(flatten)]
    pub identifier: UserIdentifier,
    /// The app the event belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The event name.
    pub name: String,
    /// When it happened (ISO-8601; Braze clamps future times to now).
    pub time: String,
    /// Event properties (keys must not start with `$`; `time` and `event_name` are reserved).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    /// `_update_existing_only`: when true, the event of an unknown user is dropped.
    #[serde(rename = "_update_existing_only", default, skip_serializing_if = "Option::is_none")]
    pub update_existing_only: Option<bool>,
}

impl EventObject {
    /// Event `name` of `identifier` at `time` (ISO-8601).
    pub fn new(identifier: impl Into<UserIdentifier>, name: impl Into<String>, time: impl Into<String>) -> Self {
        Self {
            identifier: identifier.into(),
            app_id: None,
            name: name.into(),
            time: time.into(),
            properties: Map::new(),
            update_existing_only: None,
        }
    }

    /// Sets the app id.
    pub fn app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// Sets one property.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Sets `_update_existing_only`.
    pub fn update_existing_only(mut self, only_existing: bool) -> Self {
        self.update_existing_only = Some(only_existing);
        self
    }
}

/// A `/users/track` purchase object: one purchase of one user. Revenue is `price × quantity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PurchaseObject {
    /// The user.
    #[serde(flatten)]
    pub identifier: UserIdentifier,
    /// The app the purchase belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The product (at most 255 characters).
    pub product_id: String,
    /// ISO-4217 currency code.
    pub currency: String,
    /// Unit price.
    pub price: f64,
    /// Quantity (Braze's default 1, at most 100; counted as that many purchases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
    /// When it happened (ISO-8601).
    pub time: String,
    /// Purchase properties.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    /// `_update_existing_only`: when true, the purchase of an unknown user is dropped.
    #[serde(rename = "_update_existing_only", default, skip_serializing_if = "Option::is_none")]
    pub update_existing_only: Option<bool>,
}

impl PurchaseObject {
    /// A purchase of `product_id` at `price` in `currency` by `identifier` at `time` (ISO-8601).
    pub fn new(
        identifier: impl Into<UserIdentifier>,
        product_id: impl Into<String>,
        currency: impl Into<String>,
        price: f64,
        time: impl Into<String>,
    ) -> Self {
        Self {
            identifier: identifier.into(),
            app_id: None,
            product_id: product_id.into(),
            currency: currency.into(),
            price,
            quantity: None,
            time: time.into(),
            properties: Map::new(),
            update_existing_only: None,
        }
    }

    /// Sets the app id.
    pub fn app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// Sets the quantity.
    pub fn quantity(mut self, quantity: u32) -> Self {
        self.quantity = Some(quantity);
        self
    }

    /// Sets one property.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Sets `_update_existing_only`.
    pub fn update_existing_only(mut self, only_existing: bool) -> Self {
        self.update_existing_only = Some(only_existing);
        self
    }
}

/// `POST /users/track`: at most 75 objects in each array (see [`crate::limits::MAX_TRACK_OBJECTS`]).
///
/// Not idempotent: events and purchases sent twice are counted twice, and `{"inc": n}` applies twice.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackRequest {
    /// Attribute updates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttributesObject>,
    /// Custom events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventObject>,
    /// Purchases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purchases: Vec<PurchaseObject>,
}

impl TrackRequest {
    /// An empty request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the attribute objects.
    pub fn attributes(mut self, objects: impl IntoIterator<Item = AttributesObject>) -> Self {
        self.attributes = objects.into_iter().collect();
        self
    }

    /// Sets the event objects.
    pub fn events(mut self, objects: impl IntoIterator<Item = EventObject>) -> Self {
        self.events = objects.into_iter().collect();
        self
    }

    /// Sets the purchase objects.
    pub fn purchases(mut self, objects: impl IntoIterator<Item = PurchaseObject>) -> Self {
        self.purchases = objects.into_iter().collect();
        self
    }

    /// Whether all three arrays are empty.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.events.is_empty() && self.purchases.is_empty()
    }
}

impl Request for TrackRequest {
    const ENDPOINT: Endpoint = Endpoint::UsersTrack;
    type Response = TrackResponse;
}

/// The response of `POST /users/track` (HTTP 201). Processing is asynchronous: the counts say what
/// was queued, not applied.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrackResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// Attribute objects queued; present only when attributes were sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes_processed: Option<u64>,
    /// Event objects queued; present only when events were sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_processed: Option<u64>,
    /// Purchase objects queued; present only when purchases were sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchases_processed: Option<u64>,
    /// Braze's non-fatal errors: objects refused while the rest were processed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{check_body, check_response};

    #[test]
    fn export_ids_request_omits_what_is_absent() {
        check_body(
            &ExportIdsRequest::by_external_ids(["c-1", "c-2"])
                .user_aliases([UserAlias::new("a-9", "crm_id")])
                .fields_to_export(["external_id", "custom_attributes"]),
            json!({
                "external_ids": ["c-1", "c-2"],
                "user_aliases": [{"alias_name": "a-9", "alias_label": "crm_id"}],
                "fields_to_export": ["external_id", "custom_attributes"],
            }),
        );
        check_body(&ExportIdsRequest::new(), json!({}));
        check_body(
            &ExportIdsRequest::new().device_id("d-1").braze_id("b-1"),
            json!({"device_id": "d-1", "braze_id": "b-1"}),
        );
        check_body(
            &ExportIdsRequest::new().email_address("x@example.invalid"),
            json!({"email_address": "x@example.invalid"}),
        );
        check_body(
            &ExportIdsRequest::new().phone("+15550100"),
            json!({"phone": "+15550100"}),
        );
    }

    #[test]
    fn export_ids_response_parses() {
        let response: ExportIdsResponse = check_response("users_export_ids.json", |r: &ExportIdsResponse| &r.errors);
        assert_eq!(response.message, "success");
        assert_eq!(response.users.len(), 2);
        assert_eq!(response.users[0].external_id.as_deref(), Some("c-1001"));
        assert_eq!(response.users[0].custom_attributes["loyalty_tier"], json!("gold"));
        assert_eq!(response.invalid_user_ids, ["c-missing"]);
    }

    #[test]
    fn export_segment_request_omits_what_is_absent() {
        check_body(
            &ExportSegmentRequest::new("seg-1", ["external_id", "custom_attributes"]),
            json!({"segment_id": "seg-1", "fields_to_export": ["external_id", "custom_attributes"]}),
        );
        check_body(
            &ExportSegmentRequest::new("seg-1", ["external_id"])
                .custom_attributes_to_export(["loyalty_tier"])
                .callback_endpoint("https://hooks.example.invalid/done")
                .output_format(OutputFormat::Gzip),
            json!({
                "segment_id": "seg-1",
                "fields_to_export": ["external_id"],
                "custom_attributes_to_export": ["loyalty_tier"],
                "callback_endpoint": "https://hooks.example.invalid/done",
                "output_format": "gzip",
            }),
        );
        // `fields_to_export` is required: sent even when empty, so Braze reports it.
        check_body(
            &ExportSegmentRequest::new("seg-1", Vec::<String>::new()),
            json!({"segment_id": "seg-1", "fields_to_export": []}),
        );
    }

    /// Braze ignores named attributes when `custom_attributes` is a field, and exports every one.
    #[test]
    fn named_custom_attributes_take_custom_attributes_out_of_the_fields() {
        let request = ExportSegmentRequest::new("seg-1", ["external_id", "custom_attributes"])
            .custom_attributes_to_export(["days_since_last_purchase"]);
        check_body(
            &request,
            json!({
                "segment_id": "seg-1",
                "fields_to_export": ["external_id"],
                "custom_attributes_to_export": ["days_since_last_purchase"],
            }),
        );
        assert_eq!(request.exported_fields(), ["external_id", "custom_attributes"]);
    }

    #[test]
    fn export_segment_response_parses() {
        let response: ExportSegmentResponse =
            check_response("users_export_segment.json", |r: &ExportSegmentResponse| &r.errors);
        assert_eq!(
            response.object_prefix,
            "bb8e2a91-c4aa-478b-b3f2-a4ee91731ad1-1464728599"
        );
        assert!(response.url.as_deref().is_some_and(|u| u.starts_with("https://")));
        // The prefix is what locates the files: a body without it is refused, naming the field.
        let err = serde_json::from_str::<ExportSegmentResponse>(r#"{"message":"success"}"#).unwrap_err();
        assert!(err.to_string().contains("object_prefix"), "{err}");
    }

    #[test]
    fn track_request_flattens_identifiers_and_attributes() {
        let request = TrackRequest::new()
            .attributes([
                AttributesObject::new(UserIdentifier::external_id("c-1"))
                    .attribute("loyalty_tier", "gold")
                    .attribute("offers_seen", json!({"inc": 1})),
                AttributesObject::new(UserAlias::new("a-9", "crm_id"))
                    .update_existing_only(false)
                    .attribute("last_offer", Value::Null),
            ])
            .events([
                EventObject::new(UserIdentifier::braze_id("b-1"), "offer_decided", "2024-05-01T12:00:00Z")
                    .app_id("app-1")
                    .property("arm", "discount_10"),
                EventObject::new(UserIdentifier::external_id("c-2"), "offer_seen", "2024-05-01T12:05:00Z"),
            ])
            .purchases([PurchaseObject::new(
                UserIdentifier::external_id("c-1"),
                "sku-42",
                "EUR",
                19.5,
                "2024-05-02T08:00:00Z",
            )
            .quantity(2)
            .property("offer", "discount_10")
            .update_existing_only(true)]);
        check_body(
            &request,
            json!({
                "attributes": [
                    {"external_id": "c-1", "loyalty_tier": "gold", "offers_seen": {"inc": 1}},
                    {
                        "user_alias": {"alias_name": "a-9", "alias_label": "crm_id"},
                        "_update_existing_only": false,
                        "last_offer": null,
                    },
                ],
                "events": [
                    {
                        "braze_id": "b-1",
                        "app_id": "app-1",
                        "name": "offer_decided",
                        "time": "2024-05-01T12:00:00Z",
                        "properties": {"arm": "discount_10"},
                    },
                    {"external_id": "c-2", "name": "offer_seen", "time": "2024-05-01T12:05:00Z"},
                ],
                "purchases": [{
                    "external_id": "c-1",
                    "product_id": "sku-42",
                    "currency": "EUR",
                    "price": 19.5,
                    "quantity": 2,
                    "time": "2024-05-02T08:00:00Z",
                    "properties": {"offer": "discount_10"},
                    "_update_existing_only": true,
                }],
            }),
        );
        check_body(&TrackRequest::new(), json!({}));
        assert!(TrackRequest::new().is_empty());
        assert!(!request.is_empty());
    }

    #[test]
    fn a_track_object_needs_an_identifier() {
        let err = serde_json::from_value::<AttributesObject>(json!({"loyalty_tier": "gold"})).unwrap_err();
        assert!(err.to_string().contains("exactly one of"), "{err}");
        let two = json!({"name": "e", "time": "2024-05-01T00:00:00Z", "external_id": "c-1", "braze_id": "b-1"});
        let err = serde_json::from_value::<EventObject>(two).unwrap_err();
        assert!(err.to_string().contains("exactly one of"), "{err}");
        // The identifier is not repeated among the attributes.
        let parsed: AttributesObject =
            serde_json::from_value(json!({"braze_id": "b-1", "_update_existing_only": true, "tier": 2})).unwrap();
        assert_eq!(parsed.identifier, UserIdentifier::braze_id("b-1"));
        assert_eq!(parsed.update_existing_only, Some(true));
        assert_eq!(parsed.attributes, BTreeMap::from([("tier".to_owned(), json!(2))]));
    }

    #[test]
    fn track_response_parses_and_keeps_partial_errors() {
        let response: TrackResponse = check_response("users_track.json", |r: &TrackResponse| &r.errors);
        assert_eq!(response.attributes_processed, Some(2));
        assert_eq!(response.events_processed, Some(74));
        assert_eq!(response.purchases_processed, None);
        assert_eq!(response.errors.len(), 1);
    }
}
