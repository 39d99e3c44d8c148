//! The catalog: every kind parses, has steps and valid fix actions, covers what the Errors tab
//! explains today (app::explain), and is produced by at least one classification or preflight
//! input.
#[path = "diagnose_common/cases.rs"]
mod cases;

use std::collections::BTreeSet;

use m365sync::diagnose::catalog::CATALOG_TOML;
use m365sync::diagnose::{Catalog, FixAction};

#[test]
fn catalog_parses_and_every_kind_has_steps() {
    let c = Catalog::load().expect("assets/errors.toml is valid");
    assert!(c.kinds().count() >= 20);
    for e in c.entries() {
        assert!(!e.steps.is_empty(), "{}", e.id);
        assert!(
            !e.title.is_empty() && !e.what.is_empty() && !e.why.is_empty(),
            "{}",
            e.id
        );
        assert!(e.title.len() <= 70, "{}: title too long for the list", e.id);
    }
    for k in [
        "upn-domain-unverified",
        "upn-invalid",
        "mailnickname-forbidden-char",
        "mailnickname-length",
        "mailnickname-leading-or-trailing-space-or-dot",
        "group-name-extra-space",
        "password-length",
        "password-complexity",
        "email-exists",
        "upn-exists",
        "proxy-address-held",
        "federated-domain-needs-immutable-id",
        "insufficient-privileges",
        "token-expired",
        "consent-missing",
        "throttled",
        "service-unavailable",
        "tenant-not-supported",
        "unknown",
    ] {
        assert!(c.get(k).is_some(), "required kind {k} missing");
    }
    // Every fix action is offered by some kind.
    let offered: BTreeSet<FixAction> = c
        .entries()
        .iter()
        .flat_map(|e| e.fix.into_iter().chain(e.also.iter().copied()))
        .collect();
    assert_eq!(offered.len(), FixAction::ALL.len(), "{offered:?}");
    assert_eq!(
        c.get("proxy-address-held").unwrap().fix,
        Some(FixAction::RestoreDeleted)
    );
    assert!(c
        .get("proxy-address-held")
        .unwrap()
        .also
        .contains(&FixAction::PurgeDeleted));
    assert_eq!(
        c.get("upn-domain-unverified").unwrap().fix,
        Some(FixAction::UseDefaultDomain)
    );
    assert_eq!(c.get("unknown").unwrap().fix, None);
}

#[test]
fn catalog_rejects_bad_entries() {
    let ok =
        "[[kind]]\nid = \"unknown\"\ntitle = \"t\"\nwhat = \"w\"\nwhy = \"y\"\nsteps = [\"s\"]\n";
    assert!(Catalog::parse(ok).is_ok());
    for (bad, why) in [
        (ok.replace("steps = [\"s\"]", "steps = []"), "step"),
        (
            ok.replace("steps = [\"s\"]", "steps = [\"s\"]\nfix = \"reboot\""),
            "unknown fix action",
        ),
        (
            ok.replace("title = \"t\"", "title = \"{permision}\""),
            "placeholder",
        ),
        (ok.replace("unknown", "Unknown"), "kebab"),
        (format!("{ok}{ok}"), "duplicate"),
        (ok.replace("unknown", "other"), "unknown"),
        (ok.replace("why = \"y\"", "why = \"y\"\nextra = 1"), "extra"),
    ] {
        let e = Catalog::parse(&bad).expect_err(why).to_string();
        assert!(e.contains(why), "{why}: {e}");
    }
    assert!(CATALOG_TOML.contains("[[kind]]"));
}

#[test]
fn every_kind_is_reachable_from_a_classification_or_preflight_input() {
    let c = Catalog::load().unwrap();
    let mut produced = BTreeSet::new();
    for (want, label, f) in cases::cases()
        .into_iter()
        .chain(cases::recorded_licence_cases())
    {
        let got = f();
        assert!(
            got.iter().any(|k| k == want),
            "{label}: expected {want}, got {got:?}"
        );
        produced.extend(got);
    }
    let unreachable: Vec<&str> = c.kinds().filter(|k| !produced.contains(*k)).collect();
    assert!(
        unreachable.is_empty(),
        "kinds no input produces: {unreachable:?}"
    );
    let unknown: Vec<&String> = produced.iter().filter(|k| c.get(k).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "kinds produced but not in the catalog: {unknown:?}"
    );
}

#[test]
fn covers_what_app_explain_covers() {
    // app::explain distinguishes these situations today; each has a catalog kind.
    let c = Catalog::load().unwrap();
    for k in [
        "email-exists",
        "import-missing-email",
        "network-unreachable",
        "malformed-response",
        "not-signed-in",
        "insufficient-privileges",
        "token-expired",
        "throttled",
        "object-not-found",
        "service-unavailable",
        "unknown",
        "sign-in-declined",
        "sign-in-code-expired",
        "sign-in-code-invalid",
        "mfa-required",
        "wrong-password",
        "account-not-in-tenant",
        "account-locked",
        "conditional-access-blocked",
        "consent-missing",
        "sign-in-pending",
        "tenant-not-found",
        "app-not-in-tenant",
        "public-client-disabled",
        "client-secret-invalid",
        "invalid-scope",
        "sign-in-settings",
        "directory-unavailable",
        "internal-error",
    ] {
        assert!(c.get(k).is_some(), "{k}");
    }
}

#[test]
fn every_filled_text_has_no_placeholder_left() {
    // Every kind filled with nothing known: defaults replace every placeholder.
    let c = Catalog::load().unwrap();
    for e in c.entries() {
        let filled = m365sync::diagnose::catalog::fill(
            &format!("{} {} {} {}", e.title, e.what, e.why, e.steps.join(" ")),
            &|_| None,
        );
        for p in m365sync::diagnose::catalog::PLACEHOLDERS {
            assert!(
                !filled.contains(&format!("{{{p}}}")),
                "{}: {{{p}}} left",
                e.id
            );
        }
    }
}
