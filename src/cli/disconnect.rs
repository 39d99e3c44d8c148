//! `m365sync disconnect`: forget the tenant; Microsoft 365 accounts are left as they are.
use std::io::Write;

use anyhow::Result;

use crate::config::Settings;

use super::{cache, open_directory};

/// `m365sync disconnect`.
pub fn disconnect(settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let mut d = open_directory(settings)?;
    let n = d.disconnect()?;
    let cache = cache(settings)?;
    let had = cache.path.exists();
    cache.clear()?;
    writeln!(
        out,
        "Cleared the binding selection and the account link of {n} directory user{}.",
        if n == 1 { "" } else { "s" }
    )?;
    if had {
        writeln!(out, "Removed the token cache {}.", cache.path.display())?;
    } else {
        writeln!(out, "No token cache to remove.")?;
    }
    writeln!(out, "No Microsoft 365 account was changed.")?;
    Ok(())
}
