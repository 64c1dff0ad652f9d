//! Phase timings out of one shared reqwest client: a task-local
//! [`Recorder`] per check, filled by hooks that reqwest and rustls call
//! while the check's own future is polled.
//!
//! | mark            | set by                                      |
//! |-----------------|---------------------------------------------|
//! | `dns_start/end` | [`TimingResolver`] around the name lookup    |
//! | `tls_start`     | the rustls session store, asked for a ticket when the ClientHello is built, right after the TCP connect |
//! | `connected`     | [`TimingLayer`] when the connector returns (TCP, and TLS for https) |
//! | response        | the check itself, when `send()` returns the headers |
//!
//! Each hook reads the recorder of the check being polled, so one client
//! serves any number of concurrent checks without mixing their timings.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use time::OffsetDateTime;

tokio::task_local! {
    static CURRENT: Arc<Recorder>;
}

/// What happened when, during one check.
#[derive(Debug, Default, Clone)]
pub struct Marks {
    pub dns_start: Option<Instant>,
    pub dns_end: Option<Instant>,
    /// The lookup failed (it still has an end, for `dns_ms`).
    pub dns_failed: bool,
    /// First address the lookup returned.
    pub resolved: Option<IpAddr>,
    pub tls_start: Option<Instant>,
    pub connected: Option<Instant>,
    /// `notAfter` of the certificate the server presented, verified or not;
    /// over redirects, the earliest of them.
    pub cert_expires_at: Option<OffsetDateTime>,
    /// The names that certificate covers (its DNS and IP subject
    /// alternative names), for `tls://` checks.
    pub cert_names: Option<Vec<String>>,
}

impl Marks {
    /// The marks of a new request after a redirect: the phases describe
    /// the last request, the certificate expiry every one.
    fn next_hop(&mut self) {
        *self = Marks {
            cert_expires_at: self.cert_expires_at,
            ..Marks::default()
        };
    }
}

/// The per-check state the hooks write to.
#[derive(Debug)]
pub struct Recorder {
    marks: Mutex<Marks>,
    /// The verifier for this check's site when it names a `ca_file`.
    pub(crate) verifier: Option<Arc<super::tls::SiteVerifier>>,
}

impl Recorder {
    pub(crate) fn new(verifier: Option<Arc<super::tls::SiteVerifier>>) -> Arc<Self> {
        Arc::new(Recorder {
            marks: Mutex::new(Marks::default()),
            verifier,
        })
    }

    /// Runs `fut` with this recorder as the current one.
    pub(crate) async fn scope<F: Future>(self: &Arc<Self>, fut: F) -> F::Output {
        CURRENT.scope(Arc::clone(self), fut).await
    }

    /// A copy of the marks so far.
    pub fn marks(&self) -> Marks {
        self.lock().clone()
    }

    /// Starts the marks of the next request of a redirect chain.
    pub(crate) fn next_hop(&self) {
        self.lock().next_hop();
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Marks)) {
        f(&mut self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Marks> {
        // A panic while holding this lock cannot leave the marks inconsistent.
        self.marks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The recorder of the check being polled, if any.
pub(crate) fn current() -> Option<Arc<Recorder>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Records `f` on the current check's marks, if there is a current check.
pub(crate) fn record(f: impl FnOnce(&mut Marks)) {
    if let Some(r) = current() {
        r.update(f);
    }
}

/// The system resolver (`getaddrinfo`, so `/etc/hosts` and nsswitch
/// apply), timed. Not called for IP-literal hosts.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimingResolver;

impl Resolve for TimingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let recorder = current();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let mark = |f: &dyn Fn(&mut Marks)| {
                if let Some(r) = &recorder {
                    r.update(f);
                }
            };
            mark(&|m| m.dns_start = Some(Instant::now()));
            let result: Result<Vec<SocketAddr>, String> =
                tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map(Iterator::collect)
                    .map_err(|e| e.to_string());
            let result = result.and_then(|addrs| {
                if addrs.is_empty() {
                    Err("no addresses".to_owned())
                } else {
                    Ok(addrs)
                }
            });
            let first = result
                .as_ref()
                .ok()
                .and_then(|a| a.first())
                .map(SocketAddr::ip);
            let failed = result.is_err();
            mark(&|m| {
                m.dns_end = Some(Instant::now());
                m.dns_failed = failed;
                m.resolved = first;
            });
            match result {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(e) => Err(Box::new(DnsError(host.clone(), e)) as _),
            }
        })
    }
}

/// A failed name lookup.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {0}: {1}")]
pub struct DnsError(String, String);

/// Wraps reqwest's connector to mark when a connection is ready.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimingLayer;

impl<S> tower::Layer<S> for TimingLayer {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed(inner)
    }
}

/// The connector service wrapped by [`TimingLayer`].
#[derive(Debug, Clone)]
pub struct Timed<S>(S);

impl<S, R> tower::Service<R> for Timed<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let recorder = current();
        let connecting = self.0.call(req);
        Box::pin(async move {
            let result = connecting.await;
            if let (Ok(_), Some(r)) = (&result, &recorder) {
                r.update(|m| m.connected = Some(Instant::now()));
            }
            result
        })
    }
}
