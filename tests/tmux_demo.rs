//! The demo as a person sees it: run `m365sync demo` in tmux at 100x30, wait for the users,
//! filter by a name, see the row, quit, and check the exit code and that the terminal came back.
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
    let bin = env!("CARGO_BIN_EXE_m365sync");
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux {
        socket: format!("m365sync-test-{}", std::process::id()),
    };
    // The shell stays after the demo exits, so the restored terminal can be inspected.
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
    let filtered = tmux.wait_for("the filtered row", Duration::from_secs(10), |s| {
        s.contains("ana.suzuki@northwindtraders")
            && s.contains("1 shown")
            && !s.contains("Irvin Sayers")
    });
    assert!(filtered.contains("Ana Suzuki"), "{filtered}");

    tmux.keys(&["q"]);
    let start = Instant::now();
    while !Path::new(&exit_file).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the demo did not exit after q; screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = std::fs::read_to_string(&exit_file).unwrap();
    assert_eq!(code.trim(), "0", "demo exit code");

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
