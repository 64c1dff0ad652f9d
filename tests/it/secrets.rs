//! Secrets never appear in any output, at any log level.

use crate::support::http::{self, Server};
use crate::support::sitewatch;

const KAFKA_PASSWORD: &str = "kafka-Hunter2-secret";
const DB_PASSWORD: &str = "pg-Swordfish-secret";

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_appears_in_any_output_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let closed = http::closed_port().await;
    let password_file = dir.path().join("kafka-password");
    std::fs::write(&password_file, format!("{KAFKA_PASSWORD}\n")).unwrap();
    let env = vec![
        ("RUST_LOG", "trace".to_owned()),
        (
            "SITEWATCH_SITES",
            format!(r#"[{{"name":"a","url":"{}"}}]"#, web.url("/ok")),
        ),
        ("SITEWATCH_KAFKA_BROKERS", format!("127.0.0.1:{closed}")),
        ("SITEWATCH_KAFKA_PUBLISH_TIMEOUT", "1s".to_owned()),
        (
            "SITEWATCH_KAFKA_SECURITY_PROTOCOL",
            "sasl_plaintext".to_owned(),
        ),
        ("SITEWATCH_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512".to_owned()),
        ("SITEWATCH_KAFKA_SASL_USERNAME", "avnadmin".to_owned()),
        (
            "SITEWATCH_KAFKA_SASL_PASSWORD_FILE",
            password_file.display().to_string(),
        ),
        (
            "SITEWATCH_DATABASE_URL",
            format!(
                "postgres://avnadmin:{DB_PASSWORD}@127.0.0.1:{closed}/defaultdb?sslmode=disable"
            ),
        ),
    ];
    let runs: [&[&str]; 6] = [
        &["probe-once"],
        &["drain"],
        &["migrate", "--only", "database"],
        &["check", "http://127.0.0.1:1/"],
        &["--help"],
        &["drain", "--batch-size", "0"],
    ];
    for args in runs {
        let run = sitewatch(dir.path(), args, &env).await;
        if args[0] == "probe-once" {
            assert!(
                run.stderr.contains("TRACE"),
                "trace logging was not on: {}",
                run.stderr
            );
        }
        for secret in [KAFKA_PASSWORD, DB_PASSWORD] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "`sitewatch {}` printed a secret:\n{}\n{}",
                args.join(" "),
                run.stdout,
                run.stderr
            );
        }
    }
    // A bad secret setting is named, its value is not.
    let mut bad = env.clone();
    bad.push(("SITEWATCH_DATABASE_URL_FILE", "/nonexistent".to_owned()));
    let run = sitewatch(dir.path(), &["drain"], &bad).await;
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains(DB_PASSWORD), "{}", run.stderr);
}

/// The password of the site URL in the tests below.
const URL_PASSWORD: &str = "s3cret";

#[tokio::test(flavor = "multi_thread")]
async fn url_credentials_are_used_and_never_published_stored_or_printed() {
    use crate::support::kafka::{read_all, unique_topic};
    use crate::support::{create_topic, db};
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let with = web
        .url("/auth")
        .replacen("http://", &format!("http://user:{URL_PASSWORD}@"), 1);
    let without = web
        .url("/auth")
        .replacen("http://", "http://user:wrong@", 1);
    let topic = unique_topic("url-credentials");
    create_topic(dir.path(), &topic, 1).await;
    let url = db::fresh(dir.path()).await;
    let summary = dir.path().join("summary.md");
    let env = vec![
        ("SITEWATCH_KAFKA_BROKERS", crate::support::kafka::brokers()),
        ("SITEWATCH_KAFKA_TOPIC", topic.clone()),
        ("SITEWATCH_DATABASE_URL", url.clone()),
        ("RUST_LOG", "trace".to_owned()),
        (
            "SITEWATCH_SITES",
            format!(r#"[{{"name":"right","url":"{with}"}},{{"name":"wrong","url":"{without}"}}]"#),
        ),
    ];
    let probe = sitewatch(
        dir.path(),
        &["probe-once", "--summary", summary.to_str().unwrap()],
        &env,
    )
    .await;
    assert_eq!(probe.code, 0, "{}", probe.stderr);
    let drain = sitewatch(dir.path(), &["drain"], &env).await;
    assert_eq!(drain.code, 0, "{}", drain.stderr);
    let check = sitewatch(dir.path(), &["check", &with], &env).await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(
        check.stdout.contains(" UP 200"),
        "the credentials were used: {}",
        check.stdout
    );
    let dry = sitewatch(dir.path(), &["probe-once", "--dry-run"], &env).await;
    for run in [&probe, &drain, &check, &dry] {
        assert!(
            !run.stdout.contains(URL_PASSWORD) && !run.stderr.contains(URL_PASSWORD),
            "printed: {}\n{}",
            run.stdout,
            run.stderr
        );
    }
    assert!(
        !std::fs::read_to_string(&summary)
            .unwrap()
            .contains(URL_PASSWORD)
    );

    let published = read_all(&topic);
    assert_eq!(published.len(), 2);
    for record in &published {
        let text = record.value.to_string();
        assert!(
            !text.contains(URL_PASSWORD) && !text.contains("wrong@"),
            "{text}"
        );
        assert_eq!(record.value["url"], web.url("/auth"));
        let expected = if record.key == "right" { 200 } else { 401 };
        assert_eq!(record.value["status_code"], expected, "{text}");
    }
    let client = db::connect(&url).await;
    let stored = db::count(
        &client,
        &format!("SELECT count(*) FROM checks WHERE url LIKE '%{URL_PASSWORD}%' OR url LIKE '%@%'"),
    )
    .await;
    assert_eq!(stored, 0);
    assert_eq!(db::count(&client, "SELECT count(*) FROM checks").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_ignore_the_proxy_the_environment_names() {
    // A "proxy" that says 200 to anything: through it, a closed port read up.
    let proxy = Server::start().await;
    let closed = http::closed_port().await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("http://127.0.0.1:{closed}/ok");
    let mut env = Vec::new();
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        env.push((name, format!("http://{}", proxy.addr)));
    }
    let run = sitewatch(dir.path(), &["check", "--json", &target], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["up"], false, "{v}");
    assert_eq!(v["error_kind"], "connect", "{v}");
    assert_eq!(proxy.hits(), 0, "the proxy was used");
}

/// A site's secrets (`${SITEWATCH_SECRET_...}` in a header and in the URL,
/// from the environment and from a file) are used for the request and are
/// nowhere else: not in the message on Kafka, not in PostgreSQL (checks, or
/// the sites table), not in a log line.
#[tokio::test(flavor = "multi_thread")]
async fn site_secrets_are_sent_and_never_stored_or_shown() {
    use crate::support::{create_topic, db, kafka};
    const TOKEN: &str = "qu3ry-T0ken-secret";
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let topic = kafka::unique_topic("site-secrets");
    create_topic(dir.path(), &topic, 1).await;
    let url = db::fresh(dir.path()).await;
    std::fs::write(
        dir.path().join("sites.toml"),
        format!(
            r#"[[site]]
name = "auth"
url = "{}?token=${{SITEWATCH_SECRET_TOKEN}}"
headers = {{ Authorization = "Basic ${{SITEWATCH_SECRET_BASIC}}" }}

[[site]]
name = "refused"
url = "http://127.0.0.1:{}/x?token=${{SITEWATCH_SECRET_TOKEN}}"
"#,
            web.url("/auth"),
            http::closed_port().await
        ),
    )
    .unwrap();
    let mut env = crate::drain::env(&topic, &url);
    env.push(("RUST_LOG", "trace".to_owned()));
    env.push(("SITEWATCH_SECRET_BASIC", http::AUTH_BASIC.to_owned()));
    env.push((
        "SITEWATCH_SECRET_TOKEN_FILE",
        token_file.display().to_string(),
    ));
    let mut logs = String::new();
    for args in [&["migrate"][..], &["probe-once"], &["drain"]] {
        let run = sitewatch(dir.path(), args, &env).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        logs.push_str(&run.stdout);
        logs.push_str(&run.stderr);
    }
    let check = sitewatch(dir.path(), &["check", "--site", "auth", "--json"], &env).await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    logs.push_str(&check.stdout);
    logs.push_str(&check.stderr);
    for secret in [TOKEN, http::AUTH_BASIC] {
        assert!(!logs.contains(secret), "a log shows {secret}");
    }
    let messages = kafka::read_all(&topic);
    assert_eq!(messages.len(), 2);
    for m in &messages {
        let text = m.value.to_string();
        assert!(
            !text.contains(TOKEN) && !text.contains(http::AUTH_BASIC),
            "{text}"
        );
        assert!(
            text.contains("${SITEWATCH_SECRET_TOKEN}"),
            "the URL as written: {text}"
        );
    }
    let by = |name: &str| messages.iter().find(|m| m.value["site"] == name).unwrap();
    assert_eq!(
        by("auth").value["up"],
        true,
        "the secrets were sent: {}",
        by("auth").value
    );
    assert_eq!(by("refused").value["up"], false);
    let client = db::connect(&url).await;
    let rows: Vec<String> = client
        .query("SELECT row_to_json(c)::text FROM checks c", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert!(
            !row.contains(TOKEN) && !row.contains(http::AUTH_BASIC),
            "{row}"
        );
    }
    // Added to the sites table, a site keeps its references, not the values.
    let add = sitewatch(
        dir.path(),
        &[
            "sites",
            "add",
            "table-auth",
            &format!("{}?token=${{SITEWATCH_SECRET_TOKEN}}", web.url("/auth")),
            "--header",
            "Authorization: Basic ${SITEWATCH_SECRET_BASIC}",
        ],
        &env,
    )
    .await;
    assert_eq!(add.code, 0, "{}", add.stderr);
    let stored: String = client
        .query_one("SELECT row_to_json(s)::text FROM sites s", &[])
        .await
        .unwrap()
        .get(0);
    assert!(stored.contains("${SITEWATCH_SECRET_BASIC}"), "{stored}");
    assert!(
        !stored.contains(TOKEN) && !stored.contains(http::AUTH_BASIC),
        "{stored}"
    );
    // A site may read no other variable.
    std::fs::write(
        dir.path().join("sites.toml"),
        "[[site]]\nname = \"x\"\nurl = \"http://127.0.0.1/?u=${SITEWATCH_DATABASE_URL}\"\n",
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &env).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("a site reads only variables named SITEWATCH_SECRET_*"),
        "{}",
        run.stderr
    );
}
