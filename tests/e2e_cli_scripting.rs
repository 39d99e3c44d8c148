//! The CLI as scripts and cron see it, from the real binary: exit codes (0, 1, 64, 75; 2 and
//! 130 are in e2e_sync_cli, e2e_engine and kill_sync), the CSV import's refusals with their
//! file lines, hostile names never reaching the terminal raw, disconnect's question,
//! completions and the man page. Local commands only: no tenant, no network.
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use m365sync::directory::{Directory, NewDirectoryUser};

fn bin(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_m365sync"));
    c.arg("--data-dir")
        .arg(data)
        .env_remove("M365SYNC_TENANT")
        .env_remove("M365SYNC_CLIENT_ID")
        .env_remove("M365SYNC_CLIENT_SECRET")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    c
}

fn run(data: &Path, args: &[&str]) -> Output {
    bin(data).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// No byte a terminal would obey: only printable text and line ends.
fn assert_printable(what: &str, s: &str) {
    let bad: Vec<char> = s
        .chars()
        .filter(|&c| c != '\n' && m365sync::text::is_control(c))
        .collect();
    assert!(bad.is_empty(), "{what}: {bad:?} in {s:?}");
}

#[test]
fn usage_errors_exit_64_help_and_version_0() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    for (args, says) in [
        (&["--no-such-flag"][..], "unexpected argument"),
        (&["sync"], "use --dry-run or --apply"),
        (&["sync", "--dry-run", "--apply"], "cannot be used with"),
        (&["directory"], "Usage"),
        (&["users", "--status", "pending"], "invalid value"),
        (&["audit", "--json", "--csv"], "cannot be used with"),
        (
            &["directory", "policy", "--guard-max-share", "2"],
            "between 0 and 1",
        ),
        (&["completions", "tcsh"], "invalid value"),
    ] {
        let out = run(d, args);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // `sync` alone is refused before anything else: not even a sign-in is looked for.
    let out = run(d, &["sync"]);
    assert!(
        !text(&out.stderr).contains("login"),
        "{}",
        text(&out.stderr)
    );

    let out = run(d, &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(
        help.contains("Global options:") && help.contains("Exit codes:"),
        "{help}"
    );
    assert!(help.contains("64   usage"), "{help}");
    let out = run(d, &["sync", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("Global options:"));
    let out = run(d, &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("m365sync "));
}

/// A missing tenant or client id names the config file by its full path; exit 1.
#[test]
fn missing_config_names_the_config_file() {
    let data = tempfile::tempdir().unwrap();
    let out = run(data.path(), &["status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let path = data.path().join("config.toml");
    assert!(
        err.contains("no tenant configured") && err.contains(path.to_str().unwrap()),
        "{err}"
    );
    // A relative data dir is shown absolute.
    let out = Command::new(env!("CARGO_BIN_EXE_m365sync"))
        .current_dir(data.path())
        .args(["--data-dir", "rel", "--tenant", "t", "login"])
        .env_remove("M365SYNC_CLIENT_ID")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let want = data.path().join("rel").join("config.toml");
    let err = text(&out.stderr);
    assert!(
        err.contains("no client id configured") && err.contains(want.to_str().unwrap()),
        "{err}"
    );
}

/// The console and the demo draw the whole screen: without a terminal they say so, exit 1,
/// and write nothing to stdout (no escape sequence in a pipe or a file).
#[test]
fn demo_and_console_without_a_terminal_say_they_need_one() {
    let data = tempfile::tempdir().unwrap();
    for args in [&["demo"][..], &[]] {
        let out = run(data.path(), args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}: {:?}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(err.contains("needs a terminal"), "{args:?}: {err}");
        assert_printable("stderr", &err);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn completions_and_man_page_print_to_stdout() {
    let data = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef m365sync"),
        ("fish", "complete -c m365sync"),
    ] {
        let out = run(data.path(), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let s = text(&out.stdout);
        assert!(s.contains(marker) && s.contains("dry-run"), "{shell}: {s}");
    }
    let out = run(data.path(), &["manpage"]);
    assert_eq!(out.status.code(), Some(0));
    let man = text(&out.stdout);
    assert!(man.contains(".TH m365sync 1"), "{man}");
    assert!(man.contains("disconnect") && man.contains("Exit codes"));
    // Nothing was written to the data dir: no config needed, no log opened.
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0);
}

/// Control characters in names and emails are refused with the line they are on in the file,
/// counting blank lines and a cell spanning lines before them; what is printed is plain text.
#[test]
fn import_refuses_control_characters_with_their_file_line() {
    let data = tempfile::tempdir().unwrap();
    let csv = data.path().join("people.csv");
    std::fs::write(
        &csv,
        "email,givenName,surname,displayName,notes\n\
         \n\
         ann@example.com,Ann,Lee,Ann Lee,\"first line\n\
         second line\"\n\
         \n\
         \n\
         osc@example.com,Os,C,\"\u{1b}]52;c;ZXZpbA==\u{7}Evil\",\n\
         bidi@example.com,Bi,Di,\u{202e}gpj.exe,\n\
         nul@example.com,N\0,Ul,,\n\
         esc\u{1b}[2J@example.com,E,Sc,,\n\
         ben@example.com,Ben,Ode,Ben Ode,\n",
    )
    .unwrap();
    let out = run(data.path(), &["directory", "import", csv.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rejected rows: {}",
        text(&out.stderr)
    );
    let o = text(&out.stdout);
    assert_printable("import output", &o);
    let f = csv.display();
    for line in [
        format!("{f}:7: rejected: the displayName contains a control character, U+001B (ESC)"),
        format!(
            "{f}:8: rejected: the displayName contains a control character, U+202E \
             (right-to-left override)"
        ),
        format!("{f}:9: rejected: the givenName contains a control character, U+0000 (NUL)"),
        format!("{f}:10: rejected: the email contains a control character, U+001B (ESC)"),
    ] {
        assert!(o.contains(&line), "{line}\n{o}");
    }
    assert!(
        o.contains("2 added, 0 updated, 0 unchanged, 4 rejected"),
        "{o}"
    );
    assert!(
        !o.contains("ZXZpbA") && !o.contains("gpj"),
        "never echoed: {o}"
    );
    let list = text(&run(data.path(), &["directory", "list", "--json"]).stdout);
    assert_eq!(list.lines().count(), 2, "{list}");
}

#[test]
fn import_says_what_is_wrong_with_the_file() {
    let data = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &[u8]| {
        let p = data.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let import = |p: &Path| run(data.path(), &["directory", "import", p.to_str().unwrap()]);

    let out = import(&file(
        "semi.csv",
        b"email;givenName;surname\nann@example.com;Ann;Lee\n",
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the file seems to use ';' as separator; m365sync reads ','"),
        "{}",
        text(&out.stderr)
    );

    for body in [&b""[..], b"\n\n"] {
        let out = import(&file("empty.csv", body));
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("the file is empty"),
            "{}",
            text(&out.stderr)
        );
    }

    let out = import(&file(
        "quote.csv",
        b"email,displayName\nann@example.com,Ann\n\nben@example.com,\"Ben\ncid@example.com,Cid\n",
    ));
    assert_eq!(out.status.code(), Some(1));
    let o = text(&out.stdout);
    assert!(
        o.contains("quote.csv:4: rejected: a quote (\") opened on this line is never closed"),
        "{o}"
    );
    assert!(o.contains("1 added"), "{o}");

    let long = "x".repeat(100_000);
    let out = import(&file(
        "long.csv",
        format!("email,displayName\nann@example.com,{long}\n").as_bytes(),
    ));
    assert_eq!(out.status.code(), Some(1));
    let o = text(&out.stdout);
    assert!(
        o.contains(
            "long.csv:2: rejected: the displayName is 100,000 characters long (at most 1,024)"
        ),
        "{o}"
    );
    assert!(o.len() < 500, "the value is not echoed: {} bytes", o.len());
}

/// Re-importing a file without a column leaves that field; an empty cell clears it.
#[test]
fn a_column_missing_from_a_reimport_leaves_the_field() {
    let data = tempfile::tempdir().unwrap();
    let full = data.path().join("full.csv");
    std::fs::write(
        &full,
        "email,givenName,surname,displayName,jobTitle,department\n\
         ann@example.com,Ann,Lee,Ann Lee,Engineer,R&D\n",
    )
    .unwrap();
    let out = run(
        data.path(),
        &["directory", "import", full.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let thin = data.path().join("thin.csv");
    std::fs::write(&thin, "email,displayName\nann@example.com,Ann Lee\n").unwrap();
    let out = run(
        data.path(),
        &["directory", "import", thin.to_str().unwrap()],
    );
    assert!(
        text(&out.stdout).contains("0 added, 0 updated, 1 unchanged"),
        "{}",
        text(&out.stdout)
    );
    let user = || -> serde_json::Value {
        let out = run(data.path(), &["directory", "list", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let u = user();
    assert_eq!(u["jobTitle"], "Engineer", "{u}");
    assert_eq!(u["department"], "R&D");
    assert_eq!(u["givenName"], "Ann");
    let clear = data.path().join("clear.csv");
    std::fs::write(&clear, "email,jobTitle\nann@example.com,\n").unwrap();
    let out = run(
        data.path(),
        &["directory", "import", clear.to_str().unwrap()],
    );
    assert!(
        text(&out.stdout).contains("1 updated"),
        "{}",
        text(&out.stdout)
    );
    // An empty cell clears: kept as "" (the directory manages it, empty), so a sync clears
    // the account's job title too.
    let u = user();
    assert_eq!(u["jobTitle"], "", "{u}");
    assert_eq!(u["department"], "R&D");
}

/// Names that came from the tenant (the Import tab takes them as Graph has them) may carry
/// escapes: `directory list` and `groups` print them without any control character (text
/// and CSV stripped, JSON escaped to the same value), with a header line.
#[test]
fn directory_list_and_groups_strip_control_characters() {
    let data = tempfile::tempdir().unwrap();
    let hostile = "Ann\u{1b}]52;c;ZXZpbA==\u{7} \u{202e}gpj.exe\u{9b}2J";
    {
        let mut d = Directory::open(&data.path().join("directory.sqlite3")).unwrap();
        let id = d
            .add_user(&NewDirectoryUser {
                email: "ann@example.com".into(),
                display_name: hostile.into(),
                given_name: Some("A\u{1b}[31mnn".into()),
                surname: None,
            })
            .unwrap();
        let g = d.add_group("Sales\u{1b}[2J\u{202e}").unwrap();
        d.set_group_members(g, &[id]).unwrap();
    }
    let out = run(data.path(), &["directory", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert_printable("directory list", &o);
    let mut lines = o.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("BINDING")
            && header.contains("EMAIL")
            && header.contains("DISPLAY NAME"),
        "{o}"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .contains("Ann]52;c;ZXZpbA== gpj.exe2J"),
        "{o}"
    );

    let out = run(data.path(), &["directory", "list", "--json"]);
    let o = text(&out.stdout);
    assert_printable("directory list --json", &o);
    let v: serde_json::Value = serde_json::from_str(o.trim()).unwrap();
    assert_eq!(v["displayName"], hostile, "JSON keeps the value, escaped");
    assert_eq!(v["wantBound"], false);
    assert_eq!(v["userPrincipalName"], "ann@example.com");

    let out = run(data.path(), &["directory", "list", "--csv"]);
    let o = text(&out.stdout);
    assert_printable("directory list --csv", &o);
    let mut r = csv::Reader::from_reader(o.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let json_keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    let mut sorted = header.clone();
    sorted.sort();
    let mut keys = json_keys;
    keys.sort();
    assert_eq!(sorted, keys, "CSV has the JSON's fields");
    let row = r.records().next().unwrap().unwrap();
    assert_eq!(&row[2], "Ann]52;c;ZXZpbA== gpj.exe2J");

    for args in [
        &["groups"][..],
        &["groups", "--json"],
        &["groups", "--csv"],
        &["audit"],
    ] {
        let out = run(data.path(), args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_printable(&format!("{args:?}"), &text(&out.stdout));
    }
    let o = text(&run(data.path(), &["groups"]).stdout);
    assert!(
        o.starts_with("STATE") && o.contains("\"Sales[2J\"") && o.contains("1 member "),
        "{o}"
    );
}

/// `disconnect` off a terminal needs --yes (64, nothing changed), and waits for no apply: a
/// held apply lock is 75; with --yes it clears and says what it cleared and kept.
#[test]
fn disconnect_asks_or_takes_yes_and_respects_the_apply_lock() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    {
        let mut dir = Directory::open(&d.join("directory.sqlite3")).unwrap();
        let id = dir
            .add_user(&NewDirectoryUser {
                email: "ann@example.com".into(),
                display_name: "Ann".into(),
                ..Default::default()
            })
            .unwrap();
        dir.set_want(&[id], true).unwrap();
    }
    let cache = d.join("tokens").join("t.json");
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    std::fs::write(&cache, "{}").unwrap();

    let out = run(d, &["--tenant", "t", "disconnect"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("pass --yes"),
        "{}",
        text(&out.stderr)
    );
    assert!(cache.exists());

    let lock = m365sync::lock::ApplyLock::acquire(d, "sync --apply").unwrap();
    let out = run(d, &["--tenant", "t", "disconnect", "--yes"]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    assert!(cache.exists(), "nothing cleared while a sync applies");
    drop(lock);

    // Piped stdin is not a terminal, even with an answer on it: --yes is the way.
    let mut child = bin(d)
        .args(["--tenant", "t", "disconnect"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(64));

    // A saved copy of the tenant's users (and its WAL) goes with the disconnect.
    let copy = m365sync::snapshot::path_for(d, "t");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::write(&copy, b"x").unwrap();
    let wal = copy.with_file_name("t.sqlite3-wal");
    std::fs::write(&wal, b"x").unwrap();
    let out = run(d, &["--tenant", "t", "disconnect", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(
        o.contains("removed the saved copy of the tenant's users"),
        "{o}"
    );
    assert!(!copy.exists() && !wal.exists(), "the snapshot is gone");
    for says in [
        "Disconnected from tenant t:",
        "account link of 1 directory user\n",
        "M365 group link of 0 groups",
        "removed 0 UPN overrides and 0 failed-import records",
        "removed the token cache",
        "Kept: directory users, groups and memberships",
        "No Microsoft 365 account was changed.",
    ] {
        assert!(o.contains(says), "{says}\n{o}");
    }
    assert!(!cache.exists());
    let list = text(&run(d, &["directory", "list", "--json"]).stdout);
    let v: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
    assert_eq!(v["wantBound"], false);
}

/// On a terminal (a pty from util-linux's `script`), `disconnect` says what it clears and
/// keeps and asks: `n` changes nothing (exit 1), the tenant typed disconnects.
#[test]
fn disconnect_on_a_terminal_asks_for_the_tenant_or_y() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (util-linux) to give the command a terminal");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let cache = d.join("tokens").join("contoso.json");
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    std::fs::write(&cache, "{}").unwrap();
    let on_a_terminal = |answer: &str| -> Output {
        let cmd = format!(
            "'{}' --data-dir '{}' --tenant contoso disconnect",
            env!("CARGO_BIN_EXE_m365sync"),
            d.display()
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = on_a_terminal("n\n");
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{o}");
    for says in [
        "Disconnect from tenant contoso?",
        "the binding wish and account link of every directory user",
        "Kept: directory users, groups and memberships",
        "Type the tenant (contoso) or y to disconnect:",
        "not confirmed: nothing changed",
    ] {
        assert!(o.contains(says), "{says}\n{o}");
    }
    assert!(cache.exists());
    let out = on_a_terminal("CONTOSO\n");
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}");
    assert!(o.contains("Disconnected from tenant contoso:"), "{o}");
    assert!(!cache.exists());
}
