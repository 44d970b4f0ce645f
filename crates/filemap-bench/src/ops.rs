//! The mapping operations themselves (create, open, map a view, unmap,
//! remove), through filemap and through the raw OS calls, to show what the
//! library adds. One process; each operation timed per call.

use std::time::Instant;

use filemap::{Access, Mapping, ViewAccess};
use hdrhistogram::Histogram;

use crate::error::{BenchError, Result};

/// One operation's per-call times.
#[derive(Debug, Clone)]
pub struct OpRow {
    /// What was timed.
    pub op: &'static str,
    /// `filemap` or `raw OS calls`.
    pub via: &'static str,
    /// Median and 99th percentile, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
}

impl OpRow {
    /// The row as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"op": self.op, "via": self.via, "p50_ns": self.p50_ns, "p99_ns": self.p99_ns})
    }
}

fn time(
    op: &'static str,
    via: &'static str,
    n: usize,
    mut f: impl FnMut(usize) -> Result<()>,
) -> Result<OpRow> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)
        .map_err(|e| BenchError::library("hdrhistogram", e))?;
    for i in 0..n {
        let t = Instant::now();
        f(i)?;
        let _ = h.record(t.elapsed().as_nanos() as u64);
    }
    Ok(OpRow {
        op,
        via,
        p50_ns: h.value_at_quantile(0.5),
        p99_ns: h.value_at_quantile(0.99),
    })
}

/// Times each operation `n` times.
///
/// # Errors
/// The error of the operation that failed.
pub fn run_ops(n: usize) -> Result<Vec<OpRow>> {
    let e = BenchError::from;
    let pid = std::process::id();
    let names: Vec<String> = (0..n).map(|i| format!("fm-ops-{pid}-{i}")).collect();
    let mut rows = vec![time("create 4 KiB + remove", "filemap", n, |i| {
        Mapping::create(&names[i], 4096).map(drop).map_err(e)
    })?];
    let held = format!("fm-ops-{pid}-held");
    let keep = Mapping::create(&held, 4096).map_err(e)?;
    rows.push(time("open + close", "filemap", n, |_| {
        Mapping::open(&held, Access::ReadWrite).map(drop).map_err(e)
    })?);
    rows.push(time("map 4 KiB view + unmap", "filemap", n, |_| {
        keep.view(.., ViewAccess::ReadWrite).map(drop).map_err(e)
    })?);
    rows.push(time("unnamed 4 KiB + close", "filemap", n, |_| {
        Mapping::anonymous(4096).map(drop).map_err(e)
    })?);
    #[cfg(target_os = "linux")]
    rows.extend(raw::run(n, &names, &held)?);
    Ok(rows)
}

#[cfg(target_os = "linux")]
mod raw {
    use super::{time, OpRow};
    use crate::error::{BenchError, Result};
    use rustix::fs::Mode;
    use rustix::mm::{MapFlags, ProtFlags};
    use rustix::shm;

    fn s(e: rustix::io::Errno) -> BenchError {
        BenchError::Io(std::io::Error::from_raw_os_error(e.raw_os_error()))
    }

    pub fn run(n: usize, names: &[String], held: &str) -> Result<Vec<OpRow>> {
        let raw = "raw OS calls";
        let held = format!("/{held}");
        let mut rows = vec![time("create 4 KiB + remove", raw, n, |i| {
            let name = format!("/{}r", names[i]);
            let fd = shm::open(
                name.as_str(),
                shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
                Mode::from_raw_mode(0o600),
            )
            .map_err(s)?;
            rustix::fs::ftruncate(&fd, 4096).map_err(s)?;
            drop(fd);
            shm::unlink(name.as_str()).map_err(s)
        })?];
        rows.push(time("open + close", raw, n, |_| {
            let fd = shm::open(held.as_str(), shm::OFlags::RDWR, Mode::empty()).map_err(s)?;
            rustix::fs::fstat(&fd).map_err(s)?;
            Ok(())
        })?);
        let fd = shm::open(held.as_str(), shm::OFlags::RDWR, Mode::empty()).map_err(s)?;
        rows.push(time("map 4 KiB view + unmap", raw, n, |_| {
            // SAFETY: a fresh shared mapping at an address the kernel picks,
            // unmapped right away; nothing else refers to it.
            unsafe {
                let p = rustix::mm::mmap(
                    std::ptr::null_mut(),
                    4096,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::SHARED,
                    &fd,
                    0,
                )
                .map_err(s)?;
                rustix::mm::munmap(p, 4096).map_err(s)
            }
        })?);
        rows.push(time("unnamed 4 KiB + close", raw, n, |_| {
            let fd = rustix::fs::memfd_create("raw", rustix::fs::MemfdFlags::CLOEXEC).map_err(s)?;
            rustix::fs::ftruncate(&fd, 4096).map_err(s)
        })?);
        Ok(rows)
    }
}

/// An aligned table of `rows`, each filemap row with its ratio to the raw
/// calls for the same operation.
pub fn ops_table(rows: &[OpRow]) -> String {
    let mut out = String::from("Mapping operations (one process, per call)\n");
    let raw = |op: &str| {
        rows.iter()
            .find(|r| r.op == op && r.via != "filemap")
            .map(|r| r.p50_ns)
    };
    let w = rows.iter().map(|r| r.op.len()).max().unwrap_or(0);
    out.push_str(&format!(
        "{:<w$}  {:<12}  {:>10}  {:>10}  {:>8}\n",
        "OPERATION", "VIA", "p50", "p99", "vs RAW"
    ));
    for r in rows {
        let ratio = match (r.via, raw(r.op)) {
            ("filemap", Some(base)) if base > 0 => format!("{:.2}x", r.p50_ns as f64 / base as f64),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{:<w$}  {:<12}  {:>7} ns  {:>7} ns  {:>8}\n",
            r.op, r.via, r.p50_ns, r.p99_ns, ratio
        ));
    }
    out
}
