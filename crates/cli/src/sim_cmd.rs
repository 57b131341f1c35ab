//! `offerloop sim serve`: the simulated Braze workspace of a scenario, for people to try offerloop
//! (and its client code) against, on 127.0.0.1.

use std::fmt::Write as _;
use std::path::PathBuf;

use offerloop_sim::state::{DEFAULT_API_KEY, WorkspaceSpec};
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};

/// What `sim serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Port on 127.0.0.1 (0: a free one).
    pub port: u16,
    /// Overrides the scenario's population size.
    pub customers: Option<usize>,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
}

/// Loads the scenario of `args`, applies the overrides and generates its world.
pub fn load_world(args: &ServeArgs) -> anyhow::Result<World> {
    let mut scenario = Scenario::from_file(&args.scenario)?;
    if let Some(customers) = args.customers {
        scenario.customers = customers;
    }
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    Ok(World::new(scenario)?)
}

/// Starts the server for `world`.
pub async fn start(world: World, args: &ServeArgs) -> anyhow::Result<SimBraze> {
    let config = SimConfig {
        port: args.port,
        ..SimConfig::default()
    };
    Ok(SimBraze::start(world, config).await?)
}

/// The banner printed when the server is up: its base URL and every API key with its permissions.
pub fn banner(base_url: &str, scenario: &Scenario) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "simulated Braze for scenario `{}` ({} customers, seed {})",
        scenario.name, scenario.customers, scenario.seed
    );
    let _ = writeln!(out, "base URL: {base_url}");
    let _ = writeln!(out, "API keys (Authorization: Bearer <key>):");
    for (key, permissions) in api_keys(&scenario.braze) {
        let _ = writeln!(out, "  {key}  {permissions}");
    }
    let _ = writeln!(
        out,
        "admin (not Braze): POST {base_url}/_sim/clock/advance {{\"seconds\": 86400}}, GET {base_url}/_sim/sends"
    );
    out
}

/// The keys a workspace accepts, each with its permissions joined for display.
pub fn api_keys(spec: &WorkspaceSpec) -> Vec<(String, String)> {
    if spec.api_keys.is_empty() {
        return vec![(DEFAULT_API_KEY.to_string(), "every permission".to_string())];
    }
    spec.api_keys
        .iter()
        .map(|k| {
            let permissions = if k.permissions.iter().any(|p| p == "*") {
                "every permission".to_string()
            } else {
                k.permissions.join(", ")
            };
            (k.key.clone(), permissions)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use offerloop_sim::state::spec::ApiKeySpec;

    use super::*;

    #[test]
    fn banner_lists_every_key_with_its_permissions() {
        let spec = WorkspaceSpec {
            api_keys: vec![
                ApiKeySpec {
                    key: "k-all".into(),
                    permissions: vec!["*".into()],
                    ip_allowlist: vec![],
                },
                ApiKeySpec {
                    key: "k-track".into(),
                    permissions: vec!["users.track".into(), "users.export.ids".into()],
                    ip_allowlist: vec![],
                },
            ],
            ..WorkspaceSpec::default()
        };
        let keys = api_keys(&spec);
        assert_eq!(keys[0], ("k-all".to_string(), "every permission".to_string()));
        assert_eq!(keys[1].1, "users.track, users.export.ids");
        assert_eq!(api_keys(&WorkspaceSpec::default())[0].0, DEFAULT_API_KEY);
    }
}
