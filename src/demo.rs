//! `m365sync demo`: the whole console against the built-in simulated tenant, in a throwaway
//! data dir, with a directory seeded so that every import status shows up.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::Settings;
use crate::directory::{Directory, NewDirectoryUser};
use crate::graph::User;
use crate::sim::{Sim, SimOptions};

/// The seed the simulator serves by default; the demo reads the same file to know which
/// tenant users to import, collide with or leave new.
const SEED: &str = include_str!("../assets/demo-tenant.json");

/// How long the demo "person" takes to approve the device code, so the sign-in step is seen.
pub const APPROVE_AFTER: Duration = Duration::from_millis(2500);

#[derive(serde::Deserialize)]
struct Seed {
    users: Vec<User>,
    domains: Vec<crate::graph::Domain>,
}

/// What the demo directory holds, by construction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeedSummary {
    pub imported: usize,
    pub conflicts: usize,
    pub failed: usize,
    pub directory_only: usize,
}

/// Seed a directory from the demo tenant: tenant users 1..=40 imported (linked); 41..=52
/// held by unlinked directory users with the same email (Conflict), of which three were
/// already tried (Failed); a few directory-only people; one on the unverified domain.
pub fn seed_directory(dir: &mut Directory) -> Result<SeedSummary> {
    let seed: Seed = serde_json::from_str(SEED).context("parsing the demo seed")?;
    let users = &seed.users;
    anyhow::ensure!(users.len() > 60, "the demo seed has too few users");
    // users[0] is the admin who signs in: leave it New.
    let imported = dir
        .import(&users[1..=40])?
        .iter()
        .filter(|o| matches!(o, crate::directory::ImportOutcome::Imported { .. }))
        .count();
    let mut summary = SeedSummary {
        imported,
        ..SeedSummary::default()
    };

    for u in &users[41..=52] {
        let parts = u.display_name.clone().unwrap_or_default();
        dir.add_user(&NewDirectoryUser {
            email: u.email().to_string(),
            display_name: parts,
            given_name: u.given_name.clone(),
            surname: u.surname.clone(),
        })?;
        summary.conflicts += 1;
    }
    // An admin already tried to import three of them: those failed, with the reason kept.
    summary.failed = dir
        .import(&users[41..=43])?
        .iter()
        .filter(|o| matches!(o, crate::directory::ImportOutcome::Failed(_)))
        .count();
    summary.conflicts -= summary.failed;

    let default_domain = seed
        .domains
        .iter()
        .find(|d| d.is_default)
        .map(|d| d.id.clone())
        .context("the demo seed has no default domain")?;
    let unverified = seed
        .domains
        .iter()
        .find(|d| !d.is_verified)
        .map(|d| d.id.clone())
        .context("the demo seed has no unverified domain")?;
    let local_only = [
        ("Aiyana", "Whitehorse", &default_domain),
        ("Bogdan", "Kowalczyk", &default_domain),
        ("Chiara", "Esposito", &default_domain),
        ("Dmitri", "Volkov", &default_domain),
        ("Efua", "Mensah", &default_domain),
        ("Farid", "Haddad", &default_domain),
        ("Greta", "Lindqvist", &default_domain),
        ("Hiroshi", "Tanabe", &unverified),
    ];
    for (given, sur, domain) in local_only {
        dir.add_user(&NewDirectoryUser {
            email: format!("{}.{}@{}", given.to_lowercase(), sur.to_lowercase(), domain),
            display_name: format!("{given} {sur}"),
            given_name: Some(given.to_string()),
            surname: Some(sur.to_string()),
        })?;
        summary.directory_only += 1;
    }
    seed_groups(dir, users)?;
    seed_sync(dir, users)?;
    Ok(summary)
}

/// The demo's group to bind: three directory-only people (no account yet) and one imported
/// user. Binding it provisions the three and adds all four, each "via Field Team".
pub const FIELD_TEAM: &str = "Field Team";

/// The seed users the demo puts to work for attribute sync, by their UPN's local part.
const RETITLED: &str = "tomas.schneider"; // job title: Support Team Lead -> Customer Service Manager
const MANAGED: &str = "benjamin.sorensen"; // manager: none -> Irvin Sayers
const MANAGER: &str = "irvin.sayers";
const SYNCED: &str = "tobias.brandt"; // synced from on-premises: not editable

/// What the demo shows of group binding and attribute sync: `Field Team` to bind; one
/// imported user whose job title the directory changed, one whose manager it names; the three
/// users synced from on-premises AD imported, one with another job title in the directory
/// (shown as not editable, never sent); the tenant's guests left to the Import tab (Guest).
fn seed_sync(dir: &mut Directory, users: &[User]) -> Result<()> {
    let find = |local: &str| {
        users
            .iter()
            .find(|u| {
                u.user_principal_name
                    .split_once('@')
                    .is_some_and(|(l, _)| l == local)
            })
            .with_context(|| format!("the demo seed has no {local}"))
    };
    let synced: Vec<User> = users
        .iter()
        .filter(|u| u.on_premises_sync_enabled)
        .cloned()
        .collect();
    anyhow::ensure!(synced.len() >= 2, "the demo seed has no synced users");
    dir.import(&synced)?;
    // A column absent from a file leaves that field alone: one file per attribute.
    for csv in [
        format!(
            "email,jobTitle\n{},Customer Service Manager\n{},Operations Lead\n",
            find(RETITLED)?.email(),
            find(SYNCED)?.email()
        ),
        format!(
            "email,manager\n{},{}\n",
            find(MANAGED)?.email(),
            find(MANAGER)?.email()
        ),
    ] {
        let report = dir.import_csv(csv.as_bytes())?;
        anyhow::ensure!(
            report.rejected.is_empty(),
            "the demo's attributes: {:?}",
            report.rejected
        );
    }
    // Field Team: three directory-only people and one imported user.
    let g = dir.add_group(FIELD_TEAM)?;
    let mut ids = Vec::new();
    for email in [
        "aiyana.whitehorse@",
        "bogdan.kowalczyk@",
        "chiara.esposito@",
        "jordan.eriksson@",
    ] {
        let u = dir
            .users()?
            .into_iter()
            .find(|u| u.email.starts_with(email))
            .with_context(|| format!("the demo directory has no {email}"))?;
        ids.push(u.id);
    }
    dir.set_group_members(g, &ids)?;
    Ok(())
}

/// The demo's directory groups, members from the imported users and the directory-only
/// people: three names Graph would refuse as they are (`Sales (EU)` has characters forbidden
/// in a mailNickname, `Engineering ` a trailing space, `R&D; Ops` a `;` and a space) and a
/// valid one. None is bound: binding one is the admin's choice.
pub const DEMO_GROUPS: [&str; 4] = ["Sales (EU)", "Engineering ", "R&D; Ops", "Finance"];

fn seed_groups(dir: &mut Directory, users: &[User]) -> Result<()> {
    let members: [&[usize]; 4] = [&[1, 2, 3, 4], &[5, 6, 7, 8], &[9, 10, 11], &[12, 13, 14]];
    for (name, idx) in DEMO_GROUPS.iter().zip(members) {
        let g = dir.add_group(name)?;
        let mut ids = Vec::new();
        for &i in idx {
            if let Some(u) = dir.find_by_email(users[i].email())? {
                ids.push(u.id);
            }
        }
        dir.set_group_members(g, &ids)?;
    }
    Ok(())
}

/// Start the simulator and a throwaway data dir, and the settings that point at them.
pub async fn prepare(data_dir: &std::path::Path) -> Result<(Sim, Settings)> {
    // A short poll interval keeps the sign-in step brief without hiding it.
    let sim = Sim::start(SimOptions {
        device_code_interval: 1,
        ..SimOptions::default()
    })
    .await
    .context("starting the simulated tenant")?;
    let settings = Settings {
        authority: sim.base_url.clone(),
        graph_url: format!("{}/v1.0", sim.base_url),
        tenant: Some(sim.tenant_id.clone()),
        client_id: Some(sim.public_client_id.clone()),
        ca_file: None,
        service_account: None,
        data_dir: data_dir.to_path_buf(),
    };
    let mut dir = Directory::open(&settings.db_path())?;
    seed_directory(&mut dir)?;
    Ok((sim, settings))
}

/// Approve every device code `APPROVE_AFTER` after it appears, as a person on their phone.
pub fn auto_approve(sim: Arc<Sim>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen: HashMap<String, tokio::time::Instant> = HashMap::new();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = tokio::time::Instant::now();
            for code in sim.pending_user_codes() {
                let first = *seen.entry(code.clone()).or_insert(now);
                if now.duration_since(first) >= APPROVE_AFTER {
                    sim.approve(&code);
                }
            }
        }
    })
}

pub async fn run() -> Result<()> {
    // Never the user's real data dir: the demo must not leave anything behind.
    let data_dir = tempfile::Builder::new()
        .prefix("m365sync-demo-")
        .tempdir()
        .context("creating the demo's throwaway data dir")?;
    let (sim, settings) = prepare(data_dir.path()).await?;
    let sim = Arc::new(sim);
    let approver = auto_approve(sim.clone());
    let result = crate::app::run_tui(
        settings,
        crate::app::TuiOptions {
            demo_banner: Some("DEMO: simulated tenant".to_string()),
            ..Default::default()
        },
    )
    .await;
    approver.abort();
    let _ = approver.await;
    if let Ok(sim) = Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::ImportStatus;

    #[test]
    fn the_demo_directory_shows_every_status() {
        let mut dir = Directory::open_in_memory().unwrap();
        let s = seed_directory(&mut dir).unwrap();
        assert_eq!(s.imported, 40);
        assert_eq!(s.failed, 3);
        assert_eq!(s.conflicts, 9);
        let seed: Seed = serde_json::from_str(SEED).unwrap();
        let idx = dir.index().unwrap();
        let count = |st| seed.users.iter().filter(|u| idx.classify(u) == st).count();
        // The three synced from on-premises are imported too; the three guests are Guest.
        assert_eq!(count(ImportStatus::Imported), 43);
        assert_eq!(count(ImportStatus::Failed), 3);
        assert_eq!(count(ImportStatus::Conflict), 9);
        assert_eq!(count(ImportStatus::Guest), 3);
        assert_eq!(count(ImportStatus::New), seed.users.len() - 58);
        let users = dir.users().unwrap();
        assert!(users
            .iter()
            .any(|u| u.email.ends_with("@northwind-labs.io")));
        // A fresh demo has nothing pending: every wish matches the account as it is.
        assert!(users
            .iter()
            .all(|u| u.want_bound == (u.binding == crate::directory::BindingState::Bound)));
        // The groups: three broken names and a valid one, a few members each, none bound.
        let groups = dir.groups().unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        for n in DEMO_GROUPS {
            assert!(names.contains(&n), "{n:?} in {names:?}");
        }
        assert!(groups.iter().all(|g| g.members.len() >= 3 && !g.want_bound));
        let nick =
            |n: &str| crate::sync::groups::nickname_for(&dir.find_group(n).unwrap().unwrap());
        assert_eq!(nick("Sales (EU)"), "SalesEU");
        assert_eq!(nick("R&D; Ops"), "R&DOps");
        assert_eq!(nick("Engineering "), "Engineering");
        // Field Team, unbound: three people without an account and one imported user.
        let field = dir.find_group(FIELD_TEAM).unwrap().unwrap();
        assert!(!field.want_bound);
        assert_eq!(field.members.len(), 4);
        let user = |local: &str| {
            users
                .iter()
                .find(|u| u.email.starts_with(&format!("{local}@")))
                .unwrap()
                .clone()
        };
        assert_eq!(
            user(RETITLED).job_title.as_deref(),
            Some("Customer Service Manager")
        );
        assert!(user(MANAGED).attributes["manager"].starts_with(MANAGER));
        assert!(user(SYNCED).tenant_user_id.is_some());
    }
}
