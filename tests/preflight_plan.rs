//! Preflight against the real plan: ops with a blocking issue are held back, the rest are
//! sent; the plan's own answers to a held address (takeover of a live unlinked account,
//! restore of a soft-deleted one) and blocking sign-in are never held back.
use std::sync::Arc;

use m365sync::directory::{BindingState, DirectoryUser};
use m365sync::graph::{Domain, User};
use m365sync::sync::plan::{plan, OpKind, Policy, TenantSnapshot};
use m365sync::sync::preflight::{held_back, preflight, PreflightOptions, TenantIndex};

fn du(id: i64, email: &str, want: bool, linked: Option<&str>) -> DirectoryUser {
    DirectoryUser {
        id,
        email: email.into(),
        display_name: email.into(),
        given_name: None,
        surname: None,
        tenant_user_id: linked.map(str::to_string),
        binding: if linked.is_some() {
            BindingState::Bound
        } else {
            BindingState::Unbound
        },
        want_bound: want,
        job_title: None,
        department: None,
        password_set_at: None,
        bound_via: Vec::new(),
        attributes: Default::default(),
    }
}

fn tu(id: &str, upn: &str, enabled: bool) -> User {
    User {
        id: id.into(),
        user_principal_name: upn.into(),
        mail: Some(upn.into()),
        account_enabled: Some(enabled),
        ..User::default()
    }
}

/// contoso.com: verified, managed, the default.
fn contoso() -> Domain {
    Domain {
        id: "contoso.com".into(),
        authentication_type: Some("Managed".into()),
        is_default: true,
        is_initial: false,
        is_verified: true,
    }
}

/// The plan of `directory` against `snapshot`, and preflight's findings over it.
fn plan_and_preflight(
    directory: &[DirectoryUser],
    snapshot: &TenantSnapshot,
    domains: &[Domain],
) -> (
    m365sync::sync::plan::Plan,
    Vec<m365sync::sync::preflight::Issue>,
) {
    let p = plan(directory, snapshot, &Policy::default(), 1_800_000_000);
    let opts = PreflightOptions::default();
    let idx = TenantIndex::from_snapshot(snapshot);
    let issues = preflight(directory, domains, Some(&idx), &opts);
    // The narrow index the pipeline builds (only the addresses preflight asks about) finds
    // exactly what the whole tenant's index finds.
    let narrow = TenantIndex::for_users(snapshot, directory, &opts);
    assert_eq!(
        preflight(directory, domains, Some(&narrow), &opts),
        issues,
        "TenantIndex::for_users differs from the full index"
    );
    (p, issues)
}

#[test]
fn held_back_over_the_real_plan() {
    let domains = vec![
        contoso(),
        Domain {
            id: "labs.example".into(),
            authentication_type: Some("Managed".into()),
            is_default: false,
            is_initial: false,
            is_verified: false,
        },
    ];
    let snapshot = TenantSnapshot {
        pages: vec![Arc::new(vec![
            tu("t-leaver", "leaver@contoso.com", true),
            tu("t-cy", "cy@contoso.com", true),
        ])],
        deleted: vec![tu("d-farid", "farid@contoso.com", true)],
        domains: domains.clone(),
    };
    let directory = vec![
        du(1, "ann@labs.example", true, None), // unverified domain: create held
        du(2, "farid@contoso.com", true, None), // deleted holder: the plan restores it
        du(3, "leaver@contoso.com", false, Some("t-leaver")), // unbind: block is always sent
        du(4, "new.person@contoso.com", true, None), // fine: create sent
        du(5, "twin@contoso.com", true, None), // duplicate email: both held
        du(6, "TWIN@contoso.com", true, None),
        du(7, "cy@contoso.com", true, None), // live unlinked holder: takeover sent
        du(8, "bad name@contoso.com", true, None), // space: create held
    ];
    let (p, issues) = plan_and_preflight(&directory, &snapshot, &domains);
    let (send, held) = held_back(&p.ops, &issues);
    let mut s: Vec<(i64, OpKind)> = send.iter().map(|o| (o.directory_id, o.kind)).collect();
    s.sort();
    let mut h: Vec<(i64, OpKind, &str)> = held
        .iter()
        .map(|(o, i)| (o.directory_id, o.kind, i.kind.as_str()))
        .collect();
    h.sort();
    assert_eq!(
        s,
        vec![
            (2, OpKind::Restore),
            (3, OpKind::Block),
            (4, OpKind::Create),
            (7, OpKind::Takeover)
        ]
    );
    assert_eq!(
        h,
        vec![
            (1, OpKind::Create, "upn-domain-unverified"),
            (5, OpKind::Create, "email-duplicate"),
            (6, OpKind::Create, "email-duplicate"),
            (8, OpKind::Create, "mailnickname-forbidden-char"),
        ]
    );
    assert_eq!(send.len() + held.len(), p.ops.len());
}

/// A guest's address is never bound as a member account: an `#EXT#` address is held back,
/// and so is the takeover of a tenant guest whose mail a directory user has; a directory user
/// linked to its guest on purpose (imported, confirmed) is not refused.
#[test]
fn a_guest_address_is_held_back_as_guest_as_member() {
    let domains = vec![contoso()];
    let guest = |id: &str, upn: &str, mail: &str| User {
        guest: true,
        mail: Some(mail.into()),
        ..tu(id, upn, true)
    };
    let snapshot = TenantSnapshot {
        pages: vec![Arc::new(vec![
            guest(
                "g-ann",
                "ann_fabrikam.com#EXT#@contoso.com",
                "ann@fabrikam.com",
            ),
            guest(
                "g-bo",
                "bo_tailspin.com#EXT#@contoso.com",
                "bo@tailspin.com",
            ),
            tu("t-cy", "cy@contoso.com", false),
        ])],
        deleted: Vec::new(),
        domains: domains.clone(),
    };
    let directory = vec![
        du(1, "dee_fabrikam.com#EXT#@contoso.com", true, None), // #EXT#: create held
        du(2, "ann@fabrikam.com", true, None),                  // a guest's mail: takeover held
        du(3, "bo@tailspin.com", true, Some("g-bo")),           // linked to its guest: not refused
        du(4, "cy@contoso.com", true, None),                    // a member: takeover sent
    ];
    let (p, issues) = plan_and_preflight(&directory, &snapshot, &domains);
    let guests: Vec<i64> = issues
        .iter()
        .filter(|i| i.kind == "guest-as-member")
        .map(|i| i.directory_id)
        .collect();
    assert_eq!(guests, vec![1, 2], "{issues:?}");
    let (send, held) = held_back(&p.ops, &issues);
    let h: Vec<(i64, OpKind, &str)> = held
        .iter()
        .map(|(o, i)| (o.directory_id, o.kind, i.kind.as_str()))
        .collect();
    assert_eq!(
        h,
        vec![
            (1, OpKind::Create, "guest-as-member"),
            (2, OpKind::Takeover, "guest-as-member"),
        ]
    );
    let s: Vec<(i64, OpKind)> = send.iter().map(|o| (o.directory_id, o.kind)).collect();
    // The linked guest keeps its attributes in sync (its display name here); never a member.
    assert_eq!(
        s,
        vec![(3, OpKind::UpdateAttributes), (4, OpKind::Takeover)]
    );
}

/// The pipeline's narrow tenant index (`TenantIndex::for_users`) answers every address
/// preflight asks about as the whole tenant's index does: holders found by UPN or by mail in
/// any case, a live holder beside a soft-deleted one, an account linked to another directory
/// user, a UPN override, and non-ASCII mail folded the same way.
#[test]
fn the_narrow_tenant_index_finds_what_the_whole_one_finds() {
    let domains = vec![contoso()];
    let with_mail = |u: User, mail: &str| User {
        mail: Some(mail.into()),
        ..u
    };
    let snapshot = TenantSnapshot {
        pages: vec![
            Arc::new(vec![
                tu("t-ann", "Ann.Lee@Contoso.com", true),
                with_mail(tu("t-bo", "bo.x@contoso.com", true), "BO@contoso.com"),
                tu("t-linked", "linked@contoso.com", true),
            ]),
            Arc::new(vec![
                tu("t-live", "both@contoso.com", true),
                with_mail(tu("t-sig", "sig@contoso.com", true), "ΟΔΟΣ@contoso.com"),
            ]),
        ],
        deleted: vec![
            tu("d-both", "BOTH@contoso.com", true),
            tu("d-gone", "Gone@CONTOSO.com", true),
        ],
        domains: domains.clone(),
    };
    let directory = vec![
        du(1, "ann.lee@contoso.com", true, None), // live holder, UPN in another case
        du(2, "bo@contoso.com", true, None),      // held by mail only
        du(3, "Linked@contoso.com", true, None),  // held by an account linked to 9
        du(4, "both@contoso.com", true, None),    // live and deleted holders: live wins
        du(5, "gone@contoso.com", true, None),    // soft-deleted holder
        du(6, "οδος@contoso.com", true, None),    // non-ASCII mail, folded alike
        du(7, "free@contoso.com", true, None),    // nobody holds it
        du(9, "someone@contoso.com", true, Some("t-linked")),
        du(10, "bo.x@contoso.com", true, Some("t-bo")),
    ];
    let mut opts = PreflightOptions::default();
    opts.upn_overrides.insert(7, "GONE@contoso.com".into()); // override hits the deleted one
    let full = TenantIndex::from_snapshot(&snapshot);
    let narrow = TenantIndex::for_users(&snapshot, &directory, &opts);
    let whole = preflight(&directory, &domains, Some(&full), &opts);
    assert_eq!(preflight(&directory, &domains, Some(&narrow), &opts), whole);
    let mut kinds: Vec<(i64, &str)> = whole
        .iter()
        .map(|i| (i.directory_id, i.kind.as_str()))
        .collect();
    kinds.sort();
    // The held addresses are really found (the comparison above is not of two empty lists).
    assert!(kinds.contains(&(2, "proxy-address-held")), "{kinds:?}");
    assert!(kinds.contains(&(3, "upn-exists")), "{kinds:?}");
    assert!(kinds.contains(&(5, "proxy-address-held")), "{kinds:?}");
    assert!(kinds.contains(&(7, "proxy-address-held")), "{kinds:?}");
    // A directory of linked users asks about no address: nothing is scanned or kept.
    let linked = [du(9, "someone@contoso.com", true, Some("t-linked"))];
    let none = TenantIndex::for_users(&snapshot, &linked, &opts);
    assert_eq!(
        preflight(&linked, &domains, Some(&none), &opts),
        preflight(&linked, &domains, Some(&full), &opts)
    );
}
