//! Every endpoint through the [`BrazeApi`] trait against a wiremock server: the method, the path, the
//! `Authorization: Bearer` header, the content type and the exact request body (POST) or query string
//! (GET) the server receives, and the typed parsing of a realistic response fixture.
//!
//! The expected bodies and queries are written out literally here, independently of the serialiser, so
//! a change in what goes on the wire fails a test.

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use offerloop_braze::api::catalog::{
    CampaignDataSeriesRequest, CampaignDetailsRequest, CampaignListRequest, CanvasDataSeriesRequest,
    CanvasDetailsRequest, CanvasListRequest, SegmentDataSeriesRequest, SegmentDetailsRequest, SegmentListRequest,
    SendDataSeriesRequest, SendIdCreateRequest, SortDirection,
};
use offerloop_braze::api::messaging::{
    CampaignTriggerScheduleRequest, CampaignTriggerSendRequest, CanvasTriggerScheduleRequest, CanvasTriggerSendRequest,
    MessagesScheduleRequest, MessagesSendRequest, Recipient, Schedule,
};
use offerloop_braze::api::templates::{
    EmailTemplateCreateRequest, EmailTemplateInfoRequest, EmailTemplateListRequest, EmailTemplateUpdateRequest,
};
use offerloop_braze::api::users::{
    AttributesObject, EventObject, ExportIdsRequest, ExportSegmentRequest, TrackRequest, UserAlias, UserIdentifier,
};
use offerloop_braze::export::{ExportDestination, ExportPoll, export_segment};
use offerloop_braze::paginate::all_pages;
use offerloop_braze::{BrazeApi, BrazeError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

use crate::support::{KEY, client};

/// What the server must receive besides method, path and auth.
enum Shape {
    /// A JSON body exactly equal to this value, sent as `application/json`.
    Body(Value),
    /// No body, and exactly these query pairs, in order.
    Query(&'static [(&'static str, &'static str)]),
}

/// Matches a GET with exactly the given query pairs, in order, and no body or content type.
struct ExactQueryNoBody(&'static [(&'static str, &'static str)]);

impl Match for ExactQueryNoBody {
    fn matches(&self, request: &Request) -> bool {
        let got: Vec<(String, String)> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let want: Vec<(String, String)> = self.0.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        got == want && request.body.is_empty() && !request.headers.contains_key("content-type")
    }
}

fn fixture(endpoint_path: &str) -> String {
    let name = format!("{}.json", endpoint_path.trim_start_matches('/').replace('/', "_"));
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/responses")
        .join(name);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Mounts a mock that only answers (with the endpoint's fixture) a request of exactly this shape, calls
/// `call` with a client behind `dyn BrazeApi`, and checks the typed response equals the fixture parsed.
async fn exchange<R, F, Fut>(http_method: &str, endpoint_path: &str, shape: Shape, call: F) -> R
where
    R: DeserializeOwned + PartialEq + std::fmt::Debug,
    F: FnOnce(Arc<dyn BrazeApi>) -> Fut,
    Fut: Future<Output = Result<R, BrazeError>>,
{
    let server = MockServer::start().await;
    let text = fixture(endpoint_path);
    let mock = Mock::given(method(http_method))
        .and(path(endpoint_path))
        .and(header("authorization", format!("Bearer {KEY}").as_str()));
    let mock = match shape {
        Shape::Body(body) => mock
            .and(header("content-type", "application/json"))
            .and(body_json(body)),
        Shape::Query(pairs) => mock.and(ExactQueryNoBody(pairs)),
    };
    mock.respond_with(ResponseTemplate::new(201).set_body_raw(text.clone(), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let api: Arc<dyn BrazeApi> = Arc::new(client(&server));
    let got = call(api)
        .await
        .unwrap_or_else(|e| panic!("{http_method} {endpoint_path}: {e}"));
    let expected: R = serde_json::from_str(&text).unwrap();
    assert_eq!(got, expected);
    got
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

// ---- users ----

#[tokio::test]
async fn users_export_ids() {
    let body =
        json!({"external_ids": ["c-1001", "c-missing"], "fields_to_export": ["external_id", "custom_attributes"]});
    let got = exchange("POST", "/users/export/ids", Shape::Body(body), |api| async move {
        api.export_ids(
            ExportIdsRequest::by_external_ids(["c-1001", "c-missing"])
                .fields_to_export(["external_id", "custom_attributes"]),
        )
        .await
    })
    .await;
    assert_eq!(got.users[0].external_id.as_deref(), Some("c-1001"));
    assert_eq!(got.invalid_user_ids, ["c-missing"]);
}

#[tokio::test]
async fn users_export_segment() {
    let body = json!({"segment_id": "seg-1", "fields_to_export": ["external_id", "custom_attributes"]});
    let got = exchange("POST", "/users/export/segment", Shape::Body(body), |api| async move {
        api.export_segment(ExportSegmentRequest::new("seg-1", ["external_id", "custom_attributes"]))
            .await
    })
    .await;
    assert_eq!(got.object_prefix, "bb8e2a91-c4aa-478b-b3f2-a4ee91731ad1-1464728599");
}

#[tokio::test]
async fn users_track_keeps_non_fatal_errors() {
    let body = json!({
        "attributes": [{"external_id": "c-1", "offer_arm": "discount_10"}],
        "events": [{"user_alias": {"alias_name": "a-9", "alias_label": "crm_id"}, "name": "offer_decided", "time": "2024-05-31T10:00:00Z"}],
    });
    let got = exchange("POST", "/users/track", Shape::Body(body), |api| async move {
        api.track(
            TrackRequest::new()
                .attributes([
                    AttributesObject::new(UserIdentifier::external_id("c-1")).attribute("offer_arm", "discount_10")
                ])
                .events([EventObject::new(
                    UserAlias::new("a-9", "crm_id"),
                    "offer_decided",
                    "2024-05-31T10:00:00Z",
                )]),
        )
        .await
    })
    .await;
    assert_eq!(got.errors.len(), 1, "Braze's non-fatal errors reach the caller");
    assert_eq!(got.errors[0]["index"], 12);
}

// ---- messaging ----

#[tokio::test]
async fn messages_send() {
    let body = json!({"external_user_ids": ["c-1", "c-2"], "campaign_id": "camp-1", "messages": {"email": {"app_id": "app-1", "subject": "Hi", "body": "<p>Hi</p>"}}});
    let got = exchange("POST", "/messages/send", Shape::Body(body), |api| async move {
        api.send_messages(
            MessagesSendRequest::new()
                .external_user_ids(["c-1", "c-2"])
                .campaign_id("camp-1")
                .messages(json!({"email": {"app_id": "app-1", "subject": "Hi", "body": "<p>Hi</p>"}})),
        )
        .await
    })
    .await;
    assert_eq!(got.dispatch_id.as_deref(), Some("6e2b8a1f0c3d4e5f8a9b0c1d2e3f4a5b"));
}

#[tokio::test]
async fn messages_schedule_create() {
    let body = json!({"segment_id": "seg-1", "broadcast": true, "schedule": {"time": "2024-06-01T09:00:00", "in_local_time": true}});
    let got = exchange(
        "POST",
        "/messages/schedule/create",
        Shape::Body(body),
        |api| async move {
            api.schedule_messages(
                MessagesScheduleRequest::new(Schedule::new("2024-06-01T09:00:00").in_local_time(true))
                    .segment_id("seg-1")
                    .broadcast(true),
            )
            .await
        },
    )
    .await;
    assert_eq!(got.schedule_id.as_deref(), Some("a7c3e1f9-2b4d-4c6e-8f0a-1b3d5f7a9c2e"));
}

#[tokio::test]
async fn campaigns_trigger_send_with_per_recipient_properties() {
    let body = json!({
        "campaign_id": "camp-1",
        "recipients": [
            {"external_user_id": "c-1", "trigger_properties": {"offer": "discount_10", "subject_line": "s2"}},
            {"external_user_id": "c-2", "trigger_properties": {"offer": "free_shipping", "subject_line": "s1"}},
        ],
    });
    let got = exchange("POST", "/campaigns/trigger/send", Shape::Body(body), |api| async move {
        api.trigger_campaign(
            CampaignTriggerSendRequest::new("camp-1").recipients([
                Recipient::external_user_id("c-1")
                    .trigger_properties(map(json!({"offer": "discount_10", "subject_line": "s2"}))),
                Recipient::external_user_id("c-2")
                    .trigger_properties(map(json!({"offer": "free_shipping", "subject_line": "s1"}))),
            ]),
        )
        .await
    })
    .await;
    assert_eq!(got.errors.len(), 1, "the fixture's non-fatal error is kept");
}

#[tokio::test]
async fn campaigns_trigger_schedule_create() {
    let body = json!({"campaign_id": "camp-1", "recipients": [{"external_user_id": "c-1"}], "schedule": {"time": "2024-06-01T09:00:00Z"}});
    let got = exchange(
        "POST",
        "/campaigns/trigger/schedule/create",
        Shape::Body(body),
        |api| async move {
            api.schedule_campaign(
                CampaignTriggerScheduleRequest::new("camp-1", Schedule::new("2024-06-01T09:00:00Z"))
                    .recipients([Recipient::external_user_id("c-1")]),
            )
            .await
        },
    )
    .await;
    assert!(got.schedule_id.is_some());
}

#[tokio::test]
async fn canvas_trigger_send_with_context() {
    let body = json!({"canvas_id": "canvas-1", "recipients": [{"external_user_id": "c-1", "context": {"offer": "discount_10"}}]});
    let got = exchange("POST", "/canvas/trigger/send", Shape::Body(body), |api| async move {
        api.trigger_canvas(
            CanvasTriggerSendRequest::new("canvas-1")
                .recipients([Recipient::external_user_id("c-1").context(map(json!({"offer": "discount_10"})))]),
        )
        .await
    })
    .await;
    assert!(got.notice.as_deref().is_some_and(|n| n.contains("paused")));
}

#[tokio::test]
async fn canvas_trigger_send_with_legacy_entry_properties() {
    let body = json!({"canvas_id": "canvas-1", "canvas_entry_properties": {"offer": "discount_10"}, "broadcast": true});
    exchange("POST", "/canvas/trigger/send", Shape::Body(body), |api| async move {
        api.trigger_canvas(
            CanvasTriggerSendRequest::new("canvas-1")
                .canvas_entry_properties(map(json!({"offer": "discount_10"})))
                .broadcast(true),
        )
        .await
    })
    .await;
}

#[tokio::test]
async fn canvas_trigger_schedule_create() {
    let body = json!({"canvas_id": "canvas-1", "recipients": [{"braze_id": "b-1"}], "schedule": {"time": "2024-06-01T09:00:00Z", "at_optimal_time": true}});
    let got = exchange(
        "POST",
        "/canvas/trigger/schedule/create",
        Shape::Body(body),
        |api| async move {
            api.schedule_canvas(
                CanvasTriggerScheduleRequest::new(
                    "canvas-1",
                    Schedule::new("2024-06-01T09:00:00Z").at_optimal_time(true),
                )
                .recipients([Recipient::braze_id("b-1")]),
            )
            .await
        },
    )
    .await;
    assert!(got.dispatch_id.is_some());
}

// ---- catalogue and analytics ----

#[tokio::test]
async fn campaigns_list() {
    let query = &[("page", "2"), ("include_archived", "true"), ("sort_direction", "desc")];
    let got = exchange("GET", "/campaigns/list", Shape::Query(query), |api| async move {
        api.list_campaigns(
            CampaignListRequest::new()
                .page(2)
                .include_archived(true)
                .sort_direction(SortDirection::Desc),
        )
        .await
    })
    .await;
    assert_eq!(got.campaigns[0].name, "Spring cross-sell");
}

#[tokio::test]
async fn campaigns_details() {
    let got = exchange(
        "GET",
        "/campaigns/details",
        Shape::Query(&[("campaign_id", "camp-1")]),
        |api| async move { api.campaign_details(CampaignDetailsRequest::new("camp-1")).await },
    )
    .await;
    assert!(got.enabled);
}

#[tokio::test]
async fn campaigns_data_series_escapes_the_offset() {
    let query = &[
        ("campaign_id", "camp-1"),
        ("length", "7"),
        ("ending_at", "2024-05-31T23:59:59+02:00"),
    ];
    let got = exchange("GET", "/campaigns/data_series", Shape::Query(query), |api| async move {
        api.campaign_data_series(CampaignDataSeriesRequest::new("camp-1", 7).ending_at("2024-05-31T23:59:59+02:00"))
            .await
    })
    .await;
    assert!(!got.data.is_empty());
}

#[tokio::test]
async fn canvas_list() {
    let got = exchange(
        "GET",
        "/canvas/list",
        Shape::Query(&[("page", "0")]),
        |api| async move { api.list_canvases(CanvasListRequest::new()).await },
    )
    .await;
    assert_eq!(got.canvases.len(), 2);
}

#[tokio::test]
async fn canvas_details() {
    let got = exchange(
        "GET",
        "/canvas/details",
        Shape::Query(&[("canvas_id", "canvas-1")]),
        |api| async move { api.canvas_details(CanvasDetailsRequest::new("canvas-1")).await },
    )
    .await;
    assert_eq!(got.variants.len(), 2);
}

#[tokio::test]
async fn canvas_data_series() {
    let query = &[
        ("canvas_id", "canvas-1"),
        ("length", "14"),
        ("include_variant_breakdown", "true"),
    ];
    exchange("GET", "/canvas/data_series", Shape::Query(query), |api| async move {
        api.canvas_data_series(CanvasDataSeriesRequest::new("canvas-1", 14).include_variant_breakdown(true))
            .await
    })
    .await;
}

#[tokio::test]
async fn segments_list() {
    let query = &[("page", "1"), ("sort_direction", "desc")];
    let got = exchange("GET", "/segments/list", Shape::Query(query), |api| async move {
        api.list_segments(SegmentListRequest::new().page(1).sort_direction(SortDirection::Desc))
            .await
    })
    .await;
    assert_eq!(got.segments.len(), 2);
}

#[tokio::test]
async fn segments_details() {
    let got = exchange(
        "GET",
        "/segments/details",
        Shape::Query(&[("segment_id", "seg-1")]),
        |api| async move { api.segment_details(SegmentDetailsRequest::new("seg-1")).await },
    )
    .await;
    assert_eq!(got.name.as_deref(), Some("Lapsed 90 days"));
}

#[tokio::test]
async fn segments_data_series() {
    let query = &[("segment_id", "seg-1"), ("length", "30")];
    let got = exchange("GET", "/segments/data_series", Shape::Query(query), |api| async move {
        api.segment_data_series(SegmentDataSeriesRequest::new("seg-1", 30))
            .await
    })
    .await;
    assert_eq!(got.data.len(), 2);
}

#[tokio::test]
async fn sends_data_series() {
    let query = &[("campaign_id", "camp-1"), ("send_id", "send-1"), ("length", "5")];
    let got = exchange("GET", "/sends/data_series", Shape::Query(query), |api| async move {
        api.send_data_series(SendDataSeriesRequest::new("camp-1", "send-1", 5))
            .await
    })
    .await;
    assert!(!got.data.is_empty());
}

#[tokio::test]
async fn sends_id_create() {
    let body = json!({"campaign_id": "camp-1", "send_id": "spring-offers-2024-05"});
    let got = exchange("POST", "/sends/id/create", Shape::Body(body), |api| async move {
        api.create_send_id(SendIdCreateRequest::new("camp-1").send_id("spring-offers-2024-05"))
            .await
    })
    .await;
    assert_eq!(got.send_id, "spring-offers-2024-05");
}

// ---- templates ----

#[tokio::test]
async fn templates_email_create() {
    let body = json!({"template_name": "offer-a", "subject": "Your offer", "body": "<p>{{api_trigger_properties.${offer}}}</p>", "tags": ["offerloop"]});
    let got = exchange("POST", "/templates/email/create", Shape::Body(body), |api| async move {
        api.create_email_template(
            EmailTemplateCreateRequest::new("offer-a", "Your offer", "<p>{{api_trigger_properties.${offer}}}</p>")
                .tags(["offerloop"]),
        )
        .await
    })
    .await;
    assert_eq!(got.email_template_id, "232b6d29-7e41-4106-a0ab-1c4fe915d701");
}

#[tokio::test]
async fn templates_email_update() {
    let body = json!({"email_template_id": "tpl-1", "subject": "New subject"});
    exchange("POST", "/templates/email/update", Shape::Body(body), |api| async move {
        api.update_email_template(EmailTemplateUpdateRequest::new("tpl-1").subject("New subject"))
            .await
    })
    .await;
}

#[tokio::test]
async fn templates_email_info() {
    let query = &[("email_template_id", "tpl-1")];
    let got = exchange("GET", "/templates/email/info", Shape::Query(query), |api| async move {
        api.email_template_info(EmailTemplateInfoRequest::new("tpl-1")).await
    })
    .await;
    assert_eq!(got.template_name, "offer-a");
}

#[tokio::test]
async fn templates_email_list() {
    let query = &[("limit", "50"), ("offset", "100")];
    let got = exchange("GET", "/templates/email/list", Shape::Query(query), |api| async move {
        api.list_email_templates(EmailTemplateListRequest::new().limit(50).offset(100))
            .await
    })
    .await;
    assert_eq!(got.count, 2);
}

// ---- pagination over HTTP ----

fn campaign_page(start: usize, len: usize) -> Value {
    let campaigns: Vec<Value> = (start..start + len)
        .map(|i| json!({"id": format!("camp-{i}"), "name": format!("Campaign {i}"), "is_api_campaign": true, "tags": []}))
        .collect();
    json!({"message": "success", "campaigns": campaigns})
}

#[tokio::test]
async fn list_all_streams_every_page_and_stops_at_the_first_short_one() {
    let server = MockServer::start().await;
    for (page, len) in [(0, 100), (1, 100), (2, 37)] {
        Mock::given(method("GET"))
            .and(path("/campaigns/list"))
            .and(wiremock::matchers::query_param("page", page.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(campaign_page(page * 100, len)))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = client(&server);
    let ids: Vec<String> = client
        .list_all(CampaignListRequest::new())
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids.len(), 237);
    assert_eq!(ids.first().map(String::as_str), Some("camp-0"));
    assert_eq!(ids.last().map(String::as_str), Some("camp-236"));
    // `expect(1)` on each page, verified when the server drops: no page is fetched twice, none after 2.
}

#[tokio::test]
async fn all_pages_walks_templates_by_limit_and_offset_through_the_trait() {
    let server = MockServer::start().await;
    for (offset, len) in [(0usize, 2usize), (2, 1)] {
        let templates: Vec<Value> = (offset..offset + len)
            .map(|i| json!({"email_template_id": format!("tpl-{i}"), "template_name": format!("t{i}")}))
            .collect();
        Mock::given(method("GET"))
            .and(path("/templates/email/list"))
            .and(wiremock::matchers::query_param("limit", "2"))
            .and(wiremock::matchers::query_param("offset", offset.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"count": 3, "templates": templates})))
            .expect(1)
            .mount(&server)
            .await;
    }
    let api: Arc<dyn BrazeApi> = Arc::new(client(&server));
    let names: Vec<String> = all_pages(EmailTemplateListRequest::new().limit(2), |r| {
        let api = Arc::clone(&api);
        async move { api.list_email_templates(r).await }
    })
    .map_ok(|t| t.template_name)
    .try_collect()
    .await
    .unwrap();
    assert_eq!(names, ["t0", "t1", "t2"]);
}

// ---- segment export, end to end ----

fn export_zip() -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut bytes);
    let options = zip::write::SimpleFileOptions::default();
    for (name, lines) in [
        (
            "part-0.json",
            "{\"external_id\":\"c-1\",\"email\":\"pii@example.invalid\",\"custom_attributes\":{\"tier\":\"gold\"}}\n",
        ),
        (
            "part-1.json",
            "{\"external_id\":\"c-2\",\"custom_attributes\":{\"tier\":\"silver\"}}\n{\"external_id\":\"c-3\"}\n",
        ),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(lines.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    bytes.into_inner()
}

#[tokio::test]
async fn export_segment_downloads_when_ready_and_streams_only_requested_fields() {
    let server = MockServer::start().await;
    let url = format!("{}/exports/seg-1.zip?X-Amz-Signature=abc", server.uri());
    Mock::given(method("POST"))
        .and(path("/users/export/segment"))
        .and(body_json(
            json!({"segment_id": "seg-1", "fields_to_export": ["external_id", "custom_attributes"]}),
        ))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"message": "success", "object_prefix": "p-1", "url": url})),
        )
        .expect(1)
        .mount(&server)
        .await;
    // Not there yet twice, then the archive.
    Mock::given(method("GET"))
        .and(path("/exports/seg-1.zip"))
        .respond_with(ResponseTemplate::new(404))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/exports/seg-1.zip"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(export_zip(), "application/zip"))
        .expect(1)
        .mount(&server)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let api = client(&server);
    let poll = ExportPoll::default()
        .with_initial_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(20))
        .with_timeout(Duration::from_secs(10));
    let reader = export_segment(
        &api,
        ExportSegmentRequest::new("seg-1", ["external_id", "custom_attributes"]),
        &ExportDestination::BrazeHosted {
            download_dir: dir.path().to_owned(),
        },
        &poll,
    )
    .await
    .unwrap();
    let users: Vec<_> = reader.into_stream().try_collect().await.unwrap();
    let ids: Vec<_> = users
        .iter()
        .map(|u| u.external_id.clone().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["c-1", "c-2", "c-3"]);
    assert_eq!(users[0].custom_attributes["tier"], json!("gold"));
    assert!(
        !format!("{users:?}").contains("pii@example.invalid"),
        "PII is never kept"
    );
}

#[tokio::test]
async fn export_segment_to_a_bucket_without_a_synced_directory_is_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/users/export/segment"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"message": "success", "object_prefix": "p-9"})))
        .mount(&server)
        .await;
    let api = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let err = export_segment(
        &api,
        ExportSegmentRequest::new("seg-1", ["external_id"]),
        &ExportDestination::BrazeHosted {
            download_dir: dir.path().to_owned(),
        },
        &ExportPoll::default(),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("p-9") && message.contains("bucket"), "{message}");
}
