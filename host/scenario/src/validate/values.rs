//! Checks of one value: sizes, durations, integers and names in range.

use std::time::Duration;

use toml::Spanned;

use crate::keys::KeyDecl;
use crate::source::{ScenarioError, Source};
use crate::units::{DURATION_HINT, SIZE_HINT, parse_duration, parse_size};

/// "an integer", "a string", ...
pub(super) fn a_type(value: &toml::Value) -> String {
    let name = value.type_str();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// A size within `decl`'s limits, in bytes: an integer, or a string for [`parse_size`].
pub(super) fn size_in(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    key: &str,
    decl: &KeyDecl,
) -> Result<u64, ScenarioError> {
    let bytes = size_value(src, value, key)?;
    if in_range(decl, bytes) {
        Ok(bytes)
    } else {
        Err(src.at(
            value.span(),
            key,
            format!(
                "size of {bytes} bytes is out of range; expected {}",
                decl.limits_text()
            ),
        ))
    }
}

/// Whether `n` is within `decl`'s limits.
pub(super) fn in_range(decl: &KeyDecl, n: u64) -> bool {
    decl.min.is_none_or(|min| n >= min) && decl.max.is_none_or(|max| n <= max)
}

/// A size in bytes: an integer, or a string for [`parse_size`].
pub(super) fn size_value(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    key: &str,
) -> Result<u64, ScenarioError> {
    Ok(match value.get_ref() {
        toml::Value::Integer(n) => u64::try_from(*n).map_err(|_| {
            let message = format!("size must be positive, got {n}; {SIZE_HINT}");
            src.at(value.span(), key, message)
        })?,
        toml::Value::String(s) => parse_size(s).map_err(|m| src.at(value.span(), key, m))?,
        other => {
            let message = format!("expected a size, got {}; {SIZE_HINT}", a_type(other));
            return Err(src.at(value.span(), key, message));
        }
    })
}

/// A duration: an integer number of seconds, or a string for [`parse_duration`].
pub(super) fn duration_value(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    key: &str,
) -> Result<Duration, ScenarioError> {
    match value.get_ref() {
        toml::Value::Integer(n) => Ok(Duration::from_secs(u64::try_from(*n).map_err(|_| {
            src.at(
                value.span(),
                key,
                format!("a duration must be positive, got {n}; {DURATION_HINT}"),
            )
        })?)),
        toml::Value::String(s) => parse_duration(s).map_err(|m| src.at(value.span(), key, m)),
        other => Err(src.at(
            value.span(),
            key,
            format!(
                "expected a duration, got {}; {DURATION_HINT}",
                a_type(other)
            ),
        )),
    }
}

/// An integer value within `decl`'s limits; messages call it by `decl`'s name.
pub(super) fn integer_in(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    key: &str,
    decl: &KeyDecl,
) -> Result<u64, ScenarioError> {
    let what = decl.name();
    let expected = format!("expected an integer in {}", decl.limits_text());
    match value.get_ref() {
        toml::Value::Integer(n) => match u64::try_from(*n) {
            Ok(n) if in_range(decl, n) => Ok(n),
            _ => Err(src.at(
                value.span(),
                key,
                format!("{what} {n} is out of range; {expected}"),
            )),
        },
        other => Err(src.at(
            value.span(),
            key,
            format!(
                "{what} must be an integer, got {}; {expected}",
                a_type(other)
            ),
        )),
    }
}

/// The item of `all` whose name is `value`.
pub(super) fn one_of<T: Copy>(
    src: &Source<'_>,
    value: &Spanned<String>,
    key: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, ScenarioError> {
    all.iter()
        .copied()
        .find(|&t| name(t) == value.get_ref())
        .ok_or_else(|| {
            let valid: Vec<&str> = all.iter().map(|&t| name(t)).collect();
            src.at(
                value.span(),
                key,
                format!(
                    "unknown value {:?}; expected one of {}",
                    value.get_ref(),
                    valid.join(", ")
                ),
            )
        })
}
