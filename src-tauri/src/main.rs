//! `switchboard`: the desktop app (tray, admin window, gateway in-process) or, with `serve`, the
//! same gateway headless.

mod cli;
#[cfg(feature = "desktop")]
mod desktop;
mod ui_files;

use std::process::ExitCode;

use clap::Parser;

// glibc's malloc took about a tenth of the gateway's CPU under load; mimalloc is built for many
// small, short-lived allocations like a proxy's. Its `no_thp` feature (Cargo.toml) keeps
// transparent huge pages from doubling idle memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing();
    match cli.command {
        Some(cli::Command::Serve) => cli::serve(&cli.options),
        Some(cli::Command::Admin(cli::AdminCommand::SetPassword)) => {
            cli::set_password(&cli.options)
        }
        #[cfg(feature = "desktop")]
        None => desktop::run(cli.options, cli.hidden),
        #[cfg(not(feature = "desktop"))]
        None => {
            let _ = cli.hidden;
            eprintln!(
                "switchboard: error: this build has no desktop app (built without the `desktop` feature); run `switchboard serve` for the headless gateway"
            );
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
