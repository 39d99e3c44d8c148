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

/// The local time zone's offset from UTC at unix second `at`, in seconds (`localtime_r`,
/// which reads `TZ` and is safe with threads); 0 when the C library cannot tell.
pub fn local_offset_secs(at: i64) -> i32 {
    let t: libc::time_t = at as libc::time_t;
    // SAFETY: `tm` is plain data the call fills; `localtime_r` keeps no pointer to either.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff as i32
    } else {
        0
    }
}

/// `HH:MM` of unix second `at` at `offset_secs` from UTC (the console's "as of 14:02").
pub fn clock(at: i64, offset_secs: i32) -> String {
    let local = at + i64::from(offset_secs);
    let mins = local.rem_euclid(86_400) / 60;
    format!("{:02}:{:02}", mins / 60, mins % 60)
}

/// A moment for stderr and logs: RFC 3339 in UTC, to the second.
pub fn utc_stamp(t: time::OffsetDateTime) -> String {
    use time::format_description::well_known::Rfc3339;
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
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

    #[test]
    fn clock_and_stamp() {
        // 2026-12-04 14:02:59 UTC
        let t = 1_796_392_979;
        assert_eq!(clock(t, 0), "14:02");
        assert_eq!(clock(t, 3600), "15:02");
        assert_eq!(clock(t, -15 * 3600), "23:02");
        let at = time::OffsetDateTime::from_unix_timestamp(t).unwrap();
        assert_eq!(utc_stamp(at), "2026-12-04T14:02:59Z");
    }
}
