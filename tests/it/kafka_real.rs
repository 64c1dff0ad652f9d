//! What real Apache Kafka does that our users rely on, against the stack's
//! broker: drain's offsets read by Kafka's own tooling (so lag monitoring
//! works unchanged), and partitions added between two runs.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use crate::drain::{drain, figures, record, sample};
use crate::support::kafka::{brokers, publish, unique_topic};
use crate::support::{create_topic, db};

/// `kafka-consumer-groups --describe --group GROUP`: Kafka's own
/// ConsumerGroupCommand from the stack's jars; each partition's lag.
fn lag(group: &str) -> Vec<(String, i64)> {
    let libs = std::env::var("STACK_KAFKA_LIBS")
        .expect("STACK_KAFKA_LIBS: eval \"$(scripts/stack env)\" (the stack's Apache Kafka)");
    let java = std::env::var("STACK_JAVA").unwrap_or_else(|_| "java".to_owned());
    let out = std::process::Command::new(java)
        .args(["-cp", &format!("{libs}/*")])
        .arg("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand")
        .args([
            "--bootstrap-server",
            &brokers(),
            "--describe",
            "--group",
            group,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.starts_with(group))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (
                cells[2].to_owned(),
                cells[5].parse().unwrap_or_else(|_| panic!("no lag in {l}")),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kafkas_own_tooling_sees_drains_offsets_with_zero_lag() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("group-lag");
    create_topic(dir.path(), &topic, 3).await;
    let checks: Vec<_> = (0..300).map(sample).collect();
    publish(&topic, &checks.iter().map(record).collect::<Vec<_>>()).await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["stored"], 300);
    let lags = lag(&format!("{topic}-drain"));
    assert_eq!(lags.len(), 3, "{lags:?}");
    assert!(lags.iter().all(|(_, l)| *l == 0), "{lags:?}");

    // More records: the lag Kafka reports is what drain has not stored.
    publish(&topic, &[record(&sample(300))]).await;
    let behind: i64 = lag(&format!("{topic}-drain")).iter().map(|(_, l)| l).sum();
    assert_eq!(behind, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn partitions_added_between_two_runs_are_read_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("grow");
    create_topic(dir.path(), &topic, 1).await;
    publish(
        &topic,
        &(0..10).map(|i| record(&sample(i))).collect::<Vec<_>>(),
    )
    .await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["stored"], 10);

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let grown = admin
        .create_partitions(
            &[NewPartitions::new(&topic, 4)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    assert!(grown.iter().all(Result::is_ok), "{grown:?}");
    // Keys spread over the four partitions now.
    publish(
        &topic,
        &(10..110).map(|i| record(&sample(i))).collect::<Vec<_>>(),
    )
    .await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["stored"], 100, "{}", run.stderr);
    let client = db::connect(&url).await;
    assert_eq!(db::count(&client, "SELECT count(*) FROM checks").await, 110);
    assert_eq!(
        db::count(
            &client,
            &format!(
                "SELECT count(DISTINCT kafka_partition) FROM checks WHERE kafka_topic = '{topic}'"
            )
        )
        .await,
        4,
        "records landed on every partition and drain read them all"
    );
}

/// Records the broker deleted before drain reached them (retention moves a
/// partition's start past them; DeleteRecords moves it the same way, at
/// once): drain says how many, and stores the rest.
#[tokio::test(flavor = "multi_thread")]
async fn records_deleted_before_drain_reached_them_are_counted_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("retention");
    create_topic(dir.path(), &topic, 1).await;
    publish(
        &topic,
        &(0..10).map(|i| record(&sample(i))).collect::<Vec<_>>(),
    )
    .await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(figures(&run)["stored"], 10, "{}", run.stderr);
    publish(
        &topic,
        &(10..30).map(|i| record(&sample(i))).collect::<Vec<_>>(),
    )
    .await;

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let mut before = rdkafka::TopicPartitionList::new();
    before
        .add_partition_offset(&topic, 0, rdkafka::Offset::Offset(20))
        .unwrap();
    let deleted = admin
        .delete_records(&before, &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(
        deleted.find_partition(&topic, 0).unwrap().offset(),
        rdkafka::Offset::Offset(20)
    );

    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["stored"], 10, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("; 10 records were deleted by retention before any drain reached them"),
        "{}",
        run.stderr
    );
    let client = db::connect(&url).await;
    assert_eq!(db::count(&client, "SELECT count(*) FROM checks").await, 20);
}
