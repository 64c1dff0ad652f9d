//! PostgreSQL alone, for `bench/drain`: how fast drain's database side can
//! go with no Kafka in the way. Replicates the JSON checks of SAMPLES (one
//! per line) to ROWS checks with fresh UUIDv7s, then stores them with
//! `sitewatch::store::store` in batches of 5000 on WRITERS connections at
//! once, each on its own share, as drain does. Prints one JSON line.
//!
//!   eval "$(scripts/stack env)"
//!   cargo run --release --example bench_store_alone -- SAMPLES ROWS [WRITERS]

use std::time::{Duration, Instant};

use sitewatch::config::DatabaseSettings;
use sitewatch::message::Check;
use sitewatch::store::{self, Batch, Located};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(samples), Some(rows)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: bench_store_alone SAMPLES ROWS [WRITERS]");
    };
    let rows: usize = rows.parse()?;
    let writers: usize = args.get(3).map_or(Ok(2), |w| w.parse())?;
    let samples: Vec<Check> = std::fs::read_to_string(samples)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let url = std::env::var("SITEWATCH_DATABASE_URL")?;
    let db = DatabaseSettings {
        url: sitewatch::secret::Secret::new(url),
        ca: std::env::var_os("SITEWATCH_DATABASE_CA").map(Into::into),
    };

    // The checks, decoded already: only the database's side is timed.
    let mut shares: Vec<Vec<Batch>> = (0..writers).map(|_| Vec::new()).collect();
    let start_time = time::OffsetDateTime::now_utc() - Duration::from_secs(86_400);
    let mut batch = Batch::default();
    for i in 0..rows {
        let mut check = samples[i % samples.len()].clone();
        check.started_at = start_time + Duration::from_secs((i / samples.len()) as u64 * 60);
        check.check_id = uuid::Uuid::now_v7();
        let partition = (i % 6) as i32;
        batch.checks.push(Located {
            check,
            partition,
            offset: i as i64,
        });
        batch.next_offsets.insert(partition, i as i64 + 1);
        if batch.len() == 5000 || i + 1 == rows {
            let share = (i / 5000) % writers;
            shares[share].push(std::mem::take(&mut batch));
        }
    }

    let mut clients = Vec::new();
    for _ in 0..writers {
        let client = store::connect(&db).await?;
        store::prepare(&client).await?;
        clients.push(client);
    }
    clients[0]
        .batch_execute("TRUNCATE checks, dead_letters, drain_offsets")
        .await?;
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(shares)
        .enumerate()
        .map(|(w, (mut client, batches))| {
            tokio::spawn(async move {
                let learned = store::Learned::default();
                let mut stored = 0;
                for batch in &batches {
                    stored += store::store(
                        &mut client,
                        &learned,
                        &format!("alone-{w}"),
                        "alone",
                        batch,
                        time::OffsetDateTime::now_utc(),
                    )
                    .await?
                    .inserted;
                }
                anyhow::Ok(stored)
            })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        stored += t.await??;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"rows": stored, "seconds": seconds, "writers": writers})
    );
    Ok(())
}
