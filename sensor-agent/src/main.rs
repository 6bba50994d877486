//! Thin entry point: parse the command line, set up logging, hand over to
//! the library. Errors print with their causes and a non-zero exit.

use std::process::ExitCode;

use clap::Parser;
use sensor_agent::{
    audit,
    cli::{AuditArgs, AuditCommand, Cli, Command, ReplayFormat, RulesCommand},
    detect, run,
};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match EnvFilter::try_new(&cli.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: --log-level `{}`: {e} (use error, warn, info, debug, trace or a tracing filter)",
                cli.log_level
            );
            return ExitCode::from(2);
        }
    };
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

/// `Ok(false)`: the command ran and found problems (rule errors, failed
/// rule tests); `Err`: it could not run.
fn dispatch(command: Command) -> anyhow::Result<bool> {
    let mut stdout = std::io::stdout().lock();
    match command {
        Command::Run(args) => {
            // One thread runs the event loop and the metadata look-ups'
            // async I/O; a multi-threaded scheduler would only add wake-ups
            // between threads to the hot path.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(run::run(args))?;
            Ok(true)
        }
        Command::Rules(RulesCommand::Check { dir }) => detect::rules_check(&dir, &mut stdout),
        Command::Rules(RulesCommand::Test { dir }) => detect::rules_test(&dir, &mut stdout),
        Command::Replay(args) => {
            let config = args.engine.config();
            match args.format {
                ReplayFormat::Ecs => {
                    detect::replay(&args.rules, &args.input, config, &mut stdout)?;
                }
                ReplayFormat::K8sAudit => {
                    let state = args.engine.state_dir.as_deref();
                    audit::replay(&args.rules, &args.input, config, state, &mut stdout)?;
                }
            }
            Ok(true)
        }
        Command::Audit(AuditArgs {
            command: Some(AuditCommand::Map { input }),
            ..
        }) => audit::map_file(&input, &mut stdout),
        Command::Audit(args) => {
            // The consumer (rules, stdout) runs on this thread and may block
            // on a slow stdout reader; the webhook runs on the workers, so
            // it can still answer 503 while the queue is full.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let res = rt.block_on(audit::run(args));
            // A stdin reader blocked in read(2) must not hold the exit.
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
            res?;
            Ok(true)
        }
        Command::Offsets => sensor_agent::capture::print_offsets(&mut stdout).map(|()| true),
    }
}
