//! Test fixtures: user lines shaped like Braze's user export object, and the ZIP, gzip and plain files
//! of an export, generated into temporary directories (no binary fixture is committed).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

/// The e-mail address of user `i`: it must never reach an [`super::ExportedUser`].
pub(crate) fn email(i: u64) -> String {
    format!("person.{i}@example.com")
}

/// One line of an export: user `i` with typed fields, PII and fields offerloop does not model.
pub(crate) fn user_line(i: u64) -> String {
    json!({
        "external_id": format!("user-{i}"),
        "braze_id": format!("5f{i:022x}"),
        "email": email(i),
        "phone": format!("+3361234{i:04}"),
        "first_name": "Camille",
        "country": "FR",
        "random_bucket": i % 10_000,
        "total_revenue": 12.5,
        "custom_attributes": {"loyalty_tier": "gold", "orders": i % 7},
        "custom_events": [{"name": "viewed_offer", "first": "2026-01-01T00:00:00.000Z", "count": 3}],
        "campaigns_received": [{"name": "Winback", "api_campaign_id": "c-1", "converted": false}],
        "devices": [{"model": "Pixel", "idfa": "00000000-0000-0000-0000-000000000000"}],
    })
    .to_string()
}

/// Writes a deflated ZIP with these `(entry name, lines)` entries, in this order; returns its path.
pub(crate) fn write_zip(dir: &Path, name: &str, entries: &[(&str, Vec<String>)]) -> PathBuf {
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (entry, lines) in entries {
        zip.start_file(*entry, options).unwrap();
        for line in lines {
            writeln!(zip, "{line}").unwrap();
        }
    }
    zip.finish().unwrap();
    path
}

/// Writes a gzip file of these lines; returns its path.
pub(crate) fn write_gzip(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    for line in lines {
        writeln!(gz, "{line}").unwrap();
    }
    gz.finish().unwrap();
    path
}

/// Writes a plain file with this exact content; returns its path.
pub(crate) fn write_plain(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}
