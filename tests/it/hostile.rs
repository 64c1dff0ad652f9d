//! Hostile servers: every way a site can misbehave on the wire, each
//! checked by one `probe-once --dry-run` run. Whatever a server does, its
//! check ends within the site's timeout plus a second, with a well-formed
//! message that `drain` would store (it decodes as a check).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::certs::{self, Ca};
use crate::support::http::closed_port;
use crate::support::sitewatch;

/// Every site's timeout in this suite.
const TIMEOUT: Duration = Duration::from_secs(2);

async fn put<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) {
    let _ = s.write_all(bytes).await;
}

/// What a path does to the client, after reading its request head.
async fn behave<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, gzip: Arc<Vec<u8>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    match path.as_str() {
        "/ok" => {
            put(
                &mut s,
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            )
            .await;
        }
        "/slow-headers" => {
            put(&mut s, b"HTTP/1.1 200 OK\r\n").await;
            for _ in 0..100 {
                pause(300).await;
                if s.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    return;
                }
            }
        }
        "/slow-body" => {
            put(&mut s, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n").await;
            for _ in 0..100 {
                pause(300).await;
                if s.write_all(b"x").await.is_err() {
                    return;
                }
            }
        }
        "/close-delimited" => {
            // The body runs to the end of the connection, which ends with
            // no TLS close_notify (many servers do that).
            put(
                &mut s,
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello sitewatch",
            )
            .await;
            let _ = s.flush().await;
            return;
        }
        "/endless-body" => {
            put(&mut s, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").await;
            let block = vec![b'a'; 64 * 1024];
            while s.write_all(&block).await.is_ok() {}
        }
        "/endless-chunked" => {
            put(
                &mut s,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .await;
            let mut chunk = b"10000\r\n".to_vec();
            chunk.extend(vec![b'a'; 0x10000]);
            chunk.extend(b"\r\n");
            while s.write_all(&chunk).await.is_ok() {}
        }
        "/huge-length" => {
            put(
                &mut s,
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\nabc",
            )
            .await;
            pause(10_000).await;
        }
        "/gzip-bomb" => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                gzip.len()
            )
            .into_bytes();
            r.extend_from_slice(&gzip);
            put(&mut s, &r).await;
        }
        "/huge-headers" => {
            let mut r = b"HTTP/1.1 200 OK\r\nX-Huge: ".to_vec();
            r.extend(vec![b'h'; 1024 * 1024]);
            r.extend(b"\r\nContent-Length: 0\r\n\r\n");
            put(&mut s, &r).await;
        }
        "/many-headers" => {
            let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..10_000 {
                r.extend(format!("X-H{i}: v\r\n").into_bytes());
            }
            r.extend(b"Content-Length: 0\r\n\r\n");
            put(&mut s, &r).await;
        }
        "/close-at-once" => {}
        "/garbage" => put(&mut s, b"lorem ipsum dolor sit amet\r\n\r\n").await,
        "/http09" => put(&mut s, b"<html>hello from 1991</html>").await,
        "/endless-1xx" => {
            for _ in 0..1000 {
                if s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
                    return;
                }
                pause(20).await;
            }
        }
        "/204" => put(&mut s, b"HTTP/1.1 204 No Content\r\n\r\n").await,
        "/304" => put(&mut s, b"HTTP/1.1 304 Not Modified\r\n\r\n").await,
        "/599" => {
            put(
                &mut s,
                b"HTTP/1.1 599 Network Read Timeout\r\nContent-Length: 0\r\n\r\n",
            )
            .await;
        }
        "/799" => put(&mut s, b"HTTP/1.1 799 Odd\r\nContent-Length: 0\r\n\r\n").await,
        "/invalid-utf8" => {
            let mut body = vec![0xff, 0xfe, 0x00, 0xc3, 0x28, 0xa0, 0xa1];
            body.extend(b" needle \xe2\x82");
            let mut r =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            r.extend(body);
            put(&mut s, &r).await;
        }
        "/short-body" => {
            put(
                &mut s,
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789",
            )
            .await;
        }
        "/bad-chunk" => {
            put(
                &mut s,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            )
            .await;
        }
        "/nul-header" => {
            put(
                &mut s,
                b"HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\nContent-Length: 0\r\n\r\n",
            )
            .await;
        }
        "/negative-length" => {
            put(
                &mut s,
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello",
            )
            .await;
        }
        "/http2-garbage" => put(&mut s, b"HTTP/2.0 200 OK\r\n\r\n").await,
        "/long-reason" => {
            let mut r = b"HTTP/1.1 200 ".to_vec();
            r.extend(vec![b'r'; 200 * 1024]);
            r.extend(b"\r\nContent-Length: 0\r\n\r\n");
            put(&mut s, &r).await;
        }
        "/trailing-garbage" => {
            put(
                &mut s,
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello GARBAGE GARBAGE",
            )
            .await;
        }
        "/keep-alive-hang" => {
            put(&mut s, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").await;
            pause(10_000).await;
        }
        "/redirect-loop" => {
            put(
                &mut s,
                b"HTTP/1.1 301 Moved\r\nLocation: /redirect-loop\r\nContent-Length: 0\r\n\r\n",
            )
            .await;
        }
        "/control-reason" => {
            put(
                &mut s,
                b"HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok",
            )
            .await;
        }
        _ => {
            put(
                &mut s,
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            )
            .await
        }
    }
    let _ = s.flush().await;
    let _ = s.shutdown().await;
}

/// Serves [`behave`] on `listener`, plain or behind TLS.
fn serve(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, gzip: Arc<Vec<u8>>) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (tls, gzip) = (tls.clone(), Arc::clone(&gzip));
            tokio::spawn(async move {
                match tls {
                    None => reset_or_behave(stream, gzip).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            behave(stream, gzip).await;
                        }
                    }
                }
            });
        }
    });
}

/// `/reset-mid-body` needs the socket itself (SO_LINGER 0 sends a RST).
async fn reset_or_behave(mut stream: TcpStream, gzip: Arc<Vec<u8>>) {
    let mut peek = [0u8; 64];
    let n = stream.peek(&mut peek).await.unwrap_or(0);
    if peek[..n].first() == Some(&0x16) {
        // A TLS ClientHello to a plain HTTP server: it answers as nginx does.
        let _ = stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return;
    }
    if peek[..n].starts_with(b"GET /reset-mid-body ") {
        let mut head = vec![0u8; 4096];
        let _ = stream.read(&mut head).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = stream.set_zero_linger();
        drop(stream);
        return;
    }
    behave(stream, gzip).await;
}

async fn listen(addr: &str) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A gzip stream of 50 MB of zeros (about 50 KB): made by Python's gzip.
fn gzip_bomb() -> Vec<u8> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(bytes(50_000_000)))",
        ])
        .output()
        .expect("python3 runs");
    assert!(out.status.success());
    out.stdout
}

fn acceptor(config: rustls::ServerConfig) -> tokio_rustls::TlsAcceptor {
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// What a case's message must say.
enum Expect {
    Up,
    /// Down with this `error_kind` (any of them).
    Error(&'static [&'static str]),
    /// Down, the request completed with this status.
    Status(u16),
}

#[tokio::test(flavor = "multi_thread")]
async fn every_hostile_behaviour_ends_within_the_timeout_with_a_well_formed_result() {
    let dir = tempfile::tempdir().unwrap();
    let gzip = Arc::new(gzip_bomb());
    let (plain, plain_addr) = listen("127.0.0.1:0").await;
    serve(plain, None, Arc::clone(&gzip));
    let ca = Ca::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let tls_server = |config| async {
        let (listener, addr) = listen("127.0.0.1:0").await;
        serve(listener, Some(acceptor(config)), Arc::clone(&gzip));
        addr
    };
    let trusted = tls_server(ca.leaf(certs::VALID_UNTIL).server_config()).await;
    let self_signed = tls_server(certs::self_signed(certs::VALID_UNTIL).server_config()).await;
    let expired = tls_server(ca.leaf(certs::EXPIRED_AT).server_config()).await;
    let (wrong_cert, wrong_key) = ca.issue_pem(&["wrong.example"]);
    let wrong_host = tls_server(pem_config(&wrong_cert, &wrong_key)).await;
    let (stalled, stalled_addr) = listen("127.0.0.1:0").await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = stalled.accept().await {
            held.push(s);
        }
    });
    let (v6, v6_addr) = listen("[::1]:0").await;
    serve(v6, None, Arc::clone(&gzip));

    let http = |path: &str| format!("http://{plain_addr}{path}");
    let tls_ca = format!(r#","ca_file":"{}""#, ca_file.display());
    let tls_close = format!(r#"{tls_ca},"regex":"hello sitewatch$""#);
    let mut cases: Vec<(&str, String, &str, Expect)> = vec![
        (
            "slow-headers",
            http("/slow-headers"),
            "",
            Expect::Error(&["timeout"]),
        ),
        (
            "slow-body",
            http("/slow-body"),
            "",
            Expect::Error(&["timeout"]),
        ),
        ("endless-body", http("/endless-body"), "", Expect::Up),
        (
            "endless-body-regex",
            http("/endless-body"),
            r#","regex":"a{10}""#,
            Expect::Up,
        ),
        ("endless-chunked", http("/endless-chunked"), "", Expect::Up),
        (
            "huge-declared-length",
            http("/huge-length"),
            "",
            Expect::Error(&["timeout"]),
        ),
        ("gzip-bomb", http("/gzip-bomb"), "", Expect::Up),
        (
            "huge-headers",
            http("/huge-headers"),
            "",
            Expect::Error(&["http"]),
        ),
        (
            "many-headers",
            http("/many-headers"),
            "",
            Expect::Error(&["http"]),
        ),
        (
            "close-before-any-byte",
            http("/close-at-once"),
            "",
            Expect::Error(&["http"]),
        ),
        ("garbage", http("/garbage"), "", Expect::Error(&["http"])),
        ("http-0.9", http("/http09"), "", Expect::Error(&["http"])),
        (
            "endless-1xx",
            http("/endless-1xx"),
            "",
            Expect::Error(&["timeout", "http"]),
        ),
        ("204", http("/204"), "", Expect::Up),
        ("304", http("/304"), "", Expect::Up),
        ("unknown-status-599", http("/599"), "", Expect::Status(599)),
        ("unknown-status-799", http("/799"), "", Expect::Status(799)),
        (
            "invalid-utf8-body",
            http("/invalid-utf8"),
            r#","regex":"needle""#,
            Expect::Up,
        ),
        (
            "reset-mid-body",
            http("/reset-mid-body"),
            "",
            Expect::Error(&["body"]),
        ),
        (
            "close-mid-body",
            http("/short-body"),
            "",
            Expect::Error(&["body"]),
        ),
        (
            "bad-chunk-size",
            http("/bad-chunk"),
            "",
            Expect::Error(&["body"]),
        ),
        (
            "nul-in-a-header",
            http("/nul-header"),
            "",
            Expect::Error(&["http"]),
        ),
        (
            "negative-length",
            http("/negative-length"),
            "",
            Expect::Error(&["http"]),
        ),
        (
            "http-2-status-line",
            http("/http2-garbage"),
            "",
            Expect::Error(&["http"]),
        ),
        ("huge-reason-phrase", http("/long-reason"), "", Expect::Up),
        (
            "control-character-in-reason",
            http("/control-reason"),
            "",
            Expect::Error(&["http"]),
        ),
        (
            "trailing-garbage",
            http("/trailing-garbage"),
            "",
            Expect::Up,
        ),
        (
            "keep-alive-then-hang",
            http("/keep-alive-hang"),
            "",
            Expect::Up,
        ),
        (
            "redirect-loop",
            http("/redirect-loop"),
            "",
            Expect::Error(&["redirect"]),
        ),
        (
            "tls-trusted",
            format!("https://{trusted}/ok"),
            &tls_ca,
            Expect::Up,
        ),
        (
            "tls-close-without-close-notify",
            format!("https://{trusted}/close-delimited"),
            &tls_close,
            Expect::Up,
        ),
        (
            "close-delimited",
            http("/close-delimited"),
            r#","regex":"hello sitewatch$""#,
            Expect::Up,
        ),
        (
            "tls-self-signed",
            format!("https://{self_signed}/ok"),
            "",
            Expect::Error(&["tls"]),
        ),
        (
            "tls-expired",
            format!("https://{expired}/ok"),
            &tls_ca,
            Expect::Error(&["tls"]),
        ),
        (
            "tls-wrong-host",
            format!("https://{wrong_host}/ok"),
            &tls_ca,
            Expect::Error(&["tls"]),
        ),
        (
            "tls-stalled-handshake",
            format!("https://{stalled_addr}/ok"),
            "",
            Expect::Error(&["timeout"]),
        ),
        (
            "plain-http-on-a-tls-port",
            format!("https://{plain_addr}/ok"),
            "",
            Expect::Error(&["tls"]),
        ),
        (
            "connection-refused",
            format!("http://127.0.0.1:{}/", closed_port().await),
            "",
            Expect::Error(&["connect"]),
        ),
        (
            "ipv6-loopback",
            format!("http://{v6_addr}/ok"),
            "",
            Expect::Up,
        ),
        (
            "nxdomain",
            "http://sitewatch-nxdomain.invalid/".to_owned(),
            "",
            Expect::Error(&["dns", "timeout"]),
        ),
    ];
    let sites: Vec<String> = cases
        .iter()
        .map(|(name, url, extra, _)| {
            format!(
                r#"{{"name":"{name}","url":"{url}","timeout":"{}s"{extra}}}"#,
                TIMEOUT.as_secs()
            )
        })
        .collect();
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run"],
        &[
            ("SITEWATCH_SITES", format!("[{}]", sites.join(","))),
            ("SITEWATCH_LOCATION", "hostile".to_owned()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.elapsed < TIMEOUT + Duration::from_secs(2),
        "the run took {:?}",
        run.elapsed
    );
    let mut by_site: HashMap<String, (Value, Vec<u8>)> = run
        .stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["site"].as_str().unwrap().to_owned(),
                (v, l.as_bytes().to_vec()),
            )
        })
        .collect();
    assert!(cases.len() >= 30, "only {} behaviours", cases.len());
    let mut failures = Vec::new();
    for (name, _, _, expect) in cases.drain(..) {
        let Some((v, raw)) = by_site.remove(name) else {
            failures.push(format!("{name}: no result"));
            continue;
        };
        // Well-formed: it decodes as drain decodes it.
        if let Err(e) = sitewatch::drain::decode::decode(
            Some(&raw),
            &sitewatch::drain::decode::Window::new(
                time::OffsetDateTime::now_utc(),
                sitewatch::drain::decode::DEFAULT_MAX_AGE,
            ),
        ) {
            failures.push(format!("{name}: drain would refuse it: {e}"));
        }
        let took = v["response_time_ms"].as_f64().unwrap();
        if took > (TIMEOUT + Duration::from_secs(1)).as_millis() as f64 {
            failures.push(format!("{name}: took {took} ms"));
        }
        let ok = match expect {
            Expect::Up => v["up"] == true && v["error_kind"].is_null(),
            Expect::Error(kinds) => {
                v["up"] == false
                    && kinds.contains(&v["error_kind"].as_str().unwrap_or("null"))
                    && v["error"].is_string()
            }
            Expect::Status(code) => {
                v["status_code"] == code && v["error_kind"].is_null() && (v["up"] == (code < 400))
            }
        };
        if !ok {
            failures.push(format!("{name}: unexpected {v}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn pem_config(cert: &str, key: &str) -> rustls::ServerConfig {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}
