//! Real object-store servers for tests (feature `test-servers`), each started as a child process on
//! a free loopback port and stopped when dropped: an S3-compatible server ([`MotoServer`], moto in
//! server mode) and Azure Blob Storage's emulator ([`AzuriteServer`], Azurite from npm).
//!
//! `OFFERLOOP_MOTO_SERVER` and `OFFERLOOP_AZURITE_BLOB` name the programs (default `moto_server` and
//! `azurite-blob` on the PATH; `.ci/run` installs both). Without one, `start` prints that the test
//! is skipped and returns `None`, except under CI (`CI` set), where a missing server fails the test.

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

/// Starts `program` with the arguments `args_for` gives for a free port, or says the test is
/// skipped (fails under CI), then waits (at most 30 s) until it listens.
fn spawn(env: &str, default: &str, what: &str, args_for: impl FnOnce(u16) -> Vec<String>) -> Option<(Child, u16)> {
    let program = std::env::var(env).unwrap_or_else(|_| default.to_owned());
    let port = free_port();
    let child = match Command::new(&program)
        .args(args_for(port))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide {what}: `{program}` did not start ({e}); .ci/run installs it"
            );
            eprintln!("SKIPPED: no {what} (`{program}`: {e}); install it or set {env}");
            return None;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((child, port))
}

impl MotoServer {
    /// Starts moto on a free loopback port and waits (at most 30 s) until it listens.
    ///
    /// # Panics
    /// Under CI when no server starts, or when it does not listen in time.
    pub fn start() -> Option<Self> {
        let (child, port) = spawn("OFFERLOOP_MOTO_SERVER", "moto_server", "an S3 server (moto)", |port| {
            vec!["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()]
        })?;
        Some(Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
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

/// A running Azurite blob service, with its data in a temporary directory.
#[derive(Debug)]
pub struct AzuriteServer {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Drop for AzuriteServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Azurite's well-known development account and key.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl AzuriteServer {
    /// Starts Azurite's blob service on a free loopback port and waits (at most 30 s) until it
    /// listens.
    ///
    /// # Panics
    /// Under CI when no server starts, or when it does not listen in time.
    pub fn start() -> Option<Self> {
        let data = tempfile::tempdir().expect("a directory for Azurite's data");
        let location = data.path().display().to_string();
        let (child, port) = spawn(
            "OFFERLOOP_AZURITE_BLOB",
            "azurite-blob",
            "an Azure Blob emulator (Azurite)",
            |port| {
                vec![
                    "--blobHost".into(),
                    "127.0.0.1".into(),
                    "--blobPort".into(),
                    port.to_string(),
                    "--location".into(),
                    location,
                    "--silent".into(),
                    "--skipApiVersionCheck".into(),
                ]
            },
        )?;
        Some(Self {
            child,
            port,
            _data: data,
        })
    }

    /// Creates `container`: a `PUT ?restype=container` signed with the development account's
    /// shared key (`object_store` reads and writes blobs but does not create containers).
    ///
    /// # Panics
    /// When Azurite refuses.
    pub fn create_container(&self, container: &str) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        // The request's date is checked against Azurite's own (wall) clock: no simulated time here.
        #[allow(clippy::disallowed_methods)]
        let now = jiff::Timestamp::now();
        let date = now.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
        );
        let key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &b64.decode(AZURITE_KEY).expect("the key is base64"),
        );
        let signature = b64.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
        let host = format!("127.0.0.1:{}", self.port);
        let mut stream = TcpStream::connect(&host).expect("connecting to Azurite");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        write!(
            stream,
            "PUT /{AZURITE_ACCOUNT}/{container}?restype=container HTTP/1.1\r\nHost: {host}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {AZURITE_ACCOUNT}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("writing to Azurite");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("reading Azurite's answer");
        assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    }

    /// An Azure Blob client of `container` on this server (the development account, plain HTTP,
    /// path-style URLs as Azurite serves them).
    ///
    /// # Panics
    /// When the client cannot be built.
    pub fn store(&self, container: &str) -> Arc<dyn ObjectStore> {
        let azure = object_store::azure::MicrosoftAzureBuilder::new()
            .with_account(AZURITE_ACCOUNT)
            .with_access_key(AZURITE_KEY)
            .with_endpoint(format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port))
            .with_allow_http(true)
            .with_container_name(container)
            .build()
            .expect("an Azure client for Azurite");
        Arc::new(azure)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
