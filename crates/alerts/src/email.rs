//! Email over SMTP with lettre: STARTTLS (port 587), implicit TLS (port 465) or, for a
//! server on the same machine only, plain SMTP; a `multipart/alternative` message with the
//! full text as `text/plain` and the same text as escaped HTML.
//!
//! SMTP answers are classified like HTTP ones: a permanent (5xx) reply is a rejection that is
//! not retried; a transient (4xx) reply, a time-out or a broken connection is retried by the
//! dispatcher.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use atalaya_model::Alert;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::telegram::escape_html;
use crate::{AlertError, Notifier};

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which is required (submission, port 587).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: accepted only for a server on the loopback interface (a local relay).
    None,
}

/// Everything needed to reach the server.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// Server host name (also the name its certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Connection security.
    pub security: Security,
    /// User name; empty for no authentication.
    pub username: String,
    /// Password (a secret).
    pub password: String,
    /// A PEM file of extra certificate authorities to trust (a private server's CA).
    pub ca_file: Option<PathBuf>,
    /// Sender, `Name <address>` or `address`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Time-out of each SMTP command.
    pub timeout: Duration,
}

/// Sends alerts by email.
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl std::fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

fn config_error(message: String) -> AlertError {
    AlertError::Rejected {
        channel: "email",
        status: 0,
        message,
    }
}

impl EmailNotifier {
    /// A notifier for `s`; fails on an unparsable address, an unreadable CA file, or plain
    /// SMTP to anything but the loopback interface.
    pub fn new(s: &SmtpSettings) -> Result<Self, AlertError> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| config_error(format!("from address {:?}: {e}", s.from)))?;
        let to =
            s.to.iter()
                .map(|t| {
                    t.parse::<Mailbox>()
                        .map_err(|e| config_error(format!("recipient {t:?}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(config_error("no recipient".into()));
        }
        let tls = || -> Result<TlsParameters, AlertError> {
            let mut b = TlsParameters::builder(s.host.clone());
            if let Some(path) = &s.ca_file {
                let pem = std::fs::read(path).map_err(|source| AlertError::Io {
                    channel: "email",
                    source,
                })?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| config_error(format!("CA file {}: {e}", path.display())))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls()
                .map_err(|e| config_error(format!("TLS settings: {e}")))
        };
        let tls = match s.security {
            Security::Starttls => Tls::Required(tls()?),
            Security::Tls => Tls::Wrapper(tls()?),
            Security::None => {
                let local = matches!(s.host.as_str(), "localhost" | "127.0.0.1" | "::1");
                if !local {
                    return Err(config_error(format!(
                        "security = \"none\" sends the password in clear: refused for {} (only localhost)",
                        s.host
                    )));
                }
                Tls::None
            }
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port)
            .tls(tls)
            .timeout(Some(s.timeout));
        if !s.username.is_empty() {
            b = b.credentials(Credentials::new(s.username.clone(), s.password.clone()));
        }
        Ok(Self {
            transport: b.build(),
            from,
            to,
        })
    }

    /// The message for an alert: subject `[Atalaya] {title}`, plain text and HTML parts, and
    /// with a chart, the HTML shows it inline (`multipart/related`, `cid:chart`).
    pub fn message(&self, alert: &Alert, chart: Option<&[u8]>) -> Result<Message, AlertError> {
        let priority = format!("{:?}", alert.priority).to_uppercase();
        let img = if chart.is_some() {
            "<p><img src=\"cid:chart\" alt=\"price chart\" width=\"640\" height=\"320\"></p>"
        } else {
            ""
        };
        let html = format!(
            "<!doctype html><html><body><h3>{}</h3><p><b>Priority:</b> {}</p>{img}<pre style=\"font-family:monospace\">{}</pre></body></html>",
            escape_html(&alert.title),
            priority,
            escape_html(&alert.body)
        );
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(format!("[Atalaya] {}", alert.title));
        for t in &self.to {
            b = b.to(t.clone());
        }
        let alternative = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(header::ContentType::TEXT_PLAIN)
                    .body(format!(
                        "{}\n\nPriority: {priority}\n\n{}",
                        alert.title, alert.body
                    )),
            )
            .singlepart(
                SinglePart::builder()
                    .header(header::ContentType::TEXT_HTML)
                    .body(html),
            );
        let body = match chart {
            Some(png) => {
                let kind = header::ContentType::parse("image/png")
                    .map_err(|e| config_error(format!("content type: {e}")))?;
                MultiPart::related()
                    .multipart(alternative)
                    .singlepart(Attachment::new_inline("chart".into()).body(png.to_vec(), kind))
            }
            None => alternative,
        };
        b.multipart(body)
            .map_err(|e| config_error(format!("building the message: {e}")))
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn name(&self) -> &'static str {
        "email"
    }

    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        self.send_with_chart(alert, None).await
    }

    async fn send_with_chart(&self, alert: &Alert, chart: Option<&[u8]>) -> Result<(), AlertError> {
        let msg = self.message(alert, chart)?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.status().map(|c| {
                    let s = c.to_string();
                    s.parse::<u16>().unwrap_or(0)
                });
                if e.is_permanent() || e.is_transient() {
                    Err(AlertError::Smtp {
                        code: code.unwrap_or(0),
                        message: e.to_string(),
                        permanent: e.is_permanent(),
                    })
                } else {
                    // Transient replies, time-outs and broken connections: retry later.
                    Err(AlertError::Io {
                        channel: "email",
                        source: std::io::Error::other(e.to_string()),
                    })
                }
            }
        }
    }
}
