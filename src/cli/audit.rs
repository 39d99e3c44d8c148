//! `m365sync audit`: the append-only audit log.
use std::io::Write;

use anyhow::Result;
use clap::Args;

use crate::config::Settings;

use super::open_directory_read_only;
use super::output::{self, Format, FormatArgs, Record};

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub format: FormatArgs,
}

/// One line of `m365sync audit --json|--csv`: one write to the tenant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLine {
    /// When (RFC 3339).
    pub at: String,
    /// Who: the signed-in account or the app.
    pub actor: String,
    /// `create`, `block`, `re-enable`, `set-password`, `create-group`, `add-member`, ...
    pub action: String,
    /// The UPN or group it was about.
    pub target: String,
    /// Graph's request-id, for support.
    pub request_id: Option<String>,
    /// `done`, `failed`, ...
    pub outcome: String,
    pub detail: Option<String>,
}

impl Record for AuditLine {
    const FIELDS: &'static [&'static str] = &[
        "at",
        "actor",
        "action",
        "target",
        "requestId",
        "outcome",
        "detail",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.at.clone(),
            self.actor.clone(),
            self.action.clone(),
            self.target.clone(),
            output::opt(&self.request_id),
            self.outcome.clone(),
            output::opt(&self.detail),
        ]
    }
}

/// `m365sync audit [--json|--csv]`.
pub fn audit(settings: &Settings, args: &AuditArgs, out: &mut dyn Write) -> Result<()> {
    let d = open_directory_read_only(settings)?;
    let format = args.format.format();
    match format {
        Format::Csv => output::csv_header::<AuditLine>(out)?,
        Format::Text => output::row(
            out,
            &[
                ("AT", 20),
                ("ACTOR", 24),
                ("ACTION", 13),
                ("TARGET", 40),
                ("OUTCOME", 7),
                ("REQUEST-ID", 36),
                ("DETAIL", 0),
            ],
        )?,
        Format::Json => {}
    }
    for a in d.audit_list()? {
        let line = AuditLine {
            at: a.at,
            actor: a.actor,
            action: a.action,
            target: a.target,
            request_id: a.request_id,
            outcome: a.outcome,
            detail: a.detail,
        };
        if format == Format::Text {
            output::row(
                out,
                &[
                    (&line.at, 20),
                    (&line.actor, 24),
                    (&line.action, 13),
                    (&line.target, 40),
                    (&line.outcome, 7),
                    (line.request_id.as_deref().unwrap_or("-"), 36),
                    (line.detail.as_deref().unwrap_or(""), 0),
                ],
            )?;
        } else {
            output::record(out, format, &line)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_json_and_csv_have_the_same_camel_case_fields() {
        output::tests::same_fields_in_json_and_csv(&AuditLine {
            at: "2026-12-03T10:00:00Z".into(),
            actor: "admin@contoso.com".into(),
            action: "create".into(),
            target: "ann@contoso.com".into(),
            request_id: Some("r-1".into()),
            outcome: "done".into(),
            detail: None,
        });
    }
}
