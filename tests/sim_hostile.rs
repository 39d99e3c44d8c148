//! The simulator against hostile or broken clients: a `$filter` nested thousands deep (refused
//! with a 400, the server stays up), too many `or` clauses, connections that send nothing or
//! their head a byte at a time or go quiet (closed within the configured bound), bodies over
//! the limit (413) or that never finish, and an accept loop out of file descriptors (it
//! pauses instead of spinning, logs once, and recovers).

use std::time::{Duration, Instant};

use m365sync::sim::{Sim, SimOptions};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod sim_common;
use sim_common::*;

fn addr(sim: &Sim) -> String {
    sim.base_url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_owned()
}

/// Reads until the server closes the connection (EOF or reset); the bytes it sent, and how
/// long it took. Panics if the connection is still open after `limit`.
async fn until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((t0 + limit).into(), s.read(&mut buf)).await {
            Err(_) => panic!(
                "connection still open after {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, t0.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn still_answers(g: &Graph) {
    let (s, _, b) = g.get("/users?$top=1&$select=id").await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn a_filter_nested_5000_deep_is_a_400_and_the_server_stays_up() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;
    let deep_parens = format!("{}mail eq 'x'{}", "(".repeat(5000), ")".repeat(5000));
    let deep_nots = format!("{}mail eq 'x'", "not ".repeat(5000));
    let message = "Search filter expression has excessive height: more than 100. Max allowed: 100.";
    for f in [&deep_parens, &deep_nots] {
        let (s, _, b) = g.get(&format!("/users?$filter={f}")).await;
        assert_eq!(s, 400, "{b}");
        assert_graph_error(&b, "Request_UnsupportedQuery", message);
        still_answers(&g).await;
    }
    // With the advanced-query headers too, on deleted items, and inside $batch.
    let (s, _, b) = g
        .send(
            g.c.get(g.url(&format!("/users?$count=true&$filter={deep_nots}")))
                .bearer_auth(&g.token)
                .header("ConsistencyLevel", "eventual"),
        )
        .await;
    assert_eq!(s, 400);
    assert_graph_error(&b, "Request_UnsupportedQuery", message);
    let (s, _, b) = g
        .get(&format!(
            "/directory/deletedItems/microsoft.graph.user?$filter={deep_parens}"
        ))
        .await;
    assert_eq!(s, 400);
    assert_graph_error(&b, "Request_UnsupportedQuery", message);
    let (s, _, b) = g
        .batch(vec![
            json!({"id": "deep", "method": "GET", "url": format!("/users?$filter={deep_parens}")}),
            json!({"id": "fine", "method": "GET", "url": "/users?$top=1"}),
        ])
        .await;
    assert_eq!(s, 200);
    let item = |id: &str| {
        b["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(item("deep")["status"], 400);
    assert_eq!(item("fine")["status"], 200);
    // Nesting a real query would use still works.
    let (s, _, b) = g
        .get("/users?$filter=((startswith(displayName,'A')))&$select=displayName")
        .await;
    assert_eq!(s, 200, "{b}");
    // A chain of thousands of clauses adds no depth: it meets the directory's own limit on
    // `or` clauses outside the advanced-query mode, and nothing else.
    let chain = vec!["mail eq 'x'"; 2000].join(" or ");
    let (s, _, b) = g.get(&format!("/users?$filter={chain}")).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &b,
        "Request_UnsupportedQuery",
        "Too many child clauses specified in search filter expression containing 'OR' operators: 2000. Max allowed: 15",
    );
    still_answers(&g).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn more_than_15_or_clauses_need_the_advanced_query_mode() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;
    let (_, _, some) = g.get("/users?$top=16&$select=userPrincipalName").await;
    let upns: Vec<String> = some["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| format!("'{}'", u["userPrincipalName"].as_str().unwrap()))
        .collect();
    let in15 = format!("userPrincipalName in ({})", upns[..15].join(","));
    let (s, _, b) = g.get(&format!("/users?$filter={in15}")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["value"].as_array().unwrap().len(), 15);
    let in16 = format!("userPrincipalName in ({})", upns.join(","));
    let (s, _, b) = g.get(&format!("/users?$filter={in16}")).await;
    assert_eq!(s, 400);
    assert_graph_error(
        &b,
        "Request_UnsupportedQuery",
        "Too many child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15",
    );
    let (s, _, b) = g
        .send(
            g.c.get(g.url(&format!("/users?$count=true&$filter={in16}")))
                .bearer_auth(&g.token)
                .header("ConsistencyLevel", "eventual"),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["@odata.count"], 16);
    sim.shutdown().await;
}

fn bounded(header: Duration, idle: Duration) -> SimOptions {
    SimOptions {
        header_timeout: header,
        idle_timeout: idle,
        ..SimOptions::default()
    }
}

#[tokio::test]
async fn silent_and_slow_clients_are_disconnected_within_the_bound() {
    let bound = Duration::from_millis(600);
    let sim = Sim::start(bounded(bound, Duration::from_secs(30)))
        .await
        .unwrap();
    let g = Graph::new(&sim).await;
    let deadline = Duration::from_secs(5);

    // Connects and sends nothing.
    let mut s = TcpStream::connect(addr(&sim)).await.unwrap();
    let (got, took) = until_closed(&mut s, deadline).await;
    assert!(got.is_empty());
    assert!(took >= bound - Duration::from_millis(50), "{took:?}");

    // Half a request line, then nothing.
    let mut s = TcpStream::connect(addr(&sim)).await.unwrap();
    s.write_all(b"GET /v1.0/us").await.unwrap();
    let (got, took) = until_closed(&mut s, deadline).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(took >= bound - Duration::from_millis(50), "{took:?}");

    // A head sent one byte every 100 ms: the bound counts from the connection, not per byte.
    let mut s = TcpStream::connect(addr(&sim)).await.unwrap();
    let head = b"GET /v1.0/users HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let t0 = Instant::now();
    let mut cut = false;
    for b in head {
        if s.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if t0.elapsed() > deadline {
            break;
        }
    }
    if !cut {
        let (got, _) = until_closed(&mut s, deadline).await;
        assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    }
    let took = t0.elapsed();
    assert!(
        took < bound + Duration::from_millis(1500),
        "closed after {took:?}, bound {bound:?}"
    );

    // HTTP/2 preface started and stalled (the protocol sniffing waits on it).
    let mut s = TcpStream::connect(addr(&sim)).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    until_closed(&mut s, deadline).await;

    // A head that promises a body which never comes.
    let mut s = TcpStream::connect(addr(&sim)).await.unwrap();
    s.write_all(b"POST /v1.0/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    until_closed(&mut s, deadline).await;

    still_answers(&g).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_silent_tls_handshake_is_dropped_too() {
    let bound = Duration::from_millis(500);
    let sim = Sim::start(SimOptions {
        tls: true,
        ..bounded(bound, Duration::from_secs(30))
    })
    .await
    .unwrap();
    let mut s = TcpStream::connect(addr(&sim)).await.unwrap();
    let (_, took) = until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(took >= bound - Duration::from_millis(50), "{took:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_bound() {
    let idle = Duration::from_millis(800);
    let sim = Sim::start(bounded(Duration::from_secs(30), idle))
        .await
        .unwrap();
    let mut s = TcpStream::connect(addr(&sim)).await.unwrap();
    // Two requests on one connection, then silence.
    for _ in 0..2 {
        s.write_all(b"GET /v1.0/users HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        // A slow client between requests: still within the idle bound.
        tokio::time::sleep(idle / 2).await;
    }
    let (_, took) = until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(took >= idle / 2 - Duration::from_millis(100), "{took:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_a_413_and_the_server_goes_on() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let g = Graph::new(&sim).await;
    let big = json!({"displayName": "x".repeat(5 << 20)});
    let (s, _, b) = g.post("/users", &big).await;
    assert_eq!(s, 413);
    assert_graph_error(&b, "BadRequest", "Maximum request length exceeded.");
    let (s, _, b) = g.post("/$batch", &big).await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(sim.write_count(), 0);
    // Without a Content-Length (chunked): refused once it streams past the limit.
    let mut s = TcpStream::connect(addr(&sim)).await.unwrap();
    s.write_all(
        b"POST /v1.0/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..6 {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        s.write_all(&chunk).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    // Identity routes have the same limit.
    let r =
        g.c.post(format!("{}/organizations/oauth2/v2.0/token", sim.base_url))
            .body(vec![b'a'; 5 << 20])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 413);
    // Just under the limit is read and validated as usual.
    let ok_size = json!({"displayName": "x".repeat(3 << 20)});
    let (s, _, b) = g.post("/users", &ok_size).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["code"], "Request_BadRequest", "{b}");
    still_answers(&g).await;
    sim.shutdown().await;
}

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
        .arg("ulimit -n 64 && exec \"$0\" sim --listen 127.0.0.1:0 --header-timeout-secs 120")
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
