//! `drain`: consume every partition up to its end as of this run, store in
//! batches, commit offsets after the rows, exit. How it stores each check
//! exactly once (offsets in the batch's transaction, a lock per partition,
//! claims that die with a frozen drain) is told in the book:
//! docs/src/internals.md, "drain: exactly once, and finished".
//!
//! - `consumer`: the topic's partitions, where each starts and ends;
//! - `writer`: the batches, stored by one connection each;
//! - `claims`: the partitions' locks, and taking them from stuck drains;
//! - [`decode`]: a record to a check, a run record or a dead letter.

mod claims;
mod consumer;
pub mod decode;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::history::rollup;
use crate::store;
use crate::telemetry;

use claims::*;
use consumer::*;
use writer::*;

/// Messages per transaction when not told otherwise: large enough that a
/// transaction's fixed cost is amortised, and that a batch's rollup chunk
/// holds several checks per site and hour (docs/src/decisions.md,
/// PostgreSQL); memory stays bounded by `--batch-bytes` too.
pub const DEFAULT_BATCH_SIZE: usize = 20_000;

/// Database connections that store batches at once, each for its own share
/// of the partitions (so that a partition's batches stay in order). Two keep
/// both cores of a small PostgreSQL busy; more only queue on the same CPUs.
pub const WRITERS: usize = 2;

/// Payload bytes per transaction when not told otherwise: a batch of
/// ordinary checks reaches the count first (5000 x under 1 KiB); a stream of
/// large poison records is cut by bytes, so memory stays bounded whatever
/// the records weigh.
pub const DEFAULT_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// How long a drain that stopped making progress may keep its partitions.
pub const DEFAULT_CLAIM_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the broker may stay silent (no message, no end of partition)
/// before the run gives up with exit 1.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounds of one run.
#[derive(Debug, Clone)]
pub struct Options {
    pub batch_size: usize,
    /// Payload bytes per transaction at most (one record always fits).
    pub batch_bytes: usize,
    /// The server ends this drain's sessions (and its claims) once they
    /// have been idle, or in one statement, for this long.
    pub claim_timeout: Duration,
    /// Stop after consuming this many messages; the rest stays for the next run.
    pub max_messages: Option<u64>,
    /// Stop after this long; what is stored is committed, the rest stays.
    pub max_duration: Option<Duration>,
    /// The job must be over this long after it started: it stops consuming
    /// early enough to store and commit what it has.
    pub deadline: Option<Duration>,
    pub idle_timeout: Duration,
    /// Checks and runs older than this are dead-lettered (so are those
    /// dated more than a few minutes ahead): no partition is made for a
    /// day outside the window.
    pub max_age: Duration,
    /// The run's wall clock at its start (tests set it; the system's when
    /// `None`): the window above, the day partitions made ahead, and which
    /// hours have ended for the rollups, all read from it as it moves on;
    /// a clock set ahead of the system's also ages other drains' claims by
    /// as much (PostgreSQL's clock still measures them).
    pub now: Option<time::OffsetDateTime>,
}

/// The run's wall clock: the system's, or the time a test told it, moving
/// on with the run.
#[derive(Debug, Clone, Copy)]
struct Wall {
    at: time::OffsetDateTime,
    start: Instant,
}

impl Wall {
    fn new(at: Option<time::OffsetDateTime>) -> Wall {
        Wall {
            at: at.unwrap_or_else(time::OffsetDateTime::now_utc),
            start: Instant::now(),
        }
    }

    fn now(&self) -> time::OffsetDateTime {
        self.at + self.start.elapsed()
    }

    /// How far this clock runs ahead of the system's (zero unless a test
    /// set it ahead): claims are that much older to it.
    fn ahead(&self) -> Duration {
        Duration::try_from(self.now() - time::OffsetDateTime::now_utc()).unwrap_or_default()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: DEFAULT_BATCH_SIZE,
            batch_bytes: DEFAULT_BATCH_BYTES,
            claim_timeout: DEFAULT_CLAIM_TIMEOUT,
            max_messages: None,
            max_duration: None,
            deadline: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_age: decode::DEFAULT_MAX_AGE,
            now: None,
        }
    }
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub consumed: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    /// Run records of the run ledger stored in `runs`.
    pub runs: u64,
    /// Records the broker deleted (retention) before a drain reached them.
    pub expired: u64,
    /// Records waiting when the run started (the consumer lag it drains).
    pub lag: u64,
    /// Partitions this run drained, and the topic's partitions.
    pub partitions: usize,
    pub topic_partitions: usize,
    pub seconds: f64,
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
    let end_by = Deadline::new(start, options.deadline);
    let mut summary = Summary::default();
    // The last guard: whatever is still waiting at the deadline is dropped.
    // It fires halfway between the run's end and the deadline, so that
    // the waits bounded by that end (connecting, say) fail first and say
    // what they were waiting for.
    let guard = Deadline {
        end: end_by
            .end
            .zip(options.deadline)
            .map(|(end, d)| end + (start + d).saturating_duration_since(end) / 2),
    };
    let outcome = guard
        .within(
            "the drain",
            drain(settings, options, end_by, &mut summary, shutdown),
        )
        .await;
    summary.seconds = start.elapsed().as_secs_f64();
    telemetry::summary(settings.log_format, &summary);
    outcome.map(|()| summary)
}

/// The run's hard end (`--deadline`, less a moment to exit): every wait
/// after the start is bounded by it.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    end: Option<Instant>,
}

impl Deadline {
    fn new(start: Instant, deadline: Option<Duration>) -> Deadline {
        Deadline {
            // Less a tenth (at most 1 s) to exit; consuming stops earlier
            // (a fifth, at most 5 s), so the last batch has time to store.
            end: deadline.map(|d| start + d - (d / 10).min(Duration::from_secs(1))),
        }
    }

    /// `limit`, or less when the deadline is nearer.
    fn bound(&self, limit: Duration) -> Duration {
        match self.end {
            Some(end) => limit
                .min(end.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1)),
            None => limit,
        }
    }

    /// Runs `work`, failing with exit 1 if the deadline comes first.
    async fn within<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match self.end {
            None => work.await,
            Some(end) => tokio::time::timeout_at(end.into(), work)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Job(anyhow!(
                        "{what} did not finish by the deadline: stopped with nothing committed past the stored rows"
                    )))
                }),
        }
    }
}

/// How this drain shows in `pg_stat_activity` (at most 63 bytes).
fn application_name(location: &str) -> String {
    let mut name = format!("sitewatch drain {location} pid {}", std::process::id());
    while name.len() > 63 {
        name.pop();
    }
    name
}

async fn drain(
    settings: &Settings,
    options: &Options,
    end_by: Deadline,
    summary: &mut Summary,
    shutdown: impl std::future::Future<Output = &'static str>,
) -> Result<()> {
    let start = Instant::now();
    let k = &settings.kafka;
    let claim = options.claim_timeout;
    let (db, more_db) = connect(settings, options, end_by).await?;
    // Today's and tomorrow's partitions, ahead of need.
    let wall = Wall::new(options.now);
    let today = wall.now().date().to_julian_day();
    let learned = Arc::new(store::Learned::default());
    store::ensure_partitions(&db, &learned, [today, today + 1].into(), true).await?;
    let consumer = new_consumer(k)?;
    let kafka_wait = || end_by.bound(Duration::from_secs(10));

    let partitions = blocking(|| topic_partitions(&consumer, k, kafka_wait())).await?;
    summary.topic_partitions = partitions.len();
    let claims = Claims {
        timeout: claim,
        aged_by: wall.ahead(),
    };
    let owned = claim_partitions(&db, k, &partitions, claims).await?;
    summary.partitions = owned.len();
    if owned.is_empty() {
        return every_partition_claimed(&db, k, &partitions, claims).await;
    }
    let offsets = start_offsets(&db, &consumer, k, &owned, kafka_wait()).await?;
    let mut writers = vec![Writer::new(
        db,
        options.batch_size,
        Arc::clone(&learned),
        wall,
    )];
    for db in more_db.into_iter().take(owned.len() - 1) {
        let db = db.await.map_err(|e| Error::Job(anyhow!("{e}")))??;
        writers.push(Writer::new(
            db,
            options.batch_size,
            Arc::clone(&learned),
            wall,
        ));
    }
    let state =
        blocking(|| assign(&consumer, k, &offsets, writers.len(), kafka_wait(), summary)).await?;
    let mut run = Consuming {
        settings,
        options,
        consumer: &consumer,
        state,
        writers,
        window: decode::Window::new(wall.now(), options.max_age),
        end_by,
        stop_at: stop_consuming_at(options, start),
        summary,
    };
    run.consume(shutdown).await?;
    run.finish(wall).await
}

/// The first writer's connection, and the others' opening meanwhile
/// (while Kafka is set up).
async fn connect(
    settings: &Settings,
    options: &Options,
    end_by: Deadline,
) -> Result<(
    tokio_postgres::Client,
    Vec<tokio::task::JoinHandle<Result<tokio_postgres::Client>>>,
)> {
    let claim = options.claim_timeout;
    let session = store::Session {
        application_name: application_name(&settings.location),
        connect_timeout: end_by.bound(store::DEFAULT_CONNECT_TIMEOUT),
        limits: Some(store::Limits {
            idle: claim,
            statement: end_by.bound(claim),
            lock: end_by.bound(claim / 2),
        }),
    };
    let connector = store::Connector::new(&settings.database, &session)?;
    let more_db: Vec<_> = (1..WRITERS)
        .map(|_| {
            let connector = connector.clone();
            tokio::spawn(async move {
                let db = connector.connect().await?;
                store::prepare(&db).await?;
                Ok::<_, Error>(db)
            })
        })
        .collect();
    let db = connector.connect().await?;
    store::prepare(&db).await?;
    Ok((db, more_db))
}

/// Where each owned partition starts: after its last stored record
/// (PostgreSQL), or where Kafka's group offsets say for a partition the
/// database never stored (None: from its beginning).
async fn start_offsets(
    db: &tokio_postgres::Client,
    consumer: &DrainConsumer,
    k: &crate::config::KafkaSettings,
    owned: &[i32],
    wait: Duration,
) -> Result<Vec<(i32, Option<i64>)>> {
    let from_db = store::next_offsets(db, &k.group, &k.topic).await?;
    let missing: Vec<i32> = owned
        .iter()
        .copied()
        .filter(|p| !from_db.contains_key(p))
        .collect();
    let from_kafka = if missing.is_empty() {
        BTreeMap::new()
    } else {
        blocking(|| committed(consumer, &k.topic, &missing, wait)).await?
    };
    Ok(owned
        .iter()
        .map(|p| (*p, from_db.get(p).or(from_kafka.get(p)).copied()))
        .collect())
}

/// When to stop consuming: at --max-duration, or early enough before
/// --deadline to store the last batch (a fifth of it, at most 5 s).
fn stop_consuming_at(options: &Options, start: Instant) -> Option<Instant> {
    [
        options.max_duration,
        options
            .deadline
            .map(|d| d - (d / 5).min(Duration::from_secs(5))),
    ]
    .into_iter()
    .flatten()
    .min()
    .map(|d| start + d)
}

/// A drain once its partitions are assigned: the records taken into their
/// writers' batches until every partition is done or the run must stop,
/// then the rest stored and the offsets committed.
struct Consuming<'a> {
    settings: &'a Settings,
    options: &'a Options,
    consumer: &'a Detached,
    state: BTreeMap<i32, Partition>,
    writers: Vec<Writer>,
    window: decode::Window,
    end_by: Deadline,
    stop_at: Option<Instant>,
    summary: &'a mut Summary,
}

impl Consuming<'_> {
    async fn consume(
        &mut self,
        shutdown: impl std::future::Future<Output = &'static str>,
    ) -> Result<()> {
        tokio::pin!(shutdown);
        let heartbeat = self.options.claim_timeout / 3;
        let mut last_heard = Instant::now();
        while self.should_go_on() {
            let now = Instant::now();
            for writer in &mut self.writers {
                writer.keep_alive(now, heartbeat, self.end_by).await?;
            }
            let wait = self.stop_at.map_or(Duration::from_millis(200), |d| {
                (d - now).min(Duration::from_millis(200))
            });
            let received = tokio::select! {
                received = tokio::time::timeout(wait, self.consumer.recv()) => received,
                signal = &mut shutdown => {
                    tracing::info!(signal, "stopping: storing what was consumed; the rest stays for the next run");
                    break;
                }
            };
            let message = match received {
                Err(_) => {
                    self.quiet(last_heard).await?;
                    continue;
                }
                Ok(Err(KafkaError::PartitionEOF(p))) => {
                    last_heard = Instant::now();
                    if let Some(s) = self.state.get_mut(&p) {
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
            let taken = take(
                &message,
                &mut self.state,
                &mut self.writers,
                &self.window,
                self.summary,
                self.options,
            );
            match taken {
                Taken::Kept => {}
                Taken::Ended => pause(
                    self.consumer,
                    &self.settings.kafka.topic,
                    message.partition(),
                ),
                Taken::Full(w) => self.submit(w).await?,
            }
        }
        Ok(())
    }

    /// Whether to read another record: not when every partition is done,
    /// --max-messages are consumed or the time is up.
    fn should_go_on(&self) -> bool {
        if self.state.values().all(|s| s.done) {
            return false;
        }
        let consumed = self.summary.consumed;
        if self.options.max_messages.is_some_and(|max| consumed >= max) {
            tracing::info!(
                consumed,
                "--max-messages reached: the rest stays for the next run"
            );
            return false;
        }
        if self.stop_at.is_some_and(|d| Instant::now() >= d) {
            tracing::info!("time is up: the rest stays for the next run");
            return false;
        }
        true
    }

    /// No record for a while: store what is waiting, and give up on a
    /// silent broker.
    async fn quiet(&mut self, last_heard: Instant) -> Result<()> {
        self.submit_waiting().await?;
        let idle = self.options.idle_timeout;
        if last_heard.elapsed() >= idle {
            return Err(Error::Job(anyhow!(self.consumer.context().explain(format!(
                "no message and no end of partition from {} for {}: stopped with the rest left for the next run",
                self.settings.kafka.brokers,
                humantime::format_duration(idle)
            )))));
        }
        Ok(())
    }

    /// Submits every writer's batch that holds records.
    async fn submit_waiting(&mut self) -> Result<()> {
        for w in 0..self.writers.len() {
            if !self.writers[w].batch.is_empty() {
                self.submit(w).await?;
            }
        }
        Ok(())
    }

    async fn submit(&mut self, writer: usize) -> Result<()> {
        self.writers[writer]
            .submit(self.consumer, self.settings, self.summary, self.end_by)
            .await
    }

    /// Stores what is left, commits the stored offsets to Kafka too, and
    /// folds the rollups of the hours that ended.
    async fn finish(mut self, wall: Wall) -> Result<()> {
        let topic = &self.settings.kafka.topic;
        self.submit_waiting().await?;
        let mut stored = TopicPartitionList::new();
        for writer in &mut self.writers {
            writer
                .finish(self.consumer, self.summary, self.end_by)
                .await?;
            for (&p, &next) in &writer.committed {
                stored
                    .add_partition_offset(topic, p, Offset::Offset(next))
                    .context("cannot build the offsets to commit")?;
            }
        }
        mirror_offsets(self.consumer, stored, self.end_by).await;
        let mut rolled = rollup::Written::default();
        for writer in &mut self.writers {
            rolled.merge(std::mem::take(&mut writer.rolled));
        }
        if let Some(db) = self.writers[0].idle.as_mut() {
            fold_rollups(db, &rolled, wall.now(), self.end_by).await;
        }
        Ok(())
    }
}

/// Runs a blocking librdkafka call without stalling the runtime.
async fn blocking<T>(f: impl FnOnce() -> anyhow::Result<T>) -> Result<T> {
    tokio::task::block_in_place(f).map_err(Error::Job)
}

impl telemetry::JobSummary for Summary {
    const JOB: &'static str = "drain";

    fn line(&self) -> String {
        let mut text = format!(
            "drain: {} consumed, {} stored, {} duplicates skipped, {} dead letters, {} run records in {:.2} s ({} of {} partitions)",
            self.consumed,
            self.stored,
            self.duplicates,
            self.dead_letters,
            self.runs,
            self.seconds,
            self.partitions,
            self.topic_partitions
        );
        if self.expired > 0 {
            text += &format!(
                "; {} records were deleted by retention before any drain reached them",
                self.expired
            );
        }
        text
    }
}
