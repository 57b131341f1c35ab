//! A line-based reader for the two things tidy needs from a `Cargo.toml`: the package name and the
//! normal dependencies.
//!
//! It is not a TOML parser (xtask is std-only so it builds in seconds), but it understands every form
//! a dependency is written in: `name = "1"`, `name.workspace = true`, `name = { workspace = true }`,
//! inline tables spread over several lines, `[dependencies.name]` tables, renames through
//! `package = "..."`, and `[target.'cfg(..)'.dependencies]`. Dev- and build-dependencies are ignored on
//! purpose: a test may use a layer that the code under test must not.

/// What tidy reads from one manifest.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// `[package] name`, if present.
    pub(crate) package_name: Option<String>,
    /// Normal dependencies (`[dependencies]` and `[target.*.dependencies]`), in file order.
    pub(crate) dependencies: Vec<Dependency>,
}

/// One normal dependency.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Dependency {
    /// The name it is declared under (the key in `[dependencies]`).
    pub(crate) key: String,
    /// The package depended on: the `package = "..."` rename target if any, else the key.
    pub(crate) package: String,
    /// The 1-based line where the dependency is declared.
    pub(crate) line: usize,
}

/// Which kind of table the current line belongs to.
#[derive(Debug)]
enum Section {
    Package,
    /// `[dependencies]` or `[target.X.dependencies]`: one dependency per entry.
    Dependencies,
    /// `[dependencies.NAME]`: the table of one dependency, already recorded at this index.
    OneDependency(usize),
    Other,
}

/// Reads the package name and the normal dependencies from a manifest's text.
pub(crate) fn parse(text: &str) -> Manifest {
    let mut manifest = Manifest::default();
    let mut section = Section::Other;
    // An entry may span lines (a multi-line inline table or array): collect it until it balances.
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = strip_comment(raw);
        if let Some((start, mut entry)) = pending.take() {
            entry.push(' ');
            entry.push_str(line);
            if depth(&entry) > 0 {
                pending = Some((start, entry));
            } else {
                take_entry(&mut manifest, &section, start, &entry);
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('[') {
            section = header(&mut manifest, trimmed, number);
            continue;
        }
        if depth(trimmed) > 0 {
            pending = Some((number, trimmed.to_owned()));
        } else {
            take_entry(&mut manifest, &section, number, trimmed);
        }
    }
    if let Some((start, entry)) = pending {
        take_entry(&mut manifest, &section, start, &entry);
    }
    manifest
}

/// Interprets a table header and returns the section it opens.
fn header(manifest: &mut Manifest, trimmed: &str, number: usize) -> Section {
    if trimmed.starts_with("[[") {
        return Section::Other;
    }
    let inner = trimmed.trim_start_matches('[').split(']').next().unwrap_or_default();
    let parts = split_key(inner);
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let dependency = match parts.as_slice() {
        ["package"] => return Section::Package,
        ["dependencies"] | ["target", _, "dependencies"] => return Section::Dependencies,
        ["dependencies", name] | ["target", _, "dependencies", name] => *name,
        _ => return Section::Other,
    };
    manifest.dependencies.push(Dependency {
        key: dependency.to_owned(),
        package: dependency.to_owned(),
        line: number,
    });
    Section::OneDependency(manifest.dependencies.len() - 1)
}

/// Records what one `key = value` entry means in the current section.
fn take_entry(manifest: &mut Manifest, section: &Section, number: usize, entry: &str) {
    let Some((key, value)) = split_entry(entry) else {
        return;
    };
    let key = split_key(key);
    match section {
        Section::Package => {
            if key.len() == 1 && key[0] == "name" {
                manifest.package_name = Some(unquote(value.trim()).to_owned());
            }
        }
        Section::Dependencies => {
            let Some(name) = key.first() else { return };
            let renamed_to = if key.len() == 2 && key[1] == "package" {
                Some(unquote(value.trim()).to_owned())
            } else {
                renamed_package(value)
            };
            // `name.version = "1"` and `name.package = "x"` on separate lines are one dependency.
            if let Some(existing) = manifest.dependencies.iter_mut().find(|d| &d.key == name) {
                if let Some(package) = renamed_to {
                    existing.package = package;
                }
                return;
            }
            let package = renamed_to.unwrap_or_else(|| name.clone());
            manifest.dependencies.push(Dependency {
                key: name.clone(),
                package,
                line: number,
            });
        }
        Section::OneDependency(at) => {
            if key.len() == 1
                && key[0] == "package"
                && let Some(dependency) = manifest.dependencies.get_mut(*at)
            {
                dependency.package = unquote(value.trim()).to_owned();
            }
        }
        Section::Other => {}
    }
}

/// The `package = "..."` inside an inline table value, if any.
fn renamed_package(value: &str) -> Option<String> {
    let inner = value.trim().strip_prefix('{')?.trim_end().strip_suffix('}')?;
    split_top_level(inner, ',').into_iter().find_map(|pair| {
        let (key, value) = split_entry(pair)?;
        (unquote(key.trim()) == "package").then(|| unquote(value.trim()).to_owned())
    })
}

/// Cuts a `# comment` off a line, respecting strings.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// How many `{`/`[` are still open in `text`, outside strings.
fn depth(text: &str) -> i32 {
    let mut quote = None;
    let mut open = 0;
    for c in text.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '{' | '[') => open += 1,
            (None, '}' | ']') => open -= 1,
            _ => {}
        }
    }
    open
}

/// Splits `key = value` at the first `=` outside strings.
fn split_entry(entry: &str) -> Option<(&str, &str)> {
    let parts = split_top_level(entry, '=');
    let key = parts.first()?;
    let value = entry.get(key.len() + 1..)?;
    Some((key, value))
}

/// Splits `text` at `separator`, outside strings and brackets.
fn split_top_level(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut open = 0;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '{' | '[') => open += 1,
            (None, '}' | ']') => open -= 1,
            (None, _) if c == separator && open == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Splits a dotted key (`target.'cfg(unix)'.dependencies`) into its unquoted parts.
fn split_key(key: &str) -> Vec<String> {
    split_top_level(key, '.')
        .into_iter()
        .map(|p| unquote(p.trim()).to_owned())
        .collect()
}

/// Removes one pair of surrounding `"` or `'`.
fn unquote(text: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
            return inner;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn packages(text: &str) -> Vec<(String, usize)> {
        parse(text)
            .dependencies
            .into_iter()
            .map(|d| (d.package, d.line))
            .collect()
    }

    #[test]
    fn reads_every_dependency_form() {
        let text = r#"
[package]
name = "offerloop-policy" # the package
version.workspace = true

[dependencies]
offerloop-domain.workspace = true
serde = { version = "1", features = ["derive"] }
store = { package = "offerloop-store", path = "../store" }
big = {
    version = "1",
    features = ["a", "b"],
}
"quoted" = "2"
split.version = "1"
split.package = "offerloop-engine"

[dev-dependencies]
offerloop-sim.workspace = true

[target.'cfg(unix)'.dependencies]
libc = "0.2"

[dependencies.renamed]
package = "tokio"
version = "1"

[[bench]]
name = "policy"
"#;
        let manifest = parse(text);
        assert_eq!(manifest.package_name.as_deref(), Some("offerloop-policy"));
        assert_eq!(
            packages(text),
            [
                ("offerloop-domain".to_owned(), 7),
                ("serde".to_owned(), 8),
                ("offerloop-store".to_owned(), 9),
                ("big".to_owned(), 10),
                ("quoted".to_owned(), 14),
                ("offerloop-engine".to_owned(), 15),
                ("libc".to_owned(), 22),
                ("tokio".to_owned(), 24),
            ]
        );
    }

    #[test]
    fn comments_and_other_tables_are_not_dependencies() {
        let text =
            "[features]\nmocks = [\"dep:mockall\"]\n[dependencies]\n# tokio = \"1\"\n[lints]\nworkspace = true\n";
        assert!(packages(text).is_empty());
    }
}
