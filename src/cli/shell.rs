//! `m365sync completions SHELL` and `m365sync manpage`: generated from the clap definitions,
//! so they always know every command and flag; printed to stdout.
use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;

use super::Cli;

/// `m365sync completions bash|zsh|fish|elvish|powershell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<()> {
    // Into memory first: clap_complete panics when its writer fails (`| head`).
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "m365sync", &mut buf);
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
}

/// `m365sync manpage`: the man page of `m365sync` (section 1), its commands and the exit
/// codes.
pub fn manpage(out: &mut dyn Write) -> Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_the_man_page_know_the_commands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            let s = String::from_utf8(out).unwrap();
            for word in ["m365sync", "sync", "dry-run", "directory", "completions"] {
                assert!(s.contains(word), "{shell}: {word}");
            }
        }
        let mut out = Vec::new();
        manpage(&mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with(".ie") || s.contains(".TH m365sync"), "{s}");
        assert!(s.contains("disconnect") && s.contains("Exit codes"), "{s}");
    }
}
