//! The `[sweep]` table.

use toml::Spanned;

use crate::model::{MAX_SWEEP_POINTS, MAX_SWEEP_VALUES, SweepAxis};
use crate::overrides::settable_path;
use crate::source::{ScenarioError, Source};
use crate::validate::values::a_type;

/// The `[sweep]` table: `"PATH" = [values]`, or `NAME = { set = ["PATH", …], values = [...],
/// with = { "PATH" = [...], … } }`.
pub(super) fn validate_sweep(
    src: &Source<'_>,
    table: &Spanned<toml::Table>,
) -> Result<Vec<SweepAxis>, ScenarioError> {
    let at = |key: &str, message: String| src.at(table.span(), key, message);
    let mut axes = Vec::new();
    let mut points: usize = 1;
    for (name, value) in table.get_ref() {
        let key = format!("sweep.{name}");
        let Axis {
            paths,
            values,
            with,
        } = axis(name, value).map_err(|m| at(&key, m))?;
        if paths.is_empty() {
            return Err(at(&key, "an axis must set at least one path".into()));
        }
        for p in paths.iter().chain(with.iter().map(|(p, _)| p)) {
            if !settable_path(p) {
                return Err(at(
                    &key,
                    format!(
                        "`{p}` is not a path a sweep can set: use run.KEY, channel.N.KEY, \
                         plugin.NAME.KEY or plugin.NAME.config.KEY"
                    ),
                ));
            }
        }
        if values.is_empty() || values.len() > MAX_SWEEP_VALUES {
            return Err(at(
                &key,
                format!(
                    "an axis takes 1 ..= {MAX_SWEEP_VALUES} values, got {}",
                    values.len()
                ),
            ));
        }
        if let Some((p, w)) = with.iter().find(|(_, w)| w.len() != values.len()) {
            return Err(at(
                &key,
                format!(
                    "`with.\"{p}\"` has {} values; it needs one per value of the axis ({})",
                    w.len(),
                    values.len()
                ),
            ));
        }
        if let Some(bad) = values
            .iter()
            .chain(with.iter().flat_map(|(_, w)| w))
            .find(|v| matches!(v, toml::Value::Array(_) | toml::Value::Table(_)))
        {
            return Err(at(
                &key,
                format!(
                    "a sweep value is a number, string or boolean, got {}",
                    a_type(bad)
                ),
            ));
        }
        points = points.saturating_mul(values.len());
        if points > MAX_SWEEP_POINTS {
            return Err(at(
                &key,
                format!("the sweep has more than {MAX_SWEEP_POINTS} points; drop values or axes"),
            ));
        }
        axes.push(SweepAxis {
            name: name.clone(),
            paths,
            values: values.iter().map(toml::Value::to_string).collect(),
            with: with
                .into_iter()
                .map(|(p, w)| (p, w.iter().map(toml::Value::to_string).collect()))
                .collect(),
        });
    }
    Ok(axes)
}

/// An axis as written, before its paths and values are checked.
struct Axis {
    paths: Vec<String>,
    values: Vec<toml::Value>,
    /// Companion paths, each with one value per value of the axis.
    with: Vec<(String, Vec<toml::Value>)>,
}

/// An axis's paths and values: `[values]` sets the path that is its name; a table says both,
/// and may give companion paths that take their own value at each point (`with`).
/// The error is the message alone.
fn axis(name: &str, value: &toml::Value) -> Result<Axis, String> {
    Ok(match value {
        toml::Value::Array(values) => Axis {
            paths: vec![name.to_string()],
            values: values.clone(),
            with: Vec::new(),
        },
        toml::Value::Table(t) => {
            for k in t.keys() {
                if k != "set" && k != "values" && k != "with" {
                    return Err(format!(
                        "unknown key `{k}`: an axis table has `set`, `values` and `with`"
                    ));
                }
            }
            let set = match t.get("set") {
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .map(|p| p.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| "`set` must list paths as strings".to_string())?,
                Some(toml::Value::String(p)) => vec![p.clone()],
                _ => return Err("`set` must list the paths this axis sets".into()),
            };
            let values = match t.get("values") {
                Some(toml::Value::Array(v)) => v.clone(),
                _ => return Err("`values` must be an array".into()),
            };
            let with = match t.get("with") {
                None => Vec::new(),
                Some(toml::Value::Table(w)) => w
                    .iter()
                    .map(|(p, v)| match v {
                        toml::Value::Array(v) => Ok((p.clone(), v.clone())),
                        _ => Err(format!(
                            "`with.\"{p}\"` must be an array: one value per value of the axis"
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err("`with` must be a table: { \"PATH\" = [one value per \
                                value of the axis] }"
                        .into());
                }
            };
            Axis {
                paths: set,
                values,
                with,
            }
        }
        other => {
            return Err(format!(
                "expected an array of values or a table {{ set = [paths], values = [...] }}, \
                 got {}",
                a_type(other)
            ));
        }
    })
}
