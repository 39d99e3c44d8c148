//! Preflight over a 100k-user directory against 20 domains, with a known number of seeded bad
//! values of each kind. Prints the time as a ratio against a same-run baseline (one pass that
//! lower-cases every email) and the counts found per kind against the seeded counts; asserts
//! that every seeded value is found and nothing else (no false positives): correctness, not
//! timing.
//!
//! `cargo bench --bench preflight` (optionally `-- --users N --rounds R`).
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use m365sync::directory::{BindingState, DirectoryUser};
use m365sync::graph::{Domain, User};
use m365sync::sync::preflight::{
    check_group_name, preflight, Issue, PreflightOptions, Severity, TenantIndex,
};

fn user(id: i64, email: String) -> DirectoryUser {
    DirectoryUser {
        id,
        email,
        display_name: format!("User {id}"),
        given_name: None,
        surname: None,
        tenant_user_id: None,
        binding: BindingState::Unbound,
        want_bound: true,
        job_title: None,
        department: None,
        password_set_at: None,
        bound_via: Vec::new(),
        attributes: Default::default(),
    }
}

fn tuser(id: String, upn: String) -> User {
    User {
        id,
        mail: Some(upn.clone()),
        user_principal_name: upn,
        ..User::default()
    }
}

struct World {
    users: Vec<DirectoryUser>,
    domains: Vec<Domain>,
    live: Vec<User>,
    deleted: Vec<User>,
    opts: PreflightOptions,
    groups: Vec<(i64, String)>,
    /// (directory id, kind) of every seeded finding.
    seeded: HashSet<(i64, String)>,
}

/// Domains 0..=16 verified and enabled (valid users live there), 17 verified but not enabled,
/// 18 unverified, 19 federated.
fn world(n: usize) -> World {
    let dom = |i: usize| format!("dept{i:02}.contoso-example.com");
    let mut domains: Vec<Domain> = (0..20)
        .map(|i| Domain {
            id: dom(i),
            authentication_type: Some(if i == 19 { "Federated" } else { "Managed" }.into()),
            is_default: i == 0,
            is_initial: false,
            is_verified: i != 18,
        })
        .collect();
    domains[0].is_default = true;
    let per = n / 100; // 1% of each kind
    let mut users = Vec::with_capacity(n);
    let mut seeded = HashSet::new();
    let mut opts = PreflightOptions {
        enabled_domains: Some((0..20).filter(|i| *i != 17).map(dom).collect()),
        ..PreflightOptions::default()
    };
    let mut live = Vec::new();
    let mut deleted = Vec::new();
    let mut next_id = 0i64;
    let mut push = |users: &mut Vec<DirectoryUser>, email: String| -> i64 {
        next_id += 1;
        users.push(user(next_id, email));
        next_id
    };
    let mut seed = |id: i64, kind: &str| {
        seeded.insert((id, kind.to_string()));
    };
    // Seeded bad values, `per` of each kind, each on an otherwise valid user.
    for k in 0..per {
        let d = dom(k % 17);
        let id = push(&mut users, format!("bad.domain{k}@{}", dom(18)));
        seed(id, "upn-domain-unverified");
        let id = push(&mut users, format!("not.enabled{k}@{}", dom(17)));
        seed(id, "upn-domain-not-enabled");
        let id = push(&mut users, format!("fed{k}@{}", dom(19)));
        seed(id, "federated-domain-needs-immutable-id");
        let id = push(
            &mut users,
            if k % 2 == 0 {
                format!("pct{k}%x@{d}")
            } else {
                format!("ren\u{e9}e{k}@{d}")
            },
        );
        seed(id, "upn-invalid");
        let id = push(
            &mut users,
            if k % 2 == 0 {
                format!("sp ace{k}@{d}")
            } else {
                format!("par(en){k}@{d}")
            },
        );
        seed(id, "mailnickname-forbidden-char");
        let id = push(&mut users, format!("{}{k:06}@{d}", "l".repeat(59)));
        seed(id, "mailnickname-length");
        let id = push(&mut users, format!("dot{k}.@{d}"));
        seed(id, "mailnickname-leading-or-trailing-space-or-dot");
        // Duplicate emails: pairs, both flagged.
        if k % 2 == 0 {
            let a = push(&mut users, format!("twin{k}@{d}"));
            let b = push(&mut users, format!("TWIN{k}@{}", d.to_uppercase()));
            seed(a, "email-duplicate");
            seed(b, "email-duplicate");
            // Same alias in two domains: pairs, both warned.
            let a = push(&mut users, format!("alias{k}@{}", dom(k % 17)));
            let b = push(&mut users, format!("alias{k}@{}", dom((k + 1) % 17)));
            seed(a, "mailnickname-duplicate");
            seed(b, "mailnickname-duplicate");
        }
        let id = push(&mut users, format!("pwshort{k}@{d}"));
        opts.passwords.insert(id, format!("Ab1!{}", k % 10));
        seed(id, "password-length");
        let id = push(&mut users, format!("pwweak{k}@{d}"));
        opts.passwords.insert(id, format!("lowercaseonly{k}"));
        seed(id, "password-complexity");
        // An address held by a soft-deleted user.
        let addr = format!("gone{k}@{d}");
        let id = push(&mut users, addr.clone());
        deleted.push(tuser(format!("deleted-{k}"), addr));
        seed(id, "proxy-address-held");
        // A UPN held by an account linked to another directory user.
        let old = format!("old{k}@{d}");
        live.push(tuser(format!("linked-{k}"), old.clone()));
        let owner = push(&mut users, format!("renamed{k}@{d}"));
        users.last_mut().unwrap().tenant_user_id = Some(format!("linked-{k}"));
        let _ = owner;
        let id = push(&mut users, old);
        seed(id, "upn-exists");
    }
    // Valid users fill the rest: unique aliases, verified enabled domains; some on the
    // federated domain with an immutable id, some with good passwords, many with an
    // unlinked live account (the plan's takeover: not an issue).
    let mut k = 0usize;
    while users.len() < n {
        let email = format!("user{k}@{}", dom(k % 17));
        let id = push(&mut users, email.clone());
        match k % 10 {
            0 => {
                opts.passwords.insert(id, format!("Valid-Passw0rd-{k}"));
            }
            1 => {
                users.last_mut().unwrap().email = format!("fedok{k}@{}", dom(19));
                opts.immutable_ids.insert(id);
            }
            2..=5 => live.push(tuser(format!("live-{k}"), email)),
            _ => {}
        }
        k += 1;
    }
    // Groups: 10k names, 1% with stray spaces, 1% with forbidden alias characters.
    let mut groups = Vec::new();
    for g in 0..10_000i64 {
        let name = match g % 100 {
            0 => format!("Team {g} "),
            1 => format!("Sales ({g})"),
            _ => format!("Team {g}"),
        };
        let gid = 1_000_000 + g;
        match g % 100 {
            0 => seed(gid, "group-name-extra-space"),
            1 => seed(gid, "mailnickname-forbidden-char"),
            _ => {}
        }
        groups.push((gid, name));
    }
    World {
        users,
        domains,
        live,
        deleted,
        opts,
        groups,
        seeded,
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n = arg("--users", 100_000);
    let rounds = arg("--rounds", 7).max(1);
    let w = world(n);
    println!(
        "preflight: {} directory users, {} domains, {} live + {} soft-deleted tenant users, {} groups, {rounds} rounds",
        w.users.len(),
        w.domains.len(),
        w.live.len(),
        w.deleted.len(),
        w.groups.len()
    );

    // Baseline: one pass that lower-cases every email.
    let mut base = Vec::new();
    let mut pre = Vec::new();
    let mut idx_t = Vec::new();
    let mut users_t = Vec::new();
    let mut issues: Vec<Issue> = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let lowered: Vec<String> = w.users.iter().map(|u| u.email.to_lowercase()).collect();
        black_box(&lowered);
        base.push(t.elapsed());

        let t = Instant::now();
        let idx = TenantIndex::new(&w.live, &w.deleted);
        idx_t.push(t.elapsed());

        let t = Instant::now();
        let mut found = preflight(&w.users, &w.domains, Some(&idx), &w.opts);
        let tu = t.elapsed();
        for (gid, name) in &w.groups {
            found.extend(check_group_name(*gid, name, None));
        }
        pre.push(t.elapsed());
        users_t.push(tu);
        issues = black_box(found);
    }
    let (b, p, ix) = (median(base), median(pre), median(idx_t));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("baseline (lower-case every email): {:8.2} ms", ms(b));
    println!("tenant index (live + deleted):     {:8.2} ms", ms(ix));
    println!(
        "  of which preflight (users only):  {:8.2} ms  = {:.1}x baseline",
        ms(median(users_t.clone())),
        ms(median(users_t)) / ms(b).max(1e-9)
    );
    println!(
        "preflight (users + groups):        {:8.2} ms  = {:.1}x baseline  (goal < 200 ms: {})",
        ms(p),
        ms(p) / ms(b).max(1e-9),
        if ms(p) < 200.0 { "met" } else { "MISSED" }
    );

    // Correctness: found per kind == seeded per kind, and the same (id, kind) pairs.
    let found: HashSet<(i64, String)> = issues
        .iter()
        .map(|i| (i.directory_id, i.kind.clone()))
        .collect();
    assert_eq!(found.len(), issues.len(), "one issue per (user, kind)");
    let mut per_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (_, k) in &w.seeded {
        per_kind.entry(k.as_str()).or_default().0 += 1;
    }
    for (_, k) in &found {
        per_kind.entry(k.as_str()).or_default().1 += 1;
    }
    println!("{:<48} {:>7} {:>7}", "kind", "seeded", "found");
    for (k, (s, f)) in &per_kind {
        println!(
            "{k:<48} {s:>7} {f:>7}{}",
            if s == f { "" } else { "   <-- MISMATCH" }
        );
    }
    let false_pos: Vec<_> = found.difference(&w.seeded).take(5).collect();
    let missed: Vec<_> = w.seeded.difference(&found).take(5).collect();
    let valid = w.users.len() + w.groups.len()
        - w.seeded
            .iter()
            .map(|(id, _)| *id)
            .collect::<HashSet<_>>()
            .len();
    println!(
        "valid objects: {valid}; false positives: {}; missed: {}",
        found.difference(&w.seeded).count(),
        w.seeded.difference(&found).count()
    );
    assert!(false_pos.is_empty(), "false positives, e.g. {false_pos:?}");
    assert!(missed.is_empty(), "missed, e.g. {missed:?}");
    let warnings = issues
        .iter()
        .filter(|i| i.severity == Severity::Warning)
        .count();
    let by_kind: HashMap<&str, usize> = issues.iter().fold(HashMap::new(), |mut m, i| {
        *m.entry(i.kind.as_str()).or_default() += 1;
        m
    });
    assert_eq!(
        warnings,
        by_kind.get("mailnickname-duplicate").copied().unwrap_or(0)
    );
    println!(
        "ok: every seeded value found, no false positives ({} issues, {warnings} warnings)",
        issues.len()
    );
}
