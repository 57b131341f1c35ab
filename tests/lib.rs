//! Shared helpers of the end-to-end tests: where the repository's files are, and the PostgreSQL
//! database the tests that run on both store back-ends use.

use std::path::PathBuf;

/// The repository root (the parent of this package's directory).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map_or(here.clone(), PathBuf::from)
}

/// Every `.toml` file directly in `dir` (relative to the repository root), sorted by name.
pub fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The text of a fresh PostgreSQL store location (a schema of its own in the test database
/// `OFFERLOOP_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`), or `None` when
/// `OFFERLOOP_TEST_POSTGRES=skip` (said on stderr: a skip is never silent).
pub fn postgres_location() -> Option<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SCHEMAS: AtomicUsize = AtomicUsize::new(0);
    let url = std::env::var("OFFERLOOP_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    if url == "skip" {
        // A skip is never silent.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped on PostgreSQL: OFFERLOOP_TEST_POSTGRES=skip");
        }
        return None;
    }
    // A random suffix (the hasher's per-process keys), so a schema left by an earlier run with the
    // same pid is never reused.
    let random = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0_u8);
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{url}{separator}schema=e2e_{}_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::SeqCst),
        random % 1_000_000_000
    ))
}
