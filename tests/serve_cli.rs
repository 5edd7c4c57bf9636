//! `switchboard serve` as a process: options and their environment fallbacks, start-up errors,
//! persistence across restarts, and shutdown on signals with a stream in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::mock::{DONE, Mock, Reply, chunk};
use common::{Gateway, Launch, config_for, http, spawn};
use futures_util::StreamExt;
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn health_answers_once_started() {
    let mock = Mock::start().await;
    let (gw, dir) = Gateway::start(&config_for(&mock.url(), ""));
    let r = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    assert!(
        gw.url.starts_with("http://127.0.0.1:"),
        "default host is loopback"
    );
    assert!(dir.path().join("data/config.db").exists());
}

/// A headless gateway started from the default (desktop) build loads no GUI library: it pays
/// neither their start time nor their memory.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn serve_maps_no_gui_library() {
    let mock = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", gw.child.id())).unwrap();
    assert!(maps.contains("libc"), "read the gateway's own maps");
    for lib in ["libgtk", "libgdk", "libwebkit2gtk", "libjavascriptcoregtk"] {
        assert!(!maps.contains(lib), "`switchboard serve` maps {lib}");
    }
}

#[tokio::test]
async fn environment_fallbacks_and_flags_win() {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("env.toml");
    std::fs::write(&config, config_for(&mock.url(), "")).unwrap();
    let data = dir.path().join("env-data");
    let port = free_port();
    // Everything from the environment.
    let launch = Launch {
        args: vec!["serve".into()],
        env: Vec::new(),
    }
    .env("SWITCHBOARD_CONFIG", &config.display().to_string())
    .env("SWITCHBOARD_DATA_DIR", &data.display().to_string())
    .env("SWITCHBOARD_HOST", "127.0.0.1")
    .env("SWITCHBOARD_PORT", &port.to_string());
    let gw = spawn(launch, &data).unwrap();
    assert_eq!(gw.port, port);
    assert!(data.join("config.db").exists());
    assert_eq!(
        gw.generated_keys.len(),
        1,
        "the config from SWITCHBOARD_CONFIG was imported"
    );
    drop(gw);

    // A flag beats its variable: the variable names a taken port, the flag a free one.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let launch = Launch {
        args: vec!["serve".into(), "--port".into(), "0".into()],
        env: Vec::new(),
    }
    .env("SWITCHBOARD_DATA_DIR", &data.display().to_string())
    .env("SWITCHBOARD_PORT", &busy.to_string());
    let gw = spawn(launch, &data).unwrap();
    assert_ne!(gw.port, busy);
}

#[tokio::test]
async fn a_taken_port_is_a_one_line_error_and_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch {
        args: vec!["serve".into(), "--port".into(), port.to_string()],
        env: Vec::new(),
    }
    .env("SWITCHBOARD_DATA_DIR", &dir.path().display().to_string());
    let Err((status, stderr)) = spawn(launch, dir.path()) else {
        panic!("started on a taken port");
    };
    assert_eq!(status.code(), Some(2));
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("switchboard: error: cannot listen on 127.0.0.1:"),
        "{stderr}"
    );
    assert!(last.contains("in use") && last.contains("--port"), "{last}");
}

#[tokio::test]
async fn an_invalid_config_names_file_line_and_field_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[providers]]\nname = \"relay\"\nbase_url = \"relay.example\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let Err((status, stderr)) = spawn(Launch::serve(&config, &data), &data) else {
        panic!("started with an invalid config");
    };
    assert_eq!(status.code(), Some(2));
    let line = stderr.lines().last().unwrap();
    assert!(
        line.starts_with(&format!(
            "switchboard: error: {}:3: providers[0].base_url: ",
            config.display()
        )),
        "{stderr}"
    );
    assert!(!data.join("config.db").exists(), "nothing was touched");

    std::fs::write(&config, "[server]\nrequest_timeout = 5\n").unwrap();
    let Err((status, stderr)) = spawn(Launch::serve(&config, &data), &data) else {
        panic!("started with an unknown key");
    };
    assert_eq!(status.code(), Some(2));
    let line = stderr.lines().last().unwrap();
    assert!(
        line.contains("bad.toml:2: ") && line.contains("request_timeout"),
        "{line}"
    );
}

#[tokio::test]
async fn config_persists_across_restarts() {
    let mock = Mock::start().await;
    let (gw, dir) = Gateway::start(&config_for(&mock.url(), ""));
    let key = gw.key("test");
    drop(gw);
    // Same data dir, no config file: providers, models and the client key are still there.
    let data = dir.path().join("data");
    let launch = Launch {
        args: vec![
            "serve".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--port".into(),
            "0".into(),
        ],
        env: Vec::new(),
    };
    let gw = spawn(launch, &data).unwrap();
    assert!(
        gw.generated_keys.is_empty(),
        "a key is shown once, at creation"
    );
    let r = http()
        .get(format!("{}/models", gw.v1()))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let own = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["id"].as_str().unwrap().starts_with("auto:"))
        .count();
    assert_eq!(own, 2, "{v}");
    // The literal provider key went to the keychain at the first start: it is still used.
    assert!(
        !gw.stderr().contains("not in the secret store"),
        "{}",
        gw.stderr()
    );
    let r = http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(&key)
        .json(&serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock.requests().pop().unwrap().header("authorization"),
        Some("Bearer sk-upstream-secret-1234")
    );
    drop(gw);

    // Importing the same file again changes nothing.
    let config = dir.path().join("switchboard.toml");
    let gw = spawn(Launch::serve(&config, &data), &data).unwrap();
    assert!(gw.generated_keys.is_empty());
    assert!(gw.stderr().contains("changes=0"), "{}", gw.stderr());
}

/// Starts a streaming chat whose upstream sends `chunks`, `gap` apart; returns the client's body.
async fn stream_in_flight(
    mock: &Mock,
    gw: &Gateway,
    chunks: Vec<String>,
    gap: Duration,
) -> impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + use<> {
    mock.script([Reply::Sse {
        chunks,
        gap,
        drop_after: None,
    }]);
    let body =
        json!({"model": "fast", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(gw.key("test"))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .bytes_stream()
}

#[tokio::test]
async fn sigterm_lets_a_stream_in_flight_finish_then_exits_0() {
    let mock = Mock::start().await;
    let (mut gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    let chunks: Vec<String> = (0..8)
        .map(|i| chunk("m", &format!("part{i}")))
        .chain([DONE.to_owned()])
        .collect();
    let mut s = stream_in_flight(&mock, &gw, chunks, Duration::from_millis(150)).await;
    let mut got = String::from_utf8(s.next().await.unwrap().unwrap().to_vec()).unwrap();
    gw.signal("TERM");
    // New connections are refused while the stream goes on.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let refused = std::net::TcpStream::connect(("127.0.0.1", gw.port)).is_err();
        if refused {
            break;
        }
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Some(c) = s.next().await {
        got.push_str(std::str::from_utf8(&c.unwrap()).unwrap());
    }
    assert!(
        got.contains("part7") && got.ends_with(DONE),
        "the stream finished: {got}"
    );
    let status = gw
        .wait(Duration::from_secs(5))
        .await
        .expect("exits after the stream");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sigint_exits_0() {
    let mock = Mock::start().await;
    let (mut gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    gw.signal("INT");
    let status = gw
        .wait(Duration::from_secs(5))
        .await
        .expect("exits on SIGINT");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn without_serve_it_says_what_to_run() {
    let out = std::process::Command::new(common::BIN)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--config",
        "--data-dir",
        "--host",
        "--port",
        "SWITCHBOARD_PORT",
        "serve",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
    }
}

#[tokio::test]
async fn a_stream_that_outlives_the_grace_period_is_cut_after_10_s_with_an_error_event() {
    let mock = Mock::start().await;
    let (mut gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    let chunks: Vec<String> = (0..30).map(|i| chunk("m", &format!("slow{i}"))).collect();
    let mut s = stream_in_flight(&mock, &gw, chunks, Duration::from_secs(1)).await;
    s.next().await.unwrap().unwrap();
    let reader = tokio::spawn(async move {
        let mut got = String::new();
        while let Some(Ok(c)) = s.next().await {
            got.push_str(&String::from_utf8_lossy(&c));
        }
        got
    });
    assert!(!reader.is_finished());
    let signalled = Instant::now();
    gw.signal("TERM");
    let status = gw
        .wait(Duration::from_secs(15))
        .await
        .expect("exits after the grace period");
    let waited = signalled.elapsed();
    assert_eq!(status.code(), Some(0));
    let got = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .expect("the client's stream ended with the process")
        .unwrap();
    // Not a silent cut: the stream's last event says why, in the client's protocol.
    let last = got.trim_end().rsplit("\n\n").next().unwrap_or_default();
    assert!(
        last.starts_with("data: {\"error\"") && last.contains("shutting down"),
        "{got}"
    );
    assert!(
        waited >= Duration::from_secs(9),
        "cut too early, after {waited:?}: {}",
        gw.stderr()
    );
}

/// The data folder holds the admin password's hash and the configuration: only its owner may
/// read it, the folder 0700 and each database file (its WAL and shared memory too) 0600,
/// whatever the umask.
#[tokio::test]
async fn the_data_folder_is_for_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (gw, dir) = Gateway::start_with(&common::config_for("http://127.0.0.1:9", ""), |l| {
        l.env("SWITCHBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
    });
    // A write, so that the WAL exists.
    let _ = common::admin_token(&gw).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = dir.path().join("data");
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    let mut dbs = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.contains(".db") {
            assert_eq!(mode(&p), 0o600, "{name}");
            dbs += 1;
        }
    }
    assert!(dbs >= 2, "the database and its WAL");
}

/// Whether the gateway closed `s` within `within`: a read ends (0 bytes, a reset, or an answer
/// followed by the close).
async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A slow or idle client cannot hold a connection: one that sends its headers a byte at a
/// time, one that sends a body a byte at a time, and an idle keep-alive connection are all
/// closed within the timeouts; past `server.max_connections` the oldest connections are asked
/// to close, so the gateway keeps answering through a flood of idle connections.
#[tokio::test]
async fn slow_and_idle_connections_are_closed_and_a_flood_does_not_shut_the_door() {
    use tokio::io::AsyncWriteExt;
    let mock = Mock::start().await;
    let config = config_for(&mock.url(), "").replace(
        "request_timeout_s = 5",
        "request_timeout_s = 5\nheader_timeout_s = 2\nbody_timeout_s = 2\nmax_connections = 20",
    );
    let (gw, _dir) = Gateway::start(&config);
    let addr = format!("127.0.0.1:{}", gw.port);

    // Headers a byte at a time, forever.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        for b in b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*b]).await.is_err() {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Duration::MAX
    });
    // An idle connection.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A body a byte at a time.
    let mut body = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let key = &gw.generated_keys[0].1;
    body.write_all(format!("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{").as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut idle, Duration::from_secs(6))
            .await
            .is_some(),
        "the idle one"
    );
    let answer = closed_within(&mut body, Duration::from_secs(6))
        .await
        .expect("the slow body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout_s"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let held = trickle.await.unwrap();
    assert!(
        held < Duration::from_secs(6),
        "the slow headers were held {held:?}"
    );

    // A flood of idle connections, five times the limit: each asks the oldest to go, and a
    // client that sends its request is still answered.
    let mut flood = Vec::new();
    for _ in 0..100 {
        flood.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let r = http()
        .get(format!("{}/health", gw.url))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut closed = 0;
    for s in &mut flood {
        if closed_within(s, Duration::from_millis(20)).await.is_some() {
            closed += 1;
        }
    }
    assert!(closed >= 75, "only {closed} of the flood were closed");
    let log = gw.stderr();
    assert!(log.contains("connection limit reached"), "{log}");
}
