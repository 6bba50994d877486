//! Offline front end to `sensor_rules::cli` (no eBPF toolchain needed):
//! `cargo run -p sensor-rules --example rules_cli -- check|test DIR`
//! `cargo run -p sensor-rules --example rules_cli -- replay DIR FILE|-`

use std::io::{self, BufReader};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = io::stdout().lock();
    let ok = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["check", dir] => sensor_rules::cli::check(Path::new(dir), &mut out),
        ["test", dir] => sensor_rules::cli::test(Path::new(dir), &mut out),
        ["replay", dir, input] => {
            let report = match sensor_rules::loader::load_dir(Path::new(dir)) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{dir}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            for e in &report.errors {
                eprintln!("{e}");
            }
            let mut engine = sensor_rules::engine::Engine::new(
                report.rules,
                sensor_rules::engine::EngineConfig::default(),
            );
            let res = if *input == "-" {
                sensor_rules::cli::replay(
                    &mut engine,
                    io::stdin().lock(),
                    &mut out,
                    &mut io::stderr(),
                )
            } else {
                match std::fs::File::open(input) {
                    Ok(f) => sensor_rules::cli::replay(
                        &mut engine,
                        BufReader::new(f),
                        &mut out,
                        &mut io::stderr(),
                    ),
                    Err(e) => Err(e),
                }
            };
            res.map(|s| {
                eprintln!(
                    "{} events, {} alerts, {} bad lines",
                    s.events, s.alerts, s.bad_lines
                );
                true
            })
        }
        _ => {
            eprintln!("usage: rules_cli check|test DIR | replay DIR FILE|-");
            return ExitCode::from(2);
        }
    };
    match ok {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
