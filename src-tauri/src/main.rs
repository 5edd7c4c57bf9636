//! `switchboard`: the desktop app (tray, admin window, gateway in-process) or, with `serve`, the
//! same gateway headless. Headless, it hands over to `switchboard-serve` beside it (the same
//! gateway, linked without the GUI libraries) so that a server process neither loads GTK and
//! WebKit nor pays for them in memory.

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
    #[cfg(all(feature = "desktop", unix))]
    if cli.command.is_some() {
        hand_over_to_lean_binary();
    }
    cli::init_tracing();
    match cli::run_headless(&cli) {
        Some(code) => code,
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

/// Replaces this process with `switchboard-serve` from the same folder, same arguments and
/// environment. Without it (a lone binary copied elsewhere), the command runs here.
#[cfg(all(feature = "desktop", unix))]
fn hand_over_to_lean_binary() {
    use std::os::unix::process::CommandExt;
    let Some(lean) = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("switchboard-serve"))
        .filter(|p| p.is_file())
    else {
        return;
    };
    let err = std::process::Command::new(&lean)
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!(
        "switchboard: cannot start {} ({err}); running in this process",
        lean.display()
    );
}
