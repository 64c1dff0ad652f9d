//! The consumer: its configuration, the topic's partitions, where each
//! starts and ends in this run, and each record into its writer's batch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::Result;
use crate::kafka;

use super::Summary;

pub(super) type DrainConsumer = StreamConsumer<kafka::Context>;

/// Where one owned partition stands.
#[derive(Debug)]
pub(super) struct Partition {
    /// The high watermark at the start, when it is above the start offset.
    pub(super) bound: Option<i64>,
    pub(super) done: bool,
    /// The writer that stores this partition's records.
    pub(super) writer: usize,
}

/// Whether a record is past the end of this run: at or beyond the high
/// watermark read at the start. A busy topic cannot keep a drain running;
/// what is written meanwhile is the next run's.
pub(super) fn past_end(offset: i64, bound: Option<i64>) -> bool {
    bound.is_some_and(|b| offset >= b)
}

/// Records between where a partition was left and its low watermark: the
/// broker deleted them (retention) before any drain reached them.
pub(super) fn expired(next: Option<i64>, low: i64) -> u64 {
    next.map_or(0, |next| u64::try_from(low - next).unwrap_or(0))
}

/// The consumer, closed on a thread of its own when the run ends: closing
/// waits for the broker, which may not answer, and a run must end on time.
pub(super) struct Detached(pub(super) Option<Arc<DrainConsumer>>);

impl std::ops::Deref for Detached {
    type Target = DrainConsumer;
    fn deref(&self) -> &DrainConsumer {
        self.0.as_ref().expect("the consumer lives until the drop")
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            consumer.context().silence();
            std::thread::spawn(move || drop(consumer));
        }
    }
}

/// How long the broker may hold a fetch that finds nothing new: an empty
/// partition reports its end only after this wait, so short keeps an idle
/// drain fast and a busy one quick at each partition's end; a fetch that
/// finds records is answered at once whatever the wait
/// (docs/src/decisions.md, Kafka).
pub(super) const FETCH_WAIT: &str = "50";

/// The consumer.
pub(super) fn new_consumer(k: &crate::config::KafkaSettings) -> Result<Detached> {
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

/// Assigns each owned partition from where it was left (`offsets`; from
/// its low watermark when it was never read, or when retention deleted
/// records since, which are counted), to its end as of now, each to one of
/// `writers` in turn.
pub(super) fn assign(
    consumer: &DrainConsumer,
    k: &crate::config::KafkaSettings,
    offsets: &[(i32, Option<i64>)],
    writers: usize,
    wait: Duration,
    summary: &mut Summary,
) -> anyhow::Result<BTreeMap<i32, Partition>> {
    let mut assignment = TopicPartitionList::new();
    let mut state = BTreeMap::new();
    for (i, &(p, start_at)) in offsets.iter().enumerate() {
        let (low, high) = consumer
            .fetch_watermarks(&k.topic, p, wait)
            .with_context(|| format!("cannot read the watermarks of {}[{p}]", k.topic))?;
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
        summary.lag += u64::try_from(high - first).unwrap_or(0);
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
                writer: i % writers,
            },
        );
    }
    consumer
        .assign(&assignment)
        .context("cannot assign the partitions")?;
    Ok(state)
}

pub(super) fn pause(consumer: &DrainConsumer, topic: &str, partition: i32) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    if let Err(e) = consumer.pause(&tpl) {
        tracing::debug!(error = %e, partition, "cannot pause a finished partition");
    }
}

/// The topic's partitions, read within `wait`. The consumer says only that
/// a request timed out: over a secured connection, once a first short try
/// fails, a client that reports why asks alongside, and a refused login or
/// certificate ends the wait at once, named.
pub(super) fn topic_partitions(
    consumer: &DrainConsumer,
    k: &crate::config::KafkaSettings,
    wait: Duration,
) -> anyhow::Result<Vec<i32>> {
    const TRY: Duration = Duration::from_millis(250);
    let deadline = Instant::now() + wait;
    let mut why: Option<std::sync::mpsc::Receiver<Option<String>>> = None;
    let mut asked = false;
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
                if !asked && k.security_protocol.secured() {
                    asked = true;
                    let (tx, rx) = std::sync::mpsc::channel();
                    let (k, within) = (k.clone(), left);
                    std::thread::spawn(move || tx.send(kafka::diagnose(&k, within)));
                    why = Some(rx);
                }
                // Waiting for the answer paces the retries too (a failed
                // request can return at once).
                let left = deadline.saturating_duration_since(Instant::now());
                let answer = match &why {
                    Some(rx) => rx.recv_timeout(left.min(TRY)).ok(),
                    None => {
                        std::thread::sleep(left.min(TRY / 5));
                        None
                    }
                };
                match answer {
                    Some(Some(refused)) => return Err(failed(refused)),
                    // Reachable after all: the consumer's own retries decide.
                    Some(None) => why = None,
                    None => {}
                }
                if Instant::now() >= deadline {
                    return Err(failed(e.to_string()));
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
pub(super) fn committed(
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
