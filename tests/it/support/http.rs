//! A real HTTP/1.1 server on 127.0.0.1 with one behaviour per path, plain
//! or behind TLS, counting the requests it gets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// The body of `/ok`.
pub const OK_BODY: &str = "<html><body>hello sitewatch</body></html>";
/// What `/health` answers: a JSON health endpoint.
pub const HEALTH_BODY: &str = r#"{"status":"UP","checks":{"db":"ok"},"replicas":[{"lag_ms":3}]}"#;

/// `/auth` answers 200 only to Basic auth `user:s3cret` (base64), else 401.
pub const AUTH_BASIC: &str = "dXNlcjpzM2NyZXQ=";

/// Requests seen per `/flaky/KEY/N` key.
static FLAKY: std::sync::Mutex<std::collections::BTreeMap<String, u32>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Size of `/big`: more than the default body cap.
pub const BIG_BYTES: usize = 4 * 1024 * 1024;

pub struct Server {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    tls: bool,
}

impl Server {
    /// A plain HTTP server.
    pub async fn start() -> Server {
        Self::serve(None).await
    }

    /// An HTTPS server presenting `config`'s certificate.
    pub async fn start_tls(config: rustls::ServerConfig) -> Server {
        Self::serve(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let server = Server {
            addr,
            hits: Arc::clone(&hits),
            tls: tls.is_some(),
        };
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (hits, tls) = (Arc::clone(&hits), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => handle(stream, hits).await,
                        Some(acceptor) => {
                            // A client that rejects the certificate ends here.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                handle(stream, hits).await;
                            }
                        }
                    }
                });
            }
        });
        server
    }

    /// `http://127.0.0.1:PORT/path` (https for a TLS server).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, hits: Arc<AtomicUsize>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    // The request's body, when it says how long it is (for `/echo`).
    let head_end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
    let mut request_body = head[head_end..].to_vec();
    let head = String::from_utf8_lossy(&head[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while request_body.len() < length.min(1024 * 1024) {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => request_body.extend_from_slice(&buf[..n]),
        }
    }
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let reply = |status: &str, extra: &str, body: &str| {
        let shown = if method == "HEAD" { "" } else { body };
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/html\r\nConnection: close\r\n{extra}\r\n{shown}",
            body.len()
        )
    };
    let authorized = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case(&format!("authorization: Basic {AUTH_BASIC}")));
    let response = match path.as_str() {
        "/ok" => reply("200 OK", "", OK_BODY),
        // `/echo`: the request's body back, as JSON with its method and
        // content type, and a header to assert.
        "/echo" => {
            let content_type = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-type")
                        .then(|| v.trim().to_owned())
                })
                .unwrap_or_default();
            let body = serde_json::json!({
                "method": method,
                "content_type": content_type,
                "body": String::from_utf8_lossy(&request_body),
                "items": [1, 2, 3],
                "status": "UP",
            })
            .to_string();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/json\r\nX-Served-By: echo-1\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        // `/auth`, with or without a query.
        p if (p == "/auth" || p.starts_with("/auth?")) && authorized => {
            reply("200 OK", "", "authorized")
        }
        p if p == "/auth" || p.starts_with("/auth?") => reply(
            "401 Unauthorized",
            "WWW-Authenticate: Basic realm=\"t\"\r\n",
            "who?",
        ),
        "/notfound" => reply("404 Not Found", "", "no such page"),
        "/health" => reply("200 OK", "", HEALTH_BODY),
        "/error" => reply("500 Internal Server Error", "", "boom"),
        "/redirect" => reply("301 Moved Permanently", "Location: /ok\r\n", ""),
        "/redirect-loop" => reply("302 Found", "Location: /redirect-loop-b\r\n", ""),
        "/redirect-loop-b" => reply("302 Found", "Location: /redirect-loop\r\n", ""),
        // `/redirect-to?URL`: a 302 to URL as written.
        p if p.starts_with("/redirect-to?") => {
            let to = &p["/redirect-to?".len()..];
            reply("302 Found", &format!("Location: {to}\r\n"), "")
        }
        // `/hops/N`: N redirects before `/ok`'s answer.
        p if p.starts_with("/hops/") => match p["/hops/".len()..].parse::<u32>() {
            Ok(0) => reply("200 OK", "", OK_BODY),
            Ok(n) => reply(
                "307 Temporary Redirect",
                &format!("Location: /hops/{}\r\n", n - 1),
                "",
            ),
            Err(_) => reply("400 Bad Request", "", "hops?"),
        },
        // `/slow-hops`: a redirect every 300 ms to a URL never seen before.
        p if p.starts_with("/slow-hops") => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            reply("302 Found", &format!("Location: {p}x\r\n"), "")
        }
        // `/flaky/KEY/N`: 503 to the first N requests of KEY, then `/ok`'s
        // answer (a site that fails a moment).
        p if p.starts_with("/flaky/") => {
            let rest = &p["/flaky/".len()..];
            let (key, n) = rest.rsplit_once('/').unwrap_or((rest, "1"));
            let n: u32 = n.parse().unwrap_or(1);
            let seen = {
                let mut counts = FLAKY.lock().unwrap();
                let c = counts.entry(key.to_owned()).or_insert(0);
                *c += 1;
                *c
            };
            if seen <= n {
                reply("503 Service Unavailable", "", "not yet")
            } else {
                reply("200 OK", "", OK_BODY)
            }
        }
        // `/sleep/MS`: `/ok`'s answer after MS milliseconds (a site that
        // slows down).
        p if p.starts_with("/sleep/") => match p["/sleep/".len()..].parse::<u64>() {
            Ok(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                reply("200 OK", "", OK_BODY)
            }
            Err(_) => reply("400 Bad Request", "", "sleep?"),
        },
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            reply("200 OK", "", OK_BODY)
        }
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        "/drip" => {
            // Headers at once, then one body byte every 100 ms, for ever.
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if stream.write_all(b"x").await.is_err() {
                    return;
                }
            }
        }
        "/huge-page" => {
            // 1.5 MiB, a needle at 900 KiB: within the default body cap.
            let mut body = "a".repeat(900 * 1024);
            body.push_str(" needle word ");
            body.push_str(&"b".repeat(1536 * 1024 - body.len()));
            reply("200 OK", "", &body)
        }
        "/big" => {
            let mut body = "a".repeat(BIG_BYTES - 6);
            body.push_str("needle");
            reply("200 OK", "", &body)
        }
        _ => reply("404 Not Found", "", "unknown test path"),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A port on 127.0.0.1 with nothing listening.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
