//! Self-describing segments: a 128-byte header at the start of a mapping that
//! says what the rest is, so that an opener can check before it trusts a byte.
//!
//! Raw mappings ([`crate::Mapping`]) carry no header; the channels and cells
//! built on this module do.
//!
//! | offset | field | |
//! |---|---|---|
//! | 0 | magic `FILEMAP\0` | written first |
//! | 8 | format version (u32, now 1) | |
//! | 12 | kind (u32, [`Kind`]) | |
//! | 16 | layout fingerprint (u64) | hash of the kind's sizes and offsets, pointer width, endianness |
//! | 24 | capacity (u64) | kind-specific, e.g. ring bytes |
//! | 32 | parameter (u64) | kind-specific, e.g. value size |
//! | 40 | total length (u64) | the segment's size in bytes |
//! | 48 | creator pid (u32) | |
//! | 56 | creator start time (u64) | with the pid, names the creator even after pid reuse |
//! | 64 | state (u32): 0 being made, 1 ready | written last, with release ordering |
//! | 72 | fence flag (u32) | set by every process that attaches to write: older versions skip their fences while it is 0 (see `park::Park::notify`) |
//! | 80 | message size (u32) | the [`MessageType`] of a typed channel; all of 80..128 zero when untyped |
//! | 84 | message alignment (u32) | 0: untyped |
//! | 88 | message identity hash (u64) | FNV-1a of the whole identity |
//! | 96 | message identity (32 bytes) | its first 32 bytes (cut at a character boundary), zero-padded |
//!
//! Values are in the creator's byte order; a reader of the other byte order
//! fails the fingerprint check (the fingerprint covers endianness).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::hash::fnv1a;
use crate::mapping::{Access, Mapping, MessageType, Options, View, ViewAccess};
use crate::sys;

/// Size of the header; kind-specific data starts here.
pub const HEADER_LEN: usize = 128;
/// The magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"FILEMAP\0";
/// The header format version this build writes and reads.
pub const VERSION: u32 = 1;

const OFF_VERSION: usize = 8;
const OFF_KIND: usize = 12;
const OFF_FINGERPRINT: usize = 16;
const OFF_CAPACITY: usize = 24;
const OFF_PARAM: usize = 32;
const OFF_TOTAL: usize = 40;
const OFF_PID: usize = 48;
const OFF_START: usize = 56;
const OFF_STATE: usize = 64;
const OFF_FENCE: usize = 72;
const OFF_MSG_SIZE: usize = 80;
const OFF_MSG_ALIGN: usize = 84;
const OFF_MSG_HASH: usize = 88;
const OFF_MSG_NAME: usize = 96;
const READY: u32 = 1;
/// What a sending end keeps of the doorbell a set registered in its segment
/// (`park::bell`): the registration word it opened it for, and the doorbell
/// with its size in words (`None` when it could not be opened: not tried
/// again until the word names another).
#[derive(Debug, Default)]
pub(crate) struct RingCache {
    pub reg: u64,
    pub bell: Option<(Segment, usize)>,
}

/// The next [`SegmentInner::serial`].
static SERIAL: AtomicU64 = AtomicU64::new(1);

/// What a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A single-producer single-consumer byte channel ([`crate::channel::spsc`]).
    Spsc,
    /// A seqlock cell ([`crate::sync::LatestWriter`]).
    Latest,
    /// A cross-process event ([`crate::sync::Event`]).
    Event,
    /// A robust mutex over a value ([`crate::sync::Mutex`]).
    Mutex,
    /// A broadcast channel ([`crate::channel::broadcast`]).
    Broadcast,
    /// A multi-producer multi-consumer channel ([`crate::channel::mpmc`]).
    Mpmc,
    /// A request-response service's registry ([`crate::rpc`]).
    Service,
    /// A [`WaitSet`](crate::wait::WaitSet)'s doorbell: bits its sources'
    /// senders set (named `filemap-bell-PID-TOKEN`, gone with the set).
    Doorbell,
    /// A kind this build does not know.
    Unknown(u32),
}

impl Kind {
    fn code(self) -> u32 {
        match self {
            Kind::Spsc => 1,
            Kind::Latest => 2,
            Kind::Event => 3,
            Kind::Mutex => 4,
            Kind::Broadcast => 5,
            Kind::Mpmc => 6,
            Kind::Service => 7,
            Kind::Doorbell => 8,
            Kind::Unknown(c) => c,
        }
    }

    fn from_code(c: u32) -> Kind {
        match c {
            1 => Kind::Spsc,
            2 => Kind::Latest,
            3 => Kind::Event,
            4 => Kind::Mutex,
            5 => Kind::Broadcast,
            6 => Kind::Mpmc,
            7 => Kind::Service,
            8 => Kind::Doorbell,
            c => Kind::Unknown(c),
        }
    }

    /// A short lowercase name (`spsc`, `latest`, `event`, `mutex`, `broadcast`, `mpmc`,
    /// `service`, `doorbell`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Spsc => "spsc",
            Kind::Latest => "latest",
            Kind::Event => "event",
            Kind::Mutex => "mutex",
            Kind::Broadcast => "broadcast",
            Kind::Mpmc => "mpmc",
            Kind::Service => "service",
            Kind::Doorbell => "doorbell",
            Kind::Unknown(_) => "unknown",
        }
    }
}

/// A segment's header, as read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u32,
    /// What the segment holds.
    pub kind: Kind,
    /// Layout fingerprint.
    pub fingerprint: u64,
    /// Kind-specific capacity.
    pub capacity: u64,
    /// Kind-specific parameter.
    pub param: u64,
    /// Total size the creator made.
    pub total_len: u64,
    /// Creator's pid.
    pub creator_pid: u32,
    /// Creator's start time (OS-specific units; 0 if unknown).
    pub creator_start: u64,
    /// Whether the creator finished making it.
    pub ready: bool,
    /// The type of the messages, for a typed channel (`None`: bytes).
    pub message_type: Option<MessageType>,
}

/// The fingerprint of a layout: the kind, its offsets and sizes (`parts`), the
/// header length, pointer width and byte order.
pub(crate) fn fingerprint(kind: Kind, parts: &[u64]) -> u64 {
    let mut words = vec![
        u64::from(VERSION),
        u64::from(kind.code()),
        HEADER_LEN as u64,
        usize::BITS as u64,
        u64::from(cfg!(target_endian = "little")),
    ];
    words.extend_from_slice(parts);
    // Hash little-endian encodings so that the fingerprint of a given layout
    // is the same number everywhere; the endianness flag is what differs.
    fnv1a(words.iter().flat_map(|w| w.to_le_bytes()))
}

/// What a segment's shared words say at one moment, read from a read-only
/// view without taking part (no end claimed, no lock taken, nothing
/// written): what [`crate::inspect::observe`] returns and `filemap info`
/// shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The roles only one process holds at a time (an spsc channel's sender
    /// and receiver, a broadcast or `Latest` writer), and who holds each.
    pub ends: Vec<End>,
    /// The kind's own figures.
    pub detail: Detail,
}

/// One role of a segment and its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// `sender`, `receiver`, `writer`.
    pub role: &'static str,
    /// The holder's pid, as the segment records it (kept after it closed
    /// or died); `None` if the role was never taken.
    pub pid: Option<u32>,
    /// What became of it.
    pub state: EndState,
}

/// Whether a role's holder is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndState {
    /// Never taken.
    Vacant,
    /// Held by a process that runs.
    Live,
    /// Its holder closed it cleanly.
    Closed,
    /// Its holder died holding it (or its pid now names another process).
    Dead,
}

impl EndState {
    /// The lowercase word the CLI prints: `none`, `live`, `closed`, `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndState::Vacant => "none",
            EndState::Live => "live",
            EndState::Closed => "closed",
            EndState::Dead => "dead",
        }
    }
}

/// A kind's figures. Counts are since the object was made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detail {
    /// An spsc channel. The receiver tells the sender what it has taken in
    /// batches (every quarter of the ring, and whenever it finds the ring
    /// empty or waits), so while messages flow `received` and `queued` lag
    /// by up to a quarter ring; for a receiver that waits they are exact.
    Spsc {
        /// Ring bytes.
        capacity: u64,
        /// The largest message.
        max_message: u64,
        /// Messages sent and not yet freed by the receiver.
        queued: u64,
        /// Bytes of the ring they hold (records and padding).
        queued_bytes: u64,
        /// Messages sent.
        sent: u64,
        /// Messages the receiver has freed.
        received: u64,
        /// Ring bytes written since the channel was made (messages with
        /// their 8-byte record headers and padding): the sender's index.
        sent_bytes: u64,
    },
    /// An mpmc channel (positions are messages: `sent` counts slots
    /// claimed by senders, `received` by receivers).
    Mpmc {
        /// Slots.
        slots: u64,
        /// The largest message.
        max_message: u64,
        /// Messages queued (claimed by a sender, not yet by a receiver).
        queued: u64,
        /// Messages sent (claimed).
        sent: u64,
        /// Messages taken.
        received: u64,
    },
    /// A broadcast channel: receivers keep their place to themselves, so
    /// only what was sent is known.
    Broadcast {
        /// Slots.
        slots: u64,
        /// The largest message.
        max_message: u64,
        /// Messages sent.
        sent: u64,
    },
    /// A `Latest` cell.
    Latest {
        /// Bytes of the value.
        size: u64,
        /// Writes so far (the initial value is version 0).
        version: u64,
        /// A write is in progress (or its writer died in one).
        writing: bool,
    },
    /// An event.
    Event {
        /// Permits left by `notify_one` and not yet taken.
        permits: u32,
    },
    /// A robust mutex.
    Mutex {
        /// The holder's pid, `None` when it is free.
        holder: Option<u32>,
        /// Whether that holder still runs (`false`: it died holding the lock;
        /// the next locker is told `previous_owner_died`).
        holder_alive: Option<bool>,
    },
    /// A kind with nothing more to show (a request-response service's
    /// registry is shown by its header).
    Other,
}

/// `Err(Incompatible)` unless `header` is of `spec`'s kind and layout.
fn check_spec(header: &Header, label: &str, spec: Spec) -> Result<()> {
    let incompatible = |reason: String| Error::Incompatible {
        object: label.to_owned(),
        reason,
    };
    if header.kind != spec.kind {
        return Err(incompatible(format!(
            "it is a segment of kind `{}` (code {}), not `{}`",
            header.kind.as_str(),
            header.kind.code(),
            spec.kind.as_str()
        )));
    }
    if header.fingerprint != spec.fingerprint {
        return Err(incompatible(
            "its layout fingerprint differs: it was made by a build with other sizes, \
             pointer width or byte order"
                .into(),
        ));
    }
    Ok(())
}

/// What a kind expects of its segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub kind: Kind,
    pub fingerprint: u64,
}

/// A mapping with a checked header, mapped read-write whole. Cloning shares
/// it (an `Arc`): what waits for a segment on another thread (the async
/// reactor, `crate::wait`) keeps it mapped while it does.
#[derive(Debug, Clone)]
pub(crate) struct Segment(std::sync::Arc<SegmentInner>);

impl std::ops::Deref for Segment {
    type Target = SegmentInner;
    #[inline(always)]
    fn deref(&self) -> &SegmentInner {
        &self.0
    }
}

/// What a [`Segment`] shares.
#[derive(Debug)]
pub(crate) struct SegmentInner {
    _mapping: Mapping,
    view: View,
    label: String,
    header: Header,
    /// Sleeping and waking on the segment's words.
    parker: sys::Parker,
    /// `Options::async_spin` of the call that made or opened it, in ns.
    async_spin_ns: AtomicU64,
    /// Unique in this process for its whole run (a set tells its sources
    /// apart by it: an address can be reused).
    serial: u64,
    /// The doorbell a set that waits on this segment registered, as this
    /// process opened it to ring it (`park::bell`).
    ring: std::sync::Mutex<RingCache>,
}

/// Reads the header of `v` if it starts with the magic (`None` otherwise). The
/// header is returned as found, checked only for being readable.
///
/// # Errors
/// None for a view; the `Result` is for symmetry with the rest of the API.
pub fn read_header(v: &View) -> Result<Option<Header>> {
    if v.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut bytes = [0u8; HEADER_LEN];
    v.read_at(0, &mut bytes)?;
    let mut h = parse_header(&bytes);
    if let Some(h) = &mut h {
        // The state word is the one written concurrently: read it atomically.
        h.ready = v.load_u32(OFF_STATE)? == READY;
    }
    Ok(h)
}

/// Parses a header from the first bytes of an object (`None` if they are
/// fewer than [`HEADER_LEN`] or do not start with the magic).
pub fn parse_header(bytes: &[u8]) -> Option<Header> {
    let b = bytes.get(..HEADER_LEN)?;
    if b[..8] != MAGIC {
        return None;
    }
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    Some(Header {
        version: u32_at(OFF_VERSION),
        kind: Kind::from_code(u32_at(OFF_KIND)),
        fingerprint: u64_at(OFF_FINGERPRINT),
        capacity: u64_at(OFF_CAPACITY),
        param: u64_at(OFF_PARAM),
        total_len: u64_at(OFF_TOTAL),
        creator_pid: u32_at(OFF_PID),
        creator_start: u64_at(OFF_START),
        ready: u32_at(OFF_STATE) == READY,
        message_type: match u32_at(OFF_MSG_ALIGN) {
            0 => None,
            align => {
                let name = &b[OFF_MSG_NAME..HEADER_LEN];
                let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                Some(MessageType::recorded(
                    String::from_utf8_lossy(&name[..end]).into_owned(),
                    u32_at(OFF_MSG_SIZE),
                    align,
                    u64_at(OFF_MSG_HASH),
                ))
            }
        },
    })
}

/// The bytes of `h` as [`parse_header`] reads them (in this machine's byte
/// order; bytes after the fence flag are zero).
fn encode_header(h: &Header) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    let mut put = |off: usize, bytes: &[u8]| b[off..off + bytes.len()].copy_from_slice(bytes);
    put(0, &MAGIC);
    put(OFF_VERSION, &h.version.to_ne_bytes());
    put(OFF_KIND, &h.kind.code().to_ne_bytes());
    put(OFF_FINGERPRINT, &h.fingerprint.to_ne_bytes());
    put(OFF_CAPACITY, &h.capacity.to_ne_bytes());
    put(OFF_PARAM, &h.param.to_ne_bytes());
    put(OFF_TOTAL, &h.total_len.to_ne_bytes());
    put(OFF_PID, &h.creator_pid.to_ne_bytes());
    put(OFF_START, &h.creator_start.to_ne_bytes());
    put(OFF_STATE, &u32::from(h.ready).to_ne_bytes());
    if let Some(t) = &h.message_type {
        put(OFF_MSG_SIZE, &(t.size() as u32).to_ne_bytes());
        put(OFF_MSG_ALIGN, &(t.align() as u32).to_ne_bytes());
        put(OFF_MSG_HASH, &t.identity_hash().to_ne_bytes());
        put(OFF_MSG_NAME, t.stored_identity().as_bytes());
    }
    b
}

/// The header of the named object, if it is a filemap segment (`None` for a
/// raw mapping). Opens it read-only.
///
/// # Errors
/// As [`Mapping::open`].
pub fn inspect(name: &str) -> Result<Option<Header>> {
    let m = Mapping::open(name, Access::Read)?;
    let v = m.view(.., ViewAccess::Read)?;
    read_header(&v)
}

impl Segment {
    /// Creates `name` with `total_len` bytes and writes the header; the state
    /// becomes ready last.
    pub(crate) fn create(
        name: &str,
        opts: &Options,
        spec: Spec,
        capacity: u64,
        param: u64,
        total_len: u64,
    ) -> Result<Segment> {
        let mapping = opts.create(name, total_len)?;
        let seg = Self::init(
            mapping,
            name.to_owned(),
            spec,
            capacity,
            param,
            opts.message_type_value(),
        )?;
        seg.set_async_spin(opts.async_spin_value());
        Ok(seg)
    }

    /// How long async operations on this segment try before they sleep
    /// (`Options::async_spin`).
    pub(crate) fn set_async_spin(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.async_spin_ns.store(ns, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn async_spin(&self) -> Duration {
        Duration::from_nanos(self.async_spin_ns.load(Ordering::Relaxed))
    }

    /// Writes a header into a fresh, zeroed mapping (named or not).
    pub(crate) fn init(
        mapping: Mapping,
        label: String,
        spec: Spec,
        capacity: u64,
        param: u64,
        message_type: Option<&MessageType>,
    ) -> Result<Segment> {
        let view = mapping.view(.., ViewAccess::ReadWrite)?;
        let pid = std::process::id();
        let header = Header {
            version: VERSION,
            kind: spec.kind,
            fingerprint: spec.fingerprint,
            capacity,
            param,
            total_len: mapping.len(),
            creator_pid: pid,
            creator_start: sys::process_start(pid).unwrap_or(0),
            ready: true,
            message_type: message_type.cloned(),
        };
        // The magic first (an opener that sees it waits for the state word),
        // then the fields; the state last, below.
        let bytes = encode_header(&Header {
            ready: false,
            ..header.clone()
        });
        view.write_at(0, &bytes[..OFF_VERSION])?;
        view.write_at(OFF_VERSION, &bytes[OFF_VERSION..])?;
        // Everything above happens-before any opener's acquire load of READY.
        view.atomic_u32(OFF_STATE)?.store(READY, Ordering::Release);
        Ok(Segment::new(mapping, view, label, header))
    }

    /// Opens `name` and checks its header against `spec`, waiting (bounded by
    /// the options' ready timeout) for a creator that has not finished.
    pub(crate) fn open(name: &str, opts: &Options, spec: Spec) -> Result<Segment> {
        let mapping = opts.clone().access(Access::ReadWrite).open(name)?;
        let seg = Self::check(
            mapping,
            name.to_owned(),
            opts.ready_timeout_value(),
            Some(spec),
        )?;
        if let Some(want) = opts.message_type_value() {
            seg.check_message_type(want)?;
        }
        seg.set_async_spin(opts.async_spin_value());
        Ok(seg)
    }

    /// Opens `name` read-only, for observing: the header must be whole
    /// (no waiting for a creator), of this format version; the kind's own
    /// observer checks its kind and layout.
    pub(crate) fn observe(name: &str) -> Result<Segment> {
        let mapping = Options::new().access(Access::Read).open(name)?;
        let seg = Self::check(mapping, name.to_owned(), Duration::ZERO, None)?;
        Ok(seg)
    }

    /// `Err(Incompatible)` unless the header is of `spec`'s kind and layout.
    pub(crate) fn expect(&self, spec: Spec) -> Result<()> {
        check_spec(&self.header, &self.label, spec)
    }

    /// `Err(Incompatible)` unless the header is of `kind` (for the kinds
    /// whose layout fingerprint depends on their value type: an observer
    /// reads only the words before the value).
    pub(crate) fn expect_kind(&self, kind: Kind) -> Result<()> {
        if self.header.kind != kind {
            return Err(Error::Incompatible {
                object: self.label.clone(),
                reason: format!(
                    "it is a segment of kind `{}`, not `{}`",
                    self.header.kind.as_str(),
                    kind.as_str()
                ),
            });
        }
        Ok(())
    }

    /// `Err(Incompatible)` unless the segment records `want` as its
    /// message type.
    pub(crate) fn check_message_type(&self, want: &MessageType) -> Result<()> {
        let reason = match &self.header.message_type {
            Some(have) if have.same_as(want) => return Ok(()),
            Some(have) => {
                format!("it carries messages of type {have}, and this process expects {want}")
            }
            None => format!(
                "it carries untyped bytes (it was created without a message type), \
                 and this process expects {want}; open it with the byte API, or \
                 create it with the type"
            ),
        };
        Err(Error::Incompatible {
            object: self.label.clone(),
            reason,
        })
    }

    /// Checks the header of an existing mapping against `spec` (`None`:
    /// the format version only, for an observer). The view has the
    /// mapping's access.
    pub(crate) fn check(
        mapping: Mapping,
        label: String,
        ready_timeout: Duration,
        spec: Option<Spec>,
    ) -> Result<Segment> {
        let corrupt = |reason: String| Error::Corrupt {
            object: label.clone(),
            reason,
        };
        if (mapping.len() as usize) < HEADER_LEN {
            return Err(corrupt(format!(
                "it is {} bytes, too small for a segment header ({HEADER_LEN})",
                mapping.len()
            )));
        }
        let access = match mapping.access() {
            Access::Read => ViewAccess::Read,
            Access::ReadWrite => ViewAccess::ReadWrite,
        };
        let view = mapping.view(.., access)?;
        let started = Instant::now();
        let header = loop {
            let mut magic = [0u8; 8];
            view.read_at(0, &mut magic)?;
            if magic != MAGIC && magic != [0; 8] {
                return Err(corrupt(format!(
                    "it is not a filemap segment (its first bytes are {magic:02x?})"
                )));
            }
            match read_header(&view)? {
                Some(h) if h.ready => break h,
                _ if started.elapsed() >= ready_timeout => {
                    return Err(Error::NotReady {
                        object: label.clone(),
                        waited: started.elapsed(),
                        reason: "its creator has not finished writing the segment header".into(),
                    })
                }
                _ => std::thread::sleep(Duration::from_micros(200)),
            }
        };
        let incompatible = |reason: String| Error::Incompatible {
            object: label.clone(),
            reason,
        };
        if header.version != VERSION {
            return Err(incompatible(format!(
                "it has segment format version {} and this build reads version {VERSION} \
                 (or it was made on a machine of the other byte order)",
                header.version
            )));
        }
        if let Some(spec) = spec {
            check_spec(&header, &label, spec)?;
        }
        if header.total_len > mapping.len() {
            return Err(corrupt(format!(
                "its header says {} bytes but the object has {}",
                header.total_len,
                mapping.len()
            )));
        }
        Ok(Segment::new(mapping, view, label, header))
    }

    fn new(mapping: Mapping, view: View, label: String, header: Header) -> Segment {
        let parker = sys::Parker::new(mapping.name());
        let seg = Segment(std::sync::Arc::new(SegmentInner {
            _mapping: mapping,
            view,
            label,
            header,
            parker,
            async_spin_ns: AtomicU64::new(crate::mapping::DEFAULT_ASYNC_SPIN.as_nanos() as u64),
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            ring: Default::default(),
        }));
        // Every process now fences (see `park::Park::notify`). Versions
        // before that skipped their fences while this flag was clear, relying
        // on `membarrier`: setting it makes such a process fence too, so a
        // channel shared with one still loses no wake-up. A read-only
        // observer (`Segment::observe`) takes no part in the protocol and
        // must not write it.
        if seg.view.is_writable() {
            seg.set_fence_flag();
        }
        seg
    }

    /// Sleeps while the `u32` at `off` is `expected`, at most `timeout`;
    /// returns early on a wake-up or spuriously (callers look again).
    pub(crate) fn wait_on(&self, off: usize, expected: u32, timeout: Duration) {
        self.parker.wait(off, self.a32(off), expected, timeout);
    }

    /// The `u32` at `off` as one of the words a wait set sleeps on, with the
    /// value it had when the set decided to sleep.
    pub(crate) fn wait_word(&self, off: usize, expected: u32) -> sys::WaitWord<'_> {
        sys::WaitWord {
            parker: &self.parker,
            off,
            word: self.a32(off),
            expected,
        }
    }

    /// A handle that does not keep the segment mapped ([`Segment::upgrade`]).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<SegmentInner> {
        std::sync::Arc::downgrade(&self.0)
    }

    /// The segment a [`Segment::downgrade`] handle names, if some end of
    /// this process still has it mapped.
    pub(crate) fn upgrade(w: &std::sync::Weak<SegmentInner>) -> Option<Segment> {
        w.upgrade().map(Segment)
    }

    /// This segment's serial number (see `SegmentInner::serial`).
    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    /// The doorbell this end rings for this segment (`park::bell`).
    pub(crate) fn ring_cache(&self) -> &std::sync::Mutex<RingCache> {
        &self.ring
    }

    /// Wakes up to `n` processes sleeping on the `u32` at `off`.
    pub(crate) fn wake(&self, off: usize, n: u32) {
        self.parker.wake(off, self.a32(off), n);
    }

    /// Sets the segment's fence flag: processes of filemap versions that
    /// skipped their fences while it was clear (the `membarrier` scheme,
    /// given up) fence from then on. This version always fences.
    fn set_fence_flag(&self) {
        self.a32(OFF_FENCE).fetch_or(1, Ordering::SeqCst);
    }

    #[inline]
    pub(crate) fn view(&self) -> &View {
        &self.view
    }

    /// `Err(Truncated)` once another process shrank the segment under this
    /// process's view (see `View::is_truncated`). The hot paths do not ask;
    /// the slow ones (empty, full, about to wait) do.
    #[inline]
    pub(crate) fn check_backed(&self) -> Result<()> {
        if self.view.is_truncated() {
            return Err(self.view.truncated_error());
        }
        Ok(())
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The `AtomicU32` at `off`. Offsets are constants of the kind's layout,
    /// inside the checked total length and aligned, so this cannot fail for
    /// them; an error here is a bug in the layout constants.
    #[inline]
    pub(crate) fn a32(&self, off: usize) -> &AtomicU32 {
        self.view
            .atomic_u32_raw(off)
            .expect("layout offsets are in range and aligned")
    }

    /// The `AtomicU64` at `off`; see [`Segment::a32`].
    #[inline]
    pub(crate) fn a64(&self, off: usize) -> &AtomicU64 {
        self.view
            .atomic_u64_raw(off)
            .expect("layout offsets are in range and aligned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            version: VERSION,
            kind: Kind::Mpmc,
            fingerprint: fingerprint(Kind::Mpmc, &[1, 2, 3]),
            capacity: 64,
            param: 32,
            total_len: 4096,
            creator_pid: 4242,
            creator_start: 777,
            ready: true,
            message_type: None,
        }
    }

    #[test]
    fn a_header_round_trips_through_its_bytes() {
        let h = sample();
        assert_eq!(parse_header(&encode_header(&h)), Some(h.clone()));
        let not_ready = Header {
            ready: false,
            ..h.clone()
        };
        assert_eq!(parse_header(&encode_header(&not_ready)), Some(not_ready));
        for k in [
            Kind::Spsc,
            Kind::Latest,
            Kind::Event,
            Kind::Mutex,
            Kind::Broadcast,
            Kind::Mpmc,
            Kind::Service,
            Kind::Doorbell,
            Kind::Unknown(99),
        ] {
            let hk = Header {
                kind: k,
                ..h.clone()
            };
            assert_eq!(parse_header(&encode_header(&hk)).map(|p| p.kind), Some(k));
        }
        // Trailing bytes (the kind's own data) do not matter.
        let mut long = encode_header(&h).to_vec();
        long.extend_from_slice(&[0xff; 64]);
        assert_eq!(parse_header(&long), Some(h));
    }

    #[test]
    fn a_message_type_round_trips_and_a_long_identity_is_cut_at_a_char() {
        let long = "é".repeat(40); // 80 bytes, 2 per character
        let t = MessageType::new(&long, 24, 8).expect("valid");
        let h = Header {
            message_type: Some(t.clone()),
            ..sample()
        };
        let back = parse_header(&encode_header(&h))
            .and_then(|p| p.message_type)
            .expect("typed");
        // `…` (3 bytes) and the end, in whole characters.
        assert_eq!(back.identity(), format!("…{}", "é".repeat(14)));
        let path = MessageType::new("the_app::sensors::inner::Readings", 8, 8).expect("valid");
        let kept = parse_header(&encode_header(&Header {
            message_type: Some(path),
            ..sample()
        }))
        .and_then(|p| p.message_type)
        .expect("typed");
        assert_eq!(kept.identity(), "…app::sensors::inner::Readings");
        assert!(back.same_as(&t), "the hash of the whole identity matches");
        assert!(!back.same_as(&MessageType::new(&"é".repeat(16), 24, 8).expect("valid")));
        assert!(!back.same_as(&MessageType::new(&long, 24, 4).expect("valid")));
        // Untyped stays untyped.
        assert_eq!(
            parse_header(&encode_header(&sample()))
                .expect("parses")
                .message_type,
            None
        );
    }

    #[test]
    fn parse_refuses_short_input_and_a_wrong_magic() {
        let b = encode_header(&sample());
        assert_eq!(parse_header(&b[..HEADER_LEN - 1]), None);
        assert_eq!(parse_header(&[]), None);
        for i in 0..8 {
            let mut bad = b;
            bad[i] ^= 0x20;
            assert_eq!(parse_header(&bad), None, "magic byte {i} changed");
        }
    }

    #[test]
    fn a_state_other_than_ready_is_not_ready() {
        let mut b = encode_header(&sample());
        for state in [0u32, 2, u32::MAX] {
            b[OFF_STATE..OFF_STATE + 4].copy_from_slice(&state.to_ne_bytes());
            assert!(!parse_header(&b).expect("parses").ready, "state {state}");
        }
    }

    #[test]
    fn fingerprints_depend_on_kind_parts_and_their_order() {
        let a = fingerprint(Kind::Spsc, &[128, 192, 320]);
        assert_eq!(a, fingerprint(Kind::Spsc, &[128, 192, 320]), "stable");
        assert_ne!(a, fingerprint(Kind::Mpmc, &[128, 192, 320]), "kind");
        assert_ne!(a, fingerprint(Kind::Spsc, &[128, 192, 321]), "a value");
        assert_ne!(a, fingerprint(Kind::Spsc, &[192, 128, 320]), "the order");
        assert_ne!(
            a,
            fingerprint(Kind::Spsc, &[128, 192, 320, 0]),
            "a part more"
        );
        // The same number on every machine of this byte order and pointer
        // width, whatever the build: pinned here so that a change of the
        // hashed words is a deliberate format change, not an accident.
        if cfg!(all(target_endian = "little", target_pointer_width = "64")) {
            assert_eq!(
                fingerprint(Kind::Spsc, &[]),
                crate::hash::fnv1a(
                    [1u64, 1, HEADER_LEN as u64, 64, 1]
                        .iter()
                        .flat_map(|w| w.to_le_bytes())
                )
            );
        }
    }

    /// A fresh anonymous mapping with `h` written at its start.
    fn mapping_with(h: &Header, len: u64) -> Mapping {
        let m = Mapping::anonymous(len).expect("anonymous mapping");
        m.view(.., ViewAccess::ReadWrite)
            .expect("view")
            .write_at(0, &encode_header(h))
            .expect("write");
        m
    }

    fn spec_of(h: &Header) -> Spec {
        Spec {
            kind: h.kind,
            fingerprint: h.fingerprint,
        }
    }

    fn check(m: Mapping, spec: Spec) -> Result<Segment> {
        Segment::check(m, "t".into(), Duration::from_millis(20), Some(spec))
    }

    #[test]
    fn check_accepts_a_matching_header() {
        let h = sample();
        let seg = check(mapping_with(&h, 4096), spec_of(&h)).expect("accepted");
        assert_eq!(seg.header(), &h);
    }

    #[test]
    fn check_refuses_every_field_that_does_not_fit() {
        let h = sample();
        let expect = |m: Mapping, spec: Spec, what: &str, want: &str| match check(m, spec) {
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(want), "{what}: {msg}");
            }
            Ok(_) => panic!("{what}: accepted"),
        };
        let wrong_version = Header {
            version: VERSION + 1,
            ..h.clone()
        };
        expect(
            mapping_with(&wrong_version, 4096),
            spec_of(&h),
            "version",
            "format version",
        );
        let wrong_kind = Header {
            kind: Kind::Event,
            ..h.clone()
        };
        expect(
            mapping_with(&wrong_kind, 4096),
            spec_of(&h),
            "kind",
            "kind `event` (code 3), not `mpmc`",
        );
        let wrong_print = Header {
            fingerprint: h.fingerprint ^ 1,
            ..h.clone()
        };
        expect(
            mapping_with(&wrong_print, 4096),
            spec_of(&h),
            "fingerprint",
            "fingerprint differs",
        );
        let too_long = Header {
            total_len: 8192,
            ..h.clone()
        };
        expect(
            mapping_with(&too_long, 4096),
            spec_of(&h),
            "total length",
            "says 8192 bytes",
        );
        let not_ready = Header {
            ready: false,
            ..h.clone()
        };
        expect(
            mapping_with(&not_ready, 4096),
            spec_of(&h),
            "state",
            "has not finished",
        );
        let m = Mapping::anonymous(4096).expect("anonymous");
        m.view(.., ViewAccess::ReadWrite)
            .expect("view")
            .write_at(0, b"NOTMAGIC")
            .expect("write");
        expect(m, spec_of(&h), "magic", "not a filemap segment");
        expect(
            Mapping::anonymous(HEADER_LEN as u64 - 1).expect("anonymous"),
            spec_of(&h),
            "size",
            "too small for a segment header",
        );
    }
}
