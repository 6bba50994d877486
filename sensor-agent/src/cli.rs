//! Command-line interface.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "sensor-agent",
    version,
    about = "eBPF process sensor: records every exec on the node with its arguments, TTY and \
             container, evaluates Elastic EQL detection rules in real time, and writes ECS \
             events and alerts as NDJSON on stdout.",
    after_help = "Logs go to stderr; stdout carries only NDJSON. `run` needs root (or CAP_BPF, \
                  CAP_PERFMON, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) and a kernel with BTF \
                  (/sys/kernel/btf/vmlinux), 5.15 or newer."
)]
pub struct Cli {
    /// Log verbosity for stderr: error, warn, info, debug or trace (or a
    /// tracing filter such as `sensor_agent=debug`).
    #[arg(long, global = true, default_value = "info", env = "SENSOR_LOG")]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Capture process events from the kernel and write ECS NDJSON to stdout
    /// until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Load, check and test detection rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Evaluate rules against recorded ECS NDJSON events (from this sensor or
    /// any ECS source) and print the alerts as NDJSON.
    Replay(ReplayArgs),
    /// Print the kernel struct offsets resolved from this kernel's BTF and
    /// the cgroup hierarchy that will name containers, then exit.
    Offsets,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Directory of Elastic detection-rules TOML files to evaluate live.
    /// Without it, only events are written.
    #[arg(long, value_name = "DIR", env = "SENSOR_RULES")]
    pub rules: Option<PathBuf>,

    /// argv bytes captured per exec; longer argv is cut and flagged with
    /// `process.args_truncated` and its original size (max 32768).
    #[arg(long, default_value_t = 32768, value_parser = clap::value_parser!(u32).range(64..=32768))]
    pub max_args_bytes: u32,

    /// Kernel ring buffer size in MiB (a power of two). Larger absorbs
    /// longer stalls of the agent before events are dropped (drops are
    /// always counted); 8 MiB holds about 8 000 execs, several seconds of a
    /// busy node. It shows twice in the agent's RSS (the kernel maps the
    /// data area twice).
    #[arg(long, default_value_t = 8, value_parser = parse_ring_mib)]
    pub ring_buffer_mib: u32,

    /// Which event kinds to write. Rules see every kind, written or not.
    #[arg(long, value_delimiter = ',', default_value = "exec,fork,exit")]
    pub events: Vec<EventSelect>,

    /// Write only alerts, not the events themselves.
    #[arg(long)]
    pub alerts_only: bool,

    /// cgroup hierarchy that names containers: `auto`, `v2`, or a v1
    /// controller such as `memory` (auto picks v1 on hybrid hosts).
    #[arg(long, default_value = "auto")]
    pub cgroup_hierarchy: String,

    /// Attach the raw_tp programs instead of tp_btf (normally only a fallback).
    #[arg(long)]
    pub force_raw_tp: bool,

    /// CRI sockets to ask for pod and container metadata, in order.
    #[arg(
        long = "cri-socket",
        value_name = "PATH",
        default_values = ["/run/containerd/containerd.sock", "/var/run/crio/crio.sock"]
    )]
    pub cri_sockets: Vec<PathBuf>,

    /// Serve Prometheus metrics at /metrics and a health check at /healthz
    /// on this address (off by default), e.g. 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Account the kernel time of each hook (BPF_ENABLE_STATS) and report
    /// it per run in the exit summary; costs two clock reads per hook run.
    #[arg(long)]
    pub bpf_stats: bool,

    /// Seconds between drop reports on stderr (reported only when drops grew).
    #[arg(long, default_value_t = 10)]
    pub drop_report_secs: u64,

    #[command(flatten)]
    pub engine: EngineArgs,
}

/// How the rule engine folds and bounds alerts (shared by `run` and `replay`).
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Default alert suppression window, e.g. 60s, 5m or 0 (off). Rules with
    /// their own `[rule.alert_suppression]` use theirs. Within the window
    /// one alert is written per rule, container (or host) and
    /// process.command_line (file.path for file events); the duplicates are
    /// counted and written as one count alert when the window closes.
    #[arg(long, default_value = "60s", value_parser = parse_span, value_name = "SPAN")]
    pub suppress_window: u64,

    /// Alerts per minute one rule may write for one container (or the host);
    /// past it alerts are counted (sensor_alerts_capped_total) but not
    /// written. 0 turns the cap off.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub alert_rate_cap: u32,

    /// Partial sequences one sequence rule may hold; past it the oldest are
    /// evicted (counted, and logged once per rule).
    #[arg(long, default_value_t = sensor_rules::engine::DEFAULT_MAX_PARTIALS, value_name = "N")]
    pub sequence_state_cap: usize,
}

impl EngineArgs {
    pub fn config(&self) -> sensor_rules::engine::EngineConfig {
        let mut c = sensor_rules::engine::EngineConfig::default();
        c.suppress.default_window_ms = self.suppress_window;
        c.suppress.rate_cap = self.alert_rate_cap;
        c.max_partials_per_rule = self.sequence_state_cap.max(1);
        c
    }
}

/// `60s`, `5m`, `1h`, `500ms` or a bare `0`, in milliseconds.
fn parse_span(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    sensor_rules::loader::parse_span_ms(s)
        .ok_or_else(|| format!("`{s}`: use a number with a unit (500ms, 30s, 5m, 1h) or 0 for off"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EventSelect {
    Exec,
    Fork,
    Exit,
}

fn parse_ring_mib(s: &str) -> Result<u32, String> {
    let v: u32 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of MiB"))?;
    if !(1..=1024).contains(&v) || !v.is_power_of_two() {
        return Err(format!("{v} MiB: use a power of two between 1 and 1024"));
    }
    Ok(v)
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Load every rule in DIR and print what loaded, what was declined and
    /// why, and any errors with file:line:col. Exits non-zero on errors.
    Check {
        /// Directory of .toml rule files.
        dir: PathBuf,
    },
    /// Run each rule's example events (rules/tests/<rule>.ndjson) and report
    /// mismatches. Exits non-zero on any failure.
    Test {
        /// Directory of .toml rule files (with a tests/ subdirectory).
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Directory of .toml rule files.
    #[arg(long, value_name = "DIR")]
    pub rules: PathBuf,
    /// NDJSON file of ECS events; `-` reads stdin.
    pub input: PathBuf,

    #[command(flatten)]
    pub engine: EngineArgs,
}
