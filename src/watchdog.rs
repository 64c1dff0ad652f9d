//! A dead man's switch on the watcher itself: when the host that runs the
//! jobs dies, or a job stops being started, the monitors it feeds cannot
//! say so. With `SITEWATCH_WATCHDOG_URL` a job pings a service such as
//! healthchecks.io, Cronitor or Dead Man's Snitch by healthchecks.io's
//! convention: `URL/start` as it starts, `URL` when it succeeds,
//! `URL/<exit code>` when it fails (the body the job's last line, so the
//! service shows why); the service alerts when the pings stop or say
//! failure. Each ping is bounded in time and never fails the job.

use std::time::Duration;

use crate::error::Error;
use crate::secret::Secret;

/// How long one ping may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The pings of one job.
pub struct Watchdog {
    client: reqwest::Client,
    url: url::Url,
}

impl Watchdog {
    /// The watchdog of `url` (validated with the settings), or none without
    /// one; a client that cannot be built is logged, not fatal.
    pub fn new(url: Option<&Secret>) -> Option<Watchdog> {
        let url = url::Url::parse(url?.expose()).ok()?;
        match crate::outbound::client(TIMEOUT) {
            Ok(client) => Some(Watchdog { client, url }),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot ping the watchdog");
                None
            }
        }
    }

    /// `URL/start`.
    pub async fn started(&self) {
        self.ping(Some("start"), String::new()).await;
    }

    /// `URL` after a success; `URL/<exit code>` with the job's last line
    /// after a failure.
    pub async fn finished(&self, outcome: Result<(), &Error>) {
        match outcome {
            Ok(()) => self.ping(None, String::new()).await,
            Err(e) => {
                let code = e.exit_code_number().to_string();
                self.ping(Some(&code), e.one_line()).await;
            }
        }
    }

    async fn ping(&self, last: Option<&str>, body: String) {
        let mut url = self.url.clone();
        if let (Some(last), Ok(mut segments)) = (last, url.path_segments_mut()) {
            segments.pop_if_empty().push(last);
        }
        let sent = self.client.post(url).body(body).send().await;
        // The URL is a secret (it names the check): never in the log.
        match sent.map(|r| r.status()) {
            Ok(status) if status.is_success() => {}
            Ok(status) => {
                tracing::warn!(%status, ping = last.unwrap_or("success"), "the watchdog refused the ping")
            }
            Err(e) => tracing::warn!(
                error = %crate::escape::controls(&e.without_url().to_string()),
                ping = last.unwrap_or("success"),
                "cannot ping the watchdog"
            ),
        }
    }
}
