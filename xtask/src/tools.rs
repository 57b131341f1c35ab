//! The programs `cargo xtask ci` needs besides Rust, found or installed before the first step runs.
//!
//! A newcomer's `cargo xtask ci` must not fail twenty minutes in because a browser is missing. So `ci`
//! starts here: every tool a later step needs is looked for, installed where that can be done without
//! asking (as root with apt-get for Debian packages; moto and Azurite into `target/ci-tools/`, which
//! needs no privilege; cargo-fuzz with `cargo install`; the nightly toolchain with rustup), and
//! whatever is still missing is reported at once, each with the command that installs it, before any
//! step runs. `.ci/run` relies on this and installs nothing itself.
//!
//! | tool | needed by | found as | installed by |
//! |---|---|---|---|
//! | Chromium | `report-check` | `CHROME`, else `chromium`, `chromium-browser`, `google-chrome` on `PATH` | `apt-get install chromium` (root) |
//! | moto | the Currents S3 tests | `OFFERLOOP_MOTO_SERVER`, else `moto_server` on `PATH` | `pip install moto[server]` in a virtualenv under `target/ci-tools/` |
//! | Azurite | the Currents Azure Blob tests | `OFFERLOOP_AZURITE_BLOB`, else `azurite-blob` on `PATH` | `npm install azurite@3` under `target/ci-tools/` |
//! | nightly | `fuzz` | `rustup toolchain list` | `rustup toolchain install nightly --profile minimal` |
//! | cargo-fuzz | `fuzz` | `cargo fuzz --version` | `cargo install cargo-fuzz --locked` |
//! | PostgreSQL | the store's PostgreSQL tests, the worker process tests | `OFFERLOOP_TEST_POSTGRES` (a URL, or `skip`), else `postgres://postgres@127.0.0.1:5432/test`, waited for up to a minute | started with `pg_ctlcluster` or `service postgresql start` (root) when installed but down |
//!
//! A tool installed under `target/ci-tools/` reaches the tests through the environment variable of its
//! row, set on the steps' commands only (xtask forbids `unsafe`, so it never changes its own environment).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The Debian packages that provide a program, by what is missing.
const APT_CHROMIUM: &[&str] = &["chromium"];
const APT_PYTHON: &[&str] = &["python3", "python3-venv"];
const APT_NPM: &[&str] = &["nodejs", "npm"];

/// What the steps need from the environment once the tools are in place: variables to set on every
/// step's command.
#[derive(Debug, Default)]
pub(crate) struct ToolEnv {
    /// `(name, value)` pairs, e.g. `OFFERLOOP_MOTO_SERVER` when moto was installed here.
    pub(crate) vars: Vec<(&'static str, OsString)>,
}

/// Finds or installs every tool of the table in the module docs, printing one line per tool.
///
/// # Errors
/// [`Error::Missing`] naming every tool that is still missing, each with how to install it; or the
/// failure of an installation that was attempted.
pub(crate) fn ensure(root: &Path) -> Result<ToolEnv> {
    let cache = crate::target_dir(root).join("ci-tools");
    let mut env = ToolEnv::default();
    let mut missing: Vec<String> = Vec::new();
    let can_apt = is_root() && on_path("apt-get").is_some();

    // Debian packages first, in one `apt-get update` and one install.
    let mut apt: Vec<&str> = Vec::new();
    let chromium = crate::report_check::find_browser().ok();
    if chromium.is_none() {
        apt.extend(APT_CHROMIUM);
    }
    let moto = moto(&cache);
    if matches!(moto, Found::No) && on_path("python3").is_none() {
        apt.extend(APT_PYTHON);
    }
    let azurite = azurite(&cache);
    if matches!(azurite, Found::No) && on_path("npm").is_none() {
        apt.extend(APT_NPM);
    }
    if !apt.is_empty() && can_apt {
        apt_install(&apt)?;
    }

    match chromium.or_else(|| crate::report_check::find_browser().ok()) {
        Some(path) => println!("    chromium:   {} ({})", path.display(), version_of(&path)),
        None => missing.push(
            "Chromium (the report-check step renders the report in it): `sudo apt-get install chromium` \
             on Debian, or set CHROME to a Chromium or Chrome binary"
                .to_owned(),
        ),
    }

    match moto {
        Found::Yes(shown) => println!("    moto:       {shown}"),
        Found::No => match install_moto(&cache, can_apt) {
            Ok(server) => {
                println!("    moto:       {} (installed)", server.display());
                env.vars.push(("OFFERLOOP_MOTO_SERVER", server.into_os_string()));
            }
            Err(why) => missing.push(format!(
                "moto (the Currents S3 tests start it): {why}; install it with \
                 `pip install 'moto[server]'` or set OFFERLOOP_MOTO_SERVER to a moto_server"
            )),
        },
        Found::Cached(server) => {
            println!("    moto:       {}", server.display());
            env.vars.push(("OFFERLOOP_MOTO_SERVER", server.into_os_string()));
        }
    }

    match azurite {
        Found::Yes(shown) => println!("    azurite:    {shown}"),
        Found::No => match install_azurite(&cache) {
            Ok(blob) => {
                println!("    azurite:    {} (installed)", blob.display());
                env.vars.push(("OFFERLOOP_AZURITE_BLOB", blob.into_os_string()));
            }
            Err(why) => missing.push(format!(
                "Azurite (the Currents Azure Blob tests start it): {why}; install it with \
                 `npm install -g azurite@3` (needs Node.js and npm) or set OFFERLOOP_AZURITE_BLOB"
            )),
        },
        Found::Cached(blob) => {
            println!("    azurite:    {}", blob.display());
            env.vars.push(("OFFERLOOP_AZURITE_BLOB", blob.into_os_string()));
        }
    }

    match postgres() {
        Ok(Some(url)) => {
            println!("    postgres:   {url} (answers)");
            env.vars.push(("OFFERLOOP_TEST_POSTGRES", OsString::from(url)));
        }
        Ok(None) => println!(
            "    postgres:   skipped (OFFERLOOP_TEST_POSTGRES=skip): every PostgreSQL test will say it is skipped"
        ),
        Err(why) => missing.push(why),
    }

    match crate::fuzz::ensure_toolchain() {
        Ok(versions) => println!("    cargo-fuzz: {versions}"),
        Err(Error::Missing { tools }) => missing.extend(tools),
        Err(other) => missing.push(other.to_string()),
    }

    if missing.is_empty() {
        Ok(env)
    } else {
        Err(Error::Missing { tools: missing })
    }
}

/// The PostgreSQL the tests use: reachable (started here when it is installed but down), `None`
/// when `OFFERLOOP_TEST_POSTGRES=skip`, or why not.
fn postgres() -> std::result::Result<Option<String>, String> {
    const DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
    let url = std::env::var("OFFERLOOP_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT.to_owned());
    if url == "skip" {
        return Ok(None);
    }
    let address = postgres_address(&url);
    if wait_for(&address, std::time::Duration::from_secs(5)) {
        return Ok(Some(url));
    }
    println!("    postgres:   {address} does not answer; starting it");
    let started = (is_root() && runs_loudly("pg_ctlcluster", &["15", "main", "start"]))
        || (is_root() && runs_loudly("service", &["postgresql", "start"]));
    if started && wait_for(&address, std::time::Duration::from_secs(60)) {
        return Ok(Some(url));
    }
    Err(format!(
        "PostgreSQL (the store's PostgreSQL tests and the worker process tests use it): nothing answers at \
         {address}; start it (`sudo service postgresql start`), point OFFERLOOP_TEST_POSTGRES at a database \
         the tests may create schemas in, or set OFFERLOOP_TEST_POSTGRES=skip to skip those tests (each says so)"
    ))
}

/// `host:port` of a `postgres://user@host:port/db` URL (port 5432 by default).
fn postgres_address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

/// Whether a TCP connection to `address` succeeds within `limit`, trying every half second.
fn wait_for(address: &str, limit: std::time::Duration) -> bool {
    use std::net::ToSocketAddrs as _;
    let deadline = std::time::Instant::now() + limit;
    loop {
        let reachable = address
            .to_socket_addrs()
            .ok()
            .into_iter()
            .flatten()
            .any(|a| std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_millis(500)).is_ok());
        if reachable {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Whether a tool is there: on the system (how it was found, for the log), in the cache of an earlier
/// run (its path, to pass to the tests), or not at all.
enum Found {
    Yes(String),
    Cached(PathBuf),
    No,
}

/// moto: `OFFERLOOP_MOTO_SERVER`, a `moto_server` that answers `--help`, or one installed earlier.
fn moto(cache: &Path) -> Found {
    if let Some(server) = std::env::var_os("OFFERLOOP_MOTO_SERVER").filter(|s| !s.is_empty()) {
        return Found::Yes(format!("OFFERLOOP_MOTO_SERVER={}", server.to_string_lossy()));
    }
    if runs("moto_server", &["--help"]) {
        return Found::Yes(
            on_path("moto_server").map_or_else(|| "moto_server".to_owned(), |p| p.display().to_string()),
        );
    }
    let cached = moto_server_in(cache);
    if runs(&cached.to_string_lossy(), &["--help"]) {
        Found::Cached(cached)
    } else {
        Found::No
    }
}

fn moto_server_in(cache: &Path) -> PathBuf {
    cache.join("moto").join("bin").join("moto_server")
}

/// Installs moto into a virtualenv under the cache; the reason it could not, if so.
fn install_moto(cache: &Path, can_apt: bool) -> std::result::Result<PathBuf, String> {
    if on_path("python3").is_none() {
        return Err("python3 is not installed".to_owned());
    }
    let venv = cache.join("moto");
    println!(
        "==> installing moto into {} (S3-compatible test server)",
        venv.display()
    );
    let venv_arg = venv.to_string_lossy().into_owned();
    if !runs_loudly("python3", &["-m", "venv", &venv_arg]) {
        // Debian's python3 has no `venv` module without python3-venv.
        if !(can_apt && apt_install(&["python3-venv"]).is_ok() && runs_loudly("python3", &["-m", "venv", &venv_arg])) {
            return Err("`python3 -m venv` failed (on Debian: apt-get install python3-venv)".to_owned());
        }
    }
    let pip = venv.join("bin").join("pip");
    if !runs_loudly(&pip.to_string_lossy(), &["install", "-q", "moto[server]"]) {
        return Err("`pip install moto[server]` failed".to_owned());
    }
    let server = moto_server_in(cache);
    if runs(&server.to_string_lossy(), &["--help"]) {
        Ok(server)
    } else {
        Err(format!("{} does not run after installing", server.display()))
    }
}

/// Azurite: `OFFERLOOP_AZURITE_BLOB`, `azurite-blob` on `PATH`, or one installed earlier.
fn azurite(cache: &Path) -> Found {
    if let Some(blob) = std::env::var_os("OFFERLOOP_AZURITE_BLOB").filter(|s| !s.is_empty()) {
        return Found::Yes(format!("OFFERLOOP_AZURITE_BLOB={}", blob.to_string_lossy()));
    }
    if let Some(path) = on_path("azurite-blob") {
        return Found::Yes(path.display().to_string());
    }
    let cached = azurite_blob_in(cache);
    if cached.is_file() {
        Found::Cached(cached)
    } else {
        Found::No
    }
}

fn azurite_blob_in(cache: &Path) -> PathBuf {
    cache
        .join("azurite")
        .join("node_modules")
        .join(".bin")
        .join("azurite-blob")
}

/// Installs Azurite with npm under the cache (no global install, so no root needed).
fn install_azurite(cache: &Path) -> std::result::Result<PathBuf, String> {
    if on_path("npm").is_none() {
        return Err("npm is not installed".to_owned());
    }
    let prefix = cache.join("azurite");
    println!(
        "==> installing azurite into {} (Azure Blob Storage emulator)",
        prefix.display()
    );
    std::fs::create_dir_all(&prefix).map_err(|e| format!("cannot create {}: {e}", prefix.display()))?;
    let prefix_arg = prefix.to_string_lossy().into_owned();
    if !runs_loudly(
        "npm",
        &[
            "install",
            "--silent",
            "--no-fund",
            "--no-audit",
            "--prefix",
            &prefix_arg,
            "azurite@3",
        ],
    ) {
        return Err("`npm install azurite@3` failed".to_owned());
    }
    let blob = azurite_blob_in(cache);
    if blob.is_file() {
        Ok(blob)
    } else {
        Err(format!("npm installed no {}", blob.display()))
    }
}

/// `apt-get update` then `apt-get install -y` of `packages`, non-interactively (the caller checked that
/// we are root and apt-get exists).
fn apt_install(packages: &[&str]) -> Result<()> {
    println!("==> installing {} with apt-get", packages.join(" "));
    let update = ["update", "-qq"];
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(packages);
    for args in [&update[..], &install[..]] {
        let command = format!("apt-get {}", args.join(" "));
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .map_err(|source| Error::Spawn {
                step: "tools",
                command: command.clone(),
                source,
            })?;
        if !status.success() {
            return Err(Error::StepFailed {
                step: "tools",
                command,
                status,
            });
        }
    }
    Ok(())
}

/// The first line `program --version` prints, or `version unknown`.
fn version_of(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_owned())
        })
        .filter(|line| !line.is_empty())
        .unwrap_or_else(|| "version unknown".to_owned())
}

/// Whether we run as root (`id -u` prints 0).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0")
}

/// The first file named `name` in the directories of `PATH`.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether `program args` runs and succeeds, its output discarded.
pub(crate) fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether `program args` runs and succeeds, its output shown.
fn runs_loudly(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_address_of_a_postgres_url() {
        assert_eq!(
            super::postgres_address("postgres://postgres@127.0.0.1:5432/test"),
            "127.0.0.1:5432"
        );
        assert_eq!(
            super::postgres_address("postgresql://db.internal/app?schema=x"),
            "db.internal:5432"
        );
        assert_eq!(super::postgres_address("postgres://u@[::1]:6543/t"), "[::1]:6543");
    }
}
