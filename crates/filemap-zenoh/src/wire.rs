//! What a bridged message carries besides its bytes, and how a receiving
//! bridge counts what it missed.
//!
//! The message's bytes are the sample's payload, unchanged, so a plain Zenoh
//! subscriber reads them as they were sent. The sample's *attachment* holds
//! [`STAMP_LEN`] bytes: the magic `FMZ1`, the publishing bridge's Zenoh id (16
//! bytes, new for every run of a bridge) and the message's sequence number
//! (u64, little-endian). Samples without a stamp (from a plain Zenoh
//! publisher) are delivered too, and counted apart: nothing can be said of
//! what they missed.

use std::collections::HashMap;
use std::time::Instant;

/// The first bytes of every stamp.
pub const MAGIC: [u8; 4] = *b"FMZ1";
/// Length of a stamp: magic, origin id, sequence number.
pub const STAMP_LEN: usize = 4 + 16 + 8;

/// Where a bridged message came from and its place in that stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The publishing bridge's Zenoh id (one per run).
    pub origin: [u8; 16],
    /// The message's number in its route's stream: consecutive messages have
    /// consecutive numbers, so a gap is a count of messages lost.
    pub seq: u64,
}

impl Stamp {
    /// The stamp's bytes.
    pub fn encode(&self) -> [u8; STAMP_LEN] {
        let mut b = [0u8; STAMP_LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[4..20].copy_from_slice(&self.origin);
        b[20..].copy_from_slice(&self.seq.to_le_bytes());
        b
    }

    /// Reads a stamp; `None` for anything else (a foreign attachment, or none).
    pub fn decode(b: &[u8]) -> Option<Stamp> {
        if b.len() != STAMP_LEN || b[..4] != MAGIC {
            return None;
        }
        let origin = b[4..20].try_into().ok()?;
        let seq = u64::from_le_bytes(b[20..].try_into().ok()?);
        Some(Stamp { origin, seq })
    }
}

/// What one receiving route knows of one origin's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The first number this run received from it: a bridge that joins (or
    /// rejoins after a restart) mid-stream starts here, and cannot know what
    /// came before.
    pub first_seq: u64,
    /// The highest number received.
    pub last_seq: u64,
    /// Messages received.
    pub received: u64,
    /// Messages missed: gaps between consecutive numbers.
    pub lost: u64,
    /// Messages that came with a number at or below one already received
    /// (delivered anyway; never seen from an honest origin over one session).
    pub out_of_order: u64,
    /// Jumps no honest stream can make: further ahead than the origin could
    /// have sent since it was last heard ([`MAX_RATE`] messages a second,
    /// and [`SLACK`] more). A forged stamp, or a stream that started over
    /// with new numbers: counted here, not as lost, and numbering goes on
    /// from the new number.
    pub resets: u64,
}

/// The most messages a second any route carries (far above what any link
/// does: a bound, not an estimate), for telling a jump in the numbers that
/// no honest stream can make ([`Progress::resets`]).
pub const MAX_RATE: f64 = 1e9;

/// Messages added to what [`MAX_RATE`] allows, so that a short gap after a
/// long silence is never taken for a forgery.
pub const SLACK: u64 = 1 << 24;

/// How many origins a [`Tracker`] remembers: every run of a publishing
/// bridge is a new origin, and anyone may stamp samples with made-up ones,
/// so the least recently heard is forgotten past this many.
pub const MAX_ORIGINS: usize = 256;

/// The loss count of one receiving route, per origin.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Each origin's progress, when it was last heard (a message count, for
    /// forgetting the oldest), and at what time (for telling resets).
    origins: HashMap<[u8; 16], (Progress, u64, Instant)>,
    /// Messages recorded: the clock of `origins`.
    clock: u64,
    /// Losses counted for origins since forgotten.
    forgotten_lost: u64,
}

impl Tracker {
    /// Records a message; returns how many were missed just before it.
    pub fn record(&mut self, s: Stamp) -> u64 {
        self.record_at(s, Instant::now())
    }

    /// [`Tracker::record`], the message having come at `at`.
    pub fn record_at(&mut self, s: Stamp, at: Instant) -> u64 {
        self.clock += 1;
        let now = self.clock;
        match self.origins.get_mut(&s.origin) {
            None => {
                if self.origins.len() >= MAX_ORIGINS {
                    self.forget_oldest();
                }
                self.origins.insert(
                    s.origin,
                    (
                        Progress {
                            first_seq: s.seq,
                            last_seq: s.seq,
                            received: 1,
                            lost: 0,
                            out_of_order: 0,
                            resets: 0,
                        },
                        now,
                        at,
                    ),
                );
                0
            }
            Some((p, seen, heard)) => {
                *seen = now;
                let since = at.saturating_duration_since(*heard);
                *heard = at;
                p.received = p.received.saturating_add(1);
                if s.seq > p.last_seq {
                    // Wrapping is impossible here (seq > last_seq).
                    let gap = s.seq - p.last_seq - 1;
                    // More than could have been sent meanwhile: a forged
                    // number or a new stream, not a loss.
                    let possible = (since.as_secs_f64() * MAX_RATE).min(u64::MAX as f64) as u64;
                    if gap > possible.saturating_add(SLACK) {
                        p.resets = p.resets.saturating_add(1);
                        p.first_seq = s.seq;
                        p.last_seq = s.seq;
                        return 0;
                    }
                    p.lost = p.lost.saturating_add(gap);
                    p.last_seq = s.seq;
                    gap
                } else {
                    p.out_of_order = p.out_of_order.saturating_add(1);
                    0
                }
            }
        }
    }

    fn forget_oldest(&mut self) {
        let oldest = self.origins.iter().min_by_key(|(_, (_, seen, _))| *seen);
        if let Some((&o, &(p, _, _))) = oldest {
            self.forgotten_lost = self.forgotten_lost.saturating_add(p.lost);
            self.origins.remove(&o);
        }
    }

    /// Each origin's progress (at most [`MAX_ORIGINS`]).
    pub fn origins(&self) -> impl Iterator<Item = (&[u8; 16], &Progress)> {
        self.origins.iter().map(|(o, (p, _, _))| (o, p))
    }

    /// Total resets ([`Progress::resets`]) over the origins remembered.
    pub fn resets(&self) -> u64 {
        self.origins
            .values()
            .fold(0, |a, (p, _, _)| a.saturating_add(p.resets))
    }

    /// Total messages missed, over all origins (forgotten ones included).
    pub fn lost(&self) -> u64 {
        self.origins
            .values()
            .fold(self.forgotten_lost, |a, (p, _, _)| a.saturating_add(p.lost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_reject_foreign_bytes() {
        let s = Stamp {
            origin: [7; 16],
            seq: 0x0102_0304_0506_0708,
        };
        assert_eq!(Stamp::decode(&s.encode()), Some(s));
        let mut bad = s.encode();
        bad[0] = b'X';
        assert_eq!(Stamp::decode(&bad), None);
        assert_eq!(Stamp::decode(&s.encode()[..STAMP_LEN - 1]), None);
        assert_eq!(Stamp::decode(b""), None);
    }

    #[test]
    fn gaps_are_counted_per_origin() {
        let mut t = Tracker::default();
        let a = |seq| Stamp {
            origin: [1; 16],
            seq,
        };
        let b = |seq| Stamp {
            origin: [2; 16],
            seq,
        };
        // Joining mid-stream is not a loss.
        assert_eq!(t.record(a(10)), 0);
        assert_eq!(t.record(a(11)), 0);
        assert_eq!(t.record(a(15)), 3);
        assert_eq!(t.record(b(0)), 0);
        assert_eq!(t.record(b(2)), 1);
        // A repeated or older number is counted apart, not as a loss.
        assert_eq!(t.record(a(12)), 0);
        assert_eq!(t.lost(), 4);
        let pa = t.origins().find(|(o, _)| **o == [1; 16]).unwrap().1;
        assert_eq!(
            *pa,
            Progress {
                first_seq: 10,
                last_seq: 15,
                received: 4,
                lost: 3,
                out_of_order: 1,
                resets: 0
            }
        );
    }

    /// Forged numbers near 2^63 and 2^64 (issue 25: the route reported
    /// `lost: 9223372036854775805`) are resets, not losses; an honest gap
    /// after a long silence still counts as lost.
    #[test]
    fn jumps_no_stream_can_make_are_resets_not_losses() {
        let mut t = Tracker::default();
        let a = |seq| Stamp {
            origin: [1; 16],
            seq,
        };
        let t0 = Instant::now();
        assert_eq!(t.record_at(a(0), t0), 0);
        assert_eq!(t.record_at(a(1 << 63), t0), 0);
        assert_eq!(t.record_at(a(u64::MAX - 1), t0), 0);
        assert_eq!(t.lost(), 0);
        let p = *t.origins().next().unwrap().1;
        assert_eq!(
            (p.resets, p.first_seq, p.last_seq),
            (2, u64::MAX - 1, u64::MAX - 1)
        );
        // Honest traffic after: numbered on from wherever it is.
        let mut t = Tracker::default();
        assert_eq!(t.record_at(a(5), t0), 0);
        assert_eq!(t.record_at(a(1 << 62), t0), 0);
        assert_eq!(t.record_at(a((1 << 62) + 3), t0), 2);
        // A gap a real stream can make: counted, even after a long silence.
        let later = t0 + std::time::Duration::from_secs(10);
        assert_eq!(t.record_at(a((1 << 62) + 1_000_004), later), 1_000_000);
        assert_eq!(t.lost(), 1_000_002);
        assert_eq!(t.origins().next().unwrap().1.resets, 1);
    }

    #[test]
    fn made_up_origins_cannot_grow_it_without_bound() {
        let mut t = Tracker::default();
        let one = |n: u64, seq| Stamp {
            origin: {
                let mut o = [0u8; 16];
                o[..8].copy_from_slice(&n.to_le_bytes());
                o
            },
            seq,
        };
        t.record(one(0, 0));
        t.record(one(0, 5)); // 4 lost
        for n in 1..=10_000 {
            t.record(one(n, 0));
        }
        assert_eq!(t.origins().count(), MAX_ORIGINS);
        // The first origin was forgotten, its losses were not.
        assert!(t.origins().all(|(o, _)| o[..8] != 0u64.to_le_bytes()));
        assert_eq!(t.lost(), 4);
        // The most recently heard are kept.
        assert!(t.origins().any(|(o, _)| o[..8] == 10_000u64.to_le_bytes()));
    }
}
