//! Tests of [`ExportReader`] on ZIP, gzip and plain files generated into temporary directories.

use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use proptest::prelude::*;

use super::*;
use crate::export::test_support::{email, user_line, write_gzip, write_plain, write_zip};

fn lines(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(user_line).collect()
}

fn ids(reader: impl Iterator<Item = Result<ExportedUser, ExportError>>) -> Vec<String> {
    reader.map(|user| user.unwrap().external_id.unwrap()).collect()
}

fn expected_ids(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| format!("user-{i}")).collect()
}

#[test]
fn a_zip_yields_every_file_entry_in_name_order_whatever_its_extension() {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_zip(
        dir.path(),
        "export.zip",
        &[
            ("part-0002.json", lines(3..5)),
            ("part-0001", lines(0..3)),
            ("part-0003.ndjson", lines(5..6)),
            ("part-0004.txt", lines(6..8)),
        ],
    );
    assert_eq!(ids(ExportReader::new([zip])), expected_ids(0..8));
}

#[test]
fn gzip_plain_and_zip_files_are_read_in_the_order_given() {
    let dir = tempfile::tempdir().unwrap();
    let gz = write_gzip(dir.path(), "a.gz", &lines(0..2));
    let plain = write_plain(dir.path(), "b.ndjson", &format!("{}\n{}", user_line(2), user_line(3)));
    let zip = write_zip(dir.path(), "c.zip", &[("x.json", lines(4..5))]);
    let json = write_plain(dir.path(), "d.json", &format!("{}\n", user_line(5)));
    let mut reader = ExportReader::new([gz, plain, zip, json]);
    assert_eq!(ids(reader.by_ref()), expected_ids(0..6));
    assert_eq!((reader.users_read(), reader.skipped_lines()), (6, 0));
    assert!(reader.next().is_none(), "fused");
}

#[test]
fn blank_lines_are_skipped_but_counted() {
    let dir = tempfile::tempdir().unwrap();
    let content = format!("\n{}\r\n   \n\t\r\n{}\n\n{{oops\n", user_line(0), user_line(1));
    let file = write_plain(dir.path(), "blank.json", &content);
    let mut reader = ExportReader::new([&file]);
    assert_eq!(reader.next().unwrap().unwrap().external_id.as_deref(), Some("user-0"));
    assert_eq!(reader.next().unwrap().unwrap().external_id.as_deref(), Some("user-1"));
    let error = reader.next().unwrap().unwrap_err();
    let ExportError::Malformed { line, .. } = error else {
        panic!("{error:?}")
    };
    assert_eq!(line, 7);
}

#[test]
fn a_malformed_line_names_the_entry_and_line_and_ends_the_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = lines(10..13);
    bad.insert(
        1,
        String::from(r#"{"external_id": "user-x", "custom_events": [{"count": 1}"#),
    );
    let zip = write_zip(
        dir.path(),
        "export.zip",
        &[("part-0001.json", lines(0..2)), ("part-0003.json", bad)],
    );
    let mut reader = ExportReader::new([&zip]);
    let items: Vec<_> = reader.by_ref().collect();
    assert_eq!(
        items.len(),
        4,
        "two users, one user, the error, then nothing: {items:?}"
    );
    let Err(ExportError::Malformed { file, line, message }) = &items[3] else {
        panic!("{items:?}")
    };
    assert_eq!(file, &format!("{}!part-0003.json", zip.display()));
    assert_eq!(*line, 2);
    assert!(message.contains("custom_events"), "{message}");
    let shown = items[3].as_ref().unwrap_err().to_string();
    assert!(
        shown.contains("export.zip!part-0003.json:2: malformed user object"),
        "{shown}"
    );
}

#[test]
fn skip_malformed_counts_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut content = lines(0..2);
    content.insert(1, String::from("not json"));
    content.push(String::from("[1, 2]"));
    content.push(String::from(r#"{"random_bucket": -3}"#));
    content.push(user_line(2));
    let gz = write_gzip(dir.path(), "export.gz", &content);
    let mut reader = ExportReader::new([gz]).skip_malformed(true);
    assert_eq!(ids(reader.by_ref()), expected_ids(0..3));
    assert_eq!((reader.users_read(), reader.skipped_lines()), (3, 3));
}

#[test]
fn unknown_fields_are_ignored_and_pii_is_not_retained() {
    let dir = tempfile::tempdir().unwrap();
    let mut content = lines(0..3);
    content.push(format!(
        r#"{{"external_id": "user-3", "future_field": {{"nested": [1, {{"a": null}}]}}, "email": "{}"}}"#,
        email(3)
    ));
    let file = write_plain(dir.path(), "export.json", &content.join("\n"));
    let users: Vec<ExportedUser> = ExportReader::new([file]).map(Result::unwrap).collect();
    assert_eq!(users.len(), 4);
    assert_eq!(
        users[1].custom_attributes.get("loyalty_tier"),
        Some(&serde_json::json!("gold"))
    );
    assert_eq!(users[1].campaigns_received.len(), 1);
    for (i, user) in (0..).zip(&users) {
        let shown = format!("{user:?} {}", serde_json::to_string(user).unwrap());
        assert!(!shown.contains(&email(i)) && !shown.contains("@example.com"), "{shown}");
        assert!(
            !shown.contains("+336") && !shown.contains("Camille") && !shown.contains("idfa"),
            "{shown}"
        );
    }
}

#[test]
fn a_malformed_value_is_not_quoted_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!(r#"{{"external_id": "user-0", "random_bucket": "{}"}}"#, email(0));
    let file = write_plain(dir.path(), "export.json", &line);
    let error = ExportReader::new([file]).next().unwrap().unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("@example.com"), "{shown}");
    assert!(shown.contains("`random_bucket`: invalid type, expected u32"), "{shown}");
}

#[test]
fn fields_not_requested_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_zip(dir.path(), "export.zip", &[("a.json", lines(0..2))]);
    let fields = ["external_id", "custom_attributes", "email", "phone"];
    let users: Vec<ExportedUser> = ExportReader::new([zip])
        .fields_to_export(fields)
        .map(Result::unwrap)
        .collect();
    assert_eq!(users.len(), 2);
    for user in &users {
        assert!(user.external_id.is_some() && !user.custom_attributes.is_empty());
        assert!(
            user.campaigns_received.is_empty() && user.custom_events.is_empty(),
            "{user:?}"
        );
        assert!(user.braze_id.is_none() && user.random_bucket.is_none() && user.total_revenue.is_none());
    }
}

#[test]
fn a_too_long_line_is_malformed_and_can_be_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!(r#"{{"external_id": "{}"}}"#, "x".repeat(5_000));
    let file = write_plain(dir.path(), "long.json", &[user_line(0), long, user_line(1)].join("\n"));
    let error = ExportReader::new([&file])
        .max_line_bytes(1_000)
        .nth(1)
        .unwrap()
        .unwrap_err();
    assert!(matches!(&error, ExportError::Malformed { line: 2, message, .. } if message.contains("longer than 1000")));
    let mut reader = ExportReader::new([&file]).max_line_bytes(1_000).skip_malformed(true);
    assert_eq!(ids(reader.by_ref()), expected_ids(0..2));
    assert_eq!(reader.skipped_lines(), 1);
}

#[test]
fn a_corrupt_entry_fails_its_crc_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stored.zip");
    {
        use std::io::Write as _;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("a.json", options).unwrap();
        writeln!(zip, "{}", user_line(0)).unwrap();
        zip.finish().unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(7).position(|w| w == b"user-0\"").unwrap();
    bytes[at + 5] = b'9';
    std::fs::write(&path, bytes).unwrap();
    let items: Vec<_> = ExportReader::new([&path]).collect();
    // The one line parses (it reads as user-9), then the end of the entry reveals the corruption.
    assert_eq!(items.len(), 2, "{items:?}");
    let Err(ExportError::Read { file, source, .. }) = &items[1] else {
        panic!("{items:?}")
    };
    assert!(
        file.ends_with("stored.zip!a.json") && source.to_string().contains("CRC-32"),
        "{file} {source}"
    );
}

#[test]
fn broken_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fake = write_plain(dir.path(), "fake.zip", "{}\n");
    assert!(matches!(
        ExportReader::new([fake]).next(),
        Some(Err(ExportError::Archive { .. }))
    ));
    let truncated = write_zip(dir.path(), "t.zip", &[("a.json", lines(0..50))]);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        ExportReader::new([truncated]).next(),
        Some(Err(ExportError::Zip { .. }))
    ));
    let gz = write_gzip(dir.path(), "t.gz", &lines(0..50));
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let last = ExportReader::new([gz]).last().unwrap();
    assert!(matches!(last, Err(ExportError::Read { .. })), "{last:?}");
    let missing = ExportReader::new([dir.path().join("missing.zip")]).next();
    assert!(matches!(missing, Some(Err(ExportError::Io { .. }))));
}

#[test]
fn empty_inputs_yield_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty_zip = write_zip(dir.path(), "e.zip", &[]);
    let empty_entry = write_zip(dir.path(), "f.zip", &[("a.json", vec![])]);
    let empty_plain = write_plain(dir.path(), "e.json", "");
    let empty_gz = write_gzip(dir.path(), "e.gz", &[]);
    assert_eq!(
        ExportReader::new([empty_zip, empty_entry, empty_plain, empty_gz]).count(),
        0
    );
    assert_eq!(ExportReader::new(Vec::<PathBuf>::new()).count(), 0);
}

#[tokio::test]
async fn into_stream_yields_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_zip(
        dir.path(),
        "export.zip",
        &[("a.json", lines(0..300)), ("b.json", lines(300..700))],
    );
    let streamed: Vec<String> = ExportReader::new([&zip])
        .into_stream()
        .map(|u| u.unwrap().external_id.unwrap())
        .collect()
        .await;
    assert_eq!(streamed, expected_ids(0..700));
    // Dropping the stream early stops the reader thread (the test would hang otherwise).
    let first: Vec<_> = ExportReader::new([&zip]).into_stream().take(3).collect().await;
    assert_eq!(first.len(), 3);
}

#[tokio::test]
async fn into_stream_ends_after_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plain(
        dir.path(),
        "bad.json",
        &format!("{}\nnope\n{}\n", user_line(0), user_line(1)),
    );
    let items: Vec<_> = ExportReader::new([file]).into_stream().collect().await;
    assert_eq!(items.len(), 2);
    assert!(matches!(items[1], Err(ExportError::Malformed { line: 2, .. })));
}

#[test]
fn into_stream_outside_a_runtime_is_an_error_not_a_panic() {
    let items: Vec<_> = futures::executor::block_on(ExportReader::new(["x.json"]).into_stream().collect());
    assert!(matches!(items.as_slice(), [Err(ExportError::Worker(_))]), "{items:?}");
}

/// The files of one property-test case: each file is a ZIP (several entries), a gzip or a plain file,
/// holding consecutive users.
fn write_layout(dir: &Path, layout: &[(u8, Vec<usize>)]) -> (Vec<PathBuf>, u64) {
    let mut next = 0u64;
    let mut take = |n: usize| {
        let start = next;
        next += n as u64;
        lines(start..next)
    };
    let files = layout
        .iter()
        .enumerate()
        .map(|(i, (kind, entries))| match kind {
            0 => {
                let named: Vec<(String, Vec<String>)> = entries
                    .iter()
                    .enumerate()
                    .map(|(j, n)| (format!("dir/part-{j:04}.json"), take(*n)))
                    .collect();
                let borrowed: Vec<(&str, Vec<String>)> = named.iter().map(|(n, l)| (n.as_str(), l.clone())).collect();
                write_zip(dir, &format!("f{i:02}.zip"), &borrowed)
            }
            1 => write_gzip(dir, &format!("f{i:02}.gz"), &take(entries.iter().sum())),
            _ => {
                let content: String = take(entries.iter().sum()).iter().map(|l| format!("{l}\n\n")).collect();
                write_plain(dir, &format!("f{i:02}.json"), &content)
            }
        })
        .collect();
    (files, next)
}

fn check_every_user_once_in_order(layout: &[(u8, Vec<usize>)]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let (files, total) = write_layout(dir.path(), layout);
    let got: Vec<String> = ExportReader::new(files)
        .map(|u| u.map(|u| u.external_id.unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    prop_assert_eq!(got, expected_ids(0..total));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_user_is_read_exactly_once_in_order(
        layout in prop::collection::vec((0u8..3, prop::collection::vec(0usize..25, 1..5)), 0..6)
    ) {
        check_every_user_once_in_order(&layout)?;
    }
}
