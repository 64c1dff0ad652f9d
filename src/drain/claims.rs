//! Claims on partitions: each drain's advisory lock per partition, taken
//! from a drain that stopped making progress, and who holds what.

use std::time::Duration;

use anyhow::anyhow;

use crate::error::{Error, Result};
use crate::store::{self};

/// How long a claimant may stay in one state before it counts as stuck:
/// the server ends idle sessions and cancels statements at the claim
/// timeout, so a session still there half as long again is one the server
/// cannot end by itself (a drain frozen in the middle of a COPY: PostgreSQL
/// does not cancel a statement waiting for its client's data; or a server
/// without `idle_session_timeout`).
pub(super) fn stuck(c: &store::Claimant, claims: Claims) -> bool {
    let claim = claims.timeout;
    c.seconds_in_state
        .is_some_and(|s| s + claims.aged_by.as_secs_f64() > (claim + claim / 2).as_secs_f64())
}

/// How claims are judged.
#[derive(Debug, Clone, Copy)]
pub(super) struct Claims {
    /// `--claim-timeout`.
    pub(super) timeout: Duration,
    /// Added to how long a claimant has been in its state: how far the
    /// run's clock is ahead of the system's (zero but in tests).
    pub(super) aged_by: Duration,
}

/// Ends the sessions that hold these partitions while stuck, then claims
/// what they held. Returns the partitions taken over.
pub(super) async fn take_over_stuck_claims(
    db: &tokio_postgres::Client,
    k: &crate::config::KafkaSettings,
    unowned: &[i32],
    claims: Claims,
) -> Result<Vec<i32>> {
    let claimants = store::claimants(db, &k.group, &k.topic, unowned).await?;
    let mut ended = 0;
    for c in claimants.iter().filter(|c| stuck(c, claims)) {
        tracing::warn!(
            topic = %k.topic, claimant = %describe_claimant(c),
            "ending a drain session that has made no progress for longer than the claim timeout"
        );
        match store::terminate(db, c.pid).await {
            Ok(true) => ended += 1,
            Ok(false) => tracing::warn!(pid = c.pid, "the session was already gone"),
            Err(e) => {
                tracing::warn!(pid = c.pid, error = %format!("{e:#}"), "cannot end the session")
            }
        }
    }
    let mut taken = Vec::new();
    if ended == 0 {
        return Ok(taken);
    }
    // An ended session releases its locks as it exits: try for a second.
    for _ in 0..20 {
        for &p in unowned {
            if !taken.contains(&p) && store::try_lock_partition(db, &k.group, &k.topic, p).await? {
                taken.push(p);
            }
        }
        if taken.len() == unowned.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(taken)
}

/// A claimant as a person reads it.
pub(super) fn describe_claimant(c: &store::Claimant) -> String {
    format!(
        "pid {} ({}{}) holding partitions {:?}, connected since {}, {} since {}",
        c.pid,
        if c.application_name.is_empty() {
            "no application name"
        } else {
            &c.application_name
        },
        c.client
            .as_deref()
            .map(|a| format!(" from {a}"))
            .unwrap_or_default(),
        c.partitions,
        c.connected_at
            .map_or("?".to_owned(), |t| crate::message::rfc3339_ms::format(&t)),
        c.state.as_deref().unwrap_or("unknown"),
        c.state_since
            .map_or("?".to_owned(), |t| crate::message::rfc3339_ms::format(&t)),
    )
}

/// Every partition is claimed by other sessions: say by whom, and fail when
/// a claimant is stuck (see [`stuck`]) and could not be ended: a drain that
/// stores nothing must not report success for ever.
pub(super) async fn every_partition_claimed(
    db: &tokio_postgres::Client,
    k: &crate::config::KafkaSettings,
    partitions: &[i32],
    claims: Claims,
) -> Result<()> {
    let claimants = store::claimants(db, &k.group, &k.topic, partitions).await?;
    for c in &claimants {
        tracing::warn!(topic = %k.topic, claimant = %describe_claimant(c), "every partition is being drained by another run");
    }
    if claimants.is_empty() {
        tracing::warn!(topic = %k.topic, "every partition is being drained by another run");
    }
    match claimants.iter().find(|c| stuck(c, claims)) {
        Some(c) => Err(Error::Job(anyhow!(
            "every partition of {} is claimed and no drain is making progress: {}, for longer than the claim timeout ({}), and it could not be ended; end it with SELECT pg_terminate_backend({})",
            k.topic,
            describe_claimant(c),
            humantime::format_duration(claims.timeout),
            c.pid
        ))),
        None => Ok(()),
    }
}

/// Takes this run's partitions: each one's advisory lock, starting at a
/// different partition in each run (so that concurrent drains split the
/// partitions rather than queue for the same first lock), then those held
/// by stuck drains.
pub(super) async fn claim_partitions(
    db: &tokio_postgres::Client,
    k: &crate::config::KafkaSettings,
    partitions: &[i32],
    claims: Claims,
) -> Result<Vec<i32>> {
    let rotation = (std::process::id() as usize) % partitions.len().max(1);
    let mut owned = Vec::new();
    for &p in partitions
        .iter()
        .cycle()
        .skip(rotation)
        .take(partitions.len())
    {
        if store::try_lock_partition(db, &k.group, &k.topic, p).await? {
            owned.push(p);
        }
    }
    let unowned: Vec<i32> = partitions
        .iter()
        .copied()
        .filter(|p| !owned.contains(p))
        .collect();
    if !unowned.is_empty() {
        owned.extend(take_over_stuck_claims(db, k, &unowned, claims).await?);
    }
    owned.sort_unstable();
    Ok(owned)
}
