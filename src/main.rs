//! The `sitewatch` binary: parse, load settings, init telemetry, dispatch,
//! map the outcome to an exit code (0 done, 1 job failed, 2 configuration).

use std::process::ExitCode;

use sitewatch::config::{Settings, Sources};
use sitewatch::error::Error;

fn main() -> ExitCode {
    let (cli, name, given) = sitewatch::cli::parse();
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let settings = match Sources::gather(name, given, env).and_then(Settings::load) {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    sitewatch::telemetry::init(settings.log_format);
    for variable in &settings.unknown_env {
        tracing::warn!(%variable, "ignoring an environment variable that names no setting");
    }
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    raise_open_files_limit();
    let runtime = match sitewatch::commands::runtime(&cli.command).build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&Error::Job(e.into())),
    };
    let outcome = runtime.block_on(sitewatch::commands::run(cli.command, &settings));
    // Let background work (librdkafka's last log lines) end before the
    // verdict, so the error is the last line a scheduler shows.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(error: &Error) -> ExitCode {
    sitewatch::telemetry::final_error(&error.one_line());
    error.exit_code()
}

/// Thousands of checks in flight need as many sockets: lift the soft limit
/// on open files to the hard one, as Go's runtime does.
fn raise_open_files_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the open files limit");
    }
}
