//! The two ways a job fails, and the exit codes they map to.

use std::process::ExitCode;

/// A failed job: either the input was wrong (nothing was done) or the
/// infrastructure let it down (the work could not be done).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A usage or configuration error, found before any side effect. Exit 2.
    #[error("{0}")]
    Config(String),
    /// The job could not do its work: broker or database unreachable, a
    /// message not acknowledged, a batch not stored. Exit 1.
    #[error(transparent)]
    Job(#[from] anyhow::Error),
}

impl Error {
    /// Builds a configuration error from anything printable.
    pub fn config(message: impl std::fmt::Display) -> Self {
        Error::Config(message.to_string())
    }

    /// The documented exit code: 2 for configuration, 1 for the job.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_code_number())
    }

    /// The exit code as a number: 2 for configuration, 1 for the job.
    pub fn exit_code_number(&self) -> u8 {
        match self {
            Error::Config(_) => 2,
            Error::Job(_) => 1,
        }
    }

    /// One line: the error and its causes, joined with ": ".
    pub fn one_line(&self) -> String {
        match self {
            Error::Config(message) => message.clone(),
            Error::Job(error) => format!("{error:#}"),
        }
    }
}

/// The result type of every job and of configuration loading.
pub type Result<T, E = Error> = std::result::Result<T, E>;
