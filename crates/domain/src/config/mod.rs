//! Use-case configuration: one TOML file per use case, with every problem located.
//!
//! [`parse_use_case`] reads a file in one pass and reports **every** problem it can find, each as a
//! [`Diagnostic`] with file, line, column and field path, e.g.
//! `winback.toml:23:9 dimension[1].options[2].campaign_id: missing`. Unknown keys are errors (with a
//! "did you mean" hint), never silently ignored. Array indices in paths count from 0.
//!
//! The design decision: the file is parsed into toml's spanned document tree
//! ([`toml::de::DeTable`]) and walked by hand (`reader`) instead of derived `Deserialize`
//! impls, because serde stops at the first error and knows neither sibling keys nor cross-references
//! (a rule naming an option, a business-as-usual action excluded by a rule). The keys are documented in
//! `docs/configuration.md`.

mod diagnostic;
mod reader;
mod schema;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use schema::parse_use_case;
