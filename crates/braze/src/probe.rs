//! Permission probes: does the API key hold the permission an endpoint needs, without side effects?
//!
//! Braze checks the key's permissions before it validates a request, so each probe sends the cheapest
//! request that cannot change anything: a first page for list endpoints, and for everything else a
//! request naming an object that cannot exist (`offerloop-permission-probe`) with no recipients, which
//! Braze refuses with a 4xx *after* the permission check. A `403` therefore means the permission is
//! missing; a 2xx, `400` or `404` means it is granted. Probes never broadcast, never name a real user,
//! never start a real export, and are never retried.

use serde::Serialize;
use serde_json::{Value, json};

use crate::client::BrazeClient;
use crate::endpoint::{Endpoint, Method};
use crate::error::BrazeError;

/// The id probes use for objects that must not exist.
pub const PROBE_ID: &str = "offerloop-permission-probe";

/// What a probe found.
#[derive(Debug)]
pub enum PermissionStatus {
    /// The key holds the permission.
    Granted,
    /// The key lacks it (`403`).
    Missing,
    /// The probe could not tell (wrong key or instance, network, server error).
    Failed(BrazeError),
}

/// The body (POST) or query (GET) of `endpoint`'s probe.
pub fn probe_payload(endpoint: Endpoint) -> Value {
    match endpoint {
        Endpoint::UsersExportIds => json!({"external_ids": [PROBE_ID], "fields_to_export": ["external_id"]}),
        Endpoint::UsersExportSegment => json!({"segment_id": PROBE_ID, "fields_to_export": ["external_id"]}),
        // An empty track request changes nothing.
        Endpoint::UsersTrack => json!({}),
        Endpoint::MessagesSend | Endpoint::MessagesScheduleCreate => {
            json!({"campaign_id": PROBE_ID, "external_user_ids": [], "broadcast": false})
        }
        Endpoint::CampaignsTriggerSend | Endpoint::CampaignsTriggerScheduleCreate => {
            json!({"campaign_id": PROBE_ID, "recipients": [], "broadcast": false})
        }
        Endpoint::CanvasTriggerSend | Endpoint::CanvasTriggerScheduleCreate => {
            json!({"canvas_id": PROBE_ID, "recipients": [], "broadcast": false})
        }
        Endpoint::CampaignsList | Endpoint::CanvasList | Endpoint::SegmentsList => json!({"page": 0}),
        Endpoint::CampaignsDetails => json!({"campaign_id": PROBE_ID}),
        Endpoint::CampaignsDataSeries | Endpoint::SendsDataSeries => json!({"campaign_id": PROBE_ID, "length": 1}),
        Endpoint::CanvasDetails => json!({"canvas_id": PROBE_ID}),
        Endpoint::CanvasDataSeries => json!({"canvas_id": PROBE_ID, "length": 1}),
        Endpoint::SegmentsDetails => json!({"segment_id": PROBE_ID}),
        Endpoint::SegmentsDataSeries => json!({"segment_id": PROBE_ID, "length": 1}),
        // Creating a send id counts toward a daily quota only when the campaign exists.
        Endpoint::SendsIdCreate => json!({"campaign_id": PROBE_ID}),
        // A template without a name or body fails validation and creates nothing.
        Endpoint::TemplatesEmailCreate => json!({"subject": PROBE_ID}),
        Endpoint::TemplatesEmailUpdate | Endpoint::TemplatesEmailInfo => json!({"email_template_id": PROBE_ID}),
        Endpoint::TemplatesEmailList => json!({"limit": 1}),
    }
}

/// Probes whether the client's key holds `endpoint`'s permission.
pub async fn probe(client: &BrazeClient, endpoint: Endpoint) -> PermissionStatus {
    let payload = probe_payload(endpoint);
    let result = match endpoint.method() {
        Method::Get => {
            let query: Vec<(String, String)> = payload
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                        .collect()
                })
                .unwrap_or_default();
            client.execute_raw(endpoint, &Query(query)).await
        }
        Method::Post => client.execute_raw(endpoint, &payload).await,
    };
    match result {
        Ok(_) => PermissionStatus::Granted,
        Err(BrazeError::MissingPermission { .. }) => PermissionStatus::Missing,
        Err(BrazeError::BadRequest { .. } | BrazeError::NotFound { .. }) => PermissionStatus::Granted,
        Err(other) => PermissionStatus::Failed(other),
    }
}

/// Query pairs, serialised as a sequence for `reqwest::RequestBuilder::query`.
#[derive(Serialize)]
#[serde(transparent)]
struct Query(Vec<(String, String)>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_never_broadcast_or_name_a_real_recipient() {
        for &endpoint in Endpoint::ALL {
            let payload = probe_payload(endpoint);
            assert!(payload.is_object(), "{endpoint}");
            assert_ne!(payload.get("broadcast"), Some(&Value::Bool(true)), "{endpoint}");
            for key in ["recipients", "external_user_ids"] {
                if let Some(list) = payload.get(key) {
                    assert_eq!(list.as_array().map(Vec::len), Some(0), "{endpoint}");
                }
            }
            if endpoint.method() == Method::Get {
                assert!(
                    payload
                        .as_object()
                        .is_some_and(|o| o.values().all(|v| !v.is_object() && !v.is_array()))
                );
            }
        }
    }
}
