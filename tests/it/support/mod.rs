//! Helpers shared by the integration tests: real servers, certificates, the
//! real broker, and the real binary.

pub mod certs;
pub mod db;
pub mod http;
pub mod kafka;
pub mod pg;
pub mod receiver;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The outcome of one run of the `sitewatch` binary.
#[derive(Debug)]
pub struct Exited {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Exited {
    /// The JSON lines on stdout.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Runs `sitewatch ARGS` in `dir` with exactly `env` (no inherited
/// `SITEWATCH_*`), bounded to two minutes.
pub async fn sitewatch(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Exited {
    let start = Instant::now();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("sitewatch ran over two minutes")
        .expect("sitewatch did not start");
    Exited {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
        elapsed: start.elapsed(),
    }
}

/// Asserts that a job ended by its deadline rather than by whatever it was
/// waiting for: sooner than halfway from the deadline to `unbounded`, the
/// time the wait would have taken without it. A slow machine does not fail
/// it; a job that waits for its next timeout does.
#[track_caller]
pub fn assert_ended_by(run: &Exited, deadline: Duration, unbounded: Duration) {
    assert!(unbounded > deadline, "the wait the deadline cuts is longer");
    let bound = deadline + (unbounded - deadline) / 2;
    assert!(
        run.elapsed < bound,
        "took {:?} with a deadline of {deadline:?} (waiting would take {unbounded:?}): {}",
        run.elapsed,
        run.stderr
    );
}

/// Creates `topic` on the local broker with `sitewatch migrate --only kafka`.
pub async fn create_topic(dir: &Path, topic: &str, partitions: u32) {
    let run = sitewatch(
        dir,
        &["migrate", "--only", "kafka"],
        &[
            ("SITEWATCH_KAFKA_BROKERS", kafka::brokers()),
            ("SITEWATCH_KAFKA_TOPIC", topic.to_owned()),
            ("SITEWATCH_KAFKA_PARTITIONS", partitions.to_string()),
            ("SITEWATCH_KAFKA_REPLICATION_FACTOR", "1".to_owned()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "migrate failed: {}", run.stderr);
}
