//! `drain`: consume every partition up to its end as of this run, store in
//! batches, commit offsets after the rows, exit.
//!
//! Exactly once, by construction rather than by luck:
//! - each partition's next offset lives in PostgreSQL (`drain_offsets`),
//!   written in the same transaction as the batch's rows: what is stored
//!   and where to resume can never disagree;
//! - the offsets are also committed to Kafka after the transaction, so lag
//!   tools see the group's progress; a crash between the two only leaves
//!   Kafka behind, and the database wins on the next run;
//! - a drain takes a PostgreSQL advisory lock per partition, so concurrent
//!   drains split the partitions instead of redoing each other's work;
//! - `check_id` is unique: a message published twice is stored once.
//!
//! Partitions are `assign()`ed, not subscribed: no group join, whose
//! rebalance costs seconds (about 25 s on the local broker).

pub mod decode;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kafka;
use crate::store::{self, Batch, DeadLetter, Located};
use crate::telemetry;

/// Messages per transaction when not told otherwise: large enough that a
/// transaction's fixed cost is amortised, small enough that memory stays
/// bounded (a check is under 2 KiB).
pub const DEFAULT_BATCH_SIZE: usize = 5000;

/// How long the broker may stay silent (no message, no end of partition)
/// before the run gives up with exit 1.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounds of one run.
#[derive(Debug, Clone)]
pub struct Options {
    pub batch_size: usize,
    /// Stop after consuming this many messages; the rest stays for the next run.
    pub max_messages: Option<u64>,
    /// Stop after this long; what is stored is committed, the rest stays.
    pub max_duration: Option<Duration>,
    /// The job must be over this long after it started: it stops consuming
    /// early enough to store and commit what it has.
    pub deadline: Option<Duration>,
    pub idle_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: DEFAULT_BATCH_SIZE,
            max_messages: None,
            max_duration: None,
            deadline: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub consumed: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    /// Partitions this run drained, and the topic's partitions.
    pub partitions: usize,
    pub topic_partitions: usize,
    pub seconds: f64,
}

type DrainConsumer = StreamConsumer<kafka::Context>;

/// Where one owned partition stands.
#[derive(Debug)]
struct Partition {
    /// The high watermark at the start, when it can be trusted as the end
    /// of this run: above the start offset. A broker that reports a wrong
    /// (low) watermark then still ends the partition at EOF.
    bound: Option<i64>,
    done: bool,
}

/// Drains the topic into PostgreSQL. A failed batch stores nothing and
/// commits no offset; the job then exits 1 and the next run redoes it.
///
/// On `shutdown` (SIGTERM, SIGINT) it stops consuming, stores and commits
/// what it consumed, and returns: the rest stays for the next run.
pub async fn run(
    settings: &Settings,
    options: &Options,
    shutdown: impl std::future::Future<Output = &'static str>,
) -> Result<Summary> {
    let start = Instant::now();
    let mut summary = Summary::default();
    let outcome = drain(settings, options, &mut summary, shutdown).await;
    summary.seconds = start.elapsed().as_secs_f64();
    report(settings, &summary);
    outcome.map(|()| summary)
}

async fn drain(
    settings: &Settings,
    options: &Options,
    summary: &mut Summary,
    shutdown: impl std::future::Future<Output = &'static str>,
) -> Result<()> {
    let start = Instant::now();
    tokio::pin!(shutdown);
    let k = &settings.kafka;
    let mut db = store::connect(&settings.database).await?;
    store::prepare(&db).await?;
    let consumer: DrainConsumer = kafka::client_config(k)
        .set("group.id", &k.group)
        // An empty partition answers after this wait; the end of a run is
        // a few of those, so short keeps an idle drain fast.
        .set("fetch.wait.max.ms", "100")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create_with_context(kafka::Context)
        .context("cannot create the Kafka consumer")?;

    let partitions = blocking(|| topic_partitions(&consumer, k)).await?;
    summary.topic_partitions = partitions.len();

    // Start at a different partition in each run, so that concurrent drains
    // split the partitions rather than queue for the same first lock.
    let rotation = (std::process::id() as usize) % partitions.len().max(1);
    let mut owned = Vec::new();
    for &p in partitions
        .iter()
        .cycle()
        .skip(rotation)
        .take(partitions.len())
    {
        if store::try_lock_partition(&db, &k.group, &k.topic, p).await? {
            owned.push(p);
        }
    }
    owned.sort_unstable();
    summary.partitions = owned.len();
    if owned.is_empty() {
        tracing::info!(topic = %k.topic, "every partition is being drained by another run");
        return Ok(());
    }

    let from_db = store::next_offsets(&db, &k.group, &k.topic).await?;
    let missing: Vec<i32> = owned
        .iter()
        .copied()
        .filter(|p| !from_db.contains_key(p))
        .collect();
    let from_kafka = if missing.is_empty() {
        BTreeMap::new()
    } else {
        blocking(|| committed(&consumer, &k.topic, &missing)).await?
    };
    let mut assignment = TopicPartitionList::new();
    let mut state = BTreeMap::new();
    for &p in &owned {
        let start_at = from_db.get(&p).or(from_kafka.get(&p)).copied();
        let (low, high) = blocking(|| {
            consumer
                .fetch_watermarks(&k.topic, p, Duration::from_secs(10))
                .with_context(|| format!("cannot read the watermarks of {}[{p}]", k.topic))
        })
        .await?;
        let first = start_at.unwrap_or(low).max(low);
        let bound = (high > first).then_some(high);
        tracing::debug!(partition = p, first, low, high, ?bound, "assigning");
        let offset = start_at.map_or(Offset::Beginning, Offset::Offset);
        assignment
            .add_partition_offset(&k.topic, p, offset)
            .context("cannot build the assignment")?;
        state.insert(p, Partition { bound, done: false });
    }
    consumer
        .assign(&assignment)
        .context("cannot assign the partitions")?;

    // Stop consuming at --max-duration, or early enough before --deadline
    // to store the last batch (a fifth of it, at most 5 s).
    let deadline = [
        options.max_duration,
        options
            .deadline
            .map(|d| d - (d / 5).min(Duration::from_secs(5))),
    ]
    .into_iter()
    .flatten()
    .min()
    .map(|d| start + d);
    let mut batch = Batch::default();
    let mut last_heard = Instant::now();
    loop {
        if state.values().all(|s| s.done) {
            break;
        }
        if options
            .max_messages
            .is_some_and(|max| summary.consumed >= max)
        {
            tracing::info!(
                consumed = summary.consumed,
                "--max-messages reached: the rest stays for the next run"
            );
            break;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            tracing::info!("time is up: the rest stays for the next run");
            break;
        }
        let wait = deadline.map_or(Duration::from_millis(200), |d| {
            (d - now).min(Duration::from_millis(200))
        });
        let received = tokio::select! {
            received = tokio::time::timeout(wait, consumer.recv()) => received,
            signal = &mut shutdown => {
                tracing::info!(signal, "stopping: storing what was consumed; the rest stays for the next run");
                break;
            }
        };
        let message = match received {
            Err(_) => {
                // Quiet: store what is waiting, and give up on a silent broker.
                if !batch.is_empty() {
                    flush(&mut db, &consumer, settings, &mut batch, summary).await?;
                }
                if last_heard.elapsed() >= options.idle_timeout {
                    return Err(Error::Job(anyhow!(
                        "no message and no end of partition from {} for {}: stopped with the rest left for the next run",
                        k.brokers,
                        humantime::format_duration(options.idle_timeout)
                    )));
                }
                continue;
            }
            Ok(Err(KafkaError::PartitionEOF(p))) => {
                last_heard = Instant::now();
                if let Some(s) = state.get_mut(&p) {
                    s.done = true;
                }
                continue;
            }
            Ok(Err(e)) => {
                // librdkafka retries on its own; the idle timeout bounds it.
                tracing::warn!(error = %e, "Kafka consumer error");
                continue;
            }
            Ok(Ok(message)) => message,
        };
        last_heard = Instant::now();
        let (p, offset) = (message.partition(), message.offset());
        let Some(s) = state.get_mut(&p) else { continue };
        if s.done || s.bound.is_some_and(|b| offset >= b) {
            // Past this run's end: the next run takes it.
            if !s.done {
                s.done = true;
                pause(&consumer, &k.topic, p);
            }
            continue;
        }
        summary.consumed += 1;
        match decode::decode(message.payload()) {
            Ok(check) => batch.checks.push(Located {
                check,
                partition: p,
                offset,
            }),
            Err(reason) => batch.dead.push(DeadLetter {
                partition: p,
                offset,
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().map(<[u8]>::to_vec),
                reason,
            }),
        }
        batch.next_offsets.insert(p, offset + 1);
        if s.bound.is_some_and(|b| offset + 1 >= b) {
            s.done = true;
            pause(&consumer, &k.topic, p);
        }
        if batch.len() >= options.batch_size {
            flush(&mut db, &consumer, settings, &mut batch, summary).await?;
        }
    }
    if !batch.is_empty() {
        flush(&mut db, &consumer, settings, &mut batch, summary).await?;
    }
    Ok(())
}

/// Stores the batch in one transaction, then mirrors the offsets to Kafka.
async fn flush(
    db: &mut tokio_postgres::Client,
    consumer: &DrainConsumer,
    settings: &Settings,
    batch: &mut Batch,
    summary: &mut Summary,
) -> Result<()> {
    let k = &settings.kafka;
    let stored = store::store(db, &k.group, &k.topic, batch)
        .await
        .context("a batch was not stored; no offset was committed for it")?;
    summary.stored += stored.inserted;
    summary.duplicates += stored.duplicates;
    summary.dead_letters += stored.dead_letters;
    let mut offsets = TopicPartitionList::new();
    for (&p, &next) in &batch.next_offsets {
        offsets
            .add_partition_offset(&k.topic, p, Offset::Offset(next))
            .context("cannot build the offsets to commit")?;
    }
    *batch = Batch::default();
    // The database already holds the truth; Kafka's copy is for lag tools,
    // so a failure here is worth a warning, not a failed run.
    if let Err(e) = tokio::task::block_in_place(|| consumer.commit(&offsets, CommitMode::Sync)) {
        tracing::warn!(error = %e, "cannot commit offsets to Kafka (PostgreSQL has them)");
    }
    Ok(())
}

fn pause(consumer: &DrainConsumer, topic: &str, partition: i32) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    if let Err(e) = consumer.pause(&tpl) {
        tracing::debug!(error = %e, partition, "cannot pause a finished partition");
    }
}

/// Runs a blocking librdkafka call without stalling the runtime.
async fn blocking<T>(f: impl FnOnce() -> anyhow::Result<T>) -> Result<T> {
    tokio::task::block_in_place(f).map_err(Error::Job)
}

fn topic_partitions(
    consumer: &DrainConsumer,
    k: &crate::config::KafkaSettings,
) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(&k.topic), Duration::from_secs(10))
        .with_context(|| {
            format!(
                "cannot read the metadata of topic {} from {}",
                k.topic, k.brokers
            )
        })?;
    let topic = metadata
        .topics()
        .first()
        .ok_or_else(|| anyhow!("topic {} not found on {}", k.topic, k.brokers))?;
    if let Some(e) = topic.error() {
        return Err(anyhow!(
            "topic {} on {}: {} (create it with `sitewatch migrate`)",
            k.topic,
            k.brokers,
            rdkafka::error::RDKafkaErrorCode::from(e)
        ));
    }
    let partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
    if partitions.is_empty() {
        return Err(anyhow!(
            "topic {} has no partitions on {}",
            k.topic,
            k.brokers
        ));
    }
    Ok(partitions)
}

/// The group's offsets committed in Kafka, for partitions the database
/// does not know yet (a first run, or a group that committed elsewhere).
fn committed(
    consumer: &DrainConsumer,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .context("cannot read the group's committed offsets")?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

fn report(settings: &Settings, s: &Summary) {
    telemetry::summary(
        settings.log_format,
        &format!(
            "drain: {} consumed, {} stored, {} duplicates skipped, {} dead letters in {:.2} s ({} of {} partitions)",
            s.consumed,
            s.stored,
            s.duplicates,
            s.dead_letters,
            s.seconds,
            s.partitions,
            s.topic_partitions
        ),
        serde_json::json!({
            "job": "drain", "consumed": s.consumed, "stored": s.stored,
            "duplicates": s.duplicates, "dead_letters": s.dead_letters, "seconds": s.seconds,
            "partitions": s.partitions, "topic_partitions": s.topic_partitions,
        }),
    );
}
