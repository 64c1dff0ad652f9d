//! The `sites` table: `sites add|list|remove|import|export` against the
//! real PostgreSQL, and `probe-once` checking the table's sites.

use std::collections::HashMap;

use serde_json::Value;

use crate::support::http::Server;
use crate::support::{certs, db, sitewatch};

fn env(url: &str) -> Vec<(&'static str, String)> {
    vec![("SITEWATCH_DATABASE_URL", url.to_owned())]
}

/// `sites list --format json`, by name.
async fn listed(dir: &std::path::Path, url: &str) -> HashMap<String, Value> {
    let run = sitewatch(dir, &["sites", "list", "--format", "json"], &env(url)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    list.into_iter()
        .map(|v| (v["name"].as_str().unwrap().to_owned(), v))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sites_are_added_listed_removed_imported_and_exported_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let env = env(&url);

    // add: validated as a file's site; a name once.
    let run = sitewatch(
        dir.path(),
        &[
            "sites",
            "add",
            "api",
            "https://api.example/health",
            "--interval",
            "5m",
            "--timeout",
            "3s",
            "--method",
            "HEAD",
            "--expect-status",
            "200-299",
            "--header",
            "X-Team: core",
            "--json-path",
            "$.status=UP",
            "--json-path",
            "$.replicas=3",
            "--max-redirects",
            "2",
            "--regex",
            "ok",
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = sitewatch(dir.path(), &["sites", "add", "api", "http://other/"], &env).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("site `api` exists"), "{}", run.stderr);
    let run = sitewatch(
        dir.path(),
        &["sites", "add", "bad", "ftp://x/", "--timeout", "0s"],
        &env,
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("site `bad`: url `ftp://x/`"),
        "{}",
        run.stderr
    );
    let run = sitewatch(
        dir.path(),
        &["sites", "add", "web", "https://user:s3cret@web.example/"],
        &env,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let sites = listed(dir.path(), &url).await;
    assert_eq!(sites.len(), 2);
    let api = &sites["api"];
    assert_eq!(api["interval"], "5m");
    assert_eq!(api["method"], "HEAD");
    assert_eq!(api["headers"]["X-Team"], "core");
    assert_eq!(api["json"]["$.replicas"], 3);
    assert_eq!(api["json"]["$.status"], "UP");
    assert_eq!(api["max_redirects"], 2);
    assert!(api["problem"].is_null());
    assert_eq!(
        sites["web"]["url"], "https://***@web.example/",
        "never shown"
    );
    let run = sitewatch(dir.path(), &["sites", "list"], &env).await;
    assert!(
        run.stdout.contains("api") && run.stdout.contains("5m"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("s3cret"));

    // remove.
    let run = sitewatch(dir.path(), &["sites", "remove", "web"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = sitewatch(dir.path(), &["sites", "remove", "web"], &env).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no site named `web`"), "{}", run.stderr);

    // import: the file's [defaults] filled in, ca_file made absolute; a
    // bad site writes nothing.
    let ca = certs::Ca::new();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("conf/ca.pem"), ca.pem()).unwrap();
    let file = "[defaults]\ntimeout = \"4s\"\nheaders = { \"User-Agent\" = \"probe\" }\n\n\
                [[site]]\nname = \"one\"\nurl = \"https://one.example/\"\nca_file = \"ca.pem\"\n\n\
                [[site]]\nname = \"two\"\nurl = \"http://two.example/\"\ntimeout = \"1s\"\nexpect_status = 200\n";
    std::fs::write(dir.path().join("conf/sites.toml"), file).unwrap();
    std::fs::write(
        dir.path().join("conf/bad.toml"),
        format!("{file}\n[[site]]\nname = \"three\"\nurl = \"http://x/\"\nregex = \"(\"\n"),
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["sites", "import", "conf/bad.toml"], &env).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("site `three`: regex `(`"),
        "{}",
        run.stderr
    );
    assert_eq!(listed(dir.path(), &url).await.len(), 1, "nothing imported");

    let run = sitewatch(dir.path(), &["sites", "import", "conf/sites.toml"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("2 added, 0 updated, 0 unchanged, 0 removed"),
        "{}",
        run.stdout
    );
    let sites = listed(dir.path(), &url).await;
    assert_eq!(sites.len(), 3, "without --prune, api stays");
    assert_eq!(sites["one"]["timeout"], "4s", "[defaults] filled in");
    assert_eq!(sites["one"]["headers"]["User-Agent"], "probe");
    assert_eq!(sites["two"]["timeout"], "1s", "the site's own value wins");
    let ca_file = sites["one"]["ca_file"].as_str().unwrap();
    assert!(
        std::path::Path::new(ca_file).is_absolute() && ca_file.ends_with("conf/ca.pem"),
        "{ca_file}"
    );
    assert!(sites["one"]["problem"].is_null(), "{}", sites["one"]);

    // The same file again changes nothing; a changed site is updated;
    // --prune removes the others.
    let run = sitewatch(dir.path(), &["sites", "import", "conf/sites.toml"], &env).await;
    assert!(
        run.stdout
            .contains("0 added, 0 updated, 2 unchanged, 0 removed"),
        "{}",
        run.stdout
    );
    std::fs::write(
        dir.path().join("conf/sites.toml"),
        file.replace("timeout = \"1s\"", "timeout = \"2s\""),
    )
    .unwrap();
    let run = sitewatch(
        dir.path(),
        &["sites", "import", "conf/sites.toml", "--prune"],
        &env,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("0 added, 1 updated, 1 unchanged, 1 removed"),
        "{}",
        run.stdout
    );
    let sites = listed(dir.path(), &url).await;
    assert_eq!(
        sites
            .keys()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>(),
        ["one", "two"].into()
    );
    assert_eq!(sites["two"]["timeout"], "2s");

    // export: a sites file that import reads back unchanged, and that
    // exports the same again.
    let run = sitewatch(
        dir.path(),
        &[
            "sites",
            "add",
            "api",
            "https://api.example/health",
            "--json-path",
            "$.status=UP",
            "--header",
            "X-Team: core",
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = sitewatch(dir.path(), &["sites", "export"], &env).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    std::fs::write(dir.path().join("exported.toml"), &first.stdout).unwrap();
    let run = sitewatch(
        dir.path(),
        &["sites", "import", "exported.toml", "--prune"],
        &env,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("0 added, 0 updated, 3 unchanged, 0 removed"),
        "{}",
        run.stdout
    );
    let again = sitewatch(dir.path(), &["sites", "export"], &env).await;
    assert_eq!(again.stdout, first.stdout);
    // The export is a sites file the other commands read as it is.
    let run = sitewatch(
        dir.path(),
        &["validate", "--sites-file", "exported.toml"],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("3 sites, no problem found"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_once_checks_the_tables_sites_and_skips_a_bad_row_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let web = Server::start().await;
    let client = db::connect(&url).await;
    client
        .execute(
            "INSERT INTO sites (name, url, regex, timeout) VALUES
                 ('good', $1, 'hello', '3s'),
                 ('also-good', $2, NULL, NULL),
                 ('broken', $1, '(', NULL),
                 ('bad-headers', $1, NULL, NULL)",
            &[&web.url("/ok"), &web.url("/notfound")],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE sites SET headers = '[1, 2]' WHERE name = 'bad-headers'",
            &[],
        )
        .await
        .unwrap();
    // The sites file's [defaults] apply to the table's sites; its own
    // sites are not checked.
    std::fs::write(
        dir.path().join("sites.toml"),
        format!(
            "[defaults]\nexpect_status = \"200-499\"\n\n[[site]]\nname = \"from-file\"\nurl = \"{}\"\n",
            web.url("/ok")
        ),
    )
    .unwrap();
    let mut env = env(&url);
    env.push(("SITEWATCH_SITES_SOURCE", "database".to_owned()));
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got: HashMap<String, Value> = run
        .json_lines()
        .into_iter()
        .map(|v| (v["site"].as_str().unwrap().to_owned(), v))
        .collect();
    assert_eq!(got.len(), 2, "{}", run.stdout);
    assert_eq!(got["good"]["up"], true);
    assert_eq!(got["good"]["regex_matched"], true);
    assert_eq!(
        (
            got["also-good"]["status_code"].clone(),
            got["also-good"]["up"].clone()
        ),
        (404.into(), true.into()),
        "the file's [defaults] apply"
    );
    assert!(
        run.stderr
            .contains("sites table: site `broken`: regex `(` does not compile"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("sites table: site `bad-headers`: invalid type"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("not the 1 site of sites.toml"),
        "the file's sites are said to be left out: {}",
        run.stderr
    );
    assert_eq!(web.hits(), 2, "only the two valid sites were checked");

    // A file with a bad site still exits 2, before any check.
    std::fs::write(
        dir.path().join("sites.toml"),
        format!(
            "[[site]]\nname = \"x\"\nurl = \"{}\"\nregex = \"(\"\n",
            web.url("/ok")
        ),
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(web.hits(), 2);

    // SITEWATCH_SITES and the database source together are a mistake.
    env.push(("SITEWATCH_SITES", "[]".to_owned()));
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &env).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("SITEWATCH_SITES is set but SITEWATCH_SITES_SOURCE is database"),
        "{}",
        run.stderr
    );
}
