//! [`BrazeActivator`]: executes planned batches through [`BrazeApi`], once each.
//!
//! A batch's JSON is read back into the client's typed request (the bytes planned are the bytes
//! sent) and the matching [`BrazeApi`] method is called exactly once. The client itself waits out
//! rate limits and retries only what cannot have been applied; this layer never retries. Failures are
//! classified with the client's own [`BrazeError::send_fate`]:
//! - [`SendFate::NotAccepted`] → [`BatchOutcome::Rejected`], `retryable` when waiting can help (a 429
//!   after the client's waiting budget, a connection that could not be made), not for a refusal that
//!   will repeat (400 validation, 401 key, 403 permission — the message names the endpoint and the
//!   permission, 404);
//! - [`SendFate::Unknown`] → [`BatchOutcome::Unknown`] (a timeout after the body left, a 5xx, a lost
//!   connection, an unreadable 2xx): the messages may have gone out, so it must be reconciled, never
//!   resent automatically.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::civil::Date;
use offerloop_braze::api::messaging::{
    CampaignTriggerScheduleRequest, CampaignTriggerSendRequest, CanvasTriggerScheduleRequest, CanvasTriggerSendRequest,
    DispatchResponse, ScheduleResponse,
};
use offerloop_braze::api::users::{TrackRequest, TrackResponse};
use offerloop_braze::{BrazeApi, BrazeError, SendFate};
use offerloop_domain::UseCase;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{ActivationRequest, Activator, BatchKind, BatchOutcome, PlannedBatch, Result, plan};

/// Executes batches against Braze through [`BrazeApi`] (the real client, or the simulator behind it).
#[derive(Clone)]
pub struct BrazeActivator {
    api: Arc<dyn BrazeApi>,
}

impl std::fmt::Debug for BrazeActivator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `dyn BrazeApi` is not `Debug` (and the client holds the key): show nothing of it.
        f.debug_struct("BrazeActivator").finish_non_exhaustive()
    }
}

impl BrazeActivator {
    /// An activator calling `api`.
    pub fn new(api: Arc<dyn BrazeApi>) -> Self {
        Self { api }
    }
}

#[async_trait]
impl Activator for BrazeActivator {
    fn plan(&self, use_case: &UseCase, date: Date, requests: &[ActivationRequest]) -> Result<Vec<PlannedBatch>> {
        plan::plan(use_case, date, requests)
    }

    async fn execute(&self, batch: &PlannedBatch) -> BatchOutcome {
        let api = self.api.as_ref();
        match &batch.kind {
            BatchKind::CampaignSend { campaign_id } => {
                match decode::<CampaignTriggerSendRequest>(batch, Some(campaign_id), |r| &r.campaign_id) {
                    Ok(request) => dispatched(api.trigger_campaign(request).await),
                    Err(outcome) => outcome,
                }
            }
            BatchKind::CampaignSchedule { campaign_id } => {
                match decode::<CampaignTriggerScheduleRequest>(batch, Some(campaign_id), |r| &r.campaign_id) {
                    Ok(request) => scheduled(api.schedule_campaign(request).await),
                    Err(outcome) => outcome,
                }
            }
            BatchKind::CanvasSend { canvas_id } => {
                match decode::<CanvasTriggerSendRequest>(batch, Some(canvas_id), |r| &r.canvas_id) {
                    Ok(request) => dispatched(api.trigger_canvas(request).await),
                    Err(outcome) => outcome,
                }
            }
            BatchKind::CanvasSchedule { canvas_id } => {
                match decode::<CanvasTriggerScheduleRequest>(batch, Some(canvas_id), |r| &r.canvas_id) {
                    Ok(request) => scheduled(api.schedule_canvas(request).await),
                    Err(outcome) => outcome,
                }
            }
            BatchKind::TrackAttributes => match decode::<TrackRequest>(batch, None, |_| "") {
                Ok(request) => tracked(api.track(request).await),
                Err(outcome) => outcome,
            },
        }
    }
}

/// The typed request of `batch`, checked against the campaign or canvas its kind names. A batch that
/// does not read back is refused before anything is sent: [`BatchOutcome::Rejected`], not retryable.
pub(crate) fn decode<T: DeserializeOwned>(
    batch: &PlannedBatch,
    expected_target: Option<&String>,
    target: impl Fn(&T) -> &str,
) -> Result<T, BatchOutcome> {
    let refuse = |error: String| BatchOutcome::Rejected {
        error: format!("batch {}: {error}; nothing was sent", batch.id),
        retryable: false,
    };
    let request: T =
        serde_json::from_str(&batch.request).map_err(|e| refuse(format!("the request does not read back: {e}")))?;
    if let Some(expected) = expected_target {
        let actual = target(&request);
        if actual != expected {
            return Err(refuse(format!(
                "the request targets `{actual}` but the batch kind names `{expected}`"
            )));
        }
    }
    Ok(request)
}

/// The outcome of an immediate send.
fn dispatched(result: offerloop_braze::Result<DispatchResponse>) -> BatchOutcome {
    match result {
        Ok(response) => BatchOutcome::Sent {
            id: response.dispatch_id,
            notice: notice(response.notice, &response.errors),
        },
        Err(error) => failed(&error),
    }
}

/// The outcome of a schedule creation: the `schedule_id` (needed to update or delete it), else the
/// `dispatch_id`.
fn scheduled(result: offerloop_braze::Result<ScheduleResponse>) -> BatchOutcome {
    match result {
        Ok(response) => BatchOutcome::Sent {
            id: response.schedule_id.or(response.dispatch_id),
            notice: notice(None, &response.errors),
        },
        Err(error) => failed(&error),
    }
}

/// The outcome of a `/users/track` call.
fn tracked(result: offerloop_braze::Result<TrackResponse>) -> BatchOutcome {
    match result {
        Ok(response) => BatchOutcome::Sent {
            id: None,
            notice: notice(None, &response.errors),
        },
        Err(error) => failed(&error),
    }
}

/// Braze's notice and non-fatal errors (recipients or objects refused while the rest went through),
/// as one text; `None` when there are neither.
fn notice(notice: Option<String>, errors: &[Value]) -> Option<String> {
    let errors = (!errors.is_empty()).then(|| {
        let listed: Vec<String> = errors.iter().map(Value::to_string).collect();
        format!(
            "braze reported {} non-fatal error(s): {}",
            errors.len(),
            listed.join("; ")
        )
    });
    match (notice, errors) {
        (None, None) => None,
        (Some(notice), None) => Some(notice),
        (None, Some(errors)) => Some(errors),
        (Some(notice), Some(errors)) => Some(format!("{notice}; {errors}")),
    }
}

/// Classifies a failed call with the client's [`BrazeError::send_fate`].
pub(crate) fn failed(error: &BrazeError) -> BatchOutcome {
    match error.send_fate() {
        SendFate::Unknown => BatchOutcome::Unknown {
            error: error.to_string(),
        },
        SendFate::NotAccepted => BatchOutcome::Rejected {
            error: error.to_string(),
            retryable: retryable(error),
        },
    }
}

/// Whether resending a certainly-rejected request can succeed without a change: after a rate limit,
/// or when the connection could not be made. A refusal of the request itself (400, 401, 403, 404, a
/// bad configuration, an unreadable error body) repeats.
fn retryable(error: &BrazeError) -> bool {
    match error {
        BrazeError::RateLimited { .. } => true,
        BrazeError::Transport { connected, .. } => !connected,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use offerloop_braze::{Endpoint, MockBrazeApi};
    use serde_json::json;

    use super::*;
    use crate::plan::tests::{example, request};

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    /// The batches of three winback decisions: attributes, then one schedule per campaign.
    fn winback_batches() -> Vec<PlannedBatch> {
        let use_case = example("winback");
        let requests = [
            request(
                &use_case,
                "d-1",
                "wb-1",
                &[("channel", "email"), ("send_time", "morning")],
            ),
            request(
                &use_case,
                "d-2",
                "wb-2",
                &[("channel", "email"), ("send_time", "morning")],
            ),
            request(
                &use_case,
                "d-3",
                "wb-3",
                &[("channel", "push"), ("send_time", "evening")],
            ),
        ];
        plan::plan(&use_case, date("2026-01-05"), &requests).unwrap()
    }

    /// An immediate campaign send (lead-nurture's WhatsApp campaign) and canvas send (its email).
    fn nurture_batches() -> Vec<PlannedBatch> {
        let use_case = example("lead-nurture");
        let requests = [
            request(&use_case, "d-1", "l-1", &[("channel", "email")]),
            request(&use_case, "d-2", "l-2", &[("channel", "whatsapp")]),
        ];
        plan::plan(&use_case, date("2026-03-02"), &requests).unwrap()
    }

    fn find(batches: &[PlannedBatch], pick: impl Fn(&BatchKind) -> bool) -> PlannedBatch {
        batches.iter().find(|b| pick(&b.kind)).cloned().unwrap()
    }

    fn activator(mock: MockBrazeApi) -> BrazeActivator {
        BrazeActivator::new(Arc::new(mock))
    }

    #[tokio::test]
    async fn a_schedule_is_sent_once_as_planned_and_returns_its_schedule_id() {
        let batch = find(&winback_batches(), |k| matches!(k, BatchKind::CampaignSchedule { .. }));
        let expected = batch.request_json().unwrap();
        let mut mock = MockBrazeApi::new();
        mock.expect_schedule_campaign()
            .times(1)
            .withf(move |r| serde_json::to_value(r).unwrap() == expected)
            .returning(|_| {
                Ok(ScheduleResponse {
                    message: "success".into(),
                    dispatch_id: Some("disp-1".into()),
                    schedule_id: Some("sched-1".into()),
                    errors: vec![],
                })
            });
        let outcome = activator(mock).execute(&batch).await;
        assert_eq!(
            outcome,
            BatchOutcome::Sent {
                id: Some("sched-1".into()),
                notice: None
            }
        );
    }

    #[tokio::test]
    async fn immediate_sends_return_the_dispatch_id_and_braze_notices() {
        let batches = nurture_batches();
        let canvas = find(&batches, |k| matches!(k, BatchKind::CanvasSend { .. }));
        let campaign = find(&batches, |k| matches!(k, BatchKind::CampaignSend { .. }));
        let mut mock = MockBrazeApi::new();
        mock.expect_trigger_canvas().times(1).returning(|r| {
            assert_eq!(r.canvas_id, "7a5e0c39-nurture-email-canvas");
            assert!(r.recipients[0].context.is_some());
            Ok(DispatchResponse {
                message: "success".into(),
                dispatch_id: Some("disp-c".into()),
                notice: Some(
                    "The Canvas is paused. Resume the Canvas to ensure trigger requests will take effect.".into(),
                ),
                ..DispatchResponse::default()
            })
        });
        mock.expect_trigger_campaign().times(1).returning(|_| {
            Ok(DispatchResponse {
                message: "success".into(),
                dispatch_id: Some("disp-w".into()),
                errors: vec![json!({"type": "invalid recipient", "external_user_id": "l-9"})],
                ..DispatchResponse::default()
            })
        });
        let activator = activator(mock);
        let BatchOutcome::Sent { id, notice } = activator.execute(&canvas).await else {
            panic!("canvas not sent")
        };
        assert_eq!(id.as_deref(), Some("disp-c"));
        assert!(notice.unwrap().contains("paused"));
        let BatchOutcome::Sent { id, notice } = activator.execute(&campaign).await else {
            panic!("campaign not sent")
        };
        assert_eq!(id.as_deref(), Some("disp-w"));
        assert!(notice.unwrap().contains("1 non-fatal error"));
    }

    #[tokio::test]
    async fn attributes_go_through_users_track() {
        let batch = find(&winback_batches(), |k| *k == BatchKind::TrackAttributes);
        let mut mock = MockBrazeApi::new();
        mock.expect_track().times(1).returning(|r| {
            assert_eq!(r.attributes.len(), 3);
            Ok(TrackResponse {
                message: "success".into(),
                attributes_processed: Some(3),
                ..TrackResponse::default()
            })
        });
        assert_eq!(
            activator(mock).execute(&batch).await,
            BatchOutcome::Sent { id: None, notice: None }
        );
    }

    /// The outcome of a schedule batch whose call fails with `error`.
    async fn outcome_of(error: BrazeError) -> BatchOutcome {
        let batch = find(&winback_batches(), |k| matches!(k, BatchKind::CampaignSchedule { .. }));
        let mut mock = MockBrazeApi::new();
        let error = std::sync::Mutex::new(Some(error));
        mock.expect_schedule_campaign()
            .times(1)
            .returning(move |_| Err(error.lock().unwrap().take().unwrap()));
        activator(mock).execute(&batch).await
    }

    #[tokio::test]
    async fn refusals_are_rejected_and_not_retryable_with_endpoint_and_permission() {
        let endpoint = Endpoint::CampaignsTriggerScheduleCreate;
        let outcome = outcome_of(BrazeError::MissingPermission {
            endpoint,
            permission: "campaigns.trigger.schedule.create",
            message: "Access Denied".into(),
        })
        .await;
        let BatchOutcome::Rejected { error, retryable } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(!retryable);
        assert!(error.contains("campaigns.trigger.schedule.create"), "{error}");
        assert!(error.contains(&endpoint.to_string()), "{error}");
        for error in [
            BrazeError::BadRequest {
                endpoint,
                status: 400,
                message: "Invalid Campaign ID".into(),
                errors: vec![],
            },
            BrazeError::Unauthorized {
                endpoint,
                message: "Invalid API key".into(),
            },
            BrazeError::NotFound {
                endpoint,
                message: String::new(),
            },
        ] {
            let outcome = outcome_of(error).await;
            assert!(
                matches!(outcome, BatchOutcome::Rejected { retryable: false, .. }),
                "{outcome:?}"
            );
        }
    }

    #[tokio::test]
    async fn rate_limits_and_refused_connections_are_rejected_but_retryable() {
        let endpoint = Endpoint::CampaignsTriggerScheduleCreate;
        for error in [
            BrazeError::RateLimited {
                endpoint,
                reset_at: Some(1_767_600_000),
                retry_after: Some(Duration::from_secs(3)),
            },
            BrazeError::Transport {
                endpoint,
                message: "connection refused".into(),
                connected: false,
            },
        ] {
            let outcome = outcome_of(error).await;
            assert!(
                matches!(outcome, BatchOutcome::Rejected { retryable: true, .. }),
                "{outcome:?}"
            );
        }
    }

    #[tokio::test]
    async fn maybe_applied_failures_are_unknown() {
        let endpoint = Endpoint::CampaignsTriggerScheduleCreate;
        for error in [
            BrazeError::OutcomeUnknown {
                endpoint,
                reason: "timed out after the body was sent".into(),
            },
            BrazeError::Server {
                endpoint,
                status: 503,
                attempts: 1,
            },
            BrazeError::Transport {
                endpoint,
                message: "connection reset".into(),
                connected: true,
            },
            BrazeError::Decode {
                endpoint,
                path: ".".into(),
                message: "expected a JSON object".into(),
                snippet: "<html>".into(),
                status: 201,
            },
        ] {
            let outcome = outcome_of(error).await;
            assert!(matches!(outcome, BatchOutcome::Unknown { .. }), "{outcome:?}");
        }
    }

    #[tokio::test]
    async fn a_batch_that_does_not_read_back_is_refused_without_a_call() {
        let mut batch = find(&winback_batches(), |k| matches!(k, BatchKind::CampaignSchedule { .. }));
        let mut wrong_target = batch.clone();
        wrong_target.kind = BatchKind::CampaignSchedule {
            campaign_id: "another".into(),
        };
        batch.request = json!({"recipients": "nobody"}).to_string();
        // No expectation: any call would fail the test.
        let activator = activator(MockBrazeApi::new());
        for batch in [batch, wrong_target] {
            let outcome = activator.execute(&batch).await;
            assert!(
                matches!(outcome, BatchOutcome::Rejected { retryable: false, .. }),
                "{outcome:?}"
            );
        }
    }
}
