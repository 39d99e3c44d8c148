//! The binary never panics on its environment: a read-only data dir, a log file it cannot
//! open, an odd umask. No simulator is needed: these commands never reach the network (the
//! endpoints are a closed loopback port, never Microsoft).
//!
//! Root ignores file modes, and CI runs as root. Where a test needs modes to bite, a root run
//! drops the child to uid/gid 65534 (`nobody`) for that command and hands it the data dir, so
//! the read-only case is real there too; the checks that the read commands write nothing
//! (same database bytes, no `-wal`/`-shm` left, no new file) hold whoever runs them. What only
//! a file mode can show, and no privilege drop is possible (the binary not executable by
//! `nobody`), is said on stderr and the weaker checks still run.
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn bin(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_m365sync"));
    c.env_clear()
        .args(["--authority", "http://127.0.0.1:9"])
        .args(["--graph-url", "http://127.0.0.1:9/v1.0"])
        .args(["--tenant", "contoso.onmicrosoft.com"])
        .args(["--client-id", "00000000-0000-0000-0000-000000000000"])
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Not a panic (exit 101, "panicked at").
fn no_panic(what: &str, out: &Output) {
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{what} panicked: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

fn warnings(out: &Output) -> usize {
    text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("warning: logging disabled: cannot open "))
        .count()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn chown_all(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p).unwrap() {
            chown_all(&e.unwrap().path(), uid);
        }
    }
}

/// Every file under `dir` with its size and bytes' hash, to compare before and after.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, u64)> {
    use std::hash::{Hash, Hasher};
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                out.push((p, bytes.len() as u64, h.finish()));
            }
        }
    }
    out.sort();
    out
}

/// A data dir with a directory database in it, made by the real `directory import`.
fn data_dir_with_a_directory(tmp: &Path) -> PathBuf {
    let data = tmp.join("data");
    let csv = tmp.join("people.csv");
    std::fs::write(
        &csv,
        "email,givenName,surname,displayName,groups\n\
         ann@contoso.com,Ann,Lee,Ann Lee,Sales\n\
         ben@contoso.com,Ben,Ode,Ben Ode,\n",
    )
    .unwrap();
    let out = run({
        let mut c = bin(&data);
        c.args(["directory", "import"]).arg(&csv);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run({
        let mut c = bin(&data);
        c.args(["bind", "ann@contoso.com"]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    data
}

/// Under root: whether a child dropped to `nobody` can run the binary in `dir` at all (the
/// target dir, or the temp dir, may sit where `nobody` cannot reach).
fn nobody_can_run_the_binary_in(dir: &Path) -> bool {
    let mut c = Command::new(env!("CARGO_BIN_EXE_m365sync"));
    c.arg("--version").current_dir(dir).uid(NOBODY).gid(NOBODY);
    c.output().is_ok_and(|o| o.status.success())
}

#[test]
fn read_commands_work_in_a_read_only_data_dir_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o755);
    let data = data_dir_with_a_directory(tmp.path());
    let db = data.join("directory.sqlite3");
    assert!(db.exists());
    assert!(
        !data.join("directory.sqlite3-wal").exists(),
        "the write command closed cleanly"
    );

    let drop_to_nobody = is_root() && nobody_can_run_the_binary_in(tmp.path());
    if is_root() && !drop_to_nobody {
        eprintln!(
            "note: running as root and `nobody` cannot run the binary here: file modes do not \
             bind root, so this run only shows that the read commands write nothing"
        );
    }
    if drop_to_nobody {
        chown_all(&data, NOBODY);
    }
    // Read-only all the way down: the data dir, the log folder, every file.
    for entry in [data.join("logs")] {
        for f in std::fs::read_dir(&entry).unwrap() {
            chmod(&f.unwrap().path(), 0o400);
        }
        chmod(&entry, 0o500);
    }
    chmod(&db, 0o400);
    chmod(&data, 0o500);
    let before = snapshot(&data);

    let read = |args: &[&str]| -> Output {
        let mut c = bin(&data);
        c.args(args);
        if drop_to_nobody {
            c.uid(NOBODY).gid(NOBODY);
        }
        let out = run(c);
        no_panic(&args.join(" "), &out);
        if drop_to_nobody || !is_root() {
            assert_eq!(warnings(&out), 1, "{args:?}: {}", text(&out.stderr));
        }
        out
    };

    let out = read(&["status"]);
    assert_eq!(out.status.code(), Some(1), "not signed in");
    assert!(
        text(&out.stdout).contains("signed in:  no"),
        "{}",
        text(&out.stdout)
    );

    let out = read(&["directory", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    assert!(
        list.contains("ann@contoso.com") && list.contains("ben@contoso.com"),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.contains("ann@contoso.com") && l.contains("direct")),
        "{list}"
    );

    let out = read(&["directory", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);

    let out = read(&["audit"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = read(&["groups"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Sales"), "{}", text(&out.stdout));

    // Not signed in: errors prints what it knows and says preflight was left out.
    let out = read(&["errors"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("0 errors"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("findings are left out"),
        "{}",
        text(&out.stderr)
    );

    // Nothing was written: the same files, byte for byte, and no -wal or -shm left behind.
    assert_eq!(snapshot(&data), before);
    for side in ["directory.sqlite3-wal", "directory.sqlite3-shm"] {
        assert!(!data.join(side).exists(), "{side} left behind");
    }

    // A write command in a read-only data dir fails with a message, not a panic.
    if drop_to_nobody || !is_root() {
        let mut c = bin(&data);
        c.args(["bind", "ben@contoso.com"]);
        if drop_to_nobody {
            c.uid(NOBODY).gid(NOBODY);
        }
        let out = run(c);
        no_panic("bind", &out);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).starts_with("warning: logging disabled"),
            "{}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("is read-only: the commands that only read"),
            "{}",
            text(&out.stderr)
        );
    }
    chmod(&data, 0o700);
}

#[test]
fn a_missing_directory_reads_as_empty_and_nothing_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for args in [
        &["directory", "list"][..],
        &["audit"],
        &["groups"],
        &["errors"],
    ] {
        let out = run({
            let mut c = bin(&data);
            c.args(args);
            c
        });
        no_panic(&args.join(" "), &out);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    assert!(
        !data.join("directory.sqlite3").exists(),
        "a read command creates no database"
    );
}

/// The log cannot be opened, in ways that stop root as well as anyone: `logs` is a file;
/// today's log file is a folder; today's log file is a symlink (refused, `O_NOFOLLOW`); and,
/// with modes, a log file owned by another user with mode 000 (as `nobody` under root). Each
/// gives exactly one warning, and the command still works.
#[test]
fn a_log_that_cannot_be_opened_is_one_warning_and_the_command_works() {
    let today = {
        let d = time::OffsetDateTime::now_utc().date();
        m365sync::logfile::file_name(d)
    };
    let check = |data: &Path, as_nobody: bool, case: &str| {
        for args in [&["directory", "list"][..], &["status"], &["audit"]] {
            let mut c = bin(data);
            c.args(args);
            if as_nobody {
                c.uid(NOBODY).gid(NOBODY);
            }
            let out = run(c);
            no_panic(case, &out);
            assert_eq!(warnings(&out), 1, "{case} {args:?}: {}", text(&out.stderr));
            if args == ["status"] {
                assert_eq!(out.status.code(), Some(1), "{case}: not signed in");
            } else {
                assert!(
                    out.status.success(),
                    "{case} {args:?}: {}",
                    text(&out.stderr)
                );
            }
            if args == ["directory", "list"] {
                assert!(
                    text(&out.stdout).contains("ann@contoso.com"),
                    "{case}: {}",
                    text(&out.stdout)
                );
            }
        }
        // A write command works too.
        let mut c = bin(data);
        c.args(["bind", "ben@contoso.com"]);
        if as_nobody {
            c.uid(NOBODY).gid(NOBODY);
        }
        let out = run(c);
        no_panic(case, &out);
        assert!(out.status.success(), "{case}: {}", text(&out.stderr));
        assert_eq!(warnings(&out), 1, "{case}: {}", text(&out.stderr));
    };

    // `logs` is a regular file.
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir_with_a_directory(tmp.path());
    std::fs::remove_dir_all(data.join("logs")).unwrap();
    std::fs::write(data.join("logs"), "").unwrap();
    check(&data, false, "logs is a file");

    // Today's log file is a folder.
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir_with_a_directory(tmp.path());
    std::fs::remove_file(data.join("logs").join(&today)).unwrap();
    std::fs::create_dir(data.join("logs").join(&today)).unwrap();
    check(&data, false, "today's log is a folder");

    // Today's log file is a symlink to somewhere else.
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir_with_a_directory(tmp.path());
    let elsewhere = tmp.path().join("elsewhere.log");
    std::fs::remove_file(data.join("logs").join(&today)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, data.join("logs").join(&today)).unwrap();
    check(&data, false, "today's log is a symlink");
    assert!(!elsewhere.exists(), "nothing written through the symlink");

    // A log file owned by another user, mode 000.
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o755);
    if is_root() && !nobody_can_run_the_binary_in(tmp.path()) {
        eprintln!("note: root and `nobody` cannot run the binary here: mode-000 case skipped");
        return;
    }
    let data = data_dir_with_a_directory(tmp.path());
    let log = data.join("logs").join(&today);
    if is_root() {
        // Everything is nobody's except the log file, which stays root's.
        chown_all(&data, NOBODY);
        std::os::unix::fs::chown(&log, Some(0), Some(0)).unwrap();
    }
    chmod(&log, 0o000);
    check(&data, is_root(), "a log file of another user, mode 000");
}

/// Whatever the umask: the data dir and the log folder 0700, the database and the log 0600.
#[test]
fn files_are_private_whatever_the_umask() {
    for mask in [0o000, 0o022, 0o277] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("new/data");
        let csv = tmp.path().join("people.csv");
        std::fs::write(&csv, "email,displayName\nann@contoso.com,Ann Lee\n").unwrap();
        let mut c = bin(&data);
        c.args(["directory", "import"]).arg(&csv);
        // SAFETY: umask is async-signal-safe; it runs in the child between fork and exec.
        unsafe {
            c.pre_exec(move || {
                libc::umask(mask);
                Ok(())
            });
        }
        let out = run(c);
        assert!(
            out.status.success(),
            "umask {mask:o}: {}",
            text(&out.stderr)
        );
        assert_eq!(warnings(&out), 0, "{}", text(&out.stderr));
        assert_eq!(mode(&tmp.path().join("new")), 0o700, "umask {mask:o}");
        assert_eq!(mode(&data), 0o700, "umask {mask:o}");
        assert_eq!(mode(&data.join("logs")), 0o700, "umask {mask:o}");
        assert_eq!(
            mode(&data.join("directory.sqlite3")),
            0o600,
            "umask {mask:o}"
        );
        let logs: Vec<PathBuf> = std::fs::read_dir(data.join("logs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(logs.len(), 1);
        assert_eq!(mode(&logs[0]), 0o600, "umask {mask:o}");
    }
}

/// The console too: with `logs` a file it warns once, starts, shows its sign-in, and quits
/// with 0 (in tmux, as a person would run it).
#[test]
fn the_console_starts_and_quits_when_the_log_cannot_be_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("logs"), "").unwrap();
    let (err, exit) = (tmp.path().join("stderr"), tmp.path().join("exit"));
    let socket = format!("m365sync-env-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-L")
            .arg(&socket)
            .args(args)
            .output()
            .expect("tmux must be installed (apt-get install tmux); .ci/run installs it")
    };
    let script = format!(
        "'{}' --authority http://127.0.0.1:9 --graph-url http://127.0.0.1:9/v1.0 \
         --tenant contoso.onmicrosoft.com --client-id c --data-dir '{}' 2>'{}'; echo $? >'{}'",
        env!("CARGO_BIN_EXE_m365sync"),
        data.display(),
        err.display(),
        exit.display()
    );
    let out = tmux(&[
        "new-session",
        "-d",
        "-x",
        "100",
        "-y",
        "30",
        "-s",
        "tui",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let screen = || text(&tmux(&["capture-pane", "-p", "-t", "tui"]).stdout);
    let start = std::time::Instant::now();
    // Not signed in and nothing listens on the authority: the console says so.
    while !screen().contains("Sign-in failed") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the console did not start; the screen shows:\n{}",
            screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    tmux(&["send-keys", "-t", "tui", "q"]);
    while std::fs::read_to_string(&exit).map_or(true, |s| !s.ends_with('\n')) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the console did not quit"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = tmux(&["kill-server"]);
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "0");
    let err = std::fs::read_to_string(&err).unwrap();
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("warning: logging disabled: cannot open "))
            .count(),
        1,
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
