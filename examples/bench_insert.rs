//! Benchmark: how drain should put a batch of checks into PostgreSQL.
//! Compares what drain does (`sitewatch::store::store`: binary COPY into a
//! staging table, then `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, plus
//! the offsets) with one `INSERT ... SELECT FROM UNNEST(...)` per batch, in
//! one run, on the same database, at several batch sizes. Prints medians.
//!
//!   eval "$(scripts/stack env)"
//!   cargo run --release --example bench_insert [ROWS] [RUNS]

use std::time::Instant;

use sitewatch::message::{Check, ErrorKind, SCHEMA};
use sitewatch::store::{self, Batch, Located};
use time::OffsetDateTime;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

fn check(i: usize) -> Check {
    let up = !i.is_multiple_of(5);
    Check {
        schema: SCHEMA,
        check_id: Uuid::now_v7(),
        site: format!("site-{}", i % 1000),
        url: format!("https://site-{}.example.com/health", i % 1000),
        method: "GET".into(),
        location: "bench".into(),
        started_at: OffsetDateTime::now_utc(),
        up,
        status_code: up.then_some(200),
        reason: up.then(|| "OK".into()),
        response_time_ms: 100.0 + (i % 97) as f64,
        dns_ms: Some(1.2),
        connect_ms: Some(0.3),
        tls_ms: Some(4.5),
        ttfb_ms: Some(90.0),
        ip: Some("127.0.0.1".parse().unwrap()),
        regex: Some("(?i)ok".into()),
        regex_matched: Some(up),
        json_matched: None,
        redirects: None,
        final_url: None,
        degraded: None,
        body_bytes: Some(32_000),
        tls_expires_at: Some(OffsetDateTime::now_utc()),
        error_kind: (!up).then_some(ErrorKind::Timeout),
        error: (!up).then(|| "timed out after 10s waiting for the response".into()),
        condition: None,
        run_id: None,
        attempts: None,
        dns_rcode: None,
        dns_answers: None,
        packet_loss: None,
        tls_names: None,
        conditions: None,
    }
}

/// The alternative: one `INSERT ... SELECT FROM UNNEST(...)` per batch,
/// every column an array parameter (what drain did before this benchmark).
async fn unnest_batch(client: &mut Client, topic: &str, batch: &Batch) -> anyhow::Result<u64> {
    let checks = &batch.checks;
    macro_rules! col {
        ($f:expr) => {
            checks.iter().map(|l| &l.check).map($f).collect::<Vec<_>>()
        };
    }
    let tx = client.transaction().await?;
    let inserted = tx
        .execute(
            "INSERT INTO checks (check_id, schema, site, url, method, location, started_at, up,
                status_code, reason, response_time_ms, dns_ms, connect_ms, tls_ms, ttfb_ms, ip, regex,
                regex_matched, body_bytes, tls_expires_at, error_kind, error,
                kafka_topic, kafka_partition, kafka_offset)
             SELECT c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18,
                c19, c20, c21, c22, $23, c24, c25
             FROM UNNEST($1::uuid[], $2::smallint[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::timestamptz[], $8::boolean[], $9::smallint[], $10::text[], $11::float8[],
                $12::float8[], $13::float8[], $14::float8[], $15::float8[], $16::inet[], $17::text[],
                $18::boolean[], $19::bigint[], $20::timestamptz[], $21::text[], $22::text[],
                $24::integer[], $25::bigint[])
                AS u(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17,
                     c18, c19, c20, c21, c22, c24, c25)
             ON CONFLICT (check_id) DO NOTHING",
            &[
                &col!(|c: &Check| c.check_id), &col!(|c: &Check| c.schema as i16), &col!(|c: &Check| c.site.clone()),
                &col!(|c: &Check| c.url.clone()), &col!(|c: &Check| c.method.clone()), &col!(|c: &Check| c.location.clone()),
                &col!(|c: &Check| c.started_at), &col!(|c: &Check| c.up), &col!(|c: &Check| c.status_code.map(|s| s as i16)),
                &col!(|c: &Check| c.reason.clone()), &col!(|c: &Check| c.response_time_ms), &col!(|c: &Check| c.dns_ms),
                &col!(|c: &Check| c.connect_ms), &col!(|c: &Check| c.tls_ms), &col!(|c: &Check| c.ttfb_ms), &col!(|c: &Check| c.ip),
                &col!(|c: &Check| c.regex.clone()), &col!(|c: &Check| c.regex_matched),
                &col!(|c: &Check| c.body_bytes.map(|b| b as i64)), &col!(|c: &Check| c.tls_expires_at),
                &col!(|c: &Check| c.error_kind.map(|k| k.as_str())), &col!(|c: &Check| c.error.clone()), &topic,
                &checks.iter().map(|l| l.partition).collect::<Vec<_>>(),
                &checks.iter().map(|l| l.offset).collect::<Vec<_>>(),
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(inserted)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).map_or(Ok(100_000), |a| a.parse())?;
    let runs: usize = args.get(2).map_or(Ok(5), |a| a.parse())?;
    let base = std::env::var("SITEWATCH_DATABASE_URL").map_err(|_| {
        anyhow::anyhow!("set SITEWATCH_DATABASE_URL: eval \"$(scripts/stack env)\"")
    })?;
    let (admin, conn) = tokio_postgres::connect(&base, NoTls).await?;
    tokio::spawn(conn);
    let name = format!("bench_insert_{}", std::process::id());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
    let (mut client, conn) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(conn);
    store::migrate(&mut client).await?;
    store::prepare(&client).await?;

    println!("rows per run: {rows}, runs: {runs}, medians of rows/s (higher is better)");
    println!(
        "{:>10} {:>12} {:>12} {:>8}",
        "batch", "unnest", "copy", "copy/unnest"
    );
    for batch_size in [500, 5000, 20000] {
        let mut unnest = Vec::new();
        let mut copy = Vec::new();
        for run in 0..runs {
            // Alternate the order so neither always meets a warmer cache.
            for mode in if run % 2 == 0 {
                ["unnest", "copy"]
            } else {
                ["copy", "unnest"]
            } {
                client.batch_execute("TRUNCATE checks").await?;
                let checks: Vec<Check> = (0..rows).map(check).collect();
                let start = Instant::now();
                let mut offset = 0i64;
                let learned = store::Learned::default();
                for chunk in checks.chunks(batch_size) {
                    let mut batch = Batch::default();
                    for c in chunk {
                        batch.checks.push(Located {
                            check: c.clone(),
                            partition: 0,
                            offset,
                        });
                        offset += 1;
                    }
                    batch.next_offsets.insert(0, offset);
                    if mode == "unnest" {
                        unnest_batch(&mut client, "bench", &batch).await?;
                    } else {
                        store::store(
                            &mut client,
                            &learned,
                            "bench",
                            "bench",
                            &batch,
                            time::OffsetDateTime::now_utc(),
                        )
                        .await?;
                    }
                }
                let rate = rows as f64 / start.elapsed().as_secs_f64();
                if mode == "unnest" {
                    unnest.push(rate)
                } else {
                    copy.push(rate)
                }
            }
        }
        let (u, c) = (median(unnest), median(copy));
        println!("{batch_size:>10} {u:>12.0} {c:>12.0} {:>8.2}", c / u);
    }
    drop(client);
    admin
        .batch_execute(&format!("DROP DATABASE {name}"))
        .await?;
    Ok(())
}
