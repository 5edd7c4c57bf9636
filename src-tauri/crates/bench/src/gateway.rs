//! The gateway under test as a child process: `serve` on any free port, its address read from
//! the line it prints once listening.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

pub fn spawn(
    gateway: &str,
    config: &Path,
    dir: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<(Child, SocketAddr)> {
    let mut cmd = Command::new(gateway);
    cmd.args(["serve", "--port", "0", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("gateway.log"))?);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {gateway}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .context("the gateway exited before listening")??;
        if let Some((_, url)) = line.split_once("listening on http://") {
            break url.trim().parse()?;
        }
    };
    Ok((child, addr))
}
