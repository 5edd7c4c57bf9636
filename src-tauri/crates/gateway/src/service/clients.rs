//! Connecting the coding agents (`connect/`) as an operation: each gets a client key of its
//! own, made on connect and revoked on disconnect, so the log and the dashboard tell them apart.

use std::path::PathBuf;

use switchboard_api::{AgentClientChange, AgentClientView, CreateClientKey};

use super::ServiceError;
use super::edit::{client_keys, create_client_key, revoke_client_key};
use crate::connect::{AgentClient, Connected, Ledger, Target, home_dir, shadows};
use crate::engine::Engine;

fn client_of(id: &str) -> Result<AgentClient, ServiceError> {
    AgentClient::from_id(id).ok_or_else(|| {
        ServiceError::NotFound(format!(
            "no client '{id}': one of claude-code, codex, gemini-cli"
        ))
    })
}

fn home() -> Result<PathBuf, ServiceError> {
    home_dir(std::env::consts::OS, |k| std::env::var(k).ok()).ok_or_else(|| {
        ServiceError::Invalid(
            "no home folder (HOME is not set): cannot find the clients' settings".into(),
        )
    })
}

/// The ledger's work is file I/O: off the async workers.
async fn with_ledger<T: Send + 'static>(
    engine: &Engine,
    f: impl FnOnce(Ledger) -> Result<T, crate::connect::ConnectError> + Send + 'static,
) -> Result<T, ServiceError> {
    let ledger = Ledger::new(&engine.data_dir);
    tokio::task::spawn_blocking(move || f(ledger))
        .await
        .map_err(|e| ServiceError::Invalid(e.to_string()))?
        .map_err(|e| ServiceError::Invalid(e.to_string()))
}

async fn connected(engine: &Engine) -> Result<Vec<Connected>, ServiceError> {
    with_ledger(engine, |l| l.connected()).await
}

/// Answers the keep-or-restore question for `client`, if it was open.
fn settle(engine: &Engine, client: AgentClient) {
    if let Ok(mut before) = engine.connected_before.lock() {
        before.retain(|c| *c != client);
    }
}

fn from_before_start(engine: &Engine, client: AgentClient) -> bool {
    engine
        .connected_before
        .lock()
        .is_ok_and(|before| before.contains(&client))
}

pub async fn agent_clients(engine: &Engine) -> Result<Vec<AgentClientView>, ServiceError> {
    let connected = connected(engine).await?;
    Ok(AgentClient::ALL
        .iter()
        .map(|&client| {
            let c = connected.iter().find(|c| c.client == client);
            AgentClientView {
                id: client.id().to_owned(),
                name: client.name().to_owned(),
                connected: c.is_some(),
                key_name: c.and_then(|c| c.key_name.clone()),
                files: c
                    .map(|c| c.files.iter().map(|f| f.display().to_string()).collect())
                    .unwrap_or_default(),
                from_before_start: c.is_some() && from_before_start(engine, client),
            }
        })
        .collect())
}

/// Points the client at this gateway with a new key of its own (a key it had before is
/// revoked once the files hold the new one).
pub async fn connect(engine: &Engine, id: &str) -> Result<AgentClientChange, ServiceError> {
    let client = client_of(id)?;
    let home = home()?;
    let before = connected(engine)
        .await?
        .into_iter()
        .find(|c| c.client == client)
        .and_then(|c| c.key_name);
    // A name no key has had (revoked keys keep theirs).
    let taken: Vec<String> = client_keys(engine)
        .await?
        .into_iter()
        .map(|k| k.name)
        .collect();
    let name = std::iter::once(client.id().to_owned())
        .chain((2..).map(|n| format!("{}-{n}", client.id())))
        .find(|n| !taken.contains(n))
        .unwrap_or_else(|| client.id().to_owned());
    let created = create_client_key(
        engine,
        CreateClientKey {
            name: name.clone(),
            models: None,
            rpm: None,
            expires_at: None,
            capture_bodies: None,
            pin_providers: None,
            budget: None,
        },
    )
    .await?;
    let base_url = engine.base_url.clone();
    let key = created.key;
    let test_key = key.clone();
    // In the environment the gateway has (the desktop session's); the command line adds its
    // own shell's and folder's.
    let warnings = shadows(client, &home, None, |k| std::env::var(k).ok());
    let key_name = name.clone();
    let result = with_ledger(engine, move |l| {
        l.connect(
            client,
            &home,
            &Target {
                base_url: &base_url,
                key: &key,
            },
            Some(&key_name),
        )
    })
    .await;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            // Nothing was written: the new key goes too.
            let _ = revoke_client_key(engine, &name).await;
            return Err(e);
        }
    };
    if let Some(old) = before.filter(|old| *old != name) {
        let _ = revoke_client_key(engine, &old).await;
    }
    settle(engine, client);
    tracing::info!(client = client.id(), key = %name, "client connected");
    // The new key is in the next snapshot (create_client_key applied it).
    let test =
        super::connect_test::run(&engine.snapshot(), &engine.base_url, client, &test_key).await;
    tracing::info!(client = client.id(), ok = test.ok, "{}", test.message);
    Ok(AgentClientChange {
        id: client.id().to_owned(),
        connected: true,
        key_name: Some(name),
        lines: report.lines(),
        warnings,
        test: Some(test),
    })
}

/// Puts the client's files back and revokes its key.
pub async fn disconnect(engine: &Engine, id: &str) -> Result<AgentClientChange, ServiceError> {
    let client = client_of(id)?;
    let key_name = connected(engine)
        .await?
        .into_iter()
        .find(|c| c.client == client)
        .and_then(|c| c.key_name);
    let report = with_ledger(engine, move |l| l.disconnect(client)).await?;
    settle(engine, client);
    if let Some(name) = &key_name {
        let _ = revoke_client_key(engine, name).await;
    }
    tracing::info!(client = client.id(), "client disconnected");
    Ok(AgentClientChange {
        id: client.id().to_owned(),
        connected: false,
        key_name,
        lines: report.lines(),
        warnings: Vec::new(),
        test: None,
    })
}

/// Keeps a client that was connected before this start as it is: its files and key stay, and
/// the question is not asked again.
pub async fn keep(engine: &Engine, id: &str) -> Result<AgentClientChange, ServiceError> {
    let client = client_of(id)?;
    let Some(c) = connected(engine)
        .await?
        .into_iter()
        .find(|c| c.client == client)
    else {
        return Err(ServiceError::Conflict(format!(
            "{} is not connected: nothing to keep",
            client.name()
        )));
    };
    settle(engine, client);
    tracing::info!(client = client.id(), "client kept as connected");
    Ok(AgentClientChange {
        id: client.id().to_owned(),
        connected: true,
        key_name: c.key_name,
        lines: vec![format!(
            "{} stays connected to Switchboard; its files are as they were",
            client.name()
        )],
        warnings: Vec::new(),
        test: None,
    })
}
