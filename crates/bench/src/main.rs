//! `skytale-bench`: the Rust half of the benchmark suite. `benches/run.py` runs each subcommand and merges
//! what it prints into one table.
//!
//! Every subcommand prints exactly one JSON object on stdout (its figures: numbers, or objects of numbers, with
//! units in the key names) and its progress on stderr. Figures only: nothing here judges a result.

mod cluster;
mod commit_race;
mod fixture;
mod group_scaling;
mod idle_streams;
mod limits;
mod load;
mod nats_process;
mod relay_capacity;
mod relay_process;
mod slim_stream;
mod stats;
mod throughput;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "skytale-bench", about = "Skytale benchmarks: each subcommand prints one JSON object")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What this machine can do: Ed25519 sign/verify, AES-128-GCM, a bare tonic bidi-stream echo.
    Limits(limits::Args),
    /// Rust API throughput: 1 -> 1 (msgs/s, MB/s) and 1 -> N fan-out (deliveries/s) through a relay.
    Throughput(throughput::Args),
    /// add_member / remove_member / rotate_key time and commit / Welcome sizes at several group sizes.
    GroupScaling(group_scaling::Args),
    /// Routed messages per second through one relay with N publishing clients (load generator).
    RelayCapacity(relay_capacity::Args),
    /// Resident memory of a relay process per idle subscribed stream.
    IdleStreams(idle_streams::Args),
    /// The relay on SQLite, JetStream R1 and JetStream R3 behind 2 relays: routed msgs/s, ack latency at half
    /// load, competing commits resolved/s, 1 -> 100 fan-out.
    Cluster(cluster::Args),
}

fn main() -> anyhow::Result<()> {
    let figures = match Cli::parse().command {
        Command::Limits(args) => limits::run(args)?,
        Command::Throughput(args) => throughput::run(args)?,
        Command::GroupScaling(args) => group_scaling::run(args)?,
        Command::RelayCapacity(args) => relay_capacity::run(args)?,
        Command::IdleStreams(args) => idle_streams::run(args)?,
        Command::Cluster(args) => cluster::run(args)?,
    };
    println!("{}", serde_json::to_string_pretty(&figures)?);
    Ok(())
}
