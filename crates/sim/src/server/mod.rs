//! [`SimBraze`]: the fake Braze REST API server (axum on 127.0.0.1, random port by default).
//!
//! Every Braze route goes through one middleware ([`middleware::braze_middleware`]) driven by one
//! table ([`routes_table::ROUTES`]: path → method, permission, rate-limit pool): faults, 404/405,
//! authentication, rate limits and the `X-RateLimit-*` headers. Handlers only take
//! `State<AppState>` and their body or query. Admin routes live under `/_sim/` ([`admin`]) and
//! skip all of it.

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod conn;
pub mod envelope;
pub mod faults;
pub mod messaging;
pub mod middleware;
pub mod ratelimit;
pub mod routes_table;
pub mod templates;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

pub use self::auth::ApiKeys;
pub use self::envelope::{ApiError, success};
pub use self::faults::Faults;
pub use self::ratelimit::{Limit, RateLimits};
pub use self::routes_table::{Pool, ROUTES, Route};
use crate::error::{Error, Result};
use crate::state::Workspace;
use crate::state::spec::ApiKeySpec;
use crate::world::World;

/// Runtime settings of the server (rate limits, faults, export delays): not part of a scenario.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Rate-limit pools (braze-api.md §2 defaults; [`RateLimits::tiny`] for tests).
    pub rate_limits: RateLimits,
    /// Faults injected from the start (replaceable at runtime with `PUT /_sim/faults`).
    pub faults: Faults,
    /// Real (wall-clock) time a segment export takes before its file is served. Real time, not
    /// simulated, so a client polling the `url` sees it become ready without anyone moving the clock.
    pub export_delay: Duration,
    /// How long (real time) a finished export stays downloadable; afterwards its `url` answers 404.
    pub export_ttl: Duration,
    /// Users per file inside an export ZIP (Braze: roughly 5,000).
    pub export_users_per_file: usize,
    /// Where export ZIPs are written; `None`: a directory under the system temp dir named after the
    /// process and port, removed when the server is dropped.
    pub export_dir: Option<PathBuf>,
    /// When set, applied events are written as Braze Currents writes them to a bucket
    /// ([`crate::state::currents`]).
    pub currents: Option<crate::state::currents::CurrentsConfig>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            port: 0,
            rate_limits: RateLimits::default(),
            faults: Faults::default(),
            export_delay: Duration::from_secs(2),
            export_ttl: Duration::from_secs(4 * 3600),
            export_users_per_file: 5_000,
            export_dir: None,
            currents: None,
        }
    }
}

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The workspace.
    pub workspace: Arc<Mutex<Workspace>>,
    /// Settings.
    pub config: Arc<SimConfig>,
    /// The API keys accepted.
    pub keys: Arc<ApiKeys>,
    /// Rate-limit buckets.
    pub buckets: Arc<ratelimit::Buckets>,
    /// Faults in force.
    pub faults: Arc<Mutex<faults::FaultState>>,
    /// Base URL of the server (`http://127.0.0.1:<port>`), for URLs it hands out (export downloads).
    pub base_url: Arc<str>,
}

impl AppState {
    /// The state of a server for `workspace` with `config`, reachable at `base_url`.
    pub fn new(workspace: Workspace, config: SimConfig, base_url: &str) -> AppState {
        let keys = ApiKeys::new(&workspace.world.scenario().braze.api_keys);
        AppState {
            workspace: Arc::new(Mutex::new(workspace)),
            keys: Arc::new(keys),
            buckets: Arc::new(ratelimit::Buckets::new(config.rate_limits.clone())),
            faults: Arc::new(Mutex::new(faults::FaultState::new(config.faults.clone()))),
            config: Arc::new(config),
            base_url: base_url.into(),
        }
    }

    /// Locks the workspace. A poisoned lock (a handler panicked while holding it) is taken over:
    /// the simulator keeps serving rather than failing every later request.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Workspace> {
        self.workspace.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulated Braze server. Dropping it stops the server.
#[derive(Debug)]
pub struct SimBraze {
    addr: SocketAddr,
    state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The export directory the server made itself (removed on drop).
    owned_export_dir: Option<PathBuf>,
}

impl SimBraze {
    /// Starts a server for `world` with `config` on 127.0.0.1.
    ///
    /// # Errors
    /// [`Error::Server`] when the port cannot be bound.
    pub async fn start(world: World, mut config: SimConfig) -> Result<SimBraze> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(Error::Server)?;
        let addr = listener.local_addr().map_err(Error::Server)?;
        let owned_export_dir = match &config.export_dir {
            Some(_) => None,
            None => {
                let dir =
                    std::env::temp_dir().join(format!("offerloop-sim-exports-{}-{}", std::process::id(), addr.port()));
                config.export_dir = Some(dir.clone());
                Some(dir)
            }
        };
        let mut workspace = Workspace::new(Arc::new(world));
        if let Some(currents) = &config.currents {
            workspace.currents = Some(crate::state::currents::Currents::new(currents.clone()));
        }
        let state = AppState::new(workspace, config, &format!("http://{addr}"));
        let app = router(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let listener = conn::SimListener::new(listener);
        tokio::spawn(async move {
            let served = axum::serve(listener, app.into_make_service_with_connect_info::<conn::ConnInfo>())
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "simulated Braze server stopped");
            }
        });
        Ok(SimBraze {
            addr,
            state,
            shutdown: Some(tx),
            owned_export_dir,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The handlers' state (for tests and the oracle).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The API keys the server accepts, with their permissions (for `offerloop sim serve` to print).
    pub fn api_keys(&self) -> Vec<ApiKeySpec> {
        self.state.keys.keys().to_vec()
    }

    /// Moves the simulated clock forward by `by` (see [`Workspace::advance_to`]); returns the new now.
    pub fn advance_clock(&self, by: jiff::SignedDuration) -> Timestamp {
        let mut ws = self.state.lock();
        let until = ws.now.checked_add(by).unwrap_or(ws.now);
        ws.advance_to(until);
        ws.now
    }

    /// The simulated now.
    pub fn now(&self) -> Timestamp {
        self.state.lock().now
    }
}

impl Drop for SimBraze {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.state.lock().flush_currents();
        if let Some(dir) = &self.owned_export_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Every route, behind the Braze middleware; unknown paths answer a JSON 404.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .merge(users::routes())
        .merge(messaging::routes())
        .merge(catalog::routes())
        .merge(templates::routes())
        .merge(admin::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::braze_middleware,
        ))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("Not Found: no endpoint {}", uri.path()))
}
