//! Message sends: `POST /messages/send`, `/campaigns/trigger/send`, `/canvas/trigger/send` and their
//! `.../schedule/create` variants.
//!
//! None of these has an idempotency key: sending a request twice sends the messages twice. The client
//! therefore never retries them once they may have been received (see [`crate::SendFate`]); these types
//! only describe the wire format. A request reaches at most [`MAX_RECIPIENTS`] listed users, or a whole
//! segment (`broadcast: true`), or a Connected Audience (`audience`, kept as raw JSON: it is an AND/OR
//! filter tree offerloop passes through without interpreting).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::users::UserAlias;
use crate::endpoint::{Endpoint, Request};
#[cfg(doc)]
use crate::limits::MAX_RECIPIENTS;

/// How a recipient is named: exactly one of `external_user_id`, `user_alias`, `braze_id`.
///
/// Flattened into the recipient object. Braze also accepts `email` (with a `prioritization` array);
/// offerloop does not address users by PII.
///
/// Reading refuses a recipient with no identifier or with more than one, as Braze does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "RecipientIdFields")]
#[non_exhaustive]
pub enum RecipientId {
    /// The customer's external id.
    ExternalUserId(String),
    /// A user alias.
    UserAlias(UserAlias),
    /// Braze's id of the profile.
    BrazeId(String),
}

/// The identifier keys of a recipient as read, before checking that exactly one is set.
#[derive(Deserialize)]
struct RecipientIdFields {
    external_user_id: Option<String>,
    user_alias: Option<UserAlias>,
    braze_id: Option<String>,
}

impl TryFrom<RecipientIdFields> for RecipientId {
    type Error = String;

    fn try_from(fields: RecipientIdFields) -> Result<Self, Self::Error> {
        match (fields.external_user_id, fields.user_alias, fields.braze_id) {
            (Some(id), None, None) => Ok(Self::ExternalUserId(id)),
            (None, Some(alias), None) => Ok(Self::UserAlias(alias)),
            (None, None, Some(id)) => Ok(Self::BrazeId(id)),
            _ => Err("a recipient needs exactly one of `external_user_id`, `user_alias`, `braze_id`".to_owned()),
        }
    }
}

/// One recipient of a campaign or Canvas trigger, with its per-user personalisation.
///
/// Per-recipient `trigger_properties` / `context` override the request's top-level keys of the same
/// name. Braze deduplicates a user listed twice in one request (not across requests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Recipient {
    /// Who receives the message.
    #[serde(flatten)]
    pub id: RecipientId,
    /// Campaign personalisation (`{{api_trigger_properties.${key}}}`); at most 50 KB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_properties: Option<Map<String, Value>>,
    /// Canvas entry data under its current name (`{{context.${key}}}`); at most 50 KB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    /// Canvas entry data under its legacy name (`{{canvas_entry_properties.${key}}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canvas_entry_properties: Option<Map<String, Value>>,
    /// When false, Braze creates an unknown `external_user_id` from `attributes` before sending
    /// (Braze's default is true; it cannot be false for aliases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_to_existing_only: Option<bool>,
    /// User attributes Braze applies before the send (so the message can use them without a race with
    /// a separate `/users/track` call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
}

impl Recipient {
    /// A recipient named by `id`.
    pub fn new(id: RecipientId) -> Self {
        Self {
            id,
            trigger_properties: None,
            context: None,
            canvas_entry_properties: None,
            send_to_existing_only: None,
            attributes: None,
        }
    }

    /// The user with this external id.
    pub fn external_user_id(id: impl Into<String>) -> Self {
        Self::new(RecipientId::ExternalUserId(id.into()))
    }

    /// The user with this alias.
    pub fn user_alias(alias: UserAlias) -> Self {
        Self::new(RecipientId::UserAlias(alias))
    }

    /// The user with this Braze id.
    pub fn braze_id(id: impl Into<String>) -> Self {
        Self::new(RecipientId::BrazeId(id.into()))
    }

    /// Sets the per-user trigger properties (campaigns).
    pub fn trigger_properties(mut self, properties: impl Into<Map<String, Value>>) -> Self {
        self.trigger_properties = Some(properties.into());
        self
    }

    /// Sets the per-user Canvas context.
    pub fn context(mut self, context: impl Into<Map<String, Value>>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// Sets the per-user Canvas entry properties (the legacy name of the context).
    pub fn canvas_entry_properties(mut self, properties: impl Into<Map<String, Value>>) -> Self {
        self.canvas_entry_properties = Some(properties.into());
        self
    }

    /// Sets `send_to_existing_only`.
    pub fn send_to_existing_only(mut self, only_existing: bool) -> Self {
        self.send_to_existing_only = Some(only_existing);
        self
    }

    /// Sets the attributes applied before the send.
    pub fn attributes(mut self, attributes: impl Into<Map<String, Value>>) -> Self {
        self.attributes = Some(attributes.into());
        self
    }
}

/// When a scheduled message goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Schedule {
    /// ISO-8601 time: UTC, or without a zone designator when `in_local_time` or `at_optimal_time`
    /// is set (then it is read in each user's time zone).
    pub time: String,
    /// Send at `time` in each user's local time zone (an error if that has passed everywhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_local_time: Option<bool>,
    /// Send on `time`'s date at each user's optimal time (Intelligent Timing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_optimal_time: Option<bool>,
}

impl Schedule {
    /// A schedule at `time` (ISO-8601).
    pub fn new(time: impl Into<String>) -> Self {
        Self {
            time: time.into(),
            in_local_time: None,
            at_optimal_time: None,
        }
    }

    /// Sets `in_local_time`.
    pub fn in_local_time(mut self, local: bool) -> Self {
        self.in_local_time = Some(local);
        self
    }

    /// Sets `at_optimal_time`.
    pub fn at_optimal_time(mut self, optimal: bool) -> Self {
        self.at_optimal_time = Some(optimal);
        self
    }
}

/// Which subscription state a `/messages/*` recipient must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecipientSubscriptionState {
    /// Only users who opted in.
    OptedIn,
    /// Users subscribed or opted in (Braze's default).
    Subscribed,
    /// Every user, unsubscribed ones included (for transactional messages).
    All,
}

/// `POST /messages/send`: sends message content given in the request itself.
///
/// Target `external_user_ids`/`user_aliases` (at most [`MAX_RECIPIENTS`] together), a `segment_id`
/// with `broadcast: true`, or an `audience`; at least one is required.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessagesSendRequest {
    /// Recipients by external id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_user_ids: Vec<String>,
    /// Recipients by alias.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_aliases: Vec<UserAlias>,
    /// A segment; with listed users, only those also in the segment receive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    /// A Connected Audience filter (raw JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<Value>,
    /// Must be true to send to a whole segment or audience without listing users; never with a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<bool>,
    /// The API campaign whose dashboard statistics the send counts toward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// A send id (created with `/sends/id/create`) grouping the send's analytics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_id: Option<String>,
    /// Ignore the workspace's frequency capping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_frequency_capping: Option<bool>,
    /// Which subscription state recipients need.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_subscription_state: Option<RecipientSubscriptionState>,
    /// The message content by channel (`email`, `apple_push`, `webhook`, ...), raw JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Value>,
}

/// `POST /messages/schedule/create`: [`MessagesSendRequest`] at a later time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessagesScheduleRequest {
    /// Recipients by external id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_user_ids: Vec<String>,
    /// Recipients by alias.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_aliases: Vec<UserAlias>,
    /// A segment; with listed users, only those also in the segment receive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    /// A Connected Audience filter (raw JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<Value>,
    /// Must be true to send to a whole segment or audience without listing users; never with a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<bool>,
    /// The API campaign whose dashboard statistics the send counts toward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// A send id grouping the send's analytics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_id: Option<String>,
    /// Ignore the workspace's messaging limits (this endpoint's name for frequency capping override).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_messaging_limits: Option<bool>,
    /// Which subscription state recipients need.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_subscription_state: Option<RecipientSubscriptionState>,
    /// The message content by channel, raw JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Value>,
    /// When to send.
    pub schedule: Schedule,
}

/// Setters shared by the two `/messages/*` requests.
macro_rules! messages_setters {
    ($ty:ty) => {
        impl $ty {
            /// Sets the recipients by external id.
            pub fn external_user_ids(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
                self.external_user_ids = ids.into_iter().map(Into::into).collect();
                self
            }

            /// Sets the recipients by alias.
            pub fn user_aliases(mut self, aliases: impl IntoIterator<Item = UserAlias>) -> Self {
                self.user_aliases = aliases.into_iter().collect();
                self
            }

            /// Sets the segment.
            pub fn segment_id(mut self, id: impl Into<String>) -> Self {
                self.segment_id = Some(id.into());
                self
            }

            /// Sets the Connected Audience filter.
            pub fn audience(mut self, audience: impl Into<Value>) -> Self {
                self.audience = Some(audience.into());
                self
            }

            /// Sets `broadcast`.
            pub fn broadcast(mut self, broadcast: bool) -> Self {
                self.broadcast = Some(broadcast);
                self
            }

            /// Sets the campaign the send counts toward.
            pub fn campaign_id(mut self, id: impl Into<String>) -> Self {
                self.campaign_id = Some(id.into());
                self
            }

            /// Sets the send id.
            pub fn send_id(mut self, id: impl Into<String>) -> Self {
                self.send_id = Some(id.into());
                self
            }

            /// Sets the required subscription state.
            pub fn recipient_subscription_state(mut self, state: RecipientSubscriptionState) -> Self {
                self.recipient_subscription_state = Some(state);
                self
            }

            /// Sets the message content by channel.
            pub fn messages(mut self, messages: impl Into<Value>) -> Self {
                self.messages = Some(messages.into());
                self
            }
        }
    };
}

messages_setters!(MessagesSendRequest);
messages_setters!(MessagesScheduleRequest);

impl MessagesSendRequest {
    /// An empty request; name the audience and content with the setters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `override_frequency_capping`.
    pub fn override_frequency_capping(mut self, override_capping: bool) -> Self {
        self.override_frequency_capping = Some(override_capping);
        self
    }
}

impl MessagesScheduleRequest {
    /// A request sent at `schedule`; name the audience and content with the setters.
    pub fn new(schedule: Schedule) -> Self {
        Self {
            external_user_ids: Vec::new(),
            user_aliases: Vec::new(),
            segment_id: None,
            audience: None,
            broadcast: None,
            campaign_id: None,
            send_id: None,
            override_messaging_limits: None,
            recipient_subscription_state: None,
            messages: None,
            schedule,
        }
    }

    /// Sets `override_messaging_limits`.
    pub fn override_messaging_limits(mut self, override_limits: bool) -> Self {
        self.override_messaging_limits = Some(override_limits);
        self
    }
}

impl Request for MessagesSendRequest {
    const ENDPOINT: Endpoint = Endpoint::MessagesSend;
    type Response = DispatchResponse;
}

impl Request for MessagesScheduleRequest {
    const ENDPOINT: Endpoint = Endpoint::MessagesScheduleCreate;
    type Response = ScheduleResponse;
}

/// `POST /campaigns/trigger/send`: delivers an API-triggered campaign whose content lives in the
/// dashboard, personalised by `trigger_properties`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CampaignTriggerSendRequest {
    /// The API-triggered campaign.
    pub campaign_id: String,
    /// A send id created with `/sends/id/create`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_id: Option<String>,
    /// Personalisation for every recipient; at most 50 KB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_properties: Option<Map<String, Value>>,
    /// True to send to the campaign's whole segment; never with `recipients`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<bool>,
    /// A Connected Audience restricting the recipients (raw JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<Value>,
    /// At most [`MAX_RECIPIENTS`] recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<Recipient>,
}

/// `POST /campaigns/trigger/schedule/create`: [`CampaignTriggerSendRequest`] at a later time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CampaignTriggerScheduleRequest {
    /// The API-triggered campaign.
    pub campaign_id: String,
    /// A send id created with `/sends/id/create`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_id: Option<String>,
    /// Personalisation for every recipient; at most 50 KB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_properties: Option<Map<String, Value>>,
    /// True to send to the campaign's whole segment; never with `recipients`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<bool>,
    /// A Connected Audience restricting the recipients (raw JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<Value>,
    /// At most [`MAX_RECIPIENTS`] recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<Recipient>,
    /// When to send.
    pub schedule: Schedule,
}

impl CampaignTriggerSendRequest {
    /// A trigger of `campaign_id`; add recipients (or broadcast) with the setters.
    pub fn new(campaign_id: impl Into<String>) -> Self {
        Self {
            campaign_id: campaign_id.into(),
            send_id: None,
            trigger_properties: None,
            broadcast: None,
            audience: None,
            recipients: Vec::new(),
        }
    }
}

impl CampaignTriggerScheduleRequest {
    /// A trigger of `campaign_id` at `schedule`; add recipients (or broadcast) with the setters.
    pub fn new(campaign_id: impl Into<String>, schedule: Schedule) -> Self {
        Self {
            campaign_id: campaign_id.into(),
            send_id: None,
            trigger_properties: None,
            broadcast: None,
            audience: None,
            recipients: Vec::new(),
            schedule,
        }
    }
}

/// Setters shared by the two campaign trigger requests.
macro_rules! campaign_trigger_setters {
    ($ty:ty) => {
        impl $ty {
            /// Sets the send id.
            pub fn send_id(mut self, id: impl Into<String>) -> Self {
                self.send_id = Some(id.into());
                self
            }

            /// Sets the trigger properties shared by every recipient.
            pub fn trigger_properties(mut self, properties: impl Into<Map<String, Value>>) -> Self {
                self.trigger_properties = Some(properties.into());
                self
            }

            /// Sets `broadcast`.
            pub fn broadcast(mut self, broadcast: bool) -> Self {
                self.broadcast = Some(broadcast);
                self
            }

            /// Sets the Connected Audience filter.
            pub fn audience(mut self, audience: impl Into<Value>) -> Self {
                self.audience = Some(audience.into());
                self
            }

            /// Sets the recipients.
            pub fn recipients(mut self, recipients: impl IntoIterator<Item = Recipient>) -> Self {
                self.recipients = recipients.into_iter().collect();
                self
            }
        }
    };
}

campaign_trigger_setters!(CampaignTriggerSendRequest);
campaign_trigger_setters!(CampaignTriggerScheduleRequest);

impl Request for CampaignTriggerSendRequest {
    const ENDPOINT: Endpoint = Endpoint::CampaignsTriggerSend;
    type Response = DispatchResponse;
}

impl Request for CampaignTriggerScheduleRequest {
    const ENDPOINT: Endpoint = Endpoint::CampaignsTriggerScheduleCreate;
    type Response = ScheduleResponse;
}

/// `POST /canvas/trigger/send`: enters users into an API-triggered Canvas.
///
/// Canvas entry data has two names: `context` (current) and `canvas_entry_properties` (legacy). Which
/// one an account accepts is not documented for certain, so both are fields; set the one the Canvas's
/// Liquid uses. [`CanvasTriggerSendRequest::entry_properties`] reads whichever was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CanvasTriggerSendRequest {
    /// The API-triggered Canvas.
    pub canvas_id: String,
    /// Entry data for every recipient (`{{context.${key}}}`); at most 50 KB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    /// Entry data under the legacy name (`{{canvas_entry_properties.${key}}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canvas_entry_properties: Option<Map<String, Value>>,
    /// True to enter the Canvas's whole segment; never with `recipients`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<bool>,
    /// A Connected Audience restricting the recipients (raw JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<Value>,
    /// At most [`MAX_RECIPIENTS`] recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<Recipient>,
}

/// `POST /canvas/trigger/schedule/create`: [`CanvasTriggerSendRequest`] at a later time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CanvasTriggerScheduleRequest {
    /// The API-triggered Canvas.
    pub canvas_id: String,
    /// Entry data for every recipient under its current name; at most 50 KB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    /// Entry data under the legacy name (the name this endpoint's documentation still uses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canvas_entry_properties: Option<Map<String, Value>>,
    /// True to enter the Canvas's whole segment; never with `recipients`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<bool>,
    /// A Connected Audience restricting the recipients (raw JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<Value>,
    /// At most [`MAX_RECIPIENTS`] recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<Recipient>,
    /// When to send.
    pub schedule: Schedule,
}

impl CanvasTriggerSendRequest {
    /// A trigger of `canvas_id`; add recipients (or broadcast) with the setters.
    pub fn new(canvas_id: impl Into<String>) -> Self {
        Self {
            canvas_id: canvas_id.into(),
            context: None,
            canvas_entry_properties: None,
            broadcast: None,
            audience: None,
            recipients: Vec::new(),
        }
    }
}

impl CanvasTriggerScheduleRequest {
    /// A trigger of `canvas_id` at `schedule`; add recipients (or broadcast) with the setters.
    pub fn new(canvas_id: impl Into<String>, schedule: Schedule) -> Self {
        Self {
            canvas_id: canvas_id.into(),
            context: None,
            canvas_entry_properties: None,
            broadcast: None,
            audience: None,
            recipients: Vec::new(),
            schedule,
        }
    }
}

/// Setters and accessors shared by the two Canvas trigger requests.
macro_rules! canvas_trigger_setters {
    ($ty:ty) => {
        impl $ty {
            /// Sets the entry data shared by every recipient, under its current name `context`.
            pub fn context(mut self, context: impl Into<Map<String, Value>>) -> Self {
                self.context = Some(context.into());
                self
            }

            /// Sets the entry data under its legacy name `canvas_entry_properties`.
            pub fn canvas_entry_properties(mut self, properties: impl Into<Map<String, Value>>) -> Self {
                self.canvas_entry_properties = Some(properties.into());
                self
            }

            /// The top-level entry data under either name (`context` first).
            pub fn entry_properties(&self) -> Option<&Map<String, Value>> {
                self.context.as_ref().or(self.canvas_entry_properties.as_ref())
            }

            /// Sets `broadcast`.
            pub fn broadcast(mut self, broadcast: bool) -> Self {
                self.broadcast = Some(broadcast);
                self
            }

            /// Sets the Connected Audience filter.
            pub fn audience(mut self, audience: impl Into<Value>) -> Self {
                self.audience = Some(audience.into());
                self
            }

            /// Sets the recipients.
            pub fn recipients(mut self, recipients: impl IntoIterator<Item = Recipient>) -> Self {
                self.recipients = recipients.into_iter().collect();
                self
            }
        }
    };
}

canvas_trigger_setters!(CanvasTriggerSendRequest);
canvas_trigger_setters!(CanvasTriggerScheduleRequest);

impl Request for CanvasTriggerSendRequest {
    const ENDPOINT: Endpoint = Endpoint::CanvasTriggerSend;
    type Response = DispatchResponse;
}

impl Request for CanvasTriggerScheduleRequest {
    const ENDPOINT: Endpoint = Endpoint::CanvasTriggerScheduleCreate;
    type Response = ScheduleResponse;
}

/// The response of an immediate send (`/messages/send`, `/campaigns/trigger/send`,
/// `/canvas/trigger/send`).
///
/// `success` means Braze accepted the request for delivery, not that anything was delivered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DispatchResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// The transmission's id; it appears in Currents message events, joining them to this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_id: Option<String>,
    /// The send id, when the send's analytics are tracked (broadcasts, or a `send_id` was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_id: Option<String>,
    /// A warning that nothing was sent although the call succeeded, e.g. "The Canvas is paused. ...".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// Braze's non-fatal errors (recipients refused while the others were sent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// The response of a schedule creation (`.../schedule/create`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScheduleResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// The scheduled run's transmission id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_id: Option<String>,
    /// The schedule's id, needed to update or delete it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{check_body, check_response};

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn messages_send_request_omits_what_is_absent() {
        check_body(
            &MessagesSendRequest::new()
                .external_user_ids(["c-1", "c-2"])
                .campaign_id("camp-1")
                .messages(json!({"email": {"app_id": "app-1", "subject": "Hi", "body": "<p>Hi</p>"}})),
            json!({
                "external_user_ids": ["c-1", "c-2"],
                "campaign_id": "camp-1",
                "messages": {"email": {"app_id": "app-1", "subject": "Hi", "body": "<p>Hi</p>"}},
            }),
        );
        check_body(
            &MessagesSendRequest::new()
                .user_aliases([UserAlias::new("a-9", "crm_id")])
                .segment_id("seg-1")
                .audience(json!({"AND": [{"custom_attribute": {"custom_attribute_name": "tier", "comparison": "equals", "value": "gold"}}]}))
                .broadcast(true)
                .send_id("send-1")
                .override_frequency_capping(true)
                .recipient_subscription_state(RecipientSubscriptionState::OptedIn),
            json!({
                "user_aliases": [{"alias_name": "a-9", "alias_label": "crm_id"}],
                "segment_id": "seg-1",
                "audience": {"AND": [{"custom_attribute": {"custom_attribute_name": "tier", "comparison": "equals", "value": "gold"}}]},
                "broadcast": true,
                "send_id": "send-1",
                "override_frequency_capping": true,
                "recipient_subscription_state": "opted_in",
            }),
        );
        check_body(&MessagesSendRequest::new(), json!({}));
    }

    #[test]
    fn messages_schedule_request_carries_the_schedule() {
        check_body(
            &MessagesScheduleRequest::new(Schedule::new("2024-06-01T09:00:00").in_local_time(true))
                .segment_id("seg-1")
                .broadcast(true)
                .override_messaging_limits(false)
                .recipient_subscription_state(RecipientSubscriptionState::All),
            json!({
                "segment_id": "seg-1",
                "broadcast": true,
                "override_messaging_limits": false,
                "recipient_subscription_state": "all",
                "schedule": {"time": "2024-06-01T09:00:00", "in_local_time": true},
            }),
        );
        check_body(
            &MessagesScheduleRequest::new(Schedule::new("2024-06-01T09:00:00Z")),
            json!({"schedule": {"time": "2024-06-01T09:00:00Z"}}),
        );
        check_body(
            &Schedule::new("2024-06-01").at_optimal_time(true).in_local_time(false),
            json!({"time": "2024-06-01", "in_local_time": false, "at_optimal_time": true}),
        );
    }

    #[test]
    fn recipients_flatten_one_identifier() {
        check_body(&Recipient::external_user_id("c-1"), json!({"external_user_id": "c-1"}));
        check_body(
            &Recipient::user_alias(UserAlias::new("a-9", "crm_id"))
                .trigger_properties(map(json!({"offer": "discount_10"})))
                .send_to_existing_only(true),
            json!({
                "user_alias": {"alias_name": "a-9", "alias_label": "crm_id"},
                "trigger_properties": {"offer": "discount_10"},
                "send_to_existing_only": true,
            }),
        );
        check_body(
            &Recipient::braze_id("b-1")
                .context(map(json!({"arm": 2})))
                .canvas_entry_properties(map(json!({"arm": 2})))
                .send_to_existing_only(false)
                .attributes(map(json!({"offer_arm": 2}))),
            json!({
                "braze_id": "b-1",
                "context": {"arm": 2},
                "canvas_entry_properties": {"arm": 2},
                "send_to_existing_only": false,
                "attributes": {"offer_arm": 2},
            }),
        );
        for body in [
            json!({"external_user_id": "c-1", "braze_id": "b-1"}),
            json!({"trigger_properties": {}}),
        ] {
            let err = serde_json::from_value::<Recipient>(body).unwrap_err();
            assert!(err.to_string().contains("exactly one of"), "{err}");
        }
    }

    #[test]
    fn campaign_trigger_send_request_omits_what_is_absent() {
        check_body(
            &CampaignTriggerSendRequest::new("camp-1").recipients([
                Recipient::external_user_id("c-1").trigger_properties(map(json!({"offer": "a"}))),
                Recipient::external_user_id("c-2"),
            ]),
            json!({
                "campaign_id": "camp-1",
                "recipients": [
                    {"external_user_id": "c-1", "trigger_properties": {"offer": "a"}},
                    {"external_user_id": "c-2"},
                ],
            }),
        );
        check_body(
            &CampaignTriggerSendRequest::new("camp-1")
                .send_id("send-1")
                .trigger_properties(map(json!({"season": "summer"})))
                .broadcast(true)
                .audience(json!({"OR": []})),
            json!({
                "campaign_id": "camp-1",
                "send_id": "send-1",
                "trigger_properties": {"season": "summer"},
                "broadcast": true,
                "audience": {"OR": []},
            }),
        );
    }

    #[test]
    fn campaign_trigger_schedule_request_carries_the_schedule() {
        check_body(
            &CampaignTriggerScheduleRequest::new("camp-1", Schedule::new("2024-06-01T09:00:00Z"))
                .recipients([Recipient::external_user_id("c-1")])
                .send_id("send-1"),
            json!({
                "campaign_id": "camp-1",
                "send_id": "send-1",
                "recipients": [{"external_user_id": "c-1"}],
                "schedule": {"time": "2024-06-01T09:00:00Z"},
            }),
        );
    }

    #[test]
    fn canvas_trigger_send_request_accepts_both_entry_names() {
        let current = CanvasTriggerSendRequest::new("canvas-1")
            .context(map(json!({"arm": "b"})))
            .recipients([Recipient::external_user_id("c-1").context(map(json!({"rank": 1})))]);
        check_body(
            &current,
            json!({
                "canvas_id": "canvas-1",
                "context": {"arm": "b"},
                "recipients": [{"external_user_id": "c-1", "context": {"rank": 1}}],
            }),
        );
        let legacy = CanvasTriggerSendRequest::new("canvas-1")
            .canvas_entry_properties(map(json!({"arm": "b"})))
            .broadcast(true)
            .audience(json!({"AND": []}));
        check_body(
            &legacy,
            json!({
                "canvas_id": "canvas-1",
                "canvas_entry_properties": {"arm": "b"},
                "broadcast": true,
                "audience": {"AND": []},
            }),
        );
        assert_eq!(current.entry_properties(), legacy.entry_properties());
        assert_eq!(CanvasTriggerSendRequest::new("canvas-1").entry_properties(), None);
    }

    #[test]
    fn canvas_trigger_schedule_request_carries_the_schedule() {
        let request = CanvasTriggerScheduleRequest::new("canvas-1", Schedule::new("2024-06-01T09:00:00Z"))
            .canvas_entry_properties(map(json!({"arm": "b"})))
            .recipients([Recipient::braze_id("b-1")]);
        check_body(
            &request,
            json!({
                "canvas_id": "canvas-1",
                "canvas_entry_properties": {"arm": "b"},
                "recipients": [{"braze_id": "b-1"}],
                "schedule": {"time": "2024-06-01T09:00:00Z"},
            }),
        );
        assert_eq!(request.entry_properties(), Some(&map(json!({"arm": "b"}))));
    }

    #[test]
    fn dispatch_responses_parse() {
        let send: DispatchResponse = check_response("messages_send.json", |r: &DispatchResponse| &r.errors);
        assert_eq!(send.dispatch_id.as_deref(), Some("6e2b8a1f0c3d4e5f8a9b0c1d2e3f4a5b"));
        assert_eq!(send.send_id.as_deref(), Some("spring-offers-2024-05"));
        let campaign: DispatchResponse =
            check_response("campaigns_trigger_send.json", |r: &DispatchResponse| &r.errors);
        assert!(campaign.dispatch_id.is_some());
        assert_eq!(campaign.errors.len(), 1, "partial success keeps the refused recipient");
        let canvas: DispatchResponse = check_response("canvas_trigger_send.json", |r: &DispatchResponse| &r.errors);
        assert!(
            canvas
                .notice
                .as_deref()
                .is_some_and(|n| n.starts_with("The Canvas is paused"))
        );
    }

    #[test]
    fn schedule_responses_parse() {
        for name in [
            "messages_schedule_create.json",
            "campaigns_trigger_schedule_create.json",
            "canvas_trigger_schedule_create.json",
        ] {
            let response: ScheduleResponse = check_response(name, |r: &ScheduleResponse| &r.errors);
            assert_eq!(response.message, "success", "{name}");
            assert!(response.dispatch_id.is_some(), "{name}");
            assert!(response.schedule_id.is_some(), "{name}");
        }
    }
}
