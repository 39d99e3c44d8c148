//! `m365sync login`, `logout` and `status`: the tenant's sign-in and its token cache.
use std::io::Write;

use anyhow::Result;

use crate::auth::Session;
use crate::config::Settings;
use crate::text::clean;

use super::{authenticator, cache, relative, unix_now, SecretArgs};

pub async fn login(settings: &Settings, secret: &SecretArgs, out: &mut dyn Write) -> Result<()> {
    let auth = authenticator(settings)?;
    let cache = cache(settings)?;
    let secret = secret.secret()?;
    let tokens = match &secret {
        Some(secret) => auth.client_credentials(secret).await?,
        None => {
            let start = auth.start_device_code().await?;
            writeln!(out, "{}", clean(&start.message))?;
            out.flush()?;
            auth.poll_device_code(&start).await?
        }
    };
    let session = Session::start(auth, cache, tokens, secret)?;
    let who = session.identity().await;
    let expires = session.expires_at().await;
    writeln!(
        out,
        "Signed in to tenant {} as {}. Token expires {}; cached in {}.",
        clean(settings.tenant()?),
        clean(&who.name),
        relative(expires - unix_now()),
        session.cache.path.display()
    )?;
    Ok(())
}

pub fn logout(settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let cache = cache(settings)?;
    let existed = cache.path.exists();
    cache.clear()?;
    if existed {
        writeln!(
            out,
            "Signed out of tenant {}: removed {}.",
            clean(settings.tenant()?),
            cache.path.display()
        )?;
    } else {
        writeln!(
            out,
            "Not signed in to tenant {}.",
            clean(settings.tenant()?)
        )?;
    }
    Ok(())
}

/// Exit status 0 when signed in (the token may be due a refresh), 1 when not.
pub fn status(settings: &Settings, out: &mut dyn Write) -> Result<bool> {
    let cache = cache(settings)?;
    writeln!(out, "tenant:     {}", clean(settings.tenant()?))?;
    writeln!(out, "authority:  {}", clean(&settings.authority))?;
    writeln!(out, "graph:      {}", clean(&settings.graph_url))?;
    writeln!(
        out,
        "data dir:   {}",
        clean(&settings.data_dir.display().to_string())
    )?;
    match cache.load()? {
        None => {
            writeln!(out, "signed in:  no (run `m365sync login`)")?;
            Ok(false)
        }
        Some(t) => {
            let left = t.expires_at - unix_now();
            let state = if left > 0 {
                format!("expires {}", relative(left))
            } else if t.refresh_token.is_some() || t.grant == "client_credentials" {
                format!("expired {}; refreshed on next use", relative(left))
            } else {
                format!("expired {}; run `m365sync login`", relative(left))
            };
            writeln!(
                out,
                "signed in:  {} ({})",
                clean(&t.identity.name),
                clean(&t.grant)
            )?;
            writeln!(out, "token:      {state}")?;
            writeln!(out, "cache:      {}", cache.path.display())?;
            Ok(left > 0 || t.refresh_token.is_some() || t.grant == "client_credentials")
        }
    }
}
