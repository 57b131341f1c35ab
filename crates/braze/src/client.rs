//! [`BrazeClient`]: the reqwest-backed implementation of every Braze call.
//!
//! One generic path, [`BrazeClient::execute`], serves every endpoint: acquire the pool's rate-limit
//! token, send, read the rate-limit headers, let [`crate::retry::decide`] choose between done, retry
//! and give up, then decode the body (with the failing field's path) or map the error status to a
//! [`BrazeError`]. Each attempt runs in a `braze.request` tracing span with the endpoint, attempt,
//! status and latency — never the key, never user data.

use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tracing::Instrument as _;

use crate::api::PagedRequest;
use crate::config::BrazeConfig;
use crate::endpoint::{Endpoint, Method, Request};
use crate::error::{BrazeError, Result, snippet};
use crate::ratelimit::{RateLimits, window_from_headers};
use crate::retry::{AttemptOutcome, Decision, decide, parse_retry_after};

/// How many characters of a body an error message may quote.
const SNIPPET_LEN: usize = 120;

/// An async client for the Braze REST API.
///
/// Cheap to clone (the connection pool, limiters and configuration are shared).
///
/// # Example
/// ```no_run
/// use offerloop_braze::{ApiKey, BrazeClient, BrazeConfig};
/// use offerloop_braze::api::catalog::SegmentDetailsRequest;
///
/// # async fn run() -> Result<(), offerloop_braze::BrazeError> {
/// let key = ApiKey::from_env("OFFERLOOP_BRAZE_API_KEY")?;
/// let config = BrazeConfig::builder("https://rest.iad-01.braze.com", key).build()?;
/// let client = BrazeClient::new(config)?;
/// let segment = client.execute(&SegmentDetailsRequest::new("3b4f5c2e-lapsed-90d")).await?;
/// println!("segment `{}`", segment.name.unwrap_or_default());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BrazeClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: BrazeConfig,
    limits: RateLimits,
}

static TLS_PROVIDER: Once = Once::new();

impl BrazeClient {
    /// Builds a client.
    ///
    /// # Errors
    /// [`BrazeError::Config`] when the HTTP client cannot be built.
    pub fn new(config: BrazeConfig) -> Result<Self> {
        // reqwest is built without a default TLS provider (ring builds far faster than aws-lc-sys);
        // install ring once per process. A provider installed earlier by the application wins.
        TLS_PROVIDER.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| BrazeError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self::with_http_client(config, http))
    }

    /// Builds a client on a caller-supplied `reqwest::Client` (proxies, custom TLS roots).
    pub fn with_http_client(config: BrazeConfig, http: reqwest::Client) -> Self {
        let limits = RateLimits::new(&config.rate_limits);
        Self {
            inner: Arc::new(Inner { http, config, limits }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BrazeConfig {
        &self.inner.config
    }

    /// What Braze's headers last said about a pool's rate-limit window.
    pub fn rate_limit_window(&self, pool: crate::RateLimitPool) -> crate::ratelimit::WindowState {
        self.inner.limits.window(pool)
    }

    /// The underlying HTTP client (for export downloads, which are not API calls).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Sends an untyped request to `endpoint` (a JSON body for POST, query pairs for GET) and returns the
    /// JSON response. For probes and tools; prefer [`BrazeClient::execute`].
    ///
    /// # Errors
    /// As [`BrazeClient::execute`].
    pub async fn execute_raw<P: serde::Serialize + Send + Sync>(
        &self,
        endpoint: Endpoint,
        payload: &P,
    ) -> Result<serde_json::Value> {
        self.execute(&Raw { endpoint, payload }).await
    }

    /// Streams every item of a paged listing (`/campaigns/list`, `/canvas/list`, `/segments/list`,
    /// `/templates/email/list`), fetching each page only when the stream reaches it. See
    /// [`crate::paginate::all_pages`] for the same over any [`crate::BrazeApi`].
    pub fn list_all<R>(&self, request: R) -> impl futures::Stream<Item = Result<R::Item>> + Send + 'static
    where
        R: PagedRequest + Send + Sync + 'static,
        R::Item: Send,
    {
        let client = self.clone();
        crate::paginate::all_pages(request, move |page| {
            let client = client.clone();
            async move { client.execute(&page).await }
        })
    }

    /// Sends one typed request, with rate limiting and the retries its endpoint allows.
    ///
    /// # Errors
    /// A [`BrazeError`]; for message sends, see [`BrazeError::send_fate`].
    pub async fn execute<R: Request>(&self, request: &R) -> Result<R::Response> {
        let endpoint = request.endpoint();
        let body = match endpoint.method() {
            Method::Post => Some(
                serde_json::to_vec(request)
                    .map_err(|e| BrazeError::Config(format!("{endpoint}: cannot serialise the request: {e}")))?,
            ),
            Method::Get => None,
        };
        let mut backoff = self.inner.config.retry.backoff();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let span = tracing::info_span!(
                "braze.request",
                endpoint = %endpoint,
                attempt,
                status = tracing::field::Empty,
                latency_ms = tracing::field::Empty,
            );
            let step = self
                .attempt(request, endpoint, body.as_deref(), attempt, &mut backoff)
                .instrument(span)
                .await?;
            match step {
                Step::Done(response) => return Ok(response),
                Step::Retry(wait) => {
                    tracing::debug!(endpoint = %endpoint, attempt, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt<R: Request>(
        &self,
        request: &R,
        endpoint: Endpoint,
        body: Option<&[u8]>,
        attempt: u32,
        backoff: &mut (impl Iterator<Item = Duration> + Send),
    ) -> Result<Step<R::Response>> {
        let inner = &self.inner;
        inner.limits.acquire(endpoint.pool(), epoch_now()).await;
        let url = inner
            .config
            .base_url
            .join(endpoint.path().trim_start_matches('/'))
            .map_err(|e| BrazeError::Config(format!("cannot build the URL of {endpoint}: {e}")))?;
        let mut auth = HeaderValue::try_from(format!("Bearer {}", inner.config.api_key.expose()))
            .map_err(|_| BrazeError::Config("the API key contains characters not allowed in a header".to_owned()))?;
        auth.set_sensitive(true);
        let builder = match (endpoint.method(), body) {
            (Method::Get, _) => inner.http.get(url).query(request),
            (Method::Post, Some(bytes)) => inner
                .http
                .post(url)
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.to_vec()),
            (Method::Post, None) => inner.http.post(url).header(CONTENT_TYPE, "application/json"),
        };
        let started = Instant::now();
        let sent = builder.header(AUTHORIZATION, auth).send().await;
        let span = tracing::Span::current();
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        let next_backoff = backoff.next().unwrap_or(inner.config.retry.max_backoff);
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                let connected = !e.is_connect();
                let outcome = if connected {
                    AttemptOutcome::TimedOut
                } else {
                    AttemptOutcome::ConnectFailed
                };
                return match decide(
                    endpoint,
                    &outcome,
                    attempt,
                    &inner.config.retry,
                    next_backoff,
                    epoch_now(),
                ) {
                    Decision::RetryAfter(wait) => Ok(Step::Retry(wait)),
                    Decision::Done | Decision::GiveUp => Err(transport_error(endpoint, &e, connected)),
                };
            }
        };
        let status = response.status().as_u16();
        span.record("status", status);
        let window = window_from_headers(response.headers());
        inner.limits.observe(endpoint.pool(), window);
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let outcome = AttemptOutcome::Response {
            status,
            retry_after,
            reset_at: window.reset_at,
        };
        let decision = decide(
            endpoint,
            &outcome,
            attempt,
            &inner.config.retry,
            next_backoff,
            epoch_now(),
        );
        if let Decision::RetryAfter(wait) = decision {
            return Ok(Step::Retry(wait));
        }
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return Err(transport_error(endpoint, &e, true)),
        };
        if (200..300).contains(&status) {
            let mut de = serde_json::Deserializer::from_slice(&bytes);
            return serde_path_to_error::deserialize(&mut de)
                .map(Step::Done)
                .map_err(|e| BrazeError::Decode {
                    endpoint,
                    path: e.path().to_string(),
                    message: e.inner().to_string(),
                    snippet: snippet(&bytes, SNIPPET_LEN),
                    status,
                });
        }
        Err(status_error(
            endpoint,
            status,
            &bytes,
            retry_after,
            window.reset_at,
            attempt,
        ))
    }
}

enum Step<T> {
    Done(T),
    Retry(Duration),
}

/// The current UTC epoch second. Braze's `X-RateLimit-Reset` is wall-clock time, so the transport
/// reads the wall clock here, and only here.
#[allow(clippy::disallowed_methods)]
fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn transport_error(endpoint: Endpoint, e: &reqwest::Error, connected: bool) -> BrazeError {
    // reqwest's message names the URL but never headers, so the key cannot leak through it.
    let message = if e.is_timeout() {
        format!("timed out: {e}")
    } else {
        e.to_string()
    };
    if connected && endpoint.sends_messages() {
        BrazeError::OutcomeUnknown {
            endpoint,
            reason: message,
        }
    } else {
        BrazeError::Transport {
            endpoint,
            message,
            connected,
        }
    }
}

fn status_error(
    endpoint: Endpoint,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    reset_at: Option<i64>,
    attempts: u32,
) -> BrazeError {
    #[derive(serde::Deserialize, Default)]
    struct Envelope {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }
    let envelope: Envelope = serde_json::from_slice(body).unwrap_or_default();
    let message = envelope.message.unwrap_or_else(|| snippet(body, SNIPPET_LEN));
    match status {
        401 => BrazeError::Unauthorized { endpoint, message },
        403 if is_missing_permission(&message) => BrazeError::MissingPermission {
            endpoint,
            permission: endpoint.permission(),
            message,
        },
        403 => BrazeError::Forbidden { endpoint, message },
        404 => BrazeError::NotFound { endpoint, message },
        429 => BrazeError::RateLimited {
            endpoint,
            reset_at,
            retry_after,
        },
        s if s >= 500 && endpoint.sends_messages() => BrazeError::OutcomeUnknown {
            endpoint,
            reason: format!("server error {s}: {message}"),
        },
        s if s >= 500 => BrazeError::Server {
            endpoint,
            status: s,
            attempts,
        },
        s => BrazeError::BadRequest {
            endpoint,
            status: s,
            message,
            errors: envelope.errors,
        },
    }
}

/// An untyped request to a runtime-chosen endpoint.
struct Raw<'a, P> {
    endpoint: Endpoint,
    payload: &'a P,
}

impl<P: serde::Serialize> serde::Serialize for Raw<'_, P> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.payload.serialize(serializer)
    }
}

impl<P: serde::Serialize + Send + Sync> Request for Raw<'_, P> {
    // Never read: `endpoint()` is overridden below.
    const ENDPOINT: Endpoint = Endpoint::CampaignsList;
    type Response = serde_json::Value;

    fn endpoint(&self) -> Endpoint {
        self.endpoint
    }
}

/// Whether a 403's message is Braze's "the key lacks a permission" ("Access Denied", "You do not have
/// permission to access this resource") rather than "Forbidden" (a plan without the endpoint, an
/// inactive account). An empty or unknown message counts as a permission: that is what a user can fix.
fn is_missing_permission(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    let other = [
        "forbidden",
        "plan",
        "inactive",
        "not enabled",
        "not included",
        "suspended",
    ];
    lower.contains("access denied") || lower.contains("permission") || !other.iter().any(|o| lower.contains(o))
}
