//! The file-activity half of `cargo xtask bench`, each figure beside its
//! baselines measured in the same run:
//!
//! - `open`+`close` of an unwatched file: no sensor, a bpftrace one-liner on
//!   `sys_exit_openat`, and the agent with the shipped (file) rules;
//! - a tar of many small files extracted inside a podman container, the
//!   same three;
//! - watched writes at a fixed rate: events written, kernel drops, shed,
//!   and the agent's CPU per event.

use std::{
    fmt::Write as _,
    fs::{File, OpenOptions},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    AgentOut, BenchArgs, Running, bench_dir, cpu_secs, median, pct, start_agent_with,
    start_bpftrace, summary_field,
};
use crate::util;

/// bpftrace doing the same hook as the agent's open program.
const BPFTRACE_OPENS: &str = "tracepoint:syscalls:sys_exit_openat { @n = count(); }";

/// A measurement's sensor.
#[derive(Clone, Copy)]
enum Sensor {
    None,
    Bpftrace,
    Agent,
}

impl Sensor {
    const ALL: [Sensor; 3] = [Sensor::None, Sensor::Bpftrace, Sensor::Agent];
}

/// Wall times of one workload under the three sensors, and the agent's
/// exit summary of its last run.
struct Row {
    times: [Duration; 3],
    agent_summary: String,
}

impl Row {
    fn pct(&self, i: usize) -> f64 {
        pct(self.times[i], self.times[0])
    }

    fn field(&self, key: &str) -> String {
        summary_field(&self.agent_summary, key).map_or_else(|| "?".into(), |v| v.to_string())
    }
}

/// Runs `work` under each sensor `reps` times (interleaved, so drift on a
/// shared machine spreads over all three) and keeps the medians.
fn measure(
    label: &str,
    reps: u32,
    agent: &Path,
    rules: &Path,
    mut work: impl FnMut() -> Result<Duration>,
) -> Result<Row> {
    let mut times: [Vec<Duration>; 3] = Default::default();
    let mut agent_summary = String::new();
    work()?; // warm caches before the first measured run
    for rep in 0..reps.max(1) {
        for (i, sensor) in Sensor::ALL.into_iter().enumerate() {
            let name = ["no sensor", "bpftrace", "sensor-agent"][i];
            println!("bench: {label} (rep {}/{}): {name}", rep + 1, reps.max(1));
            let running: Option<Running> = match sensor {
                Sensor::None => None,
                Sensor::Bpftrace => Some(start_bpftrace(BPFTRACE_OPENS)?.0),
                Sensor::Agent => Some(super::start_agent(agent, rules, AgentOut::Discard)?),
            };
            times[i].push(work()?);
            if let Some(r) = running {
                let stderr = r.stop()?;
                if matches!(sensor, Sensor::Agent) {
                    agent_summary = stderr;
                }
            }
        }
    }
    Ok(Row {
        times: times.map(median),
        agent_summary,
    })
}

/// `n` × open(O_RDONLY)+close of `path`.
fn open_close(path: &Path, n: u32) -> Result<Duration> {
    let start = Instant::now();
    for _ in 0..n {
        drop(File::open(path).with_context(|| format!("opening {}", path.display()))?);
    }
    Ok(start.elapsed())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn write_row(md: &mut String, what: &str, r: &Row) -> Result<()> {
    writeln!(
        md,
        "| {what} | {} | {} | {} | {:+.1}% | {:+.1}% | {} | {} | {} |",
        ms(r.times[0]),
        ms(r.times[1]),
        ms(r.times[2]),
        r.pct(1),
        r.pct(2),
        r.field("file_seen"),
        r.field("file_unwatched"),
        r.field("file_emitted"),
    )?;
    Ok(())
}

/// The image the tar runs in: busybox alone, imported from the host's
/// busybox-static (no registry pull).
const IMAGE: &str = "localhost/xtask-bench-busybox:latest";

fn ensure_image() -> Result<()> {
    let exists = Command::new("podman")
        .args(["image", "exists", IMAGE])
        .status()
        .context("podman not found (cargo xtask setup installs it)")?;
    if exists.success() {
        return Ok(());
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("busybox not found (cargo xtask setup installs busybox-static)")?;
    let root = bench_dir().join("image-rootfs");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::create_dir_all(root.join("tmp"))?;
    std::fs::copy(busybox, root.join("bin/busybox"))?;
    for applet in ["sh", "tar", "rm", "mkdir", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
    }
    let tar = bench_dir().join("image-rootfs.tar");
    util::run(
        Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(&root)
            .arg("."),
    )?;
    util::run(
        Command::new("podman")
            .args([
                "import",
                "--change",
                "ENV PATH=/bin",
                "--change",
                "CMD [\"/bin/sh\"]",
            ])
            .arg(&tar)
            .arg(IMAGE)
            .stdout(Stdio::null()),
    )
}

/// A tar of `files` small files in 100 directories, built once per count.
fn files_tar(files: u32) -> Result<PathBuf> {
    let tar = bench_dir().join(format!("files-{files}.tar"));
    if tar.exists() {
        return Ok(tar);
    }
    let src = bench_dir().join("tar-src");
    let _ = std::fs::remove_dir_all(&src);
    for i in 0..files {
        let dir = src.join(format!("d{:02}", i % 100));
        if i < 100 {
            std::fs::create_dir_all(&dir)?;
        }
        std::fs::write(dir.join(format!("f{i:05}.txt")), format!("file {i}\n"))?;
    }
    let part = tar.with_extension("part");
    util::run(
        Command::new("tar")
            .arg("-cf")
            .arg(&part)
            .arg("-C")
            .arg(&src)
            .arg("."),
    )?;
    std::fs::rename(&part, &tar)?;
    let _ = std::fs::remove_dir_all(&src);
    Ok(tar)
}

/// A container for the tar runs, removed on drop.
struct Container(String);

impl Container {
    fn start(mount: &Path) -> Result<Self> {
        let name = format!("xtask-bench-tar-{}", std::process::id());
        util::run(
            Command::new("podman")
                .args([
                    "--runtime",
                    "runc",
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--name",
                    &name,
                    "-v",
                ])
                .arg(format!("{}:/t:ro", mount.display()))
                .args([IMAGE, "sleep", "3600"])
                .stdout(Stdio::null()),
        )?;
        Ok(Self(name))
    }

    fn exec(&self, cmd: &[&str]) -> Result<()> {
        let out = Command::new("podman")
            .args(["exec", &self.0])
            .args(cmd)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "podman exec {}: {}",
                cmd.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn tar_row(args: &BenchArgs, agent: &Path, rules: &Path) -> Result<Row> {
    ensure_image()?;
    let tar = files_tar(args.tar_files)?;
    let ctr = Container::start(&bench_dir())?;
    let inside = format!("/t/{}", tar.file_name().expect("name").to_string_lossy());
    measure(
        &format!("tar of {} files extracted in a container", args.tar_files),
        args.reps,
        agent,
        rules,
        || {
            ctr.exec(&["sh", "-c", "rm -rf /x && mkdir /x"])?;
            let start = Instant::now();
            ctr.exec(&["tar", "-xf", &inside, "-C", "/x"])?;
            Ok(start.elapsed())
        },
    )
}

/// What the watched-write run measured.
struct Writes {
    opens: u64,
    rate: f64,
    handled: Option<u64>,
    emitted: Option<u64>,
    drops: Option<u64>,
    shed: Option<u64>,
    cpu_us_per_event: Option<f64>,
}

/// Opens for write of files under a watched directory, `rate` a second
/// (a batch each millisecond) for `secs`.
fn watched_writes(args: &BenchArgs, agent: &Path, rules: &Path) -> Result<Writes> {
    let dir = bench_dir().join("watched");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let watch = format!("{}/*", dir.display());
    let running = start_agent_with(agent, rules, AgentOut::Discard, &["--file-watch", &watch])?;
    let pid = running.pid();
    let cpu0 = cpu_secs(pid).unwrap_or(0.0);
    let per_ms = (args.write_rate / 1000).max(1) as u64;
    let total = per_ms * 1000 * args.write_secs as u64;
    let paths: Vec<PathBuf> = (0..64).map(|i| dir.join(format!("w{i}.log"))).collect();
    let start = Instant::now();
    let mut done = 0u64;
    while done < total {
        let due = start + Duration::from_micros(done * 1000 / per_ms);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        for _ in 0..per_ms {
            let p = &paths[(done % 64) as usize];
            drop(
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(p)?,
            );
            done += 1;
        }
    }
    let took = start.elapsed();
    std::thread::sleep(Duration::from_secs(2)); // let the agent drain
    let cpu1 = cpu_secs(pid);
    let summary = running.stop()?;
    let handled = summary_field(&summary, "file");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Writes {
        opens: done,
        rate: done as f64 / took.as_secs_f64(),
        handled,
        emitted: summary_field(&summary, "file_emitted"),
        drops: summary_field(&summary, "file_drops"),
        shed: summary_field(&summary, "file_shed"),
        cpu_us_per_event: cpu1
            .zip(handled.filter(|&w| w > 0))
            .map(|(c, w)| (c - cpu0) * 1e6 / w as f64),
    })
}

/// Writes the file section of results.md.
pub(super) fn section(md: &mut String, args: &BenchArgs, agent: &Path, rules: &Path) -> Result<()> {
    writeln!(
        md,
        "\n## File activity\n\nMedian of {} run(s) each; the sensors take turns. bpftrace: `{BPFTRACE_OPENS}`. \
         The agent: the shipped rules (whose watch set the kernel filters by), output drained and dropped. \
         `file_*` are the agent's kernel-side counters of its last run.\n",
        args.reps.max(1)
    )?;
    writeln!(
        md,
        "| workload | no sensor | bpftrace | sensor-agent | bpftrace vs none | agent vs none | file_seen | file_unwatched | file_emitted |\n|---|---|---|---|---|---|---|---|---|"
    )?;
    let target = bench_dir().join("unwatched.txt");
    std::fs::write(&target, b"x")?;
    let n = args.opens;
    let r = measure(
        &format!("{n} open+close of an unwatched file"),
        args.reps,
        agent,
        rules,
        || open_close(&target, n),
    )?;
    write_row(md, &format!("{n} × open+close, unwatched file"), &r)?;
    match tar_row(args, agent, rules) {
        Ok(r) => write_row(
            md,
            &format!(
                "tar -x of {} files in a podman container (wall of `podman exec`)",
                args.tar_files
            ),
            &r,
        )?,
        Err(e) => {
            println!("bench: tar row not measured: {e:#}");
            writeln!(
                md,
                "| tar -x of {} files in a container | not measured: {e:#} | | | | | | | |",
                args.tar_files
            )?;
        }
    }

    println!(
        "bench: watched writes at {}/s for {} s",
        args.write_rate, args.write_secs
    );
    let w = watched_writes(args, agent, rules)?;
    let o = |v: Option<u64>| v.map_or_else(|| "?".into(), |v| v.to_string());
    writeln!(
        md,
        "\nWatched writes (open O_WRONLY|O_CREAT|O_TRUNC of 64 files under a `--file-watch` directory), \
         asked for {}/s over {} s:\n\n\
         | opens | achieved rate | kernel file_emitted | kernel drops | file events handled by the agent | of which written | shed (output queue full) | agent CPU per handled event |\n\
         |---|---|---|---|---|---|---|---|\n\
         | {} | {:.0}/s | {} | {} | {} | {} | {} | {} |",
        args.write_rate,
        args.write_secs,
        w.opens,
        w.rate,
        o(w.emitted),
        o(w.drops),
        o(w.handled),
        o(w.handled.zip(w.shed).map(|(h, s)| h.saturating_sub(s))),
        o(w.shed),
        w.cpu_us_per_event
            .map_or_else(|| "?".into(), |c| format!("{c:.1} µs")),
    )?;
    Ok(())
}
