//! Shared set-up: a client pointed at a wiremock server or at a scripted server on the test's own
//! runtime, and a log capture.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offerloop_braze::retry::RetryPolicy;
use offerloop_braze::{ApiKey, BrazeClient, BrazeConfig};
use wiremock::MockServer;

/// The key every test uses; no log line or error may ever contain it.
pub const KEY: &str = "sk-test-6c2f1b9e4a7d4f0e9c3b";

/// Retries that keep tests fast: 3 attempts, 5–20 ms of backoff, rate limits waited up to 5 s.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_rate_limit_wait: Duration::from_secs(5),
    }
}

/// A client for `server` with fast retries.
pub fn client(server: &MockServer) -> BrazeClient {
    client_with(server, fast_retries())
}

/// A client for `server` with a given retry policy.
pub fn client_with(server: &MockServer, retry: RetryPolicy) -> BrazeClient {
    client_at(&server.uri(), retry)
}

/// A client for the server at `url` with a given retry policy.
pub fn client_at(url: &str, retry: RetryPolicy) -> BrazeClient {
    let config = BrazeConfig::builder(url, ApiKey::new(KEY).unwrap())
        .request_timeout(Duration::from_millis(500))
        .retry(retry)
        .build()
        .unwrap();
    BrazeClient::new(config).unwrap()
}

/// One scripted answer: a raw HTTP/1.1 response, sent after `delay` (of the test's clock).
pub struct Reply {
    /// How long the server waits before answering.
    pub delay: Duration,
    /// The response, head and body.
    pub raw: String,
}

impl Reply {
    /// The same response, sent `delay` after the request was read.
    pub fn after(self, delay: Duration) -> Reply {
        Reply { delay, ..self }
    }
}

/// A response: `status` line text (e.g. `429 Too Many Requests`), `headers`, and a JSON `body`; the
/// connection closes after it.
pub fn http_response(status: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut raw = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    Reply {
        delay: Duration::ZERO,
        raw,
    }
}

/// A server on the test's own runtime that answers `replies` in order, one per connection, and
/// counts the requests it read; its URL and the count. Unlike wiremock's, which serves from another
/// thread, it lets a test run on the paused clock: the clock only jumps when every task, the server's
/// included, is waiting for a timer, so a request in flight never sees its timeout fire early.
pub async fn scripted_server(replies: Vec<Reply>) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        for reply in replies {
            let (mut stream, _) = listener.accept().await.unwrap();
            // The request: its head, then `content-length` bytes of body.
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed the connection before its request ended");
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data).into_owned();
                let Some(head_end) = text.find("\r\n\r\n") else {
                    continue;
                };
                let length: usize = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if data.len() >= head_end + 4 + length {
                    break;
                }
            }
            count.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(reply.delay).await;
            // The client may have given up (a timeout test): a failed write is its business.
            let _ = stream.write_all(reply.raw.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (url, served)
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
