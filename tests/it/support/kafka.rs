//! The real broker of the local stack: fresh topics, and reading back what
//! was published.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// Bootstrap servers of the local stack.
pub fn brokers() -> String {
    std::env::var("SITEWATCH_KAFKA_BROKERS").expect(
        "SITEWATCH_KAFKA_BROKERS is not set: start the stack with `scripts/stack up` and `eval \"$(scripts/stack env)\"`, or run scripts/test",
    )
}

/// A topic name no other test uses.
pub fn unique_topic(test: &str) -> String {
    format!("sw-{test}-{}", uuid::Uuid::new_v4().simple())
}

/// Publishes raw records (key, payload) and waits for every acknowledgement.
pub async fn publish(topic: &str, records: &[(Option<String>, Option<Vec<u8>>)]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let mut pending = Vec::new();
    for (key, payload) in records {
        let mut record: FutureRecord<'_, String, Vec<u8>> = FutureRecord::to(topic);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = payload {
            record = record.payload(p);
        }
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in pending {
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

/// The offsets `group` committed in Kafka for `topic`'s partitions.
pub fn committed(topic: &str, group: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .collect()
}

/// A message as read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: String,
    pub value: serde_json::Value,
}

/// Every check on every partition of `topic` (not the run records of the
/// run ledger: [`read_runs`]), read from the beginning to the end with an
/// independent consumer (assign, no group join).
pub fn read_all(topic: &str) -> Vec<Record> {
    read_every(topic)
        .into_iter()
        .filter(|r| r.value["record"] != "run")
        .collect()
}

/// The run records on `topic`.
pub fn read_runs(topic: &str) -> Vec<Record> {
    read_every(topic)
        .into_iter()
        .filter(|r| r.value["record"] == "run")
        .collect()
}

fn read_every(topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set(
            "group.id",
            format!("reader-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    assert!(!partitions.is_empty(), "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        assignment
            .add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut at_end = HashSet::new();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while at_end.len() < partitions.len() {
        assert!(Instant::now() < deadline, "reading {topic} took over 60 s");
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            Some(Ok(m)) => records.push(Record {
                partition: m.partition(),
                key: String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
                value: serde_json::from_slice(m.payload().unwrap()).unwrap(),
            }),
        }
    }
    records
}
