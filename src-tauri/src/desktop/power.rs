//! The machine's own events, from the system bus: waking from sleep (logind's
//! `PrepareForSleep(false)`) and the network coming back (NetworkManager's `StateChanged` to
//! connected) close the breakers that network errors and timeouts opened meanwhile, since the
//! outage was this machine's, not the provider's; on battery (UPower's `OnBattery`) active
//! probes pause. Without a system bus (a container, another OS) none of this runs.

use std::sync::Weak;

use futures_util::StreamExt;
use switchboard_gateway::Engine;
use zbus::MatchRule;
use zbus::message::Type;

/// NetworkManager's `NM_STATE_CONNECTED_GLOBAL`.
const NM_CONNECTED: u32 = 70;

/// Follows the system bus for as long as the engine lives.
pub fn watch(engine: Weak<Engine>) {
    tauri::async_runtime::spawn(async move {
        if let Err(e) = run(engine).await {
            tracing::info!(
                "no system bus: sleep, network and battery changes are not followed ({e})"
            );
        }
    });
}

fn signal(interface: &'static str, member: &'static str) -> zbus::Result<MatchRule<'static>> {
    Ok(MatchRule::builder()
        .msg_type(Type::Signal)
        .interface(interface)?
        .member(member)?
        .build())
}

async fn run(engine: Weak<Engine>) -> zbus::Result<()> {
    let conn = zbus::Connection::system().await?;
    let mut sleep = zbus::MessageStream::for_match_rule(
        signal("org.freedesktop.login1.Manager", "PrepareForSleep")?,
        &conn,
        None,
    )
    .await?;
    let mut network = zbus::MessageStream::for_match_rule(
        signal("org.freedesktop.NetworkManager", "StateChanged")?,
        &conn,
        None,
    )
    .await?;
    let mut power = zbus::MessageStream::for_match_rule(
        MatchRule::builder()
            .msg_type(Type::Signal)
            .interface("org.freedesktop.DBus.Properties")?
            .member("PropertiesChanged")?
            .path("/org/freedesktop/UPower")?
            .build(),
        &conn,
        None,
    )
    .await?;
    if let Some(on) = on_battery(&conn).await
        && let Some(e) = engine.upgrade()
    {
        e.set_on_battery(on);
    }
    let mut nm_state = 0u32;
    loop {
        tokio::select! {
            Some(Ok(m)) = sleep.next() => {
                // false: the machine has just woken up.
                if let Ok(false) = m.body().deserialize::<bool>() {
                    let Some(e) = engine.upgrade() else { return Ok(()) };
                    e.network_restored("woke from sleep");
                }
            }
            Some(Ok(m)) = network.next() => {
                if let Ok(state) = m.body().deserialize::<u32>() {
                    let back = state == NM_CONNECTED && nm_state != NM_CONNECTED;
                    nm_state = state;
                    if back {
                        let Some(e) = engine.upgrade() else { return Ok(()) };
                        e.network_restored("the network is back");
                    }
                }
            }
            Some(Ok(_)) = power.next() => {
                let Some(e) = engine.upgrade() else { return Ok(()) };
                if let Some(on) = on_battery(&conn).await {
                    e.set_on_battery(on);
                }
            }
            else => return Ok(()),
        }
        if engine.strong_count() == 0 {
            return Ok(());
        }
    }
}

/// UPower's `OnBattery`, or None without UPower.
async fn on_battery(conn: &zbus::Connection) -> Option<bool> {
    let reply = conn
        .call_method(
            Some("org.freedesktop.UPower"),
            "/org/freedesktop/UPower",
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.freedesktop.UPower", "OnBattery"),
        )
        .await
        .ok()?;
    let v: zbus::zvariant::OwnedValue = reply.body().deserialize().ok()?;
    bool::try_from(v).ok()
}
