//! Each spec: its request, what success changes, how a lost answer is checked.
use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

use super::*;
use crate::directory::GroupKind;
use crate::sync::groups::GroupMember;

fn user_op(kind: OpKind, id: Option<&str>) -> Op {
    Op {
        kind,
        directory_id: 7,
        email: "ann@contoso.com".into(),
        display_name: "Ann".into(),
        upn: "ann#x@contoso.com".into(),
        tenant_user_id: id.map(Into::into),
        reason: String::new(),
        changes: Vec::new(),
        manager_id: None,
        deprovision: Default::default(),
        licences: None,
    }
}

fn group_op(kind: GroupOpKind, gid: Option<&str>, member: Option<Option<&str>>) -> GroupOp {
    GroupOp {
        kind,
        group_id: 3,
        group_name: "Sales (EU)".into(),
        mail_nickname: "SalesEU".into(),
        group_kind: GroupKind::Security,
        tenant_group_id: gid.map(Into::into),
        member: member.map(|t| GroupMember {
            directory_id: 7,
            email: "ann@contoso.com".into(),
            tenant_user_id: t.map(Into::into),
        }),
        reason: String::new(),
    }
}

struct Maps {
    users: HashMap<i64, String>,
    groups: HashMap<i64, String>,
    dir: HashMap<i64, DirectoryUser>,
}

impl Maps {
    fn new() -> Maps {
        Maps {
            users: HashMap::new(),
            groups: HashMap::new(),
            dir: HashMap::new(),
        }
    }
    fn ctx<'a>(&'a self, pw: Option<&'a str>) -> Ctx<'a> {
        Ctx {
            users: &self.users,
            groups: &self.groups,
            directory: &self.dir,
            password: pw,
            base: "https://graph.microsoft.com/v1.0",
        }
    }
}

fn user(id: &str, enabled: bool) -> User {
    User {
        id: id.into(),
        user_principal_name: "ann#x@contoso.com".into(),
        account_enabled: Some(enabled),
        ..Default::default()
    }
}

#[test]
fn create_posts_the_user_with_its_password_and_links_it() {
    let m = Maps::new();
    let op = AnyOp::User(user_op(OpKind::Create, None));
    assert!(
        op.request(0, &m.ctx(None)).is_err(),
        "no password, no request"
    );
    let r = op.request(0, &m.ctx(Some("Pw-1234567a"))).unwrap();
    assert_eq!((r.method, r.url.as_str()), (Method::POST, "/users"));
    let b = r.body.unwrap();
    assert_eq!(b["passwordProfile"]["password"], "Pw-1234567a");
    assert_eq!(b["passwordProfile"]["forceChangePasswordNextSignIn"], true);
    assert_eq!(b["userPrincipalName"], "ann#x@contoso.com");
    match op.answered(0, &json!({"id": "t1"}), &m.ctx(None)) {
        Answer::Done { tenant_id, change } => {
            assert_eq!(tenant_id, "t1");
            assert_eq!(
                change,
                Change::User {
                    directory_id: 7,
                    tenant_user_id: "t1".into(),
                    binding: BindingState::Bound
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(op.check_before_resend(0), "a second POST would duplicate");
    assert_eq!(
        op.verify(&m.ctx(None)),
        Check::User("ann#x@contoso.com".into())
    );
    assert!(matches!(
        op.verdict(&Found::User(Some(user("t1", true)))),
        Verdict::Applied { .. }
    ));
    assert_eq!(op.verdict(&Found::User(None)), Verdict::NotApplied);
}

#[test]
fn block_and_re_enable_patch_the_linked_account_and_check_account_enabled() {
    let m = Maps::new();
    let block = AnyOp::User(user_op(OpKind::Block, Some("t1")));
    let r = block.request(0, &m.ctx(None)).unwrap();
    assert_eq!((r.method, r.url.as_str()), (Method::PATCH, "/users/t1"));
    assert_eq!(r.body.unwrap(), json!({"accountEnabled": false}));
    assert!(!block.check_before_resend(0), "PATCH is idempotent");
    assert!(matches!(
        block.verdict(&Found::User(Some(user("t1", false)))),
        Verdict::Applied {
            change: Change::User {
                binding: BindingState::Blocked,
                ..
            },
            ..
        }
    ));
    assert_eq!(
        block.verdict(&Found::User(Some(user("t1", true)))),
        Verdict::NotApplied
    );
    let en = AnyOp::User(user_op(OpKind::ReEnable, Some("t1")));
    assert_eq!(
        en.request(0, &m.ctx(None)).unwrap().body.unwrap(),
        json!({"accountEnabled": true})
    );
    assert!(matches!(
        en.verdict(&Found::User(Some(user("t1", true)))),
        Verdict::Applied { .. }
    ));
    assert!(Kind::User(OpKind::Block).destructive());
    assert!(!Kind::User(OpKind::ReEnable).destructive());
}

#[test]
fn a_upn_in_a_url_is_percent_encoded() {
    let m = Maps::new();
    let op = AnyOp::User(user_op(OpKind::Block, None));
    let r = op.request(0, &m.ctx(None)).unwrap();
    assert_eq!(r.url, "/users/ann%23x@contoso.com");
}

#[test]
fn restore_is_two_writes_and_a_half_done_one_resumes_at_enable() {
    let m = Maps::new();
    let op = AnyOp::User(user_op(OpKind::Restore, Some("d1")));
    assert_eq!(op.steps(), 2);
    let r0 = op.request(0, &m.ctx(None)).unwrap();
    assert_eq!(r0.url, "/directory/deletedItems/d1/restore");
    assert_eq!(op.answered(0, &Value::Null, &m.ctx(None)), Answer::Next);
    let r1 = op.request(1, &m.ctx(None)).unwrap();
    assert_eq!((r1.method, r1.url.as_str()), (Method::PATCH, "/users/d1"));
    assert!(op.check_before_resend(0) && !op.check_before_resend(1));
    assert!(matches!(
        op.verdict(&Found::User(Some(user("d1", false)))),
        Verdict::Partly { step: 1, .. }
    ));
    assert!(matches!(
        op.verdict(&Found::User(Some(user("d1", true)))),
        Verdict::Applied { .. }
    ));
    assert_eq!(op.verdict(&Found::User(None)), Verdict::NotApplied);
}

#[test]
fn a_password_write_can_never_be_verified() {
    let m = Maps::new();
    let op = AnyOp::User(user_op(OpKind::SetPassword, Some("t1")));
    assert!(matches!(op.verify(&m.ctx(None)), Check::Impossible(_)));
    assert!(matches!(
        op.verdict(&Found::Nothing),
        Verdict::Unknowable(_)
    ));
    assert!(op.request(0, &m.ctx(None)).is_err(), "the password is gone");
}

#[test]
fn member_ops_resolve_ids_made_earlier_in_the_run() {
    let mut m = Maps::new();
    let add = AnyOp::Group(group_op(GroupOpKind::AddMember, None, Some(None)));
    let e = add.request(0, &m.ctx(None)).unwrap_err();
    assert!(e.0.contains("does not exist"), "{e:?}");
    m.groups.insert(3, "g1".into());
    let e = add.request(0, &m.ctx(None)).unwrap_err();
    assert!(e.0.contains("no Microsoft 365 account"), "{e:?}");
    assert_eq!(add.verify(&m.ctx(None)), Check::NeverSent);
    m.users.insert(7, "t7".into());
    let r = add.request(0, &m.ctx(None)).unwrap();
    assert_eq!(r.url, "/groups/g1/members/$ref");
    assert_eq!(
        r.body.unwrap()["@odata.id"],
        "https://graph.microsoft.com/v1.0/directoryObjects/t7"
    );
    let already = GraphError::Api {
        status: 400,
        code: "Request_BadRequest".into(),
        message: "One or more added object references already exist for the following modified properties: 'members'.".into(),
        request_id: None,
        date: None,
        retry_after: None,
    };
    assert!(add.already(&already));
    assert_eq!(
        add.verify(&m.ctx(None)),
        Check::Member {
            group: "g1".into(),
            member: "t7".into()
        }
    );
    assert!(matches!(
        add.verdict(&Found::Member(true)),
        Verdict::Applied { .. }
    ));
    let rm = AnyOp::Group(group_op(
        GroupOpKind::RemoveMember,
        Some("g1"),
        Some(Some("t7")),
    ));
    let r = rm.request(0, &m.ctx(None)).unwrap();
    assert_eq!(
        (r.method, r.url.as_str()),
        (Method::DELETE, "/groups/g1/members/t7/$ref")
    );
    assert!(matches!(
        rm.verdict(&Found::Member(false)),
        Verdict::Applied { .. }
    ));
    assert!(Kind::Group(GroupOpKind::RemoveMember).destructive());
}

#[test]
fn create_group_refuses_a_bad_nickname_and_is_checked_by_name_and_nickname() {
    let m = Maps::new();
    let mut g = group_op(GroupOpKind::CreateGroup, None, None);
    let op = AnyOp::Group(g.clone());
    let r = op.request(0, &m.ctx(None)).unwrap();
    assert_eq!(r.body.unwrap()["mailNickname"], "SalesEU");
    assert!(op.check_before_resend(0));
    assert_eq!(
        op.verify(&m.ctx(None)),
        Check::Group {
            name: "Sales (EU)".into(),
            nickname: "SalesEU".into()
        }
    );
    g.mail_nickname = "Sales EU".into();
    assert!(AnyOp::Group(g).request(0, &m.ctx(None)).is_err());
    let link = AnyOp::Group(group_op(GroupOpKind::LinkGroup, Some("g9"), None));
    assert_eq!(link.steps(), 0);
    assert_eq!(
        link.answered(0, &Value::Null, &m.ctx(None)),
        Answer::Done {
            tenant_id: "g9".into(),
            change: Change::Group {
                group_id: 3,
                tenant_group_id: "g9".into()
            }
        }
    );
}

#[test]
fn every_kind_has_a_spec_with_an_audit_name_and_a_permission() {
    let names: std::collections::HashSet<&str> = Kind::all().map(|k| k.audit_name()).collect();
    assert_eq!(names.len(), Kind::all().count(), "audit names are unique");
    for k in Kind::all() {
        assert!(!k.permission().is_empty(), "{k:?}");
        assert!(!k.label().is_empty(), "{k:?}");
    }
}
