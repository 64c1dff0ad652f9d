//! Benchmark targets: N distinct sites on loopback, each its own
//! address:port, each answering after a delay, some over https, some with
//! a body of a few tens of KB for a regex. Used by `bench/probe`; not a test.
//!
//! ```sh
//! cargo run --release --example bench_targets -- DIR SITES [DELAY_MS [FIRST]]
//! ```
//!
//! Serves sites FIRST to FIRST+SITES-1 (so that several processes can share
//! more sites than one process may have open files); writes
//! `DIR/targets-FIRST.json` (one `{url, https, regex}` per site) and
//! `DIR/ca-FIRST.pem` (the CA of its https sites), prints `ready` and serves
//! until killed. Site i listens on 127.1.X.Y:PORT: 50 ports per address, so that
//! no two sites share a connection. Every 10th address is https, with its
//! own certificate for its IP; every 4th site serves `/page` (32 KiB, the
//! regex's match at the end) instead of `/` (a few hundred bytes).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const PORTS_PER_ADDRESS: usize = 50;
const FIRST_PORT: u16 = 21000;
/// Every this many addresses is https (`BENCH_TARGETS_HTTPS_EVERY`
/// overrides it: 1 makes every site https, as `bench/kinds` wants).
const HTTPS_EVERY_ADDRESS: usize = 10;
const REGEX_EVERY_SITE: usize = 4;
/// The regex that the `/page` sites carry; it matches only at the page's end.
pub const REGEX: &str = r"(?i)order\s+confirmed\s+#\d{6}";

fn address(index: usize) -> Ipv4Addr {
    let a = index / PORTS_PER_ADDRESS;
    // 127.1.0.1, 127.1.0.2, ... 127.1.0.250, 127.1.1.1, ...
    Ipv4Addr::new(127, 1, (a / 250) as u8, (a % 250 + 1) as u8)
}

fn small_body() -> Vec<u8> {
    b"<!doctype html><html><head><title>ok</title></head><body><h1>It works</h1><p>Served by the sitewatch benchmark targets.</p></body></html>\n".to_vec()
}

fn page_body() -> Vec<u8> {
    let mut body = b"<!doctype html><html><head><title>order</title></head><body>\n".to_vec();
    let line = b"<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.</p>\n";
    while body.len() < 32 * 1024 {
        body.extend_from_slice(line);
    }
    body.extend_from_slice(b"<p>Order confirmed #123456</p></body></html>\n");
    body
}

fn response(body: &[u8]) -> Arc<Vec<u8>> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    Arc::new(r)
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    small: &[u8],
    page: &[u8],
    delay: Duration,
) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || request.len() > 16 * 1024 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    tokio::time::sleep(delay).await;
    let body = if request.starts_with(b"GET /page") {
        page
    } else {
        small
    };
    stream.write_all(body).await?;
    stream.shutdown().await
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, count) = match (args.get(1), args.get(2)) {
        (Some(d), Some(n)) => (std::path::PathBuf::from(d), n.parse::<usize>()?),
        _ => anyhow::bail!("usage: bench_targets DIR SITES [DELAY_MS [FIRST]]"),
    };
    let delay = Duration::from_millis(args.get(3).map_or(Ok(100), |d| d.parse())?);
    let first: usize = args.get(4).map_or(Ok(0), |f| f.parse())?;
    if !first.is_multiple_of(PORTS_PER_ADDRESS) {
        anyhow::bail!("FIRST must be a multiple of {PORTS_PER_ADDRESS}");
    }
    let sites = first..first + count;
    // One listener per site, plus the connections in flight.
    let needed = count as u64 + 4_000;
    if rlimit::increase_nofile_limit(needed)? < needed {
        // Raising the hard limit takes root (CAP_SYS_RESOURCE).
        rlimit::setrlimit(rlimit::Resource::NOFILE, needed, needed).map_err(|e| {
            anyhow::anyhow!(
                "{count} sites need {needed} open files, above this shell's hard limit \
                 (ulimit -Hn): run as root or raise it ({e})"
            )
        })?;
    }
    std::fs::create_dir_all(&dir)?;

    // The CA, and one certificate per https address.
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sitewatch benchmark CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    std::fs::write(dir.join(format!("ca-{first}.pem")), ca.pem())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let https_every: usize = std::env::var("BENCH_TARGETS_HTTPS_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(HTTPS_EVERY_ADDRESS);
    let mut acceptors = std::collections::HashMap::new();
    for a in first / PORTS_PER_ADDRESS..sites.end.div_ceil(PORTS_PER_ADDRESS) {
        if a % https_every != https_every - 1 {
            continue;
        }
        let ip = address(a * PORTS_PER_ADDRESS);
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(ip)));
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )?;
        acceptors.insert(a, TlsAcceptor::from(Arc::new(config)));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let small = response(&small_body());
        let page = response(&page_body());
        let mut targets = Vec::with_capacity(count);
        for i in sites {
            let ip = address(i);
            let port = FIRST_PORT + (i % PORTS_PER_ADDRESS) as u16;
            let tls = acceptors.get(&(i / PORTS_PER_ADDRESS)).cloned();
            let regex = i % REGEX_EVERY_SITE == REGEX_EVERY_SITE - 1;
            let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(ip), port)).await?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            let path = if regex { "page" } else { "" };
            targets.push(serde_json::json!({
                "url": format!("{scheme}://{ip}:{port}/{path}"),
                "https": tls.is_some(),
                "regex": regex.then_some(REGEX),
            }));
            let (small, page) = (Arc::clone(&small), Arc::clone(&page));
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let (tls, small, page) = (tls.clone(), Arc::clone(&small), Arc::clone(&page));
                    tokio::spawn(async move {
                        let _ = match tls {
                            Some(tls) => match tls.accept(stream).await {
                                Ok(s) => serve(s, &small, &page, delay).await,
                                Err(_) => Ok(()),
                            },
                            None => serve(stream, &small, &page, delay).await,
                        };
                    });
                }
            });
        }
        std::fs::write(
            dir.join(format!("targets-{first}.json")),
            serde_json::to_vec_pretty(&targets)?,
        )?;
        println!("ready");
        std::future::pending::<()>().await;
        anyhow::Ok(())
    })
}
