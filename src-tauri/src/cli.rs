//! Command line: options shared by the desktop app and `serve`, each with an environment
//! fallback (flags win, then environment, then the config file, then defaults).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use switchboard_gateway::secrets::{NoSecretStore, SecretStore};
use switchboard_gateway::{Shutdown, StartOptions};
use switchboard_keychain::KeychainStore;

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "A local AI gateway: one endpoint for many LLM providers, with failover"
)]
pub struct Cli {
    #[command(flatten)]
    pub options: Options,
    /// Desktop app: start in the tray without opening the window (start at login uses it)
    #[arg(long)]
    pub hidden: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway headless (servers, CI, containers)
    Serve,
    /// Administer the data folder
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Point a coding agent (claude-code, codex, gemini-cli) at the running gateway, with a
    /// client key of its own; only Switchboard's keys in its settings change, after a backup
    Connect {
        /// claude-code, codex or gemini-cli
        client: String,
    },
    /// Put a connected agent's settings back as they were (edits made since are kept) and
    /// revoke its key
    Disconnect {
        /// claude-code, codex or gemini-cli
        client: String,
    },
    /// Keep an agent that was connected when the gateway last stopped as it is (the start
    /// asks: keep it, or disconnect to put its files back)
    Keep {
        /// claude-code, codex or gemini-cli
        client: String,
    },
    /// List the coding agents and which are connected
    Clients,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Set (or reset) the admin password: read from the first line of standard input, at least
    /// 8 characters. A new password also lifts a login lockout.
    SetPassword,
}

/// `switchboard admin set-password`.
pub fn set_password(options: &Options) -> ExitCode {
    let Some(data_dir) = options.data_dir.clone().or_else(default_data_dir) else {
        return fail("no data folder: pass --data-dir");
    };
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        return fail(format!("cannot read the password from standard input: {e}"));
    }
    let password = line.trim_end_matches(['\r', '\n']);
    match switchboard_gateway::set_password(&data_dir, password) {
        Ok(()) => {
            println!("Admin password set for {}", data_dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `switchboard connect|disconnect|clients`: through the running gateway's admin API (it owns
/// the client keys), found by the data folder.
fn local(options: &Options, post: bool, path: &str) -> ExitCode {
    let Some(data_dir) = options.data_dir.clone().or_else(default_data_dir) else {
        return fail("no data folder: pass --data-dir");
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let answer = runtime.block_on(switchboard_gateway::local_access::call(
        &data_dir, post, path,
    ));
    match answer {
        Ok(v) => {
            print_answer(&v);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// What would win over the files just written, from this shell and this folder (where the
/// client will run), said after the gateway's own warnings.
fn check_shadows(client: &str) {
    use switchboard_gateway::connect::{AgentClient, home_dir, shadows};
    let (Some(client), Some(home)) = (
        AgentClient::from_id(client),
        home_dir(std::env::consts::OS, |k| std::env::var(k).ok()),
    ) else {
        return;
    };
    let here = std::env::current_dir().ok();
    for line in shadows(client, &home, here.as_deref(), |k| std::env::var(k).ok()) {
        println!("Check: {line}");
    }
}

fn print_answer(v: &switchboard_gateway::JsonValue) {
    let text = |v: &switchboard_gateway::JsonValue| v.as_str().unwrap_or_default().to_owned();
    if let Some(list) = v.as_array() {
        // `clients`: one line each.
        for c in list {
            let state = if c["from_before_start"].as_bool() == Some(true) {
                format!(
                    "connected (key {}) from before this start: `switchboard keep {}` or `switchboard disconnect {}`",
                    text(&c["key_name"]),
                    text(&c["id"]),
                    text(&c["id"])
                )
            } else if c["connected"].as_bool() == Some(true) {
                format!("connected (key {})", text(&c["key_name"]))
            } else {
                "not connected".to_owned()
            };
            println!("{:<12} {:<12} {state}", text(&c["id"]), text(&c["name"]));
        }
        return;
    }
    for line in v["lines"].as_array().into_iter().flatten() {
        println!("{}", text(line));
    }
    if v["connected"].as_bool() == Some(true) {
        println!(
            "Its requests use the client key '{}'.",
            text(&v["key_name"])
        );
    }
    if let Some(m) = v["test"]["message"].as_str() {
        println!("{m}");
    }
}

#[derive(Args, Debug, Clone)]
pub struct Options {
    /// Config file (TOML) to import at start
    #[arg(long, env = "SWITCHBOARD_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the databases live [default: the OS app-data folder]
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "SWITCHBOARD_HOST", global = true, value_name = "H")]
    pub host: Option<String>,
    /// Port to listen on [default: 7340]
    #[arg(long, env = "SWITCHBOARD_PORT", global = true, value_name = "P")]
    pub port: Option<u16>,
}

/// How long in-flight requests may run on after SIGINT/SIGTERM.
pub const GRACE: Duration = Duration::from_secs(10);

pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    // One line, so scripts and service managers show the whole reason.
    let line = message.to_string().replace('\n', " ");
    eprintln!("switchboard: error: {line}");
    ExitCode::from(2)
}

pub fn default_data_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("switchboard"))
}

/// The OS keychain, or (said once, here) why there is none and what still works.
fn secret_store() -> Arc<dyn SecretStore> {
    match KeychainStore::open() {
        Ok(k) => Arc::new(k),
        Err(reason) => {
            tracing::warn!(
                "no OS keychain ({reason}): provider keys given as env:NAME work; a literal key is refused until a Secret Service runs"
            );
            Arc::new(NoSecretStore::new(reason))
        }
    }
}

/// The engine's start options from the command line and environment.
pub fn start_options(options: &Options, data_dir: PathBuf) -> StartOptions {
    StartOptions {
        data_dir,
        config_file: options.config.clone(),
        host: options.host.clone(),
        port: options.port,
        secrets: secret_store(),
        admin_password: std::env::var("SWITCHBOARD_ADMIN_PASSWORD").ok(),
        admin_totp: std::env::var("SWITCHBOARD_ADMIN_TOTP")
            .ok()
            .filter(|s| !s.trim().is_empty()),
        ui_files: crate::ui_files::FILES,
    }
}

/// Prints the keys created by this start (once) and the address, on stdout, for people and
/// scripts alike.
pub fn announce(handle: &switchboard_gateway::GatewayHandle) {
    let mut out = std::io::stdout().lock();
    for (name, key) in &handle.generated_keys {
        let _ = writeln!(
            out,
            "Created client key '{name}': {}  (shown once: store it now)",
            key.expose()
        );
    }
    let _ = writeln!(
        out,
        "Switchboard {} listening on http://{}",
        env!("CARGO_PKG_VERSION"),
        handle.addr()
    );
    let _ = out.flush();
}

pub fn serve(options: &Options) -> ExitCode {
    let Some(data_dir) = options.data_dir.clone().or_else(default_data_dir) else {
        return fail("no app-data folder is known for this user; pass --data-dir DIR");
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async {
        // Listening before the port opens: a signal sent as soon as /health answers is heard,
        // not left to its default action (which would kill the process mid-request).
        let signals = match Signals::listen() {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot listen for signals: {e}")),
        };
        let handle = match switchboard_gateway::start(start_options(options, data_dir)).await {
            Ok(h) => h,
            Err(e) => return fail(e),
        };
        announce(&handle);
        let signal = signals.recv().await;
        tracing::info!(
            "{signal}: no longer accepting; in-flight requests have {}s",
            GRACE.as_secs()
        );
        if handle.shutdown(GRACE).await == Shutdown::TimedOut {
            tracing::warn!("in-flight requests were cut after {}s", GRACE.as_secs());
        }
        ExitCode::SUCCESS
    })
}

/// SIGTERM and SIGINT (Ctrl-C elsewhere), listened for from creation on.
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The name of the first signal that comes.
    #[cfg_attr(not(unix), allow(unused_mut))]
    pub async fn recv(mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Runs a headless command (`serve`, `admin ...`); None for the desktop app (no command).
pub fn run_headless(cli: &Cli) -> Option<ExitCode> {
    match &cli.command {
        Some(Command::Serve) => Some(serve(&cli.options)),
        Some(Command::Admin(AdminCommand::SetPassword)) => Some(set_password(&cli.options)),
        Some(Command::Connect { client }) => {
            let done = local(
                &cli.options,
                true,
                &format!("/clients/{}/connect", client.trim()),
            );
            if done == ExitCode::SUCCESS {
                check_shadows(client.trim());
            }
            Some(done)
        }
        Some(Command::Disconnect { client }) => Some(local(
            &cli.options,
            true,
            &format!("/clients/{}/disconnect", client.trim()),
        )),
        Some(Command::Keep { client }) => Some(local(
            &cli.options,
            true,
            &format!("/clients/{}/keep", client.trim()),
        )),
        Some(Command::Clients) => Some(local(&cli.options, false, "/clients")),
        None => None,
    }
}
