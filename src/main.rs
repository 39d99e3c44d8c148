use std::process::ExitCode;

use std::io::IsTerminal;

use clap::Parser;
use m365sync::cli::{exit, Cli, Command, DirectoryCommand, PasswordCommand};
use m365sync::config::Settings;

/// Logs go to a daily file under the data dir, never to the terminal (the TUI owns it), and
/// never carry a token or secret. `M365SYNC_LOG` sets the filter (default `info`). Logging that
/// cannot start (a read-only data dir, a log file that is not ours) is one warning on stderr,
/// never a reason to stop: the command runs without a log.
fn init_logging(settings: &Settings) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let log = match m365sync::logfile::DailyLog::open(&settings.log_dir()) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("warning: logging disabled: {e}");
            return None;
        }
    };
    let (writer, guard) = tracing_appender::non_blocking(log);
    let filter = tracing_subscriber::EnvFilter::try_from_env("M365SYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(guard)
}

/// The console and the demo draw the whole screen and read keys: they need a terminal on
/// both sides, else they would write escape sequences into a file or a pipe.
fn need_terminal(what: &str) -> anyhow::Result<()> {
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        return Ok(());
    }
    anyhow::bail!(
        "{what} needs a terminal: it runs the full-screen console, so run it in a terminal \
         without redirecting its input or output (for scripts, see the commands in \
         `m365sync --help`)"
    )
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout();
    match cli.command {
        Some(Command::Sim(args)) => {
            m365sync::sim::run_cli(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Demo) => {
            need_terminal("m365sync demo")?;
            m365sync::demo::run().await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Completions { shell }) => {
            m365sync::cli::completions(shell, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Manpage) => {
            m365sync::cli::manpage(&mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        command => {
            if command.is_none() {
                need_terminal("the console (m365sync without a command)")?;
            }
            let settings = cli.global.settings()?;
            let _guard = init_logging(&settings);
            match command {
                None => {
                    m365sync::app::run_tui(settings, m365sync::app::TuiOptions::default()).await?;
                }
                Some(Command::Login(secret)) => {
                    m365sync::cli::login(&settings, &secret, &mut stdout).await?
                }
                Some(Command::Logout) => m365sync::cli::logout(&settings, &mut stdout)?,
                Some(Command::Status) => {
                    if !m365sync::cli::status(&settings, &mut stdout)? {
                        return Ok(ExitCode::FAILURE);
                    }
                }
                Some(Command::Users(args)) => {
                    m365sync::cli::users(&settings, &args, &mut stdout).await?
                }
                Some(Command::Directory(DirectoryCommand::Import { file })) => {
                    if !m365sync::cli::directory_import(&settings, &file, &mut stdout)? {
                        return Ok(ExitCode::FAILURE);
                    }
                }
                Some(Command::Directory(DirectoryCommand::List(args))) => {
                    m365sync::cli::directory_list(&settings, &args, &mut stdout)?
                }
                Some(Command::Directory(DirectoryCommand::Policy(args))) => {
                    m365sync::cli::directory_policy(&settings, &args, &mut stdout)?
                }
                Some(Command::Bind(args)) => {
                    m365sync::cli::set_want(&settings, &args, true, &mut stdout)?
                }
                Some(Command::Unbind(args)) => {
                    m365sync::cli::set_want(&settings, &args, false, &mut stdout)?
                }
                Some(Command::Groups(args)) => {
                    m365sync::cli::groups(&settings, &args, &mut stdout)?
                }
                Some(Command::Group(cmd)) => {
                    m365sync::cli::group_fix(&settings, &cmd, &mut stdout)?
                }
                Some(Command::Licences(args)) => {
                    m365sync::cli::licences(&settings, &args, &mut stdout).await?
                }
                Some(Command::Licence(cmd)) => {
                    m365sync::cli::licence(&settings, &cmd, &mut stdout)?
                }
                Some(Command::Sync(args)) => {
                    let code = m365sync::cli::sync(&settings, &args, &mut stdout).await?;
                    return Ok(ExitCode::from(code));
                }
                Some(Command::Password(PasswordCommand::Set { email, secret })) => {
                    let code = m365sync::cli::password_set(&settings, &email, &secret, &mut stdout)
                        .await?;
                    return Ok(ExitCode::from(code));
                }
                Some(Command::Audit(args)) => m365sync::cli::audit(&settings, &args, &mut stdout)?,
                Some(Command::Errors(args)) => {
                    m365sync::cli::errors(&settings, &args, &mut stdout).await?
                }
                Some(Command::Disconnect(args)) => {
                    m365sync::cli::disconnect(&settings, &args, &mut stdout)?
                }
                Some(
                    Command::Sim(_)
                    | Command::Demo
                    | Command::Completions { .. }
                    | Command::Manpage,
                ) => unreachable!(),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    // A bad command line exits 64 (sysexits' EX_USAGE), not clap's 2, which means "something
    // failed or was held back" here; --help and --version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // A closed stdout (`m365sync users | head`) is not an error worth a message.
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            // Graph's messages, names and paths are not ours: nothing in them reaches the
            // terminal as a control sequence.
            eprintln!("error: {}", m365sync::text::clean(&format!("{e:#}")));
            // 75 when another m365sync holds the apply lock, 64 for a usage error, else 1.
            ExitCode::from(m365sync::cli::exit_code_of(&e))
        }
    }
}
