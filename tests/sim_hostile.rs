//! The simulator against hostile or broken clients: an accept loop out of file descriptors
//! (it pauses instead of spinning, logs once, and recovers).

use std::time::{Duration, Instant};

/// Runs `m365sync sim` with few file descriptors, opens many more connections than it may
/// hold, and checks that while accept fails with EMFILE the loop pauses (the process uses
/// almost no CPU, where a loop that retries at once spins a core), logs it once, and that it
/// answers again once connections are released.
#[cfg(target_os = "linux")]
#[test]
fn accept_backs_off_when_out_of_file_descriptors_and_recovers() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};

    let bin = env!("CARGO_BIN_EXE_m365sync");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" sim --listen 127.0.0.1:0")
        .arg(bin)
        .env_remove("M365SYNC_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let _guard = Kill(child);
    // Keep reading stdout: a closed pipe would make the simulator's own prints fail.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let log = Arc::new(Mutex::new(String::new()));
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
    }
    let answers = |addr: &str| -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /v1.0/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.starts_with("HTTP/1.1 401")
    };
    assert!(answers(&addr), "answers before the flood");
    // CPU time (user + system) of the simulator, in seconds.
    let ticks: f64 = String::from_utf8(
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap_or(100.0);
    let cpu = || -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
        (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / ticks
    };

    // More connections than 64 descriptors allow: the kernel queues the rest (its accept queue
    // holds 129 here, the listen backlog of 128), and accept fails with EMFILE.
    let sock: std::net::SocketAddr = addr.parse().unwrap();
    let flood: Vec<std::net::TcpStream> = (0..120)
        .map(|_| std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(5)).unwrap())
        .collect();
    let t0 = Instant::now();
    while !log.lock().unwrap().contains("accept failed") && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let c0 = cpu();
    std::thread::sleep(Duration::from_secs(3));
    let spent = cpu() - c0;
    let text = log.lock().unwrap().clone();
    assert!(
        spent < 0.3,
        "the simulator used {spent:.2} s of CPU in 3 s while out of descriptors: it spins"
    );
    assert!(
        text.contains("accept failed"),
        "no accept failure logged: {text}"
    );
    assert_eq!(
        text.matches("accept failed").count(),
        1,
        "logged once per episode: {text}"
    );

    // Release them: it accepts again and answers.
    drop(flood);
    let t1 = Instant::now();
    while !answers(&addr) {
        assert!(
            t1.elapsed() < Duration::from_secs(15),
            "no answer after the flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let t2 = Instant::now();
    while !log.lock().unwrap().contains("accepting connections again")
        && t2.elapsed() < Duration::from_secs(2)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(log.lock().unwrap().contains("accepting connections again"));
}
