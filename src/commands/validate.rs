//! `validate`: every problem of the sites file and the settings, one line
//! each, and nothing else done. The settings were loaded before this runs
//! (a bad one has already exited 2, naming it).

use crate::config::Settings;
use crate::error::{Error, Result};

pub fn run(settings: &Settings) -> Result<()> {
    let (count, problems) = crate::sites::problems(settings);
    if problems.is_empty() {
        match count {
            1 => println!("1 site, no problem found"),
            n => println!("{n} sites, no problem found"),
        }
        return Ok(());
    }
    for line in &problems {
        eprintln!("{line}");
    }
    Err(Error::config(match problems.len() {
        1 => "1 problem found (above)".to_owned(),
        n => format!("{n} problems found (above)"),
    }))
}
