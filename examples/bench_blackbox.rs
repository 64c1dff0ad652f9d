//! Drives Prometheus blackbox_exporter the way a Prometheus server would:
//! one `GET /probe?module=M&target=URL` per site, at most CONCURRENCY in
//! flight. The baseline of `bench/probe`; not a test.
//!
//! ```sh
//! cargo run --release --example bench_blackbox -- TARGETS_JSON EXPORTER CONCURRENCY
//! ```
//!
//! TARGETS_JSON is `bench_targets`' list; a target with a regex is probed
//! with module `regex`, the others with `plain`. Prints one JSON line:
//! probes, successes, seconds.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

#[derive(serde::Deserialize)]
struct Target {
    url: String,
    regex: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, targets, exporter, concurrency] = args.as_slice() else {
        anyhow::bail!("usage: bench_blackbox TARGETS_JSON EXPORTER_URL CONCURRENCY");
    };
    let targets: Vec<Target> = serde_json::from_slice(&std::fs::read(targets)?)?;
    let concurrency: usize = concurrency.parse()?;
    rlimit::increase_nofile_limit(u64::MAX)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()?;
        let exporter = Arc::new(exporter.trim_end_matches('/').to_owned());
        let start = Instant::now();
        let results: Vec<anyhow::Result<bool>> = futures::stream::iter(targets)
            .map(|t| {
                let (client, exporter) = (client.clone(), Arc::clone(&exporter));
                async move {
                    let module = if t.regex.is_some() { "regex" } else { "plain" };
                    let url = url::Url::parse_with_params(
                        &format!("{exporter}/probe"),
                        &[("module", module), ("target", &t.url)],
                    )?;
                    let text = client
                        .get(url)
                        .send()
                        .await?
                        .error_for_status()?
                        .text()
                        .await?;
                    Ok(text.lines().any(|l| l == "probe_success 1"))
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let seconds = start.elapsed().as_secs_f64();
        let failed_requests = results.iter().filter(|r| r.is_err()).count();
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            eprintln!("bench_blackbox: {failed_requests} requests failed, first: {e:#}");
        }
        let successes = results.iter().filter(|r| matches!(r, Ok(true))).count();
        println!(
            "{}",
            serde_json::json!({
                "probes": results.len(),
                "successes": successes,
                "failed_requests": failed_requests,
                "seconds": seconds,
            })
        );
        anyhow::Ok(())
    })
}
