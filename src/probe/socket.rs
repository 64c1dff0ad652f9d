//! `tcp://host:port` and `tls://host:port`: resolve, connect, for TLS
//! complete the handshake (the chain verified, or pinned by `ca_file`, as
//! for https; the expiry and the names the certificate covers recorded),
//! (after PostgreSQL's SSLRequest or SMTP's STARTTLS when the URL says
//! `?starttls=postgres` or `?starttls=smtp`), then optionally send the
//! site's `send` and read the answer until its
//! `regex` matches (at most `max_body_bytes`). All within the site's
//! timeout.
//!
//! Phases: `dns_ms` the lookup (null for an IP address), `connect_ms` the
//! TCP connect, `tls_ms` the handshake, `ttfb_ms` from ready to the first
//! byte answered (when something is read), `response_time_ms` the whole.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::timing::Recorder;
use super::{Outcome, Prober, millis};
use crate::message::ErrorKind;
use crate::sites::{Site, Starttls};

/// How far a socket check got.
#[derive(Debug, Default)]
struct Progress {
    dns_ms: Option<f64>,
    connect_ms: Option<f64>,
    tls_ms: Option<f64>,
    ttfb_ms: Option<f64>,
    ip: Option<std::net::IpAddr>,
    bytes: u64,
    matched: Option<bool>,
    /// The phase it is in, for a timeout's error.
    phase: &'static str,
}

/// Checks a `tcp://` or `tls://` site.
pub(super) async fn check(
    prober: &Prober,
    site: &Site,
    host: &str,
    port: u16,
    tls: Option<Option<Starttls>>,
) -> Outcome {
    let recorder = Recorder::new(prober.verifier_of(site));
    let start = Instant::now();
    let mut progress = Progress {
        phase: "resolving the host",
        ..Progress::default()
    };
    let result = tokio::time::timeout(
        site.timeout,
        recorder.scope(exchange(prober, site, host, port, tls, &mut progress)),
    )
    .await;
    let elapsed = start.elapsed();
    let marks = recorder.marks();
    let mut outcome = Outcome::new(elapsed);
    outcome.dns_ms = progress.dns_ms;
    outcome.connect_ms = progress.connect_ms;
    outcome.tls_ms = progress.tls_ms;
    outcome.ttfb_ms = progress.ttfb_ms;
    outcome.ip = progress.ip;
    outcome.regex_matched = progress.matched;
    outcome.body_bytes = (progress.bytes > 0 || site.regex.is_some()).then_some(progress.bytes);
    if tls.is_some() {
        outcome.tls_expires_at = marks.cert_expires_at;
        outcome.tls_names = marks.cert_names;
    }
    match result {
        Err(_) => {
            outcome.error_kind = Some(ErrorKind::Timeout);
            outcome.error = Some(format!(
                "timed out after {} {}",
                humantime::format_duration(site.timeout),
                progress.phase
            ));
        }
        Ok(Err((kind, why))) => {
            outcome.error_kind = Some(kind);
            outcome.error = Some(why);
        }
        Ok(Ok(())) => {
            if progress.matched == Some(false) {
                let re = site.regex.as_ref().map_or("", |r| r.as_str());
                outcome.condition = Some(format!(
                    "regex `{re}` not found in the answer ({} bytes read, the connection closed)",
                    progress.bytes
                ));
            }
        }
    }
    outcome
}

/// Connects (and shakes hands), sends, reads.
async fn exchange(
    prober: &Prober,
    site: &Site,
    host: &str,
    port: u16,
    tls: Option<Option<Starttls>>,
    progress: &mut Progress,
) -> Result<(), (ErrorKind, String)> {
    let addrs = resolve(host, port, progress).await?;
    progress.phase = "connecting";
    let begun = Instant::now();
    let mut last_error = None;
    let mut stream = None;
    for addr in &addrs {
        progress.ip = Some(addr.ip());
        match TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let Some(stream) = stream else {
        let e = last_error.map_or_else(|| "no address".to_owned(), |e| e.to_string());
        return Err((ErrorKind::Connect, super::one_line(&e)));
    };
    let _ = stream.set_nodelay(true);
    progress.connect_ms = Some(millis(begun.elapsed()));
    let Some(starttls) = tls else {
        return talk(site, stream, progress).await;
    };
    let mut stream = stream;
    if let Some(protocol) = starttls {
        progress.phase = "asking for TLS";
        ask_for_tls(&mut stream, protocol)
            .await
            .map_err(|why| (ErrorKind::Tls, super::one_line(&why)))?;
    }
    progress.phase = "during the TLS handshake";
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|_| {
        (
            ErrorKind::Tls,
            format!("`{host}` is not a name TLS can verify"),
        )
    })?;
    let begun = Instant::now();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&prober.socket_tls));
    let stream = connector.connect(name, stream).await.map_err(|e| {
        let why = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .and_then(super::tls::in_words)
            .unwrap_or_else(|| e.to_string());
        (ErrorKind::Tls, super::one_line(&why))
    })?;
    progress.tls_ms = Some(millis(begun.elapsed()));
    talk(site, stream, progress).await
}

/// The addresses of `host` (an IP address is its own), timed.
async fn resolve(
    host: &str,
    port: u16,
    progress: &mut Progress,
) -> Result<Vec<SocketAddr>, (ErrorKind, String)> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let begun = Instant::now();
    let found = tokio::net::lookup_host((host, port)).await;
    progress.dns_ms = Some(millis(begun.elapsed()));
    let addrs: Vec<SocketAddr> = found
        .map_err(|e| (ErrorKind::Dns, super::one_line(&e.to_string())))?
        .collect();
    if addrs.is_empty() {
        return Err((ErrorKind::Dns, format!("`{host}` has no address")));
    }
    Ok(addrs)
}

/// Sends the site's `send`, then with a `regex` reads until it matches, the
/// peer closes, or `max_body_bytes` are read.
async fn talk(
    site: &Site,
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    progress: &mut Progress,
) -> Result<(), (ErrorKind, String)> {
    let ready = Instant::now();
    if let Some(send) = &site.send {
        progress.phase = "sending";
        stream
            .write_all(send)
            .await
            .and(stream.flush().await)
            .map_err(|e| (ErrorKind::Connect, super::one_line(&e.to_string())))?;
    }
    let Some(re) = &site.regex else {
        return Ok(());
    };
    progress.phase = "waiting for an answer that matches the regex";
    let cap = usize::try_from(site.max_body_bytes).unwrap_or(usize::MAX);
    let mut answer = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| (ErrorKind::Body, super::one_line(&e.to_string())))?;
        if n == 0 {
            progress.matched = Some(re.is_match(&answer));
            return Ok(());
        }
        progress
            .ttfb_ms
            .get_or_insert_with(|| millis(ready.elapsed()));
        let room = cap.saturating_sub(answer.len());
        answer.extend_from_slice(&chunk[..n.min(room)]);
        progress.bytes = answer.len() as u64;
        if re.is_match(&answer) {
            progress.matched = Some(true);
            return Ok(());
        }
        if answer.len() >= cap {
            progress.matched = Some(false);
            return Ok(());
        }
    }
}

/// Asks the server for TLS in its protocol's words: PostgreSQL's
/// SSLRequest (answered `S`), or SMTP's greeting, `EHLO` and `STARTTLS`
/// (answered 220).
async fn ask_for_tls(stream: &mut TcpStream, protocol: Starttls) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match protocol {
        Starttls::Postgres => {
            // Length 8, then the SSLRequest code 80877103.
            stream
                .write_all(&[0, 0, 0, 8, 4, 210, 22, 47])
                .await
                .map_err(io)?;
            match stream.read_u8().await.map_err(io)? {
                b'S' => Ok(()),
                b'N' => Err("the PostgreSQL server does not offer TLS (ssl = off)".to_owned()),
                other => Err(format!(
                    "the server did not answer PostgreSQL's SSLRequest (byte {other:#04x})"
                )),
            }
        }
        Starttls::Smtp => {
            let mut reader = tokio::io::BufReader::new(stream);
            smtp_reply(&mut reader, "220", "greeting").await?;
            reader
                .get_mut()
                .write_all(b"EHLO sitewatch\r\n")
                .await
                .map_err(io)?;
            smtp_reply(&mut reader, "250", "EHLO").await?;
            reader
                .get_mut()
                .write_all(b"STARTTLS\r\n")
                .await
                .map_err(io)?;
            smtp_reply(&mut reader, "220", "STARTTLS").await?;
            if !reader.buffer().is_empty() {
                return Err("the SMTP server spoke before the TLS handshake".to_owned());
            }
            Ok(())
        }
    }
}

/// Reads one SMTP reply (its continuation lines too) and wants `code`.
async fn smtp_reply(
    reader: &mut tokio::io::BufReader<&mut TcpStream>,
    code: &str,
    after: &str,
) -> Result<(), String> {
    use tokio::io::AsyncBufReadExt;
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "the SMTP server closed the connection after {after}"
            ));
        }
        if !line.starts_with(code) {
            return Err(format!(
                "the SMTP server answered {after} with `{}`, not {code}",
                crate::escape::controls(line.trim_end())
            ));
        }
        // `250-...` continues, `250 ...` ends.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}
