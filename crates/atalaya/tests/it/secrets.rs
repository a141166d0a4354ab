//! Secrets never leak: with a canary in every secret (bot token, webhook URL and secret,
//! Twilio token, SMTP password) and every channel failing, no log line, no stored alert and
//! no API answer contains it.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CANARY: &str = "CANARY7f3a9c";

fn bin() -> Command {
    let mut c = crate::atalaya();
    c.env("ATALAYA_LOG", "debug")
        .env(
            "ATALAYA_ALERTS__TELEGRAM__BOT_TOKEN",
            format!("123:{CANARY}tg"),
        )
        .env("ATALAYA_ALERTS__WEBHOOK__SECRET", format!("{CANARY}wh"))
        .env("ATALAYA_ALERTS__SMS__AUTH_TOKEN", format!("{CANARY}sms"))
        .env("ATALAYA_ALERTS__EMAIL__PASSWORD", format!("{CANARY}mail"))
        .env(
            "ATALAYA_ALERTS__DISCORD__WEBHOOK_URL",
            format!("http://127.0.0.1:9/api/webhooks/1/{CANARY}dc"),
        );
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn no_secret_reaches_a_log_a_stored_alert_or_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("atalaya.toml");
    // Every channel points at a closed port: each delivery fails and is logged and recorded.
    std::fs::write(
        &cfg,
        "[alerts.telegram]\nenabled = true\nbase_url = \"http://127.0.0.1:9\"\nchat_id = \"42\"\n\
         [alerts.discord]\nenabled = true\n\
         [alerts.webhook]\nenabled = true\nurl = \"http://127.0.0.1:9/hook\"\n\
         [alerts.sms]\nenabled = true\nbase_url = \"http://127.0.0.1:9\"\naccount_sid = \"AC1\"\nfrom = \"+15550001\"\nto = \"+15550002\"\n\
         [alerts.email]\nenabled = true\nhost = \"localhost\"\nport = 9\nsecurity = \"none\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n\
         [alerts.routes]\nlow = [\"telegram\", \"discord\", \"webhook\", \"sms\", \"email\", \"console\"]\n\
         medium = [\"telegram\", \"discord\", \"webhook\", \"sms\", \"email\", \"console\"]\n\
         high = [\"telegram\", \"discord\", \"webhook\", \"sms\", \"email\", \"console\"]\n",
    )
    .unwrap();
    let db = dir.path().join("s.db");
    let mut seen = String::new();
    // 1. A fast run that creates alerts whose deliveries fail.
    let out = bin()
        .arg("--config")
        .arg(&cfg)
        .args([
            "run",
            "--demo",
            "--speed",
            "max",
            "--for",
            "1h",
            "--no-server",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen.push_str(&String::from_utf8_lossy(&out.stdout));
    seen.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(
        seen.contains("will retry") || seen.contains("dead-lettered"),
        "deliveries were attempted"
    );
    // 2. What is stored, and the configuration as shown.
    for args in [
        vec!["alerts", "list", "--json", "--db"],
        vec!["config", "show"],
    ] {
        let mut c = bin();
        c.arg("--config").arg(&cfg).args(&args);
        if args.last() == Some(&"--db") {
            c.arg(&db);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(seen.contains("last_error"), "the stored failures were read");
    // 3. The API of a live run on the same store (which retries the pending deliveries).
    let port = free_port();
    let child = bin()
        .arg("--config")
        .arg(&cfg)
        .args([
            "run",
            "--demo",
            "--speed",
            "1",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--db",
        ])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the API did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for path in [
        "/health",
        "/api/v1/status",
        "/api/v1/alerts?per_page=1000",
        "/api/v1/opportunities?per_page=100",
        "/api/v1/portfolio",
        "/api/v1/alerts?since=%27%3B%20DROP",
        "/nope",
    ] {
        seen.push_str(&get(port, path));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    seen.push_str(&String::from_utf8_lossy(&out.stdout));
    seen.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(
        seen.contains("\"last_error\""),
        "the API showed the stored failures"
    );
    let leaks: Vec<&str> = seen.lines().filter(|l| l.contains(CANARY)).collect();
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}
