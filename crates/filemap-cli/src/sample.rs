//! What `top` and `hz` measure: the objects with their activity at one
//! moment (a [`Sample`]), and from two samples the rates, fill levels and
//! stalled ends (a [`Row`] per object).

use std::time::Instant;

use serde::Serialize;

use crate::error::{CliError, Result};
use crate::output::{Activity, Object};

/// Every object on the machine with its activity, as `list` sees them.
pub fn objects() -> Result<Vec<Object>> {
    if cfg!(target_os = "macos") {
        return Err(CliError::Usage(
            "this command cannot run on macOS, which offers no way to list POSIX \
             shared-memory names: `filemap info NAME` shows one whose name you know"
                .into(),
        ));
    }
    #[cfg(windows)]
    let objects = filemap::os::windows::sections()?
        .iter()
        .map(Object::from_section)
        .collect();
    #[cfg(not(windows))]
    let objects = filemap::inspect::list()?.iter().map(Object::from).collect();
    Ok(objects)
}

/// The objects at one moment.
pub struct Sample {
    pub at: Instant,
    pub objects: Vec<Object>,
}

impl Sample {
    pub fn take() -> Result<Sample> {
        let objects = objects()?;
        Ok(Sample {
            at: Instant::now(),
            objects,
        })
    }
}

/// One object between two samples: what `top` shows and `top --once
/// --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The name.
    pub name: String,
    /// The segment kind (`spsc`, `mpmc`, ...); null for a raw mapping.
    pub kind: Option<&'static str>,
    /// Bytes.
    pub size: u64,
    /// `live`, `stale`, `idle`, `foreign` or `unknown` (null where the OS
    /// does not tell).
    pub state: Option<&'static str>,
    /// Processes holding or mapping it (null where the OS does not tell).
    pub holders: Option<usize>,
    /// Messages queued now (spsc, mpmc).
    pub queued: Option<u64>,
    /// How full it is, 0 to 1: an spsc ring's bytes, an mpmc channel's
    /// slots.
    pub fill: Option<f64>,
    /// Messages sent per second between the samples (a `Latest` cell's
    /// writes per second).
    pub msgs_per_s: Option<f64>,
    /// Bytes sent per second (spsc: ring bytes, record headers included).
    pub bytes_per_s: Option<f64>,
    /// A receiver that took nothing between the samples while messages
    /// were queued.
    pub stalled: bool,
    /// A receiving end that is gone (died) while its channel lives.
    pub dead_end: bool,
    /// `ok`, `corrupt` (with `reason`), or null for a raw mapping.
    pub status: Option<&'static str>,
    /// Why it is corrupt.
    pub reason: Option<String>,
}

/// Per second, from two counts `dt` seconds apart (`None` if either is
/// missing or the counter went back: another object took the name).
fn rate(now: Option<u64>, before: Option<u64>, dt: f64) -> Option<f64> {
    let (n, b) = (now?, before?);
    (n >= b && dt > 0.0).then(|| (n - b) as f64 / dt)
}

/// The rows of `now`, with rates against `before` (none without it).
pub fn rows(before: Option<&Sample>, now: &Sample) -> Vec<Row> {
    now.objects
        .iter()
        .map(|o| {
            let a = o.activity.as_ref();
            let prev = before.and_then(|b| {
                b.objects
                    .iter()
                    .find(|p| p.name == o.name)
                    .and_then(|p| p.activity.as_ref())
            });
            let dt = before.map_or(0.0, |b| (now.at - b.at).as_secs_f64());
            row(o, a, prev, dt)
        })
        .collect()
}

fn row(o: &Object, a: Option<&Activity>, prev: Option<&Activity>, dt: f64) -> Row {
    let get = |f: fn(&Activity) -> Option<u64>| (a.and_then(f), prev.and_then(f));
    let (sent, sent_before) = get(|a| a.sent.or(a.version));
    let (bytes, bytes_before) = get(|a| a.sent_bytes);
    let (received, received_before) = get(|a| a.received);
    let queued = a.and_then(|a| a.queued);
    let fill = a.and_then(|a| match (a.queued, a.slots, a.queued_bytes, a.capacity) {
        (Some(q), Some(slots), _, _) if slots > 0 => Some(q as f64 / slots as f64),
        (_, _, Some(b), Some(cap)) if cap > 0 => Some(b as f64 / cap as f64),
        _ => None,
    });
    let stalled = matches!(
        (received, received_before, queued, prev.and_then(|p| p.queued)),
        (Some(r), Some(rb), Some(q), Some(qb)) if r == rb && q > 0 && qb > 0
    );
    let dead_end = a.is_some_and(|a| {
        a.ends
            .iter()
            .any(|e| e.role == "receiver" && e.state == "dead")
    });
    Row {
        name: o.name.clone(),
        kind: o.segment.as_ref().map(|s| s.kind),
        size: o.size,
        state: o.state,
        holders: o.holders.as_ref().map(Vec::len),
        queued,
        fill,
        msgs_per_s: rate(sent, sent_before, dt),
        bytes_per_s: rate(bytes, bytes_before, dt),
        stalled,
        dead_end,
        status: a.map(|a| a.status),
        reason: a.and_then(|a| a.reason.clone()),
    }
}

/// `*` any run, `?` one character; a pattern without either matches as a
/// substring.
pub fn matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    fn glob(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => glob(&p[1..], n) || (!n.is_empty() && glob(p, &n[1..])),
            (Some('?'), Some(_)) => glob(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_globs_or_substrings() {
        assert!(matches("jobs", "my-jobs-1"));
        assert!(matches("jobs*", "jobs-1"));
        assert!(!matches("jobs*", "my-jobs"));
        assert!(matches("*-?", "jobs-1"));
        assert!(!matches("*-?", "jobs-12"));
        assert!(matches("*", ""));
    }

    #[test]
    fn a_rate_needs_two_counts_that_went_forward() {
        assert_eq!(rate(Some(30), Some(10), 2.0), Some(10.0));
        assert_eq!(rate(Some(5), Some(10), 2.0), None);
        assert_eq!(rate(Some(5), None, 2.0), None);
        assert_eq!(rate(Some(5), Some(1), 0.0), None);
    }
}
