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
//! rebalance costs seconds (docs/src/decisions.md, Kafka).
//!
//! A claim cannot outlive a drain that stopped making progress: every drain
//! connection runs under server-side limits ([`store::Limits`]: idle,
//! idle-in-transaction and statement timeouts of `--claim-timeout`), and a
//! working drain touches its idle connections every third of that. A drain
//! that is frozen (SIGSTOP: its kernel still answers keepalives) or whose
//! host is gone stops touching them, the server ends its sessions, and the
//! locks go with them; the frozen drain, resumed, finds its connections
//! closed and stores nothing. A session the server cannot end by itself (a
//! COPY waiting for a frozen client is never cancelled) is ended by the next
//! drain once it has stayed in one state for 1.5 times the claim timeout.
//! Every wait is bounded by `--deadline`.

pub mod decode;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kafka;
use crate::message::Record;
use crate::rollup;
use crate::store::{self, Batch, DeadLetter, Located, LocatedRun};
use crate::telemetry;

/// Messages per transaction when not told otherwise: large enough that a
/// transaction's fixed cost is amortised, and that a batch's rollup chunk
/// holds several checks per site and hour (docs/src/decisions.md,
/// PostgreSQL); memory stays bounded by `--batch-bytes` too.
pub const DEFAULT_BATCH_SIZE: usize = 20_000;

/// Database connections that store batches at once, each for its own share
/// of the partitions (so that a partition's batches stay in order). Two keep
/// both cores of a small PostgreSQL busy; more only queue on the same CPUs.
pub const WRITERS: usize = 2;

/// A writer folds the rollup chunks of ended hours it holds once they
/// describe this many batches' worth of site-hours: a long backlog (days of
/// thousands of sites) is then folded as it is drained, and memory stays
/// bounded by the batch size rather than growing with the backlog. A
/// million checks of 10,000 sites over two hours hold 20,000 site-hours:
/// no fold before the end.
const FOLD_AFTER_BATCHES: usize = 4;

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
    /// hours have ended for the rollups, all read from it as it moves on.
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
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub consumed: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    /// Run records of the run ledger stored in `runs`.
    pub runs: u64,
    /// Records the broker deleted (retention) before a drain reached them.
    pub expired: u64,
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
/// watermark read at the start. A busy topic cannot keep a drain running;
/// what is written meanwhile is the next run's.
fn past_end(offset: i64, bound: Option<i64>) -> bool {
    bound.is_some_and(|b| offset >= b)
}

/// Records between where a partition was left and its low watermark: the
/// broker deleted them (retention) before any drain reached them.
fn expired(next: Option<i64>, low: i64) -> u64 {
    next.map_or(0, |next| u64::try_from(low - next).unwrap_or(0))
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
    report(settings, &summary);
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

/// The consumer, closed on a thread of its own when the run ends: closing
/// waits for the broker, which may not answer, and a run must end on time.
struct Detached(Option<Arc<DrainConsumer>>);

impl std::ops::Deref for Detached {
    type Target = DrainConsumer;
    fn deref(&self) -> &DrainConsumer {
        self.0.as_ref().expect("the consumer lives until the drop")
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            std::thread::spawn(move || drop(consumer));
        }
    }
}

/// How long the broker may hold a fetch that finds nothing new: an empty
/// partition reports its end only after this wait, so short keeps an idle
/// drain fast and a busy one quick at each partition's end; a fetch that
/// finds records is answered at once whatever the wait
/// (docs/src/decisions.md, Kafka).
const FETCH_WAIT: &str = "50";

/// The consumer.
fn new_consumer(k: &crate::config::KafkaSettings) -> Result<Detached> {
    let consumer = kafka::client_config(k)
        .set("group.id", &k.group)
        .set("fetch.wait.max.ms", FETCH_WAIT)
        // Prefetch a few batches (a check is under 1 KiB), not librdkafka's
        // defaults (100,000 records and 64 MiB a partition): peak memory
        // then stays the same whatever the backlog, and whatever the
        // records weigh. Once below that, fetch again at once, not after
        // librdkafka's default second.
        .set("queued.min.messages", "10000")
        .set("queued.max.messages.kbytes", "8192")
        .set("fetch.max.bytes", "8388608")
        .set("fetch.queue.backoff.ms", "5")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create_with_context::<_, DrainConsumer>(kafka::Context::default())
        .map_err(|e| kafka::creation_error(k, "consumer", e))?;
    Ok(Detached(Some(Arc::new(consumer))))
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
    tokio::pin!(shutdown);
    let k = &settings.kafka;
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
    // The other writers' connections open while Kafka is set up.
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
    // Today's and tomorrow's partitions, ahead of need.
    let wall = Wall::new(options.now);
    let today = wall.now().date().to_julian_day();
    let learned = Arc::new(store::Learned::default());
    store::ensure_partitions(&db, &learned, [today, today + 1].into(), true).await?;
    let consumer = new_consumer(k)?;
    let kafka_wait = || end_by.bound(Duration::from_secs(10));

    let partitions = blocking(|| topic_partitions(&consumer, k, kafka_wait())).await?;
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
    let unowned: Vec<i32> = partitions
        .iter()
        .copied()
        .filter(|p| !owned.contains(p))
        .collect();
    if !unowned.is_empty() {
        owned.extend(take_over_stuck_claims(&db, k, &unowned, claim).await?);
    }
    owned.sort_unstable();
    summary.partitions = owned.len();
    if owned.is_empty() {
        return every_partition_claimed(&db, k, &partitions, claim).await;
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
        blocking(|| committed(&consumer, &k.topic, &missing, kafka_wait())).await?
    };
    let mut assignment = TopicPartitionList::new();
    let mut state = BTreeMap::new();
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
    for (i, &p) in owned.iter().enumerate() {
        let start_at = from_db.get(&p).or(from_kafka.get(&p)).copied();
        let (low, high) = blocking(|| {
            consumer
                .fetch_watermarks(&k.topic, p, kafka_wait())
                .with_context(|| format!("cannot read the watermarks of {}[{p}]", k.topic))
        })
        .await?;
        let lost = expired(start_at, low);
        if lost > 0 {
            summary.expired += lost;
            tracing::warn!(
                partition = p,
                expired = lost,
                to = low,
                "records were deleted by the topic's retention before they were drained: run drain more often, or keep the topic longer"
            );
        }
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
    let heartbeat = claim / 3;
    let window = decode::Window::new(wall.now(), options.max_age);
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
        for writer in &mut writers {
            writer.keep_alive(now, heartbeat, end_by).await?;
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
                        writer.submit(&consumer, settings, summary, end_by).await?;
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
        if s.done || past_end(offset, s.bound) {
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
        batch.bytes += message.payload_len() + message.key().map_or(0, <[u8]>::len);
        match decode::decode(message.payload(), &window) {
            Ok(Record::Check(check)) => batch.checks.push(Located {
                check,
                partition: p,
                offset,
            }),
            Ok(Record::Run(run)) => batch.runs.push(LocatedRun {
                run,
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
        if batch.len() >= options.batch_size || batch.bytes >= options.batch_bytes {
            writer.submit(&consumer, settings, summary, end_by).await?;
        }
    }
    for writer in &mut writers {
        if !writer.batch.is_empty() {
            writer.submit(&consumer, settings, summary, end_by).await?;
        }
    }
    let mut stored = TopicPartitionList::new();
    for writer in &mut writers {
        writer.finish(&consumer, summary, end_by).await?;
        for (&p, &next) in &writer.committed {
            stored
                .add_partition_offset(&k.topic, p, Offset::Offset(next))
                .context("cannot build the offsets to commit")?;
        }
    }
    mirror_offsets(&consumer, stored, end_by).await;
    let mut rolled = rollup::Written::default();
    for writer in &mut writers {
        rolled.merge(std::mem::take(&mut writer.rolled));
    }
    if let Some(db) = writers[0].idle.as_mut() {
        fold_rollups(db, &rolled, wall.now(), end_by).await;
    }
    Ok(())
}

/// Folds the rollup chunks of the hours that have ended. Its failure is
/// not the run's: the rows are stored, readers count unfolded chunks, and
/// the next run folds them.
async fn fold_rollups(
    db: &mut tokio_postgres::Client,
    own: &rollup::Written,
    now: time::OffsetDateTime,
    end_by: Deadline,
) {
    let hour = time::OffsetDateTime::from_unix_timestamp(rollup::hour_of(now)).unwrap_or(now);
    let folded = end_by
        .within("folding the rollups", async {
            rollup::fold(db, hour, own).await.map_err(Error::Job)
        })
        .await;
    match folded {
        Ok(f) => {
            tracing::debug!(
                chunks = f.chunks,
                hours = f.hours,
                days = f.days,
                "rollups folded"
            );
        }
        Err(e) => tracing::warn!(
            error = %e,
            "cannot fold the rollup chunks: reports still count them, and the next run folds them"
        ),
    }
}

/// How long a claimant may stay in one state before it counts as stuck:
/// the server ends idle sessions and cancels statements at the claim
/// timeout, so a session still there half as long again is one the server
/// cannot end by itself (a drain frozen in the middle of a COPY: PostgreSQL
/// does not cancel a statement waiting for its client's data; or a server
/// without `idle_session_timeout`).
fn stuck(c: &store::Claimant, claim: Duration) -> bool {
    c.seconds_in_state
        .is_some_and(|s| s > (claim + claim / 2).as_secs_f64())
}

/// Ends the sessions that hold these partitions while stuck, then claims
/// what they held. Returns the partitions taken over.
async fn take_over_stuck_claims(
    db: &tokio_postgres::Client,
    k: &crate::config::KafkaSettings,
    unowned: &[i32],
    claim: Duration,
) -> Result<Vec<i32>> {
    let claimants = store::claimants(db, &k.group, &k.topic, unowned).await?;
    let mut ended = 0;
    for c in claimants.iter().filter(|c| stuck(c, claim)) {
        tracing::warn!(
            topic = %k.topic, claimant = %describe_claimant(c),
            "ending a drain session that has made no progress for longer than the claim timeout"
        );
        match store::terminate(db, c.pid).await {
            Ok(true) => ended += 1,
            Ok(false) => tracing::warn!(pid = c.pid, "the session was already gone"),
            Err(e) => {
                tracing::warn!(pid = c.pid, error = %format!("{e:#}"), "cannot end the session")
            }
        }
    }
    let mut taken = Vec::new();
    if ended == 0 {
        return Ok(taken);
    }
    // An ended session releases its locks as it exits: try for a second.
    for _ in 0..20 {
        for &p in unowned {
            if !taken.contains(&p) && store::try_lock_partition(db, &k.group, &k.topic, p).await? {
                taken.push(p);
            }
        }
        if taken.len() == unowned.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(taken)
}

/// A claimant as a person reads it.
fn describe_claimant(c: &store::Claimant) -> String {
    format!(
        "pid {} ({}{}) holding partitions {:?}, connected since {}, {} since {}",
        c.pid,
        if c.application_name.is_empty() {
            "no application name"
        } else {
            &c.application_name
        },
        c.client
            .as_deref()
            .map(|a| format!(" from {a}"))
            .unwrap_or_default(),
        c.partitions,
        c.connected_at
            .map_or("?".to_owned(), |t| crate::message::rfc3339_ms::format(&t)),
        c.state.as_deref().unwrap_or("unknown"),
        c.state_since
            .map_or("?".to_owned(), |t| crate::message::rfc3339_ms::format(&t)),
    )
}

/// Every partition is claimed by other sessions: say by whom, and fail when
/// a claimant is stuck (see [`stuck`]) and could not be ended: a drain that
/// stores nothing must not report success for ever.
async fn every_partition_claimed(
    db: &tokio_postgres::Client,
    k: &crate::config::KafkaSettings,
    partitions: &[i32],
    claim: Duration,
) -> Result<()> {
    let claimants = store::claimants(db, &k.group, &k.topic, partitions).await?;
    for c in &claimants {
        tracing::warn!(topic = %k.topic, claimant = %describe_claimant(c), "every partition is being drained by another run");
    }
    if claimants.is_empty() {
        tracing::warn!(topic = %k.topic, "every partition is being drained by another run");
    }
    match claimants.iter().find(|c| stuck(c, claim)) {
        Some(c) => Err(Error::Job(anyhow!(
            "every partition of {} is claimed and no drain is making progress: {}, for longer than the claim timeout ({}), and it could not be ended; end it with SELECT pg_terminate_backend({})",
            k.topic,
            describe_claimant(c),
            humantime::format_duration(claim),
            c.pid
        ))),
        None => Ok(()),
    }
}

/// Mirrors the stored offsets to Kafka, for lag tools: bounded (5 s, or
/// less before the deadline), since PostgreSQL already holds the truth and
/// a broker without a group coordinator must not hold the job.
async fn mirror_offsets(consumer: &Detached, offsets: TopicPartitionList, end_by: Deadline) {
    if offsets.count() == 0 {
        return;
    }
    let consumer = Arc::clone(consumer.0.as_ref().expect("the consumer lives"));
    let commit = tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync));
    match tokio::time::timeout(end_by.bound(Duration::from_secs(5)), commit).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "cannot commit offsets to Kafka (PostgreSQL has them)");
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "the offset commit failed"),
        Err(_) => tracing::warn!(
            "Kafka did not confirm the offset commit in time (PostgreSQL has the offsets; lag tools will catch up on the next run)"
        ),
    }
}

/// Fills batches for its partitions and stores them on its own database
/// connection, in a task of its own, one at a time, while the loop consumes
/// and decodes the next one: PostgreSQL and the consumer work at the same
/// time. Memory stays bounded: per writer, one batch in the database, one
/// being filled, each bounded by count and by bytes.
struct Writer {
    /// What the run learned of the database, shared by its writers.
    learned: Arc<store::Learned>,
    wall: Wall,
    batch: Batch,
    /// Site-hours of ended hours at which [`Writer::rolled`] is folded.
    fold_at: usize,
    idle: Option<tokio_postgres::Client>,
    busy: Option<tokio::task::JoinHandle<Landed>>,
    /// When the connection last did something: a claim must look alive.
    last_used: Instant,
    /// The next offset of each partition stored so far, for the final
    /// mirror to Kafka.
    committed: BTreeMap<i32, i64>,
    /// The rollup chunks of ended hours its batches wrote, to fold.
    rolled: rollup::Written,
}

/// A batch back from the database: the connection, what was stored, the
/// offsets to mirror, and the writer's rollup chunks of ended hours with
/// the batch's added (added in the batch's task: on the loop's thread, this
/// was 7 % of drain's CPU).
struct Landed {
    db: tokio_postgres::Client,
    stored: anyhow::Result<store::Stored>,
    offsets: TopicPartitionList,
    rolled: rollup::Written,
}

impl Writer {
    fn new(
        db: tokio_postgres::Client,
        batch_size: usize,
        learned: Arc<store::Learned>,
        wall: Wall,
    ) -> Writer {
        Writer {
            learned,
            wall,
            batch: Batch::default(),
            fold_at: batch_size.saturating_mul(FOLD_AFTER_BATCHES),
            idle: Some(db),
            busy: None,
            last_used: Instant::now(),
            committed: BTreeMap::new(),
            rolled: rollup::Written::default(),
        }
    }

    /// Touches an idle connection that has not been used for `every` as of
    /// `now` (the loop's monotonic clock, read once per record), so the server's idle
    /// timeout never ends a working drain's session.
    async fn keep_alive(&mut self, now: Instant, every: Duration, end_by: Deadline) -> Result<()> {
        if now.saturating_duration_since(self.last_used) < every {
            return Ok(());
        }
        if let Some(db) = &self.idle {
            end_by
                .within("a keep-alive query", async {
                    db.batch_execute("SELECT 1").await.map_err(|e| {
                        Error::Job(
                            anyhow::Error::new(e).context(
                                "the database connection holding the partition claims failed",
                            ),
                        )
                    })
                })
                .await?;
        }
        self.last_used = Instant::now();
        Ok(())
    }

    /// Waits for the batch in the database, then hands this one over.
    async fn submit(
        &mut self,
        consumer: &DrainConsumer,
        settings: &Settings,
        summary: &mut Summary,
        end_by: Deadline,
    ) -> Result<()> {
        self.finish(consumer, summary, end_by).await?;
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
        let mut rolled = std::mem::take(&mut self.rolled);
        let (group, topic) = (k.group.clone(), k.topic.clone());
        let learned = Arc::clone(&self.learned);
        let wall = self.wall;
        self.busy = Some(tokio::spawn(async move {
            let now = wall.now();
            let mut stored = store::store(&mut db, &learned, &group, &topic, &batch, now).await;
            drop(batch);
            if let Ok(s) = &mut stored {
                rolled.merge(std::mem::take(&mut s.rolled));
            }
            Landed {
                db,
                stored,
                offsets,
                rolled,
            }
        }));
        Ok(())
    }

    /// Waits for the batch in the database, if any, until the deadline at
    /// the latest; once its transaction is committed, mirrors its offsets to
    /// Kafka (without waiting). A failed batch fails the run, and no later
    /// batch is stored.
    async fn finish(
        &mut self,
        consumer: &DrainConsumer,
        summary: &mut Summary,
        end_by: Deadline,
    ) -> Result<()> {
        let Some(busy) = self.busy.take() else {
            return Ok(());
        };
        let abort = busy.abort_handle();
        let outcome = end_by
            .within("storing a batch", async {
                busy.await.map_err(|e| Error::Job(anyhow!("{e}")))
            })
            .await;
        let Landed {
            db,
            stored,
            offsets,
            rolled,
        } = match outcome {
            Ok(done) => done,
            Err(e) => {
                // Dropping the connection rolls the transaction back.
                abort.abort();
                return Err(e);
            }
        };
        self.idle = Some(db);
        self.rolled = rolled;
        self.last_used = Instant::now();
        let stored = stored.context("a batch was not stored; no offset was committed for it")?;
        summary.stored += stored.inserted;
        summary.duplicates += stored.duplicates;
        summary.dead_letters += stored.dead_letters;
        summary.runs += stored.runs;
        for e in offsets.elements() {
            // Later batches of a partition come later: the last one wins.
            if let Offset::Offset(next) = e.offset() {
                self.committed.insert(e.partition(), next);
            }
        }
        // The database already holds the truth; Kafka's copy is for lag
        // tools, so a failure here is worth a warning, not a failed run.
        if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
            tracing::warn!(error = %e, "cannot commit offsets to Kafka (PostgreSQL has them)");
        }
        if self.rolled.ended.tallies.len() >= self.fold_at {
            // Folded chunks are gone from the table: whatever else holds
            // them (the other writer's, the final fold) reads the rest back.
            let rolled = std::mem::take(&mut self.rolled);
            if let Some(db) = self.idle.as_mut() {
                fold_rollups(db, &rolled, self.wall.now(), end_by).await;
            }
            self.last_used = Instant::now();
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

/// The topic's partitions, read within `wait`. The consumer says only that
/// a request timed out: over a secured connection, once a first short try
/// fails, a client that reports why asks alongside, and a refused login or
/// certificate ends the wait at once, named.
fn topic_partitions(
    consumer: &DrainConsumer,
    k: &crate::config::KafkaSettings,
    wait: Duration,
) -> anyhow::Result<Vec<i32>> {
    const TRY: Duration = Duration::from_millis(250);
    let deadline = Instant::now() + wait;
    let mut why: Option<std::sync::mpsc::Receiver<Option<String>>> = None;
    let failed = |why: String| {
        anyhow!(
            "cannot read the metadata of topic {} from {}: {why}",
            k.topic,
            k.brokers
        )
    };
    let metadata = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.fetch_metadata(Some(&k.topic), left.min(TRY)) {
            Ok(metadata) => break metadata,
            Err(e) => {
                if why.is_none() && k.security_protocol.secured() {
                    let (tx, rx) = std::sync::mpsc::channel();
                    let (k, within) = (k.clone(), left);
                    std::thread::spawn(move || tx.send(kafka::diagnose(&k, within)));
                    why = Some(rx);
                }
                if let Some(refused) = why.as_ref().and_then(|rx| rx.try_recv().ok()).flatten() {
                    return Err(failed(refused));
                }
                if Instant::now() >= deadline {
                    let said = why.and_then(|rx| rx.recv_timeout(TRY).ok().flatten());
                    return Err(failed(said.unwrap_or_else(|| e.to_string())));
                }
            }
        }
    };
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
    wait: Duration,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, wait)
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
    let mut text = format!(
        "drain: {} consumed, {} stored, {} duplicates skipped, {} dead letters, {} run records in {:.2} s ({} of {} partitions)",
        s.consumed,
        s.stored,
        s.duplicates,
        s.dead_letters,
        s.runs,
        s.seconds,
        s.partitions,
        s.topic_partitions
    );
    if s.expired > 0 {
        text += &format!(
            "; {} records were deleted by retention before any drain reached them",
            s.expired
        );
    }
    telemetry::summary(
        settings.log_format,
        &text,
        serde_json::json!({
            "job": "drain", "consumed": s.consumed, "stored": s.stored,
            "duplicates": s.duplicates, "dead_letters": s.dead_letters, "runs": s.runs,
            "seconds": s.seconds,
            "partitions": s.partitions, "topic_partitions": s.topic_partitions,
            "expired": s.expired,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::{expired, past_end};

    #[test]
    fn records_below_the_low_watermark_are_counted_as_expired() {
        assert_eq!(expired(Some(100), 250), 150);
        assert_eq!(expired(Some(300), 250), 0);
        assert_eq!(
            expired(None, 250),
            0,
            "a new partition starts at the low watermark"
        );
    }

    #[test]
    fn a_partition_ends_at_the_watermark_read_at_the_start() {
        assert!(!past_end(99, Some(100)));
        assert!(past_end(100, Some(100)));
        assert!(past_end(150, Some(100)));
        // An empty partition at the start: only its end of partition ends it.
        assert!(!past_end(10_000, None));
    }
}
