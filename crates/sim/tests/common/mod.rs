//! Helpers of the server integration tests: a started `SimBraze` and a reqwest client that returns
//! status, headers and JSON body.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod http;

use offerloop_sim::state::Workspace;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// A running simulator and a client.
pub struct Sim {
    /// The server.
    pub sim: SimBraze,
    /// The client.
    pub http: reqwest::Client,
}

/// A response: status, headers, JSON body (`Null` when not JSON).
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Value,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `message` of the body.
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

impl Sim {
    /// Starts a server for `scenario` (TOML) with `config`.
    pub async fn start(scenario: &str, config: SimConfig) -> Sim {
        let world = World::new(Scenario::from_toml_str(scenario, None).unwrap()).unwrap();
        Sim::start_world(world, config).await
    }

    /// Starts a server for `world` with `config`.
    pub async fn start_world(world: World, config: SimConfig) -> Sim {
        let sim = SimBraze::start(world, config).await.unwrap();
        // reqwest is built without a TLS crypto provider; plain HTTP still needs one installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        Sim { sim, http }
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// Sends a request; `key` as a bearer token when given.
    pub async fn send(&self, method: reqwest::Method, path: &str, key: Option<&str>, body: Option<&Value>) -> Reply {
        self.try_send(method, path, key, body).await.unwrap()
    }

    /// Like [`Sim::send`], but returns the transport error instead of panicking.
    pub async fn try_send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Result<Reply> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, headers, body })
    }

    /// POST with a key.
    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(key), Some(&body)).await
    }

    /// GET with a key.
    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.send(reqwest::Method::GET, path, Some(key), None).await
    }

    /// The workspace.
    pub fn ws(&self) -> std::sync::MutexGuard<'_, Workspace> {
        self.sim.state().lock()
    }

    /// The `external_id` of world customer `index`.
    pub fn id(&self, index: usize) -> String {
        self.ws().world.external_id(index).to_owned()
    }
}
