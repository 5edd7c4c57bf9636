//! `switchboard-desktop`: the tray app (tray, admin window, gateway in-process). `switchboard`
//! with no command hands over to it; given a command it runs it here too.

mod cli;
mod desktop;
mod ui_files;

use std::process::ExitCode;

use clap::Parser;

// As in `switchboard` (main.rs): mimalloc, without transparent huge pages.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_tracing();
    match cli::run_headless(&cli) {
        Some(code) => code,
        None => desktop::run(cli.options, cli.hidden),
    }
}
