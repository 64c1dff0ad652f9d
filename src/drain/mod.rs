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

/// Database connections that store batches at once, each for its own share
/// of the partitions (so that a partition's batches stay in order). Two keep
/// both cores of a small PostgreSQL busy; more only queue on the same CPUs.
pub const WRITERS: usize = 2;

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
    /// The high watermark at the start, when it is above the start offset.
    bound: Option<i64>,
    done: bool,
    /// The writer that stores this partition's records.
    writer: usize,
}

/// Whether a record is past the end of this run: at or beyond the high
/// watermark read at the start, *and* written after the run started.
///
/// The watermark alone would do on Kafka, but a broker may report a low one
/// (Nisshi's memory engine is a few thousand records short on a busy
/// partition): the records between it and the true end were written before
/// the run started, so they are still taken, and the partition ends at EOF.
/// The timestamp alone would not do either: a producer's clock may lag, so
/// it only decides past the watermark. A record without a timestamp past the
/// watermark ends the partition. Either way a busy topic cannot keep a
/// drain running.
fn past_end(offset: i64, bound: Option<i64>, created_ms: Option<i64>, started_ms: i64) -> bool {
    bound.is_some_and(|b| offset >= b) && created_ms.is_none_or(|t| t >= started_ms)
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
    let started_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX);
    tokio::pin!(shutdown);
    let k = &settings.kafka;
    // The other writers' connections open while Kafka is set up.
    let more_db: Vec<_> = (1..WRITERS)
        .map(|_| {
            let database = settings.database.clone();
            tokio::spawn(async move {
                let db = store::connect(&database).await?;
                store::prepare(&db).await?;
                Ok::<_, Error>(db)
            })
        })
        .collect();
    let db = store::connect(&settings.database).await?;
    store::prepare(&db).await?;
    let consumer: DrainConsumer = kafka::client_config(k)
        .set("group.id", &k.group)
        // An empty partition answers after this wait; the end of a run is
        // a few of those, so short keeps an idle drain fast.
        .set("fetch.wait.max.ms", "50")
        // Prefetch a few batches (a check is under 1 KiB), not librdkafka's
        // defaults (100,000 records a partition, up to 64 MiB): peak memory
        // then stays the same whatever the backlog. Once below that, fetch
        // again at once, not after librdkafka's default second.
        .set("queued.min.messages", "10000")
        .set("queued.max.messages.kbytes", "16384")
        .set("fetch.queue.backoff.ms", "5")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create_with_context(kafka::Context::default())
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
    let mut writers = vec![Writer::new(db)];
    for db in more_db.into_iter().take(owned.len() - 1) {
        let db = db.await.map_err(|e| Error::Job(anyhow!("{e}")))??;
        writers.push(Writer::new(db));
    }
    for (i, &p) in owned.iter().enumerate() {
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
        // An explicit offset, even for "from the beginning": librdkafka
        // would first look up what the beginning is, one more round trip
        // and fetch wait before an empty partition reports its end.
        assignment
            .add_partition_offset(&k.topic, p, Offset::Offset(first))
            .context("cannot build the assignment")?;
        state.insert(
            p,
            Partition {
                bound,
                done: false,
                writer: i % writers.len(),
            },
        );
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
                for writer in &mut writers {
                    if !writer.batch.is_empty() {
                        writer.submit(&consumer, settings, summary).await?;
                    }
                }
                if last_heard.elapsed() >= options.idle_timeout {
                    return Err(Error::Job(anyhow!(consumer.context().explain(format!(
                        "no message and no end of partition from {} for {}: stopped with the rest left for the next run",
                        k.brokers,
                        humantime::format_duration(options.idle_timeout)
                    )))));
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
        if s.done || past_end(offset, s.bound, message.timestamp().to_millis(), started_ms) {
            // Past this run's end: the next run takes it.
            if !s.done {
                s.done = true;
                pause(&consumer, &k.topic, p);
            }
            continue;
        }
        summary.consumed += 1;
        let writer = &mut writers[s.writer];
        let batch = &mut writer.batch;
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
        if batch.len() >= options.batch_size {
            writer.submit(&consumer, settings, summary).await?;
        }
    }
    for writer in &mut writers {
        if !writer.batch.is_empty() {
            writer.submit(&consumer, settings, summary).await?;
        }
    }
    for writer in &mut writers {
        writer.finish(&consumer, summary, CommitMode::Sync).await?;
    }
    Ok(())
}

/// Fills batches for its partitions and stores them on its own database
/// connection, in a task of its own, one at a time, while the loop consumes
/// and decodes the next one: PostgreSQL and the consumer work at the same
/// time. Memory stays bounded: per writer, one batch in the database, one
/// being filled.
struct Writer {
    batch: Batch,
    idle: Option<tokio_postgres::Client>,
    busy: Option<tokio::task::JoinHandle<Stored>>,
}

/// A batch's outcome, with the connection back and the offsets to mirror.
type Stored = (
    tokio_postgres::Client,
    anyhow::Result<store::Stored>,
    TopicPartitionList,
);

impl Writer {
    fn new(db: tokio_postgres::Client) -> Writer {
        Writer {
            batch: Batch::default(),
            idle: Some(db),
            busy: None,
        }
    }

    /// Waits for the batch in the database, then hands this one over.
    async fn submit(
        &mut self,
        consumer: &DrainConsumer,
        settings: &Settings,
        summary: &mut Summary,
    ) -> Result<()> {
        self.finish(consumer, summary, CommitMode::Async).await?;
        let k = &settings.kafka;
        let mut offsets = TopicPartitionList::new();
        for (&p, &next) in &self.batch.next_offsets {
            offsets
                .add_partition_offset(&k.topic, p, Offset::Offset(next))
                .context("cannot build the offsets to commit")?;
        }
        let batch = std::mem::take(&mut self.batch);
        let mut db = self
            .idle
            .take()
            .expect("a finished writer has its connection");
        let (group, topic) = (k.group.clone(), k.topic.clone());
        self.busy = Some(tokio::spawn(async move {
            let stored = store::store(&mut db, &group, &topic, &batch).await;
            (db, stored, offsets)
        }));
        Ok(())
    }

    /// Waits for the batch in the database, if any; once its transaction is
    /// committed, mirrors its offsets to Kafka. A failed batch fails the
    /// run, and no later batch is stored.
    async fn finish(
        &mut self,
        consumer: &DrainConsumer,
        summary: &mut Summary,
        mode: CommitMode,
    ) -> Result<()> {
        let Some(busy) = self.busy.take() else {
            return Ok(());
        };
        let (db, stored, offsets) = busy.await.map_err(|e| Error::Job(anyhow!("{e}")))?;
        self.idle = Some(db);
        let stored = stored.context("a batch was not stored; no offset was committed for it")?;
        summary.stored += stored.inserted;
        summary.duplicates += stored.duplicates;
        summary.dead_letters += stored.dead_letters;
        // The database already holds the truth; Kafka's copy is for lag
        // tools, so a failure here is worth a warning, not a failed run.
        if let Err(e) = tokio::task::block_in_place(|| consumer.commit(&offsets, mode)) {
            tracing::warn!(error = %e, "cannot commit offsets to Kafka (PostgreSQL has them)");
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::past_end;

    const START: i64 = 1_800_000_000_000;

    #[test]
    fn a_partition_ends_past_the_watermark_at_a_record_written_after_the_start() {
        // Below the watermark: taken, whenever it was written.
        assert!(!past_end(99, Some(100), Some(START + 5000), START));
        // At the watermark, written after the start: the end.
        assert!(past_end(100, Some(100), Some(START + 1), START));
        assert!(past_end(100, Some(100), None, START));
        // Past a watermark that was too low, written before the start: taken.
        assert!(!past_end(150, Some(100), Some(START - 1), START));
        // No trustworthy watermark: only EOF ends the partition.
        assert!(!past_end(10_000, None, Some(START + 1), START));
    }
}
