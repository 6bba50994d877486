//! Command-line interface.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use sensor_rules::watch::{Actions, Pattern};

use crate::kind::Kind;

#[derive(Parser, Debug)]
#[command(
    name = "sensor-agent",
    version,
    about = "eBPF process sensor: records every exec on the node with its arguments, TTY and \
             container, evaluates Elastic EQL detection rules in real time, and writes ECS \
             events and alerts as NDJSON on stdout.",
    after_help = "Logs go to stderr; stdout carries only NDJSON. `run` needs root (or CAP_BPF, \
                  CAP_PERFMON, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) and a kernel with BTF \
                  (/sys/kernel/btf/vmlinux), 5.10 or newer."
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
    /// Read the Kubernetes API server's audit events (webhook, log file or
    /// stdin), map them to ECS as Elastic's kubernetes.audit_logs
    /// integration does, evaluate rules, and write NDJSON to stdout.
    Audit(AuditArgs),
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

    /// Environment variables written as `process.env_vars` on exec events
    /// (by name, comma-separated; empty: none, and no environment is read).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "LD_PRELOAD,LD_LIBRARY_PATH,LD_AUDIT,LD_BIND_NOW,HISTFILE,HISTFILESIZE,HISTSIZE,HISTCONTROL,PROMPT_COMMAND"
    )]
    pub env_vars: Vec<String>,

    /// Bytes of each exec's environment block read in the kernel, from
    /// which --env-vars are picked (0..=4096; variables past the cut are
    /// missed and `process.Ext.env_vars_truncated` says so).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub max_env_bytes: u32,

    /// Kernel ring buffer size in MiB (a power of two). Larger absorbs
    /// longer stalls of the agent before events are dropped (drops are
    /// always counted); 8 MiB holds about 8 000 execs, several seconds of a
    /// busy node. It shows twice in the agent's RSS (the kernel maps the
    /// data area twice).
    #[arg(long, default_value_t = sensor_common::RING_BYTES >> 20, value_parser = parse_ring_mib)]
    pub ring_buffer_mib: u32,

    /// While records keep coming, the ring is drained this often (the
    /// programs do not wake the agent per record). The longest an alert
    /// waits before it is evaluated; each drain costs a wake-up of the
    /// agent, so a longer interval costs less CPU on a busy node. An idle
    /// agent is woken by the first record instead.
    #[arg(
        long,
        default_value_t = crate::capture::reader::POLL_INTERVAL.as_millis() as u64,
        value_parser = clap::value_parser!(u64).range(1..=100)
    )]
    pub poll_interval_ms: u64,

    /// Output queue in MiB between the ring reader and stdout. When a slow
    /// reader of stdout lets it fill, events are shed (counted per kind in
    /// `sensor_output_shed_total` and the exit summary) so the ring keeps
    /// draining and alerts keep their room.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub output_queue_mib: u64,

    /// Alerts are shed only once this many MiB wait to be written (must be
    /// at least --output-queue-mib).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub alert_queue_mib: u64,

    /// Which event kinds to write. Rules see every kind, written or not.
    /// File events exist only for the files watched (see --file-watch).
    #[arg(long, value_delimiter = ',', default_value = "exec,fork,exit,file")]
    pub events: Vec<Kind>,

    /// Also watch these files for the write actions (repeatable), on top of
    /// what the loaded rules watch: an absolute path (`/etc/passwd`), a
    /// prefix ending in `*` (`/etc/cron.d/*`), `name:FILE_NAME` or
    /// `ext:EXTENSION`. `rules check` prints what the rules watch.
    #[arg(long = "file-watch", value_name = "PATTERN", value_parser = parse_watch)]
    pub file_watch: Vec<Pattern>,

    /// Also report read-only opens of these files (same forms). Reads are
    /// far more frequent than writes: watch only what deserves it.
    #[arg(long = "file-watch-read", value_name = "PATTERN", value_parser = parse_watch)]
    pub file_watch_read: Vec<Pattern>,

    /// File actions reported at all (comma-separated): creation, open,
    /// access, rename, deletion, permission_change.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "creation,open,access,rename,deletion,permission_change",
        value_parser = parse_file_action
    )]
    pub file_actions: Vec<Actions>,

    /// Whose file activity is reported: host, container, or both.
    #[arg(long, value_delimiter = ',', default_value = "host,container")]
    pub file_scope: Vec<FileScopeArg>,

    /// Do not attach the file hooks at all (no `file where` rule can fire).
    #[arg(long)]
    pub no_file_hooks: bool,

    /// How file activity is hooked: `auto` (BPF LSM's file_open and path_*
    /// hooks where the kernel runs BPF LSM, booted with `lsm=...,bpf`; else
    /// the syscall tracepoints), `lsm` (fail if it is not active) or
    /// `tracepoint`. Both ways report the same fields; mknod is always at
    /// its tracepoint.
    #[arg(long, value_enum, default_value = "auto")]
    pub file_hooks: FileHooksArg,

    /// Write only alerts, not the events themselves.
    #[arg(long)]
    pub alerts_only: bool,

    /// cgroup hierarchy that names containers: `auto`, `v2`, or a v1
    /// controller such as `memory` (auto picks v1 on hybrid hosts).
    #[arg(long, default_value = "auto")]
    pub cgroup_hierarchy: String,

    /// Attach BTF-typed tracepoints (tp_btf) instead of the raw_tp ones,
    /// falling back to raw_tp when they will not load. Same fields, same
    /// cost; it costs 14 MiB more memory at start-up (a second parse of the
    /// kernel's BTF).
    #[arg(long)]
    pub tp_btf: bool,

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
    /// process.command_line (file.path for file events; user.name and
    /// requestURI for audit events); the duplicates are counted and written
    /// as one count alert when the window closes.
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

    /// Directory for state kept across restarts: the new_terms rules'
    /// remembered terms (and the audit log offset). Without it (run,
    /// replay) new_terms state lives in memory only; `audit` defaults to
    /// /var/lib/sensor-agent.
    #[arg(long, value_name = "DIR", env = "SENSOR_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// How long a new_terms rule only learns (records terms, writes no
    /// alert) after it first sees an event: `window` (its own
    /// history_window_start, so it knows what Elastic's window query would
    /// find), a span such as 1h or 2d, or 0 to alert at once.
    #[arg(long, default_value = "window", value_parser = parse_learning, value_name = "SPAN")]
    pub new_terms_learning: Learning,

    /// Term combinations one new_terms rule remembers; past it the least
    /// recently seen is forgotten (counted in sensor_new_terms_evicted_total).
    #[arg(long, default_value_t = sensor_rules::new_terms::DEFAULT_CAP_PER_RULE, value_name = "N")]
    pub new_terms_cap: usize,
}

/// `--new-terms-learning`: each rule's window, or a fixed span (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learning {
    Window,
    Span(u64),
}

fn parse_learning(s: &str) -> Result<Learning, String> {
    if s == "window" {
        return Ok(Learning::Window);
    }
    parse_span(s).map(Learning::Span)
}

impl EngineArgs {
    pub fn config(&self) -> sensor_rules::engine::EngineConfig {
        let mut c = sensor_rules::engine::EngineConfig::default();
        c.suppress.default_window_ms = self.suppress_window;
        c.suppress.rate_cap = self.alert_rate_cap;
        c.max_partials_per_rule = self.sequence_state_cap.max(1);
        c.new_terms.learning_ms = match self.new_terms_learning {
            Learning::Window => None,
            Learning::Span(ms) => Some(ms),
        };
        c.new_terms.cap_per_rule = self.new_terms_cap.max(1);
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
pub enum FileHooksArg {
    Auto,
    Lsm,
    Tracepoint,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FileScopeArg {
    Host,
    Container,
}

fn parse_watch(s: &str) -> Result<Pattern, String> {
    Pattern::parse(s)
}

fn parse_file_action(s: &str) -> Result<Actions, String> {
    let a = Actions::from_event_action(s);
    if a.is_empty() {
        return Err(format!(
            "`{s}`: use creation, open, access, rename, deletion or permission_change"
        ));
    }
    Ok(a)
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
    /// NDJSON file of ECS events (or of raw audit events with --format
    /// k8s-audit); `-` reads stdin.
    pub input: PathBuf,

    /// What the input lines are: ECS documents, or raw Kubernetes audit
    /// events (and managed-cluster envelopes), mapped as `audit` maps them.
    #[arg(long, value_enum, default_value = "ecs")]
    pub format: ReplayFormat,

    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormat {
    Ecs,
    #[value(name = "k8s-audit")]
    K8sAudit,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,

    #[command(flatten)]
    pub run: AuditRunArgs,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Print the ECS documents of raw audit events (one JSON event or
    /// envelope per line; `-` reads stdin), without rules, and exit.
    Map {
        /// Audit log file (`--audit-log-path` format).
        input: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct AuditRunArgs {
    /// Directory of detection-rules TOML files (EQL, KQL query and
    /// new_terms rules). Without it, only the ECS events are written.
    #[arg(long, value_name = "DIR", env = "SENSOR_RULES")]
    pub rules: Option<PathBuf>,

    /// Serve the audit webhook (HTTPS) on this address, e.g. 0.0.0.0:8443;
    /// point the API server's --audit-webhook-config-file at it.
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    pub webhook_listen: Option<SocketAddr>,

    /// PEM certificate chain the webhook presents.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Require a client certificate signed by this PEM CA (the one in the
    /// API server's webhook kubeconfig).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,

    /// Largest webhook body accepted; bigger gets 413.
    #[arg(long, default_value_t = crate::audit::webhook::DEFAULT_MAX_BODY, value_name = "BYTES")]
    pub max_body_bytes: usize,

    /// Batches the queue between the inputs and the rules holds; when it
    /// is full the webhook answers 503 and the API server retries.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub queue_batches: usize,

    /// Follow this audit log (the API server's --audit-log-path), through
    /// rotation, resuming from the saved offset after a restart; `-` reads
    /// stdin until it ends.
    #[arg(long, value_name = "FILE")]
    pub audit_log_path: Option<PathBuf>,

    /// Write only alerts, not the mapped events.
    #[arg(long)]
    pub alerts_only: bool,

    /// Serve Prometheus metrics at /metrics and /healthz on this address.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    #[command(flatten)]
    pub engine: EngineArgs,
}
