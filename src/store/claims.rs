//! drain's claims on partitions (advisory locks held by its session) and
//! the drains that hold them.

use std::collections::BTreeMap;

use anyhow::Context as _;
use tokio_postgres::Client;

use crate::keys::lock_key;

/// The next offsets the database holds for a group's partitions of a topic.
pub async fn next_offsets(
    client: &Client,
    group: &str,
    topic: &str,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let rows = client
        .query(
            "SELECT kafka_partition, next_offset FROM drain_offsets
             WHERE kafka_group = $1 AND kafka_topic = $2",
            &[&group, &topic],
        )
        .await
        .context("cannot read drain_offsets (did `sitewatch migrate` run?)")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The advisory-lock key of one partition of a group's drain.
pub fn partition_key(group: &str, topic: &str, partition: i32) -> i64 {
    lock_key(&format!("sitewatch:drain:{group}:{topic}:{partition}"))
}

/// Takes the session's advisory lock on one partition for a group, if free.
pub async fn try_lock_partition(
    client: &Client,
    group: &str,
    topic: &str,
    partition: i32,
) -> anyhow::Result<bool> {
    let key = partition_key(group, topic, partition);
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .context("cannot take a partition lock")?;
    Ok(row.get(0))
}

/// A session that holds partition claims, as `pg_stat_activity` shows it.
#[derive(Debug, Clone)]
pub struct Claimant {
    pub pid: i32,
    pub application_name: String,
    pub client: Option<String>,
    pub connected_at: Option<time::OffsetDateTime>,
    pub state: Option<String>,
    /// When its state last changed: for an idle session, since when it idles.
    pub state_since: Option<time::OffsetDateTime>,
    /// Seconds in that state, by the server's clock.
    pub seconds_in_state: Option<f64>,
    /// Partitions it holds.
    pub partitions: Vec<i32>,
}

/// Ends another session (`pg_terminate_backend`): its transaction rolls
/// back and its locks go. Returns whether the server did it.
pub async fn terminate(client: &Client, pid: i32) -> anyhow::Result<bool> {
    let row = client
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .with_context(|| format!("cannot end session {pid}"))?;
    Ok(row.get(0))
}

/// Who holds the claims on these partitions (advisory locks on keys of
/// [`partition_key`]).
pub async fn claimants(
    client: &Client,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<Vec<Claimant>> {
    // A bigint advisory key shows in pg_locks as classid (high 32 bits) and
    // objid (low 32 bits), with objsubid 1.
    let keys: Vec<i64> = partitions
        .iter()
        .map(|&p| partition_key(group, topic, p))
        .collect();
    let rows = client
        .query(
            "SELECT a.pid, coalesce(a.application_name, ''), a.client_addr::text,
                    a.backend_start, a.state, a.state_change,
                    extract(epoch FROM now() - a.state_change)::float8,
                    array_agg(k.ord::integer - 1 ORDER BY k.ord)
             FROM unnest($1::bigint[]) WITH ORDINALITY AS k(key, ord)
             JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                AND l.classid = ((k.key >> 32) & 4294967295)::bigint::text::oid
                AND l.objid = (k.key & 4294967295)::bigint::text::oid
             JOIN pg_stat_activity a ON a.pid = l.pid
             GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1",
            &[&keys],
        )
        .await
        .context("cannot read who holds the partition claims")?;
    Ok(rows
        .iter()
        .map(|r| Claimant {
            pid: r.get(0),
            application_name: r.get(1),
            client: r.get(2),
            connected_at: r.get(3),
            state: r.get(4),
            state_since: r.get(5),
            seconds_in_state: r.get(6),
            partitions: r
                .get::<_, Vec<i32>>(7)
                .into_iter()
                .filter_map(|i| partitions.get(i as usize).copied())
                .collect(),
        })
        .collect())
}
