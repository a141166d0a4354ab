//! The email notifier against a real SMTP server (aiosmtpd, started per test from
//! `tests/smtp_sink.py`): STARTTLS, implicit TLS and plain SMTP on loopback, authentication,
//! the multipart message, and how failures are classified.
//!
//! `ATALAYA_TEST_SMTP_PYTHON` names a Python with `aiosmtpd` and `trustme` (`.ci/run` makes
//! one); without it the tests say they were skipped.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atalaya_alerts::Notifier;
use atalaya_alerts::email::{EmailNotifier, Security, SmtpSettings};
use atalaya_model::{Alert, AlertPriority};

struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> Option<PathBuf> {
    match std::env::var_os("ATALAYA_TEST_SMTP_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("skipped: ATALAYA_TEST_SMTP_PYTHON is not set (.ci/run sets it)");
            None
        }
    }
}

fn sink(py: &Path, mode: &str) -> Sink {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
    let mut child = Command::new(py)
        .arg(script)
        .arg(mode)
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("ATALAYA_TEST_SMTP_PYTHON={} cannot run: {e}", py.display()));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("the SMTP sink did not start: {line:?}"))
        .parse()
        .unwrap();
    Sink { child, port, dir }
}

fn settings(s: &Sink, security: Security, password: &str) -> SmtpSettings {
    SmtpSettings {
        host: "localhost".into(),
        port: s.port,
        security,
        username: if security == Security::None {
            String::new()
        } else {
            "atalaya".into()
        },
        password: password.into(),
        ca_file: Some(s.dir.path().join("ca.pem")),
        from: "Atalaya <agent@example.com>".into(),
        to: vec!["trader@example.com".into(), "desk@example.com".into()],
        timeout: Duration::from_secs(10),
    }
}

fn alert() -> Alert {
    Alert {
        id: 1,
        opportunity_id: Some(7),
        instrument: Some("binance:BTC/USDT".parse().unwrap()),
        priority: AlertPriority::High,
        title: "BUY binance:BTC/USDT (1h)".into(),
        body: "BUY binance:BTC/USDT (1h) @ 60123.45\nWhy: RSI < 30 & close > EMA200\nNot financial advice."
            .into(),
        created_at: 0,
        deliveries: Vec::new(),
        timeframe: None,
        short: None,
    }
}

fn received(s: &Sink) -> String {
    let path = s.dir.path().join("0001.eml");
    let t0 = Instant::now();
    while !path.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(&path).unwrap()
}

#[tokio::test]
async fn starttls_and_implicit_tls_deliver_a_multipart_message() {
    let Some(py) = python() else { return };
    for (mode, security) in [("starttls", Security::Starttls), ("tls", Security::Tls)] {
        let s = sink(&py, mode);
        let n = EmailNotifier::new(&settings(&s, security, "s3cret")).unwrap();
        n.send(&alert())
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e:?}"));
        let eml = received(&s);
        assert!(
            eml.contains("Subject: [Atalaya] BUY binance:BTC/USDT (1h)"),
            "{mode}: {eml}"
        );
        assert!(eml.contains("multipart/alternative"), "{eml}");
        assert!(eml.contains("text/plain"), "{eml}");
        assert!(eml.contains("text/html"), "{eml}");
        assert!(
            eml.contains("RSI &lt; 30 &amp; close &gt; EMA200"),
            "HTML is escaped: {eml}"
        );
        assert!(eml.contains("Not financial advice."), "{eml}");
        let rcpt = std::fs::read_to_string(s.dir.path().join("0001.rcpt")).unwrap();
        assert_eq!(rcpt, "trader@example.com\ndesk@example.com");
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_permanent_rejection_and_a_dead_server_is_transient() {
    let Some(py) = python() else { return };
    let s = sink(&py, "starttls");
    let n = EmailNotifier::new(&settings(&s, Security::Starttls, "wrong")).unwrap();
    let e = n.send(&alert()).await.unwrap_err();
    assert!(!e.is_transient(), "{e:?}");
    assert!(
        e.to_string().contains("535") || format!("{e:?}").contains("535"),
        "{e:?}"
    );
    let port = s.port;
    drop(s);
    let mut dead = settings(&sink(&py, "none"), Security::None, "");
    dead.port = port;
    let e = EmailNotifier::new(&dead)
        .unwrap()
        .send(&alert())
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn plain_smtp_is_only_for_loopback() {
    let Some(py) = python() else { return };
    let s = sink(&py, "none");
    let n = EmailNotifier::new(&settings(&s, Security::None, "")).unwrap();
    n.send(&alert()).await.unwrap();
    assert!(received(&s).contains("Subject: [Atalaya]"));
    let mut remote = settings(&s, Security::None, "");
    remote.host = "mail.example.com".into();
    let e = EmailNotifier::new(&remote).unwrap_err();
    assert!(e.to_string().contains("only localhost"), "{e}");
}

#[tokio::test]
async fn a_chart_is_an_inline_image_the_html_shows() {
    let Some(py) = python() else { return };
    let s = sink(&py, "starttls");
    let n = EmailNotifier::new(&settings(&s, Security::Starttls, "s3cret")).unwrap();
    let bars: Vec<atalaya_alerts::chart::ChartBar> = (0..30)
        .map(|i| {
            let c = 100.0 + f64::from(i);
            atalaya_alerts::chart::ChartBar {
                open: c,
                high: c + 2.0,
                low: c - 1.0,
                close: c + 1.0,
            }
        })
        .collect();
    let png = atalaya_alerts::chart::render_png(&bars, Default::default()).unwrap();
    n.send_with_chart(&alert(), Some(&png)).await.unwrap();
    let eml = received(&s);
    assert!(eml.contains("multipart/related"), "{eml}");
    assert!(
        eml.contains("Content-ID: <chart>"),
        "{}",
        &eml[..eml.len().min(3000)]
    );
    assert!(eml.contains("cid:chart"));
    assert!(eml.contains("image/png"));
    assert!(eml.contains("multipart/alternative"));
}
