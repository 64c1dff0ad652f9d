//! Every invalid setting or site exits 2 with one line naming it, before
//! any check runs (the server counts its requests to prove it).

use crate::support::http::Server;
use crate::support::sitewatch;

/// Runs `probe-once --dry-run` with a sites file holding one good site plus
/// `extra`, and asserts exit 2 with `expected` as the whole error line.
async fn rejects(extra: &str, env: &[(&str, &str)], args: &[&str], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = format!(
        "[[site]]\nname = \"good\"\nurl = \"{}\"\n{extra}",
        web.url("/ok")
    );
    std::fs::write(dir.path().join("sites.toml"), sites).unwrap();
    let env: Vec<(&str, String)> = env
        .iter()
        .map(|(k, v)| (*k, v.replace("{dir}", dir.path().to_str().unwrap())))
        .collect();
    let mut all_args = vec!["probe-once", "--dry-run"];
    all_args.extend_from_slice(args);
    let run = sitewatch(dir.path(), &all_args, &env).await;
    let expected = expected.replace("{dir}", dir.path().to_str().unwrap());
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    // Warnings may come first; the error is the one last line.
    let (last, before) = run
        .stderr
        .trim_end()
        .rsplit_once('\n')
        .map_or((run.stderr.trim_end(), ""), |(before, last)| (last, before));
    assert_eq!(last, format!("error: {expected}"));
    assert!(
        before.lines().all(|l| l.contains(" WARN ")),
        "more than warnings before the error: {}",
        run.stderr
    );
    assert_eq!(run.stdout, "", "nothing was checked");
    assert_eq!(web.hits(), 0, "no check ran");
}

/// Every bad setting or site, each: exit 2, its one line, nothing checked.
#[tokio::test]
async fn every_bad_setting_or_site_exits_2_naming_it_before_any_check() {
    type Case = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
        &'static str,
    );
    let cases: &[Case] = &[
        (
            "an unknown key in a site is named with its line",
            "[[site]]\nname = \"typo\"\nurl = \"http://127.0.0.1/\"\nregx = \"x\"\n",
            &[],
            &[],
            "sites.toml: site `typo` (line 7): unknown field `regx`, expected one of `name`, `url`, `method`, `headers`, `timeout`, `expect_status`, `regex`, `ca_file`, `max_body_bytes`, `interval`, `degraded_after`, `json`, `max_redirects`, `alerts`, `send`, `retries`, `retry_delay`, `conditions`, `body`, `group`, `public`, `hide_url`",
        ),
        (
            "a duplicate site name is rejected",
            "[[site]]\nname = \"good\"\nurl = \"http://127.0.0.1/\"\n",
            &[],
            &[],
            "sites.toml: site `good`: duplicate name: names are message keys and must be unique",
        ),
        (
            "a url that is not http is rejected",
            "[[site]]\nname = \"ftp\"\nurl = \"ftp://example.com/\"\n",
            &[],
            &[],
            "sites.toml: site `ftp`: url `ftp://example.com/`: expected an http://, https://, tcp://, tls://, dns:// or icmp:// URL with a host",
        ),
        (
            "a regex that does not compile is rejected",
            "[[site]]\nname = \"re\"\nurl = \"http://127.0.0.1/\"\nregex = \"(unclosed\"\n",
            &[],
            &[],
            "sites.toml: site `re`: regex `(unclosed` does not compile: error: unclosed group",
        ),
        (
            "a zero timeout is rejected",
            "[[site]]\nname = \"zero\"\nurl = \"http://127.0.0.1/\"\ntimeout = \"0s\"\n",
            &[],
            &[],
            "sites.toml: site `zero`: timeout `0s`: expected a non-zero duration such as 10s",
        ),
        (
            "a missing ca file is rejected",
            "[[site]]\nname = \"internal\"\nurl = \"https://127.0.0.1/\"\nca_file = \"nope.pem\"\n",
            &[],
            &[],
            "sites.toml: site `internal`: ca_file nope.pem: I/O error: No such file or directory (os error 2)",
        ),
        (
            "a missing sites file is rejected",
            "",
            &[("SITEWATCH_SITES_FILE", "{dir}/elsewhere.toml")],
            &[],
            "SITEWATCH_SITES_FILE `{dir}/elsewhere.toml`: file not found",
        ),
        (
            "a missing kafka ca file is rejected",
            "",
            &[
                ("SITEWATCH_KAFKA_SECURITY_PROTOCOL", "ssl"),
                ("SITEWATCH_KAFKA_SSL_CA", "/no/ca.pem"),
            ],
            &[],
            "SITEWATCH_KAFKA_SSL_CA `/no/ca.pem`: file not found",
        ),
        (
            "a secret file that cannot be read is rejected",
            "",
            &[("SITEWATCH_KAFKA_SASL_PASSWORD_FILE", "/no/password")],
            &[],
            "SITEWATCH_KAFKA_SASL_PASSWORD_FILE: cannot read /no/password: No such file or directory (os error 2)",
        ),
        (
            "an unknown setting in the sites file is rejected",
            "[settings]\nkafka_brokerz = \"x:1\"\n",
            &[],
            &[],
            "sites.toml [settings]: unknown setting `kafka_brokerz`",
        ),
        (
            "a bad flag value is named as the flag",
            "",
            &[("SITEWATCH_CONCURRENCY", "10")],
            &["--concurrency", "0"],
            "--concurrency `0`: expected a number of checks in flight from 1 to 100000",
        ),
        (
            "inline sites that are not json are rejected",
            "",
            &[("SITEWATCH_SITES", "[{\"name\": \"a\", \"url\": }]")],
            &[],
            "SITEWATCH_SITES: expected value at line 1 column 23 (expected a JSON list of sites)",
        ),
        (
            "sasl without credentials is rejected",
            "",
            &[
                ("SITEWATCH_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                ("SITEWATCH_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ],
            &[],
            "SITEWATCH_KAFKA_SECURITY_PROTOCOL is sasl_ssl but SITEWATCH_KAFKA_SASL_USERNAME is not set",
        ),
        (
            "a control character in a site name is rejected",
            "[[site]]\nname = \"bad\\u0000name\"\nurl = \"http://127.0.0.1:1/\"\n",
            &[],
            &[],
            "sites.toml: site name `bad\\0name` contains the control character '\\0': use printable characters",
        ),
        (
            "a control character in the location is rejected",
            "",
            &[("SITEWATCH_LOCATION", "eu\nwest")],
            &[],
            "SITEWATCH_LOCATION `eu\\nwest`: location `eu\\nwest` contains the control character '\\n': use printable characters",
        ),
        (
            "a concurrency that does not fit is rejected not a panic",
            "",
            &[("SITEWATCH_CONCURRENCY", "4611686018427387904")],
            &[],
            "SITEWATCH_CONCURRENCY `4611686018427387904`: expected a number of checks in flight from 1 to 100000",
        ),
    ];
    for (what, extra, env, args, expected) in cases {
        eprintln!("case: {what}");
        rejects(extra, env, args, expected).await;
    }
}

#[tokio::test]
async fn inline_sites_override_the_file_with_a_warning_and_take_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    std::fs::write(
        dir.path().join("sites.toml"),
        format!(
            "[defaults]\ntimeout = \"3s\"\nexpect_status = 404\n[[site]]\nname = \"from-file\"\nurl = \"{}\"\n",
            web.url("/ok")
        ),
    )
    .unwrap();
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run"],
        &[(
            "SITEWATCH_SITES",
            format!(r#"[{{"name":"inline","url":"{}"}}]"#, web.url("/notfound")),
        )],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("SITEWATCH_SITES overrides the 1 sites of sites.toml"),
        "{}",
        run.stderr
    );
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["site"], "inline");
    assert_eq!(lines[0]["up"], true, "the file's expect_status applies");
}

#[tokio::test]
async fn a_bad_site_url_with_credentials_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sites.toml"),
        "[[site]]\nname = \"a\"\nurl = \"ftp://user:Sup3rSecret@example.com/\"\n",
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.contains("Sup3rSecret"), "{}", run.stderr);
    assert!(
        run.stderr.contains("ftp://***@example.com/"),
        "{}",
        run.stderr
    );
}

/// `validate`: every bad site of the file, one line each, exit 2; a good
/// file, exit 0; nothing is checked or published either way.
#[tokio::test]
async fn validate_names_every_bad_site_and_passes_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[site]]\nname = \"a\"\nurl = \"https://127.0.0.1:1/\"\nregex = \"(\"\n\
         [[site]]\nname = \"b\"\nurl = \"ftp://x/\"\n\
         [[site]]\nname = \"a\"\nurl = \"https://127.0.0.1:1/\"\n\
         [[site]]\nname = \"c\"\nurl = \"https://127.0.0.1:1/\"\njson = { \"x\" = 1 }\ndegraded_after = \"soon\"\n\
         [[site]]\nname = \"fine\"\nurl = \"https://127.0.0.1:1/\"\n",
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["validate", "--sites-file", "bad.toml"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "bad.toml: site `a`: regex `(` does not compile: error: unclosed group",
            "bad.toml: site `b`: url `ftp://x/`: expected an http://, https://, tcp://, tls://, dns:// or icmp:// URL with a host",
            "bad.toml: site `a`: duplicate name: names are message keys and must be unique",
            "bad.toml: site `c`: degraded_after `soon`: expected a non-zero duration such as 800ms",
            "bad.toml: site `c`: json path `x`: expected a path such as $.status, $.checks.db or $.items[0]",
            "error: 5 problems found (above)",
        ],
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());

    std::fs::write(
        dir.path().join("good.toml"),
        "[[site]]\nname = \"one\"\nurl = \"https://127.0.0.1:1/\"\n\
         [[site]]\nname = \"two\"\nurl = \"http://127.0.0.1:1/\"\ndegraded_after = \"1s\"\n",
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["validate", "--sites-file", "good.toml"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "2 sites, no problem found\n");

    // Every bad setting too, each on its line, before the sites' problems.
    let run = sitewatch(
        dir.path(),
        &["validate", "--sites-file", "bad.toml", "--concurrency", "0"],
        &[
            ("SITEWATCH_LOG_FORMAT", "xml".to_owned()),
            ("SITEWATCH_KAFKA_SSL_CA", "/nonexistent/ca.pem".to_owned()),
            ("SITEWATCH_KAFKA_SECURITY_PROTOCOL", "ssl".to_owned()),
            ("SITEWATCH_SITES_SOURCE", "cloud".to_owned()),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "SITEWATCH_SITES_SOURCE `cloud`: expected file or database",
            "SITEWATCH_KAFKA_SSL_CA `/nonexistent/ca.pem`: file not found",
            "--concurrency `0`: expected a number of checks in flight from 1 to 100000",
            "SITEWATCH_LOG_FORMAT `xml`: expected text or json",
        ],
        "{}",
        run.stderr
    );
    assert_eq!(lines.last(), Some(&"error: 9 problems found (above)"));
    // Any other command stops at the first.
    let run = sitewatch(
        dir.path(),
        &[
            "probe-once",
            "--dry-run",
            "--sites-file",
            "good.toml",
            "--concurrency",
            "0",
        ],
        &[("SITEWATCH_LOG_FORMAT", "xml".to_owned())],
    )
    .await;
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim_end(),
        "error: --concurrency `0`: expected a number of checks in flight from 1 to 100000"
    );
}

/// Each command's `--help` lists every setting it reads, flag and
/// variable, and no other command's.
#[tokio::test]
async fn the_help_of_every_command_lists_every_setting_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut commands: Vec<Vec<&str>> = sitewatch::config::ALL.iter().map(|c| vec![*c]).collect();
    commands.push(vec!["sites", "add"]);
    commands.push(vec!["sites", "export"]);
    for command in commands {
        let mut args = command.clone();
        args.push("--help");
        let run = sitewatch(dir.path(), &args, &[]).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        // Lines are wrapped at 100 columns: undo that before looking.
        let help = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        for d in sitewatch::config::SETTINGS {
            // `[env: NAME=value]`, or `[env: NAME]` for a secret.
            let variable = format!("[env: {}", d.variable());
            let variable = [format!("{variable}="), format!("{variable}]")]
                .into_iter()
                .find(|v| help.contains(v.as_str()))
                .unwrap_or(variable);
            let flag = format!("--{} <{}>", d.flag(), d.value_name);
            if d.commands.contains(&command[0]) {
                assert!(
                    help.contains(&variable),
                    "{args:?} lacks {variable}:\n{}",
                    run.stdout
                );
                assert!(
                    help.contains(&flag),
                    "{args:?} lacks {flag}:\n{}",
                    run.stdout
                );
            } else {
                let shown = [
                    format!("[env: {}=", d.variable()),
                    format!("[env: {}]", d.variable()),
                ];
                assert!(
                    !shown.iter().any(|v| help.contains(v.as_str())),
                    "{args:?} lists {}",
                    d.variable()
                );
            }
        }
    }
    // A secret's value is never shown, even in --help.
    let run = sitewatch(
        dir.path(),
        &["drain", "--help"],
        &[(
            "SITEWATCH_DATABASE_URL",
            "postgres://u:hunter2@h/db".to_owned(),
        )],
    )
    .await;
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    assert!(run.stdout.contains("SITEWATCH_DATABASE_URL"));
}

/// A value of the wrong type names its key and line, and does not hide the
/// other sites' problems from `validate`; a job stops at it, checking
/// nothing.
#[tokio::test]
async fn a_wrong_type_names_its_key_and_the_other_sites_are_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sites.toml"),
        "[[site]]\nname = \"a\"\nurl = \"https://127.0.0.1:1/\"\ntimeout = 5\n\
         [[site]]\nname = \"b\"\nurl = \"ftp://x/\"\n\
         [[site]]\nname = \"c\"\nurl = \"https://127.0.0.1:1/\"\nexpect_status = [200]\n\
         [[site]]\nname = \"d\"\nurl = \"https://127.0.0.1:1/\"\n[site.alerts]\nquorum = true\n",
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["validate"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "sites.toml: site `a` (line 4): timeout: invalid type: integer `5`, expected a string",
            "sites.toml: site `c` (line 11): expect_status: expected a status code such as 200, or a string such as \"200-399\" or \"200,301-302\"",
            "sites.toml: site `d` (line 15): alerts.quorum: expected a number of locations such as 2, or \"majority\"",
            "sites.toml: site `b`: url `ftp://x/`: expected an http://, https://, tcp://, tls://, dns:// or icmp:// URL with a host",
            "error: 4 problems found (above)",
        ],
        "{}",
        run.stderr
    );
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end().lines().last().unwrap(),
        "error: sites.toml: site `a` (line 4): timeout: invalid type: integer `5`, expected a string"
    );
    assert!(run.stdout.is_empty(), "nothing was checked: {}", run.stdout);
    // Outside the sites, the key is named too.
    std::fs::write(dir.path().join("sites.toml"), "[defaults]\ntimeout = 5\n").unwrap();
    let run = sitewatch(dir.path(), &["validate"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "sites file sites.toml: defaults.timeout: invalid type: integer `5`, expected a string"
        ),
        "{}",
        run.stderr
    );
}
