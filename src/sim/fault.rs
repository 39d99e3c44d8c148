//! Fault injection: rules that make chosen requests fail the way Microsoft's services do.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// What a matching request gets instead of its normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// `429 Too Many Requests` with a `Retry-After` header (Graph envelope `TooManyRequests`, or an
    /// OAuth `temporarily_unavailable` body on identity routes).
    Throttle { retry_after_secs: u64 },
    /// `503 Service Unavailable` (Graph envelope `serviceNotAvailable`, or OAuth `temporarily_unavailable`).
    Unavailable,
    /// The token endpoint answers `400 slow_down` (RFC 8628), whatever the request.
    SlowDown,
    /// The connection is dropped without an answer.
    Reset,
}

/// Which matching requests a rule hits. Counting starts when the rule is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultWhen {
    /// Only the n-th matching request (1-based).
    Nth(usize),
    /// The next k matching requests.
    Next(usize),
    /// Every matching request.
    Always,
}

/// One fault rule: method + path prefix, which occurrence(s), and what happens.
///
/// CLI syntax (`FromStr`): `[METHOD] PATH-PREFIX [WHEN] KIND`, whitespace separated.
/// - METHOD: `GET`, `POST`, `PATCH`, `PUT`, `DELETE`, ... or `*`/`ANY`; omitted = any method.
/// - PATH-PREFIX: starts with `/`, matched against the request path (no query), e.g. `/v1.0/users`.
/// - WHEN: `#N` = only the N-th matching request; `nextK` (or `next:K`) = the next K matching
///   requests; `always` (or `*`) = every matching request. Omitted = `next1`.
/// - KIND: `429` or `429:SECS` (Retry-After SECS, default 1), `503`, `slow_down`, `reset`.
///
/// Examples: `GET /v1.0/users #2 429:1`, `POST /contoso/oauth2/v2.0/token next3 slow_down`,
/// `/v1.0 always 503`, `GET /v1.0/users next2 reset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Upper-case HTTP method; `None` matches any method.
    pub method: Option<String>,
    pub path_prefix: String,
    pub when: FaultWhen,
    pub kind: FaultKind,
}

impl FaultRule {
    fn new(method: &str, path_prefix: &str, when: FaultWhen, kind: FaultKind) -> FaultRule {
        let m = method.trim().to_ascii_uppercase();
        FaultRule {
            method: if m.is_empty() || m == "*" || m == "ANY" {
                None
            } else {
                Some(m)
            },
            path_prefix: path_prefix.to_owned(),
            when,
            kind,
        }
    }
    /// Only the n-th (1-based) request matching `method` (`"*"` = any) and `path_prefix`.
    pub fn nth(method: &str, path_prefix: &str, n: usize, kind: FaultKind) -> FaultRule {
        FaultRule::new(method, path_prefix, FaultWhen::Nth(n), kind)
    }
    /// The next `k` matching requests.
    pub fn next(method: &str, path_prefix: &str, k: usize, kind: FaultKind) -> FaultRule {
        FaultRule::new(method, path_prefix, FaultWhen::Next(k), kind)
    }
    /// Every matching request.
    pub fn always(method: &str, path_prefix: &str, kind: FaultKind) -> FaultRule {
        FaultRule::new(method, path_prefix, FaultWhen::Always, kind)
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.starts_with(&self.path_prefix)
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = self.method.as_deref().unwrap_or("*");
        let when = match self.when {
            FaultWhen::Nth(n) => format!("#{n}"),
            FaultWhen::Next(k) => format!("next{k}"),
            FaultWhen::Always => "always".to_owned(),
        };
        let kind = match &self.kind {
            FaultKind::Throttle { retry_after_secs } => format!("429:{retry_after_secs}"),
            FaultKind::Unavailable => "503".to_owned(),
            FaultKind::SlowDown => "slow_down".to_owned(),
            FaultKind::Reset => "reset".to_owned(),
        };
        write!(f, "{method} {} {when} {kind}", self.path_prefix)
    }
}

impl FromStr for FaultRule {
    type Err = String;

    fn from_str(s: &str) -> Result<FaultRule, String> {
        let usage =
            "expected `[METHOD] /path-prefix [#N|nextK|always] 429[:secs]|503|slow_down|reset`, \
                     e.g. `GET /v1.0/users #2 429:1`";
        let mut toks: Vec<&str> = s.split_whitespace().collect();
        if toks.is_empty() {
            return Err(format!("empty fault rule: {usage}"));
        }
        let method = if toks[0].starts_with('/') {
            "*"
        } else {
            toks.remove(0)
        };
        if method != "*"
            && !method.eq_ignore_ascii_case("any")
            && !method.chars().all(|c| c.is_ascii_alphabetic())
        {
            return Err(format!("bad method `{method}`: {usage}"));
        }
        if toks.is_empty() || !toks[0].starts_with('/') {
            return Err(format!("missing path prefix: {usage}"));
        }
        let path = toks.remove(0);
        let kind_tok = toks
            .pop()
            .ok_or_else(|| format!("missing fault kind: {usage}"))?;
        let when = match toks.as_slice() {
            [] => FaultWhen::Next(1),
            [w] => parse_when(w).ok_or_else(|| format!("bad occurrence `{w}`: {usage}"))?,
            _ => return Err(format!("too many words in `{s}`: {usage}")),
        };
        let kind =
            parse_kind(kind_tok).ok_or_else(|| format!("bad fault kind `{kind_tok}`: {usage}"))?;
        Ok(FaultRule::new(method, path, when, kind))
    }
}

fn parse_when(w: &str) -> Option<FaultWhen> {
    let lw = w.to_ascii_lowercase();
    if lw == "always" || lw == "*" {
        return Some(FaultWhen::Always);
    }
    if let Some(n) = lw.strip_prefix('#') {
        return n.parse().ok().filter(|n| *n > 0).map(FaultWhen::Nth);
    }
    if let Some(k) = lw.strip_prefix("next") {
        let k = k.trim_start_matches(':');
        if k.is_empty() {
            return Some(FaultWhen::Next(1));
        }
        return k.parse().ok().map(FaultWhen::Next);
    }
    None
}

fn parse_kind(k: &str) -> Option<FaultKind> {
    let lk = k.to_ascii_lowercase();
    let (head, arg) = match lk.split_once(':') {
        Some((h, a)) => (h, Some(a)),
        None => (lk.as_str(), None),
    };
    match head {
        "429" | "throttle" => {
            let secs = match arg {
                Some(a) => a.parse().ok()?,
                None => 1,
            };
            Some(FaultKind::Throttle {
                retry_after_secs: secs,
            })
        }
        "503" | "unavailable" if arg.is_none() => Some(FaultKind::Unavailable),
        "slow_down" | "slowdown" if arg.is_none() => Some(FaultKind::SlowDown),
        "reset" if arg.is_none() => Some(FaultKind::Reset),
        _ => None,
    }
}

#[derive(Debug)]
struct RuleState {
    rule: FaultRule,
    seen: usize,
    fired: usize,
}

/// A cheap, clonable handle on the running simulator's fault rules.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    rules: Arc<Mutex<Vec<RuleState>>>,
}

impl FaultPlan {
    pub(crate) fn with_rules(rules: Vec<FaultRule>) -> FaultPlan {
        let plan = FaultPlan::default();
        for r in rules {
            plan.add(r);
        }
        plan
    }

    /// Adds a rule; its occurrence counting starts now.
    pub fn add(&self, rule: FaultRule) {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(RuleState {
                rule,
                seen: 0,
                fired: 0,
            });
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The rules as they are now (for display).
    pub fn rules(&self) -> Vec<FaultRule> {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| r.rule.clone())
            .collect()
    }

    /// Counts the request against every matching rule; the first rule that fires decides.
    pub(crate) fn check(&self, method: &str, path: &str) -> Option<FaultKind> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let mut hit = None;
        for r in rules.iter_mut() {
            if !r.rule.matches(method, path) {
                continue;
            }
            r.seen += 1;
            if hit.is_some() {
                continue;
            }
            let fire = match r.rule.when {
                FaultWhen::Nth(n) => r.seen == n,
                FaultWhen::Next(k) => r.fired < k,
                FaultWhen::Always => true,
            };
            if fire {
                r.fired += 1;
                hit = Some(r.rule.kind.clone());
            }
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_syntax() {
        let r: FaultRule = "GET /v1.0/users #2 429:1".parse().unwrap();
        assert_eq!(
            r,
            FaultRule::nth(
                "GET",
                "/v1.0/users",
                2,
                FaultKind::Throttle {
                    retry_after_secs: 1
                }
            )
        );
        let r: FaultRule = "POST /contoso/oauth2/v2.0/token next3 slow_down"
            .parse()
            .unwrap();
        assert_eq!(
            r,
            FaultRule::next("POST", "/contoso/oauth2/v2.0/token", 3, FaultKind::SlowDown)
        );
        let r: FaultRule = "/v1.0 always 503".parse().unwrap();
        assert_eq!(r, FaultRule::always("*", "/v1.0", FaultKind::Unavailable));
        let r: FaultRule = "get /v1.0/users reset".parse().unwrap();
        assert_eq!(
            r,
            FaultRule::next("GET", "/v1.0/users", 1, FaultKind::Reset)
        );
        let r: FaultRule = "* /v1.0 next:2 429".parse().unwrap();
        assert_eq!(r.to_string(), "* /v1.0 next2 429:1");
        for bad in [
            "",
            "GET",
            "GET users 429",
            "GET /x #0 429",
            "GET /x soon 429",
            "GET /x 418",
            "GET /x a b 503",
        ] {
            assert!(bad.parse::<FaultRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn occurrences() {
        let plan = FaultPlan::with_rules(vec![
            FaultRule::nth("GET", "/a", 2, FaultKind::Reset),
            FaultRule::next("*", "/b", 2, FaultKind::Unavailable),
        ]);
        assert_eq!(plan.check("GET", "/a/x"), None);
        assert_eq!(plan.check("GET", "/a/x"), Some(FaultKind::Reset));
        assert_eq!(plan.check("GET", "/a/x"), None);
        assert_eq!(plan.check("POST", "/a"), None);
        assert_eq!(plan.check("POST", "/b"), Some(FaultKind::Unavailable));
        assert_eq!(plan.check("GET", "/b"), Some(FaultKind::Unavailable));
        assert_eq!(plan.check("GET", "/b"), None);
    }
}

/// Random faults drawn from a seeded generator, so a run can be replayed with `--fault-seed`.
///
/// - `error_rate`: that fraction of Graph requests (each `$batch` item counts on its own; the
///   `$batch` envelope itself does not) gets `503 serviceNotAvailable` or `500 generalException`
///   (half each) and is NOT applied: a 5xx means nothing happened.
/// - `reset_rate`: that fraction of Graph requests (HTTP requests, not batch items) is answered by
///   dropping the connection before anything is done.
/// - `ambiguous_rate`: that fraction of HTTP requests carrying a write (a direct POST/PATCH/DELETE,
///   or a `$batch` with at least one write) IS applied, then the connection is dropped before the
///   answer: the client cannot know whether it happened. The draw is made for every such request;
///   the drop happens only when a write was actually applied (a refused write is answered).
#[derive(Debug)]
pub struct Chaos {
    pub error_rate: f64,
    pub reset_rate: f64,
    pub ambiguous_rate: f64,
    rng: super::util::SplitMix,
}

impl Chaos {
    pub fn new(error_rate: f64, reset_rate: f64, ambiguous_rate: f64, seed: Option<u64>) -> Chaos {
        let seed = seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
        let clamp = |p: f64| if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        Chaos {
            error_rate: clamp(error_rate),
            reset_rate: clamp(reset_rate),
            ambiguous_rate: clamp(ambiguous_rate),
            rng: super::util::SplitMix(seed),
        }
    }

    /// True with probability `p`; draws nothing when `p` is 0 (so adding a rate leaves the
    /// other draws of a seeded run unchanged only when it is 0).
    fn roll(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let x = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    /// `Some(true)` = 503, `Some(false)` = 500, `None` = no error.
    pub fn error(&mut self) -> Option<bool> {
        let p = self.error_rate;
        if self.roll(p) {
            Some(self.rng.next_u64() & 1 == 0)
        } else {
            None
        }
    }

    pub fn reset(&mut self) -> bool {
        let p = self.reset_rate;
        self.roll(p)
    }

    pub fn ambiguous(&mut self) -> bool {
        let p = self.ambiguous_rate;
        self.roll(p)
    }
}
