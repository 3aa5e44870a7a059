//! `gigmcp`: the gateway's one binary. Every front end lives here — the command line (`cli/`), the
//! environment parsed into each crate's settings (`config`), `serve` wiring the crates together, and the
//! built-in echo server — so no library crate knows clap, anyhow or the process environment.
//!
//! The top of the graph: it depends on every crate of `host/`, and nothing depends on it.

#![forbid(unsafe_code)]

mod adapters;
mod cli;
mod config;
mod echo;
mod metrics;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
