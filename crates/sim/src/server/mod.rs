//! [`SimBraze`]: the fake Braze REST API server (axum on 127.0.0.1, random port by default).

pub mod admin;
pub mod catalog;
pub mod envelope;
pub mod messaging;
pub mod templates;
pub mod users;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::state::Workspace;
use crate::world::World;

/// Runtime settings of the server (rate limits, faults, export delays): not part of a scenario.
#[derive(Clone, Debug, Default)]
pub struct SimConfig {
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The workspace.
    pub workspace: Arc<Mutex<Workspace>>,
    /// Settings.
    pub config: Arc<SimConfig>,
}

/// A running simulated Braze server. Dropping it stops the server.
#[derive(Debug)]
pub struct SimBraze {
    addr: SocketAddr,
    state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl SimBraze {
    /// Starts a server for `world` with `config` on 127.0.0.1.
    pub async fn start(world: World, config: SimConfig) -> Result<SimBraze> {
        let state = AppState {
            workspace: Arc::new(Mutex::new(Workspace::new(Arc::new(world)))),
            config: Arc::new(config.clone()),
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(Error::Server)?;
        let addr = listener.local_addr().map_err(Error::Server)?;
        let app = router(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "simulated Braze server stopped");
            }
        });
        Ok(SimBraze { addr, state, shutdown: Some(tx) })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The handlers' state (for tests and the oracle).
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

impl Drop for SimBraze {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Every route.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .merge(users::routes())
        .merge(messaging::routes())
        .merge(catalog::routes())
        .merge(templates::routes())
        .merge(admin::routes())
        .with_state(state)
}
