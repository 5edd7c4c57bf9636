//! `switchboard`: the command line, and the headless gateway (`serve`, `admin ...`) itself. It
//! links no GUI library: the desktop app (no command) is `switchboard-desktop` beside it, which
//! this hands over to, so that a server process neither loads GTK and WebKit nor pays for them
//! in start time or memory.

mod cli;
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
    if cli.command.is_none() {
        return open_desktop_app();
    }
    cli::init_tracing();
    cli::run_headless(&cli).unwrap_or(ExitCode::SUCCESS)
}

/// The desktop app, from the same folder, with the same arguments and environment (GDK's
/// OpenGL off: the app would otherwise start itself again to turn it off, loading its
/// libraries twice).
fn open_desktop_app() -> ExitCode {
    let Some(app) = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(DESKTOP_BIN))
        .filter(|p| p.is_file())
    else {
        eprintln!(
            "switchboard: error: the desktop app ({DESKTOP_BIN}) is not beside this binary (a build without the `desktop` feature?); run `switchboard serve` for the headless gateway"
        );
        return ExitCode::from(2);
    };
    let mut cmd = std::process::Command::new(&app);
    cmd.args(std::env::args_os().skip(1));
    if cfg!(target_os = "linux") && std::env::var_os("GDK_GL").is_none() {
        cmd.env("GDK_GL", "disable");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = cmd.exec();
        eprintln!("switchboard: error: cannot start {}: {err}", app.display());
        ExitCode::from(2)
    }
    #[cfg(not(unix))]
    match cmd.status() {
        Ok(status) => status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .map_or(ExitCode::FAILURE, ExitCode::from),
        Err(err) => {
            eprintln!("switchboard: error: cannot start {}: {err}", app.display());
            ExitCode::from(2)
        }
    }
}

const DESKTOP_BIN: &str = if cfg!(windows) {
    "switchboard-desktop.exe"
} else {
    "switchboard-desktop"
};
