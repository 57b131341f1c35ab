//! Waiting for a Braze-hosted export and downloading it to disk.
//!
//! Without a customer bucket, `POST /users/export/segment` returns a `url` that answers 404 (or 403)
//! until the export is finished. [`download_when_ready`] checks it on the [`ExportPoll`] schedule and,
//! once it answers 2xx, streams the body to disk chunk by chunk (never the whole ZIP in memory): the
//! chunks go through a bounded channel to a blocking writer thread, into `<dest>.part`, renamed to
//! `dest` only when complete, so a partial download is never mistaken for an export.
//!
//! Time is read from `tokio::time`, so tests run the backoff with a paused clock. No timer races the
//! HTTP request itself (a paused clock would fire it while the socket is busy): a request in flight
//! is bounded by the `reqwest::Client`'s own timeouts, which the caller configures. The poll timeout is
//! checked between checks, and a last check is made when it expires.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use futures::StreamExt as _;

use super::poll::Wait;
use super::{ExportError, ExportPoll};
use crate::Endpoint;

/// Chunks buffered between the download and the disk writer.
const WRITE_QUEUE: usize = 32;

/// Waits until the export at `url` is ready, then downloads it to `dest` and returns `dest`.
///
/// 403 and 404 mean "not ready yet"; 408, 429, 5xx, connection errors and a download interrupted
/// part-way are retried on the same schedule (a restarted download starts over).
///
/// # Errors
/// [`ExportError::NotReady`] when `policy`'s timeout passes first; [`ExportError::DownloadStatus`] for
/// any other non-2xx status (410 when the URL has expired, for instance); [`ExportError::Request`]
/// if the URL is invalid; [`ExportError::Io`] if `dest` cannot be written.
pub async fn download_when_ready(
    http: &reqwest::Client,
    url: &str,
    dest: &Path,
    policy: &ExportPoll,
) -> Result<PathBuf, ExportError> {
    let mut wait = Wait::start(policy, Endpoint::UsersExportSegment);
    loop {
        let attempts = wait.check();
        match attempt(http, url, dest).await {
            Ok(bytes) => {
                wait.ready();
                tracing::info!(attempts, bytes, dest = %dest.display(), "downloaded the segment export");
                return Ok(dest.to_path_buf());
            }
            Err(Attempt::Wait(why)) => wait.not_ready(why).await?,
            Err(Attempt::Fail(error)) => return Err(error),
        }
    }
}

/// Why one check did not produce the file.
enum Attempt {
    /// Not ready, or a transient failure: check again later.
    Wait(String),
    /// Waiting will not help.
    Fail(ExportError),
}

/// One check: GET the URL and, if it is ready, save its body. Returns the number of bytes saved.
async fn attempt(http: &reqwest::Client, url: &str, dest: &Path) -> Result<u64, Attempt> {
    let response = match http.get(url).send().await {
        Ok(response) => response,
        Err(e) if e.is_builder() => return Err(Attempt::Fail(ExportError::Request(e))),
        // The URL is not logged: a download URL is a bearer credential for the export.
        Err(e) => return Err(Attempt::Wait(format!("request failed: {}", e.without_url()))),
    };
    let status = response.status().as_u16();
    match status {
        200..=299 => {}
        403 | 404 => return Err(Attempt::Wait(format!("HTTP {status}"))),
        408 | 429 | 500..=599 => return Err(Attempt::Wait(format!("transient HTTP {status}"))),
        _ => return Err(Attempt::Fail(ExportError::DownloadStatus { status })),
    }
    let part = part_path(dest);
    match save(response.bytes_stream(), &part).await {
        Ok(bytes) => {
            tokio::fs::rename(&part, dest)
                .await
                .map_err(|e| Attempt::Fail(ExportError::io(dest, e)))?;
            Ok(bytes)
        }
        Err(e) => {
            // Best effort: a stale `.part` file is overwritten by the next attempt anyway.
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
    }
}

/// `dest` with `.part` appended to its file name.
fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(ToOwned::to_owned).unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

/// Writes a body stream to `path` through a blocking writer thread; returns the bytes written.
async fn save<S, B, E>(mut body: S, path: &Path) -> Result<u64, Attempt>
where
    S: futures::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]> + Send + 'static,
    E: std::fmt::Display,
{
    let file = std::fs::File::create(path).map_err(|e| Attempt::Fail(ExportError::io(path, e)))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<B>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut written = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            out.write_all(chunk.as_ref())?;
            written += chunk.as_ref().len() as u64;
        }
        out.into_inner()
            .map_err(std::io::IntoInnerError::into_error)?
            .sync_all()?;
        Ok(written)
    });
    let mut interrupted = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                if tx.send(chunk).await.is_err() {
                    break; // The writer failed; its error is reported below.
                }
            }
            Err(e) => {
                interrupted = Some(format!("download interrupted: {e}"));
                break;
            }
        }
    }
    drop(tx);
    let written = match writer.await {
        Ok(Ok(written)) => written,
        Ok(Err(e)) => return Err(Attempt::Fail(ExportError::io(path, e))),
        Err(e) => return Err(Attempt::Fail(ExportError::Worker(e.to_string()))),
    };
    match interrupted {
        Some(why) => Err(Attempt::Wait(why)),
        None => Ok(written),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use tokio::time::Instant;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use super::*;
    use crate::export::test_support::{user_line, write_zip};

    /// A client that keeps no idle connection: its idle-connection timer would be the next timer of the
    /// paused clock, which Tokio jumps to while a request is in flight, making the timings irregular.
    fn http() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
    }

    fn policy() -> ExportPoll {
        ExportPoll::default()
            .with_initial_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(30))
            .with_timeout(Duration::from_secs(600))
    }

    /// Answers 404 `not_ready` times, then 200 with `body`.
    struct ReadyAfter {
        not_ready: u32,
        calls: Arc<AtomicU32>,
        body: Vec<u8>,
    }

    impl Respond for ReadyAfter {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.not_ready {
                ResponseTemplate::new(404).set_body_string("<Error><Code>NoSuchKey</Code></Error>")
            } else {
                ResponseTemplate::new(200).set_body_bytes(self.body.clone())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn downloads_after_two_not_ready_answers() {
        let dir = tempfile::tempdir().unwrap();
        let zip = write_zip(
            dir.path(),
            "source.zip",
            &[("a.json", vec![user_line(1), user_line(2)])],
        );
        let body = std::fs::read(&zip).unwrap();
        let server = MockServer::start().await;
        let calls = Arc::new(AtomicU32::new(0));
        let responder = ReadyAfter {
            not_ready: 2,
            calls: Arc::clone(&calls),
            body: body.clone(),
        };
        Mock::given(method("GET"))
            .and(path("/export.zip"))
            .respond_with(responder)
            .mount(&server)
            .await;

        let dest = dir.path().join("downloaded.zip");
        let url = format!("{}/export.zip", server.uri());
        let got = download_when_ready(&http(), &url, &dest, &policy()).await.unwrap();

        assert_eq!(got, dest);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        assert!(!part_path(&dest).exists());
        let ids: Vec<_> = crate::export::ExportReader::new([&dest])
            .map(|u| u.unwrap().external_id.unwrap())
            .collect();
        assert_eq!(ids, ["user-1", "user-2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_url_that_never_becomes_ready_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(403))
            .mount(&server)
            .await;

        let started = Instant::now();
        let dest = dir.path().join("never.zip");
        let error = download_when_ready(&http(), &server.uri(), &dest, &policy())
            .await
            .unwrap_err();

        let ExportError::NotReady { waited, attempts, .. } = error else {
            panic!("{error:?}")
        };
        assert!(waited >= Duration::from_secs(600), "{waited:?}");
        assert!(started.elapsed() >= Duration::from_secs(600));
        // 1 + 2 + 4 + 8 + 16 s, then every 30 s up to 600 s: 25 checks, with the last one at the deadline.
        assert_eq!(attempts, 25);
        assert_eq!(server.received_requests().await.unwrap().len(), 25);
        assert!(!dest.exists() && !part_path(&dest).exists());
    }

    /// A URL that never becomes ready: the wait ends at the timeout, by the paused clock, and the
    /// error says which export endpoint it was waiting for and what the timeout was, so the user
    /// knows what to raise.
    #[tokio::test(start_paused = true)]
    async fn the_timeout_error_names_the_endpoint_and_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        let policy = policy().with_timeout(Duration::from_secs(45 * 60));
        let started = Instant::now();
        let error = download_when_ready(&http(), &server.uri(), &dir.path().join("x.zip"), &policy)
            .await
            .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(45 * 60));
        let message = error.to_string();
        assert!(message.contains("POST /users/export/segment"), "{message}");
        assert!(message.contains("timeout of 45m"), "{message}");
        assert!(message.contains("--export-timeout"), "{message}");
        // The download URL is a bearer credential: never in the message.
        assert!(!message.contains(&server.uri()), "{message}");
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_are_retried_and_other_statuses_fail_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let server = MockServer::start().await;
        Mock::given(path("/flaky"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(path("/flaky"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{}\n"))
            .mount(&server)
            .await;
        Mock::given(path("/expired"))
            .respond_with(ResponseTemplate::new(410))
            .mount(&server)
            .await;

        let dest = dir.path().join("flaky.json");
        download_when_ready(&http(), &format!("{}/flaky", server.uri()), &dest, &policy())
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "{}\n");

        let error = download_when_ready(&http(), &format!("{}/expired", server.uri()), &dest, &policy()).await;
        assert!(
            matches!(error, Err(ExportError::DownloadStatus { status: 410 })),
            "{error:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_url_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let error = download_when_ready(&http(), "not a url", &dir.path().join("x.zip"), &policy()).await;
        assert!(matches!(error, Err(ExportError::Request(_))), "{error:?}");
    }

    #[tokio::test]
    async fn an_interrupted_body_is_a_transient_failure() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.zip");
        let part = part_path(&dest);
        let body = futures::stream::iter(vec![Ok(vec![1u8, 2, 3]), Err("connection reset")]);
        let result = save(body, &part).await;
        assert!(matches!(result, Err(Attempt::Wait(ref why)) if why.contains("connection reset")));
        let body = futures::stream::iter(vec![Ok::<_, &str>(vec![1u8, 2]), Ok(vec![3])]);
        assert_eq!(save(body, &part).await.ok(), Some(3));
        assert_eq!(std::fs::read(&part).unwrap(), [1, 2, 3]);
    }
}
