//! Email over SMTP (`[notify.email]`), with lettre: STARTTLS (default), implicit TLS, or plain
//! SMTP to this machine. The password is resolved from its reference when the mailer is made;
//! an error names the server's reply or the transport's failure, never the password.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Mail, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{EmailDef, Message, SendError, SmtpTls};

/// A connected-on-demand SMTP relay.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// Build the transport from `[notify.email]`, resolving the password now. The error is
    /// safe to print (it names the reference, not a value).
    pub fn new(def: &EmailDef) -> anyhow::Result<Mailer> {
        let tls = def.tls.unwrap_or(SmtpTls::Starttls);
        if tls == SmtpTls::None && !def.allow_plain && !super::is_loopback(&def.host) {
            anyhow::bail!(
                "[notify.email] tls = \"none\" to {} would send the password and the mail in clear; use starttls or tls, or set allow_plain = true",
                def.host
            );
        }
        let builder = match tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&def.host),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&def.host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &def.host,
            )),
        }
        .map_err(|e| anyhow::anyhow!("[notify.email] host {}: {e}", def.host))?;
        let port = def.port.unwrap_or(match tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let mut builder = builder.port(port).timeout(Some(Duration::from_secs(
            def.timeout_secs.unwrap_or(30).max(1),
        )));
        match (&def.user, &def.password) {
            (Some(user), Some(r)) => {
                let password = crate::secrets::resolve(r)
                    .map_err(|e| anyhow::anyhow!("[notify.email] `password`: {e:#}"))?;
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_string(),
                ));
            }
            (None, None) => {}
            _ => anyhow::bail!("[notify.email] needs both `user` and `password`, or neither"),
        }
        let from: Mailbox = def.from.parse().map_err(|e| {
            anyhow::anyhow!(
                "[notify.email] `from` {:?} is not an address: {e}",
                def.from
            )
        })?;
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }

    /// Send `msg` to `to` (an email address).
    pub async fn send(&self, to: &str, msg: &Message) -> Result<(), SendError> {
        let rcpt: Mailbox = to
            .parse()
            .map_err(|e| SendError(format!("{to:?} is not an email address: {e}")))?;
        let mail = Mail::builder()
            .from(self.from.clone())
            .to(rcpt)
            .subject(msg.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(msg.text())
            .map_err(|e| SendError(format!("building the message: {e}")))?;
        self.transport
            .send(mail)
            .await
            .map(|_| ())
            .map_err(|e| SendError(format!("SMTP: {}", super::clip(&e.to_string(), 300))))
    }
}

/// Whether `s` reads as an email address (so email can reach it).
pub fn is_address(s: &str) -> bool {
    s.parse::<lettre::Address>().is_ok()
}
