//! SMTP: a login, nothing more. The probe reads the greeting, says EHLO, upgrades with STARTTLS
//! (or starts in TLS), authenticates with AUTH PLAIN or LOGIN and says QUIT. It never sends
//! MAIL or RCPT, so no message can leave.
//!
//! | `security` | port default | transport |
//! | --- | --- | --- |
//! | `starttls` | 587 | STARTTLS required |
//! | `tls` | 465 | TLS from the first byte |
//! | `none` | 587 | never TLS |
//! | absent | 587 (465 means `tls`) | STARTTLS when the server offers it |
//!
//! Certificates are checked against Mozilla's roots and the host name. The password goes in
//! clear only to a non-public address an operator allowed.
//!
//! Messages name the host, the user and the server's reply code (with its RFC 3463 enhanced
//! code), never the reply's text: a server can quote what it was sent.

use crate::db::net::{self, Failure, Verify, within};
use crate::outcome::{ProbeConfig, ProbeResult};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use credentials_core::SecretValue;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The fields [`validate`] reads.
#[cfg(test)]
pub(crate) const FIELDS: &[&str] = &["host", "port", "username", "password", "security"];

/// The longest reply line read; RFC 5321 allows 512 bytes, servers sometimes send more.
const MAX_LINE: u64 = 1024;
/// The most lines in one reply: an EHLO answer lists a dozen extensions.
const MAX_LINES: usize = 32;
/// The most bytes of one reply, so a validation holds a few KiB of a server's text at most
/// whatever it sends (a longer reply is not an SMTP server's).
const MAX_REPLY: usize = 8 * 1024;
/// How long QUIT may take; its answer changes nothing.
const QUIT_WAIT: Duration = Duration::from_secs(1);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    StartTls,
    Tls,
    None,
    Opportunistic,
}

struct Settings<'a> {
    host: &'a str,
    port: u16,
    security: Security,
    username: &'a str,
    password: &'a str,
}

fn settings(value: &SecretValue) -> Result<Settings<'_>, Failure> {
    let field = |name: &str| value.get(name).map(|s| s.expose().trim());
    let host = field("host")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Failure::invalid("the value has no host"))?;
    let username = value
        .get("username")
        .map(|s| s.expose())
        .ok_or_else(|| Failure::invalid("the value has no username"))?;
    let password = value
        .get("password")
        .map(|s| s.expose())
        .ok_or_else(|| Failure::invalid("the value has no password"))?;
    let port = match field("port") {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| Failure::invalid("the port must be a number from 1 to 65535"))?,
        ),
        None => None,
    };
    let security = match field("security") {
        Some("starttls") => Security::StartTls,
        Some("tls") => Security::Tls,
        Some("none") => Security::None,
        None | Some("") if port == Some(465) => Security::Tls,
        None | Some("") => Security::Opportunistic,
        Some(_) => return Err(Failure::invalid("security must be starttls, tls or none")),
    };
    let port = port.unwrap_or(if security == Security::Tls { 465 } else { 587 });
    Ok(Settings {
        host,
        port,
        security,
        username,
        password,
    })
}

/// One reply: its code and its text lines.
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// The reply code, with the enhanced status code (RFC 3463, e.g. `5.7.8`) when the first
    /// line starts with one: a fixed vocabulary, unlike the text after it.
    fn status(&self) -> String {
        let enhanced = self
            .lines
            .first()
            .and_then(|l| l.split_whitespace().next())
            .filter(|code| is_enhanced_code(code));
        match enhanced {
            Some(code) => format!("{} {code}", self.code),
            None => self.code.to_string(),
        }
    }
}

/// `class.subject.detail`: class 2, 4 or 5, then one to three and one to three digits.
fn is_enhanced_code(code: &str) -> bool {
    let parts: Vec<&str> = code.split('.').collect();
    matches!(parts.as_slice(), [class, subject, detail]
        if matches!(*class, "2" | "4" | "5")
            && [subject, detail]
                .iter()
                .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())))
}

/// An SMTP session over plain TCP or TLS.
struct Session {
    io: BufReader<Box<dyn Io>>,
    host: String,
}

impl Session {
    async fn read_reply(&mut self) -> Result<Reply, Failure> {
        let mut lines = Vec::new();
        let mut read = 0;
        loop {
            let mut line = Vec::new();
            (&mut self.io)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| self.broken(e))?;
            read += line.len();
            if read > MAX_REPLY {
                return Err(self.not_smtp());
            }
            if line.is_empty() {
                return Err(Failure::unreachable(format!(
                    "{} closed the connection",
                    net::shown(&self.host)
                )));
            }
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| self.not_smtp())?;
            let separator = line.as_bytes().get(3).copied();
            lines.push(line.get(4..).unwrap_or("").to_owned());
            match separator {
                Some(b'-') if lines.len() < MAX_LINES => continue,
                Some(b'-') => return Err(self.not_smtp()),
                _ => return Ok(Reply { code, lines }),
            }
        }
    }

    async fn send(&mut self, line: &str) -> Result<(), Failure> {
        let io = self.io.get_mut();
        io.write_all(line.as_bytes())
            .await
            .map_err(|e| self.broken(e))?;
        self.io
            .get_mut()
            .write_all(b"\r\n")
            .await
            .map_err(|e| self.broken(e))?;
        self.io.get_mut().flush().await.map_err(|e| self.broken(e))
    }

    async fn command(&mut self, line: &str) -> Result<Reply, Failure> {
        self.send(line).await?;
        self.read_reply().await
    }

    fn broken(&self, e: std::io::Error) -> Failure {
        Failure::unreachable(format!(
            "the connection to {} failed: {}",
            net::shown(&self.host),
            net::io_reason(&e)
        ))
    }

    fn not_smtp(&self) -> Failure {
        Failure::provider(format!("{} does not speak SMTP", net::shown(&self.host)))
    }

    /// EHLO; returns the extension lines (keywords upper-cased).
    async fn ehlo(&mut self, name: &str) -> Result<Vec<String>, Failure> {
        let reply = self.command(&format!("EHLO {name}")).await?;
        if reply.code != 250 {
            return Err(Failure::provider(format!(
                "the server refused EHLO ({})",
                reply.status()
            )));
        }
        Ok(reply
            .lines
            .iter()
            .skip(1)
            .map(|l| l.to_ascii_uppercase())
            .collect())
    }

    async fn start_tls(self, policy: &crate::egress::EgressPolicy) -> Result<Session, Failure> {
        // Bytes the server sent after its 220 would be read as if they came over TLS: a
        // STARTTLS command-injection attack. Refuse them.
        if !self.io.buffer().is_empty() {
            return Err(Failure::provider(format!(
                "{} sent data after accepting STARTTLS",
                net::shown(&self.host)
            )));
        }
        let host = self.host;
        let inner = self.io.into_inner();
        let tls = tokio_rustls::TlsConnector::from(net::tls_config(Verify::Full, policy)?)
            .connect(net::server_name(&host)?, inner)
            .await
            .map_err(|e| {
                Failure::provider(format!(
                    "TLS handshake with {} failed: {}",
                    net::shown(&host),
                    net::tls_reason(&e)
                ))
            })?;
        Ok(Session {
            io: BufReader::new(Box::new(tls)),
            host,
        })
    }
}

/// The address literal of our end, as RFC 5321 wants for EHLO when we have no name.
fn ehlo_name(local: Option<SocketAddr>) -> String {
    match local.map(|a| a.ip()) {
        Some(IpAddr::V4(v4)) => format!("[{v4}]"),
        Some(IpAddr::V6(v6)) => format!("[IPv6:{v6}]"),
        None => "[127.0.0.1]".to_owned(),
    }
}

/// The mechanisms of the `AUTH` extension (also the old `AUTH=` form).
fn auth_mechanisms(extensions: &[String]) -> Vec<String> {
    extensions
        .iter()
        .filter_map(|l| l.strip_prefix("AUTH ").or_else(|| l.strip_prefix("AUTH=")))
        .flat_map(|rest| rest.split_whitespace().map(str::to_owned))
        .collect()
}

/// Validates an `smtp` credential under `config.timeout`.
pub async fn validate(value: &SecretValue, config: &ProbeConfig) -> ProbeResult {
    let result = async {
        let settings = settings(value)?;
        within(config.timeout, "the SMTP server", login(&settings, config)).await
    }
    .await;
    match result {
        Ok(message) => ProbeResult::valid(message),
        Err(failure) => failure.into(),
    }
}

async fn login(s: &Settings<'_>, config: &ProbeConfig) -> Result<String, Failure> {
    let (tcp, addr) = net::dial(&config.egress, s.host, s.port).await?;
    let name = ehlo_name(tcp.local_addr().ok());
    let mut encrypted = s.security == Security::Tls;
    let io: Box<dyn Io> = if encrypted {
        Box::new(net::tls_connect(tcp, s.host, Verify::Full, &config.egress).await?)
    } else {
        Box::new(tcp)
    };
    let mut session = Session {
        io: BufReader::new(io),
        host: s.host.to_owned(),
    };
    let greeting = session.read_reply().await?;
    if greeting.code != 220 {
        return Err(Failure::provider(format!(
            "the server refused the session ({})",
            greeting.status()
        )));
    }
    let mut extensions = session.ehlo(&name).await?;
    let offers_starttls = extensions.iter().any(|l| l == "STARTTLS");
    let upgrade = match s.security {
        Security::StartTls if !offers_starttls => {
            return Err(Failure::provider(
                "security is starttls but the server does not offer STARTTLS",
            ));
        }
        Security::StartTls => true,
        Security::Opportunistic => offers_starttls,
        Security::Tls | Security::None => false,
    };
    if upgrade {
        let reply = session.command("STARTTLS").await?;
        if reply.code != 220 {
            return Err(Failure::provider(format!(
                "the server refused STARTTLS ({})",
                reply.status()
            )));
        }
        session = session.start_tls(&config.egress).await?;
        encrypted = true;
        extensions = session.ehlo(&name).await?;
    }
    if !encrypted && !config.egress.allows_cleartext(addr.ip()) {
        return Err(Failure::egress(format!(
            "refusing to send the password in clear to {}, a public address: the connection is \
             not encrypted (set security to starttls or tls)",
            net::shown(s.host)
        )));
    }
    let mechanisms = auth_mechanisms(&extensions);
    if mechanisms.is_empty() {
        let hint = if encrypted {
            ""
        } else {
            " (many servers offer it only over TLS)"
        };
        return Err(Failure::provider(format!(
            "the server offers no AUTH{hint}"
        )));
    }
    let reply = if mechanisms.iter().any(|m| m == "PLAIN") {
        let token = BASE64.encode(format!("\0{}\0{}", s.username, s.password));
        let reply = session.command(&format!("AUTH PLAIN {token}")).await?;
        if reply.code == 334 {
            // A server that ignores the initial response asks for it again.
            session.command(&token).await?
        } else {
            reply
        }
    } else if mechanisms.iter().any(|m| m == "LOGIN") {
        let mut reply = session.command("AUTH LOGIN").await?;
        if reply.code == 334 {
            reply = session.command(&BASE64.encode(s.username)).await?;
        }
        if reply.code == 334 {
            reply = session.command(&BASE64.encode(s.password)).await?;
        }
        reply
    } else {
        return Err(Failure::provider(
            "the server offers no AUTH mechanism the probe speaks (PLAIN, LOGIN)",
        ));
    };
    let user = net::shown(s.username);
    let host = net::endpoint(s.host, s.port);
    let status = reply.status();
    let outcome = match reply.code {
        235 => Ok(format!("logged in as {user}")),
        535 => Err(Failure::invalid(format!(
            "authentication failed for user '{user}' on {host} ({status})"
        ))),
        534 => Err(Failure::invalid(format!(
            "authentication failed for user '{user}' on {host}; the server wants another kind \
             of login, e.g. an app password ({status})"
        ))),
        530 => Err(Failure::provider(format!(
            "the server requires TLS or authentication first ({status}); set security to starttls or tls"
        ))),
        538 => Err(Failure::provider(format!(
            "the server requires an encrypted connection for this login ({status}); set security to starttls or tls"
        ))),
        code if (400..500).contains(&code) => Err(Failure::provider(format!(
            "temporary failure, try again later ({status})"
        ))),
        _ => Err(Failure::provider(format!(
            "the server answered the login with {status}"
        ))),
    };
    // A polite goodbye; its answer changes nothing.
    let _ = tokio::time::timeout(QUIT_WAIT, session.command("QUIT")).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use credentials_core::catalogue::lookup;
    use credentials_core::value::{ValueInput, check};

    fn value(pairs: &[(&str, &str)]) -> SecretValue {
        check(
            lookup("smtp").unwrap(),
            ValueInput::Fields(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).into()))
                    .collect(),
            ),
        )
        .unwrap()
    }

    #[test]
    fn defaults() {
        let base = [
            ("host", "mail.example.com"),
            ("username", "u"),
            ("password", "p"),
        ];
        let s = value(&base);
        let s = settings(&s).unwrap();
        assert_eq!((s.port, s.security), (587, Security::Opportunistic));
        let v = value(&[base[0], base[1], base[2], ("port", "465")]);
        let s = settings(&v).unwrap();
        assert_eq!((s.port, s.security), (465, Security::Tls));
        let v = value(&[base[0], base[1], base[2], ("security", "tls")]);
        assert_eq!(settings(&v).unwrap().port, 465);
        // Writes refuse such a port now; a value stored before that still reaches the probe.
        let v = SecretValue::from_json(
            br#"{"fields":{"host":"mail.example.com","username":"u","password":"p","port":"70000"}}"#,
        )
        .unwrap();
        assert!(settings(&v).is_err());
    }

    #[test]
    fn extensions() {
        let ext = vec![
            "PIPELINING".into(),
            "AUTH LOGIN PLAIN".into(),
            "AUTH=LOGIN".into(),
        ];
        assert_eq!(auth_mechanisms(&ext), ["LOGIN", "PLAIN", "LOGIN"]);
        assert_eq!(ehlo_name("10.1.2.3:5".parse().ok()), "[10.1.2.3]");
        assert_eq!(ehlo_name("[::1]:5".parse().ok()), "[IPv6:::1]");
    }

    #[test]
    fn statuses_carry_codes_never_text() {
        let reply = |code, line: &str| Reply {
            code,
            lines: vec![line.to_owned()],
        };
        assert_eq!(
            reply(535, "5.7.8 Authentication failed for Sekr3t").status(),
            "535 5.7.8"
        );
        assert_eq!(reply(535, "Sekr3t rejected").status(), "535");
        assert_eq!(reply(421, "4.7.0x Sekr3t").status(), "421");
        assert_eq!(reply(250, "").status(), "250");
    }

    async fn parse_replies(input: &[u8]) -> Vec<(u16, Vec<String>)> {
        let (mut writer, reader) = tokio::io::duplex(64 * 1024);
        writer.write_all(input).await.unwrap();
        drop(writer);
        let mut s = Session {
            io: BufReader::new(Box::new(reader)),
            host: "h".into(),
        };
        let mut out = Vec::new();
        while let Ok(r) = s.read_reply().await {
            out.push((r.code, r.lines));
        }
        out
    }

    #[tokio::test]
    async fn replies() {
        let got =
            parse_replies(b"220 hi\r\n250-a.example\r\n250-AUTH PLAIN\r\n250 SIZE\r\nxx\r\n").await;
        assert_eq!(
            got,
            vec![
                (220, vec!["hi".to_owned()]),
                (
                    250,
                    vec!["a.example".into(), "AUTH PLAIN".into(), "SIZE".into()]
                ),
            ]
        );
    }
}
