//! Located configuration problems and their rendering.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Diagnostic {
    /// The file name as given to the parser.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Field path such as `dimension[1].options[2].campaign_id`; empty for syntax errors.
    pub path: String,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
    /// Byte range in the source.
    pub span: Range<usize>,
}

impl Diagnostic {
    /// The diagnostic followed by the offending source line and a caret under the problem, for people.
    ///
    /// The line is found from the span's start, in time proportional to the line (not to the file:
    /// a file with a million problems renders in linear time).
    pub fn render(&self, source: &str) -> String {
        let line_text = line_at(source, self.span.start)
            .unwrap_or_else(|| source.lines().nth(self.line.saturating_sub(1)).unwrap_or(""));
        let width = source
            .get(self.span.clone())
            .map_or(1, |s| s.lines().next().unwrap_or("").chars().count().max(1))
            .min(line_text.chars().count().saturating_sub(self.column - 1).max(1));
        let gutter = self.line.to_string().len();
        format!(
            "{self}\n{:gutter$} |\n{} | {line_text}\n{:gutter$} | {}{}",
            "",
            self.line,
            "",
            " ".repeat(self.column - 1),
            "^".repeat(width),
        )
    }
}

/// The line of `source` that holds byte `offset`, without its line break (`\n` or `\r\n`); `None`
/// when `offset` is not a character boundary of `source`.
fn line_at(source: &str, offset: usize) -> Option<&str> {
    let (before, after) = (source.get(..offset)?, source.get(offset..)?);
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let end = offset + after.find('\n').unwrap_or(after.len());
    let line = &source[start..end];
    Some(line.strip_suffix('\r').unwrap_or(line))
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}:{}:{} {}", self.file, self.line, self.column, self.message)
        } else {
            write!(
                f,
                "{}:{}:{} {}: {}",
                self.file, self.line, self.column, self.path, self.message
            )
        }
    }
}

/// Every problem found in one file, in source order.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// The problems.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Turns byte offsets into 1-based line and character column.
#[derive(Debug)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    pub(crate) fn locate(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(source.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = source.get(start..offset).map_or(offset - start, |s| s.chars().count()) + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_character_columns() {
        let src = "a = 1\nbé = 2\n";
        let index = LineIndex::new(src);
        assert_eq!(index.locate(src, 0), (1, 1));
        assert_eq!(index.locate(src, 6), (2, 1));
        assert_eq!(index.locate(src, src.find('=').unwrap()), (1, 3));
        // `é` is two bytes but one column.
        assert_eq!(index.locate(src, src.rfind('=').unwrap()), (2, 4));
    }

    #[test]
    fn the_line_of_an_offset_is_found_around_it() {
        let src = "a = 1\r\nbé = 2\nlast";
        assert_eq!(line_at(src, 0), Some("a = 1"));
        assert_eq!(line_at(src, 3), Some("a = 1"));
        assert_eq!(line_at(src, 7), Some("bé = 2"));
        assert_eq!(line_at(src, 9), None, "inside `é`");
        assert_eq!(line_at(src, src.len()), Some("last"));
        assert_eq!(line_at("x\n", 2), Some(""));
        assert_eq!(line_at(src, src.len() + 1), None);
    }

    #[test]
    fn render_points_at_the_span() {
        let src = "x = 1\nname = \"Bad\"\n";
        let d = Diagnostic {
            file: "f.toml".into(),
            line: 2,
            column: 8,
            path: "name".into(),
            message: "bad".into(),
            span: 13..18,
        };
        assert_eq!(
            d.render(src),
            "f.toml:2:8 name: bad\n  |\n2 | name = \"Bad\"\n  |        ^^^^^"
        );
    }
}
