//! A writer: one database connection storing its share of the partitions'
//! batches, one in the database while the next is filled, folding the
//! rollups of ended hours and mirroring offsets to Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::history::rollup;
use crate::message::Record;
use crate::store::{self, Batch, DeadLetter, Located, LocatedRun};

use super::consumer::{Detached, DrainConsumer, Partition, past_end};
use super::{Deadline, Options, Summary, Wall, decode};

/// A writer folds the rollup chunks of ended hours it holds once they
/// describe this many batches' worth of site-hours: a long backlog (days of
/// thousands of sites) is then folded as it is drained, and memory stays
/// bounded by the batch size rather than growing with the backlog. A
/// million checks of 10,000 sites over two hours hold 20,000 site-hours:
/// no fold before the end.
pub(super) const FOLD_AFTER_BATCHES: usize = 4;

/// Folds the rollup chunks of the hours that have ended. Its failure is
/// not the run's: the rows are stored, readers count unfolded chunks, and
/// the next run folds them.
pub(super) async fn fold_rollups(
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

/// Mirrors the stored offsets to Kafka, for lag tools: bounded (5 s, or
/// less before the deadline), since PostgreSQL already holds the truth and
/// a broker without a group coordinator must not hold the job.
pub(super) async fn mirror_offsets(
    consumer: &Detached,
    offsets: TopicPartitionList,
    end_by: Deadline,
) {
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
pub(super) struct Writer {
    /// What the run learned of the database, shared by its writers.
    pub(super) learned: Arc<store::Learned>,
    pub(super) wall: Wall,
    pub(super) batch: Batch,
    /// Site-hours of ended hours at which [`Writer::rolled`] is folded.
    pub(super) fold_at: usize,
    pub(super) idle: Option<tokio_postgres::Client>,
    pub(super) busy: Option<tokio::task::JoinHandle<Landed>>,
    /// When the connection last did something: a claim must look alive.
    pub(super) last_used: Instant,
    /// The next offset of each partition stored so far, for the final
    /// mirror to Kafka.
    pub(super) committed: BTreeMap<i32, i64>,
    /// The rollup chunks of ended hours its batches wrote, to fold.
    pub(super) rolled: rollup::Written,
}

/// A batch back from the database: the connection, what was stored, the
/// offsets to mirror, and the writer's rollup chunks of ended hours with
/// the batch's added (added in the batch's task: on the loop's thread, this
/// was 7 % of drain's CPU).
pub(super) struct Landed {
    pub(super) db: tokio_postgres::Client,
    pub(super) stored: anyhow::Result<store::Stored>,
    pub(super) offsets: TopicPartitionList,
    pub(super) rolled: rollup::Written,
}

impl Writer {
    pub(super) fn new(
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
    pub(super) async fn keep_alive(
        &mut self,
        now: Instant,
        every: Duration,
        end_by: Deadline,
    ) -> Result<()> {
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
    pub(super) async fn submit(
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
    pub(super) async fn finish(
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

/// What became of a record.
pub(super) enum Taken {
    /// In its writer's batch, or not this run's to take.
    Kept,
    /// In its writer's batch, which is now full: that writer's index.
    Full(usize),
    /// The first record past its partition's end in this run: the
    /// partition is done now (the caller pauses it).
    Ended,
}

/// Puts one record into its partition's writer's batch (a check, a run
/// record or a dead letter), unless it is past this run's end, which marks
/// the partition done.
pub(super) fn take(
    message: &rdkafka::message::BorrowedMessage<'_>,
    state: &mut BTreeMap<i32, Partition>,
    writers: &mut [Writer],
    window: &decode::Window,
    summary: &mut Summary,
    options: &Options,
) -> Taken {
    let (p, offset) = (message.partition(), message.offset());
    let Some(s) = state.get_mut(&p) else {
        return Taken::Kept;
    };
    if s.done {
        return Taken::Kept;
    }
    if past_end(offset, s.bound) {
        // Past this run's end: the next run takes it.
        s.done = true;
        return Taken::Ended;
    }
    summary.consumed += 1;
    let batch = &mut writers[s.writer].batch;
    batch.bytes += message.payload_len() + message.key().map_or(0, <[u8]>::len);
    match decode::decode(message.payload(), window) {
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
        Taken::Full(s.writer)
    } else {
        Taken::Kept
    }
}
