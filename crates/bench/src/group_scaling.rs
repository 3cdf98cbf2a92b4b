//! TODO(helper): replace with the real benchmark.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<serde_json::Value> {
    anyhow::bail!("not written yet")
}
