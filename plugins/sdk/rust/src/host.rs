//! Config, report, log and clock: the host functions that do not move messages.

use std::fmt;
use std::str::FromStr;

use crate::sys;

/// The config value of `key` as the host gives it (a TOML integer as decimal digits, a string
/// without quotes, a boolean as `true`/`false`), or `None` when the key is absent.
pub fn config_str(key: &str) -> Option<String> {
    let mut buf = vec![0u8; 64];
    loop {
        // SAFETY: `key` is a `&str` (UTF-8 in our memory); `buf` is `buf.len()` bytes we own
        // and lend to the host for this call only. Its length fits u32 (it is at most a length
        // the host returned as s32, or 64).
        let ret =
            unsafe { sys::config(key.as_ptr(), key.len(), buf.as_mut_ptr(), buf.len() as u32) };
        let len = usize::try_from(ret).ok()?;
        if len <= buf.len() {
            buf.truncate(len);
            return Some(match String::from_utf8(buf) {
                Ok(text) => text,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            });
        }
        // The value is longer than the buffer: ask again with room for all of it.
        buf.resize(len, 0);
    }
}

/// The config value of `key` parsed as `T` (surrounding whitespace ignored), or `None` when the
/// key is absent.
///
/// # Panics
/// When the value is present but does not parse: a plugin must not run on with a default the
/// scenario did not ask for. The panic message (on stderr, and logged) names the key and value;
/// in a release plugin (`panic = "abort"`) it traps.
pub fn config_parse<T>(key: &str) -> Option<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = config_str(key)?;
    match text.trim().parse() {
        Ok(value) => Some(value),
        Err(e) => {
            let msg = format!(
                "config `{key}` = {text:?} is not a valid {}: {e}",
                std::any::type_name::<T>()
            );
            log(Level::Error, &msg);
            panic!("{msg}")
        }
    }
}

/// The config value of `key` parsed as `T`, or `default` when the key is absent.
///
/// # Panics
/// As [`config_parse`], when the value does not parse.
pub fn config_or<T>(key: &str, default: T) -> T
where
    T: FromStr,
    T::Err: fmt::Display,
{
    config_parse(key).unwrap_or(default)
}

/// The config value of `key` as a string, or `default` when the key is absent.
pub fn config_str_or(key: &str, default: &str) -> String {
    config_str(key).unwrap_or_else(|| default.to_owned())
}

/// The config value of `key` when it is one of `choices`, or `choices[0]` when the key is
/// absent: for keys that select a mode, such as `check = "full" | "stamp" | "none"`.
///
/// # Panics
/// When the value is none of `choices` (as [`config_parse`] does), or `choices` is empty.
pub fn config_choice(key: &str, choices: &[&'static str]) -> &'static str {
    let Some(text) = config_str(key) else {
        return choices[0];
    };
    match choices.iter().find(|&&c| c == text.trim()) {
        Some(choice) => choice,
        None => {
            let msg = format!(
                "config `{key}` = {text:?} is none of {}",
                choices.join(" | ")
            );
            log(Level::Error, &msg);
            panic!("{msg}")
        }
    }
}

/// The config value of `key` as a `u64`; see [`config_parse`] (panics when malformed).
pub fn config_u64(key: &str) -> Option<u64> {
    config_parse(key)
}

/// The config value of `key` as an `i64`; see [`config_parse`] (panics when malformed).
pub fn config_i64(key: &str) -> Option<i64> {
    config_parse(key)
}

/// The config value of `key` as a `bool` (`true`/`false`); see [`config_parse`] (panics when
/// malformed).
pub fn config_bool(key: &str) -> Option<bool> {
    config_parse(key)
}

/// Records a figure for the run's report; a repeated key overwrites.
pub fn report(key: &str, value: i64) {
    // SAFETY: `key` is a `&str`: UTF-8 in our memory.
    unsafe { sys::report(key.as_ptr(), key.len(), value) }
}

/// Log levels of [`log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum Level {
    /// 0
    Error = 0,
    /// 1
    Warn = 1,
    /// 2
    Info = 2,
    /// 3
    Debug = 3,
    /// 4
    Trace = 4,
}

/// Writes a log line; the supervisor prints it on its stderr with the plugin's name.
pub fn log(level: Level, msg: &str) {
    // SAFETY: `msg` is a `&str`: UTF-8 in our memory.
    unsafe { sys::log(level as u32, msg.as_ptr(), msg.len()) }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine.
pub fn now() -> u64 {
    sys::now()
}
