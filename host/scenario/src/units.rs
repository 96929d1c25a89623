//! Size and duration syntax: `"4KiB"`, `"60s"` read, and sizes and times shown to people
//! (`1.5 MiB`, `12.3 µs`): the one home of both, for the scenario's messages, the runtime's
//! and the report's.

use std::time::Duration;

pub(crate) const SIZE_HINT: &str =
    "sizes look like 4096, \"4KiB\", \"1MiB\" (units: B, KiB, MiB, GiB)";
pub(crate) const DURATION_HINT: &str =
    "durations look like \"500ms\", \"60s\", \"2m\" or 60 (seconds)";

/// Parses a size: `"4096"`, `"4096B"`, `"4KiB"`, `"1MiB"` or `"1GiB"` (a space before the
/// unit is allowed). Returns bytes; the error says what sizes look like.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = split_number(text);
    let n = parse_digits(digits).ok_or_else(|| format!("malformed size {text:?}; {SIZE_HINT}"))?;
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "K" | "k" | "KB" | "kB" | "kb" | "Kb" | "KIB" | "kib" | "Ki" => {
            return Err(format!(
                "unknown unit {unit:?}, did you mean \"KiB\"? {SIZE_HINT}"
            ));
        }
        "M" | "m" | "MB" | "mb" | "Mb" | "MIB" | "mib" | "Mi" => {
            return Err(format!(
                "unknown unit {unit:?}, did you mean \"MiB\"? {SIZE_HINT}"
            ));
        }
        "G" | "g" | "GB" | "gb" | "Gb" | "GIB" | "gib" | "Gi" => {
            return Err(format!(
                "unknown unit {unit:?}, did you mean \"GiB\"? {SIZE_HINT}"
            ));
        }
        _ => return Err(format!("malformed size {text:?}; {SIZE_HINT}")),
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// Parses a duration: `"500ms"`, `"60s"`, `"2m"`, or bare digits meaning seconds (a space
/// before the unit is allowed). Zero is accepted here; callers decide whether it is valid.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = split_number(text);
    let n = parse_digits(digits)
        .ok_or_else(|| format!("malformed duration {text:?}; {DURATION_HINT}"))?;
    let too_long = || format!("duration {text:?} is too long");
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.checked_mul(60).ok_or_else(too_long)?)),
        "h" => Ok(Duration::from_secs(
            n.checked_mul(3600).ok_or_else(too_long)?,
        )),
        _ => Err(format!(
            "unknown unit {unit:?} in duration {text:?}; {DURATION_HINT}"
        )),
    }
}

/// Splits `"64 KiB"` into `("64", "KiB")`.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, rest) = text.split_at(end);
    (digits, rest.strip_prefix(' ').unwrap_or(rest))
}

fn parse_digits(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.parse().ok()
}

/// `64 KiB`, `4 GiB`, `100 B`: a limit for messages.
pub(crate) fn show_size(b: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if b >= 1 << shift && b.is_multiple_of(1 << shift) {
            return format!("{} {unit}", b >> shift);
        }
    }
    format!("{b} B")
}

/// `1.5 MiB`, `64 B`: bytes for people.
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `850 ns`, `12.3 µs`, `4.56 ms`: nanoseconds for people.
pub fn human_ns(ns: u64) -> String {
    match ns {
        0..=9_999 => format!("{ns} ns"),
        10_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in [
            "",
            "KiB",
            "4.5KiB",
            "-1",
            "4 kb",
            "4KB",
            "4Kib",
            "x",
            "4  KiB",
            " 4",
            "99999999999999999999",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(
                err.contains("sizes look like") || err.contains("too large"),
                "{bad}: {err}"
            );
        }
        assert!(
            parse_size("4KB")
                .unwrap_err()
                .contains("did you mean \"KiB\"")
        );
        assert!(
            parse_size("18446744073709551615GiB")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "s", "1.5s", "10x", "-3s", "1 d"] {
            assert!(
                parse_duration(bad)
                    .unwrap_err()
                    .contains("durations look like"),
                "{bad}"
            );
        }
        assert!(
            parse_duration("18446744073709551615m")
                .unwrap_err()
                .contains("too long")
        );
    }
}
