//! Kafka: the client configuration (TLS, SASL) shared by producer, consumer
//! and admin client, the publisher of `probe-once`, and topic creation.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::config::KafkaSettings;

/// The settings every sitewatch Kafka client shares: brokers, security
/// protocol, certificates and SASL credentials. Producer, consumer and admin
/// client all start from this, so a connection setting is written once.
pub fn client_config(kafka: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set(
            "client.id",
            concat!("sitewatch/", env!("CARGO_PKG_VERSION")),
        )
        .set("security.protocol", kafka.security_protocol.as_str());
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    if let Some(ca) = &kafka.ssl_ca {
        config.set("ssl.ca.location", path(ca));
    }
    if let (Some(cert), Some(key)) = (&kafka.ssl_cert, &kafka.ssl_key) {
        config
            .set("ssl.certificate.location", path(cert))
            .set("ssl.key.location", path(key));
    }
    if let Some(sasl) = &kafka.sasl {
        config
            .set("sasl.mechanism", &sasl.mechanism)
            .set("sasl.username", &sasl.username)
            .set("sasl.password", sasl.password.expose());
    }
    config
}

/// A client librdkafka would not create, said plainly where the cause is
/// one of ours: a key that is not the certificate's.
pub fn creation_error(kafka: &KafkaSettings, what: &str, error: KafkaError) -> anyhow::Error {
    let text = error.to_string();
    if text.contains("key values mismatch") || text.contains("Private key check failed") {
        let shown = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map_or_else(String::new, |p| format!(" ({})", p.display()))
        };
        return anyhow!(
            "cannot create the Kafka {what}: SITEWATCH_KAFKA_SSL_KEY{} is not the key of SITEWATCH_KAFKA_SSL_CERT{}: give the key issued with that certificate (Aiven's service.key beside service.cert)",
            shown(&kafka.ssl_key),
            shown(&kafka.ssl_cert)
        );
    }
    anyhow::Error::new(error).context(format!("cannot create the Kafka {what}"))
}

/// The context of sitewatch's Kafka clients.
///
/// librdkafka reports a failed TLS handshake or a refused login only as an
/// error event, while the request that needed the connection just times
/// out; the context keeps the last such event so that a job's one-line
/// failure can say *why* ("certificate verify failed", "SASL
/// authentication error") instead of only "timed out". Reaching the end of
/// a partition is also an error event, which for `drain` is the goal: it is
/// logged at debug level.
#[derive(Debug, Clone, Default)]
pub struct Context {
    last_error: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// The last error that retrying cannot cure: a refused login or a
    /// failed TLS handshake.
    fatal: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// Set once the client is no longer used: what its threads still report
    /// while it closes is kept, not logged, so that no line follows the
    /// job's verdict.
    quiet: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Context {
    /// Stops logging what the client reports (it is being closed).
    pub fn silence(&self) {
        self.quiet.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn quiet(&self) -> bool {
        self.quiet.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The last connection-level error librdkafka reported, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// The last error that retrying cannot cure (a refused login, a TLS
    /// handshake that failed), if any.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|e| e.clone())
    }

    /// `message`, with the last client error when there is one.
    pub fn explain(&self, message: String) -> String {
        match self.last_error() {
            Some(e) => format!("{message} (last Kafka client error: {e})"),
            None => message,
        }
    }
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::PartitionEOF) => tracing::debug!(reason, "end of partition"),
            // The consequence of the errors that say why; not worth keeping.
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                if !self.quiet() {
                    tracing::error!(error = %error, reason, "Kafka client error");
                }
            }
            _ => {
                if !self.quiet() {
                    tracing::error!(error = %error, reason, "Kafka client error");
                }
                let line = reason.lines().next().unwrap_or_default().to_owned();
                let fatal = error.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication)
                    || [
                        "SSL handshake failed",
                        "SASL authentication error",
                        "certificate verify failed",
                        "alert",
                    ]
                    .iter()
                    .any(|m| line.contains(m));
                if fatal && let Ok(mut last) = self.fatal.lock() {
                    *last = Some(line.clone());
                }
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(line);
                }
            }
        }
    }
}

impl ConsumerContext for Context {}

/// Room for every message of a large run without ever blocking on the
/// local queue (librdkafka's default is 100,000).
const QUEUE_MESSAGES: &str = "1000000";

/// What a publish run achieved.
#[derive(Debug, Default)]
pub struct Confirmation {
    /// Messages the broker acknowledged.
    pub acknowledged: usize,
    /// Messages not acknowledged within the publish timeout.
    pub lost: usize,
    /// The first delivery error, for the report.
    pub first_error: Option<String>,
    /// How long the confirmation could wait.
    pub waited: Duration,
}

/// An idempotent producer that enqueues everything first and confirms every
/// delivery at the end.
pub struct Publisher {
    producer: FutureProducer<Context>,
    context: Context,
    topic: String,
    timeout: Duration,
    pending: Vec<DeliveryFuture>,
}

impl Publisher {
    /// Creates the producer; it connects in the background.
    pub fn new(kafka: &KafkaSettings) -> anyhow::Result<Publisher> {
        let context = Context::default();
        let producer: FutureProducer<Context> = client_config(kafka)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", QUEUE_MESSAGES)
            .set(
                "message.timeout.ms",
                kafka.publish_timeout.as_millis().to_string(),
            )
            .create_with_context(context.clone())
            .map_err(|e| creation_error(kafka, "producer", e))?;
        warm_up(producer.clone(), kafka.topic.clone());
        Ok(Publisher {
            producer,
            context,
            topic: kafka.topic.clone(),
            timeout: kafka.publish_timeout,
            pending: Vec::new(),
        })
    }

    /// Enqueues one message without waiting for its acknowledgement.
    pub async fn enqueue(&mut self, key: &str, payload: &[u8]) -> anyhow::Result<()> {
        let mut record = FutureRecord::to(&self.topic).key(key).payload(payload);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.pending.push(delivery);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The local queue drains as the broker acknowledges.
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(e).context("cannot enqueue a message"),
            }
        }
    }

    /// Messages enqueued so far.
    pub fn enqueued(&self) -> usize {
        self.pending.len()
    }

    /// Waits for every delivery report, until `by` at the latest (a job's
    /// deadline). librdkafka fails a message whose `message.timeout.ms`
    /// passes, so this ends within the publish timeout anyway; the outer
    /// bound also guards against a report that never comes.
    pub async fn confirm(mut self, by: Option<std::time::Instant>) -> Confirmation {
        let confirmation = self.settle(by).await;
        self.close().await;
        confirmation
    }

    /// Waits for the delivery reports of what is enqueued so far, as
    /// [`Publisher::confirm`] does, keeping the producer for more.
    pub async fn settle(&mut self, by: Option<std::time::Instant>) -> Confirmation {
        let pending = std::mem::take(&mut self.pending);
        let left = by.map(|by| by.saturating_duration_since(std::time::Instant::now()));
        let waited = left.map_or(self.timeout, |left| left.min(self.timeout));
        let bound = left.map_or(self.timeout + Duration::from_secs(5), |left| {
            left.min(self.timeout + Duration::from_secs(5))
        });
        let mut confirmation = Confirmation {
            waited,
            ..Confirmation::default()
        };
        // Every report, until the bound; a refused login or certificate
        // ends the wait at once (no message can be delivered after it).
        let started = std::time::Instant::now();
        let mut pending: futures::stream::FuturesUnordered<_> = pending.into_iter().collect();
        let deadline = tokio::time::sleep(bound);
        tokio::pin!(deadline);
        let context = self.context.clone();
        let refused = async {
            loop {
                if let Some(why) = context.fatal() {
                    return why;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::pin!(refused);
        loop {
            tokio::select! {
                report = futures::StreamExt::next(&mut pending) => match report {
                    None => break,
                    Some(Ok(Ok(_))) => confirmation.acknowledged += 1,
                    Some(Ok(Err((e, _)))) => {
                        confirmation.lost += 1;
                        confirmation.first_error.get_or_insert_with(|| e.to_string());
                    }
                    Some(Err(_)) => {
                        confirmation.lost += 1;
                        confirmation
                            .first_error
                            .get_or_insert_with(|| "the producer was dropped".to_owned());
                    }
                },
                () = &mut deadline => {
                    confirmation.lost += pending.len();
                    confirmation
                        .first_error
                        .get_or_insert_with(|| "no delivery report came in time".to_owned());
                    break;
                }
                why = &mut refused => {
                    confirmation.lost += pending.len();
                    confirmation.waited = Duration::from_millis(started.elapsed().as_millis() as u64);
                    confirmation.first_error = Some(format!("the broker refused the connection: {why}"));
                    return confirmation;
                }
            }
        }
        confirmation.first_error = confirmation.first_error.map(|e| self.context.explain(e));
        confirmation
    }

    /// Releases the client cleanly (everything settled is reported).
    pub async fn close(self) {
        let producer = self.producer;
        let _ = tokio::task::spawn_blocking(move || {
            producer.flush(Timeout::After(Duration::from_secs(1)))
        })
        .await;
        // What the closing client still reports is not logged after the
        // job's verdict.
        self.context.silence();
    }
}

/// Gets the idempotent producer its id while the checks run. librdkafka
/// asks for the id on a 500 ms timer, or when a metadata response arrives;
/// at start no broker connection is up, so the first try waits for the
/// timer and every run would take half a second more. The first metadata
/// request goes to the bootstrap connection, the second to the broker that
/// is up by then, and its response gets the id at once
/// (docs/src/decisions.md, Kafka).
fn warm_up(producer: FutureProducer<Context>, topic: String) {
    tokio::task::spawn_blocking(move || {
        for _ in 0..2 {
            if let Err(e) = producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(1))
            {
                tracing::debug!(error = %e, "metadata request failed");
                return;
            }
        }
    });
}

/// The outcome of creating the topic.
#[derive(Debug, PartialEq, Eq)]
pub enum TopicOutcome {
    Created,
    AlreadyExists,
}

/// Why the brokers cannot be reached, when a client can tell: a refused
/// login or certificate (`None` when they can be, or nothing says why).
pub fn diagnose(kafka: &KafkaSettings, within: Duration) -> Option<String> {
    if within < Duration::from_millis(300) {
        return None;
    }
    reach(kafka, within).err()
}

/// Connects to the brokers and reads their metadata, `within` a time; a
/// refused login or certificate fails at once, naming why.
fn reach(kafka: &KafkaSettings, within: Duration) -> Result<(), String> {
    use rdkafka::producer::Producer as _;
    let context = Context::default();
    // A producer polls in a thread of its own: the refusal reaches the
    // context while this waits on the metadata.
    let producer: FutureProducer<Context> = client_config(kafka)
        .create_with_context(context.clone())
        .map_err(|e| creation_error(kafka, "client", e).to_string())?;
    let deadline = std::time::Instant::now() + within;
    let reached = loop {
        if let Some(why) = context.fatal() {
            break Err(why);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match producer
            .client()
            .fetch_metadata(None, left.min(Duration::from_millis(250)))
        {
            Ok(_) => break Ok(()),
            Err(e) if std::time::Instant::now() >= deadline => {
                break Err(context.explain(e.to_string()));
            }
            Err(_) => {}
        }
    };
    // Closing, the client may still report the refusal: not after the
    // job's verdict.
    context.silence();
    reached
}

/// Creates the topic when it is missing.
pub async fn create_topic(kafka: &KafkaSettings) -> anyhow::Result<TopicOutcome> {
    let context = Context::default();
    let admin: AdminClient<Context> = client_config(kafka)
        .create_with_context(context.clone())
        .map_err(|e| creation_error(kafka, "admin client", e))?;
    let topic = NewTopic::new(
        &kafka.topic,
        kafka.partitions,
        TopicReplication::Fixed(kafka.replication_factor),
    );
    let options = AdminOptions::new()
        .request_timeout(Some(Timeout::After(Duration::from_secs(30))))
        .operation_timeout(Some(Timeout::After(Duration::from_secs(30))));
    let failed = |e: String| {
        anyhow!(
            "cannot create topic {} on {}: {e}",
            kafka.topic,
            kafka.brokers
        )
    };
    // The admin client reports no refused login or certificate, only its
    // request's time-out, 30 s later: reach the brokers first with a client
    // that does, and stop at the first such refusal.
    let probe = kafka.clone();
    tokio::task::spawn_blocking(move || reach(&probe, Duration::from_secs(30)))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(failed)?;
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|e| failed(context.explain(e.to_string())))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(TopicOutcome::Created),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(TopicOutcome::AlreadyExists),
        Some(Err((name, code))) => Err(anyhow!(
            "cannot create topic {name} on {}: {code}",
            kafka.brokers
        )),
        None => Err(anyhow!(
            "the broker returned no result for topic {}",
            kafka.topic
        )),
    }
}
