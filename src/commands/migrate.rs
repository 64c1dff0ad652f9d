//! `migrate`: apply `migrations/` to PostgreSQL and create the Kafka topic
//! when it is missing. Both halves are idempotent.

use crate::config::Settings;
use crate::error::Result;
use crate::kafka::{self, TopicOutcome};
use crate::store;
use clap::Args;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only one half: `database` (the migrations) or `kafka` (the topic)
    #[arg(long, value_name = "PART", value_parser = ["database", "kafka"])]
    pub only: Option<String>,
}

/// Runs both halves, or the one named by `only` (`database` or `kafka`).
pub async fn run(settings: &Settings, only: Option<&str>) -> Result<()> {
    if only != Some("kafka") {
        let mut client = store::connect(&settings.database).await?;
        let applied = store::migrate(&mut client).await?;
        if applied.is_empty() {
            tracing::info!("database schema is up to date");
        }
        for name in applied {
            tracing::info!(migration = name, "migration applied");
        }
    }
    if only != Some("database") {
        let k = &settings.kafka;
        match kafka::create_topic(k).await? {
            TopicOutcome::Created => tracing::info!(
                topic = %k.topic, partitions = k.partitions, replication_factor = k.replication_factor,
                "topic created"
            ),
            TopicOutcome::AlreadyExists => tracing::info!(topic = %k.topic, "topic already exists"),
        }
    }
    Ok(())
}
