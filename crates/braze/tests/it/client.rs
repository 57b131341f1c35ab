//! The transport's behaviour, endpoint-independent: auth, retries, rate limits, error mapping, secrecy.

use std::time::Duration;

use offerloop_braze::retry::RetryPolicy;
use offerloop_braze::{BrazeError, Endpoint, RateLimitPool, Request, SendFate};
use serde::Serialize;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{KEY, capture_logs, client, client_at, client_with, fast_retries, http_response, scripted_server};

/// A read (GET /campaigns/list) with a query parameter.
#[derive(Serialize)]
struct Read {
    page: u32,
}
impl Request for Read {
    const ENDPOINT: Endpoint = Endpoint::CampaignsList;
    type Response = serde_json::Value;
}

/// A message send (POST /campaigns/trigger/send).
#[derive(Serialize)]
struct Send {
    campaign_id: &'static str,
}
impl Request for Send {
    const ENDPOINT: Endpoint = Endpoint::CampaignsTriggerSend;
    type Response = Dispatch;
}

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct Dispatch {
    dispatch_id: String,
}

#[tokio::test]
async fn requests_carry_the_bearer_key_and_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/campaigns/trigger/send"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(serde_json::json!({"campaign_id": "c1"})))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"message": "success", "dispatch_id": "d1"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/campaigns/list"))
        .and(query_param("page", "3"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"message": "success", "campaigns": []})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let sent = c.execute(&Send { campaign_id: "c1" }).await.unwrap();
    assert_eq!(sent.dispatch_id, "d1");
    let page = c.execute(&Read { page: 3 }).await.unwrap();
    assert_eq!(page["message"], "success");
}

#[tokio::test]
async fn server_errors_on_reads_are_retried_up_to_the_limit() {
    let server = MockServer::start().await;
    Mock::given(path("/campaigns/list"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let err = client(&server).execute(&Read { page: 0 }).await.unwrap_err();
    assert!(
        matches!(
            err,
            BrazeError::Server {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_read_recovers_after_a_transient_error() {
    let server = MockServer::start().await;
    Mock::given(path("/campaigns/list"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/campaigns/list"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"message": "success"})))
        .mount(&server)
        .await;
    assert!(client(&server).execute(&Read { page: 0 }).await.is_ok());
}

#[tokio::test]
async fn server_errors_on_sends_are_never_retried_and_report_unknown_outcome() {
    let server = MockServer::start().await;
    Mock::given(path("/campaigns/trigger/send"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).execute(&Send { campaign_id: "c1" }).await.unwrap_err();
    assert!(
        matches!(
            err,
            BrazeError::OutcomeUnknown {
                endpoint: Endpoint::CampaignsTriggerSend,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.send_fate(), SendFate::Unknown);
}

/// On the paused clock (the server runs on the test's runtime): the answer would come after 2 s, the
/// client gives up at its 500 ms request timeout, and does not send again.
#[tokio::test(start_paused = true)]
async fn a_send_that_times_out_is_not_retried_and_its_fate_is_unknown() {
    let (url, served) = scripted_server(vec![
        http_response("201 Created", &[], r#"{"message": "success", "dispatch_id": "d1"}"#)
            .after(Duration::from_secs(2)),
        http_response("201 Created", &[], r#"{"message": "success", "dispatch_id": "d2"}"#),
    ])
    .await;
    let started = tokio::time::Instant::now();
    let err = client_at(&url, fast_retries())
        .execute(&Send { campaign_id: "c1" })
        .await
        .unwrap_err();
    assert!(matches!(err, BrazeError::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!(err.send_fate(), SendFate::Unknown);
    assert_eq!(started.elapsed(), Duration::from_millis(500), "the request timeout");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1, "never sent twice");
}

#[tokio::test]
async fn connection_refused_is_a_certain_non_acceptance() {
    // wiremock pools its servers, so a dropped one may still answer: use a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = offerloop_braze::BrazeConfig::builder(
        format!("http://127.0.0.1:{port}"),
        offerloop_braze::ApiKey::new(KEY).unwrap(),
    )
    .build()
    .unwrap();
    let c = offerloop_braze::BrazeClient::new(config).unwrap();
    let err = c.execute(&Send { campaign_id: "c1" }).await.unwrap_err();
    assert!(matches!(err, BrazeError::Transport { connected: false, .. }), "{err:?}");
    assert_eq!(err.send_fate(), SendFate::NotAccepted);
}

/// On the paused clock (the server runs on the test's runtime): the client waits exactly the 429's
/// `Retry-After`, then sends again and succeeds.
#[tokio::test(start_paused = true)]
async fn rate_limited_sends_wait_for_the_reset_and_succeed() {
    let (url, served) = scripted_server(vec![
        http_response(
            "429 Too Many Requests",
            &[("retry-after", "1")],
            r#"{"message": "Rate Limited"}"#,
        ),
        http_response(
            "201 Created",
            &[("x-ratelimit-remaining", "9"), ("x-ratelimit-reset", "4102444800")],
            r#"{"message": "success", "dispatch_id": "d2"}"#,
        ),
    ])
    .await;
    let c = client_at(&url, fast_retries());
    let started = tokio::time::Instant::now();
    let sent = c.execute(&Send { campaign_id: "c1" }).await.unwrap();
    assert_eq!(sent.dispatch_id, "d2");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "the client must wait Retry-After, and only that"
    );
    assert_eq!(
        served.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one 429, one success"
    );
    let window = c.rate_limit_window(RateLimitPool::Default);
    assert_eq!((window.remaining, window.reset_at), (Some(9), Some(4_102_444_800)));
}

#[tokio::test]
async fn rate_limits_beyond_the_wait_budget_are_returned() {
    let server = MockServer::start().await;
    Mock::given(path("/campaigns/list"))
        .respond_with(ResponseTemplate::new(429).insert_header("X-RateLimit-Reset", "4102444800"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).execute(&Read { page: 0 }).await.unwrap_err();
    assert!(
        matches!(
            err,
            BrazeError::RateLimited {
                reset_at: Some(4_102_444_800),
                ..
            }
        ),
        "{err:?}"
    );
}

/// Braze answers 403 for two different things: a key without the endpoint's permission ("Access
/// Denied"), and a workspace whose plan lacks the endpoint or whose account is inactive ("Forbidden").
#[tokio::test]
async fn a_403_that_is_not_a_missing_permission_says_so() {
    for (message, expected) in [
        ("Access Denied", "MissingPermission"),
        (
            "You do not have permission to access this resource",
            "MissingPermission",
        ),
        ("Forbidden", "Forbidden"),
        ("This feature is not included in your plan", "Forbidden"),
    ] {
        let server = MockServer::start().await;
        Mock::given(path("/campaigns/trigger/send"))
            .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({"message": message})))
            .mount(&server)
            .await;
        let err = client(&server).execute(&Send { campaign_id: "c1" }).await.unwrap_err();
        assert!(format!("{err:?}").starts_with(expected), "{message}: {err:?}");
        let text = err.to_string();
        assert!(text.contains(message), "{text}");
        if expected == "Forbidden" {
            assert!(
                text.contains("not a missing permission") && !text.contains("create a key"),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn error_statuses_map_to_their_variants() {
    let cases: [(u16, &str); 5] = [
        (400, "BadRequest"),
        (401, "Unauthorized"),
        (403, "MissingPermission"),
        (404, "NotFound"),
        (422, "BadRequest"),
    ];
    for (status, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(path("/campaigns/trigger/send"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_json(serde_json::json!({"message": "Invalid Campaign ID", "errors": [{"x": 1}]})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server).execute(&Send { campaign_id: "c1" }).await.unwrap_err();
        let name = format!("{err:?}");
        assert!(name.starts_with(expected), "{status}: {name}");
        assert_eq!(err.send_fate(), SendFate::NotAccepted, "{status}");
        match err {
            BrazeError::MissingPermission { permission, .. } => assert_eq!(permission, "campaigns.trigger.send"),
            BrazeError::BadRequest { message, errors, .. } => {
                assert_eq!(message, "Invalid Campaign ID");
                assert_eq!(errors.len(), 1, "the errors array is kept");
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn malformed_json_is_a_decode_error_with_a_path_and_a_snippet() {
    let server = MockServer::start().await;
    Mock::given(path("/campaigns/trigger/send"))
        .respond_with(ResponseTemplate::new(201).set_body_string("{\"message\":\"success\",\"dispatch_id\":42}"))
        .mount(&server)
        .await;
    let err = client(&server).execute(&Send { campaign_id: "c1" }).await.unwrap_err();
    let BrazeError::Decode {
        path, snippet, status, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(path, "dispatch_id");
    assert!(snippet.starts_with("{\"message\":\"success\""), "{snippet}");
    assert_eq!(*status, 201);
    // A 2xx that cannot be read was still accepted: do not send again.
    assert_eq!(err.send_fate(), SendFate::Unknown);
}

#[tokio::test]
async fn the_key_never_appears_in_logs_or_errors() {
    let (logs, _guard) = capture_logs();
    let server = MockServer::start().await;
    Mock::given(path("/campaigns/list"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(path("/campaigns/trigger/send"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"message": "Invalid API key"})))
        .mount(&server)
        .await;
    let c = client_with(
        &server,
        RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            ..RetryPolicy::standard()
        },
    );
    let e1 = c.execute(&Read { page: 0 }).await.unwrap_err();
    let e2 = c.execute(&Send { campaign_id: "c1" }).await.unwrap_err();
    let text = logs.text();
    assert!(text.contains("braze.request"), "spans are logged: {text}");
    assert!(text.contains("endpoint=GET /campaigns/list"), "{text}");
    for haystack in [
        text,
        e1.to_string(),
        format!("{e1:?}"),
        e2.to_string(),
        format!("{e2:?}"),
        format!("{c:?}"),
    ] {
        assert!(!haystack.contains(KEY), "the key leaked: {haystack}");
        assert!(!haystack.contains("sk-test"), "part of the key leaked: {haystack}");
    }
}

#[tokio::test]
async fn permission_probes_read_403_as_missing_and_4xx_as_granted() {
    use offerloop_braze::probe::{PermissionStatus, probe};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/campaigns/trigger/send"))
        .and(body_json(
            serde_json::json!({"campaign_id": "offerloop-permission-probe", "recipients": [], "broadcast": false}),
        ))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({"message": "Invalid Campaign ID"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/segments/details"))
        .and(query_param("segment_id", "offerloop-permission-probe"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({"message": "Access Denied"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/campaigns/list"))
        .and(query_param("page", "0"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"message": "success", "campaigns": []})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/users/track"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"message": "Invalid API key"})))
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(matches!(
        probe(&c, Endpoint::CampaignsTriggerSend).await,
        PermissionStatus::Granted
    ));
    assert!(matches!(
        probe(&c, Endpoint::SegmentsDetails).await,
        PermissionStatus::Missing
    ));
    assert!(matches!(
        probe(&c, Endpoint::CampaignsList).await,
        PermissionStatus::Granted
    ));
    assert!(matches!(
        probe(&c, Endpoint::UsersTrack).await,
        PermissionStatus::Failed(BrazeError::Unauthorized { .. })
    ));
}
