//! Shared set-up: a client pointed at a wiremock server, and a log capture.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offerloop_braze::retry::RetryPolicy;
use offerloop_braze::{ApiKey, BrazeClient, BrazeConfig};
use wiremock::MockServer;

/// The key every test uses; no log line or error may ever contain it.
pub const KEY: &str = "sk-test-6c2f1b9e4a7d4f0e9c3b";

/// A client for `server` with fast retries.
pub fn client(server: &MockServer) -> BrazeClient {
    client_with(
        server,
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_rate_limit_wait: Duration::from_secs(5),
        },
    )
}

/// A client for `server` with a given retry policy.
pub fn client_with(server: &MockServer, retry: RetryPolicy) -> BrazeClient {
    let config = BrazeConfig::builder(server.uri(), ApiKey::new(KEY).unwrap())
        .request_timeout(Duration::from_millis(500))
        .retry(retry)
        .build()
        .unwrap();
    BrazeClient::new(config).unwrap()
}

/// Log lines captured from every span and event at TRACE level.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a TRACE subscriber for the current thread that writes into the returned capture.
pub fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}
