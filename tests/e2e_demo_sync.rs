//! The demo shows group binding and attribute sync (issue 10, item 7), through the pipeline
//! against the demo's own simulated tenant: a fresh demo plans the changed job title and the
//! manager, says the synced user is not edited and why, leaves the guests to the Import tab;
//! binding `Field Team` provisions its members "through group Field Team", and after the
//! apply they are Bound and the next plan is empty.
use m365sync::directory::{BindingState, Directory, ImportStatus};
use m365sync::graph::GraphClient;
use m365sync::sync::apply::{self, ApplyOptions, EventSink, WriteBudget};
use m365sync::sync::causes::{by_cause, Cause};
use m365sync::sync::pipeline::{self, DirectoryState, PlanView};
use m365sync::sync::plan::OpKind;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

async fn plan(graph: &GraphClient, db: &std::path::Path) -> PlanView {
    let dir = DirectoryState::load(&Directory::open(db).unwrap(), "").unwrap();
    let tenant = pipeline::read_tenant(graph, None, &dir).await.unwrap();
    pipeline::make_plan(&dir, &tenant, &Default::default(), 0, WriteBudget::GRAPH)
}

fn headings(v: &PlanView) -> Vec<(Cause, usize)> {
    by_cause(v)
        .into_iter()
        .map(|g| (g.cause, g.ops.len()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_binds_a_group_syncs_attributes_and_says_what_it_cannot_edit() {
    let data = tempfile::tempdir().unwrap();
    let (sim, settings) = m365sync::demo::prepare(data.path()).await.unwrap();
    let graph = sim
        .app_client(data.path().join("tokens.json"))
        .await
        .unwrap();
    let db = settings.db_path();

    // Fresh: the changed job title and the manager; the synced user is said, not sent.
    let v = plan(&graph, &db).await;
    assert_eq!(
        headings(&v),
        vec![(Cause::Attributes, 1), (Cause::Manager, 1)],
        "{:?}",
        v.plan.ops
    );
    let update = &v.plan.ops[0];
    assert!(update.email.starts_with("tomas.schneider@"), "{update:?}");
    assert_eq!(
        update.changes[0].describe(),
        "jobTitle: \"Support Team Lead\" -> \"Customer Service Manager\""
    );
    let synced: Vec<&str> = v
        .issues
        .iter()
        .filter(|(i, _)| i.kind == "synced-from-on-premises")
        .map(|(_, e)| e.as_str())
        .collect();
    assert_eq!(synced.len(), 1, "{:?}", v.issues);
    assert!(synced[0].starts_with("tobias.brandt@"), "{synced:?}");
    // The guests are Guest in Import (never imported as members by the seed).
    let idx = Directory::open(&db).unwrap().index().unwrap();
    let mut pages = graph.list_users(999);
    let mut guests = 0;
    while let Some(page) = futures::StreamExt::next(&mut pages).await {
        guests += page
            .unwrap()
            .iter()
            .filter(|u| idx.classify(u) == ImportStatus::Guest)
            .count();
    }
    assert_eq!(guests, 3);

    // Bind Field Team: its three people without an account are created through it, all
    // four added.
    {
        let mut d = Directory::open(&db).unwrap();
        let g = d.find_group("Field Team").unwrap().unwrap();
        d.set_group_want(&[g.id], true).unwrap();
    }
    let v = plan(&graph, &db).await;
    let field = Cause::Group {
        name: "Field Team".into(),
        new: true,
    };
    let h = headings(&v);
    assert!(h.contains(&(field.clone(), 3 + 1 + 4)), "{h:?}");
    let creates: Vec<&str> = v
        .plan
        .ops
        .iter()
        .filter(|o| o.kind == OpKind::Create)
        .map(|o| o.reason.as_str())
        .collect();
    assert_eq!(creates.len(), 3);
    assert!(creates.iter().all(|r| r.contains("bound via Field Team")));

    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let s = apply::apply(
        graph.clone(),
        db.clone(),
        v.ops(),
        ApplyOptions {
            actor: "test".into(),
            ..Default::default()
        },
        Box::new(EventSink(tx.clone())),
        tx,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!((s.done, s.failed), (v.ops().len(), 0));
    let users = Directory::open(&db).unwrap().users().unwrap();
    let members: Vec<_> = users
        .iter()
        .filter(|u| u.bound_via.iter().any(|g| g == "Field Team"))
        .collect();
    assert_eq!(members.len(), 4);
    assert!(members
        .iter()
        .all(|u| u.binding == BindingState::Bound && u.reason().contains("via Field Team")));
    let v = plan(&graph, &db).await;
    assert!(v.is_empty(), "{:?}", v.ops());
    sim.shutdown().await;
}
