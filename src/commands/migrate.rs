//! `migrate`: create the Kafka topic when it is missing.

use crate::config::Settings;
use crate::error::Result;
use crate::kafka::{self, TopicOutcome};

/// Creates the topic with the configured partitions and replication factor.
pub async fn run(settings: &Settings) -> Result<()> {
    let k = &settings.kafka;
    match kafka::create_topic(k).await? {
        TopicOutcome::Created => tracing::info!(
            topic = %k.topic, partitions = k.partitions, replication_factor = k.replication_factor,
            "topic created"
        ),
        TopicOutcome::AlreadyExists => tracing::info!(topic = %k.topic, "topic already exists"),
    }
    Ok(())
}
