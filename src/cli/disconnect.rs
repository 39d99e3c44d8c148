//! `m365sync disconnect`: forget the tenant; Microsoft 365 accounts are left as they are.
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Result};
use clap::Args;

use crate::config::Settings;
use crate::format::count;
use crate::text::clean;

use super::{cache, open_directory, UsageError};

#[derive(Debug, Clone, Args)]
pub struct DisconnectArgs {
    /// Do not ask first (needed when not run on a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// What disconnecting clears and keeps, as the question and `--help` say it.
fn what_it_does(tenant: &str, settings: &Settings, cache: &std::path::Path) -> String {
    format!(
        "Disconnect from tenant {tenant}?\n\
         It clears, in {db}:\n  \
           - the binding wish and account link of every directory user,\n  \
           - the binding wish and M365 group link (and last error) of every group,\n  \
           - the UPN overrides and the records of failed imports;\n\
         and removes the token cache {cache} and the saved copy of the tenant's users.\n\
         Kept: directory users, groups and memberships, the policy, the domain settings, the \
         journal and the audit log.\n\
         No Microsoft 365 account is changed: nothing is blocked, deleted or edited.",
        tenant = clean(tenant),
        db = settings.db_path().display(),
        cache = cache.display(),
    )
}

/// Whether `answer` confirms disconnecting from `tenant`: `y`, `yes` or the tenant itself.
fn confirms(answer: &str, tenant: &str) -> bool {
    let a = answer.trim();
    a.eq_ignore_ascii_case("y") || a.eq_ignore_ascii_case("yes") || a.eq_ignore_ascii_case(tenant)
}

/// `m365sync disconnect [--yes]`: on a terminal it asks (type the tenant or y); elsewhere it
/// needs `--yes` (exit 64 without). Takes the apply lock (exit 75 while a sync applies).
pub fn disconnect(settings: &Settings, args: &DisconnectArgs, out: &mut dyn Write) -> Result<()> {
    let tenant = settings.tenant()?.to_string();
    let cache = cache(settings)?;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(format!(
                "disconnect asks first, and this is not a terminal: pass --yes to disconnect \
                 from tenant {}",
                clean(&tenant)
            ))
            .into());
        }
        let mut err = std::io::stderr().lock();
        writeln!(err, "{}", what_it_does(&tenant, settings, &cache.path))?;
        write!(
            err,
            "Type the tenant ({}) or y to disconnect: ",
            clean(&tenant)
        )?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !confirms(&answer, &tenant) {
            bail!("not confirmed: nothing changed");
        }
    }
    // Not while a sync applies: its links would come back under our feet.
    let _lock = crate::sync::pipeline::lock(&settings.data_dir, "disconnect")?;
    let mut d = open_directory(settings)?;
    let r = d.disconnect()?;
    let had = cache.path.exists();
    cache.clear()?;
    let copy = crate::snapshot::path_for(&settings.data_dir, &tenant);
    let had_copy = crate::snapshot::remove(&settings.data_dir, &tenant)
        .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", copy.display()))?;
    writeln!(out, "Disconnected from tenant {}:", clean(&tenant))?;
    writeln!(
        out,
        "  cleared the binding wish and account link of {}",
        count(r.users, "directory user", None)
    )?;
    writeln!(
        out,
        "  cleared the binding wish and M365 group link of {}",
        count(r.groups, "group", None)
    )?;
    writeln!(
        out,
        "  removed {} and {}",
        count(r.upn_overrides, "UPN override", None),
        count(r.import_records, "failed-import record", None)
    )?;
    if had {
        writeln!(out, "  removed the token cache {}", cache.path.display())?;
    } else {
        writeln!(out, "  no token cache to remove")?;
    }
    if had_copy {
        writeln!(
            out,
            "  removed the saved copy of the tenant's users {}",
            copy.display()
        )?;
    }
    writeln!(
        out,
        "Kept: directory users, groups and memberships, the policy, the domain settings, the \
         journal and the audit log."
    )?;
    writeln!(out, "No Microsoft 365 account was changed.")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_or_y_confirms_anything_else_does_not() {
        for yes in [
            "y",
            "Y\n",
            " yes ",
            "contoso.onmicrosoft.com\n",
            "CONTOSO.onmicrosoft.com",
        ] {
            assert!(confirms(yes, "contoso.onmicrosoft.com"), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "contoso", "yy", "disconnect"] {
            assert!(!confirms(no, "contoso.onmicrosoft.com"), "{no:?}");
        }
    }
}
