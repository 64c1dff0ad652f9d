//! Integration tests: the real binary against real local HTTP servers, the
//! local stack's real Kafka broker, and real configuration files.

mod agreement;
mod alert;
mod configuration;
mod drain;
mod history;
mod hostile;
mod jobs;
mod kafka_real;
mod kafka_tls;
mod kinds;
mod metrics;
mod migrations;
mod notifiers;
mod postgres_tls;
mod probe_once;
mod report;
mod resilience;
mod secrets;
mod sites_table;
mod support;
mod trust;
mod watchdog;
