//! Runs the simulator on its own until `m365sync sim` is wired into the main binary:
//! `cargo run --example sim -- --tls --users 1000` (see `--help` for faults and timings).

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "sim",
    about = "The m365sync simulated Microsoft 365 tenant (Graph v1.0 + identity platform)"
)]
struct Cli {
    #[command(flatten)]
    args: m365sync::sim::SimArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    m365sync::sim::run_cli(Cli::parse().args).await
}
