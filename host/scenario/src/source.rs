//! Where errors point: [`ScenarioError`], the line of a byte offset, and the dotted key
//! path of a TOML error.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

/// A scenario that could not be read, parsed or validated.
///
/// `Display`: "{file}:{line}: {key}: {message}" where key is the dotted TOML key path
/// (e.g. `channel[0].slot_size`, `plugin[1].wasm`, `run.wait`), and message says what was
/// wrong and what would be valid. For TOML syntax errors, the line where it happened.
/// Parts that are unknown are left out.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_error(.file, *.line, .key.as_deref(), .message))]
pub struct ScenarioError {
    /// The scenario file.
    pub file: PathBuf,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// Dotted key path such as `channel[0].slot_size`, when known.
    pub key: Option<String>,
    /// What was wrong and what would be valid.
    pub message: String,
}

/// `file:line: key: message`, leaving out the parts that are unknown.
fn render_error(file: &Path, line: Option<usize>, key: Option<&str>, message: &str) -> String {
    let mut s = file.display().to_string();
    if let Some(line) = line {
        s.push_str(&format!(":{line}"));
    }
    if let Some(key) = key {
        s.push_str(&format!(": {key}"));
    }
    s.push_str(&format!(": {message}"));
    s
}

/// Where errors point: the file name for messages and the text for line numbers.
pub(crate) struct Source<'a> {
    pub(crate) file: &'a Path,
    pub(crate) text: &'a str,
}

impl Source<'_> {
    /// The 1-based line of byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// An error at `span` (when known) for `key` (when known).
    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        message: String,
    ) -> ScenarioError {
        ScenarioError {
            file: self.file.to_path_buf(),
            line: span.map(|s| self.line_of(s.start)),
            key,
            message,
        }
    }

    /// An error at `span` for `key`.
    pub(crate) fn at(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        self.error(Some(span), Some(key.into()), message.into())
    }

    /// Converts a toml error: the span gives the line, and the parsed document (when there
    /// is one) gives the key path at that span.
    pub(crate) fn toml_error(
        &self,
        error: &toml::de::Error,
        doc: Option<&toml::de::DeTable<'_>>,
    ) -> ScenarioError {
        let mut message = error.message().trim().to_owned();
        // An empty span means "the whole document" (toml reports the root that way).
        let span = error.span().filter(|s| !s.is_empty() || doc.is_none());
        let mut key = match (doc, &span) {
            (Some(doc), Some(span)) => locate_in_table(doc, span.start, ""),
            _ => None,
        };
        if let Some(rest) = message.strip_prefix("missing field ") {
            let field = rest.trim_matches('`').to_owned();
            key = Some(join_key(key.as_deref().unwrap_or(""), &field));
            message = format!("missing required key `{field}`");
        } else if let Some(rest) = message.strip_prefix("unknown field ") {
            message = format!("unknown key {rest}");
        } else if message == "duplicate key"
            && let Some(dup) = span.as_ref().and_then(|s| self.text.get(s.clone()))
        {
            message = format!("duplicate key `{dup}`");
        }
        if matches!(key.as_deref(), Some("plugin" | "channel"))
            && message.contains("expected a sequence")
        {
            let table = key.as_deref().unwrap_or_default();
            message.push_str(&format!(
                "; write each {table} as an array-of-tables entry, [[{table}]], not [{table}]"
            ));
        }
        self.error(span, key, message)
    }
}

/// The deepest key path whose key or value span contains `offset`.
pub(crate) fn locate_in_table(
    table: &toml::de::DeTable<'_>,
    offset: usize,
    prefix: &str,
) -> Option<String> {
    for (key, value) in table.iter() {
        let path = join_key(prefix, key.get_ref());
        if let Some(deeper) = locate_in_value(value, offset, &path) {
            return Some(deeper);
        }
        if contains(&key.span(), offset) || contains(&value.span(), offset) {
            return Some(path);
        }
    }
    None
}

fn locate_in_value(
    value: &Spanned<toml::de::DeValue<'_>>,
    offset: usize,
    path: &str,
) -> Option<String> {
    match value.get_ref() {
        toml::de::DeValue::Table(table) => locate_in_table(table, offset, path),
        toml::de::DeValue::Array(items) => {
            // Items of an array of tables span only their `[[header]]`, so look inside
            // every item, not just the one whose span matches.
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                if let Some(deeper) = locate_in_value(item, offset, &item_path) {
                    return Some(deeper);
                }
                if contains(&item.span(), offset) {
                    return Some(item_path);
                }
            }
            None
        }
        _ => None,
    }
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end
}

/// `prefix.key`, quoting `key` when it is not a bare TOML key.
pub(crate) fn join_key(prefix: &str, key: &str) -> String {
    let key = if is_bare_key(key) {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

/// Whether `s` is a bare TOML key: letters, digits, `_` and `-`.
pub(crate) fn is_bare_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths() {
        assert_eq!(join_key("", "run"), "run");
        assert_eq!(
            join_key("plugin[0].config", "a b"),
            "plugin[0].config.\"a b\""
        );
        let text = "name = \"x\"\n[[plugin]]\nname = \"a\"\n[[plugin]]\nname = \"b\"\nconfig = { k = 1 }\n";
        let doc = toml::de::DeTable::parse(text).unwrap();
        let at = |needle: &str| locate_in_table(doc.get_ref(), text.rfind(needle).unwrap(), "");
        assert_eq!(at("k =").as_deref(), Some("plugin[1].config.k"));
        assert_eq!(at("\"a\"").as_deref(), Some("plugin[0].name"));
        assert_eq!(at("[[plugin]]").as_deref(), Some("plugin[1]"));
    }
}
