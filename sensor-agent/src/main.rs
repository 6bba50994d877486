//! Thin entry point: parse the command line, set up logging, hand over to
//! the library. Errors print with their causes and a non-zero exit.

use std::process::ExitCode;

use clap::Parser;
use sensor_agent::{
    cli::{Cli, Command},
    run,
};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    match dispatch(cli.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<bool> {
    let mut stdout = std::io::stdout().lock();
    match command {
        Command::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(run::run(args))?;
            Ok(true)
        }
        Command::Rules(_) | Command::Replay(_) => anyhow::bail!("TEMP"),
        Command::Offsets => sensor_agent::capture::print_offsets(&mut stdout).map(|()| true),
    }
}
