//! Real object-store servers for tests (feature `test-servers`): an S3-compatible server, moto in
//! server mode, started as a child process and stopped when dropped.
//!
//! `OFFERLOOP_MOTO_SERVER` names the program (default `moto_server` on the PATH; `.ci/run` installs
//! it). Without one, [`MotoServer::start`] prints that the test is skipped and returns `None`,
//! except under CI (`CI` set), where a missing server fails the test.

// Test support, never in a production build: a broken server should fail the test loudly, and a
// skipped test says so on stderr.
#![allow(clippy::expect_used, clippy::print_stderr)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

/// A running moto server.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    endpoint: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MotoServer {
    /// Starts moto on a free loopback port and waits (at most 30 s) until it listens.
    ///
    /// # Panics
    /// Under CI when no server starts, or when it does not listen in time.
    pub fn start() -> Option<Self> {
        let program = std::env::var("OFFERLOOP_MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        let port = free_port();
        let child = match Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must provide an S3 server: `{program}` did not start ({e}); .ci/run installs moto"
                );
                eprintln!(
                    "SKIPPED: no S3 server (`{program}`: {e}); install `moto[server]` or set OFFERLOOP_MOTO_SERVER"
                );
                return None;
            }
        };
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates `bucket` (`PUT /<bucket>`; moto accepts unsigned requests).
    ///
    /// # Panics
    /// When the server refuses.
    pub fn create_bucket(&self, bucket: &str) {
        let host = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).expect("connecting to moto");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("writing to moto");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("reading moto's answer");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }

    /// An S3 client of `bucket` on this server (test credentials, plain HTTP).
    ///
    /// # Panics
    /// When the client cannot be built.
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let s3 = AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .expect("an S3 client for moto");
        Arc::new(s3)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
