//! Shared wording of numbers for the console and the CLI: counts with their noun, durations.
use std::time::Duration;

/// `1 user`, `2 users`, `1,234 users`: the count grouped by thousands and the noun in the
/// right number (`plural` when it is not just `noun` + `s`).
pub fn count(n: usize, noun: &str, plural: Option<&str>) -> String {
    let word = if n == 1 {
        noun.to_string()
    } else {
        plural.map_or_else(|| format!("{noun}s"), str::to_string)
    };
    format!("{} {word}", thousands(n))
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration as people say it: `45 s`, `12 min`, `2.5 h`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s.div_ceil(60))
    } else {
        format!("{:.1} h", s as f64 / 3600.0)
    }
}

/// An estimate of time left, as people say it: `under a second`, `about 40 s`, `about 3 min`,
/// `about 2.5 h`.
pub fn eta(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        "under a second".into()
    } else {
        format!("about {}", duration(d))
    }
}

/// A rate of changes: `6.5 changes/s`, `1 change/s`.
pub fn rate(per_sec: f64) -> String {
    if (per_sec - 1.0).abs() < 0.05 {
        "1 change/s".into()
    } else if per_sec >= 10.0 {
        format!("{per_sec:.0} changes/s")
    } else {
        format!("{per_sec:.1} changes/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations() {
        assert_eq!(count(1, "change", None), "1 change");
        assert_eq!(count(0, "change", None), "0 changes");
        assert_eq!(count(1234, "user", None), "1,234 users");
        assert_eq!(count(2, "entry", Some("entries")), "2 entries");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(duration(Duration::from_secs(45)), "45 s");
        assert_eq!(duration(Duration::from_secs(150)), "3 min");
        assert_eq!(duration(Duration::from_secs(9000)), "2.5 h");
        assert_eq!(eta(Duration::from_millis(400)), "under a second");
        assert_eq!(eta(Duration::from_secs(40)), "about 40 s");
        assert_eq!(eta(Duration::from_secs(150)), "about 3 min");
        assert_eq!(rate(6.54), "6.5 changes/s");
        assert_eq!(rate(1.0), "1 change/s");
        assert_eq!(rate(20.0), "20 changes/s");
    }
}
