//! `switchboard-serve`: the headless gateway alone (`serve`, `admin ...`), linked without the
//! desktop app's GUI libraries. `switchboard serve` hands over to it.

mod cli;
mod ui_files;

use std::process::ExitCode;

use clap::Parser;

// As in the app binary (main.rs): mimalloc, without transparent huge pages.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_tracing();
    if let Some(code) = cli::run_headless(&cli) {
        return code;
    }
    let _ = cli.hidden;
    eprintln!(
        "switchboard-serve: error: this binary runs the headless gateway only; run `switchboard-serve serve` (or `switchboard` for the desktop app)"
    );
    ExitCode::from(2)
}
