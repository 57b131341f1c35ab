//! The one error type of `offerloop-braze`, and what it says about a send's fate.
//!
//! The variants follow what a caller must do next (aws-sdk style): fix the configuration
//! (`Config`, `Unauthorized`, `MissingPermission`, `Forbidden`), fix the request (`BadRequest`, `NotFound`), wait
//! (`RateLimited`), retry or reconcile (`Server`, `Transport`, `OutcomeUnknown`), or report a broken
//! response (`Decode`). [`BrazeError::send_fate`] answers the question that matters for message sends:
//! could Braze have accepted this request?

use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::export::ExportError;

/// Whether a failed request may have been accepted by Braze.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SendFate {
    /// Braze certainly did not act on it (connection refused, 4xx, 429): safe to send again.
    NotAccepted,
    /// Braze may have acted on it (timeout after the body left, 5xx, unreadable 2xx): sending again
    /// could duplicate messages; reconcile instead.
    Unknown,
}

/// Everything that can go wrong talking to Braze.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrazeError {
    /// The client configuration is invalid (base URL, missing key variable, limits).
    #[error("invalid Braze configuration: {0}")]
    Config(String),
    /// 401: the key is wrong, quoted, or belongs to another instance.
    #[error(
        "{endpoint}: 401 unauthorized: {message} (hint: check that the REST endpoint matches your dashboard's instance and that the API key is the workspace's REST key, unquoted)"
    )]
    Unauthorized {
        /// The endpoint called.
        endpoint: Endpoint,
        /// Braze's message.
        message: String,
    },
    /// 403: the key lacks the permission this endpoint needs.
    #[error(
        "{endpoint}: 403 forbidden: the API key lacks the `{permission}` permission (Braze said: {message}); create a key with it in Settings > APIs and Identifiers"
    )]
    MissingPermission {
        /// The endpoint called.
        endpoint: Endpoint,
        /// The permission string the key needs.
        permission: &'static str,
        /// Braze's message.
        message: String,
    },
    /// 403 that is not about the key's permissions: the workspace's plan does not include the
    /// endpoint, or the account is inactive. A new key does not help.
    #[error(
        "{endpoint}: 403 forbidden, not a missing permission: the workspace's plan may not include this endpoint, or the account is inactive (Braze said: {message}); ask your Braze account manager"
    )]
    Forbidden {
        /// The endpoint called.
        endpoint: Endpoint,
        /// Braze's message.
        message: String,
    },
    /// 400 (or another 4xx): Braze refused the request; nothing was processed.
    #[error("{endpoint}: {status} bad request: {message}")]
    BadRequest {
        /// The endpoint called.
        endpoint: Endpoint,
        /// HTTP status.
        status: u16,
        /// Braze's message.
        message: String,
        /// Braze's `errors` array, when present.
        errors: Vec<serde_json::Value>,
    },
    /// 404: no such path (wrong base URL) or resource.
    #[error("{endpoint}: 404 not found: {message}")]
    NotFound {
        /// The endpoint called.
        endpoint: Endpoint,
        /// Braze's message, if any.
        message: String,
    },
    /// 429 after the client's own waiting budget was spent.
    #[error("{endpoint}: 429 rate limited{}", reset_at.map(|r| format!(" until epoch second {r}")).unwrap_or_default())]
    RateLimited {
        /// The endpoint called.
        endpoint: Endpoint,
        /// When Braze said the window resets (UTC epoch seconds).
        reset_at: Option<i64>,
        /// `Retry-After`, when Braze sent one.
        retry_after: Option<Duration>,
    },
    /// 5xx on a read or idempotent write, after the configured retries.
    #[error("{endpoint}: Braze server error {status} after {attempts} attempt(s)")]
    Server {
        /// The endpoint called.
        endpoint: Endpoint,
        /// HTTP status.
        status: u16,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A message send whose fate is unknown (5xx, or a timeout after the body was sent). Never
    /// retried automatically.
    #[error("{endpoint}: outcome unknown ({reason}); the request may have been accepted, so it was not retried")]
    OutcomeUnknown {
        /// The endpoint called.
        endpoint: Endpoint,
        /// What happened.
        reason: String,
    },
    /// The request could not be completed at the network level.
    #[error("{endpoint}: transport error ({}): {message}", if *connected { "after connecting" } else { "before connecting" })]
    Transport {
        /// The endpoint called.
        endpoint: Endpoint,
        /// What happened.
        message: String,
        /// Whether a connection was made (and so the request may have been sent).
        connected: bool,
    },
    /// A response could not be decoded.
    #[error("{endpoint}: cannot decode the response at `{path}`: {message} (body starts: {snippet})")]
    Decode {
        /// The endpoint called.
        endpoint: Endpoint,
        /// JSON path of the failing field.
        path: String,
        /// The decoder's message.
        message: String,
        /// The first characters of the body, never the whole body.
        snippet: String,
        /// HTTP status of the response.
        status: u16,
    },
    /// A segment export failed.
    #[error(transparent)]
    Export(#[from] ExportError),
}

impl BrazeError {
    /// Whether Braze could have accepted the request that failed; see [`SendFate`].
    pub fn send_fate(&self) -> SendFate {
        match self {
            Self::OutcomeUnknown { .. } => SendFate::Unknown,
            Self::Server { .. } => SendFate::Unknown,
            Self::Transport { connected, .. } => {
                if *connected {
                    SendFate::Unknown
                } else {
                    SendFate::NotAccepted
                }
            }
            Self::Decode { status, .. } if (200..300).contains(status) => SendFate::Unknown,
            _ => SendFate::NotAccepted,
        }
    }

    /// The endpoint the error came from, if it came from a request.
    pub fn endpoint(&self) -> Option<Endpoint> {
        match self {
            Self::Unauthorized { endpoint, .. }
            | Self::MissingPermission { endpoint, .. }
            | Self::Forbidden { endpoint, .. }
            | Self::BadRequest { endpoint, .. }
            | Self::NotFound { endpoint, .. }
            | Self::RateLimited { endpoint, .. }
            | Self::Server { endpoint, .. }
            | Self::OutcomeUnknown { endpoint, .. }
            | Self::Transport { endpoint, .. }
            | Self::Decode { endpoint, .. } => Some(*endpoint),
            Self::Config(_) | Self::Export(_) => None,
        }
    }
}

/// `Result` with [`BrazeError`].
pub type Result<T, E = BrazeError> = std::result::Result<T, E>;

/// The first `max` characters of a body, on one line, for error messages.
pub(crate) fn snippet(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_possibly_received_requests_have_unknown_fate() {
        let e = Endpoint::CampaignsTriggerSend;
        assert_eq!(
            BrazeError::Transport {
                endpoint: e,
                message: "refused".into(),
                connected: false
            }
            .send_fate(),
            SendFate::NotAccepted
        );
        assert_eq!(
            BrazeError::OutcomeUnknown {
                endpoint: e,
                reason: "503".into()
            }
            .send_fate(),
            SendFate::Unknown
        );
        assert_eq!(
            BrazeError::BadRequest {
                endpoint: e,
                status: 400,
                message: "x".into(),
                errors: vec![]
            }
            .send_fate(),
            SendFate::NotAccepted
        );
        assert_eq!(
            BrazeError::RateLimited {
                endpoint: e,
                reset_at: None,
                retry_after: None
            }
            .send_fate(),
            SendFate::NotAccepted
        );
        let decode = |status| BrazeError::Decode {
            endpoint: e,
            path: ".".into(),
            message: "x".into(),
            snippet: String::new(),
            status,
        };
        assert_eq!(decode(201).send_fate(), SendFate::Unknown);
        assert_eq!(decode(400).send_fate(), SendFate::NotAccepted);
    }

    #[test]
    fn snippets_are_short_and_single_line() {
        assert_eq!(snippet(b"{\"a\":\n1}", 100), "{\"a\": 1}");
        assert_eq!(snippet(&[b'x'; 300], 5), "xxxxx…");
    }
}
