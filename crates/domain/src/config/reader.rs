//! A hand-written walker over toml's spanned document tree that collects every problem.
//!
//! [`Table`] wraps one TOML table with its field path; each accessor records the key as known, reads
//! and type-checks the value, and on a problem pushes a located [`Diagnostic`] into the [`Cx`] and
//! returns `None`, so the caller goes on reading siblings. [`Table::finish`] reports every key that no
//! accessor asked for as unknown, with the closest known key as a hint.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, LineIndex};

/// A value with the byte range it came from.
pub(crate) type Sp<T> = (T, Range<usize>);

/// The reading context: the source, its name, and the problems found so far.
pub(crate) struct Cx<'s> {
    source: &'s str,
    file: &'s str,
    index: LineIndex,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'s> Cx<'s> {
    pub(crate) fn new(source: &'s str, file: &'s str) -> Self {
        Self {
            source,
            file,
            index: LineIndex::new(source),
            diagnostics: Vec::new(),
        }
    }

    /// Records a problem at `span` for the field `path`.
    pub(crate) fn error(&mut self, span: Range<usize>, path: &str, message: impl Into<String>) {
        let (line, column) = self.index.locate(self.source, span.start);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            path: path.to_owned(),
            message: message.into(),
            span,
        });
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.index.locate(self.source, offset).0
    }

    pub(crate) fn error_count(&self) -> usize {
        self.diagnostics.len()
    }
}

/// Joins a parent path and a key.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// One TOML table being read.
pub(crate) struct Table<'a, 'i> {
    table: &'a DeTable<'i>,
    pub(crate) span: Range<usize>,
    pub(crate) path: String,
    known: Vec<&'static str>,
}

impl<'a, 'i> Table<'a, 'i> {
    pub(crate) fn new(table: &'a DeTable<'i>, span: Range<usize>, path: String) -> Self {
        Self {
            table,
            span,
            path,
            known: Vec::new(),
        }
    }

    /// The path of a key of this table.
    pub(crate) fn key_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Marks `key` as known and returns its value if present.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'a Spanned<DeValue<'i>>> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        self.table.get(key)
    }

    /// A string value looked at without marking the key known or reporting anything.
    pub(crate) fn peek_string(&self, key: &str) -> Option<&'a str> {
        match self.table.get(key)?.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => None,
        }
    }

    /// Whether `key` is present (marks it known).
    pub(crate) fn has(&mut self, key: &'static str) -> bool {
        self.get(key).is_some()
    }

    /// The span of `key`'s value, when present.
    pub(crate) fn span_of(&self, key: &str) -> Option<Range<usize>> {
        self.table.get(key).map(Spanned::span)
    }

    /// Reports a required key as missing, at the start of this table.
    pub(crate) fn missing(&self, cx: &mut Cx<'_>, key: &str) {
        cx.error(self.span.start..self.span.start, &self.key_path(key), "missing");
    }

    fn present(&mut self, cx: &mut Cx<'_>, key: &'static str, required: bool) -> Option<&'a Spanned<DeValue<'i>>> {
        let value = self.get(key);
        if value.is_none() && required {
            self.missing(cx, key);
        }
        value
    }

    /// A string value.
    pub(crate) fn string(&mut self, cx: &mut Cx<'_>, key: &'static str, required: bool) -> Option<Sp<String>> {
        let path = self.key_path(key);
        let v = self.present(cx, key, required)?;
        as_string(cx, v, &path)
    }

    /// A non-empty string value.
    pub(crate) fn nonempty(&mut self, cx: &mut Cx<'_>, key: &'static str, required: bool) -> Option<Sp<String>> {
        let (s, span) = self.string(cx, key, required)?;
        if s.trim().is_empty() {
            cx.error(span, &self.key_path(key), "cannot be empty");
            return None;
        }
        Some((s, span))
    }

    /// A boolean value.
    pub(crate) fn boolean(&mut self, cx: &mut Cx<'_>, key: &'static str, required: bool) -> Option<Sp<bool>> {
        let path = self.key_path(key);
        let v = self.present(cx, key, required)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some((*b, v.span())),
            other => {
                cx.error(
                    v.span(),
                    &path,
                    format!("expected a boolean, found {}", article(other.type_str())),
                );
                None
            }
        }
    }

    /// A number (integer or float), finite.
    pub(crate) fn number(&mut self, cx: &mut Cx<'_>, key: &'static str, required: bool) -> Option<Sp<f64>> {
        let path = self.key_path(key);
        let v = self.present(cx, key, required)?;
        as_number(cx, v, &path)
    }

    /// A number in `[lo, hi]` or `[lo, hi)`, described by `range` in the message.
    pub(crate) fn number_in(
        &mut self,
        cx: &mut Cx<'_>,
        key: &'static str,
        required: bool,
        ok: impl Fn(f64) -> bool,
        range: &str,
    ) -> Option<Sp<f64>> {
        let (x, span) = self.number(cx, key, required)?;
        if !ok(x) {
            cx.error(span, &self.key_path(key), format!("must be in {range}, got {x}"));
            return None;
        }
        Some((x, span))
    }

    /// A non-negative integer in `[lo, hi]`.
    pub(crate) fn integer(
        &mut self,
        cx: &mut Cx<'_>,
        key: &'static str,
        required: bool,
        lo: u64,
        hi: u64,
    ) -> Option<Sp<u64>> {
        let path = self.key_path(key);
        let v = self.present(cx, key, required)?;
        let DeValue::Integer(i) = v.get_ref() else {
            cx.error(
                v.span(),
                &path,
                format!("expected an integer, found {}", article(v.get_ref().type_str())),
            );
            return None;
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if n >= 0 && (n as u64) >= lo && (n as u64) <= hi => Some((n as u64, v.span())),
            Ok(n) => {
                cx.error(v.span(), &path, format!("must be in [{lo}, {hi}], got {n}"));
                None
            }
            Err(_) => {
                cx.error(v.span(), &path, "integer out of range");
                None
            }
        }
    }

    /// A string that must be one of `choices`.
    pub(crate) fn choice<T: Copy>(
        &mut self,
        cx: &mut Cx<'_>,
        key: &'static str,
        required: bool,
        choices: &[(&str, T)],
    ) -> Option<Sp<T>> {
        let (s, span) = self.string(cx, key, required)?;
        match choices.iter().find(|(name, _)| *name == s) {
            Some((_, t)) => Some((*t, span)),
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                cx.error(span, &self.key_path(key), unknown_value(&s, &names));
                None
            }
        }
    }

    /// A sub-table (`[a.b]` or inline).
    pub(crate) fn table(&mut self, cx: &mut Cx<'_>, key: &'static str, required: bool) -> Option<Table<'a, 'i>> {
        let path = self.key_path(key);
        let v = self.present(cx, key, required)?;
        as_table(cx, v, path)
    }

    /// An array of tables (`[[a]]`), each with its indexed path. Absent: empty.
    pub(crate) fn tables(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Vec<Table<'a, 'i>> {
        let path = self.key_path(key);
        let Some(v) = self.get(key) else { return Vec::new() };
        let DeValue::Array(items) = v.get_ref() else {
            cx.error(
                v.span(),
                &path,
                format!("expected an array of tables, found {}", article(v.get_ref().type_str())),
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| as_table(cx, item, format!("{path}[{i}]")))
            .collect()
    }

    /// The raw value of a key (marks it known).
    pub(crate) fn raw(&mut self, key: &'static str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.get(key)
    }

    /// Every entry, for tables whose keys are data (`properties`, `exclude`, `business_as_usual`).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'a str, Range<usize>, &'a Spanned<DeValue<'i>>)> + 'a {
        self.table.iter().map(|(k, v)| (k.get_ref().as_ref(), k.span(), v))
    }

    /// Reports a present key as not applicable here, with `why`.
    pub(crate) fn not_here(&mut self, cx: &mut Cx<'_>, key: &'static str, why: &str) {
        if let Some(v) = self.get(key) {
            cx.error(v.span(), &self.key_path(key), why.to_owned());
        }
    }

    /// Reports every key no accessor asked for.
    pub(crate) fn finish(self, cx: &mut Cx<'_>) {
        for (key, value) in self.table.iter() {
            let name: &str = key.get_ref().as_ref();
            if self.known.contains(&name) {
                continue;
            }
            let hint = self
                .known
                .iter()
                .map(|k| (strsim::jaro_winkler(k, name), *k))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| format!("; did you mean `{k}`?"))
                .unwrap_or_else(|| {
                    let mut known = self.known.clone();
                    known.sort_unstable();
                    format!("; expected one of: {}", known.join(", "))
                });
            let span = if key.span().is_empty() {
                value.span()
            } else {
                key.span()
            };
            cx.error(span, &join(&self.path, name), format!("unknown key{hint}"));
        }
    }
}

/// Reads a string.
pub(crate) fn as_string(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Sp<String>> {
    match v.get_ref() {
        DeValue::String(s) => Some((s.to_string(), v.span())),
        other => {
            cx.error(
                v.span(),
                path,
                format!("expected a string, found {}", article(other.type_str())),
            );
            None
        }
    }
}

/// Reads a number (integer or float).
pub(crate) fn as_number(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Sp<f64>> {
    let x = match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        other => {
            cx.error(
                v.span(),
                path,
                format!("expected a number, found {}", article(other.type_str())),
            );
            return None;
        }
    };
    match x {
        Some(x) if x.is_finite() => Some((x, v.span())),
        _ => {
            cx.error(v.span(), path, "expected a finite number");
            None
        }
    }
}

/// Reads a table.
pub(crate) fn as_table<'a, 'i>(cx: &mut Cx<'_>, v: &'a Spanned<DeValue<'i>>, path: String) -> Option<Table<'a, 'i>> {
    match v.get_ref() {
        DeValue::Table(t) => Some(Table::new(t, v.span(), path)),
        other => {
            cx.error(
                v.span(),
                &path,
                format!("expected a table, found {}", article(other.type_str())),
            );
            None
        }
    }
}

/// Reads a string or an array of strings.
pub(crate) fn as_strings(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Vec<Sp<String>>> {
    match v.get_ref() {
        DeValue::String(s) => Some(vec![(s.to_string(), v.span())]),
        DeValue::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                out.push(as_string(cx, item, &format!("{path}[{i}]"))?);
            }
            if out.is_empty() {
                cx.error(v.span(), path, "cannot be an empty array");
                return None;
            }
            Some(out)
        }
        other => {
            cx.error(
                v.span(),
                path,
                format!(
                    "expected a string or an array of strings, found {}",
                    article(other.type_str())
                ),
            );
            None
        }
    }
}

/// `a string`, `an integer`...
pub(crate) fn article(type_name: &str) -> String {
    let an = matches!(type_name.as_bytes().first(), Some(b'a' | b'e' | b'i' | b'o' | b'u'));
    format!("{} {type_name}", if an { "an" } else { "a" })
}

/// `unknown value `x`; expected one of: a, b` with a hint when one is close.
pub(crate) fn unknown_value(value: &str, names: &[&str]) -> String {
    let close = names
        .iter()
        .map(|n| (strsim::jaro_winkler(n, value), *n))
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match close {
        Some((_, n)) => format!("unknown value `{value}`; did you mean `{n}`?"),
        None => format!("unknown value `{value}`; expected one of: {}", names.join(", ")),
    }
}
