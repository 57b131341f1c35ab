//! Fuzz target `use_case`: any bytes as a use-case file, through `offerloop validate`'s path.
//!
//! The input is read as the CLI reads a file (UTF-8, or refused before parsing), parsed by
//! `parse_use_case`, and every located problem is rendered with its source line and caret, as
//! `validate` prints it. A valid use case is fingerprinted (its JSON form) and its action space
//! counted. Nothing may panic, and every problem must be located inside the file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use offerloop_domain::Error;
use offerloop_domain::config::parse_use_case;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match parse_use_case(source, "fuzz.toml") {
        Ok(use_case) => {
            let _ = use_case.fingerprint();
            let _ = use_case.actions.count();
            let _ = use_case.export_fields();
        }
        Err(Error::Config(diagnostics)) => {
            assert!(!diagnostics.is_empty(), "a refused file names at least one problem");
            for diagnostic in diagnostics.iter() {
                assert!(diagnostic.line >= 1 && diagnostic.column >= 1, "{diagnostic:?}");
                assert!(diagnostic.span.end <= source.len(), "{diagnostic:?}");
                let _ = diagnostic.render(source);
            }
        }
        Err(other) => {
            let _ = other.to_string();
        }
    }
});
