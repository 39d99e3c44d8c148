//! `m365sync errors`: the Errors tab, headless: import failures, the failures of the last
//! runs, passwords never delivered, and the plan's findings (held-back users and groups), from
//! the same pipeline as `sync --dry-run` and the console.
use std::io::Write;

use anyhow::Result;
use clap::Args;

use crate::config::Settings;
use crate::diagnose::{self, Diagnosis};
use crate::directory::Directory;

use crate::text::clean;

use super::output;
use super::{pipeline, unix_now, SecretArgs};

#[derive(Debug, Clone, Args)]
pub struct ErrorsArgs {
    /// One JSON object per line: source, kind, title, what, why, steps, fix, also, subject,
    /// permission, raw (status, code, message, requestId, date, traceId, target)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub freshness: super::FreshnessArgs,
    #[command(flatten)]
    pub secret: SecretArgs,
}

/// One line of `m365sync errors --json`: a diagnosis, where it comes from, camelCase.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorLine<'a> {
    /// `import`, `sync`, `preflight` or `tenant` (a licence error Microsoft recorded on an
    /// account).
    pub source: &'a str,
    /// The catalog's stable kind (`upn-domain-unverified`).
    pub kind: &'a str,
    pub title: &'a str,
    pub what: &'a str,
    pub why: &'a str,
    pub steps: &'a [String],
    /// The one-key fix the console offers (`use-default-domain`), if any.
    pub fix: Option<crate::diagnose::FixAction>,
    pub also: &'a [crate::diagnose::FixAction],
    /// `{"type": "user"|"group"|"op"|"none", "name": ...}`.
    pub subject: &'a crate::diagnose::Subject,
    /// The Graph permission an operation needs, for a permission failure.
    pub permission: Option<&'a str>,
    /// What Microsoft sent, verbatim.
    pub raw: Option<RawLine<'a>>,
}

/// Microsoft's error as sent, camelCase.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RawLine<'a> {
    pub status: Option<u16>,
    pub code: &'a str,
    pub message: &'a str,
    pub request_id: Option<&'a str>,
    pub date: Option<&'a str>,
    pub trace_id: Option<&'a str>,
    pub target: Option<&'a str>,
}

impl<'a> ErrorLine<'a> {
    pub fn new(source: &'a str, d: &'a Diagnosis) -> Self {
        ErrorLine {
            source,
            kind: &d.kind,
            title: &d.title,
            what: &d.what,
            why: &d.why,
            steps: &d.steps,
            fix: d.fix,
            also: &d.also,
            subject: &d.subject,
            permission: d.permission.as_deref(),
            raw: d.raw.as_ref().map(|r| RawLine {
                status: r.status,
                code: &r.code,
                message: &r.message,
                request_id: r.request_id.as_deref(),
                date: r.date.as_deref(),
                trace_id: r.trace_id.as_deref(),
                target: r.target.as_deref(),
            }),
        }
    }
}

/// `m365sync errors`: the Errors tab, headless.
pub async fn errors(settings: &Settings, args: &ErrorsArgs, out: &mut dyn Write) -> Result<()> {
    let db = settings.db_path();
    let (failures, latest, undelivered) =
        crate::failure::blocking("reading the directory", move || {
            let d = Directory::open_read_only(&db)?;
            Ok((
                d.failures()?,
                d.journal_latest()?,
                d.passwords_undelivered()?,
            ))
        })
        .await?;
    let mut found: Vec<(&'static str, Diagnosis)> = Vec::new();
    for f in &failures {
        found.push((
            "import",
            diagnose::diagnose_import(&f.kind, &f.user_principal_name, &f.message, Some(&f.at)),
        ));
    }
    for (_, d) in crate::sync::pipeline::journal_failures(&latest) {
        found.push(("sync", d));
    }
    for u in &undelivered {
        found.push(("sync", diagnose::diagnose_undelivered(&u.email, &u.at)));
    }
    // The plan's findings need the tenant (domains, deleted users): only when signed in.
    let budget = crate::sync::apply::WriteBudget::GRAPH;
    match pipeline(settings, args.secret.secret()?, budget).await {
        Ok(p) => {
            let tenant = super::tenant::tenant(settings, &p.graph, &args.freshness).await?;
            let view = p.plan_only(Some(tenant), unix_now()).await?;
            for f in crate::sync::pipeline::findings(&view) {
                found.push((f.source.label(), f.diagnose()));
            }
            if view.unchecked > 0 {
                eprintln!(
                    "note: {} not checked yet; `m365sync sync --dry-run` checks them against \
                     the tenant",
                    crate::format::count(
                        view.unchecked,
                        "op an interrupted run left is",
                        Some("ops an interrupted run left are")
                    )
                );
            }
        }
        Err(e) => eprintln!(
            "note: the plan's findings are left out ({})",
            clean(&format!("{e:#}"))
        ),
    }
    for (source, d) in &found {
        if args.json {
            output::json_line(out, &ErrorLine::new(source, d))?;
        } else {
            writeln!(
                out,
                "[{}] {} ({source}): {}",
                clean(&d.kind),
                clean(&d.subject.label()),
                clean(&d.title)
            )?;
            for (n, step) in d.steps.iter().enumerate() {
                writeln!(out, "    {}. {}", n + 1, clean(step))?;
            }
            if let Some(raw) = &d.raw {
                writeln!(
                    out,
                    "    raw: {} {} (request-id {})",
                    clean(&raw.code),
                    clean(&raw.message),
                    clean(raw.request_id.as_deref().unwrap_or("-"))
                )?;
            }
        }
    }
    if !args.json {
        writeln!(out, "{}", crate::format::count(found.len(), "error", None))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_json_keys_are_camel_case() {
        let d = Diagnosis {
            kind: "throttled".into(),
            title: "t".into(),
            what: "w".into(),
            why: "y".into(),
            steps: vec!["one".into()],
            fix: None,
            also: vec![],
            subject: crate::diagnose::Subject::User("a@b.com".into()),
            permission: None,
            raw: Some(crate::diagnose::RawError {
                status: Some(429),
                code: "TooManyRequests".into(),
                message: "slow down".into(),
                request_id: Some("r".into()),
                date: None,
                trace_id: None,
                target: None,
            }),
        };
        let mut out = Vec::new();
        output::json_line(&mut out, &ErrorLine::new("sync", &d)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["source"], "sync");
        assert_eq!(v["subject"]["name"], "a@b.com");
        assert_eq!(v["raw"]["requestId"], "r");
        fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
            if let Some(o) = v.as_object() {
                for (k, v) in o {
                    out.push(k.clone());
                    keys(v, out);
                }
            }
        }
        let mut all = Vec::new();
        keys(&v, &mut all);
        assert!(all.iter().all(|k| !k.contains('_')), "{all:?}");
    }
}
