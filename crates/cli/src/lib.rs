//! The commands behind the `offerloop` binary, as a library so they are tested without a process.
//!
//! `main.rs` only parses arguments (clap), sets up tracing and prints; each command here takes plain
//! inputs and returns what to print and whether it succeeded: `init`, `validate`, `braze check`,
//! `check`, `templates sync`, the batch JSONL policy interface (`policy init|decide|learn|evaluate`),
//! the daily loop (`run`, `worker`, `status`, `report`, `demo`), the store (`store migrate|export`), `sim serve` (the simulated Braze workspace)
//! and `currents scan`.

pub mod braze_check;
pub mod check_cmd;
pub mod check_inputs;
pub mod currents_cmd;
pub mod demo_cmd;
pub mod demo_oracle;
pub mod export_wait;
pub mod init;
pub mod loop_bench;
pub mod policy_cmd;
pub mod progress;
pub mod report_cmd;
pub mod run_cmd;
pub mod sim_cmd;
pub mod status_cmd;
pub mod store_cmd;
pub mod templates_cmd;
pub mod validate;
