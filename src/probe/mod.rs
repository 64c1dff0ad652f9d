//! The checker: one site in, one [`Check`] out (a down site is data, never
//! an `Err`), and many sites run with bounded concurrency on one shared
//! client that never reuses a connection.
//!
//! Which phases are exact (see [`timing`] for the hooks):
//! - `dns_ms`: exact, the `getaddrinfo` call alone; null for IP-literal hosts.
//! - `connect_ms`: from the end of DNS to the TCP connection being up: for
//!   https, until rustls builds the ClientHello (microseconds after the
//!   connect); for http, until the connector hands over the socket.
//! - `tls_ms`: exact, ClientHello built to handshake finished; null for http.
//! - `ttfb_ms`: from the connection being ready to the response headers
//!   being parsed: includes writing the request, as curl's
//!   `time_starttransfer` minus `time_appconnect` does.
//! - `response_time_ms`: exact, the check's start to its last body byte.
//!
//! Redirects (up to the site's `max_redirects`) are followed within the
//! check's one timeout, each on a new connection. `status_code`, `ip` and
//! the phases above (all but `response_time_ms`, which spans the chain)
//! describe the last request, whose URL is `final_url`;
//! `tls_expires_at` is the earliest expiry of every certificate met on
//! the way.

mod dns;
mod icmp;
mod socket;
pub mod timing;
mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::message::{Check, ErrorKind, SCHEMA};
use crate::sites::{Site, Target, redact_url};
use timing::{Marks, Recorder, TimingLayer, TimingResolver};

/// Body bytes that the checks in flight may hold at once, for the regexes
/// that cannot be matched as the body streams in ([`crate::matcher`]):
/// only such a pattern buffers, and a check that finds the budget spent
/// waits for room within its own timeout (docs/src/decisions.md, Checks).
pub const BODY_BUDGET_BYTES: usize = 96 * 1024 * 1024;

/// Runs checks. Cheap to share: one client, one TLS configuration.
pub struct Prober {
    client: reqwest::Client,
    /// Bytes of body that all checks together may hold for their regexes.
    body_budget: Arc<Semaphore>,
    /// Verifiers of the sites that name a `ca_file`, by file.
    verifiers: HashMap<PathBuf, Arc<tls::SiteVerifier>>,
    /// The TLS of `tls://` checks: the client's (the same verifier).
    socket_tls: Arc<rustls::ClientConfig>,
    location: String,
}

/// What a check that is not HTTP measured (`tcp`, `tls`, `dns`, `icmp`);
/// [`Prober::finish`] makes it a [`Check`].
#[derive(Debug, Default)]
struct Outcome {
    response_time_ms: f64,
    dns_ms: Option<f64>,
    connect_ms: Option<f64>,
    tls_ms: Option<f64>,
    ttfb_ms: Option<f64>,
    ip: Option<IpAddr>,
    regex_matched: Option<bool>,
    body_bytes: Option<u64>,
    tls_expires_at: Option<OffsetDateTime>,
    tls_names: Option<Vec<String>>,
    dns_rcode: Option<String>,
    dns_answers: Option<Vec<String>>,
    packet_loss: Option<f64>,
    /// Why it did not complete.
    error_kind: Option<ErrorKind>,
    error: Option<String>,
    /// The condition a completed check failed.
    condition: Option<String>,
}

impl Outcome {
    fn new(elapsed: Duration) -> Outcome {
        Outcome {
            response_time_ms: millis(elapsed),
            ..Outcome::default()
        }
    }
}

/// How far a check got; kept outside the check's future so that a timeout,
/// which drops the future, still sees it.
#[derive(Debug, Default)]
struct Progress {
    status: Option<reqwest::StatusCode>,
    remote: Option<SocketAddr>,
    headers_at: Option<Instant>,
    body_bytes: u64,
    regex_matched: Option<bool>,
    json_matched: Option<bool>,
    /// The first JSON condition the body failed, for a person.
    json_failure: Option<String>,
    /// When the last request of the chain started.
    hop_start: Option<Instant>,
    redirects: u32,
    /// The last request's URL, when redirects led away from the site's.
    final_url: Option<url::Url>,
    /// The response's headers and body, kept for the site's `conditions`.
    headers: Option<reqwest::header::HeaderMap>,
    body: Option<Vec<u8>>,
}

/// Where a completed request went wrong.
enum Failure {
    Request(reqwest::Error),
    Body(reqwest::Error),
    Redirect(String),
}

impl Prober {
    /// Builds the shared client for these sites; `location` labels every check.
    pub fn new(sites: &[Site], location: &str) -> anyhow::Result<Prober> {
        let provider = tls::provider();
        let roots = if sites
            .iter()
            .any(|s| s.url.scheme() == "https" || matches!(s.target, Target::Tls { .. }))
        {
            tls::system_roots()
        } else {
            // No https site: skip reading the system store (a cold-start cost).
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            roots
        };
        let mut verifiers = HashMap::new();
        for site in sites {
            if let Some(path) = &site.ca_file
                && !verifiers.contains_key(path)
            {
                let verifier =
                    tls::SiteVerifier::new(&roots, &site.ca_certs, &provider).map_err(|e| {
                        anyhow::anyhow!("site `{}`: ca_file {}: {e:#}", site.name, path.display())
                    })?;
                verifiers.insert(path.clone(), Arc::new(verifier));
            }
        }
        let default = tls::verifier(&roots, &[], &provider)?;
        let socket_tls = Arc::new(tls::client_config(default.clone(), provider.clone())?);
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls::client_config(default, provider)?)
            .dns_resolver(Arc::new(TimingResolver))
            .connector_layer(TimingLayer)
            // Every check opens its own connection: a reused one would hide
            // DNS, connect and TLS, and a check must measure them.
            .pool_max_idle_per_host(0)
            // A check measures the site, not a proxy that the environment
            // names (HTTP_PROXY and friends): reqwest would honour them.
            .no_proxy()
            // 3xx is a result: what counts as up is `expect_status`.
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .tcp_nodelay(true)
            .user_agent(concat!("sitewatch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Prober {
            client,
            body_budget: Arc::new(Semaphore::new(BODY_BUDGET_BYTES)),
            verifiers,
            socket_tls,
            location: location.to_owned(),
        })
    }

    /// Checks one site, and a failure again up to its `retries` times
    /// (after `retry_delay` each) before it counts: the result is the last
    /// attempt's, with the attempts made. `None` when `stop` comes during
    /// the first attempt (a partial result); when it comes during a retry,
    /// the failure already confirmed once is the result.
    pub async fn check_confirmed(&self, site: &Site, stop: &CancellationToken) -> Option<Check> {
        let mut check = tokio::select! {
            check = self.check(site) => check,
            () = stop.cancelled() => return None,
        };
        let mut attempts = 1;
        while !check.up && attempts <= site.retries {
            let again = async {
                tokio::time::sleep(site.retry_delay).await;
                self.check(site).await
            };
            tokio::select! {
                next = again => check = next,
                () = stop.cancelled() => break,
            }
            attempts += 1;
        }
        check.attempts = Some(attempts);
        Some(check)
    }

    /// The verifier of a site that names a `ca_file`.
    fn verifier_of(&self, site: &Site) -> Option<Arc<tls::SiteVerifier>> {
        site.ca_file
            .as_ref()
            .and_then(|p| self.verifiers.get(p).cloned())
    }

    /// Checks one site, by its URL's scheme. Never takes longer than its
    /// timeout plus the time to assemble the result.
    pub async fn check(&self, site: &Site) -> Check {
        let mut check = self.check_kind(site).await;
        if !site.secrets.is_empty() {
            // An error may quote the URL as requested: its secrets go.
            for text in [&mut check.error, &mut check.condition, &mut check.final_url]
                .into_iter()
                .flatten()
            {
                *text = crate::secret::scrub(text, &site.secrets);
            }
        }
        check
    }

    async fn check_kind(&self, site: &Site) -> Check {
        let started_at = OffsetDateTime::now_utc();
        let outcome = match &site.target {
            Target::Http => return self.check_http(site).await,
            Target::Tcp { host, port } => socket::check(self, site, host, *port, None).await,
            Target::Tls {
                host,
                port,
                starttls,
            } => socket::check(self, site, host, *port, Some(*starttls)).await,
            Target::Dns {
                name,
                record,
                server,
            } => dns::check(site, name, *record, server.as_deref()).await,
            Target::Icmp { host } => icmp::check(site, host).await,
        };
        self.finish(site, started_at, outcome)
    }

    /// The message of a check that is not HTTP.
    fn finish(&self, site: &Site, started_at: OffsetDateTime, mut o: Outcome) -> Check {
        let conditions = evaluate(
            site,
            &crate::expression::Facts {
                status: None,
                response_time_ms: o.response_time_ms,
                body: None,
                headers: None,
                cert_days_left: days_left(o.tls_expires_at, started_at),
                ip: o.ip,
                dns_rcode: o.dns_rcode.as_deref(),
                dns_answers: o.dns_answers.as_deref(),
            },
        );
        if o.error_kind.is_none() && o.condition.is_none() {
            o.condition = conditions
                .as_ref()
                .and_then(|c| c.iter().find(|c| !c.passed))
                .map(crate::expression::Outcome::reason);
        }
        let up = o.error_kind.is_none() && o.condition.is_none();
        let elapsed = Duration::from_secs_f64(o.response_time_ms / 1000.0);
        let degraded = site.degraded_after.map(|limit| up && elapsed > limit);
        let condition = match (degraded, site.degraded_after) {
            (Some(true), Some(limit)) => Some(slow_condition(o.response_time_ms, limit)),
            _ => o.condition,
        };
        let error = if up {
            None
        } else {
            o.error.or_else(|| condition.clone())
        };
        Check {
            schema: SCHEMA,
            check_id: Uuid::now_v7(),
            site: site.name.clone(),
            url: site.published.clone(),
            method: site.target.method(&site.method),
            location: self.location.clone(),
            started_at,
            up,
            degraded,
            status_code: None,
            reason: None,
            response_time_ms: o.response_time_ms,
            dns_ms: o.dns_ms,
            connect_ms: o.connect_ms,
            tls_ms: o.tls_ms,
            ttfb_ms: o.ttfb_ms,
            ip: o.ip,
            regex: site.regex.as_ref().map(|r| r.as_str().to_owned()),
            regex_matched: o.regex_matched,
            json_matched: None,
            body_bytes: o.body_bytes,
            redirects: None,
            final_url: None,
            tls_expires_at: o.tls_expires_at,
            error_kind: o.error_kind,
            error,
            condition,
            run_id: None,
            attempts: Some(1),
            dns_rcode: o.dns_rcode,
            dns_answers: o.dns_answers,
            packet_loss: o.packet_loss,
            tls_names: o.tls_names,
            conditions,
        }
    }

    /// Checks an http(s) site.
    async fn check_http(&self, site: &Site) -> Check {
        let recorder = Recorder::new(self.verifier_of(site));
        let started_at = OffsetDateTime::now_utc();
        let start = Instant::now();
        let mut progress = Progress::default();
        let outcome = tokio::time::timeout(
            site.timeout,
            recorder.scope(self.exchange(site, &recorder, &mut progress)),
        )
        .await;
        let end = Instant::now();
        let marks = recorder.marks();
        let last_url = progress.final_url.as_ref().unwrap_or(&site.url);
        let https = last_url.scheme() == "https";
        let (error_kind, error) = failure(outcome, site, &marks, &progress, https);
        let ms = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
            (Some(a), Some(b)) if b >= a => Some(millis(b - a)),
            _ => None,
        };
        let tcp_from = marks.dns_end.or(progress.hop_start).or(Some(start));
        let tcp_up = if https {
            marks.tls_start
        } else {
            marks.connected
        };
        let conditions = evaluate(
            site,
            &crate::expression::Facts {
                status: progress.status.map(|s| s.as_u16()),
                response_time_ms: millis(end - start),
                body: progress.body.as_deref(),
                headers: progress.headers.as_ref(),
                cert_days_left: days_left(marks.cert_expires_at, started_at),
                ip: progress.remote.map(|a| a.ip()),
                dns_rcode: None,
                dns_answers: None,
            },
        );
        let failed_expression = conditions
            .as_ref()
            .and_then(|c| c.iter().find(|o| !o.passed))
            .map(crate::expression::Outcome::reason);
        let up = error_kind.is_none()
            && progress
                .status
                .is_some_and(|s| site.expect_status.contains(s.as_u16()))
            && progress.regex_matched != Some(false)
            && progress.json_matched != Some(false)
            && failed_expression.is_none();
        let elapsed = end - start;
        let degraded = site.degraded_after.map(|limit| up && elapsed > limit);
        let condition = if error_kind.is_some() {
            None
        } else {
            failed_condition(site, &progress, degraded == Some(true), elapsed).or(failed_expression)
        };
        let error = if up {
            error
        } else {
            error.or_else(|| condition.clone())
        };
        let literal_ip = match last_url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        Check {
            schema: SCHEMA,
            check_id: Uuid::now_v7(),
            site: site.name.clone(),
            url: site.published.clone(),
            method: site.method.to_string(),
            location: self.location.clone(),
            started_at,
            up,
            degraded,
            status_code: progress.status.map(|s| s.as_u16()),
            reason: progress
                .status
                .and_then(|s| s.canonical_reason())
                .map(str::to_owned),
            response_time_ms: millis(end - start),
            dns_ms: ms(marks.dns_start, marks.dns_end),
            connect_ms: ms(tcp_from, tcp_up),
            tls_ms: if https {
                ms(marks.tls_start, marks.connected)
            } else {
                None
            },
            ttfb_ms: ms(marks.connected, progress.headers_at),
            ip: progress
                .remote
                .map(|a| a.ip())
                .or(marks.resolved)
                .or(literal_ip),
            regex: site.regex.as_ref().map(|r| r.as_str().to_owned()),
            regex_matched: progress.regex_matched,
            json_matched: progress.json_matched,
            body_bytes: progress.status.map(|_| progress.body_bytes),
            tls_expires_at: marks.cert_expires_at,
            redirects: Some(progress.redirects),
            final_url: Some(match &progress.final_url {
                Some(url) => without_credentials(url),
                None => site.published.clone(),
            }),
            error_kind,
            error,
            condition,
            run_id: None,
            attempts: Some(1),
            dns_rcode: None,
            dns_answers: None,
            packet_loss: None,
            tls_names: None,
            conditions,
        }
    }

    /// The request itself: send (following redirects), read the body up to
    /// the cap, match the regex.
    async fn exchange(
        &self,
        site: &Site,
        recorder: &Recorder,
        progress: &mut Progress,
    ) -> Result<(), Failure> {
        let response = self.send(site, recorder, progress).await?;
        self.read_body(site, response, progress).await
    }

    /// Sends the request, following redirects as `max_redirects` allows:
    /// the response of the last hop.
    async fn send(
        &self,
        site: &Site,
        recorder: &Recorder,
        progress: &mut Progress,
    ) -> Result<reqwest::Response, Failure> {
        let mut url = site.url.clone();
        let mut method = site.method.clone();
        let mut visited = vec![without_fragment(&url)];
        let response = loop {
            progress.hop_start = Some(Instant::now());
            // Credentials go only where the site's URL points: a redirect
            // to another host must not carry them, as reqwest and curl do.
            let same_host = url.host() == site.url.host()
                && url.port_or_known_default() == site.url.port_or_known_default();
            let mut headers = site.headers.clone();
            if !same_host {
                for name in [
                    reqwest::header::AUTHORIZATION,
                    reqwest::header::COOKIE,
                    reqwest::header::PROXY_AUTHORIZATION,
                ] {
                    headers.remove(name);
                }
            }
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers);
            if let (Some(auth), true) = (&site.auth, same_host) {
                request =
                    request.basic_auth(&auth.username, auth.password.as_ref().map(|p| p.expose()));
            }
            if let Some(body) = &site.body
                && method == site.method
            {
                request = request.body(body.to_vec());
            }
            let response = request.send().await.map_err(Failure::Request)?;
            progress.headers_at = Some(Instant::now());
            if !site.expressions.is_empty() {
                progress.headers = Some(response.headers().clone());
            }
            progress.status = Some(response.status());
            progress.remote = response.remote_addr();
            if site.max_redirects == 0 {
                break response;
            }
            let Some(next) = redirect_target(&response, &url) else {
                break response;
            };
            let next = next.map_err(Failure::Redirect)?;
            let key = without_fragment(&next);
            if visited.contains(&key) {
                return Err(Failure::Redirect(format!(
                    "redirect loop: {} leads back to {}",
                    redact_url(url.as_str()),
                    redact_url(next.as_str())
                )));
            }
            if progress.redirects >= site.max_redirects {
                return Err(Failure::Redirect(format!(
                    "more than {} redirects (max_redirects), the next to {}",
                    site.max_redirects,
                    redact_url(next.as_str())
                )));
            }
            // As browsers do: 303 turns any method but HEAD into GET, and
            // 301 and 302 turn POST into GET.
            let status = response.status().as_u16();
            if (status == 303 && method != reqwest::Method::HEAD)
                || (matches!(status, 301 | 302) && method == reqwest::Method::POST)
            {
                method = reqwest::Method::GET;
            }
            drop(response);
            progress.redirects += 1;
            progress.status = None;
            progress.headers_at = None;
            progress.remote = None;
            recorder.next_hop();
            visited.push(key);
            url = next;
            progress.final_url = Some(url.clone());
        };
        Ok(response)
    }

    /// Reads the body up to the cap, matching the regex as it streams in
    /// and keeping it for JSON conditions.
    async fn read_body(
        &self,
        site: &Site,
        mut response: reqwest::Response,
        progress: &mut Progress,
    ) -> Result<(), Failure> {
        let cap = usize::try_from(site.max_body_bytes).unwrap_or(usize::MAX);
        let mut stream = site.regex.as_ref().and_then(|re| re.stream());
        // Only JSON conditions and a pattern the streaming matcher cannot
        // run keep the body, under the shared budget, taken whole so that
        // checks waiting for room never hold part of it (which could
        // starve them all).
        let for_conditions = site.expressions.iter().any(|e| e.needs_body());
        let keep = site.json.is_some()
            || for_conditions
            || site.regex.as_ref().is_some_and(|re| re.needs_body());
        let mut body = Vec::new();
        let mut held = None;
        let close_delimited = ends_at_close(&response);
        while progress.body_bytes < site.max_body_bytes {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // A body that runs to the end of the connection, ended
                // without TLS close_notify: what was read is the body, as
                // curl, urllib and browsers take it.
                Err(e) if close_delimited && unexpected_eof(&e) => break,
                Err(e) => return Err(Failure::Body(e)),
            };
            let room =
                usize::try_from(site.max_body_bytes - progress.body_bytes).unwrap_or(usize::MAX);
            let taken = &chunk[..chunk.len().min(room)];
            if let Some(stream) = stream.as_mut() {
                stream.feed(taken);
            }
            if keep {
                if held.is_none() {
                    let whole = cap.min(BODY_BUDGET_BYTES);
                    held = Some(
                        self.body_budget
                            .acquire_many(u32::try_from(whole).unwrap_or(u32::MAX))
                            .await
                            .expect("the budget is never closed"),
                    );
                }
                let needed = body.len() + taken.len();
                if needed > body.capacity() {
                    let target = needed.max(cap.min(body.capacity() * 2));
                    body.reserve_exact(target - body.len());
                }
                body.extend_from_slice(taken);
            }
            progress.body_bytes += taken.len() as u64;
        }
        progress.regex_matched = match (stream, &site.regex) {
            (Some(stream), _) => Some(stream.finish()),
            (None, Some(re)) => Some(re.is_match(&body)),
            (None, None) => None,
        };
        // A body cut at the cap is not JSON: the cap applies.
        progress.json_failure = site.json.as_ref().and_then(|j| j.failure(&body));
        progress.json_matched = site.json.as_ref().map(|_| progress.json_failure.is_none());
        if for_conditions {
            progress.body = Some(body);
        }
        Ok(())
    }
}

/// How a check that did not complete failed: its error kind, and the error
/// for a person (the phase it stopped in, the redirects followed).
fn failure(
    outcome: Result<Result<(), Failure>, tokio::time::error::Elapsed>,
    site: &Site,
    marks: &Marks,
    progress: &Progress,
    https: bool,
) -> (Option<ErrorKind>, Option<String>) {
    let after = match progress.redirects {
        0 => String::new(),
        1 => " (after 1 redirect)".to_owned(),
        n => format!(" (after {n} redirects)"),
    };
    match outcome {
        Ok(Ok(())) => (None, None),
        Err(_) => (
            Some(ErrorKind::Timeout),
            Some(format!(
                "timed out after {} {}{after}",
                humantime::format_duration(site.timeout),
                phase_name(marks, progress, https)
            )),
        ),
        Ok(Err(Failure::Body(e))) => (Some(ErrorKind::Body), Some(describe(&e))),
        Ok(Err(Failure::Request(e))) => (
            Some(failed_phase(marks)),
            Some(one_line(&format!("{}{after}", describe(&e)))),
        ),
        Ok(Err(Failure::Redirect(why))) => (Some(ErrorKind::Redirect), Some(one_line(&why))),
    }
}

/// Why a check that completed is down (or degraded): the first condition
/// it failed, with what was expected and what came.
fn failed_condition(
    site: &Site,
    progress: &Progress,
    degraded: bool,
    elapsed: Duration,
) -> Option<String> {
    if let Some(code) = progress
        .status
        .map(|s| s.as_u16())
        .filter(|c| !site.expect_status.contains(*c))
    {
        Some(format!("status {code}, expected {}", site.expect_status))
    } else if progress.regex_matched == Some(false) {
        site.regex.as_ref().map(|re| {
            one_line(&format!(
                "regex `{}` not found in the body ({} bytes read)",
                re.as_str(),
                progress.body_bytes
            ))
        })
    } else if progress.json_matched == Some(false) {
        progress.json_failure.as_deref().map(one_line)
    } else if degraded {
        site.degraded_after
            .map(|limit| slow_condition(millis(elapsed), limit))
    } else {
        None
    }
}

/// A degraded check's condition, for every kind: the measure and the
/// threshold.
fn slow_condition(response_time_ms: f64, limit: Duration) -> String {
    format!(
        "response time {response_time_ms:.0} ms, over degraded_after {:.0} ms",
        millis(limit)
    )
}

/// The TLS configuration of sitewatch's own requests (notifications), not
/// of checks: the system's roots, full verification.
pub fn tls_config() -> anyhow::Result<rustls::ClientConfig> {
    tls::standard_config()
}

/// Checks every site with at most `concurrency` in flight, sending each
/// result as soon as it is ready. The channel closes after the last one, or
/// soon after `stop` is cancelled: no check starts after that, and checks
/// in flight are abandoned (their results would be partial).
pub fn spawn_all(
    prober: Arc<Prober>,
    sites: Arc<[Site]>,
    concurrency: usize,
    stop: CancellationToken,
) -> mpsc::Receiver<Check> {
    let (tx, rx) = mpsc::channel(concurrency.clamp(1, 4096));
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(concurrency));
        for index in 0..sites.len() {
            let permit = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => {
                    permit.expect("the semaphore is never closed")
                }
                () = stop.cancelled() => return,
            };
            let (prober, sites, tx, stop) = (
                Arc::clone(&prober),
                Arc::clone(&sites),
                tx.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let Some(check) = prober.check_confirmed(&sites[index], &stop).await else {
                    return;
                };
                drop(permit);
                // The receiver only goes away when the job is abandoned.
                let _ = tx.send(check).await;
            });
        }
    });
    rx
}

/// The site's conditions' outcomes on what its check saw; `None` without
/// conditions.
fn evaluate(
    site: &Site,
    facts: &crate::expression::Facts,
) -> Option<Vec<crate::expression::Outcome>> {
    (!site.expressions.is_empty())
        .then(|| site.expressions.iter().map(|e| e.evaluate(facts)).collect())
}

/// Days from `now` to a certificate's expiry.
fn days_left(expires: Option<OffsetDateTime>, now: OffsetDateTime) -> Option<f64> {
    expires.map(|t| (t - now).whole_seconds() as f64 / 86_400.0)
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The phase that failed, from how far the hooks got.
fn failed_phase(marks: &Marks) -> ErrorKind {
    if marks.dns_failed || (marks.dns_start.is_some() && marks.dns_end.is_none()) {
        ErrorKind::Dns
    } else if marks.tls_start.is_none() && marks.connected.is_none() {
        ErrorKind::Connect
    } else if marks.connected.is_none() {
        ErrorKind::Tls
    } else {
        ErrorKind::Http
    }
}

/// Words for the phase a timeout interrupted.
fn phase_name(marks: &Marks, progress: &Progress, https: bool) -> &'static str {
    if progress.headers_at.is_some() {
        "reading the body"
    } else if marks.connected.is_some() {
        "waiting for the response"
    } else if marks.dns_start.is_some() && marks.dns_end.is_none() {
        "resolving the host"
    } else if https && marks.tls_start.is_some() {
        "during the TLS handshake"
    } else {
        "connecting"
    }
}

/// Whether the response's body runs until the server closes the
/// connection: HTTP/1, with neither a length nor chunked encoding.
fn ends_at_close(response: &reqwest::Response) -> bool {
    let headers = response.headers();
    response.version() <= reqwest::Version::HTTP_11
        && !headers.contains_key(reqwest::header::CONTENT_LENGTH)
        && !headers
            .get_all(reqwest::header::TRANSFER_ENCODING)
            .iter()
            .any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
            })
}

/// Whether the connection ended early (rustls: "peer closed connection
/// without sending TLS close_notify").
fn unexpected_eof(error: &reqwest::Error) -> bool {
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Where a redirect points, if the response is one (301, 302, 303, 307,
/// 308 with a `Location`; without one, the 3xx is the result). A target
/// that cannot be followed is an error, which says why.
fn redirect_target(
    response: &reqwest::Response,
    from: &url::Url,
) -> Option<Result<url::Url, String>> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.headers().get(reqwest::header::LOCATION)?;
    // Browsers read a Location that is not ASCII as UTF-8; the URL parser
    // then percent-encodes it.
    let text = String::from_utf8_lossy(location.as_bytes());
    Some(match from.join(text.trim()) {
        Ok(next) if matches!(next.scheme(), "http" | "https") && next.host().is_some() => Ok(next),
        Ok(next) => Err(format!(
            "redirect to {}: only http:// and https:// URLs are followed",
            redact_url(next.as_str())
        )),
        Err(e) => Err(format!("redirect to `{}`: {e}", redact_url(&text))),
    })
}

/// The URL as it may be published: credentials a redirect's `Location`
/// carried are removed, as the site's own are.
fn without_credentials(url: &url::Url) -> String {
    let mut url = url.clone();
    crate::sites::strip_credentials(&mut url);
    url.into()
}

/// The URL as a request sends it: without its `#fragment`.
fn without_fragment(url: &url::Url) -> url::Url {
    let mut url = url.clone();
    url.set_fragment(None);
    url
}

/// The innermost cause of a reqwest error: the part a person can act on
/// ("Connection refused", "invalid peer certificate: Expired").
fn describe(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    loop {
        if let Some(words) = rustls_error(cause).and_then(tls::in_words) {
            return one_line(&words);
        }
        match cause.source() {
            Some(next) => cause = next,
            None => return one_line(&cause.to_string()),
        }
    }
}

/// The rustls error `cause` is, or wraps in `io::Error`s (whose `source`
/// skips what they wrap: hyper nests two).
fn rustls_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cause = cause;
    loop {
        if let Some(e) = cause.downcast_ref::<rustls::Error>() {
            return Some(e);
        }
        cause = cause.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// Text shown in logs and stored: its first line, no control character
/// (PostgreSQL refuses a NUL), at most 300 characters.
fn one_line(text: &str) -> String {
    let text = text.lines().next().unwrap_or_default();
    text.chars()
        .take(300)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
