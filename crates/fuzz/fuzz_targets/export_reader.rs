//! Fuzz target `export_reader`: any bytes as a segment-export file, through `ExportReader`.
//!
//! The first byte chooses how the file is named and read, the rest is the file:
//! bits 0–1 the name (`segment-export.zip`, `00000.json.gz`, `00000.json`, `export`: the extension
//! promises a format that the magic bytes must match), bit 2 the fields read (all typed fields, or only
//! those of a typical `fields_to_export`), bit 3 `skip_malformed`, bit 4 a 256-byte line limit (else the
//! default 16 MiB). The seeds under `seeds/export_reader/` are real exports (the simulator's ZIP, a
//! gzip, plain NDJSON) behind a `0x00` byte. Every file must end in users and errors, never a panic,
//! and the reader must stop after its first error unless malformed lines are skipped.

#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use offerloop_braze::export::{ExportError, ExportReader, FieldSet};

/// File names, by the low two bits of the first byte.
const NAMES: [&str; 4] = ["segment-export.zip", "00000.json.gz", "00000.json", "export"];

/// A directory of this fuzzing process's own, where each input is written before it is read.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("offerloop-fuzz-export-{}", std::process::id()));
    // Invariant of the harness, not of the code under test: the temporary directory is writable.
    std::fs::create_dir_all(&dir).expect("create the fuzzing process's temporary directory");
    dir
});

fuzz_target!(|data: &[u8]| {
    let Some((&control, content)) = data.split_first() else {
        return;
    };
    let path = DIR.join(NAMES[usize::from(control & 3)]);
    // Invariant of the harness: the process's own temporary directory is writable.
    std::fs::write(&path, content).expect("write the input file");
    let fields = if control & 4 == 0 {
        FieldSet::all()
    } else {
        FieldSet::from_fields_to_export(["external_id", "email_subscribe", "custom_attributes", "purchases"])
    };
    let skip = control & 8 != 0;
    let mut reader = ExportReader::new([&path]).fields(fields).skip_malformed(skip);
    if control & 16 != 0 {
        reader = reader.max_line_bytes(256);
    }
    let mut errors = 0;
    for item in reader.by_ref() {
        match item {
            Ok(user) => {
                let _ = format!("{user:?}");
            }
            Err(e) => {
                assert!(
                    !(skip && matches!(e, ExportError::Malformed { .. })),
                    "a malformed line is skipped, not yielded: {e}"
                );
                let _ = e.to_string();
                errors += 1;
            }
        }
    }
    assert!(errors <= 1, "the reader stops at its first error, yielded {errors}");
    let _ = (reader.users_read(), reader.skipped_lines());
});
