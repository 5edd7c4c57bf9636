//! Switchboard's benchmark: a fast mock upstream and a load generator in this process, the
//! gateway (release build) as a child process. Each load step runs direct-to-mock and
//! through-gateway back to back (A B A B over rounds, so drift cancels), and the gateway's CPU
//! time and memory are read from /proc.
//!
//! Usage: switchboard-bench --gateway PATH [--seconds S] [--rounds R] [--only-log]

mod gateway;
mod load;
mod mock;
mod proc_stats;

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use load::{Mode, Phase};

const CLIENT_KEY: &str = "sk-sb-bench-key-0123456789abcdef";
const CONCURRENCY: [usize; 3] = [1, 16, 64];

struct Args {
    gateway: String,
    seconds: f64,
    rounds: usize,
    /// Only the request log's cost (`--only-log`): for profiling it.
    only_log: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        gateway: String::new(),
        seconds: 3.0,
        rounds: 2,
        only_log: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().context("missing value");
        match a.as_str() {
            "--gateway" => args.gateway = value()?,
            "--seconds" => args.seconds = value()?.parse()?,
            "--rounds" => args.rounds = value()?.parse()?,
            "--only-log" => args.only_log = true,
            other => bail!("unknown argument {other}"),
        }
    }
    if args.gateway.is_empty() {
        bail!("usage: switchboard-bench --gateway PATH [--seconds S] [--rounds R] [--only-log]");
    }
    Ok(args)
}

/// What the request log costs: gateway CPU per plain request at concurrency 16, the log on
/// (the gateway above) against a second gateway with `[logs] enabled = false`, in turns.
async fn request_log_cost(
    args: &Args,
    dir: &std::path::Path,
    config_text: &str,
    pid: u32,
    gateway: std::net::SocketAddr,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let off_dir = dir.join("log-off");
    std::fs::create_dir_all(&off_dir)?;
    let off_config = off_dir.join("bench.toml");
    std::fs::write(
        &off_config,
        format!("[logs]\nenabled = false\n\n{config_text}"),
    )?;
    let (mut off_child, off) = gateway::spawn(
        &args.gateway,
        &off_config,
        &off_dir,
        &[("SWITCHBOARD_BENCH_UPSTREAM_KEY", "sk-upstream")],
    )?;
    let off_pid = off_child.id();
    load::wait_healthy(off).await?;
    let tick = proc_stats::tick_seconds();
    let (mut on_cpu, mut on_n, mut off_cpu, mut off_n) = (0u64, 0usize, 0u64, 0usize);
    for _ in 0..args.rounds {
        for (addr, p, cpu, n) in [
            (gateway, pid, &mut on_cpu, &mut on_n),
            (off, off_pid, &mut off_cpu, &mut off_n),
        ] {
            let cpu0 = proc_stats::cpu_ticks(p)?;
            let phase = load::run(addr, Some(CLIENT_KEY), Mode::Plain, 16, args.seconds).await?;
            *cpu += proc_stats::cpu_ticks(p)? - cpu0;
            *n += phase.count();
        }
    }
    let _ = off_child.kill();
    let _ = off_child.wait();
    let per = |cpu: u64, n: usize| cpu as f64 * tick / n.max(1) as f64 * 1e6;
    let (with, without) = (per(on_cpu, on_n), per(off_cpu, off_n));
    writeln!(
        out,
        "Request log at c=16, plain: {with:.0} µs gateway CPU per request with it, {without:.0} µs without ([logs] enabled = false): {:+.0} %",
        (with / without.max(1e-9) - 1.0) * 100.0
    )?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mock = mock::start().await?;
    let dir = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("bench.toml");
    let config_text = format!(
        r#"[[providers]]
name = "mock"
base_url = "http://{mock}"
api_key = "env:SWITCHBOARD_BENCH_UPSTREAM_KEY"
models = ["bench-model"]

[[models]]
name = "bench-model"

[[client_keys]]
name = "bench"
key = "{CLIENT_KEY}"
"#
    );
    std::fs::write(&config, &config_text)?;

    let started = Instant::now();
    let (mut child, gateway) = gateway::spawn(
        &args.gateway,
        &config,
        &dir,
        &[("SWITCHBOARD_BENCH_UPSTREAM_KEY", "sk-upstream")],
    )?;
    let pid = child.id();
    load::wait_healthy(gateway).await?;
    let ready = started.elapsed();
    let idle_rss = proc_stats::rss_kib(pid)?;

    println!(
        "# Switchboard benchmark: {} s per step, {} rounds, interleaved direct/gateway\n",
        args.seconds, args.rounds
    );
    let mut results: Vec<(Mode, usize, Phase, Phase)> = Vec::new();
    let modes: &[Mode] = if args.only_log {
        &[]
    } else {
        &[Mode::Plain, Mode::Stream, Mode::Converted]
    };
    for &mode in modes {
        for c in CONCURRENCY {
            let mut direct = Phase::default();
            let mut through = Phase::default();
            for _ in 0..args.rounds {
                direct.merge(load::run(mock, None, mode, c, args.seconds).await?);
                let cpu0 = proc_stats::cpu_ticks(pid)?;
                let mut p = load::run(gateway, Some(CLIENT_KEY), mode, c, args.seconds).await?;
                p.cpu_ticks = proc_stats::cpu_ticks(pid)? - cpu0;
                through.merge(p);
            }
            eprintln!("done: {mode:?} c={c}");
            results.push((mode, c, direct, through));
        }
    }
    let peak_rss = proc_stats::peak_rss_kib(pid)?;
    let tick = proc_stats::tick_seconds();

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| mode | conc | direct rps | gateway rps | ratio | direct p50 / p99 | gateway p50 / p99 | added p50 | direct ttfb p50 | gateway ttfb p50 | gateway CPU / req | errors (direct / gateway) |"
    )?;
    writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for (mode, c, d, g) in &results {
        let us = |x: f64| format!("{:.0} µs", x * 1e6);
        let cpu_per_req = g.cpu_ticks as f64 * tick / g.count().max(1) as f64;
        writeln!(
            out,
            "| {} | {c} | {:.0} | {:.0} | {:.2} | {} / {} | {} / {} | {} | {} | {} | {} | {} / {} |",
            mode.name(),
            d.rps(),
            g.rps(),
            g.rps() / d.rps().max(1e-9),
            us(d.latency_pct(0.5)),
            us(d.latency_pct(0.99)),
            us(g.latency_pct(0.5)),
            us(g.latency_pct(0.99)),
            us(g.latency_pct(0.5) - d.latency_pct(0.5)),
            us(d.ttfb_pct(0.5)),
            us(g.ttfb_pct(0.5)),
            us(cpu_per_req),
            d.errors,
            g.errors,
        )?;
    }
    writeln!(
        out,
        "\nGateway: ready {} ms after spawn (listening and /health answered); RSS idle {:.1} MB, peak {:.1} MB",
        ready.as_millis(),
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    )?;
    writeln!(
        out,
        "Stream = 20 content chunks + [DONE] per request. CPU from /proc/{{pid}}/stat (utime+stime), tick {tick} s."
    )?;
    // What conversion adds over passing the same stream through: per request and per chunk.
    for c in CONCURRENCY {
        let find = |m: Mode| {
            results
                .iter()
                .find(|(mode, cc, _, _)| *mode == m && *cc == c)
        };
        if let (Some((_, _, _, native)), Some((_, _, _, converted))) =
            (find(Mode::Stream), find(Mode::Converted))
        {
            let per_req = |p: &Phase| p.cpu_ticks as f64 * tick / p.count().max(1) as f64;
            let chunks = (mock::STREAM_CHUNKS + 1) as f64;
            writeln!(
                out,
                "Conversion at c={c}: +{:.0} µs p50 latency, +{:.1} µs gateway CPU per chunk (anthropic client <- openai stream vs the same stream passed through)",
                (converted.latency_pct(0.5) - native.latency_pct(0.5)) * 1e6,
                (per_req(converted) - per_req(native)) / chunks * 1e6,
            )?;
        }
    }
    request_log_cost(&args, &dir, &config_text, pid, gateway, &mut out).await?;
    let _ = child.kill();
    let _ = child.wait();
    if std::env::var_os("SWITCHBOARD_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("kept {}", dir.display());
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
