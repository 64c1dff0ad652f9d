//! sitewatch: website availability checks as one-shot jobs. `probe-once`
//! checks every site concurrently and publishes one JSON message per check
//! to Kafka; `drain` stores what is pending in PostgreSQL.
//!
//! # Layout
//!
//! - [`cli`]: the command line's parser (clap), each command's settings
//!   added to its own arguments.
//! - [`config`]: flags, `SITEWATCH_*` environment and the sites file's
//!   `[settings]` merged and validated into [`config::Settings`].
//! - [`duration`]: durations as people write them, one parser.
//! - [`sites`]: the sites file and inline sites, validated into [`sites::Site`].
//! - [`conditions`]: a site's JSON conditions, checked against a body.
//! - [`expression`]: a site's `conditions` with operators (`[STATUS] ==
//!   200`), each outcome kept with the check.
//! - [`secret`]: values never shown.
//! - [`site_table`]: the `sites` table (sites kept in PostgreSQL).
//! - [`probe`]: the checker: one site to one [`message::Check`], phase
//!   timings, certificate expiry; many sites with bounded concurrency.
//! - [`matcher`]: a site's body regex, matched as the body streams in.
//! - [`schedule`]: which sites a run checks: interval slots and shards.
//! - [`message`]: the Kafka message and the run record, the one place
//!   their shape is defined (the book's contract lists it, kept equal by a
//!   test).
//! - [`kafka`]: client configuration shared by every Kafka client, the
//!   publisher, topic creation, why a broker refused a client.
//! - [`drain`]: consume to the end as of the run, batch, store, commit.
//! - [`store`]: PostgreSQL: connecting (TLS), the migrations (with
//!   checksums), drain's batches (checks, rollup chunk, offsets in one
//!   transaction, the day partitions of `checks`) and its claims.
//! - [`history`]: how checks are kept over months: the day partitions of
//!   `checks`, the rollups (per site, location and hour: counts and latency
//!   sketches; chunks per batch, folded into hourly and daily rollups), the
//!   log-bucket sketches (1 % relative accuracy), and what `prune` deletes.
//! - [`rule`]: when a site is down (thresholds, quorum, staleness, blind
//!   probers), one rule for `report` and `alert`.
//! - [`alert`]: evaluates the new checks, records events (an outbox),
//!   delivers each once per notifier.
//! - [`report`]: per site, from the rollups: state, uptime, percentiles,
//!   incidents; queries, a pure computation, and the renderers (table,
//!   Markdown, JSON, the HTML page and badges).
//! - [`commands`]: one module per subcommand, each with its arguments
//!   (doc comments are the help) and a `run`.
//! - [`keys`]: stable keys of names (advisory locks, slots and shards).
//! - [`outbound`]: the client of sitewatch's own requests (notifications,
//!   watchdog pings, metrics pushed).
//! - [`telemetry`]: logs and summary lines.
//! - [`watchdog`]: the jobs' own dead man's switch (healthchecks.io's
//!   pings).
//! - [`pushgateway`]: the jobs' run figures pushed to a Prometheus
//!   Pushgateway.
//! - [`zone`]: times people write in an IANA time zone (maintenance,
//!   announcements, SLA periods).
//! - [`error`]: the two failure kinds and their exit codes.
//! - [`escape`]: every output's escaping (terminal, Markdown, Slack, XML,
//!   file names, errors and stored reasons), in one place.

pub mod alert;
pub mod cli;
pub mod commands;
pub mod conditions;
pub mod config;
pub mod drain;
pub mod duration;
pub mod error;
pub mod escape;
pub mod expression;
pub mod history;
pub mod kafka;
pub mod keys;
pub mod matcher;
pub mod message;
pub mod outbound;
pub mod probe;
pub mod pushgateway;
pub mod report;
pub mod rule;
pub mod schedule;
pub mod secret;
pub mod site_table;
pub mod sites;
pub mod store;
pub mod telemetry;
pub mod watchdog;
pub mod zone;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The top-level module a source file belongs to, and the modules it
    /// names as `crate::...`.
    fn uses(dir: &Path, graph: &mut BTreeMap<String, BTreeSet<String>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                uses(&path, graph);
                continue;
            }
            let relative = path
                .strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
                .unwrap();
            let module = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            if module == "main" || module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let deps = graph.entry(module.clone()).or_default();
            for (i, _) in text.match_indices("crate::") {
                let name: String = text[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }

    #[test]
    fn the_layout_names_every_module() {
        let lib = include_str!("lib.rs");
        let modules: Vec<&str> = lib
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod "))
            .map(|l| l.trim_end_matches(';'))
            .collect();
        assert!(modules.len() > 20);
        for module in modules {
            assert!(
                lib.contains(&format!("//! - [`{module}`]")),
                "lib.rs's Layout does not name `{module}`"
            );
        }
    }

    #[test]
    fn no_module_imports_one_that_imports_it_back() {
        let mut graph = BTreeMap::new();
        uses(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
            &mut graph,
        );
        fn reaches(
            graph: &BTreeMap<String, BTreeSet<String>>,
            from: &str,
            to: &str,
            seen: &mut BTreeSet<String>,
        ) -> bool {
            graph
                .get(from)
                .into_iter()
                .flatten()
                .any(|d| d == to || (seen.insert(d.clone()) && reaches(graph, d, to, seen)))
        }
        let mut cycles = Vec::new();
        for (module, deps) in &graph {
            for dep in deps {
                if reaches(&graph, dep, module, &mut BTreeSet::new()) {
                    cycles.push(format!("{module} -> {dep}"));
                }
            }
        }
        assert!(cycles.is_empty(), "import cycles: {cycles:?}");
        assert!(
            graph["sites"].len() > 1 && graph["config"].contains("sites"),
            "{graph:?}"
        );
    }
}
