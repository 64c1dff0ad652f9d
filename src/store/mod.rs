//! PostgreSQL: connecting (TLS per `sslmode`, server-side limits), the
//! migrations, drain's batches (checks, run records, dead letters and
//! offsets in one transaction) and its claims on partitions.

mod batch;
mod claims;
mod columns;
mod connect;
mod migrations;

pub use batch::{
    Batch, DeadLetter, Learned, Located, LocatedRun, MAX_REASON_CHARS, Stored, ensure_partitions,
    prepare, storable, store,
};
pub use claims::{Claimant, claimants, next_offsets, partition_key, terminate, try_lock_partition};
pub use connect::{
    Connector, DEFAULT_CONNECT_TIMEOUT, Limits, ParsedUrl, RootCert, Session, SslMode, connect,
    connect_as, describe, parse_url,
};
pub use migrations::{MIGRATIONS, checksum, migrate};

/// Whether PostgreSQL refused the data itself (rather than failing).
pub fn is_data_error(error: &anyhow::Error) -> bool {
    let Some(code) = db_error(error).map(|e| e.code().code()) else {
        return false;
    };
    code.starts_with("22") || code.starts_with("23") || code == "54000"
}

/// Whether a query failed on a table that does not exist: a database
/// that `sitewatch migrate` has not brought up to date.
pub fn is_missing_table(error: &anyhow::Error) -> bool {
    db_error(error).is_some_and(|db| *db.code() == tokio_postgres::error::SqlState::UNDEFINED_TABLE)
}

fn db_error(error: &anyhow::Error) -> Option<&tokio_postgres::error::DbError> {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<tokio_postgres::Error>())
        .and_then(tokio_postgres::Error::as_db_error)
}
