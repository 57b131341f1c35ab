//! The campaign and canvas rows: every campaign and canvas the use case sends through exists, is
//! API-triggered, live and not archived; a campaign also has a message for each option's channel and
//! no Braze control variant.

use std::collections::BTreeSet;

use offerloop_braze::api::catalog::{
    CampaignDetailsRequest, CampaignDetailsResponse, CanvasDetailsRequest, CanvasDetailsResponse,
};
use offerloop_braze::{BrazeApi, BrazeError};
use offerloop_domain::UseCase;
use offerloop_domain::dimension::{Channel, MessageTarget, OptionPayload};

use super::{CheckResult, RETRY_FIX, ReadFailure, classify, names, not_checked};

/// Who uses a campaign or canvas: option ids with their channel (`None` for the default target).
pub(super) type Users = Vec<(String, Option<Channel>)>;

/// Campaign or canvas ids with who uses them, in order of first mention.
pub(super) type Targets = Vec<(String, Users)>;

/// The campaigns and canvases the use case sends through, in order of first mention.
pub(super) fn targets(use_case: &UseCase) -> (Targets, Targets) {
    let mut campaigns: Targets = Vec::new();
    let mut canvases: Targets = Vec::new();
    let mut add = |target: &MessageTarget, user: String, channel: Option<Channel>| {
        let (list, id) = match target {
            MessageTarget::Campaign(id) => (&mut campaigns, id),
            MessageTarget::Canvas(id) => (&mut canvases, id),
        };
        match list.iter_mut().find(|(known, _)| known == id) {
            Some((_, users)) => users.push((user, channel)),
            None => list.push((id.clone(), vec![(user, channel)])),
        }
    };
    for dimension in use_case.actions.dimensions() {
        for option in &dimension.options {
            if let OptionPayload::Channel { channel, target } = &option.payload {
                add(target, format!("`{}`", option.id), Some(*channel));
            }
        }
    }
    if let Some(target) = &use_case.activation.default_target {
        add(target, "the activation default target".to_owned(), None);
    }
    (campaigns, canvases)
}

/// Whether Braze's channel name (`email`, `ios_push`, `trigger_in_app_message`, ...) is `channel`.
fn braze_channel_is(channel: Channel, braze: &str) -> bool {
    let b = braze.to_ascii_lowercase();
    match channel {
        Channel::Email => b == "email",
        Channel::Sms => b == "sms" || b == "mms",
        Channel::Push => b.ends_with("push"),
        Channel::InApp => b.contains("in_app"),
        Channel::ContentCard => b.starts_with("content_card"),
        Channel::Whatsapp => b == "whats_app" || b == "whatsapp",
        Channel::Webhook => b == "webhook",
    }
}

/// The options (or the default target) that use a campaign or canvas, for people.
fn users_text(users: &Users) -> String {
    let list: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
    if users.iter().all(|(_, c)| c.is_some()) {
        format!("option(s) {}", list.join(", "))
    } else {
        list.join(", ")
    }
}

/// A campaign or a canvas, for the rows both share.
#[derive(Clone, Copy)]
enum TargetKind {
    Campaign,
    Canvas,
}

impl TargetKind {
    /// The word people read, also the prefix of the use case's `<kind>_id` field.
    fn word(self) -> &'static str {
        match self {
            Self::Campaign => "campaign",
            Self::Canvas => "canvas",
        }
    }

    /// The name of its "exists" row.
    fn exists_check(self) -> &'static str {
        match self {
            Self::Campaign => names::CAMPAIGN_EXISTS,
            Self::Canvas => names::CANVAS_EXISTS,
        }
    }
}

/// The row of a campaign or canvas whose details could not be read.
fn unreadable(kind: TargetKind, id: &str, who: &str, error: &BrazeError) -> CheckResult {
    let (word, exists) = (kind.word(), kind.exists_check());
    match classify(error) {
        ReadFailure::Missing => CheckResult::fail(
            exists,
            format!("{word} `{id}` ({who}) does not exist in this workspace"),
            format!("correct the `{word}_id` (Braze: the {word}'s page, API identifier)"),
        ),
        ReadFailure::NoPermission(p) => not_checked(exists, &format!("{word} `{id}`"), p),
        ReadFailure::Other(message) => CheckResult::fail(
            exists,
            format!("{word} `{id}` ({who}) could not be read: {message}"),
            RETRY_FIX,
        ),
    }
}

/// The rows of one campaign, and its details when they could be read.
pub(super) async fn campaign_checks(
    api: &dyn BrazeApi,
    id: &str,
    users: &Users,
) -> (Vec<CheckResult>, Option<CampaignDetailsResponse>) {
    let who = users_text(users);
    let details = match api.campaign_details(CampaignDetailsRequest::new(id)).await {
        Ok(details) => details,
        Err(e) => return (vec![unreadable(TargetKind::Campaign, id, &who, &e)], None),
    };
    let label = match &details.name {
        Some(name) => format!("campaign `{id}` ({name})"),
        None => format!("campaign `{id}`"),
    };
    let channels = campaign_channels(&details);
    let mut rows: Vec<CheckResult> = campaign_delivery_row(&label, &details).into_iter().collect();
    rows.extend(campaign_state_row(&label, &details));
    rows.extend(campaign_channel_rows(&label, users, &channels));
    rows.extend(campaign_control_row(&label, &details));
    if rows.is_empty() {
        let channel_list: BTreeSet<&str> = channels.iter().copied().collect();
        rows.push(CheckResult::pass(
            names::CAMPAIGN,
            format!(
                "{label}, for {who}: API-triggered, active, {} message(s), no control variant",
                channel_list.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    (rows, Some(details))
}

/// ✗ when the campaign is not API-triggered, ⚠ when Braze did not say.
fn campaign_delivery_row(label: &str, details: &CampaignDetailsResponse) -> Option<CheckResult> {
    match details.schedule_type.as_deref() {
        Some("api_triggered") => None,
        Some(other) => Some(CheckResult::fail(
            names::CAMPAIGN_API_TRIGGERED,
            format!("{label} is delivered `{other}`, not API-triggered: offerloop's sends would be refused"),
            "set its delivery to API-Triggered Delivery in Braze, or point the option at an API-triggered campaign",
        )),
        None => Some(CheckResult::warn(
            names::CAMPAIGN_API_TRIGGERED,
            format!("{label}: Braze did not say how it is delivered"),
            Some("make sure its delivery is API-Triggered Delivery".to_owned()),
        )),
    }
}

/// ✗ when the campaign is archived, a draft or stopped (the first that applies).
fn campaign_state_row(label: &str, details: &CampaignDetailsResponse) -> Option<CheckResult> {
    if details.archived {
        Some(CheckResult::fail(
            names::CAMPAIGN_ARCHIVED,
            format!("{label} is archived"),
            "unarchive it in Braze, or point the option at a live campaign",
        ))
    } else if details.draft {
        Some(CheckResult::fail(
            names::CAMPAIGN_ACTIVE,
            format!("{label} is a draft: it cannot be triggered"),
            "launch the campaign in Braze",
        ))
    } else if !details.enabled {
        Some(CheckResult::fail(
            names::CAMPAIGN_ACTIVE,
            format!("{label} is stopped: a trigger succeeds but sends nothing"),
            "resume the campaign in Braze",
        ))
    } else {
        None
    }
}

/// Braze's channel names of the campaign's messages (control variants excluded), or of the
/// campaign itself when its messages name none.
fn campaign_channels(details: &CampaignDetailsResponse) -> Vec<&str> {
    let message_channels: Vec<&str> = details
        .messages
        .values()
        .filter(|m| !m.is_control())
        .filter_map(|m| m.channel.as_deref())
        .collect();
    if message_channels.is_empty() {
        details.channels.iter().map(String::as_str).collect()
    } else {
        message_channels
    }
}

/// ✗ for each option whose channel the campaign has no message for.
fn campaign_channel_rows(label: &str, users: &Users, channels: &[&str]) -> Vec<CheckResult> {
    let mut rows = Vec::new();
    for (option, channel) in users {
        let Some(channel) = channel else { continue };
        if !channels.iter().any(|c| braze_channel_is(*channel, c)) {
            rows.push(CheckResult::fail(
                names::CAMPAIGN_CHANNEL,
                format!(
                    "{label} has no {channel} message, but option {option} sends {channel} through it (it has: {})",
                    if channels.is_empty() {
                        "none".to_owned()
                    } else {
                        channels.join(", ")
                    }
                ),
                format!("add a {channel} message to the campaign, or point option {option} at a {channel} campaign"),
            ));
        }
    }
    rows
}

/// ✗ when the campaign has a Braze control variant.
fn campaign_control_row(label: &str, details: &CampaignDetailsResponse) -> Option<CheckResult> {
    let controls: Vec<&str> = details
        .messages
        .iter()
        .filter(|(_, m)| m.is_control())
        .map(|(key, m)| m.name.as_deref().unwrap_or(key.as_str()))
        .collect();
    (!controls.is_empty()).then(|| {
        CheckResult::fail(
            names::CAMPAIGN_CONTROL,
            format!(
                "{label} has a Braze control variant ({}): Braze would withhold the message from part of offerloop's treatment group, and offerloop's control group must be the only one",
                controls.join(", ")
            ),
            "remove the control group from the campaign's variant distribution (0 % control) in Braze",
        )
    })
}

/// The rows of one canvas, and its details when they could be read.
pub(super) async fn canvas_checks(
    api: &dyn BrazeApi,
    id: &str,
    users: &Users,
) -> (Vec<CheckResult>, Option<CanvasDetailsResponse>) {
    let who = users_text(users);
    let details = match api.canvas_details(CanvasDetailsRequest::new(id)).await {
        Ok(details) => details,
        Err(e) => return (vec![unreadable(TargetKind::Canvas, id, &who, &e)], None),
    };
    let label = match &details.name {
        Some(name) => format!("canvas `{id}` ({name})"),
        None => format!("canvas `{id}`"),
    };
    let mut rows = Vec::new();
    if let Some(other) = details.schedule_type.as_deref().filter(|s| *s != "api_triggered") {
        rows.push(CheckResult::fail(
            names::CANVAS_API_TRIGGERED,
            format!("{label} has `{other}` entry, not API-triggered: offerloop's entries would be refused"),
            "set its entry schedule to API-Triggered in Braze, or point the option at an API-triggered canvas",
        ));
    }
    if details.archived {
        rows.push(CheckResult::fail(
            names::CANVAS_ARCHIVED,
            format!("{label} is archived"),
            "unarchive it in Braze, or point the option at a live canvas",
        ));
    }
    if !details.enabled {
        rows.push(CheckResult::fail(
            names::CANVAS_ENABLED,
            format!("{label} is stopped: entries succeed but nobody receives anything"),
            "resume (or launch) the canvas in Braze",
        ));
    }
    if rows.is_empty() {
        rows.push(CheckResult::pass(
            names::CANVAS,
            format!("{label}, for {who}: API-triggered, enabled, not archived"),
        ));
    }
    (rows, Some(details))
}

#[cfg(test)]
mod tests {
    use super::*;

    use offerloop_braze::{Endpoint, MockBrazeApi};
    use serde_json::json;

    use crate::preflight::CheckStatus;
    use crate::preflight::tests::statuses;

    fn users(options: &[(&str, Channel)]) -> Users {
        options.iter().map(|(o, c)| (format!("`{o}`"), Some(*c))).collect()
    }

    /// A mock whose `/campaigns/details` answers `details` (every other call panics).
    fn campaign_api(details: serde_json::Value) -> MockBrazeApi {
        let mut api = MockBrazeApi::new();
        api.expect_campaign_details()
            .times(1)
            .returning(move |_| Ok(serde_json::from_value(details.clone()).unwrap()));
        api
    }

    #[tokio::test]
    async fn a_live_api_triggered_campaign_passes() {
        let api = campaign_api(json!({
            "name": "Win-back", "enabled": true, "schedule_type": "api_triggered",
            "messages": {"m-1": {"channel": "email", "name": "Variant 1"}},
        }));
        let (rows, details) = campaign_checks(&api, "c-1", &users(&[("email", Channel::Email)])).await;
        assert_eq!(statuses(&rows), [(names::CAMPAIGN, CheckStatus::Pass)], "{rows:#?}");
        assert_eq!(
            rows[0].detail,
            "campaign `c-1` (Win-back), for option(s) `email`: API-triggered, active, email message(s), no control variant"
        );
        assert!(details.is_some());
    }

    #[tokio::test]
    async fn every_campaign_problem_is_its_own_row_in_order() {
        let api = campaign_api(json!({
            "archived": true, "draft": true, "enabled": false, "schedule_type": "scheduled",
            "channels": ["email"],
            "messages": {
                "m-1": {"channel": "email", "name": "Variant 1"},
                "m-2": {"type": "control", "name": "Control"},
            },
        }));
        let who = users(&[("email", Channel::Email), ("sms", Channel::Sms)]);
        let (rows, _) = campaign_checks(&api, "c-1", &who).await;
        assert_eq!(
            statuses(&rows),
            [
                (names::CAMPAIGN_API_TRIGGERED, CheckStatus::Fail),
                (names::CAMPAIGN_ARCHIVED, CheckStatus::Fail),
                (names::CAMPAIGN_CHANNEL, CheckStatus::Fail),
                (names::CAMPAIGN_CONTROL, CheckStatus::Fail),
            ],
            "{rows:#?}"
        );
        assert!(
            rows[2]
                .detail
                .contains("option `sms` sends sms through it (it has: email)"),
            "{}",
            rows[2].detail
        );
        assert!(rows[3].detail.contains("(Control)"), "{}", rows[3].detail);

        let draft = campaign_api(json!({"draft": true, "schedule_type": "api_triggered"}));
        let (rows, _) = campaign_checks(&draft, "c-1", &Vec::new()).await;
        assert_eq!(statuses(&rows), [(names::CAMPAIGN_ACTIVE, CheckStatus::Fail)]);
        assert!(rows[0].detail.contains("a draft"));
        let stopped = campaign_api(json!({"enabled": false}));
        let (rows, _) = campaign_checks(&stopped, "c-1", &Vec::new()).await;
        assert_eq!(
            statuses(&rows),
            [
                (names::CAMPAIGN_API_TRIGGERED, CheckStatus::Warn),
                (names::CAMPAIGN_ACTIVE, CheckStatus::Fail)
            ]
        );
        assert!(rows[1].detail.contains("is stopped"));
    }

    #[tokio::test]
    async fn unreadable_targets_say_why() {
        let mut api = MockBrazeApi::new();
        api.expect_campaign_details().times(1).returning(|_| {
            Err(BrazeError::BadRequest {
                endpoint: Endpoint::CampaignsDetails,
                status: 400,
                message: "Invalid Campaign ID".into(),
                errors: vec![],
            })
        });
        api.expect_canvas_details().times(1).returning(|_| {
            Err(BrazeError::MissingPermission {
                endpoint: Endpoint::CanvasDetails,
                permission: "canvas.details",
                message: "Access Denied".into(),
            })
        });
        let who = users(&[("email", Channel::Email)]);
        let (rows, details) = campaign_checks(&api, "c-1", &who).await;
        assert!(details.is_none());
        assert_eq!(statuses(&rows), [(names::CAMPAIGN_EXISTS, CheckStatus::Fail)]);
        assert_eq!(
            (rows[0].detail.as_str(), rows[0].fix.as_deref()),
            (
                "campaign `c-1` (option(s) `email`) does not exist in this workspace",
                Some("correct the `campaign_id` (Braze: the campaign's page, API identifier)")
            )
        );
        let (rows, details) = canvas_checks(&api, "v-1", &who).await;
        assert!(details.is_none());
        assert_eq!(statuses(&rows), [(names::CANVAS_EXISTS, CheckStatus::Warn)]);
        assert!(rows[0].detail.contains("lacks `canvas.details`"), "{}", rows[0].detail);
    }

    #[tokio::test]
    async fn canvas_rows_follow_its_state() {
        let mut api = MockBrazeApi::new();
        api.expect_canvas_details().times(2).returning(|r| {
            Ok(serde_json::from_value(if r.canvas_id == "live" {
                json!({"name": "Journey", "enabled": true, "schedule_type": "api_triggered"})
            } else {
                json!({"archived": true, "enabled": false, "schedule_type": "date"})
            })
            .unwrap())
        });
        let who = vec![("the activation default target".to_owned(), None)];
        let (rows, _) = canvas_checks(&api, "live", &who).await;
        assert_eq!(statuses(&rows), [(names::CANVAS, CheckStatus::Pass)]);
        assert_eq!(
            rows[0].detail,
            "canvas `live` (Journey), for the activation default target: API-triggered, enabled, not archived"
        );
        let (rows, _) = canvas_checks(&api, "dead", &who).await;
        assert_eq!(
            statuses(&rows),
            [
                (names::CANVAS_API_TRIGGERED, CheckStatus::Fail),
                (names::CANVAS_ARCHIVED, CheckStatus::Fail),
                (names::CANVAS_ENABLED, CheckStatus::Fail),
            ]
        );
    }

    #[test]
    fn targets_group_options_by_campaign_in_order_of_first_mention() {
        let use_case = crate::plan::tests::example("winback");
        let (campaigns, canvases) = targets(&use_case);
        let ids: Vec<&str> = campaigns.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids.len(), 3, "{campaigns:?}");
        assert_eq!(ids[0], "6f1c2a9e-winback-email");
        assert!(canvases.is_empty());
        assert_eq!(campaigns[0].1, users(&[("email", Channel::Email)]));
    }

    #[test]
    fn braze_channel_names_map_to_offerloop_channels() {
        assert!(braze_channel_is(Channel::Push, "ios_push") && braze_channel_is(Channel::Push, "android_push"));
        assert!(braze_channel_is(Channel::InApp, "trigger_in_app_message"));
        assert!(braze_channel_is(Channel::ContentCard, "content_cards"));
        assert!(braze_channel_is(Channel::Whatsapp, "whats_app"));
        assert!(!braze_channel_is(Channel::Email, "sms") && !braze_channel_is(Channel::Sms, "email"));
    }
}
