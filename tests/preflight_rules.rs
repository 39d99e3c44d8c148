//! Table tests of every preflight rule: accepted and rejected values, Unicode, empty, and the
//! limits exactly at and one past each bound (graph-notes §4, §5 "UPN policy", "Password
//! rules", §10 IdFix).
use std::collections::HashMap;

use m365sync::directory::{BindingState, DirectoryUser};
use m365sync::graph::{Domain, User};
use m365sync::sync::plan::{Op, OpKind};
use m365sync::sync::preflight::{
    check_group_name, check_mail_nickname, check_password, check_upn, held_back, preflight,
    sanitize_mail_nickname, trim_group_name, Issue, PreflightOptions, Severity, TenantIndex,
};

fn user(id: i64, email: &str) -> DirectoryUser {
    DirectoryUser {
        id,
        email: email.into(),
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

fn domain(id: &str, verified: bool, federated: bool, default: bool) -> Domain {
    Domain {
        id: id.into(),
        authentication_type: Some(if federated { "Federated" } else { "Managed" }.into()),
        is_default: default,
        is_initial: false,
        is_verified: verified,
    }
}

fn domains() -> Vec<Domain> {
    vec![
        domain("contoso.com", true, false, true),
        domain("contoso.onmicrosoft.com", true, false, false),
        domain("fabrikam.com", false, false, false),
        domain("corp.contoso.com", true, true, false),
        domain(
            "d123456789012345678901234567890123456789012.com",
            true,
            false,
            false,
        ), // 47
        domain(
            "d1234567890123456789012345678901234567890123.com",
            true,
            false,
            false,
        ), // 48
        domain(
            "d12345678901234567890123456789012345678901234.com",
            true,
            false,
            false,
        ), // 49
    ]
}

fn kinds(issues: &[Issue]) -> Vec<&str> {
    let mut k: Vec<&str> = issues.iter().map(|i| i.kind.as_str()).collect();
    k.sort();
    k
}

/// Preflight of one user with default options against `domains()`.
fn one(email: &str) -> Vec<String> {
    let issues = preflight(
        &[user(1, email)],
        &domains(),
        None,
        &PreflightOptions::default(),
    );
    let mut k: Vec<String> = issues.into_iter().map(|i| i.kind).collect();
    k.sort();
    k
}

#[test]
fn upn_rule_alone_accepts_and_rejects_exact_bounds() {
    let l64 = "a".repeat(64);
    let l65 = "a".repeat(65);
    let d48 = format!("{}.com", "d".repeat(44));
    let d49 = format!("{}.com", "d".repeat(45));
    assert_eq!(d48.len(), 48);
    let ok: Vec<String> = vec![
        "a@contoso.com".into(),
        "first.last@contoso.com".into(),
        "o'neil@contoso.com".into(),
        "a-b_c!d#e^f~g@contoso.com".into(),
        "UPPER.Case09@Contoso.COM".into(),
        format!("{l64}@contoso.com"),
        format!("a@{d48}"),
        format!("{l64}@{d48}"), // 113 exactly
    ];
    for u in &ok {
        assert_eq!(check_upn(u), None, "{u} should pass");
    }
    assert_eq!(format!("{l64}@{d48}").len(), 113);
    let bad: Vec<(String, &str)> = vec![
        ("".into(), "empty"),
        ("contoso.com".into(), "no @"),
        ("a@b@contoso.com".into(), "2 @"),
        ("@contoso.com".into(), "nothing before"),
        ("a@".into(), "nothing after"),
        (format!("{l65}@contoso.com"), "65 characters before"),
        (format!("a@{d49}"), "49 characters after"),
        (format!("{l65}@{d48}"), "114 characters in total"),
        ("a.@contoso.com".into(), "dot right before"),
        (".a@contoso.com".into(), "starts with a dot"),
        ("jos\u{e9}@contoso.com".into(), "'\u{e9}'"),
        ("\u{540d}@contoso.com".into(), "not allowed"),
        ("a b@contoso.com".into(), "space"),
        ("a%b@contoso.com".into(), "'%'"),
        ("a+b@contoso.com".into(), "'+'"),
        ("a&b@contoso.com".into(), "'&'"),
        ("a(b)@contoso.com".into(), "'('"),
        ("a@contoso".into(), "not a valid domain"),
        ("a@-contoso.com".into(), "not a valid domain"),
        ("a@con_toso.com".into(), "not a valid domain"),
    ];
    for (u, why) in &bad {
        let p = check_upn(u).unwrap_or_else(|| panic!("{u:?} should fail"));
        assert_eq!(p.kind, "upn-invalid");
        assert!(p.message.contains(why), "{u:?}: {}", p.message);
    }
}

#[test]
fn mail_nickname_rule_table() {
    let ok = [
        "a",
        "SalesEU",
        "first.last",
        "R&D",
        "a_b-c!#$%^&*+=?{}|~'`/",
        &"n".repeat(64),
    ];
    for n in ok {
        assert!(check_mail_nickname(n).is_empty(), "{n:?} should pass");
    }
    let k =
        |n: &str| -> Vec<&'static str> { check_mail_nickname(n).iter().map(|p| p.kind).collect() };
    for c in [
        "@", "(", ")", "[", "]", "\\", "\"", ";", ":", "<", ">", ",", " ", "\t",
    ] {
        assert_eq!(
            k(&format!("a{c}b")),
            vec!["mailnickname-forbidden-char"],
            "{c:?}"
        );
    }
    assert_eq!(k(""), vec!["mailnickname-forbidden-char"]);
    assert_eq!(k("caf\u{e9}"), vec!["mailnickname-forbidden-char"]);
    assert_eq!(k(&"n".repeat(65)), vec!["mailnickname-length"]);
    for n in [".a", "a.", " a", "a ", "..a.."] {
        assert_eq!(
            k(n),
            vec!["mailnickname-leading-or-trailing-space-or-dot"],
            "{n:?}"
        );
    }
    // Several problems at once are all reported.
    let mut many = k(&format!(".a b{}", "x".repeat(70)));
    many.sort();
    assert_eq!(
        many,
        vec![
            "mailnickname-forbidden-char",
            "mailnickname-leading-or-trailing-space-or-dot",
            "mailnickname-length"
        ]
    );
}

#[test]
fn sanitize_and_trim_give_valid_values() {
    for (input, want) in [
        ("Sales (EU)", "SalesEU"),
        ("R&D; Ops", "R&DOps"),
        ("Engineering ", "Engineering"),
        ("  .Team.  ", "Team"),
        ("Caf\u{e9} M\u{fc}ller", "CafeMuller"),
        ("a@b[c]d:e<f>g,h\"i\\j", "abcdefghij"),
        ("\u{540d}\u{524d}", ""),
        ("", ""),
    ] {
        let got = sanitize_mail_nickname(input);
        assert_eq!(got, want, "{input:?}");
        if !got.is_empty() {
            assert!(check_mail_nickname(&got).is_empty(), "{got:?}");
        }
    }
    let long = sanitize_mail_nickname(&"x".repeat(100));
    assert_eq!(long.len(), 64);
    assert_eq!(
        sanitize_mail_nickname(&format!("{}.b", "a".repeat(63))).len(),
        63
    );
    assert_eq!(trim_group_name("  Sales   Team "), "Sales Team");
    assert_eq!(trim_group_name("Sales Team"), "Sales Team");
}

#[test]
fn group_name_rules() {
    let k = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = check_group_name(7, name, None)
            .into_iter()
            .map(|i| i.kind)
            .collect();
        v.sort();
        v
    };
    assert!(k("Sales Team").is_empty());
    assert!(k("Engineering").is_empty());
    assert_eq!(k("Engineering "), vec!["group-name-extra-space"]);
    assert_eq!(k(" Engineering"), vec!["group-name-extra-space"]);
    assert_eq!(k("Sales  Team"), vec!["group-name-extra-space"]);
    assert_eq!(k("Sales (EU)"), vec!["mailnickname-forbidden-char"]);
    assert_eq!(k("R&D; Ops"), vec!["mailnickname-forbidden-char"]);
    assert_eq!(k(&"G".repeat(65)), vec!["mailnickname-length"]);
    assert!(k(&"G".repeat(64)).is_empty());
    assert_eq!(
        k(".Team"),
        vec!["mailnickname-leading-or-trailing-space-or-dot"]
    );
    let issues = check_group_name(7, "Sales (EU)", None);
    assert_eq!(issues[0].suggestion.as_deref(), Some("SalesEU"));
    assert_eq!(issues[0].directory_id, 7);
    assert_eq!(issues[0].field, "mailNickname");
    let issues = check_group_name(7, "Engineering ", None);
    assert_eq!(issues[0].suggestion.as_deref(), Some("Engineering"));
    // An explicit nickname is checked instead of the derived one.
    assert!(check_group_name(7, "Sales (EU)", Some("SalesEU")).is_empty());
    assert_eq!(
        check_group_name(7, "Sales", Some("Sales EU"))[0].kind,
        "mailnickname-forbidden-char"
    );
}

#[test]
fn password_rule_table() {
    let ok = [
        "Abcdef1!",        // 8, 4 classes
        "abcdefg1A",       // 3 classes, no symbol
        "abcdef1!",        // lower digit symbol
        "ABCDEF1!",        // upper digit symbol
        "correct Horse 9", // space is a symbol
    ];
    for p in ok {
        assert_eq!(check_password(p), None, "{p:?}");
    }
    let at256 = format!("Aa1!{}", "x".repeat(252));
    assert_eq!(check_password(&at256), None);
    let k = |p: &str| check_password(p).map(|x| x.kind);
    assert_eq!(k(""), Some("password-length"));
    assert_eq!(k("Abcde1!"), Some("password-length")); // 7
    assert_eq!(k(&format!("{at256}x")), Some("password-length")); // 257
    assert_eq!(k("abcdefgh"), Some("password-complexity"));
    assert_eq!(k("abcdefg1"), Some("password-complexity"));
    assert_eq!(k("ABCDEFGH1"), Some("password-complexity"));
    assert_eq!(k("12345678!"), Some("password-complexity"));
    assert_eq!(k("Abcdef1\u{e9}"), Some("password-complexity")); // Unicode
    assert_eq!(k("Abc\tdef1!"), Some("password-complexity")); // tab is not a symbol
                                                              // A non-ASCII character is reported first, whatever the length.
    assert_eq!(k("Ab1!\u{e9}\u{e9}\u{e9}"), Some("password-complexity"));
    let m = check_password("Abcdef1\u{e9}").unwrap().message;
    assert!(m.starts_with("The password contains `\u{e9}`"), "{m}");
}

#[test]
fn user_address_rules_report_each_problem_once() {
    assert!(one("ann@contoso.com").is_empty());
    assert!(one("Ann.Lee@CONTOSO.com").is_empty());
    // The plan sends the email trimmed: stray spaces around it are not a problem.
    assert!(one("  ann@contoso.com ").is_empty());
    assert!(one(&format!("{}@contoso.com", "a".repeat(64))).is_empty());
    assert_eq!(
        one(&format!("{}@contoso.com", "a".repeat(65))),
        vec!["mailnickname-length"]
    );
    assert_eq!(
        one("ann lee@contoso.com"),
        vec!["mailnickname-forbidden-char"]
    );
    assert_eq!(
        one("ann(lee)@contoso.com"),
        vec!["mailnickname-forbidden-char"]
    );
    assert_eq!(
        one("ann.@contoso.com"),
        vec!["mailnickname-leading-or-trailing-space-or-dot"]
    );
    assert_eq!(
        one(".ann@contoso.com"),
        vec!["mailnickname-leading-or-trailing-space-or-dot"]
    );
    assert_eq!(one("ann%lee@contoso.com"), vec!["upn-invalid"]);
    assert_eq!(one("ren\u{e9}e@contoso.com"), vec!["upn-invalid"]);
    assert_eq!(one(""), vec!["upn-invalid"]);
    assert_eq!(one("ann"), vec!["upn-invalid"]);
    assert_eq!(one("a@b@contoso.com"), vec!["upn-invalid"]);
    assert_eq!(one("ann@contoso"), vec!["upn-invalid"]);
    assert_eq!(one("ann@"), vec!["upn-invalid"]);
    // Two different problems: both.
    assert_eq!(
        one("ann lee%x@contoso.com"),
        vec!["mailnickname-forbidden-char", "upn-invalid"]
    );
    // Domain rules.
    assert_eq!(one("ann@fabrikam.com"), vec!["upn-domain-unverified"]);
    assert_eq!(one("ann@nowhere.example"), vec!["upn-domain-unverified"]);
    assert_eq!(
        one("ann@corp.contoso.com"),
        vec!["federated-domain-needs-immutable-id"]
    );
    let d47 = "d123456789012345678901234567890123456789012.com";
    let d48 = "d1234567890123456789012345678901234567890123.com";
    let d49 = "d12345678901234567890123456789012345678901234.com";
    assert_eq!((d47.len(), d48.len(), d49.len()), (47, 48, 49));
    assert!(one(&format!("a@{d47}")).is_empty());
    assert!(one(&format!("a@{d48}")).is_empty());
    assert_eq!(one(&format!("a@{d49}")), vec!["upn-invalid"]);
    assert!(one(&format!("{}@{d48}", "a".repeat(64))).is_empty()); // 113
}

#[test]
fn domain_settings_default_domain_and_immutable_ids() {
    let u = [
        user(1, "ann@fabrikam.com"),
        user(2, "bob@contoso.onmicrosoft.com"),
        user(3, "cy@corp.contoso.com"),
    ];
    let mut opts = PreflightOptions {
        enabled_domains: Some(vec!["CONTOSO.com".into(), "corp.contoso.com".into()]),
        ..PreflightOptions::default()
    };
    let issues = preflight(&u, &domains(), None, &opts);
    assert_eq!(
        kinds(&issues),
        vec![
            "federated-domain-needs-immutable-id",
            "upn-domain-not-enabled",
            "upn-domain-unverified"
        ]
    );
    let unverified = issues
        .iter()
        .find(|i| i.kind == "upn-domain-unverified")
        .unwrap();
    assert_eq!(unverified.suggestion.as_deref(), Some("ann@contoso.com"));
    assert_eq!(unverified.field, "userPrincipalName");
    opts.immutable_ids.insert(3);
    opts.upn_overrides.insert(1, "ann@contoso.com".into());
    opts.default_domain = Some("contoso.onmicrosoft.com".into());
    let issues = preflight(&u, &domains(), None, &opts);
    assert_eq!(kinds(&issues), vec!["upn-domain-not-enabled"]);
    assert_eq!(issues[0].suggestion, None, "already in the default domain");
}

#[test]
fn duplicates_within_the_directory() {
    let u = [
        user(1, "Ann@contoso.com"),
        user(2, "ann@CONTOSO.com"),
        user(3, "bob@contoso.com"),
        user(4, "bob@contoso.onmicrosoft.com"),
        user(5, "cy@contoso.com"),
    ];
    let issues = preflight(&u, &domains(), None, &PreflightOptions::default());
    let dup: Vec<i64> = issues
        .iter()
        .filter(|i| i.kind == "email-duplicate")
        .map(|i| i.directory_id)
        .collect();
    assert_eq!(dup, vec![1, 2]);
    let nick: Vec<(i64, Severity)> = issues
        .iter()
        .filter(|i| i.kind == "mailnickname-duplicate")
        .map(|i| (i.directory_id, i.severity))
        .collect();
    assert_eq!(nick, vec![(3, Severity::Warning), (4, Severity::Warning)]);
    assert_eq!(issues.len(), 4);
}

#[test]
fn passwords_are_checked_and_never_echoed() {
    let u = [
        user(1, "ann@contoso.com"),
        user(2, "bob@contoso.com"),
        user(3, "cy@contoso.com"),
    ];
    let opts = PreflightOptions {
        passwords: HashMap::from([
            (1, "short1A".to_string()),
            (2, "alllowercase".to_string()),
            (3, "Str0ng!Passw0rd".to_string()),
        ]),
        ..PreflightOptions::default()
    };
    let issues = preflight(&u, &domains(), None, &opts);
    assert_eq!(
        kinds(&issues),
        vec!["password-complexity", "password-length"]
    );
    for i in &issues {
        assert_eq!(i.field, "password");
        assert!(!i.message.contains("short1A") && !i.message.contains("alllowercase"));
        assert!(
            i.value.parse::<usize>().is_ok(),
            "value is the length: {}",
            i.value
        );
    }
}

fn tuser(id: &str, upn: &str, mail: Option<&str>) -> User {
    User {
        id: id.into(),
        user_principal_name: upn.into(),
        mail: mail.map(str::to_string),
        ..User::default()
    }
}

#[test]
fn addresses_held_by_live_and_soft_deleted_tenant_users() {
    let live = vec![
        tuser("t-ann", "ann@contoso.com", Some("ann@contoso.com")),
        tuser("t-bob", "robert@contoso.com", Some("bob@contoso.com")),
        tuser("t-cy", "cy@contoso.com", None),
    ];
    let deleted = vec![tuser("d-dan", "dan@contoso.com", Some("dan@contoso.com"))];
    let idx = TenantIndex::new(&live, &deleted);
    let mut linked = user(10, "annie@contoso.com");
    linked.tenant_user_id = Some("t-ann".into());
    let mut linked_bob = user(11, "robert.b@contoso.com");
    linked_bob.tenant_user_id = Some("t-bob".into());
    let u = vec![
        linked,
        linked_bob,
        user(1, "ann@contoso.com"), // UPN of an account linked to user 10
        user(2, "bob@contoso.com"), // mail of an account linked to user 11
        user(3, "cy@contoso.com"),  // unlinked live account: the plan takes it over
        user(4, "dan@contoso.com"), // soft-deleted holder
        user(5, "eve@contoso.com"),
    ];
    let issues = preflight(&u, &domains(), Some(&idx), &PreflightOptions::default());
    let got: Vec<(i64, &str)> = issues
        .iter()
        .map(|i| (i.directory_id, i.kind.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "upn-exists"),
            (2, "proxy-address-held"),
            (4, "proxy-address-held")
        ]
    );
    let dan = &issues[2];
    assert_eq!(
        dan.holder.as_deref(),
        Some("soft-deleted user dan@contoso.com")
    );
    // The user linked to the deleted account (its restore) is not flagged.
    let mut restoring = user(4, "dan@contoso.com");
    restoring.tenant_user_id = Some("d-dan".into());
    assert!(preflight(
        &[restoring],
        &domains(),
        Some(&idx),
        &PreflightOptions::default()
    )
    .is_empty());
}

fn op(kind: OpKind, id: i64) -> Op {
    Op {
        kind,
        directory_id: id,
        email: format!("u{id}@contoso.com"),
        display_name: String::new(),
        upn: format!("u{id}@contoso.com"),
        tenant_user_id: None,
        reason: String::new(),
        changes: Vec::new(),
        manager_id: None,
        deprovision: Default::default(),
        licences: None,
    }
}

fn issue(id: i64, kind: &str, severity: Severity) -> Issue {
    Issue {
        directory_id: id,
        kind: kind.into(),
        field: "x".into(),
        value: String::new(),
        message: String::new(),
        suggestion: None,
        severity,
        holder: None,
    }
}

#[test]
fn held_back_splits_by_kind_and_op() {
    let ops = vec![
        op(OpKind::Create, 1),
        op(OpKind::Create, 2),
        op(OpKind::Block, 3),
        op(OpKind::SetPassword, 4),
        op(OpKind::SetPassword, 5),
        op(OpKind::Restore, 6),
        op(OpKind::Takeover, 7),
        op(OpKind::Create, 8),
    ];
    let issues = vec![
        issue(1, "upn-domain-unverified", Severity::Error),
        issue(3, "upn-invalid", Severity::Error), // never blocks a block
        issue(4, "password-length", Severity::Error),
        issue(5, "upn-invalid", Severity::Error), // not a password problem
        issue(6, "proxy-address-held", Severity::Error), // the restore is the fix
        issue(7, "email-duplicate", Severity::Error),
        issue(8, "mailnickname-duplicate", Severity::Warning), // warnings never hold back
    ];
    let (send, held) = held_back(&ops, &issues);
    let s: Vec<i64> = send.iter().map(|o| o.directory_id).collect();
    let h: Vec<(i64, &str)> = held
        .iter()
        .map(|(o, i)| (o.directory_id, i.kind.as_str()))
        .collect();
    assert_eq!(s, vec![2, 3, 5, 6, 8]);
    assert_eq!(
        h,
        vec![
            (1, "upn-domain-unverified"),
            (4, "password-length"),
            (7, "email-duplicate")
        ]
    );
}

#[test]
fn preflight_flags_an_address_exactly_when_the_upn_rule_refuses_it() {
    // Random emails near the bounds and over a mixed alphabet: preflight (with its fast path
    // for clean values) reports an address issue if and only if the plain UPN rule refuses.
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(7);
    let alphabet: Vec<char> = "abcXYZ09'.-_!#^~ %&+()[];:<>,\"\\@\u{e9}\u{540d}"
        .chars()
        .collect();
    let mut users = Vec::new();
    for i in 0..5000 {
        let len = if i % 10 == 0 {
            rng.random_range(60..70)
        } else {
            rng.random_range(0..12)
        };
        let local: String = (0..len)
            .map(|_| {
                if rng.random_bool(0.8) {
                    'a'
                } else {
                    alphabet[rng.random_range(0..alphabet.len())]
                }
            })
            .collect();
        let d = if i % 7 == 0 {
            "contoso.onmicrosoft.com"
        } else {
            "contoso.com"
        };
        users.push(user(i, &format!("{local}@{d}")));
    }
    let issues = preflight(&users, &domains(), None, &PreflightOptions::default());
    let mut flagged = std::collections::HashSet::new();
    for i in &issues {
        if i.kind == "upn-invalid"
            || i.kind.starts_with("mailnickname-") && i.kind != "mailnickname-duplicate"
        {
            flagged.insert(i.directory_id);
        }
    }
    let mut n_bad = 0;
    for u in &users {
        // The plan sends the email trimmed; so does preflight.
        let bad = check_upn(u.email.trim()).is_some();
        n_bad += bad as usize;
        assert_eq!(flagged.contains(&u.id), bad, "{:?}", u.email);
    }
    assert!(
        n_bad > 500 && n_bad < 4500,
        "a mix of valid and invalid: {n_bad}"
    );
}
