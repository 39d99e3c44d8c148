//! The demo as a person sees it: run `m365sync demo` in tmux at 100x30, wait for the users,
//! filter by a name, see the row, quit, and check the exit code and that the terminal came back.
//! A second session binds and unbinds users for real: toggle, `p`, `y`, the summary, the
//! passwords panel (closing it with a password unsaved asks), and the rows' new state. Others:
//! pastes stay text, `g` is the top of every tab, Enter links a Conflict; and the console
//! against a throttling simulator at 80x24: a preview longer than the screen scrolls to its
//! last held-back item, `q` during an apply asks and a confirmed quit stops cleanly.
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux must be installed (apt-get install tmux); .ci/run installs it");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// A `width`x`height` session "demo" running `script`.
    fn new_session(&self, width: u16, height: u16, script: &str) {
        let (w, h) = (width.to_string(), height.to_string());
        self.run(&[
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            &w,
            "-y",
            &h,
            "sh",
            "-c",
            script,
        ]);
    }
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "demo"])
    }
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "demo"];
        args.extend_from_slice(keys);
        self.run(&args);
    }
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn demo_in_tmux_signs_in_lists_filters_and_quits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux::start_demo("filter", &exit_file);

    // Sign-in first: the code and the link are shown, then the demo approves itself.
    tmux.wait_for("the device-code sign-in", Duration::from_secs(60), |s| {
        s.contains("/devicelogin")
    });
    // Then the tenant users stream in.
    tmux.wait_for("tenant users", Duration::from_secs(60), |s| {
        s.contains("Irvin Sayers") && s.contains("loaded")
    });

    tmux.keys(&["/"]);
    tmux.keys(&["-l", "Ana Suzuki"]);
    tmux.keys(&["Enter"]);
    let filtered = tmux.wait_for("the filtered row", Duration::from_secs(30), |s| {
        s.contains("ana.suzuki@northwindtraders")
            && s.contains("1 shown")
            && !s.contains("Irvin Sayers")
    });
    assert!(filtered.contains("Ana Suzuki"), "{filtered}");

    tmux.quit(&exit_file);

    // The terminal came back: off the alternate screen, cursor visible, no TUI left on it.
    let flags = tmux.run(&[
        "display-message",
        "-p",
        "-t",
        "demo",
        "#{alternate_on} #{cursor_flag}",
    ]);
    assert_eq!(flags.trim(), "0 1", "alternate screen off, cursor shown");
    let screen = tmux.screen();
    assert!(!screen.contains("Import"), "the TUI is gone:\n{screen}");
}

impl Tmux {
    /// Starts `m365sync demo` in a 100x30 session; the shell stays after it exits.
    fn start_demo(tag: &str, exit_file: &Path) -> Tmux {
        let bin = env!("CARGO_BIN_EXE_m365sync");
        let tmux = Tmux {
            socket: format!("m365sync-test-{tag}-{}", std::process::id()),
        };
        let script = format!(
            "{bin} demo; echo $? > {exit}; exec sleep 600",
            exit = exit_file.display()
        );
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            "100",
            "-y",
            "30",
            "sh",
            "-c",
            &script,
        ]);
        tmux
    }

    /// `q`, then the demo must exit with status 0 within 20 s.
    fn quit(&self, exit_file: &Path) {
        self.keys(&["q"]);
        let start = Instant::now();
        while !exit_file.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the demo did not exit after q; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let code = std::fs::read_to_string(exit_file).unwrap();
        assert_eq!(code.trim(), "0", "demo exit code");
    }

    /// Filters the Bindings list to `name` and waits until its one row shows.
    fn find(&self, name: &str) -> String {
        self.clear_filter();
        self.keys(&["/"]);
        self.keys(&["-l", name]);
        self.keys(&["Enter"]);
        self.wait_for(
            &format!("the row of {name}"),
            Duration::from_secs(30),
            |s| s.contains(name) && s.contains("1 shown"),
        )
    }

    /// Esc clears a kept filter. The next key waits for it: an Esc followed at once by a key
    /// reads as Alt and that key.
    fn clear_filter(&self) {
        self.keys(&["Escape"]);
        self.wait_for("the filter to clear", Duration::from_secs(30), |s| {
            s.contains("/ filter")
        });
    }

    /// The line of the screen that shows `name`.
    fn row_of(&self, name: &str) -> String {
        self.screen()
            .lines()
            .find(|l| l.contains(name) && !l.contains("/ "))
            .unwrap_or_default()
            .to_string()
    }

    /// `p`, wait for the preview, `y`, wait for the summary.
    fn preview_and_apply(&self, expect: &[&str]) -> String {
        // The plan needs every tenant user: after a run they are listed again.
        self.wait_for("the listing to end", Duration::from_secs(60), |s| {
            !s.contains("listing") && !s.contains("interrupted run")
        });
        self.keys(&["p"]);
        let preview = self.wait_for("the preview", Duration::from_secs(30), |s| {
            s.contains("Plan:") && expect.iter().all(|e| s.contains(e))
        });
        // The engine words the warning; it must say that unbinding deletes nothing.
        assert!(preview.to_lowercase().contains("delete"), "{preview}");
        self.keys(&["y"]);
        self.wait_for("the summary", Duration::from_secs(120), |s| {
            s.contains("Applied") && s.contains("done")
        })
    }
}

#[test]
fn demo_in_tmux_binds_and_unbinds_users() {
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux::start_demo("bind", &exit_file);
    tmux.wait_for("tenant users", Duration::from_secs(60), |s| {
        s.contains("Irvin Sayers") && s.contains("loaded")
    });
    tmux.keys(&["2"]);
    tmux.wait_for("the Bindings tab", Duration::from_secs(30), |s| {
        s.contains("Account UPN")
    });

    // Bind two directory-only people (no account yet) and unbind a bound one.
    for name in ["Aiyana Whitehorse", "Bogdan Kowalczyk"] {
        tmux.find(name);
        assert!(tmux.row_of(name).contains("Unbound"), "{}", tmux.screen());
        tmux.keys(&["Space"]);
        tmux.wait_for("the pending create", Duration::from_secs(30), |s| {
            s.lines()
                .any(|l| l.contains(name) && l.contains("→ create"))
        });
    }
    tmux.find("Laura Patel");
    assert!(
        tmux.row_of("Laura Patel").contains("Bound"),
        "{}",
        tmux.screen()
    );
    tmux.keys(&["Space"]);
    tmux.wait_for("the pending block", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("Laura Patel") && l.contains("→ block"))
    });
    tmux.clear_filter();

    let summary = tmux.preview_and_apply(&["create account", "block sign-in"]);
    // And the demo's attribute changes: a job title and a manager.
    assert!(summary.contains("5 done"), "{summary}");
    // The two new accounts got temporary passwords, shown once.
    assert!(summary.contains("temporary passwords"), "{summary}");
    assert!(summary.contains("aiyana.whitehorse@"), "{summary}");
    tmux.keys(&["c"]);
    tmux.wait_for("the copy", Duration::from_secs(30), |s| {
        s.contains("OSC 52") && s.contains("copied")
    });
    // One of the two passwords is neither copied nor written: closing asks first.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the question", Duration::from_secs(30), |s| {
        s.contains("Close and forget the passwords?") && s.contains("1 temporary password")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the panel to close", Duration::from_secs(30), |s| {
        !s.contains("temporary password")
    });

    // The directory was read again: the rows show what the tenant now holds.
    tmux.find("Aiyana Whitehorse");
    tmux.wait_for("Aiyana bound", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("Aiyana Whitehorse") && l.contains("Bound"))
    });
    tmux.find("Laura Patel");
    tmux.wait_for("Laura blocked", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("Laura Patel") && l.contains("Blocked"))
    });

    // And back: unbind Aiyana (blocks sign-in, keeps the account), bind Laura (re-enables).
    tmux.find("Aiyana Whitehorse");
    tmux.keys(&["Space"]);
    tmux.find("Laura Patel");
    tmux.keys(&["Space"]);
    tmux.wait_for("the pending re-enable", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("Laura Patel") && l.contains("→ re-enable"))
    });
    tmux.clear_filter();
    let summary = tmux.preview_and_apply(&["re-enable", "block sign-in"]);
    assert!(summary.contains("2 done"), "{summary}");
    assert!(!summary.contains("temporary passwords"), "{summary}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the summary to close", Duration::from_secs(30), |s| {
        !s.contains("╭ Done")
    });
    tmux.find("Aiyana Whitehorse");
    tmux.wait_for("Aiyana blocked", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("Aiyana Whitehorse") && l.contains("Blocked"))
    });
    assert!(!tmux.row_of("Aiyana Whitehorse").contains("Error"));

    tmux.quit(&exit_file);
}

/// Issue 4 in the demo: Hiroshi Tanabe's email is on the unverified northwind-labs.io. Binding
/// him, `p` holds his create back; the Errors tab explains it; the use-default-domain fix
/// (previewed, then `y`) stores a UPN override; `p` again creates his account on the default
/// domain. (The `Sales (EU)` group fix: `demo_in_tmux_fixes_the_sales_eu_group`.)
#[test]
fn demo_in_tmux_fixes_an_unverified_domain_from_the_errors_tab() {
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux::start_demo("errfix", &exit_file);
    tmux.wait_for("tenant users", Duration::from_secs(60), |s| {
        s.contains("Irvin Sayers") && s.contains("loaded")
    });
    tmux.keys(&["2"]);
    tmux.wait_for("the Bindings tab", Duration::from_secs(30), |s| {
        s.contains("Account UPN")
    });
    tmux.find("Hiroshi Tanabe");
    assert!(
        tmux.row_of("Hiroshi Tanabe").contains("Unbound"),
        "{}",
        tmux.screen()
    );
    tmux.keys(&["Space"]);
    tmux.wait_for("the pending create", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("Hiroshi Tanabe") && l.contains("→ create"))
    });
    tmux.clear_filter();

    // The preview holds him back and sends nothing.
    tmux.keys(&["p"]);
    let preview = tmux.wait_for("the held-back preview", Duration::from_secs(30), |s| {
        s.contains("Plan:") && s.contains("Held back, never sent: 1")
    });
    assert!(
        preview.contains("hiroshi.tanabe@northwind-labs.io"),
        "{preview}"
    );
    assert!(preview.contains("upn-domain-unverified"), "{preview}");
    // Nothing of his is sent: what is, is the demo's job title and manager.
    assert!(preview.contains("Changes to send: 2"), "{preview}");
    assert!(preview.contains("Attribute changes: 1 change"), "{preview}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the preview to close", Duration::from_secs(30), |s| {
        !s.contains("Plan:")
    });

    // Errors: the diagnosis, then the fix, previewed.
    tmux.keys(&["3"]);
    tmux.wait_for("the Errors tab", Duration::from_secs(30), |s| {
        s.contains("upn-domain-unverified 1")
    });
    // Select the finding (it may not be the first error).
    for _ in 0..10 {
        if tmux.screen().contains("UPN uses a domain") {
            break;
        }
        tmux.keys(&["j"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    let detail = tmux.wait_for("the diagnosis", Duration::from_secs(30), |s| {
        s.contains("UPN uses a domain")
    });
    assert!(detail.contains("not verified"), "{detail}");
    tmux.keys(&["f"]);
    let fix = tmux.wait_for("the fix preview", Duration::from_secs(30), |s| {
        s.contains("Fix: use-default-domain") && s.contains("Account UPN will be")
    });
    assert!(
        fix.contains("Email stays: hiroshi.tanabe@northwind-labs.io"),
        "{fix}"
    );
    tmux.keys(&["y"]);
    tmux.wait_for("the re-check", Duration::from_secs(30), |s| {
        s.contains("nothing is held back")
    });

    // `p` again: his account is created, on the default domain.
    tmux.keys(&["2"]);
    tmux.wait_for("the Bindings tab", Duration::from_secs(30), |s| {
        s.contains("Account UPN")
    });
    tmux.keys(&["p"]);
    let preview = tmux.wait_for("the preview", Duration::from_secs(30), |s| {
        s.contains("Plan:") && s.contains("create account")
    });
    assert!(!preview.contains("held back"), "{preview}");
    assert!(preview.contains("hiroshi.tanabe@"), "{preview}");
    tmux.keys(&["y"]);
    let summary = tmux.wait_for("the summary", Duration::from_secs(120), |s| {
        s.contains("Applied") && s.contains("done")
    });
    // With the demo's job title and manager changes.
    assert!(summary.contains("3 done"), "{summary}");
    // His temporary password was neither copied nor written: closing asks.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the question", Duration::from_secs(30), |s| {
        s.contains("Close and forget the passwords?")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the panel to close", Duration::from_secs(30), |s| {
        !s.contains("temporary password")
    });
    tmux.find("Hiroshi Tanabe");
    tmux.wait_for("Hiroshi bound", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("Hiroshi Tanabe") && l.contains("Bound"))
    });

    tmux.quit(&exit_file);
}

/// Issue 4: the `Sales (EU)` group of the demo. Bindings, `g` shows the groups; binding it and
/// `p` holds its create back (its nickname would carry forbidden characters); the Errors
/// finding's fix accepts `SalesEU`; `p` again creates the group; `y`; the row shows Bound.
#[test]
fn demo_in_tmux_fixes_the_sales_eu_group() {
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux::start_demo("groupfix", &exit_file);
    let wait = Duration::from_secs(30);
    tmux.wait_for("tenant users", Duration::from_secs(60), |s| {
        s.contains("Irvin Sayers") && s.contains("loaded")
    });
    tmux.keys(&["2"]);
    tmux.wait_for("the Bindings tab", wait, |s| s.contains("Account UPN"));
    tmux.keys(&["t"]);
    let groups = tmux.wait_for("the groups", wait, |s| {
        s.contains("Groups") && s.contains("Nickname") && s.contains("Sales (EU)")
    });
    // The stray space shows.
    assert!(groups.contains("\"Engineering \""), "{groups}");
    tmux.find("Sales (EU)");
    assert!(
        tmux.row_of("Sales (EU)").contains("Unbound"),
        "{}",
        tmux.screen()
    );
    tmux.keys(&["Space"]);
    tmux.wait_for("the pending group", wait, |s| {
        s.lines()
            .any(|l| l.contains("Sales (EU)") && l.contains("Pending"))
    });
    tmux.clear_filter();

    tmux.wait_for("the listing to end", Duration::from_secs(60), |s| {
        !s.contains("listing") && !s.contains("interrupted run")
    });
    tmux.keys(&["p"]);
    let preview = tmux.wait_for("the held-back preview", wait, |s| {
        s.contains("Plan:") && s.contains("Held back, never sent:") && s.contains("Sales (EU)")
    });
    assert!(preview.contains("mailnickname"), "{preview}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the preview to close", wait, |s| !s.contains("Plan:"));

    // Errors: the group's finding, its fix previewed and accepted.
    tmux.keys(&["3"]);
    tmux.wait_for("the Errors tab", wait, |s| s.contains("Sales (EU)"));
    tmux.keys(&["/"]);
    tmux.keys(&["-l", "Sales"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the group's finding", wait, |s| {
        s.contains("Sales (EU)") && s.contains("·  1/1")
    });
    tmux.keys(&["f"]);
    let fix = tmux.wait_for("the fix preview", wait, |s| {
        s.contains("Fix:") && s.contains("SalesEU")
    });
    assert!(fix.contains("mailNickname"), "{fix}");
    // The suggestion is in an input: Enter accepts it as it is.
    tmux.keys(&["Enter"]);
    tmux.wait_for("the re-check", wait, |s| s.contains("nothing is held back"));

    // `p` again: the group is created.
    tmux.keys(&["2"]);
    tmux.wait_for("the Bindings tab", wait, |s| s.contains("Nickname"));
    tmux.keys(&["p"]);
    let preview = tmux.wait_for("the preview", wait, |s| {
        s.contains("Plan:") && s.contains("create group")
    });
    assert!(!preview.contains("held back"), "{preview}");
    assert!(preview.contains("SalesEU"), "{preview}");
    tmux.keys(&["y"]);
    tmux.wait_for("the summary", Duration::from_secs(120), |s| {
        s.contains("Applied") && s.contains("done")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the panel to close", wait, |s| !s.contains("╭ Done"));
    tmux.find("Sales (EU)");
    tmux.wait_for("Sales (EU) bound", wait, |s| {
        s.lines()
            .any(|l| l.contains("Sales (EU)") && l.contains("Bound"))
    });

    tmux.quit(&exit_file);
}

/// Issue 10 in the demo: bind the group Field Team; the preview lists its members under
/// "Through group Field Team" with their reason (and the demo's job title change with its
/// diff); `y` applies; the members are Bound, "via Field Team".
#[test]
fn demo_in_tmux_binds_a_group_and_its_members_follow() {
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux::start_demo("fieldteam", &exit_file);
    let wait = Duration::from_secs(30);
    tmux.wait_for("tenant users", Duration::from_secs(60), |s| {
        s.contains("Irvin Sayers") && s.contains("loaded")
    });
    tmux.keys(&["2"]);
    tmux.wait_for("the Bindings tab", wait, |s| s.contains("Why bound"));
    tmux.keys(&["t"]);
    tmux.wait_for("the groups", wait, |s| s.contains("Nickname"));
    tmux.find("Field Team");
    assert!(
        tmux.row_of("Field Team").contains("Unbound"),
        "{}",
        tmux.screen()
    );
    tmux.keys(&["Space"]);
    tmux.wait_for("the pending group", wait, |s| {
        s.lines()
            .any(|l| l.contains("Field Team") && l.contains("Pending"))
    });
    tmux.clear_filter();
    tmux.wait_for("the listing to end", Duration::from_secs(60), |s| {
        !s.contains("listing") && !s.contains("interrupted run")
    });
    tmux.keys(&["p"]);
    let preview = tmux.wait_for("the preview", wait, |s| {
        s.contains("Plan:") && s.contains("Through group Field Team (bound now): 8 changes")
    });
    for who in [
        "aiyana.whitehorse@",
        "bogdan.kowalczyk@",
        "chiara.esposito@",
        "jordan.eriksson@",
    ] {
        assert!(preview.contains(who), "{who}: {preview}");
    }
    assert!(preview.contains("create group"), "{preview}");
    // The rest of the plan, by cause, further down: the job title's diff.
    tmux.keys(&["G"]);
    let bottom = tmux.wait_for("the end of the preview", wait, |s| {
        s.contains("Manager changes: 1 change")
    });
    assert!(
        bottom.contains("jobTitle: \"Support Team Lead\" -> \"Customer Service Manager\""),
        "{bottom}"
    );
    assert!(
        bottom.contains("Not edited, synced from on-premises AD: 1"),
        "{bottom}"
    );
    tmux.keys(&["y"]);
    let summary = tmux.wait_for("the summary", Duration::from_secs(120), |s| {
        s.contains("Applied") && s.contains("done")
    });
    // 3 creates, the group, 4 member adds, the job title, the manager.
    assert!(summary.contains("10 done"), "{summary}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the question", wait, |s| {
        s.contains("Close and forget the passwords?")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the panel to close", wait, |s| {
        !s.contains("temporary password")
    });
    // The users: the members are Bound, through the group.
    tmux.keys(&["t"]);
    tmux.wait_for("the users", wait, |s| s.contains("Why bound"));
    for name in ["Aiyana Whitehorse", "Jordan Eriksson"] {
        tmux.find(name);
        tmux.wait_for(&format!("{name} bound via Field Team"), wait, |s| {
            s.lines()
                .any(|l| l.contains(name) && l.contains("Bound") && l.contains("via Field Team"))
        });
    }
    tmux.quit(&exit_file);
}

impl Tmux {
    /// Pastes `text` as a terminal does (bracketed, since the console asks for it).
    fn paste(&self, text: &str) {
        self.run(&["set-buffer", "-b", "p", text]);
        self.run(&["paste-buffer", "-p", "-b", "p", "-t", "demo"]);
    }

    /// The device code on the sign-in screen (the boxed, spaced line).
    fn device_code(&self) -> String {
        let screen = self.wait_for("the device code", Duration::from_secs(120), |s| {
            s.contains("devicelogin") && s.contains('┌')
        });
        let lines: Vec<&str> = screen.lines().collect();
        let at = lines.iter().position(|l| l.contains('┌')).unwrap();
        lines[at + 1]
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect()
    }
}

/// As a person: a paste into the filter with a newline and command letters stays text
/// (nothing is marked or imported); a paste with no field focused is refused and said; `g`
/// goes to the first row on every tab; Enter on a Conflict row, then Enter, links it.
#[test]
fn demo_in_tmux_paste_stays_text_g_goes_to_the_top_enter_links_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux::start_demo("paste", &exit_file);
    let wait = Duration::from_secs(30);
    tmux.wait_for("tenant users", Duration::from_secs(60), |s| {
        s.contains("Irvin Sayers") && s.contains("all ") && s.contains("loaded")
    });

    // No field has the focus: the paste is refused, none of its letters runs.
    tmux.paste("ai\n");
    let s = tmux.wait_for("the refusal", wait, |s| {
        s.contains("Pasted text goes into a text field")
    });
    assert!(!s.contains("marked") && !s.contains("Importing"), "{s}");

    // In the filter: the newline is a space, `a` and `i` are letters.
    tmux.keys(&["/"]);
    tmux.paste("Suzuki\nai");
    // (Both parts of the frame waited for: a capture can land while the terminal is redrawing.)
    let s = tmux.wait_for("the pasted filter, still typing it", wait, |s| {
        s.contains("/ Suzuki ai") && s.contains("Enter keep")
    });
    assert!(!s.contains("marked") && !s.contains("Importing"), "{s}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the filter cleared", wait, |s| s.contains("/ filter"));

    // `g` is the first row on every tab.
    let first = |s: &str| s.contains("· 1/") || s.contains("·  1/");
    for (tab, what) in [("1", "Display name"), ("2", "Account UPN"), ("3", "kinds")] {
        tmux.keys(&[tab]);
        tmux.wait_for(what, wait, |s| s.contains(what));
        tmux.keys(&["G"]);
        tmux.wait_for("the last row", wait, |s| !first(s));
        tmux.keys(&["g"]);
        tmux.wait_for("the first row", wait, first);
    }

    // A Conflict: Enter says why and offers the link; Enter links it.
    tmux.keys(&["1"]);
    tmux.keys(&["s", "s", "s"]);
    let s = tmux.wait_for("the Conflicts", wait, |s| s.contains("status Conflict"));
    let row = s
        .lines()
        .find(|l| l.trim_start().starts_with("Conflict"))
        .expect("a Conflict row")
        .to_string();
    let name: String = row
        .trim_start()
        .trim_start_matches("Conflict")
        .trim()
        .split("  ")
        .next()
        .unwrap()
        .to_string();
    tmux.keys(&["Enter"]);
    tmux.wait_for("the Conflict's detail", wait, |s| {
        s.contains("Why Conflict") && s.contains("links the directory user")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the row linked", Duration::from_secs(60), |s| {
        s.lines()
            .any(|l| l.contains(&name) && l.trim_start().starts_with("Imported"))
    });

    tmux.quit(&exit_file);
}

/// The simulator in its own process, for a console session with faults.
struct Sim {
    child: std::process::Child,
    base: String,
    tenant: String,
    client: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    fn start(args: &[&str]) -> Sim {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_m365sync"))
            .args([
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--device-code-interval",
                "1",
            ])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the simulator");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut base, mut tenant, mut client) = (None, None, None);
        while base.is_none() || tenant.is_none() || client.is_none() {
            let line = lines.next().expect("simulator output").unwrap();
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["listening", "on", url, ..] => base = Some(url.to_string()),
                ["tenant", t, ..] => tenant = Some(t.to_string()),
                ["client", c, ..] => client = Some(c.to_string()),
                _ => {}
            }
        }
        // Keep reading: a closed pipe would kill the simulator at its next line (EPIPE).
        std::thread::spawn(move || for _ in lines {});
        Sim {
            child,
            base: base.unwrap(),
            tenant: tenant.unwrap(),
            client: client.unwrap(),
        }
    }

    /// The shell line that runs the console against this simulator with `data`, writes its
    /// exit code to `exit` and keeps the pane.
    fn console(&self, data: &Path, exit: &Path) -> String {
        format!(
            "{bin} --data-dir {data} --authority {base} --graph-url {base}/v1.0 --tenant {t} \
             --client-id {c}; echo $? > {exit}; exec sleep 600",
            bin = env!("CARGO_BIN_EXE_m365sync"),
            data = data.display(),
            base = self.base,
            t = self.tenant,
            c = self.client,
            exit = exit.display()
        )
    }

    fn approve(&self, code: &str) {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(["-d", &format!("user_code={code}&action=approve")])
            .arg(format!("{}/devicelogin", self.base))
            .output()
            .expect("curl");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "approving {code}"
        );
    }
}

/// The console (not the demo) against a simulator that throttles every $batch: a directory
/// of 5 users to create and 30 held back (their domain is not verified), at 80x24. The
/// preview lists all 30 held back and scrolls to the last; `q` during the apply asks; `n`
/// goes on; `q`, `y` stops sending and the console ends once the run has stopped.
#[test]
fn console_in_tmux_scrolls_a_long_preview_and_q_during_an_apply_asks() {
    let sim = Sim::start(&["--fault", "POST /v1.0/$batch always 429:2"]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv = dir.path().join("people.csv");
    let mut rows = String::from("email,givenName,surname,displayName\n");
    for i in 1..=5 {
        rows.push_str(&format!(
            "send{i:02}@northwindtraders.com,Send,{i:02},Send {i:02}\n"
        ));
    }
    for i in 1..=30 {
        rows.push_str(&format!(
            "held{i:02}@northwind-labs.io,Held,{i:02},Held {i:02}\n"
        ));
    }
    std::fs::write(&csv, rows).unwrap();
    let bin = env!("CARGO_BIN_EXE_m365sync");
    let cli = |args: &[&str]| {
        let out = Command::new(bin)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cli(&["directory", "import", csv.to_str().unwrap()]);
    cli(&["bind", "--all"]);

    let exit_file = dir.path().join("exit");
    let tmux = Tmux {
        socket: format!("m365sync-test-apply-{}", std::process::id()),
    };
    tmux.new_session(80, 24, &sim.console(&data, &exit_file));
    let code = tmux.device_code();
    sim.approve(&code);
    // Generous: the machine may be busy (two cores shared with builds).
    let wait = Duration::from_secs(120);
    tmux.wait_for("the listing", wait, |s| {
        s.contains("all ") && s.contains("loaded")
    });

    // The preview: 30 held back, more than fit; G reaches the last.
    tmux.keys(&["2"]);
    tmux.wait_for("the Bindings tab", wait, |s| s.contains("35 pending"));
    tmux.keys(&["p"]);
    let s = tmux.wait_for("the preview", wait, |s| {
        s.contains("Plan: 5 changes") && s.contains("Held back, never sent: 30")
    });
    assert!(
        !s.contains("held30@"),
        "the last held-back user is below the screen: {s}"
    );
    tmux.keys(&["G"]);
    let s = tmux.wait_for("the last held-back user", wait, |s| {
        s.contains("held30@northwind-labs.io")
    });
    assert!(s.contains("upn-domain-unverified"), "{s}");

    // The apply, throttled: q asks; n goes on.
    tmux.keys(&["y"]);
    tmux.wait_for("the run", wait, |s| s.contains("Applying 5 changes"));
    tmux.keys(&["q"]);
    tmux.wait_for("the question", wait, |s| s.contains("Quit while applying?"));
    tmux.keys(&["n"]);
    tmux.wait_for("the run again", wait, |s| {
        !s.contains("Quit while applying?") && s.contains("Applying 5 changes")
    });
    assert!(!exit_file.exists());
    // q, y: it stops sending and ends once the run has stopped.
    tmux.keys(&["q"]);
    tmux.wait_for("the question", wait, |s| s.contains("Quit while applying?"));
    tmux.keys(&["y"]);
    let start = Instant::now();
    while !exit_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the console did not end after the run stopped:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let code = std::fs::read_to_string(&exit_file).unwrap();
    assert_eq!(code.trim(), "0");
    // Nothing was sent (every $batch was refused): no account was made, the wishes stay
    // for the next plan.
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(&data)
        .args(["directory", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    let sends: Vec<&str> = list.lines().filter(|l| l.contains("send0")).collect();
    assert_eq!(sends.len(), 5, "{list}");
    assert!(
        sends
            .iter()
            .all(|l| l.starts_with("Unbound") && l.contains("direct")),
        "{list}"
    );
}

/// The console against a simulator that answers every request after 2 s: the first start
/// lists the tenant (no saved copy, said why) and saves it; the second shows the saved rows
/// "as of" their time while its delta round still waits for Graph, then says what the
/// round did.
#[test]
fn console_in_tmux_starts_from_the_saved_copy_before_graph_answers() {
    let sim = Sim::start(&["--latency-ms", "2000"]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let exit_file = dir.path().join("exit");
    let tmux = Tmux {
        socket: format!("m365sync-test-snapshot-{}", std::process::id()),
    };
    let script = sim.console(&data, &exit_file);
    let wait = Duration::from_secs(120);
    tmux.new_session(100, 30, &script);
    let code = tmux.device_code();
    sim.approve(&code);
    tmux.wait_for("the first listing, and why", wait, |s| {
        s.contains("No saved copy of this tenant yet")
    });
    tmux.wait_for("the listing", wait, |s| {
        s.contains("all ") && s.contains("loaded") && s.contains("as of ")
    });
    tmux.quit(&exit_file);
    let _ = std::fs::remove_file(&exit_file);

    // Again, in the same pane: the cached sign-in sends nothing; the saved rows come before
    // any answer.
    tmux.run(&["respawn-pane", "-k", "-t", "demo", "sh", "-c", &script]);
    let s = tmux.wait_for("the saved rows", Duration::from_secs(30), |s| {
        s.contains("as of ") && s.contains("Irvin Sayers")
    });
    assert!(
        s.contains("delta round…"),
        "the rows are on screen while the round still waits for Graph:\n{s}"
    );
    tmux.wait_for("the round's end", wait, |s| {
        s.contains("Delta round: 0 changed, as of ") && s.contains("all ")
    });
    tmux.quit(&exit_file);
}

/// The Licences tab in the demo: bind the Engineering group (its one member without licences
/// is Kofi Sorensen), assign Power BI Pro (one seat free) to it from the tab, preview (the
/// members who hold it already are left alone), apply, and see the seats change.
#[test]
fn demo_in_tmux_assigns_a_licence_to_a_group_and_seats_change() {
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux::start_demo("licences", &exit_file);
    tmux.wait_for("tenant users", Duration::from_secs(60), |s| {
        s.contains("Irvin Sayers") && s.contains("loaded")
    });
    // Bind the Engineering group.
    tmux.keys(&["2"]);
    tmux.wait_for("the Bindings tab", Duration::from_secs(30), |s| {
        s.contains("Account UPN")
    });
    tmux.keys(&["t"]);
    tmux.wait_for("the groups", Duration::from_secs(30), |s| {
        s.contains("Finance")
    });
    tmux.find("Engineering");
    tmux.keys(&["Space"]);
    tmux.wait_for("Engineering wanted bound", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("Engineering") && l.contains("Pending"))
    });
    tmux.clear_filter();

    // The Licences tab reads the SKUs when first shown.
    tmux.keys(&["4"]);
    let before = tmux.wait_for("the SKUs", Duration::from_secs(60), |s| {
        s.contains("POWER_BI_PRO") && s.contains("free seats")
    });
    let seats = |screen: &str| -> (u64, u64) {
        let l = screen
            .lines()
            .find(|l| l.starts_with("POWER_BI_PRO"))
            .unwrap_or_else(|| panic!("{screen}"));
        let n: Vec<u64> = l
            .split_whitespace()
            .skip(1)
            .take(3)
            .map(|x| x.replace(',', "").parse().unwrap())
            .collect();
        (n[1], n[2]) // in use, free
    };
    let (used, free) = seats(&before);
    assert_eq!(free, 1, "the demo's Power BI has one seat left:\n{before}");
    // Power BI Pro is the second SKU; Engineering the first group of the dialog.
    tmux.keys(&["j"]);
    tmux.keys(&["a"]);
    tmux.wait_for("the assign dialog", Duration::from_secs(30), |s| {
        s.contains("Who gets POWER_BI_PRO")
    });
    // Enter picks the group, Enter again gives it the SKU with every plan on.
    tmux.keys(&["Enter"]);
    tmux.wait_for("its service plans", Duration::from_secs(30), |s| {
        s.contains("[x] BI_AZURE_P2")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the assignment", Duration::from_secs(30), |s| {
        s.contains("group Engineering : POWER_BI_PRO")
    });
    // The preview: one licence, for the member without it.
    tmux.keys(&["p"]);
    let preview = tmux.wait_for("the preview", Duration::from_secs(60), |s| {
        s.contains("Plan:") && s.contains("assign licences")
    });
    assert!(preview.contains("kofi.sorensen@"), "{preview}");
    tmux.keys(&["y"]);
    tmux.wait_for("the summary", Duration::from_secs(120), |s| {
        s.contains("Applied") && s.contains("done")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the seats to change", Duration::from_secs(60), |s| {
        s.lines().any(|l| l.starts_with("POWER_BI_PRO")) && seats(s) == (used + 1, 0)
    });
    tmux.quit(&exit_file);
}

/// The licence dialog in the demo: bind Kofi Sorensen (his account has no licence), then on the
/// Licences tab give him SPE_E3 with TEAMS1 turned off (typing finds him, Space unticks the
/// plan), preview (his licence with the plan off) and apply.
#[test]
fn demo_in_tmux_assigns_a_sku_with_a_plan_off_to_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux::start_demo("licence-user", &exit_file);
    tmux.wait_for("tenant users", Duration::from_secs(60), |s| {
        s.contains("Irvin Sayers") && s.contains("loaded")
    });
    tmux.keys(&["2"]);
    tmux.wait_for("the Bindings tab", Duration::from_secs(30), |s| {
        s.contains("Account UPN")
    });
    tmux.find("Kofi Sorensen");
    tmux.keys(&["+"]);
    tmux.wait_for("Kofi wanted bound", Duration::from_secs(30), |s| {
        s.contains("Bind 1 user")
    });
    tmux.clear_filter();

    tmux.keys(&["4"]);
    tmux.wait_for("the SKUs", Duration::from_secs(60), |s| {
        s.contains("SPE_E3") && s.contains("free seats")
    });
    // SPE_E3 is the first SKU; typing finds the user.
    tmux.keys(&["a"]);
    tmux.wait_for("the licence dialog", Duration::from_secs(30), |s| {
        s.contains("Who gets SPE_E3")
    });
    tmux.keys(&["-l", "kofi.so"]);
    tmux.wait_for("Kofi found", Duration::from_secs(30), |s| {
        s.contains("1 of ") && s.contains("kofi.sorensen@")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the service plans", Duration::from_secs(30), |s| {
        s.contains("[x] TEAMS1")
    });
    // TEAMS1 is the third plan.
    tmux.keys(&["j"]);
    tmux.keys(&["j"]);
    tmux.keys(&["Space"]);
    tmux.wait_for("TEAMS1 off", Duration::from_secs(30), |s| {
        s.contains("[ ] TEAMS1") && s.contains("Saved as SPE_E3,-TEAMS1")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the assignment", Duration::from_secs(30), |s| {
        s.contains("kofi.sorensen@northwindtraders.com: SPE_E3,-TEAMS1")
    });
    tmux.keys(&["p"]);
    let preview = tmux.wait_for("the preview", Duration::from_secs(60), |s| {
        s.contains("Plan:") && s.contains("assign licences")
    });
    assert!(
        preview.contains("licences: +SPE_E3 (off: TEAMS1)"),
        "{preview}"
    );
    tmux.keys(&["y"]);
    tmux.wait_for("the summary", Duration::from_secs(120), |s| {
        s.contains("Applied") && s.contains("done")
    });
    tmux.keys(&["Enter"]);
    // The seats are read again: Kofi's account takes one (200 in use before).
    tmux.wait_for("one more SPE_E3 in use", Duration::from_secs(60), |s| {
        s.lines()
            .any(|l| l.starts_with("SPE_E3") && l.split_whitespace().nth(2) == Some("201"))
    });
    tmux.quit(&exit_file);
}
