//! The console starts from the tenant snapshot: the saved copy's rows at once, "as of HH:MM"
//! in the status bar, a delta round in the background (its status line), the plan previewed
//! on the copy at once, `r` twice or `R` for a full listing (saying why, its gauge counting
//! users), and `y` that found the tenant changed previews the new plan instead of sending.
//! Then the real loop against a simulator answering every request after 1.5 s: the saved
//! rows are on screen before any Graph request could return.
mod common;

use std::sync::Arc;
use std::time::Duration;

use m365sync::app::action::RefreshNews;
use m365sync::app::fixtures;
use m365sync::app::state::{AsOf, Load, Modal, TenantExtras, TenantRows};
use m365sync::app::{update, Action, AppState, Effect};
use m365sync::directory::DirectoryIndex;
use m365sync::keymap::Command;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn cmd(s: &mut AppState, c: Command) -> Vec<Effect> {
    update(s, Action::Command(c))
}

fn screen(s: &AppState) -> String {
    let mut t = Terminal::new(TestBackend::new(100, 24)).unwrap();
    t.draw(|f| m365sync::app::draw(f, s)).unwrap();
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// 14:02 UTC on the fixtures' day.
const AS_OF: i64 = fixtures::NOW - fixtures::NOW.rem_euclid(86_400) + 14 * 3600 + 2 * 60;

fn loaded(gen: u64, n: usize, index_version: u64, done: Option<&str>) -> Action {
    let pages: Vec<_> = fixtures::tenant_users(n)
        .chunks(999)
        .map(|c| Arc::new(c.to_vec()))
        .collect();
    let (rows, upns) = TenantRows::classified(&pages, &DirectoryIndex::default());
    Action::TenantLoaded {
        gen,
        index_version,
        rows: Box::new(rows),
        upns,
        extras: Arc::new(TenantExtras {
            deleted: vec![],
            domains: fixtures::domains(),
        }),
        as_of: AsOf {
            at: AS_OF,
            offset: 0,
        },
        done: done.map(str::to_string),
    }
}

#[test]
fn the_saved_copy_shows_at_once_and_a_round_brings_it_up_to_date() {
    // Signed in, the directory read: the first load asks for the tenant users.
    let mut s = fixtures::loaded_state(0);
    s.data.load = Load::Waiting;
    let fx = update(
        &mut s,
        Action::DirectoryLoaded(Ok(fixtures::directory_snapshot(2, vec![]))),
    );
    let [Effect::LoadUsers {
        gen, full: false, ..
    }] = fx.as_slice()
    else {
        panic!("a delta round, not {fx:?}")
    };
    let (gen, v) = (*gen, s.data.index_version);

    // The saved copy: its rows at once, as of its time, and a plan can be made on it.
    let fx = update(&mut s, loaded(gen, 1500, v, None));
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(s.data.rows.len(), 1500);
    assert_eq!(s.tabs.import.view.shown.len(), 1500);
    assert!(matches!(s.data.load, Load::Loading { .. }));
    assert!(s.data.listed(), "the plan can be previewed on the copy");
    update(
        &mut s,
        Action::Refreshing {
            gen,
            news: RefreshNews::DeltaRound,
        },
    );
    let sc = screen(&s);
    assert!(sc.contains("as of 14:02"), "{sc}");
    assert!(sc.contains("delta round…"), "{sc}");
    assert!(sc.contains("adele."), "rows of the copy: {sc}");

    // `p` now: the plan is made on the copy, with its deleted users and domains.
    cmd(&mut s, Command::GoTab(2));
    let fx = cmd(&mut s, Command::Preview);
    let [Effect::Plan { pages, extras, .. }] = fx.as_slice() else {
        panic!("a plan on the copy, not {fx:?}")
    };
    assert_eq!(pages.iter().map(|p| p.len()).sum::<usize>(), 1500);
    assert_eq!(extras.domains, fixtures::domains());
    cmd(&mut s, Command::Back);

    // The round ends: the rows are replaced, the load is done, what it did is said.
    let fx = update(
        &mut s,
        loaded(gen, 1499, v, Some("delta round: 1 changed, as of 14:05:10")),
    );
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(s.data.load, Load::Done);
    assert_eq!(s.data.rows.len(), 1499);
    assert!(s.data.refreshing.is_none());
    assert_eq!(
        s.data.message(),
        Some("Delta round: 1 changed, as of 14:05:10.")
    );
    // News of an older load is dropped.
    assert!(update(&mut s, loaded(gen - 1, 3, v, Some("old"))).is_empty());
    assert_eq!(s.data.rows.len(), 1499);
}

#[test]
fn r_twice_or_shift_r_lists_in_full_saying_why_with_a_gauge_in_users() {
    let mut s = fixtures::loaded_state(0);
    let gen0 = s.data.load_gen;
    let v = s.data.index_version;
    update(&mut s, loaded(gen0, 10, v, Some("x")));
    let fx = cmd(&mut s, Command::Refresh);
    assert!(
        matches!(fx.as_slice(), [Effect::LoadUsers { full: false, .. }]),
        "{fx:?}"
    );
    // The rows of the copy stay while the round runs.
    assert_eq!(s.data.rows.len(), 10);
    assert!(s.data.listed());
    let fx = cmd(&mut s, Command::Refresh);
    let [Effect::LoadUsers {
        gen, full: true, ..
    }] = fx.as_slice()
    else {
        panic!("r while a round runs lists in full: {fx:?}")
    };
    let gen = *gen;
    assert_eq!(
        m365sync::app::update::key_action(
            &s,
            &crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char('R'),
                crossterm::event::KeyModifiers::SHIFT
            )
        ),
        Some(Action::Command(Command::ListAgain))
    );
    update(
        &mut s,
        Action::Refreshing {
            gen,
            news: RefreshNews::FullListing {
                why: "Listing every user again, as asked".into(),
            },
        },
    );
    assert_eq!(
        s.data.message(),
        Some("Listing every user again, as asked.")
    );
    update(
        &mut s,
        Action::Refreshing {
            gen,
            news: RefreshNews::Listed {
                listed: 4_995,
                expected: Some(12_000),
            },
        },
    );
    let sc = screen(&s);
    assert!(sc.contains("4,995 of ~12,000 users"), "{sc}");
    assert!(sc.contains("full listing 4,995 of 12,000 users…"), "{sc}");
    let fx = cmd(&mut s, Command::ListAgain);
    assert!(
        matches!(fx.as_slice(), [Effect::LoadUsers { full: true, gen: g, .. }] if *g == gen + 1),
        "{fx:?}"
    );
    // A failed refresh keeps the copy, says so, and the plan can still be made on it.
    let gen = s.data.load_gen;
    update(
        &mut s,
        Action::UsersFailed {
            gen,
            error: m365sync::graph::GraphError::Transport("connection reset".into()),
        },
    );
    assert!(matches!(s.data.load, Load::Failed { .. }));
    assert_eq!(s.data.rows.len(), 10);
    assert!(s.data.listed());
    assert!(
        s.data
            .message()
            .unwrap()
            .contains("the saved copy as of 14:02 is shown"),
        "{:?}",
        s.data.message()
    );
}

#[test]
fn y_that_found_the_tenant_changed_previews_the_new_plan_and_sends_nothing() {
    let mut s = fixtures::preview_state(5, 0, false);
    let fx = cmd(&mut s, Command::Confirm);
    assert!(matches!(fx.as_slice(), [Effect::Apply { .. }]), "{fx:?}");
    assert!(s.data.applying);
    let fx = update(
        &mut s,
        Action::ApplyReplanned {
            view: Box::new(fixtures::plan_view(4, 0, false)),
            round: "delta round: 1 changed, as of 14:05:10".into(),
        },
    );
    assert!(fx.is_empty());
    assert!(!s.data.applying);
    let Modal::Preview(p) = &s.modal else {
        panic!("the new plan is previewed: {:?}", s.modal)
    };
    assert_eq!(p.view, fixtures::plan_view(4, 0, false));
    let m = s.data.message().unwrap();
    assert!(
        m.contains("Nothing was sent: delta round: 1 changed") && m.contains("the plan changed"),
        "{m}"
    );
    // When the round leaves nothing to do, nothing opens.
    let mut s = fixtures::preview_state(5, 0, false);
    cmd(&mut s, Command::Confirm);
    update(
        &mut s,
        Action::ApplyReplanned {
            view: Box::default(),
            round: "delta round: 5 changed, as of 14:05:10".into(),
        },
    );
    assert_eq!(s.modal, Modal::None);
    assert!(s
        .data
        .message()
        .unwrap()
        .contains("now the tenant already matches"));
}

/// The real loop, a cached sign-in, a saved copy, and a simulator that answers every request
/// after 1.5 s: the copy's rows are on screen well before any Graph answer could arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_saved_rows_before_any_graph_request_returns() {
    use futures::StreamExt;
    let latency = Duration::from_millis(1500);
    let env = common::start(m365sync::sim::SimOptions {
        users: Some(120),
        latency,
        ..common::fast_options()
    })
    .await;
    // A cached sign-in (its token valid: resuming sends nothing) and a saved copy.
    let session = env.app_session().await;
    let graph =
        m365sync::graph::GraphClient::new(env.http(), &env.settings.graph_url, session.clone());
    let tenant = env.settings.tenant.clone().unwrap();
    let store = m365sync::snapshot::SnapshotStore::open(&env.settings.data_dir, &tenant).unwrap();
    m365sync::snapshot::full_refresh(&graph, &store, &Default::default(), &mut |_| {})
        .await
        .unwrap();

    let mut state = AppState::new(&tenant);
    let initial = m365sync::app::update::init(&mut state);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let services =
        m365sync::app::runtime::Services::new(env.settings.clone(), Some(env.http()), tx);
    // Quit well before the first Graph answer could come back.
    let quit_at = Duration::from_millis(900);
    let events = futures::stream::once(async move {
        tokio::time::sleep(quit_at).await;
        Ok(crossterm::event::Event::Key(
            crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char('q'),
                crossterm::event::KeyModifiers::NONE,
            ),
        ))
    })
    .chain(futures::stream::pending())
    .boxed();
    let mut t = Terminal::new(TestBackend::new(120, 30)).unwrap();
    let started = std::time::Instant::now();
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        m365sync::app::runtime::run(&mut t, state, services, rx, events, initial),
    )
    .await
    .expect("q quits")
    .unwrap();
    assert!(started.elapsed() < latency, "{:?}", started.elapsed());
    assert_eq!(end.data.rows.len(), 120, "the saved rows are on screen");
    assert!(end.data.complete_copy);
    assert!(end.data.as_of.is_some());
    assert!(
        matches!(end.data.load, Load::Loading { .. }),
        "the round is still waiting for Graph: {:?}",
        end.data.load
    );
    let buf = t.backend().buffer();
    let sc: String = (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                + "\n"
        })
        .collect();
    assert!(sc.contains("as of "), "{sc}");
    let first = store.load().unwrap().unwrap().pages[0][0]
        .user_principal_name
        .clone();
    assert!(end
        .data
        .rows
        .pages
        .iter()
        .flat_map(|p| p.iter())
        .any(|u| u.user_principal_name == first));
}

/// The next action the runtime sends that `pick` takes, within 20 s.
async fn next<T>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Action>,
    mut pick: impl FnMut(Action) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("the runtime answers within 20 s")
            .expect("the channel stays open");
        if let Some(t) = pick(a) {
            return t;
        }
    }
}

/// `y` in the real runtime: a delta round under the apply lock first. An account created in
/// the tenant since the plan changes it: nothing is sent, the new plan comes back; applied
/// again, the unchanged plan is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_before_an_apply_sends_nothing_when_the_tenant_changed_the_plan() {
    use m365sync::sync::pipeline::{Confirm, Me, Pipeline};
    let env = common::start(m365sync::sim::SimOptions {
        users: Some(20),
        ..common::fast_options()
    })
    .await;
    let dom = env.sim.default_domain.clone();
    env.import_people(&format!(
        "email,givenName,surname,displayName\nann@{dom},Ann,Lee,Ann Lee\nben@{dom},Ben,Ode,Ben Ode\n"
    ))
    .await;
    env.ok(&["bind", &format!("ann@{dom}"), &format!("ben@{dom}")])
        .await;
    env.ok(&["login"]).await;
    let mut settings = env.settings.clone();
    settings.client_id = Some(env.sim.apps[0].0.clone());

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut services = m365sync::app::runtime::Services::new(settings, Some(env.http()), tx);
    services.run(Effect::ResumeSession { gen: 0 });
    next(&mut rx, |a| match a {
        Action::SessionResumed { result, .. } => Some(result.unwrap().expect("cached")),
        _ => None,
    })
    .await;
    // The first load: no copy yet, a full listing, saved.
    services.run(Effect::LoadUsers {
        gen: 1,
        page_size: 999,
        index: Default::default(),
        index_version: 0,
        full: false,
    });
    let (pages, extras) = next(&mut rx, |a| match a {
        Action::TenantLoaded {
            rows,
            extras,
            done: Some(line),
            ..
        } => {
            assert!(line.starts_with("full listing (No saved copy"), "{line}");
            Some((rows.pages.clone(), extras))
        }
        Action::UsersFailed { error, .. } => panic!("{error}"),
        _ => None,
    })
    .await;
    // The plan, as the console's Plan effect makes it, on the copy.
    let graph = m365sync::graph::GraphClient::new(
        env.http(),
        &env.settings.graph_url,
        env.app_session().await,
    );
    let pipeline = Pipeline {
        graph: graph.clone(),
        data_dir: env.settings.data_dir.clone(),
        db_path: env.settings.db_path(),
        tenant: env.settings.tenant.clone().unwrap(),
        me: Me::default(),
        budget: Default::default(),
    };
    let tenant = m365sync::sync::plan::TenantSnapshot {
        pages,
        deleted: extras.deleted.clone(),
        domains: extras.domains.clone(),
    };
    let view = pipeline.prepare(None, Some(tenant), 0).await.unwrap();
    assert_eq!(view.plan.ops.len(), 2, "two creates: {:?}", view.plan.ops);

    // Ann's account appears in the tenant meanwhile.
    let new = m365sync::graph::requests::NewUser::new(
        format!("ann@{dom}"),
        "Ann Lee",
        "ann",
        "Xy7!someone-else-1",
    );
    graph
        .request(
            reqwest::Method::POST,
            &format!("{}/users", graph.base()),
            Some(bytes::Bytes::from(new.to_json().to_string())),
        )
        .await
        .unwrap();
    let writes = env.sim.write_count();
    services.run(Effect::Apply {
        view: Box::new(view.clone()),
        confirm: Confirm::default(),
    });
    let (changed, round) = next(&mut rx, |a| match a {
        Action::ApplyReplanned { view, round } => Some((view, round)),
        Action::ApplyFinished(r) => panic!("sent on stale data: {r:?}"),
        _ => None,
    })
    .await;
    assert_eq!(env.sim.write_count(), writes, "nothing was sent");
    assert!(round.starts_with("delta round: 1 changed"), "{round}");
    assert_ne!(changed.ops(), view.ops());

    // Applied as it is now: the round finds nothing new and the plan is sent.
    services.run(Effect::Apply {
        view: changed.clone(),
        confirm: Confirm::default(),
    });
    let summary = next(&mut rx, |a| match a {
        Action::ApplyFinished(r) => Some(r.expect("applied")),
        Action::ApplyReplanned { round, .. } => panic!("replanned again: {round}"),
        _ => None,
    })
    .await;
    assert!(summary.done >= 1, "{summary:?}");
    assert!(env.sim.write_count() > writes);
}
