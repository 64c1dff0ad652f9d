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

/// A message as read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: String,
    pub value: serde_json::Value,
}

/// Every message on every partition of `topic`, read from the beginning to
/// the end with an independent consumer (assign, no group join).
pub fn read_all(topic: &str) -> Vec<Record> {
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
