//! Rollups: per site, location and UTC hour (and day), the checks, the up
//! checks, and latency sketches of the up checks (whole check and each
//! phase), so that reports over months never read raw rows.
//!
//! How they stay exact and cheap to write:
//!
//! - each drain batch adds a *chunk* (`rollup_chunks`; two when it holds
//!   both ended hours and the current one): what its newly stored checks
//!   add to each (site, location, hour), encoded here, in the batch's own
//!   transaction. Duplicates skipped by the insert are not in it, so rows
//!   and rollups never disagree, and a batch costs a row or two however
//!   many sites it holds;
//! - at the end of a run, `drain` folds the chunks whose hours have all
//!   ended into `rollups_hourly` and `rollups_daily`, deleting them in the
//!   same transaction ([`fold`]): each hour is written about once;
//! - readers add the chunks not folded yet to the rollups, in one snapshot.

use anyhow::{Context, bail};
use rustc_hash::FxHashMap;
use time::OffsetDateTime;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient};

use crate::history::sketch::Sketch;
use crate::message::Check;

/// What one (site, location, hour) holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub checks: u32,
    pub up_checks: u32,
    /// `response_time_ms` of the up checks.
    pub latency: Sketch,
    pub dns: Sketch,
    pub connect: Sketch,
    pub tls: Sketch,
    pub ttfb: Sketch,
    /// The latest check that saw a server certificate (Unix ms), and that
    /// certificate's expiry (Unix seconds).
    pub tls_seen: Option<(i64, i64)>,
}

impl Tally {
    pub fn add(&mut self, c: &Check) {
        self.checks += 1;
        if c.up {
            self.up_checks += 1;
            self.latency.add(c.response_time_ms);
            self.dns.add_some(c.dns_ms);
            self.connect.add_some(c.connect_ms);
            self.tls.add_some(c.tls_ms);
            self.ttfb.add_some(c.ttfb_ms);
        }
        if let Some(expires) = c.tls_expires_at {
            let seen = (unix_ms(c.started_at), expires.unix_timestamp());
            self.tls_seen = self.tls_seen.max(Some(seen));
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.checks += other.checks;
        self.up_checks += other.up_checks;
        self.tls_seen = self.tls_seen.max(other.tls_seen);
        for (mine, theirs) in self.sketches_mut().into_iter().zip(other.sketches()) {
            mine.merge(theirs);
        }
    }

    /// Many tallies added up at once (the sketches summed in one pass).
    pub fn sum<'a>(tallies: impl Iterator<Item = &'a Tally> + Clone) -> Tally {
        let mut total = Tally::default();
        for t in tallies.clone() {
            total.checks += t.checks;
            total.up_checks += t.up_checks;
            total.tls_seen = total.tls_seen.max(t.tls_seen);
        }
        total.latency = Sketch::sum(tallies.clone().map(|t| &t.latency));
        total.dns = Sketch::sum(tallies.clone().map(|t| &t.dns));
        total.connect = Sketch::sum(tallies.clone().map(|t| &t.connect));
        total.tls = Sketch::sum(tallies.clone().map(|t| &t.tls));
        total.ttfb = Sketch::sum(tallies.map(|t| &t.ttfb));
        total
    }

    /// The sketches in the tables' column order.
    pub fn sketches(&self) -> [&Sketch; 5] {
        [
            &self.latency,
            &self.dns,
            &self.connect,
            &self.tls,
            &self.ttfb,
        ]
    }

    fn sketches_mut(&mut self) -> [&mut Sketch; 5] {
        [
            &mut self.latency,
            &mut self.dns,
            &mut self.connect,
            &mut self.tls,
            &mut self.ttfb,
        ]
    }
}

/// (site, location, start of the UTC hour in Unix seconds).
pub type Key = (String, String, i64);

/// Tallies per (site, location, hour).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Keyed with FxHash: the keys are ours, and hashing them is a
    /// measurable share of drain's CPU with SipHash.
    pub tallies: FxHashMap<Key, Tally>,
}

/// `t` in Unix milliseconds.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The start of `t`'s UTC hour, in Unix seconds.
pub fn hour_of(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(3600) * 3600
}

const FORMAT: u8 = 1;

impl Rollup {
    pub fn add(&mut self, c: &Check) {
        let key = (c.site.clone(), c.location.clone(), hour_of(c.started_at));
        self.tallies.entry(key).or_default().add(c);
    }

    pub fn merge(&mut self, mut other: Rollup) {
        // Walk the smaller of the two.
        if other.tallies.len() > self.tallies.len() {
            std::mem::swap(self, &mut other);
        }
        for (key, tally) in other.tallies {
            match self.tallies.get_mut(&key) {
                Some(mine) => mine.merge(&tally),
                None => {
                    self.tallies.insert(key, tally);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tallies.is_empty()
    }

    /// The latest hour it holds (Unix seconds).
    pub fn last_hour(&self) -> Option<i64> {
        self.tallies.keys().map(|(_, _, h)| *h).max()
    }

    /// The earliest hour it holds (Unix seconds).
    pub fn first_hour(&self) -> Option<i64> {
        self.tallies.keys().map(|(_, _, h)| *h).min()
    }

    /// The same tallies per UTC day (the key's third part is then the
    /// day's start, in Unix seconds).
    pub fn by_day(&self) -> Rollup {
        let mut days = Rollup::default();
        for ((site, location, hour), tally) in &self.tallies {
            let day = hour.div_euclid(86_400) * 86_400;
            days.tallies
                .entry((site.clone(), location.clone(), day))
                .or_default()
                .merge(tally);
        }
        days
    }

    /// The chunk's bytes: a format byte, the first hour, then each tally,
    /// numbers as LEB128 varints (signed ones zigzagged) and hours as
    /// offsets from the first: about 50 bytes for one check.
    pub fn encode(&self) -> Vec<u8> {
        let base = self.tallies.keys().map(|k| k.2).min().unwrap_or(0);
        let mut out = Vec::with_capacity(56 * self.tallies.len() + 16);
        out.push(FORMAT);
        put_i64(&mut out, base);
        put_u64(&mut out, self.tallies.len() as u64);
        for ((site, location, hour), t) in &self.tallies {
            put_str(&mut out, site);
            put_str(&mut out, location);
            put_u64(&mut out, ((hour - base) / 3600) as u64);
            put_u64(&mut out, u64::from(t.checks));
            put_u64(&mut out, u64::from(t.up_checks));
            match t.tls_seen {
                Some((seen, expires)) => {
                    out.push(1);
                    put_i64(&mut out, seen);
                    put_i64(&mut out, expires);
                }
                None => out.push(0),
            }
            for sketch in t.sketches() {
                let buckets = sketch.buckets();
                put_u64(&mut out, buckets.len() as u64);
                for (k, n) in buckets {
                    put_i64(&mut out, i64::from(k));
                    put_u64(&mut out, u64::from(n));
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> anyhow::Result<Rollup> {
        let mut r = Reader { bytes, at: 0 };
        let format = r.take(1)?[0];
        if format != FORMAT {
            bail!("a rollup chunk of format {format}, not {FORMAT}: written by a newer sitewatch?");
        }
        let base = r.i64()?;
        let mut rollup = Rollup::default();
        for _ in 0..r.u64()? {
            let site = r.string()?;
            let location = r.string()?;
            let hour = base + 3600 * r.u32()? as i64;
            let mut t = Tally {
                checks: r.u32()?,
                up_checks: r.u32()?,
                ..Tally::default()
            };
            t.tls_seen = match r.take(1)?[0] {
                0 => None,
                _ => Some((r.i64()?, r.i64()?)),
            };
            for sketch in t.sketches_mut() {
                for _ in 0..r.u64()? {
                    let k = i16::try_from(r.i64()?)
                        .context("a rollup chunk with a bucket out of range")?;
                    let n = r.u32()?;
                    sketch.add_bucket(k, n);
                }
            }
            rollup
                .tallies
                .entry((site, location, hour))
                .or_default()
                .merge(&t);
        }
        if r.at != bytes.len() {
            bail!("a rollup chunk with {} bytes too many", bytes.len() - r.at);
        }
        Ok(rollup)
    }
}

fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_i64(out: &mut Vec<u8>, n: i64) {
    put_u64(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            bail!("a rollup chunk ends too soon");
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u64(&mut self) -> anyhow::Result<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            n |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(n);
            }
        }
        bail!("a rollup chunk with a number too long")
    }

    fn u32(&mut self) -> anyhow::Result<u32> {
        u32::try_from(self.u64()?).context("a rollup chunk with a count out of range")
    }

    fn i64(&mut self) -> anyhow::Result<i64> {
        let n = self.u64()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    fn string(&mut self) -> anyhow::Result<String> {
        let n = usize::try_from(self.u64()?).context("a rollup chunk with a name too long")?;
        String::from_utf8(self.take(n)?.to_vec())
            .context("a rollup chunk with a name that is not UTF-8")
    }
}

/// A batch's chunk of ended hours, as the batch wrote it: the drain that
/// wrote it can fold it without reading it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub ids: Vec<i64>,
    pub ended: Rollup,
}

impl Written {
    pub fn merge(&mut self, other: Written) {
        self.ids.extend(other.ids);
        self.ended.merge(other.ended);
    }
}

/// Adds a batch's chunks, in the batch's transaction: one for the hours
/// that have ended as of `now` (the next fold takes it whole), one for
/// this hour and later.
pub async fn insert_chunk(
    tx: &tokio_postgres::Transaction<'_>,
    rollup: Rollup,
    now: OffsetDateTime,
) -> anyhow::Result<Written> {
    let now = hour_of(now);
    // Usually every check of a batch is on one side: no need to split.
    let (ended, open) = if rollup.tallies.keys().all(|k| k.2 < now) {
        (rollup, Rollup::default())
    } else if rollup.tallies.keys().all(|k| k.2 >= now) {
        (Rollup::default(), rollup)
    } else {
        let (mut ended, mut open) = (Rollup::default(), Rollup::default());
        for (key, tally) in rollup.tallies {
            let part = if key.2 < now { &mut ended } else { &mut open };
            part.tallies.insert(key, tally);
        }
        (ended, open)
    };
    let mut written = Written::default();
    for (part, is_ended) in [(&open, false), (&ended, true)] {
        let (Some(first), Some(last)) = (part.first_hour(), part.last_hour()) else {
            continue;
        };
        let hour = |h| OffsetDateTime::from_unix_timestamp(h).context("an hour out of range");
        let (first, last) = (hour(first)?, hour(last)?);
        let id: i64 = tx
            .query_one(
                "INSERT INTO rollup_chunks (first_hour, last_hour, data) VALUES ($1, $2, $3) RETURNING id",
                &[&first, &last, &part.encode()],
            )
            .await
            .context("cannot insert the batch's rollup chunk")?
            .get(0);
        if is_ended {
            written.ids.push(id);
        }
    }
    written.ended = ended;
    Ok(written)
}

/// What a fold did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Folded {
    pub chunks: u64,
    pub hours: u64,
    pub days: u64,
}

/// Folds the chunks whose hours all ended before `before` into
/// `rollups_hourly` and `rollups_daily`, and deletes them, in one
/// transaction. Another fold under way makes this one do nothing.
///
/// `own`: the chunks of ended hours this process wrote, with what they
/// hold, so that they need not be read back (the common case: a drain
/// folds what it stored). Should any of them be gone (folded by another
/// process meanwhile), every chunk is read back instead.
pub async fn fold(
    client: &mut Client,
    before: OffsetDateTime,
    own: &Written,
) -> anyhow::Result<Folded> {
    match fold_once(client, before, Some(own)).await? {
        Some(folded) => Ok(folded),
        None => Ok(fold_once(client, before, None).await?.unwrap_or_default()),
    }
}

/// One attempt; `None` when `own` no longer matches the table.
async fn fold_once(
    client: &mut Client,
    before: OffsetDateTime,
    own: Option<&Written>,
) -> anyhow::Result<Option<Folded>> {
    let tx = client
        .transaction()
        .await
        .context("cannot begin a transaction")?;
    let key = crate::keys::lock_key("sitewatch:fold");
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])
        .await
        .context("cannot take the fold lock")?
        .get(0);
    if !locked {
        return Ok(Some(Folded::default()));
    }
    let mut rollup = Rollup::default();
    let mut chunks = 0;
    if let Some(own) = own.filter(|o| !o.ids.is_empty()) {
        let deleted = tx
            .execute("DELETE FROM rollup_chunks WHERE id = ANY($1)", &[&own.ids])
            .await
            .context("cannot take the rollup chunks")?;
        if deleted != own.ids.len() as u64 {
            return Ok(None);
        }
        rollup = own.ended.clone();
        chunks = deleted;
    }
    let rows = tx
        .query(
            "DELETE FROM rollup_chunks WHERE last_hour < $1 RETURNING data",
            &[&before],
        )
        .await
        .context("cannot take the rollup chunks")?;
    rollup.merge(decode_all(&rows)?);
    let days = rollup.by_day();
    let folded = Folded {
        chunks: chunks + rows.len() as u64,
        hours: rollup.tallies.len() as u64,
        days: days.tallies.len() as u64,
    };
    if !rollup.is_empty() {
        upsert(&tx, "rollups_hourly", "hour", &rollup, |s| {
            OffsetDateTime::from_unix_timestamp(s).map(Stamp::Time)
        })
        .await?;
        upsert(&tx, "rollups_daily", "day", &days, |s| {
            OffsetDateTime::from_unix_timestamp(s).map(|t| Stamp::Date(t.date()))
        })
        .await?;
    }
    tx.commit().await.context("cannot commit the fold")?;
    Ok(Some(folded))
}

enum Stamp {
    Time(OffsetDateTime),
    Date(time::Date),
}

const SKETCH_COLUMNS: [&str; 5] = ["latency", "dns", "connect", "tls", "ttfb"];

/// Adds the tallies to `table`: reads the rows they add to (locked; their
/// sketches as bytes), adds them up here (counts add up, sketches merge
/// bucket by bucket, the latest certificate wins), and writes the sums
/// back through a staging table, each sketch as arrays and as bytes (the
/// `*_packed` columns: packing them here rather than in SQL spares
/// PostgreSQL 37 µs per row, migration 12). Merging here rather than in
/// SQL spares PostgreSQL 43 µs per sketch (`sitewatch_sketch_merge`).
async fn upsert(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    time_column: &str,
    rollup: &Rollup,
    stamp: impl Fn(i64) -> Result<Stamp, time::error::ComponentRange>,
) -> anyhow::Result<()> {
    let mut sums = existing(tx, table, time_column, rollup).await?;
    for (key, tally) in &rollup.tallies {
        sums.entry(key.clone()).or_default().merge(tally);
    }
    let staging = format!("staging_{table}");
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table}) ON COMMIT DELETE ROWS"
    ))
    .await
    .with_context(|| format!("cannot create {staging}"))?;
    let mut columns = vec![
        "site".to_owned(),
        "location".to_owned(),
        time_column.to_owned(),
        "checks".to_owned(),
        "up_checks".to_owned(),
    ];
    let mut types = vec![
        Type::TEXT,
        Type::TEXT,
        if time_column == "day" {
            Type::DATE
        } else {
            Type::TIMESTAMPTZ
        },
        Type::INT4,
        Type::INT4,
    ];
    for s in SKETCH_COLUMNS {
        columns.push(format!("{s}_keys"));
        columns.push(format!("{s}_counts"));
        columns.push(format!("{s}_packed"));
        types.push(Type::INT2_ARRAY);
        types.push(Type::INT4_ARRAY);
        types.push(Type::BYTEA);
    }
    columns.push("tls_checked_at".to_owned());
    columns.push("tls_expires_at".to_owned());
    types.push(Type::TIMESTAMPTZ);
    types.push(Type::TIMESTAMPTZ);
    let list = columns.join(", ");
    let sink = tx
        .copy_in(&format!("COPY {staging} ({list}) FROM STDIN BINARY"))
        .await
        .with_context(|| format!("cannot copy into {staging}"))?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for ((site, location, start), t) in &sums {
        let when = stamp(*start).context("a rollup time out of range")?;
        let (checks, up) = (t.checks as i32, t.up_checks as i32);
        let arrays: Vec<(Vec<i16>, Vec<i32>, Vec<u8>)> = t
            .sketches()
            .iter()
            .map(|s| {
                let (keys, counts) = s.to_arrays();
                (keys, counts, s.to_bytes())
            })
            .collect();
        let mut row: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![site, location];
        match &when {
            Stamp::Time(t) => row.push(t),
            Stamp::Date(d) => row.push(d),
        }
        row.push(&checks);
        row.push(&up);
        for (keys, counts, packed) in &arrays {
            row.push(keys);
            row.push(counts);
            row.push(packed);
        }
        let tls = match t.tls_seen {
            Some((seen, expires)) => (
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(seen) * 1_000_000).ok(),
                OffsetDateTime::from_unix_timestamp(expires).ok(),
            ),
            None => (None, None),
        };
        row.push(&tls.0);
        row.push(&tls.1);
        writer
            .as_mut()
            .write(&row)
            .await
            .with_context(|| format!("cannot copy into {staging}"))?;
    }
    writer
        .finish()
        .await
        .with_context(|| format!("cannot copy into {staging}"))?;
    let set: Vec<String> = columns[3..]
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO {table} ({list}) SELECT {list} FROM {staging}
             ON CONFLICT (site, location, {time_column}) DO UPDATE SET {}",
            set.join(", ")
        ),
        &[],
    )
    .await
    .with_context(|| format!("cannot add the rollups to {table}"))?;
    Ok(())
}

/// The rows of `table` that `rollup` adds to, locked until the fold
/// commits, as tallies.
async fn existing(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    time_column: &str,
    rollup: &Rollup,
) -> anyhow::Result<FxHashMap<Key, Tally>> {
    let mut sites = Vec::with_capacity(rollup.tallies.len());
    let mut locations = Vec::with_capacity(rollup.tallies.len());
    let mut starts = Vec::with_capacity(rollup.tallies.len());
    for (site, location, start) in rollup.tallies.keys() {
        sites.push(site.as_str());
        locations.push(location.as_str());
        starts.push(*start);
    }
    // (the time, as Unix seconds; the key's time matched on the column,
    // so that the primary key serves the lookup)
    let (time, matched) = if time_column == "day" {
        (
            "(r.day::timestamp AT TIME ZONE 'UTC')",
            "r.day = (to_timestamp(k.t) AT TIME ZONE 'UTC')::date",
        )
    } else {
        ("r.hour", "r.hour = to_timestamp(k.t)")
    };
    let packed: Vec<String> = SKETCH_COLUMNS
        .iter()
        .map(|s| format!("r.{s}_packed"))
        .collect();
    let rows = tx
        .query(
            &format!(
                "SELECT r.site, r.location, extract(epoch FROM {time})::bigint, r.checks, r.up_checks,
                        {}, (extract(epoch FROM r.tls_checked_at) * 1000)::bigint,
                        extract(epoch FROM r.tls_expires_at)::bigint
                 FROM {table} r
                 JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k(site, location, t)
                   ON r.site = k.site AND r.location = k.location AND {matched}
                 FOR UPDATE OF r",
                packed.join(", ")
            ),
            &[&sites, &locations, &starts],
        )
        .await
        .with_context(|| format!("cannot read {table}"))?;
    let mut out = FxHashMap::default();
    for row in rows {
        let sketch = |i: usize| Sketch::from_bytes(row.get::<_, &[u8]>(i));
        let tls: (Option<i64>, Option<i64>) = (row.get(10), row.get(11));
        let tally = Tally {
            checks: row.get::<_, i32>(3) as u32,
            up_checks: row.get::<_, i32>(4) as u32,
            latency: sketch(5)?,
            dns: sketch(6)?,
            connect: sketch(7)?,
            tls: sketch(8)?,
            ttfb: sketch(9)?,
            tls_seen: tls.0.zip(tls.1),
        };
        out.insert((row.get(0), row.get(1), row.get(2)), tally);
    }
    Ok(out)
}

/// The rollups not yet folded, as a reader in the same snapshot sees them.
pub async fn open_chunks(client: &impl GenericClient) -> anyhow::Result<Rollup> {
    let rows = client
        .query("SELECT data FROM rollup_chunks", &[])
        .await
        .context("cannot read the rollup chunks")?;
    decode_all(&rows)
}

/// The chunks of these rows (their first column) merged into one.
fn decode_all(rows: &[tokio_postgres::Row]) -> anyhow::Result<Rollup> {
    let mut rollup = Rollup::default();
    for row in rows {
        rollup.merge(Rollup::decode(row.get(0))?);
    }
    Ok(rollup)
}

#[cfg(test)]
#[path = "rollup_tests.rs"]
mod tests;
