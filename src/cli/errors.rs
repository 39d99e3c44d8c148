//! `m365sync errors`: the Errors tab, headless.
use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;

use crate::config::Settings;
use crate::directory::Directory;
use crate::graph::GraphClient;

use super::{session, SecretArgs};

#[derive(Debug, Clone, Args)]
pub struct ErrorsArgs {
    /// One JSON object per line (the diagnosis: kind, title, what, why, steps, fix, raw)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
}

/// The status a journal's failed op most likely had, from Graph's code (the journal keeps the
/// code, message and request-id, not the status).
fn status_of_code(code: &str) -> u16 {
    match code {
        "InvalidAuthenticationToken" => 401,
        "Authorization_RequestDenied" => 403,
        "Request_ResourceNotFound" => 404,
        "TooManyRequests" | "Request_ThrottledTemporarily" => 429,
        "serviceNotAvailable" | "Service_InternalServerError" => 503,
        "generalException" => 500,
        _ => 400,
    }
}

/// `m365sync errors`: the Errors tab, headless.
pub async fn errors(settings: &Settings, args: &ErrorsArgs, out: &mut dyn Write) -> Result<()> {
    use crate::diagnose::{self, Context, Diagnosis, Subject};
    use crate::directory::JournalState;
    let db = settings.db_path();
    let (failures, journal, users) = tokio::task::spawn_blocking(move || -> Result<_> {
        let d = Directory::open_read_only(&db)?;
        Ok((d.failures()?, d.journal_list(None)?, d.users()?))
    })
    .await??;
    let mut found: Vec<(&'static str, Diagnosis)> = Vec::new();
    for f in &failures {
        found.push((
            "import",
            diagnose::diagnose_import(&f.kind, &f.user_principal_name, &f.message, Some(&f.at)),
        ));
    }
    // The last outcome of each (user, kind of change): a failure a later run fixed is gone.
    let mut last: std::collections::HashMap<(i64, crate::sync::plan::OpKind), usize> =
        Default::default();
    for (i, e) in journal.iter().enumerate() {
        last.insert((e.op.directory_id, e.op.kind), i);
    }
    let mut latest: Vec<usize> = last.into_values().collect();
    latest.sort_unstable();
    for e in latest.into_iter().map(|i| &journal[i]) {
        if e.state != JournalState::Failed {
            continue;
        }
        let code = e.error_code.clone().unwrap_or_else(|| "unknown".into());
        let err = crate::graph::GraphError::Api {
            status: status_of_code(&code),
            code,
            message: e.error_message.clone().unwrap_or_default(),
            request_id: e.request_id.clone(),
            date: Some(e.updated_at.clone()),
            retry_after: None,
        };
        found.push((
            "sync",
            diagnose::diagnose_graph(&err, &Context::for_op(&e.op)),
        ));
    }
    // Preflight needs the tenant's domains (and its deleted users): only when signed in.
    match session(settings, args.secret.secret()?).await {
        Ok(session) => {
            let graph = GraphClient::new(settings.http_client()?, &settings.graph_url, session);
            let (deleted, domains) = crate::sync::apply::deleted_and_domains(&graph)
                .await
                .context("reading the tenant's domains and deleted users")?;
            let index = crate::sync::preflight::TenantIndex::new(std::iter::empty(), &deleted);
            let by_id: std::collections::HashMap<i64, &crate::directory::DirectoryUser> =
                users.iter().map(|u| (u.id, u)).collect();
            for issue in crate::sync::preflight::preflight(
                &users,
                &domains,
                Some(&index),
                &crate::sync::preflight::PreflightOptions::default(),
            ) {
                let subject = by_id
                    .get(&issue.directory_id)
                    .map(|u| Subject::User(u.email.clone()))
                    .unwrap_or_default();
                found.push(("preflight", diagnose::diagnose_issue(&issue, subject)));
            }
        }
        Err(e) => eprintln!("note: preflight left out ({e:#})"),
    }
    for (source, d) in &found {
        if args.json {
            let mut v = serde_json::to_value(d)?;
            v["source"] = serde_json::Value::from(*source);
            serde_json::to_writer(&mut *out, &v)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "[{}] {} ({source}): {}",
                d.kind,
                d.subject.label(),
                d.title
            )?;
            for (n, step) in d.steps.iter().enumerate() {
                writeln!(out, "    {}. {step}", n + 1)?;
            }
            if let Some(raw) = &d.raw {
                writeln!(
                    out,
                    "    raw: {} {} (request-id {})",
                    raw.code,
                    raw.message,
                    raw.request_id.as_deref().unwrap_or("-")
                )?;
            }
        }
    }
    if !args.json {
        writeln!(out, "{} errors", found.len())?;
    }
    Ok(())
}
