//! `alert`: evaluates the checks stored since its last run, records the
//! events they call for, delivers each to each of its notifiers once, and
//! exits. Its position, each site's state and its outbox live in
//! PostgreSQL (migration 9), so a run can be killed anywhere.
//!
//! - Evaluation is one transaction under an advisory lock: two runs at
//!   once evaluate one after the other, and the second finds nothing new.
//! - Events are recorded, with one delivery row per notifier, in that
//!   transaction, before anything is sent (an outbox).
//! - Each delivery is sent holding its row's lock (`FOR UPDATE SKIP
//!   LOCKED`) and marked delivered in the same transaction: two runs never
//!   send one delivery twice; a run killed after sending and before the
//!   commit sends it again next time, with the same `event_id`.
//! - A failed delivery is kept for the next run and the run exits 1; the
//!   notifier's later events wait too, so a receiver never gets a
//!   `resolved` before its `down`.

pub mod evaluate;
pub mod model;
pub mod notify;
pub mod policy;
mod probers;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::message::rfc3339_ms;
use crate::rule::{SiteState, Streak};
use crate::sites::SitesSource;
use crate::store;
use model::{Event, LastRun, Location, NewCheck, Outcome, Prober, ProberState, Site, State};
use policy::Config;

/// A check is evaluated when `alert` runs after it is stored; one stored
/// later than this after it started, behind checks already evaluated, is
/// not (the streaks go in time order). `drain` runs just before `alert`,
/// so only a drain that lagged this long leaves checks out.
pub const LOOKBACK: Duration = Duration::from_secs(10 * 60);

/// How far back the first run looks.
pub const FIRST_LOOKBACK: Duration = Duration::from_secs(60 * 60);

/// How long one delivery may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Options {
    /// The run's clock (injected by tests).
    pub now: OffsetDateTime,
    /// Stop sending this long after the start; what is left waits.
    pub deadline: Option<Duration>,
    /// The environment, for the notifiers' URLs.
    pub env: HashMap<String, String>,
    /// Evaluate and record without any notifier (`--record-only`).
    pub record_only: bool,
}

/// What one run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub evaluated: usize,
    /// Sites (or locations) whose state the database refused, each named
    /// with why: the run exits 1 after delivering the others' events.
    pub problems: Vec<String>,
    pub events: Vec<(String, String)>,
    pub delivered: usize,
    pub failed: usize,
    pub waiting: usize,
}

/// The configuration `alert` reads: the sites file's `[alerts]`,
/// `[[notifier]]` and `[[maintenance]]`, and each site's own rules (from
/// the file, `SITEWATCH_SITES` or the `sites` table). Every problem, one
/// line each.
pub async fn config(
    settings: &Settings,
    db: Option<&Client>,
    env: &HashMap<String, String>,
    urls: policy::Urls,
) -> std::result::Result<Config, Vec<String>> {
    let raw = match (&settings.sites, db) {
        (SitesSource::Database(_), Some(db)) => crate::site_table::read(db)
            .await
            .map_err(|e| vec![e.one_line()])?
            .into_iter()
            .filter_map(|(_, site)| site.ok())
            .collect(),
        (SitesSource::Database(_), None) => Vec::new(),
        (source, _) => crate::sites::raw(source).map_err(|e| vec![e.one_line()])?,
    };
    policy::load(settings.sites.doc(), &raw, env, urls)
}

pub async fn run(settings: &Settings, options: &Options) -> Result<Summary> {
    let started = Instant::now();
    let now = options.now;
    let mut db = store::connect_as(
        &settings.database,
        &store::Session {
            application_name: "sitewatch alert".to_owned(),
            ..store::Session::default()
        },
    )
    .await?;
    let config = config(settings, Some(&db), &options.env, policy::Urls::Required)
        .await
        .map_err(|problems| Error::config(&problems[0]))?;
    if config.notifiers.is_empty() && !options.record_only {
        // Events recorded and never sent would be consumed in silence, and
        // a later run with notifiers would resolve what nobody was told.
        return Err(Error::config(
            "no [[notifier]] is declared (is --sites-file the file that declares them?): add one, or run `alert --record-only` to record events without sending them",
        ));
    }

    let tx = db
        .transaction()
        .await
        .context("cannot start a transaction")?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&crate::keys::lock_key("sitewatch:alert")],
    )
    .await
    .map_err(|e| missing_tables(e.into()))?;
    let mut state = load_state(&tx).await.map_err(missing_tables)?;
    // A position in the future (a check dated ahead, stored before drain
    // refused such checks) would hide every later check: start it over.
    for l in state.locations.values_mut() {
        if l.last_started_at > now {
            l.last_started_at = now - FIRST_LOOKBACK;
            l.last_check_id = Uuid::nil();
        }
    }
    let newest = state.locations.values().map(|l| l.last_started_at).max();
    let from = match newest {
        Some(t) => t - LOOKBACK,
        None => now - FIRST_LOOKBACK,
    };
    let seeded = seed_unseen(&tx, &config, &mut state, from, now).await?;
    let checks = new_checks(&tx, from, now).await?;
    let runs = last_runs(&tx, now).await?;
    let evaluated = checks.len();
    let mut outcome = evaluate::evaluate(&config, now, &mut state, checks, &runs);
    outcome.locations.extend(seeded);
    let problems = save(&tx, &state, &mut outcome).await?;
    for why in &problems {
        tracing::error!("{why}: its events wait, the other sites' are delivered");
    }
    tx.commit().await.context("cannot record the evaluation")?;

    let mut summary = Summary {
        evaluated,
        problems,
        events: outcome
            .events
            .iter()
            .map(|e| {
                (
                    e.kind.to_owned(),
                    e.payload["summary"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        ..Summary::default()
    };
    deliver(&mut db, &config, started, options.deadline, &mut summary).await?;
    Ok(summary)
}

/// Sends a test event to `notifier` (and, for the services that open an
/// incident, its resolve): what each request was and what the service
/// answered; the error is the first refusal.
pub async fn send_test(
    notifier: &policy::Notifier,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let client = crate::outbound::client(SEND_TIMEOUT)?;
    let event_id = Uuid::new_v4();
    let mut payload = json!({
        "event_id": event_id.to_string(),
        "kind": "test",
        "site": null,
        "url": null,
        "at": rfc3339_ms::format(&now),
        "since": rfc3339_ms::format(&now),
        "summary": format!(
            "A test from sitewatch: notifier `{}` ({}) reaches this channel",
            notifier.name,
            notifier.kind.as_str()
        ),
    });
    let mut answers = Vec::new();
    let answer = notify::send(&client, notifier, &payload, SEND_TIMEOUT)
        .await
        .map_err(|why| anyhow::anyhow!("notifier `{}`: the test {why}", notifier.name))?;
    answers.push(("test event: answered", answer));
    if matches!(
        notifier.kind,
        policy::Kind::PagerDuty | policy::Kind::Opsgenie
    ) {
        payload["kind"] = "resolved".into();
        payload["resolves"] = "test".into();
        payload["summary"] = "The test from sitewatch is over".into();
        let answer = notify::send(&client, notifier, &payload, SEND_TIMEOUT)
            .await
            .map_err(|why| {
                anyhow::anyhow!("notifier `{}`: the test's resolve {why}", notifier.name)
            })?;
        answers.push(("its resolve: answered", answer));
    }
    Ok(answers)
}

/// A database never migrated: say what to do.
fn missing_tables(e: anyhow::Error) -> Error {
    if store::is_missing_table(&e) {
        Error::Job(anyhow::anyhow!(
            "the database has no alert tables: run `sitewatch migrate` first"
        ))
    } else {
        Error::Job(e.context("cannot read what alert knows"))
    }
}

async fn load_state(tx: &Transaction<'_>) -> anyhow::Result<State> {
    let mut state = State::default();
    for r in tx
        .query(
            "SELECT site, location, last_started_at, last_check_id, fails, goods,
                    first_fail_at, first_good_at, CASE WHEN down THEN coalesce(down_since, first_fail_at) END,
                    status_code, error_kind, error, url, degraded, slow, response_time_ms
             FROM alert_locations",
            &[],
        )
        .await?
    {
        state.locations.insert(
            (r.get(0), r.get(1)),
            Location {
                last_started_at: r.get(2),
                last_check_id: r.get(3),
                streak: Streak {
                    fails: r.get::<_, i32>(4).max(0) as u32,
                    goods: r.get::<_, i32>(5).max(0) as u32,
                    first_fail_at: r.get(6),
                    first_good_at: r.get(7),
                    down_since: r.get(8),
                },
                status_code: r.get(9),
                error_kind: r.get(10),
                error: r.get(11),
                url: r.get::<_, Option<String>>(12).unwrap_or_default(),
                degraded: r.get(13),
                slow: r.get::<_, i32>(14).max(0) as u32,
                response_time_ms: r.get(15),
            },
        );
    }
    for r in tx
        .query(
            "SELECT site, state, since, notified, notified_at, tls_expires_at, tls_days_sent,
                    outage_since
             FROM alert_sites",
            &[],
        )
        .await?
    {
        state.sites.insert(
            r.get(0),
            Site {
                // A name from an older or newer version reads as the
                // nearest this one knows: up (told), unknown (state).
                state: SiteState::parse(r.get(1)).unwrap_or(SiteState::Unknown),
                since: r.get(2),
                notified: SiteState::parse(r.get(3)).unwrap_or(SiteState::Up),
                notified_at: r.get(4),
                tls_expires_at: r.get(5),
                tls_days_sent: r.get(6),
                outage_since: r.get(7),
            },
        );
    }
    for r in tx
        .query(
            "SELECT location, state, since, notified FROM alert_probers",
            &[],
        )
        .await?
    {
        state.probers.insert(
            r.get(0),
            Prober {
                state: ProberState::parse(r.get(1)).unwrap_or(ProberState::Up),
                since: r.get(2),
                notified: ProberState::parse(r.get(3)).unwrap_or(ProberState::Up),
            },
        );
    }
    Ok(state)
}

/// How far back alert looks for the last check of a configured site it
/// has never seen: past that, the site reads `unknown`.
const UNSEEN_LOOKBACK: time::Duration = time::Duration::days(31);

/// Positions for the configured sites alert has no position of, from
/// their newest check before `from` (within [`UNSEEN_LOOKBACK`]): a site
/// last checked before alert first looked goes `stale` from when it was,
/// instead of staying invisible. Returns the positions made.
async fn seed_unseen(
    tx: &Transaction<'_>,
    config: &Config,
    state: &mut State,
    from: OffsetDateTime,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<(String, String)>> {
    let known: std::collections::BTreeSet<&str> =
        state.locations.keys().map(|(s, _)| s.as_str()).collect();
    let unseen: Vec<&str> = config
        .urls
        .keys()
        .map(String::as_str)
        .filter(|s| !known.contains(s))
        .collect();
    if unseen.is_empty() {
        return Ok(Vec::new());
    }
    let rows = tx
        .query(
            "SELECT c.site, c.location, c.started_at, c.check_id, c.up, c.url
             FROM unnest($1::text[]) AS s(site)
             CROSS JOIN LATERAL (
                 SELECT DISTINCT ON (location) site, location, started_at, check_id, up, url
                 FROM checks
                 WHERE site = s.site COLLATE \"C\" AND started_at <= $2 AND started_at > $3
                 ORDER BY location, started_at DESC, check_id DESC
             ) AS c",
            &[&unseen, &from.min(now), &(now - UNSEEN_LOOKBACK)],
        )
        .await
        .context("cannot read the last checks of sites alert has not seen")?;
    let mut seeded = Vec::new();
    for r in &rows {
        let key: (String, String) = (r.get(0), r.get(1));
        let started_at: OffsetDateTime = r.get(2);
        let site = key.0.clone();
        let mut streak = Streak::default();
        streak.apply(started_at, r.get(4), &config.policy(&site).rule());
        state.locations.insert(
            key.clone(),
            Location {
                last_started_at: started_at,
                last_check_id: r.get(3),
                streak,
                degraded: false,
                slow: 0,
                response_time_ms: None,
                status_code: None,
                error_kind: None,
                error: None,
                url: r.get(5),
            },
        );
        seeded.push(key);
    }
    Ok(seeded)
}

/// The checks that started in `(from, now]` and are newer than their
/// location's position.
async fn new_checks(
    tx: &Transaction<'_>,
    from: OffsetDateTime,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<NewCheck>> {
    let rows = tx
        .query(
            "SELECT c.site, c.location, c.started_at, c.check_id, c.up, c.status_code,
                    c.error_kind, c.error, c.tls_expires_at, c.url, coalesce(c.degraded, false),
                    r.checked::bigint, r.answered, c.response_time_ms
             FROM checks c
             LEFT JOIN alert_locations p ON p.site = c.site AND p.location = c.location
             LEFT JOIN runs r ON r.run_id = c.run_id
             WHERE c.started_at > $1 AND c.started_at <= $2
               AND (p.site IS NULL OR p.last_started_at > $2
                    OR (c.started_at, c.check_id) > (p.last_started_at, p.last_check_id))",
            &[&from, &now],
        )
        .await
        .context("cannot read the new checks")?;
    Ok(rows
        .iter()
        .map(|r| NewCheck {
            site: r.get(0),
            location: r.get(1),
            started_at: r.get(2),
            check_id: r.get(3),
            up: r.get(4),
            status_code: r.get(5),
            error_kind: r.get(6),
            error: r.get(7),
            tls_expires_at: r.get(8),
            url: r.get(9),
            degraded: r.get(10),
            response_time_ms: r.get(13),
            run_blind: r
                .get::<_, Option<i64>>(11)
                .zip(r.get::<_, Option<i64>>(12))
                .map(|(checked, answered)| {
                    crate::rule::blind(checked.max(0) as u64, answered.max(0) as u64)
                }),
        })
        .collect())
}

/// Each location's newest run (the run ledger), within the last week.
async fn last_runs(tx: &Transaction<'_>, now: OffsetDateTime) -> anyhow::Result<Vec<LastRun>> {
    let rows = tx
        .query(
            "SELECT DISTINCT ON (location) location, started_at, tick_s
             FROM runs WHERE started_at > $1::timestamptz - interval '7 days' AND started_at <= $1
             ORDER BY location, started_at DESC",
            &[&now],
        )
        .await
        .context("cannot read the run ledger")?;
    Ok(rows
        .iter()
        .map(|r| LastRun {
            location: r.get(0),
            started_at: r.get(1),
            // A row stored before drain bounded ticks may hold anything.
            tick: Duration::try_from_secs_f64(r.get::<_, f64>(2).max(1.0)).unwrap_or(Duration::MAX),
        })
        .collect())
}

fn ts(t: Option<OffsetDateTime>) -> Value {
    t.map_or(Value::Null, |t| rfc3339_ms::format(&t).into())
}

/// Writes back what changed and records the events with their deliveries.
/// A site whose state the database refuses is named in the result; its
/// events wait (the next run makes them again from the same streaks), the
/// others' are recorded.
async fn save(
    tx: &Transaction<'_>,
    state: &State,
    outcome: &mut Outcome,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let locations: Vec<Value> = outcome
        .locations
        .iter()
        .map(|key| {
            let l = &state.locations[key];
            json!({
                "site": key.0, "location": key.1,
                "last_started_at": ts(Some(l.last_started_at)),
                "last_check_id": l.last_check_id,
                "fails": l.streak.fails.min(i32::MAX as u32), "goods": l.streak.goods.min(i32::MAX as u32),
                "down": l.streak.is_down(), "degraded": l.degraded,
                "slow": l.slow.min(i32::MAX as u32), "response_time_ms": l.response_time_ms,
                "first_fail_at": ts(l.streak.first_fail_at), "first_good_at": ts(l.streak.first_good_at),
                "down_since": ts(l.streak.down_since),
                "status_code": l.status_code, "error_kind": l.error_kind,
                "error": l.error, "url": l.url,
            })
        })
        .collect();
    let refused_locations = upsert(
        tx,
        "alert_locations",
        "site, location",
        &[
            "last_started_at",
            "last_check_id",
            "fails",
            "goods",
            "down",
            "degraded",
            "slow",
            "response_time_ms",
            "first_fail_at",
            "first_good_at",
            "down_since",
            "status_code",
            "error_kind",
            "error",
            "url",
        ],
        &locations,
    )
    .await?;
    let sites: Vec<Value> = outcome
        .sites
        .iter()
        .filter_map(|name| {
            let s = state.sites.get(name)?;
            Some(json!({
                "site": name, "state": s.state.as_str(), "since": ts(Some(s.since)),
                "notified": s.notified.as_str(), "notified_at": ts(s.notified_at),
                "outage_since": ts(s.outage_since),
                "tls_expires_at": ts(s.tls_expires_at), "tls_days_sent": s.tls_days_sent,
            }))
        })
        .collect();
    let refused_sites = upsert(
        tx,
        "alert_sites",
        "site",
        &[
            "state",
            "since",
            "notified",
            "notified_at",
            "outage_since",
            "tls_expires_at",
            "tls_days_sent",
        ],
        &sites,
    )
    .await?;
    let probers: Vec<Value> = outcome
        .probers
        .iter()
        .filter_map(|name| {
            let p = state.probers.get(name)?;
            Some(json!({
                "location": name, "state": p.state.as_str(), "since": ts(Some(p.since)),
                "notified": p.notified.as_str(),
            }))
        })
        .collect();
    let refused_probers = upsert(
        tx,
        "alert_probers",
        "location",
        &["state", "since", "notified"],
        &probers,
    )
    .await?;
    let mut held = std::collections::BTreeSet::new();
    for (key, why) in refused_locations.iter().chain(&refused_sites) {
        let site = key.first().cloned().unwrap_or_default();
        problems.push(format!("site `{}`: {why}", crate::escape::terminal(&site)));
        held.insert(site);
    }
    let mut held_probers = std::collections::BTreeSet::new();
    for (key, why) in &refused_probers {
        let location = key.first().cloned().unwrap_or_default();
        problems.push(format!(
            "location `{}`: {why}",
            crate::escape::terminal(&location)
        ));
        held_probers.insert(location);
    }
    outcome.events.retain(|e| {
        !e.site.as_ref().is_some_and(|s| held.contains(s))
            && !e
                .location
                .as_ref()
                .is_some_and(|l| held_probers.contains(l))
    });
    record(tx, &outcome.events).await?;
    Ok(problems)
}

/// `INSERT ... ON CONFLICT DO UPDATE` of JSON rows, in one statement; if
/// that fails, row by row, so that one row the database refuses (a value
/// out of its range) stops only itself. Returns each refused row's key and
/// why.
async fn upsert(
    tx: &Transaction<'_>,
    table: &str,
    key: &str,
    columns: &[&str],
    rows: &[Value],
) -> anyhow::Result<Vec<(Vec<String>, String)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let all = format!("{key}, {}", columns.join(", "));
    let set: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({all})
         SELECT {all} FROM jsonb_populate_recordset(NULL::{table}, $1::text::jsonb)
         ON CONFLICT ({key}) DO UPDATE SET {}",
        set.join(", ")
    );
    let write = |rows: &[Value]| {
        let json = serde_json::to_string(rows).expect("JSON always serializes");
        let sql = &sql;
        async move {
            tx.batch_execute("SAVEPOINT sitewatch_upsert").await?;
            match tx.execute(sql, &[&json]).await {
                Ok(_) => tx.batch_execute("RELEASE SAVEPOINT sitewatch_upsert").await,
                Err(e) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT sitewatch_upsert")
                        .await?;
                    Err(e)
                }
            }
        }
    };
    if write(rows).await.is_ok() {
        return Ok(Vec::new());
    }
    let mut refused = Vec::new();
    for row in rows {
        if let Err(e) = write(std::slice::from_ref(row)).await {
            if e.as_db_error().is_none() {
                return Err(e).with_context(|| format!("cannot write {table}"));
            }
            let name: Vec<String> = key
                .split(", ")
                .map(|k| row[k].as_str().unwrap_or_default().to_owned())
                .collect();
            let why = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned());
            refused.push((name, format!("cannot write {table}: {why}")));
        }
    }
    Ok(refused)
}

/// Records the events and one pending delivery per event and notifier.
async fn record(tx: &Transaction<'_>, events: &[Event]) -> anyhow::Result<()> {
    for e in events {
        tx.execute(
            "INSERT INTO alert_events (event_id, kind, site, location, payload)
             VALUES ($1, $2, $3, $4, $5::text::jsonb)",
            &[
                &e.event_id,
                &e.kind,
                &e.site,
                &e.location,
                &e.payload.to_string(),
            ],
        )
        .await
        .context("cannot record an event")?;
        for notifier in &e.notify {
            tx.execute(
                "INSERT INTO alert_deliveries (event_id, notifier) VALUES ($1, $2)",
                &[&e.event_id, notifier],
            )
            .await
            .context("cannot record a delivery")?;
        }
    }
    Ok(())
}

/// Sends every pending delivery, oldest first, each once.
async fn deliver(
    db: &mut Client,
    config: &Config,
    started: Instant,
    deadline: Option<Duration>,
    summary: &mut Summary,
) -> Result<()> {
    let pending = db
        .query(
            "SELECT d.event_id, d.notifier FROM alert_deliveries d
             JOIN alert_events e USING (event_id)
             WHERE d.delivered_at IS NULL
             ORDER BY e.created_at, e.event_id",
            &[],
        )
        .await
        .context("cannot read the pending deliveries")?;
    if pending.is_empty() {
        return Ok(());
    }
    let client = crate::outbound::client(SEND_TIMEOUT).map_err(Error::Job)?;
    let mut blocked: BTreeMap<String, String> = BTreeMap::new();
    for row in pending {
        let (event_id, name): (Uuid, String) = (row.get(0), row.get(1));
        let late = deadline.is_some_and(|d| started.elapsed() + SEND_TIMEOUT > d);
        if late || blocked.contains_key(&name) {
            summary.waiting += 1;
            continue;
        }
        let Some(notifier) = config.notifiers.iter().find(|n| n.name == name) else {
            tracing::warn!(notifier = %name, %event_id, "no such notifier any more: its delivery waits");
            summary.waiting += 1;
            continue;
        };
        let sent = send_one(db, &client, notifier, event_id).await?;
        match sent {
            None => {}
            Some(Ok(())) => summary.delivered += 1,
            Some(Err(why)) => {
                tracing::error!(notifier = %name, %event_id, "delivery {why}: kept for the next run");
                summary.failed += 1;
                blocked.insert(name, why);
            }
        }
    }
    Ok(())
}

/// Sends one delivery holding its row's lock; `None` when another run has
/// it or it is delivered already.
async fn send_one(
    db: &mut Client,
    client: &reqwest::Client,
    notifier: &policy::Notifier,
    event_id: Uuid,
) -> Result<Option<std::result::Result<(), String>>> {
    let tx = db
        .transaction()
        .await
        .context("cannot start a transaction")?;
    let row = tx
        .query_opt(
            "SELECT e.payload::text FROM alert_deliveries d JOIN alert_events e USING (event_id)
             WHERE d.event_id = $1 AND d.notifier = $2 AND d.delivered_at IS NULL
             FOR UPDATE OF d SKIP LOCKED",
            &[&event_id, &notifier.name],
        )
        .await
        .context("cannot lock a delivery")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let payload: Value =
        serde_json::from_str(&row.get::<_, String>(0)).context("an event's payload is not JSON")?;
    let outcome = notify::send(client, notifier, &payload, SEND_TIMEOUT)
        .await
        .map(|_| ());
    match &outcome {
        Ok(()) => tx
            .execute(
                "UPDATE alert_deliveries SET delivered_at = now(), attempts = attempts + 1,
                     last_error = NULL
                 WHERE event_id = $1 AND notifier = $2",
                &[&event_id, &notifier.name],
            )
            .await
            .context("cannot record a delivery")?,
        Err(why) => tx
            .execute(
                "UPDATE alert_deliveries SET attempts = attempts + 1, last_error = $3
                 WHERE event_id = $1 AND notifier = $2",
                &[&event_id, &notifier.name, why],
            )
            .await
            .context("cannot record a failed delivery")?,
    };
    tx.commit().await.context("cannot record a delivery")?;
    Ok(Some(outcome))
}
