//! Deprovisioning end to end (issue 11 item 4, issue 10 item 4), against the simulator and
//! through the one pipeline, with the clock moved forward by the test (the pipeline takes
//! `now`): block+revoke signs the leaver out; licences go on their day; the account is
//! soft-deleted on its day and a rebind restores it; a rebind in between cancels what was
//! due; the delete guard holds back more than its limit; a pushed password signs the user
//! out and the audit says so; the dry run dates each step.
mod common;

use m365sync::directory::{Directory, LicenceOwner, LicencePick};
use m365sync::graph::{GraphClient, User};
use m365sync::sync::apply::{self, ApplyOptions, ApplySummary, EventSink, SetPasswordOutcome};
use m365sync::sync::deprovision::{Deprovision, Step, DAY};
use m365sync::sync::pipeline::{Confirm, Me, Pipeline, PlanView};
use m365sync::sync::plan::OpKind;
use serde_json::{json, Value};

/// STANDARDPACK (Office 365 E1) in the demo tenant: 50 seats, plenty free.
const E1: &str = "18181a46-0d4e-45cd-891e-60aabd171b4e";

struct T {
    env: common::Env,
    g: GraphClient,
    p: Pipeline,
    /// The directory's users, as imported (linked, wanted bound).
    users: Vec<User>,
}

/// The demo tenant; `n` of its plain member accounts (not the admin, not synced from
/// on-premises, not guests) imported, linked and bound; the directory policy `policy`.
async fn setup(n: usize, policy: &str) -> T {
    setup_with(common::fast_options(), n, policy).await
}

async fn setup_with(opts: m365sync::sim::SimOptions, n: usize, policy: &str) -> T {
    let env = common::start(opts).await;
    let g = GraphClient::new(env.http(), &env.settings.graph_url, env.app_session().await);
    let all: Vec<User> = m365sync::sync::pipeline::read_tenant(&g, None, &Default::default())
        .await
        .unwrap()
        .users
        .pages
        .iter()
        .flat_map(|p| p.iter().cloned())
        .collect();
    let users: Vec<User> = all
        .into_iter()
        .filter(|u| {
            u.account_enabled == Some(true)
                && u.mail.is_some()
                && !u.guest
                && !u.on_premises_sync_enabled
                && !u.user_principal_name.starts_with("admin@")
        })
        .take(n)
        .collect();
    assert_eq!(users.len(), n);
    let mut d = Directory::open(&env.settings.db_path()).unwrap();
    d.import(&users).unwrap();
    let (mut pol, mut guard) = d.policy().unwrap();
    pol.deprovision = Deprovision::parse(policy).unwrap();
    // These tests are about leavers, not the mass-change guard.
    guard.max_share = 1.0;
    d.set_policy(&pol, &guard).unwrap();
    drop(d);
    let p = Pipeline {
        graph: g.clone(),
        data_dir: env.settings.data_dir.clone(),
        db_path: env.settings.db_path(),
        tenant: env.settings.tenant.clone().unwrap(),
        me: Me::default(),
        budget: Default::default(),
    };
    T { env, g, p, users }
}

impl T {
    /// The directory assigns `u` E1 (usage location US for all): its mailbox and SharePoint
    /// plans turned off, as an admin would, since they clash with E3's.
    fn assign_e1(&self, u: &User) {
        let mut d = self.db();
        let (mut pol, guard) = d.policy().unwrap();
        pol.usage_location = Some("US".into());
        d.set_policy(&pol, &guard).unwrap();
        d.assign_licence(
            LicenceOwner::User(self.id_of(u)),
            &LicencePick::parse("STANDARDPACK,-EXCHANGE_S_STANDARD,-SHAREPOINTSTANDARD").unwrap(),
        )
        .unwrap();
    }

    fn db(&self) -> Directory {
        Directory::open(&self.env.settings.db_path()).unwrap()
    }
    fn id_of(&self, u: &User) -> i64 {
        self.db().find_by_email(u.email()).unwrap().unwrap().id
    }
    fn want(&self, us: &[&User], bound: bool) {
        let ids: Vec<i64> = us.iter().map(|u| self.id_of(u)).collect();
        self.db().set_want(&ids, bound).unwrap();
    }
    /// The plan at `now`, as the dry run and the console see it.
    async fn plan(&self, now: i64) -> PlanView {
        self.p.plan_only(None, now).await.unwrap()
    }
    /// Plan at `now` and apply it with `confirm` (the guard's count added when it trips).
    async fn sync(&self, now: i64, confirm: Confirm) -> (PlanView, Result<ApplySummary, String>) {
        let lock = self.p.lock("test").unwrap();
        let view = self.p.prepare(Some(&lock), None, now).await.unwrap();
        let confirm = Confirm {
            yes_block: view.guard.as_ref().map(|g| g.blocks),
            ..confirm
        };
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let r = self
            .p
            .apply(
                &lock,
                &view,
                &confirm,
                ApplyOptions::default(),
                Box::new(EventSink(tx.clone())),
                tx,
                Default::default(),
            )
            .await
            .map_err(|e| e.to_string());
        (view, r)
    }
    async fn sync_ok(&self, now: i64) -> PlanView {
        let (view, r) = self.sync(now, Confirm::default()).await;
        let s = r.unwrap();
        assert_eq!(s.failed, 0, "{s:?}");
        assert_eq!(s.cancelled, 0, "{s:?}");
        view
    }
    fn account(&self, u: &User) -> Option<Value> {
        self.env.sim.user_by_upn(&u.user_principal_name)
    }
    async fn licences(&self, u: &User) -> Vec<String> {
        self.g
            .licences_of(&u.id)
            .await
            .unwrap()
            .assigned_licenses
            .into_iter()
            .map(|l| l.sku_id)
            .collect()
    }
    fn pending(&self) -> Vec<(i64, Step, i64)> {
        self.db()
            .deprovision_steps()
            .unwrap()
            .into_iter()
            .map(|p| (p.directory_id, p.step, p.due))
            .collect()
    }
}

fn kinds(v: &PlanView) -> Vec<OpKind> {
    v.plan.ops.iter().map(|o| o.kind).collect()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_and_revoke_signs_the_leaver_out_everywhere() {
    let t = setup(3, "block+revoke").await;
    let ann = &t.users[0];
    assert!(t.account(ann).unwrap()["signInSessionsValidFromDateTime"].is_null());
    t.want(&[ann], false);
    let t0 = now();
    let view = t.plan(t0).await;
    assert_eq!(kinds(&view), vec![OpKind::Block, OpKind::RevokeSessions]);
    assert!(view.plan.ops[1]
        .reason
        .contains("sign the user out everywhere"));
    let view = t.sync_ok(t0).await;
    assert_eq!(kinds(&view), vec![OpKind::Block, OpKind::RevokeSessions]);
    let acc = t.account(ann).unwrap();
    assert_eq!(acc["accountEnabled"], false);
    assert!(
        acc["signInSessionsValidFromDateTime"].is_string(),
        "sessions revoked: {acc}"
    );
    // Done: nothing pending, nothing planned again.
    assert!(t.pending().is_empty());
    assert!(t.plan(t0 + 40 * DAY).await.in_sync());
    let audit = t.db().audit_list().unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "revoke-sessions" && a.outcome == "done"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licences_are_removed_on_their_day() {
    let t = setup(3, "block+unlicense:7").await;
    let ann = &t.users[0];
    // Ann holds what the tenant gave her by hand, and E1, which m365sync assigns (her
    // directory default): only E1 is m365sync's to take back.
    let by_hand = t.licences(ann).await;
    assert!(!by_hand.contains(&E1.to_string()));
    t.assign_e1(ann);
    let view = t.sync_ok(now()).await;
    assert!(kinds(&view).contains(&OpKind::AssignLicense), "{view:?}");
    let mut both = by_hand.clone();
    both.push(E1.to_string());
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(t.licences(ann).await), sorted(both));
    t.want(&[ann], false);
    let t0 = now();
    let view = t.sync_ok(t0).await;
    assert_eq!(kinds(&view), vec![OpKind::Block]);
    assert!(
        view.deprovision
            .scheduled
            .iter()
            .any(|l| l.contains("licences removed on")),
        "{:?}",
        view.deprovision
    );
    let ann_id = t.id_of(ann);
    assert_eq!(t.pending(), vec![(ann_id, Step::Unlicense, t0 + 7 * DAY)]);
    // The day before: nothing to do; the licence is still there.
    assert!(t.plan(t0 + 7 * DAY - 60).await.is_empty());
    assert!(t.licences(ann).await.contains(&E1.to_string()));
    // On the day: m365sync's licence removed, the one given by hand kept.
    let view = t.sync_ok(t0 + 7 * DAY).await;
    assert_eq!(kinds(&view), vec![OpKind::RemoveLicenses]);
    assert_eq!(view.plan.ops[0].deprovision.licences(), vec![E1]);
    assert_eq!(sorted(t.licences(ann).await), sorted(by_hand));
    assert!(t.pending().is_empty());
    assert!(t.plan(t0 + 8 * DAY).await.in_sync());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_is_deleted_on_its_day_and_a_rebind_restores_it() {
    let t = setup(3, "block+delete:30").await;
    let ann = &t.users[0];
    t.want(&[ann], false);
    let t0 = now();
    let view = t.plan(t0).await;
    assert_eq!(kinds(&view), vec![OpKind::Block]);
    t.sync_ok(t0).await;
    let deleted_before = t.env.sim.deleted_count();
    assert!(t.plan(t0 + 29 * DAY).await.is_empty());
    let view = t.sync_ok(t0 + 30 * DAY).await;
    assert_eq!(kinds(&view), vec![OpKind::DeleteUser]);
    assert!(t.account(ann).is_none(), "no longer live");
    assert_eq!(t.env.sim.deleted_count(), deleted_before + 1);
    let listed = t.g.list_deleted_users().await.unwrap();
    assert!(
        listed.iter().any(|d| d.user.id == ann.id),
        "in deleted items"
    );
    assert!(t.pending().is_empty());
    // Never a purge: later plans leave it in deleted items.
    assert!(t.plan(t0 + 60 * DAY).await.in_sync());
    // Bound again within 30 days: restored.
    t.want(&[ann], true);
    let view = t.sync_ok(t0 + 31 * DAY).await;
    assert_eq!(kinds(&view), vec![OpKind::Restore]);
    assert_eq!(t.account(ann).unwrap()["accountEnabled"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebind_in_between_cancels_what_was_due() {
    let t = setup(3, "block+revoke+delete:30").await;
    let (ann, ben) = (&t.users[0], &t.users[1]);
    t.want(&[ann, ben], false);
    let t0 = now();
    t.sync_ok(t0).await;
    assert_eq!(t.pending().len(), 2, "both deletes pending");
    // Ann is bound again and applied; Ben is bound again but not applied yet.
    t.want(&[ann], true);
    let view = t.sync_ok(t0 + DAY).await;
    assert_eq!(kinds(&view), vec![OpKind::ReEnable]);
    assert_eq!(t.pending().len(), 1, "Ann's delete is gone");
    t.want(&[ben], true);
    let view = t.plan(t0 + 31 * DAY).await;
    assert!(
        !kinds(&view).contains(&OpKind::DeleteUser),
        "{:?}",
        kinds(&view)
    );
    assert_eq!(kinds(&view), vec![OpKind::ReEnable]);
    assert!(
        view.deprovision
            .cancelled
            .iter()
            .any(|l| l.contains("deleted on") && l.contains("cancelled")),
        "{:?}",
        view.deprovision
    );
    t.sync_ok(t0 + 31 * DAY).await;
    assert!(t.pending().is_empty());
    assert!(t.account(ann).is_some() && t.account(ben).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delete_guard_holds_back_more_than_ten_deletes() {
    let t = setup(12, "block+delete:1").await;
    let leavers: Vec<&User> = t.users.iter().take(11).collect();
    t.want(&leavers, false);
    let t0 = now();
    let view = t.sync_ok(t0).await;
    assert_eq!(view.plan.count(OpKind::Block), 11);
    let deleted_before = t.env.sim.deleted_count();
    let view = t.plan(t0 + DAY).await;
    assert_eq!(view.plan.count(OpKind::DeleteUser), 11);
    let trip = view.delete_guard.as_ref().expect("the delete guard trips");
    assert_eq!(trip.blocks, 11);
    assert!(trip.message.contains("--yes-delete 11"), "{}", trip.message);
    // Without the flag (or with a wrong count): refused, nothing deleted.
    for confirm in [
        Confirm::default(),
        Confirm {
            yes_delete: Some(10),
            ..Default::default()
        },
    ] {
        let (_, r) = t.sync(t0 + DAY, confirm).await;
        let e = r.unwrap_err();
        assert!(e.contains("--yes-delete 11"), "{e}");
        assert_eq!(t.env.sim.deleted_count(), deleted_before);
    }
    let (_, r) = t
        .sync(
            t0 + DAY,
            Confirm {
                yes_delete: Some(11),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(r.unwrap().done, 11);
    assert_eq!(t.env.sim.deleted_count(), deleted_before + 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_password_signs_the_user_out_and_the_audit_says_so() {
    let t = setup(2, "block").await;
    let (ann, ben) = (&t.users[0], &t.users[1]);
    let out = apply::set_password(
        t.g.clone(),
        t.env.settings.db_path(),
        ann.email(),
        "Fresh-Passw0rd!",
        "tester",
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        SetPasswordOutcome::Pushed {
            re_enabled: false,
            signed_out: apply::SignOut::Done
        }
    );
    assert!(t.account(ann).unwrap()["signInSessionsValidFromDateTime"].is_string());
    let audit = t.db().audit_list().unwrap();
    assert!(
        audit.iter().any(|a| a.action == "set-password"
            && a.detail.as_deref() == Some("password set; signed out everywhere")),
        "{audit:?}"
    );
    assert!(audit.iter().any(|a| a.action == "revoke-sessions"));
    // Off: the password is pushed, sessions are kept.
    let mut d = t.db();
    let (mut pol, guard) = d.policy().unwrap();
    pol.keep_sessions_on_password = true;
    d.set_policy(&pol, &guard).unwrap();
    drop(d);
    let writes = t.env.sim.write_count();
    let out = apply::set_password(
        t.g.clone(),
        t.env.settings.db_path(),
        ben.email(),
        "Fresh-Passw0rd!",
        "tester",
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        SetPasswordOutcome::Pushed {
            re_enabled: false,
            signed_out: apply::SignOut::NotAsked
        }
    );
    assert_eq!(t.env.sim.write_count(), writes + 1);
    assert!(t.account(ben).unwrap()["signInSessionsValidFromDateTime"].is_null());
}

/// The CLI: `directory policy --deprovision` (directory and group), shown back; the dry run
/// dates each step of a leaver; `password set` says the user was signed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_the_policy_and_the_dry_run_dates_the_steps() {
    let t = setup(2, "block").await;
    let env = &t.env;
    let out = env
        .ok(&[
            "directory",
            "policy",
            "--deprovision",
            "block+unlicense:7+delete:30",
        ])
        .await;
    assert!(
        out.contains("deprovision: block+unlicense:7d+delete:30d"),
        "{out}"
    );
    assert!(out.contains("revoke on password: on"), "{out}");
    let bad = env
        .run(&["directory", "policy", "--deprovision", "block+purge:3"])
        .await;
    assert!(!bad.status.success());
    assert!(common::text(&bad.stderr).contains("unknown step `purge`"));
    // A group's own policy.
    let csv = env.data.path().join("g.csv");
    let ann = &t.users[0];
    std::fs::write(
        &csv,
        format!(
            "email,givenName,surname,displayName,groups\n{},{},{},{},Contractors\n",
            ann.email(),
            ann.given_name.clone().unwrap_or_default(),
            ann.surname.clone().unwrap_or_default(),
            ann.display_name.clone().unwrap_or_default()
        ),
    )
    .unwrap();
    env.ok(&["directory", "import", csv.to_str().unwrap()])
        .await;
    let out = env
        .ok(&[
            "directory",
            "policy",
            "--deprovision",
            "block+revoke",
            "--group",
            "Contractors",
        ])
        .await;
    assert!(
        out.contains("deprovision (group Contractors): block+revoke"),
        "{out}"
    );
    let out = env
        .ok(&["directory", "policy", "--revoke-on-password", "off"])
        .await;
    assert!(out.contains("revoke on password: off"), "{out}");
    // Ben leaves: the directory's policy, dated in the dry run.
    let ben = &t.users[1];
    env.ok(&["unbind", ben.email()]).await;
    let o = env.run(&["sync", "--dry-run"]).await;
    let out = common::text(&o.stdout);
    let name = ben.display_name.clone().unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("scheduled: ") && l.contains(&name))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("licences removed on ") && line.contains(", deleted on "),
        "{line}"
    );
    // Ann leaves too (unbound; the group is not bound): the group's policy applies.
    env.ok(&["unbind", ann.email()]).await;
    let out = common::text(&env.run(&["sync", "--dry-run"]).await.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("sign out everywhere") && l.contains(ann.email())),
        "{out}"
    );
}

/// A bound group's own policy applies to a member who leaves it (CSV re-import without the
/// group): the M365 group still holds the account when the plan is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_a_bound_group_follows_the_groups_policy() {
    let t = setup(2, "block").await;
    let env = &t.env;
    let (ann, ben) = (&t.users[0], &t.users[1]);
    let csv = env.data.path().join("team.csv");
    let write = |ann_groups: &str| {
        let row = |u: &User, groups: &str| {
            format!(
                "{},{},{},{},{groups}\n",
                u.email(),
                u.given_name.clone().unwrap_or_default(),
                u.surname.clone().unwrap_or_default(),
                u.display_name.clone().unwrap_or_default()
            )
        };
        std::fs::write(
            &csv,
            format!(
                "email,givenName,surname,displayName,groups\n{}{}",
                row(ann, ann_groups),
                row(ben, "Contractors")
            ),
        )
        .unwrap();
    };
    write("Contractors");
    env.ok(&["directory", "import", csv.to_str().unwrap()])
        .await;
    // Bound through the group only.
    t.want(&[ann, ben], false);
    env.ok(&["bind", "--group", "Contractors"]).await;
    env.ok(&[
        "directory",
        "policy",
        "--deprovision",
        "block+revoke+delete:14",
        "--group",
        "Contractors",
    ])
    .await;
    let t0 = now();
    let view = t.sync_ok(t0).await;
    assert!(view.plan.ops.iter().all(|o| o.kind != OpKind::Block));
    // Ann leaves the group.
    write("");
    env.ok(&["directory", "import", csv.to_str().unwrap()])
        .await;
    let view = t.sync_ok(t0 + DAY).await;
    let ann_id = t.id_of(ann);
    let ann_ops: Vec<OpKind> = view
        .plan
        .ops
        .iter()
        .filter(|o| o.directory_id == ann_id)
        .map(|o| o.kind)
        .collect();
    assert_eq!(ann_ops, vec![OpKind::Block, OpKind::RevokeSessions]);
    assert!(
        view.plan.ops[0].reason.contains("group Contractors"),
        "{}",
        view.plan.ops[0].reason
    );
    assert_eq!(t.pending(), vec![(ann_id, Step::Delete, t0 + 15 * DAY)]);
    // Ben stays: bound through the group, nothing scheduled for him.
    assert_eq!(t.account(ben).unwrap()["accountEnabled"], true);
}

/// The token endpoint, as a phone's mail app would use it: `(status, body)`.
async fn token(t: &T, form: &[(&str, &str)]) -> (u16, Value) {
    let r = t
        .env
        .http()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            t.env.sim.base_url, t.env.sim.tenant_id
        ))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// After a password push the user's refresh tokens are refused (AADSTS50173), as Entra ID
/// refuses them after `revokeSignInSessions`; with `--revoke-on-password off` they work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_password_push_the_users_refresh_token_is_refused() {
    let t = setup_with(
        m365sync::sim::SimOptions {
            password_grant: true,
            ..common::fast_options()
        },
        1,
        "block",
    )
    .await;
    let ann = &t.users[0];
    let client = t.env.sim.public_client_id.clone();
    let push = |on: bool, pw: &'static str| {
        let (g, db, email) = (
            t.g.clone(),
            t.env.settings.db_path(),
            ann.email().to_string(),
        );
        async move {
            let mut d = Directory::open(&db).unwrap();
            let (mut pol, guard) = d.policy().unwrap();
            pol.keep_sessions_on_password = !on;
            d.set_policy(&pol, &guard).unwrap();
            drop(d);
            apply::set_password(g, db, &email, pw, "tester")
                .await
                .unwrap()
        }
    };
    // A password the test knows, sessions kept; Ann signs in on her phone.
    push(false, "Fresh-Passw0rd!").await;
    let (s, signed_in) = token(
        &t,
        &[
            ("grant_type", "password"),
            ("client_id", &client),
            ("username", &ann.user_principal_name),
            ("password", "Fresh-Passw0rd!"),
            ("scope", "User.Read offline_access"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{signed_in}");
    let refresh = |rt: String| {
        let client = client.clone();
        let t = &t;
        async move {
            token(
                t,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client),
                    ("refresh_token", &rt),
                ],
            )
            .await
        }
    };
    let (s, again) = refresh(signed_in["refresh_token"].as_str().unwrap().into()).await;
    assert_eq!(s, 200, "the phone stays signed in: {again}");
    // The directory pushes a new password: signed out everywhere.
    let out = push(true, "Fresh-Passw0rd!2").await;
    assert!(matches!(
        out,
        SetPasswordOutcome::Pushed {
            signed_out: apply::SignOut::Done,
            ..
        }
    ));
    let (s, refused) = refresh(again["refresh_token"].as_str().unwrap().into()).await;
    assert_eq!(s, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    assert!(
        refused["error_codes"]
            .as_array()
            .unwrap()
            .contains(&json!(50173)),
        "{refused}"
    );
}

/// `sync --apply` over the CLI: more deletes than the limit are refused (exit 1, nothing
/// sent) until `--yes-delete` gives their count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_apply_needs_yes_delete_for_more_than_ten_deletes() {
    let t = setup(12, "block+delete:0").await;
    let env = &t.env;
    let emails: Vec<String> = t.users[..11]
        .iter()
        .map(|u| u.email().to_string())
        .collect();
    let mut args = vec!["unbind"];
    args.extend(emails.iter().map(String::as_str));
    env.ok(&args).await;
    let dry = env.ok(&["sync", "--dry-run"]).await;
    assert!(dry.contains("11 delete account"), "{dry}");
    assert!(
        dry.contains("guard: This plan deletes 11 accounts"),
        "{dry}"
    );
    let writes = env.sim.write_count();
    let o = env.run(&["sync", "--apply", "--yes-block", "11"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o.stderr));
    assert!(
        common::text(&o.stderr).contains("--yes-delete 11"),
        "{}",
        common::text(&o.stderr)
    );
    assert_eq!(env.sim.write_count(), writes, "nothing sent");
    let deleted = env.sim.deleted_count();
    env.ok(&["sync", "--apply", "--yes-block", "11", "--yes-delete", "11"])
        .await;
    assert_eq!(env.sim.deleted_count(), deleted + 11);
    for u in &t.users[..11] {
        assert!(t.account(u).is_none());
    }
    assert!(t.account(&t.users[11]).is_some());
}

/// Issue 11: leavers blocked while the policy was `block` get the steps of the policy set
/// later, dated from the policy change (not from their block: no grace period is over the
/// moment a policy is set); the steps due at once are planned and counted by the guard, the
/// later ones shown with their dates (the plan and the dry run), kept, and done on their day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leavers_blocked_before_a_policy_get_its_steps_dated_from_the_change() {
    use m365sync::sync::deprovision::date;
    let t = setup(3, "block").await;
    let (ann, ben) = (&t.users[0], &t.users[1]);
    t.want(&[ann, ben], false);
    let t0 = now();
    let view = t.sync_ok(t0).await;
    assert_eq!(kinds(&view), vec![OpKind::Block, OpKind::Block]);
    assert!(t.pending().is_empty(), "block only: no steps");
    assert!(t.plan(t0 + DAY).await.in_sync());
    // Two days later the admin sets a policy (and a tight guard).
    let set = t0 + 2 * DAY;
    {
        let mut d = t.db();
        let (mut pol, mut guard) = d.policy().unwrap();
        pol.deprovision = Deprovision::parse("block+revoke+delete:30").unwrap();
        guard.max_blocks = 1;
        d.set_policy_at(&pol, &guard, set).unwrap();
    }
    let view = t.plan(set + 60).await;
    let (a, b) = (t.id_of(ann), t.id_of(ben));
    let got: Vec<(OpKind, i64)> = view
        .plan
        .ops
        .iter()
        .map(|o| (o.kind, o.directory_id))
        .collect();
    assert_eq!(
        got,
        vec![
            (OpKind::RecordSteps, a),
            (OpKind::RecordSteps, b),
            (OpKind::RevokeSessions, a),
            (OpKind::RevokeSessions, b),
        ]
    );
    assert_eq!(
        view.writes, 2,
        "recording steps writes nothing to the tenant"
    );
    let trip = view.guard.as_ref().expect("the guard counts the sign-outs");
    assert_eq!(trip.blocks, 2);
    assert!(
        trip.message
            .contains("blocks sign-in or deprovisions 2 users"),
        "{}",
        trip.message
    );
    let line = format!(
        "{}: signed out everywhere now, deleted on {} (blocked before the policy \
         block+revoke+delete:30d (directory) was set; dated from the policy change on {})",
        ann.display_name.clone().unwrap(),
        date(set + 30 * DAY, set + 60),
        date(set, set + 60)
    );
    assert!(
        view.deprovision.scheduled.contains(&line),
        "{line} in {:?}",
        view.deprovision
    );
    // The dry run words it the same (at the wall clock: the dates are the policy's).
    let o = t.env.run(&["sync", "--dry-run"]).await;
    let out = common::text(&o.stdout);
    assert!(out.contains("dated from the policy change on"), "{out}");
    // Applied (the guard confirmed): signed out, the deletes kept with their date.
    let view = t.sync_ok(set + 60).await;
    assert!(view.guard.is_some());
    for u in [ann, ben] {
        assert!(
            t.account(u).unwrap()["signInSessionsValidFromDateTime"].is_string(),
            "signed out"
        );
    }
    assert_eq!(
        t.pending(),
        vec![
            (a.min(b), Step::Delete, set + 30 * DAY),
            (a.max(b), Step::Delete, set + 30 * DAY)
        ]
    );
    // Not again: the plan after the record is in sync until the day.
    assert!(t.plan(set + 30 * DAY - 1).await.in_sync());
    let view = t.sync_ok(set + 30 * DAY).await;
    assert_eq!(kinds(&view), vec![OpKind::DeleteUser, OpKind::DeleteUser]);
    assert!(t.account(ann).is_none() && t.account(ben).is_none());
    assert!(t.pending().is_empty());
    assert!(t.plan(set + 60 * DAY).await.in_sync());
}

/// Issue 11: a licence removal due when the account holds none of the licences m365sync
/// recorded assigning (the admin removed it by hand) is recorded as done with a note and
/// audited, not left pending; a step of an account deleted outside m365sync likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_step_with_nothing_left_to_do_is_closed_and_audited() {
    let t = setup(3, "block+unlicense:7+delete:30").await;
    let (ann, ben) = (&t.users[0], &t.users[1]);
    t.assign_e1(ann);
    let view = t.sync_ok(now()).await;
    assert!(kinds(&view).contains(&OpKind::AssignLicense), "{view:?}");
    assert!(t.licences(ann).await.contains(&E1.to_string()));
    t.want(&[ann, ben], false);
    let t0 = now();
    t.sync_ok(t0).await;
    let (a, b) = (t.id_of(ann), t.id_of(ben));
    // The admin takes E1 back by hand; Ben's account is deleted by hand.
    t.g.request(
        reqwest::Method::POST,
        &format!("/users/{}/assignLicense", ann.id),
        Some(
            serde_json::to_vec(&json!({"addLicenses": [], "removeLicenses": [E1]}))
                .unwrap()
                .into(),
        ),
    )
    .await
    .unwrap();
    assert!(t.env.sim.soft_delete(&ben.user_principal_name));
    // The day before Ann's removal: Ben's steps are closed already (his account is gone).
    let view = t.plan(t0 + 7 * DAY - 60).await;
    assert_eq!(kinds(&view), vec![OpKind::RecordSteps]);
    assert_eq!(view.plan.ops[0].directory_id, b);
    assert!(
        view.plan.ops[0].reason.contains("no longer in the tenant"),
        "{}",
        view.plan.ops[0].reason
    );
    // On Ann's day: nothing to remove, recorded as done; no assignLicense sent.
    let writes = t.env.sim.write_count();
    let view = t.sync_ok(t0 + 7 * DAY).await;
    let got: Vec<(OpKind, i64)> = view
        .plan
        .ops
        .iter()
        .map(|o| (o.kind, o.directory_id))
        .collect();
    assert_eq!(
        got,
        vec![(OpKind::RecordSteps, a), (OpKind::RecordSteps, b)]
    );
    assert_eq!(t.env.sim.write_count(), writes, "nothing sent");
    assert_eq!(
        t.pending(),
        vec![(a, Step::Delete, t0 + 30 * DAY)],
        "Ann's removal done, her delete still due; Ben's steps closed"
    );
    let audit = t.db().audit_list().unwrap();
    let notes: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == "record-steps" && e.outcome == "done")
        .filter_map(|e| e.detail.as_deref())
        .collect();
    assert_eq!(notes.len(), 2, "{audit:?}");
    assert!(
        notes.iter().any(|n| n.contains("nothing left to remove")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("no longer in the tenant")),
        "{notes:?}"
    );
    // Not planned again.
    assert!(t.plan(t0 + 8 * DAY).await.in_sync());
}
