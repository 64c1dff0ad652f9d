//! drain's batches: checks, run records, dead letters and the partitions'
//! next offsets, stored in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::Context as _;
use time::OffsetDateTime;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;

use crate::history::rollup::Rollup;
use crate::message::Check;

use super::{columns, db_error, is_data_error};

/// The longest dead-letter reason kept: enough for any error, short enough
/// that a reason quoting a hostile payload stays small.
pub const MAX_REASON_CHARS: usize = 500;

/// `text` as PostgreSQL can store it in a `text` column: control
/// characters escaped, at most [`MAX_REASON_CHARS`] characters.
pub fn storable(text: &str) -> String {
    let mut out: String = crate::escape::controls(text)
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    if out.chars().count() == MAX_REASON_CHARS {
        out.push('…');
    }
    out
}

/// A Kafka record that cannot be a check.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub reason: String,
}

/// A check and where it was on the topic.
#[derive(Debug, Clone)]
pub struct Located {
    pub check: Check,
    pub partition: i32,
    pub offset: i64,
}

/// A run record of the run ledger and where it was read.
#[derive(Debug, Clone)]
pub struct LocatedRun {
    pub run: crate::message::RunRecord,
    pub partition: i32,
    pub offset: i64,
}

/// What one transaction stores.
#[derive(Debug, Default)]
pub struct Batch {
    pub checks: Vec<Located>,
    pub runs: Vec<LocatedRun>,
    pub dead: Vec<DeadLetter>,
    /// The next offset to read, per partition, once this batch is stored.
    pub next_offsets: BTreeMap<i32, i64>,
    /// Payload bytes in the batch: batches are bounded by bytes too.
    pub bytes: usize,
}

impl Batch {
    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.checks.len() + self.runs.len() + self.dead.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What storing a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    pub inserted: u64,
    /// Checks whose `check_id` was already stored.
    pub duplicates: u64,
    pub dead_letters: u64,
    /// Run records stored (or already there).
    pub runs: u64,
    /// The rollup chunk of ended hours the batch wrote.
    pub rolled: crate::history::rollup::Written,
}

/// Stores a batch in one transaction: checks (a known `check_id` is
/// skipped), dead letters, and the partitions' next offsets, each with one
/// statement whatever the batch size. Needs [`prepare`] on the connection.
///
/// When PostgreSQL refuses the batch for its data (a value it cannot store,
/// an index row too large: SQLSTATE classes 22 and 23, and 54000), the
/// batch is stored again with the culprits isolated: each refused check
/// becomes a dead letter with PostgreSQL's reason, the rest is stored, all
/// in one transaction. One bad record can then never stall a partition,
/// whatever the error; and the common path pays nothing for it.
pub async fn store(
    client: &mut Client,
    learned: &Learned,
    group: &str,
    topic: &str,
    batch: &Batch,
    now: OffsetDateTime,
) -> anyhow::Result<Stored> {
    ensure_partitions(client, learned, days_of(&batch.checks), true).await?;
    let mut how = Insert::choose(learned);
    let mut remade = false;
    // Each cause of a retry at most once, whichever comes first: at most
    // three attempts.
    let outcome = loop {
        let outcome = store_at_once(client, group, topic, batch, how, now).await;
        match &outcome {
            // A check already stored: the batch again, skipping known checks.
            Err(e) if how == Insert::Direct && is_duplicate(e) => how = Insert::SkippingKnown,
            // A partition this process created was dropped since (`prune`,
            // or by hand): create it again rather than dead-letter its checks.
            Err(e) if !remade && is_missing_partition(e) => {
                ensure_partitions(client, learned, days_of(&batch.checks), false).await?;
                remade = true;
            }
            _ => break outcome,
        }
    };
    if how == Insert::SkippingKnown {
        Insert::after_skipping(learned, outcome.as_ref().is_ok_and(|s| s.duplicates > 0));
    }
    match outcome {
        Err(e) if is_data_error(&e) => {
            tracing::warn!(error = %format!("{e:#}"), "PostgreSQL refused a batch for its data: isolating the records it refuses");
            store_isolating(client, group, topic, batch, now).await
        }
        other => other,
    }
}

/// How a batch's checks go into `checks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Insert {
    /// Binary COPY straight into `checks`: the whole batch or, should one
    /// check be stored already, nothing (the batch is then stored again
    /// [`Insert::SkippingKnown`]). The common case: a check is published
    /// once, and drained once.
    Direct,
    /// Binary COPY into a staging table, then `INSERT ... ON CONFLICT DO
    /// NOTHING`: a known check is skipped, at a cost (docs/src/decisions.md,
    /// PostgreSQL).
    SkippingKnown,
}

/// What one job learned of the database while storing, shared by its
/// writers (one per drain run, never global).
#[derive(Debug, Default)]
pub struct Learned {
    /// The UTC days (Julian day numbers) whose `checks` partitions are
    /// known to exist.
    days: crate::history::partitions::KnownDays,
    /// Batches still to store skipping known checks: set when a batch met
    /// checks already stored, so that a topic full of duplicates (a
    /// producer that retries often, a replay) does not pay for a failed
    /// COPY per batch.
    skip_known_for: std::sync::atomic::AtomicU32,
}

/// Batches stored skipping known checks after one met a duplicate.
const SKIP_KNOWN_BATCHES: u32 = 16;

impl Insert {
    fn choose(learned: &Learned) -> Insert {
        if learned
            .skip_known_for
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            Insert::SkippingKnown
        } else {
            Insert::Direct
        }
    }

    /// After a batch stored skipping known checks: start over when it met
    /// duplicates, else count down to [`Insert::Direct`].
    fn after_skipping(learned: &Learned, met_duplicates: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let left = &learned.skip_known_for;
        if met_duplicates {
            left.store(SKIP_KNOWN_BATCHES, Relaxed);
        } else {
            let _ = left.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
    }
}

/// Whether a batch failed on a check already stored (or twice in it).
fn is_duplicate(error: &anyhow::Error) -> bool {
    db_error(error)
        .is_some_and(|db| *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// The UTC days (Julian day numbers) the checks fall on.
fn days_of(checks: &[Located]) -> BTreeSet<i32> {
    checks
        .iter()
        .map(|l| {
            l.check
                .started_at
                .to_offset(time::UtcOffset::UTC)
                .date()
                .to_julian_day()
        })
        .collect()
}

/// Creates the day partitions of `checks` (UTC days, as Julian day numbers)
/// that are missing ([`crate::history::partitions`]). With `trust_known`,
/// days `learned` already holds are not asked again.
pub async fn ensure_partitions(
    client: &Client,
    learned: &Learned,
    days: BTreeSet<i32>,
    trust_known: bool,
) -> anyhow::Result<()> {
    learned.days.ensure(client, days, trust_known).await
}

/// Whether a batch failed because a day has no partition.
fn is_missing_partition(error: &anyhow::Error) -> bool {
    db_error(error).is_some_and(|db| {
        db.code().code() == "23514" && db.message().starts_with("no partition of relation")
    })
}

async fn store_at_once(
    client: &mut Client,
    group: &str,
    topic: &str,
    batch: &Batch,
    how: Insert,
    now: OffsetDateTime,
) -> anyhow::Result<Stored> {
    let tx = client
        .transaction()
        .await
        .context("cannot begin a transaction")?;
    let mut rollup = Rollup::default();
    let inserted = insert_checks(&tx, topic, &batch.checks, &mut rollup, how).await?;
    insert_runs(&tx, topic, &batch.runs).await?;
    let dead_letters = insert_dead_letters(&tx, topic, &batch.dead).await?;
    let rolled = crate::history::rollup::insert_chunk(&tx, rollup, now).await?;
    record_offsets(&tx, group, topic, batch).await?;
    tx.commit().await.context("cannot commit the batch")?;
    Ok(Stored {
        inserted,
        duplicates: batch.checks.len() as u64 - inserted,
        dead_letters,
        runs: batch.runs.len() as u64,
        rolled,
    })
}

/// The batch again, each half under a savepoint, halving what PostgreSQL
/// refuses down to single records, which become dead letters.
async fn store_isolating(
    client: &mut Client,
    group: &str,
    topic: &str,
    batch: &Batch,
    now: OffsetDateTime,
) -> anyhow::Result<Stored> {
    let tx = client
        .transaction()
        .await
        .context("cannot begin a transaction")?;
    let mut dead = batch.dead.clone();
    let mut inserted = 0;
    let mut stored_checks = 0;
    let mut rollup = Rollup::default();
    let mut parts: Vec<&[Located]> = vec![&batch.checks];
    while let Some(part) = parts.pop() {
        tx.batch_execute("SAVEPOINT part").await?;
        let mut part_rollup = Rollup::default();
        match insert_checks(&tx, topic, part, &mut part_rollup, Insert::SkippingKnown).await {
            Ok(n) => {
                tx.batch_execute("DELETE FROM staging_checks; RELEASE SAVEPOINT part")
                    .await?;
                rollup.merge(part_rollup);
                inserted += n;
                stored_checks += part.len() as u64;
            }
            Err(e) if is_data_error(&e) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT part; RELEASE SAVEPOINT part")
                    .await?;
                if let [one] = part {
                    let reason = match db_error(&e) {
                        Some(db) => format!(
                            "PostgreSQL refused it: {} (SQLSTATE {})",
                            db.message(),
                            db.code().code()
                        ),
                        None => format!("PostgreSQL refused it: {e:#}"),
                    };
                    let reason = storable(&reason);
                    tracing::warn!(partition = one.partition, offset = one.offset, %reason, "a check became a dead letter");
                    dead.push(DeadLetter {
                        partition: one.partition,
                        offset: one.offset,
                        key: Some(one.check.site.as_bytes().to_vec()),
                        // The check as decoded: its raw bytes were not kept,
                        // to spare the common path a copy of every payload.
                        payload: Some(one.check.to_json()),
                        reason,
                    });
                } else {
                    let (first, second) = part.split_at(part.len() / 2);
                    parts.push(second);
                    parts.push(first);
                }
            }
            Err(e) => return Err(e),
        }
    }
    let mut runs = 0;
    for run in &batch.runs {
        tx.batch_execute("SAVEPOINT run").await?;
        match insert_runs(&tx, topic, std::slice::from_ref(run)).await {
            Ok(()) => {
                tx.batch_execute("RELEASE SAVEPOINT run").await?;
                runs += 1;
            }
            Err(e) if is_data_error(&e) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT run; RELEASE SAVEPOINT run")
                    .await?;
                dead.push(DeadLetter {
                    partition: run.partition,
                    offset: run.offset,
                    key: Some(format!("run/{}", run.run.location).into_bytes()),
                    payload: Some(run.run.to_json()),
                    reason: storable(&format!("PostgreSQL refused a run record: {e:#}")),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let dead_letters = insert_dead_letters(&tx, topic, &dead).await?;
    let rolled = crate::history::rollup::insert_chunk(&tx, rollup, now).await?;
    record_offsets(&tx, group, topic, batch).await?;
    tx.commit().await.context("cannot commit the batch")?;
    Ok(Stored {
        inserted,
        duplicates: stored_checks - inserted,
        dead_letters,
        runs,
        rolled,
    })
}

/// Stores run records in `runs`, each once.
async fn insert_runs(
    tx: &tokio_postgres::Transaction<'_>,
    topic: &str,
    runs: &[LocatedRun],
) -> anyhow::Result<()> {
    for l in runs {
        let r = &l.run;
        tx.execute(
            "INSERT INTO runs (run_id, job, location, shard, tick_s, started_at, finished_at,
                 sites_due, checked, published, outcome, kafka_topic, kafka_partition, kafka_offset,
                 answered)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (run_id) DO NOTHING",
            &[
                &r.run_id,
                &r.job,
                &r.location,
                &r.shard,
                &r.tick_s,
                &r.started_at,
                &r.finished_at,
                &(r.sites_due as i32),
                &(r.checked as i32),
                &(r.published as i32),
                &r.outcome,
                &topic,
                &l.partition,
                &l.offset,
                &r.answered.map(|a| a as i64),
            ],
        )
        .await
        .context("cannot insert a run record")?;
    }
    Ok(())
}

async fn insert_dead_letters(
    tx: &tokio_postgres::Transaction<'_>,
    topic: &str,
    dead: &[DeadLetter],
) -> anyhow::Result<u64> {
    if dead.is_empty() {
        return Ok(0);
    }
    let partitions: Vec<i32> = dead.iter().map(|d| d.partition).collect();
    let offsets: Vec<i64> = dead.iter().map(|d| d.offset).collect();
    let keys: Vec<Option<&[u8]>> = dead.iter().map(|d| d.key.as_deref()).collect();
    let payloads: Vec<Option<&[u8]>> = dead.iter().map(|d| d.payload.as_deref()).collect();
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    tx.execute(
        "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, key, payload, reason)
         SELECT $1, * FROM UNNEST($2::integer[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[])
         ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING",
        &[&topic, &partitions, &offsets, &keys, &payloads, &reasons],
    )
    .await
    .context("cannot insert dead letters")
}

async fn record_offsets(
    tx: &tokio_postgres::Transaction<'_>,
    group: &str,
    topic: &str,
    batch: &Batch,
) -> anyhow::Result<()> {
    let partitions: Vec<i32> = batch.next_offsets.keys().copied().collect();
    let next: Vec<i64> = batch.next_offsets.values().copied().collect();
    tx.execute(
        "INSERT INTO drain_offsets (kafka_group, kafka_topic, kafka_partition, next_offset)
         SELECT $1, $2, * FROM UNNEST($3::integer[], $4::bigint[])
         ON CONFLICT (kafka_group, kafka_topic, kafka_partition)
         DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
        &[&group, &topic, &partitions, &next],
    )
    .await
    .context("cannot record the partition offsets")?;
    Ok(())
}

/// The staging table `store` copies into: one per session, emptied at every
/// commit. Call once per connection before `store`.
pub async fn prepare(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS staging_checks (LIKE checks INCLUDING DEFAULTS)
             ON COMMIT DELETE ROWS",
        )
        .await
        .context("cannot create the staging table (did `sitewatch migrate` run?)")
}

/// The checks, [`Insert::Direct`] or [`Insert::SkippingKnown`]: binary
/// COPY, then (skipping known checks) one `INSERT ... SELECT` from the
/// staging table, rather than `INSERT ... SELECT FROM UNNEST(...)`
/// (docs/src/decisions.md, PostgreSQL). Adds the checks it inserted (not
/// the skipped ones) to
/// `rollup`.
async fn insert_checks(
    tx: &tokio_postgres::Transaction<'_>,
    topic: &str,
    checks: &[Located],
    rollup: &mut Rollup,
    how: Insert,
) -> anyhow::Result<u64> {
    if checks.is_empty() {
        return Ok(0);
    }
    let table = match how {
        Insert::Direct => "checks",
        Insert::SkippingKnown => "staging_checks",
    };
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN BINARY",
            columns::names()
        ))
        .await
        .context("cannot start copying checks")?;
    let writer = BinaryCopyInWriter::new(sink, &columns::types());
    futures::pin_mut!(writer);
    // In the order of the index by site: each insert then lands beside the
    // one before, not on a random page (docs/src/decisions.md, PostgreSQL).
    let mut sorted: Vec<&Located> = checks.iter().collect();
    sorted.sort_unstable_by(|a, b| {
        (&a.check.site, b.check.started_at).cmp(&(&b.check.site, a.check.started_at))
    });
    for l in sorted {
        let row = columns::CheckRow::new(&l.check, topic, l.partition, l.offset);
        writer
            .as_mut()
            .write(&row.values())
            .await
            .context("cannot copy checks")?;
    }
    writer.finish().await.context("cannot copy checks")?;
    if how == Insert::Direct {
        for l in checks {
            rollup.add(&l.check);
        }
        return Ok(checks.len() as u64);
    }
    // One row back: how many were inserted, and which only when some were
    // not (duplicates are rare; a row per check costs drain CPU).
    let n = checks.len() as i64;
    let row = tx
        .query_one(
            "WITH inserted AS (
                 INSERT INTO checks SELECT * FROM staging_checks
                 ON CONFLICT (started_at, check_id) DO NOTHING RETURNING started_at, check_id
             )
             SELECT count(*),
                    CASE WHEN count(*) < $1 THEN array_agg(started_at) END,
                    CASE WHEN count(*) < $1 THEN array_agg(check_id) END
             FROM inserted",
            &[&n],
        )
        .await
        .context("cannot insert checks")?;
    let inserted: i64 = row.get(0);
    if inserted == n {
        for l in checks {
            rollup.add(&l.check);
        }
    } else {
        let times: Vec<time::OffsetDateTime> = row.get::<_, Option<_>>(1).unwrap_or_default();
        let ids: Vec<uuid::Uuid> = row.get::<_, Option<_>>(2).unwrap_or_default();
        let mut inserted_keys: HashSet<(time::OffsetDateTime, uuid::Uuid)> =
            times.into_iter().zip(ids).collect();
        // A check twice in one batch is inserted once: count it once.
        for l in checks {
            if inserted_keys.remove(&(l.check.started_at, l.check.check_id)) {
                rollup.add(&l.check);
            }
        }
    }
    Ok(inserted as u64)
}
