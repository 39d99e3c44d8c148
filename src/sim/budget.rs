//! Throttling the way Microsoft Graph's identity-and-access services do it (graph-notes §8): per
//! (application, tenant) pair, a budget of resource units (RU) per 10 s and a write quota per
//! 150 s. Both are sliding windows: a request that would go over gets `429` with `Retry-After` =
//! the whole seconds until enough of the window has expired, and costs nothing.
//!
//! Costs: `GET /users` (list) 2 RU, other GETs 1 RU, `$select` -1, `$top` < 20 -1, minimum 1;
//! POST/PATCH/PUT/DELETE 1 RU + 1 write. Defaults are the "L" tenant size: 8,000 RU / 10 s and
//! 3,000 writes / 150 s.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

pub const DEFAULT_RU_BUDGET: u32 = 8_000;
pub const DEFAULT_WRITE_BUDGET: u32 = 3_000;
pub const RU_WINDOW: Duration = Duration::from_secs(10);
pub const WRITE_WINDOW: Duration = Duration::from_secs(150);

/// Which quota refused a request: the value of `x-ms-throttle-information`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    ResourceUnits,
    Writes,
}

impl Exceeded {
    pub fn information(self) -> &'static str {
        match self {
            Exceeded::ResourceUnits => "ResourceUnitLimitExceeded",
            Exceeded::Writes => "WriteLimitExceeded",
        }
    }
}

#[derive(Debug, Default)]
struct Window {
    /// (when, cost), oldest first.
    events: VecDeque<(Instant, u32)>,
    sum: u64,
}

impl Window {
    fn expire(&mut self, now: Instant, len: Duration) {
        while let Some(&(t, c)) = self.events.front() {
            if now.duration_since(t) >= len {
                self.events.pop_front();
                self.sum -= u64::from(c);
            } else {
                break;
            }
        }
    }

    /// `None` if `cost` fits under `limit`, else how long until it would.
    fn wait_for(&self, now: Instant, len: Duration, cost: u32, limit: u32) -> Option<Duration> {
        let limit = u64::from(limit);
        if self.sum + u64::from(cost) <= limit {
            return None;
        }
        let mut freed = 0u64;
        for &(t, c) in &self.events {
            freed += u64::from(c);
            if self.sum - freed + u64::from(cost) <= limit {
                return Some((t + len).saturating_duration_since(now));
            }
        }
        // A cost above the whole budget never fits: ask for a full window.
        Some(len)
    }

    fn add(&mut self, now: Instant, cost: u32) {
        self.events.push_back((now, cost));
        self.sum += u64::from(cost);
    }
}

#[derive(Debug, Default)]
struct ClientWindows {
    ru: Window,
    writes: Window,
}

/// The quotas of every client seen so far.
#[derive(Debug)]
pub struct Budgets {
    pub ru_budget: u32,
    pub write_budget: u32,
    pub ru_window: Duration,
    pub write_window: Duration,
    clients: HashMap<String, ClientWindows>,
}

/// A refusal: why, and the `Retry-After` seconds (at least 1).
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    pub exceeded: Exceeded,
    pub retry_after_secs: u64,
}

impl Budgets {
    pub fn new(
        ru_budget: Option<u32>,
        write_budget: Option<u32>,
        write_window: Option<Duration>,
    ) -> Budgets {
        Budgets {
            ru_budget: ru_budget.unwrap_or(DEFAULT_RU_BUDGET).max(1),
            write_budget: write_budget.unwrap_or(DEFAULT_WRITE_BUDGET).max(1),
            ru_window: RU_WINDOW,
            write_window: write_window
                .filter(|w| !w.is_zero())
                .unwrap_or(WRITE_WINDOW),
            clients: HashMap::new(),
        }
    }

    /// Charges `ru` resource units (and one write if `write`) to `client`, or refuses.
    pub fn charge(&mut self, client: &str, ru: u32, write: bool) -> Result<(), Refusal> {
        let now = Instant::now();
        let (ru_window, write_window) = (self.ru_window, self.write_window);
        let (ru_budget, write_budget) = (self.ru_budget, self.write_budget);
        let w = self.clients.entry(client.to_owned()).or_default();
        w.ru.expire(now, ru_window);
        w.writes.expire(now, write_window);
        if write {
            if let Some(d) = w.writes.wait_for(now, write_window, 1, write_budget) {
                return Err(Refusal {
                    exceeded: Exceeded::Writes,
                    retry_after_secs: ceil_secs(d),
                });
            }
        }
        if let Some(d) = w.ru.wait_for(now, ru_window, ru, ru_budget) {
            return Err(Refusal {
                exceeded: Exceeded::ResourceUnits,
                retry_after_secs: ceil_secs(d),
            });
        }
        w.ru.add(now, ru);
        if write {
            w.writes.add(now, 1);
        }
        Ok(())
    }
}

fn ceil_secs(d: Duration) -> u64 {
    let ms = d.as_millis() as u64;
    ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_quota_refuses_then_frees() {
        let mut b = Budgets::new(None, Some(3), Some(Duration::from_millis(300)));
        for _ in 0..3 {
            assert!(b.charge("app", 1, true).is_ok());
        }
        let r = b.charge("app", 1, true).unwrap_err();
        assert_eq!(r.exceeded, Exceeded::Writes);
        assert_eq!(r.retry_after_secs, 1);
        // Another client has its own quota; reads still pass.
        assert!(b.charge("other", 1, true).is_ok());
        assert!(b.charge("app", 2, false).is_ok());
        std::thread::sleep(Duration::from_millis(320));
        assert!(b.charge("app", 1, true).is_ok());
    }

    #[test]
    fn resource_units_refuse_with_the_time_until_enough_frees() {
        let mut b = Budgets::new(Some(5), None, None);
        assert!(b.charge("app", 2, false).is_ok());
        assert!(b.charge("app", 2, false).is_ok());
        let r = b.charge("app", 2, false).unwrap_err();
        assert_eq!(r.exceeded, Exceeded::ResourceUnits);
        assert!((9..=10).contains(&r.retry_after_secs), "{r:?}");
        assert!(b.charge("app", 1, false).is_ok());
    }
}
