//! The `[run]` table.

use std::time::Duration;

use toml::Spanned;

use crate::keys;
use crate::model::{BackendKind, Host, MAX_REPEAT, RunConfig, Verify, WaitMode, parse_endpoint};
use crate::raw::RawRun;
use crate::source::{ScenarioError, Source};
use crate::units::{DURATION_HINT, parse_duration};
use crate::validate::values::{a_type, duration_value, integer_in, one_of};

/// The `[run]` table's own keys, each checked alone.
pub(super) fn validate_run(src: &Source<'_>, raw: &RawRun) -> Result<RunConfig, ScenarioError> {
    let mut run = RunConfig::default();
    if let Some(list) = &raw.backends {
        run.backends = backends(src, list)?;
    }
    if let Some(value) = &raw.repeat {
        let repeat = integer_in(src, value, "run.repeat", &keys::REPEAT)?;
        // `integer_in` bounded it by MAX_REPEAT, a u32.
        run.repeat = Some(u32::try_from(repeat).unwrap_or(MAX_REPEAT));
    }
    if let Some(value) = &raw.min_time {
        run.min_time = min_time(src, value)?;
    }
    if let Some(value) = &raw.timeout {
        run.timeout = timeout(src, value)?;
    }
    if let Some(wait) = &raw.wait {
        run.wait = one_of(src, wait, "run.wait", &WaitMode::ALL, |w| w.name())?;
    }
    if let Some(verify) = &raw.verify {
        run.verify = one_of(src, verify, "run.verify", &Verify::ALL, |v| v.name())?;
    }
    if let Some(value) = &raw.seed {
        run.seed = integer_in(src, value, "run.seed", &keys::SEED)?;
    }
    if let Some(listen) = &raw.listen {
        run.listen = Some(
            parse_endpoint(listen.get_ref()).map_err(|m| src.at(listen.span(), "run.listen", m))?,
        );
    }
    if let Some(value) = &raw.seal {
        run.seal = match value.get_ref() {
            toml::Value::Boolean(b) => *b,
            other => {
                return Err(src.at(
                    value.span(),
                    "run.seal",
                    format!("expected true or false, found {}", a_type(other)),
                ));
            }
        };
    }
    Ok(run)
}

/// `run.backends`: known names, each once, at least one.
fn backends(
    src: &Source<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<BackendKind>, ScenarioError> {
    let valid = BackendKind::CHOICES.map(BackendKind::name).join(", ");
    if list.get_ref().is_empty() {
        return Err(src.at(
            list.span(),
            "run.backends",
            format!("empty list; expected some of {valid}, e.g. [\"shm\", \"msg\"]"),
        ));
    }
    let mut backends = Vec::with_capacity(list.get_ref().len());
    for (j, name) in list.get_ref().iter().enumerate() {
        let key = format!("run.backends[{j}]");
        let Some(kind) = BackendKind::from_name(name.get_ref()) else {
            return Err(src.at(
                name.span(),
                key,
                format!(
                    "unknown backend {:?}; expected one of {valid}",
                    name.get_ref()
                ),
            ));
        };
        if backends.contains(&kind) {
            return Err(src.at(
                name.span(),
                key,
                format!(
                    "backend {:?} is listed twice; list each backend once",
                    kind.name()
                ),
            ));
        }
        backends.push(kind);
    }
    Ok(backends)
}

/// `run.min_time`: a duration within [`keys::MIN_TIME`]'s limits (zero allowed: rounds only).
fn min_time(src: &Source<'_>, value: &Spanned<toml::Value>) -> Result<Duration, ScenarioError> {
    let d = duration_value(src, value, "run.min_time")?;
    let (_, max) = keys::MIN_TIME.duration_bounds();
    if d > max {
        return Err(src.at(
            value.span(),
            "run.min_time",
            format!(
                "min_time {d:?} is longer than the largest accepted, {} s",
                max.as_secs()
            ),
        ));
    }
    Ok(d)
}

/// `run.timeout`: a duration within [`keys::TIMEOUT`]'s limits.
fn timeout(src: &Source<'_>, value: &Spanned<toml::Value>) -> Result<Duration, ScenarioError> {
    let timeout = match value.get_ref() {
        toml::Value::Integer(n) => Duration::from_secs(u64::try_from(*n).map_err(|_| {
            src.at(
                value.span(),
                "run.timeout",
                format!("timeout must be positive, got {n}; {DURATION_HINT}"),
            )
        })?),
        toml::Value::String(s) => {
            parse_duration(s).map_err(|m| src.at(value.span(), "run.timeout", m))?
        }
        other => {
            return Err(src.at(
                value.span(),
                "run.timeout",
                format!(
                    "expected a duration, got {}; {DURATION_HINT}",
                    a_type(other)
                ),
            ));
        }
    };
    let (min, max) = keys::TIMEOUT.duration_bounds();
    // Durations are whole milliseconds, so below the 1 ms minimum is zero.
    if timeout < min {
        return Err(src.at(
            value.span(),
            "run.timeout",
            format!("timeout must be greater than zero; {DURATION_HINT}"),
        ));
    }
    if timeout > max {
        return Err(src.at(
            value.span(),
            "run.timeout",
            format!(
                "timeout {timeout:?} is longer than the largest accepted, {}h (7 days)",
                max.as_secs() / 3600
            ),
        ));
    }
    Ok(timeout)
}

/// What `[[host]]` tables change in `[run]`: the default backends, and whether `listen` may be
/// given.
pub(super) fn host_defaults(
    src: &Source<'_>,
    mut run: RunConfig,
    raw: Option<&RawRun>,
    hosts: &[Host],
) -> Result<RunConfig, ScenarioError> {
    if !hosts.is_empty() && raw.and_then(|r| r.backends.as_ref()).is_none() {
        run.backends = BackendKind::DEFAULT_HOSTS.to_vec();
    }
    if let Some(listen) = raw.and_then(|r| r.listen.as_ref())
        && hosts.is_empty()
    {
        return Err(src.at(
            listen.span(),
            "run.listen",
            "`listen` is this machine's endpoint for a scenario with [[host]] tables, and \
             this one has none; remove it or add the hosts",
        ));
    }
    if let Some(seal) = raw.and_then(|r| r.seal.as_ref())
        && !run.seal
        && !hosts.is_empty()
    {
        return Err(src.at(
            seal.span(),
            "run.seal",
            "`seal = false` leaves the links between plugins unencrypted and open to anyone \
             who can reach their ports; it is only for measuring what TLS costs on this \
             machine, and this scenario has [[host]] tables: remove it, or the hosts",
        ));
    }
    Ok(run)
}
