//! What `info` and `list` print: one set of output structs, the same on
//! every OS (fields the OS cannot tell are `null`), serialised for `--json`
//! and rendered as text. The README's schema table is checked against them.

use std::io::Write;

use filemap::inspect::ObjectInfo;
use filemap::segment::Header;
use serde::Serialize;

use crate::fmt;

/// One object, as `info --json` prints it and `list --json` lists it.
#[derive(Debug, Serialize)]
pub struct Object {
    /// The name, without the leading `/`.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// The owner's uid (null where the OS does not say).
    pub uid: Option<u32>,
    /// The owner's user name.
    pub user: Option<String>,
    /// Octal permission bits, `"0600"`.
    pub mode: Option<String>,
    /// `memory` or `file`.
    pub backing: &'static str,
    /// For a named file mapping, the file's absolute path (null for memory,
    /// and on Windows in a process that did not create the name).
    pub file: Option<String>,
    /// For a named file mapping this user would refuse to follow
    /// (`AccessDenied` on open): why; null otherwise.
    pub untrusted: Option<String>,
    /// `transient`, `persistent` or `foreign`.
    pub lifetime: Option<&'static str>,
    /// `live`, `stale`, `idle` or `foreign`.
    pub state: Option<&'static str>,
    /// The filemap segment header; null for a raw mapping.
    pub segment: Option<Segment>,
    /// The processes that hold or map it; null where the OS does not say.
    pub holders: Option<Vec<Holder>>,
    /// (Windows) Handles open on it in every process, the listing's own
    /// excluded; null elsewhere.
    pub handles: Option<u32>,
    /// What a filemap object's shared words say now (queued, sent and
    /// received messages, ends, a lock's holder...); null for a raw
    /// mapping or one this process cannot read.
    pub activity: Option<Activity>,
    /// Where the OS keeps it (`/dev/shm/NAME`), for the text form.
    #[serde(skip)]
    pub path: Option<String>,
}

/// What a segment's words say now ([`filemap::inspect::observe`]), read
/// without disturbing it. One shape for every kind: what a kind does not
/// have is null.
#[derive(Debug, Serialize)]
pub struct Activity {
    /// `ok`, or `corrupt` (the words hold what no filemap process writes).
    pub status: &'static str,
    /// Why it is corrupt; null when it is not.
    pub reason: Option<String>,
    /// An spsc ring's bytes.
    pub capacity: Option<u64>,
    /// An mpmc or broadcast channel's slots.
    pub slots: Option<u64>,
    /// A channel's largest message.
    pub max_message: Option<u64>,
    /// Messages queued now (spsc, mpmc).
    pub queued: Option<u64>,
    /// Ring bytes they hold (spsc).
    pub queued_bytes: Option<u64>,
    /// Messages sent since the channel was made.
    pub sent: Option<u64>,
    /// Messages received since it was made (spsc, mpmc).
    pub received: Option<u64>,
    /// Ring bytes written since it was made, record headers and padding
    /// included (spsc).
    pub sent_bytes: Option<u64>,
    /// A `Latest` cell's value size.
    pub size: Option<u64>,
    /// A `Latest` cell's version (writes so far).
    pub version: Option<u64>,
    /// A `Latest` write in progress (or its writer died in one).
    pub writing: Option<bool>,
    /// An event's permits.
    pub permits: Option<u32>,
    /// A mutex: `free`, `held` or `owner died`.
    pub lock: Option<&'static str>,
    /// A mutex's holder pid.
    pub holder: Option<u32>,
    /// The roles one process holds at a time, and who holds each.
    pub ends: Vec<EndOut>,
}

/// One end of a channel (or a `Latest` writer).
#[derive(Debug, Serialize)]
pub struct EndOut {
    /// `sender`, `receiver`, `writer`.
    pub role: &'static str,
    /// The holder's pid (kept after it closed or died); null if never taken.
    pub pid: Option<u32>,
    /// Its command name, where the OS tells and it still runs.
    pub command: Option<String>,
    /// `live`, `none`, `closed` or `dead`.
    pub state: &'static str,
}

impl Activity {
    fn empty(status: &'static str) -> Activity {
        Activity {
            status,
            reason: None,
            capacity: None,
            slots: None,
            max_message: None,
            queued: None,
            queued_bytes: None,
            sent: None,
            received: None,
            sent_bytes: None,
            size: None,
            version: None,
            writing: None,
            permits: None,
            lock: None,
            holder: None,
            ends: Vec::new(),
        }
    }

    /// The activity of the filemap object `name` (`None` for a raw mapping
    /// or one that cannot be read); `holders` name the ends' commands.
    pub fn of(
        name: &str,
        segment: Option<&Segment>,
        holders: Option<&[Holder]>,
    ) -> Option<Activity> {
        use filemap::inspect::Detail;
        segment?;
        let o = match filemap::inspect::observe(name) {
            Ok(o) => o,
            Err(filemap::Error::Corrupt { reason, .. }) => {
                return Some(Activity {
                    reason: Some(reason),
                    ..Activity::empty("corrupt")
                })
            }
            Err(_) => return None,
        };
        let mut a = Activity::empty("ok");
        match o.detail {
            Detail::Spsc {
                capacity,
                max_message,
                queued,
                queued_bytes,
                sent,
                received,
                sent_bytes,
            } => {
                a.sent_bytes = Some(sent_bytes);
                a.capacity = Some(capacity);
                a.max_message = Some(max_message);
                a.queued = Some(queued);
                a.queued_bytes = Some(queued_bytes);
                a.sent = Some(sent);
                a.received = Some(received);
            }
            Detail::Mpmc {
                slots,
                max_message,
                queued,
                sent,
                received,
            } => {
                a.slots = Some(slots);
                a.max_message = Some(max_message);
                a.queued = Some(queued);
                a.sent = Some(sent);
                a.received = Some(received);
            }
            Detail::Broadcast {
                slots,
                max_message,
                sent,
            } => {
                a.slots = Some(slots);
                a.max_message = Some(max_message);
                a.sent = Some(sent);
            }
            Detail::Latest {
                size,
                version,
                writing,
            } => {
                a.size = Some(size);
                a.version = Some(version);
                a.writing = Some(writing);
            }
            Detail::Event { permits } => a.permits = Some(permits),
            Detail::Mutex {
                holder,
                holder_alive,
            } => {
                a.holder = holder;
                a.lock = Some(match (holder, holder_alive) {
                    (None, _) => "free",
                    (Some(_), Some(false)) => "owner died",
                    (Some(_), _) => "held",
                });
            }
            _ => {}
        }
        a.ends = o
            .ends
            .iter()
            .map(|e| EndOut {
                role: e.role,
                pid: e.pid,
                command: match (e.pid, e.state) {
                    (Some(pid), filemap::inspect::EndState::Live) => holders
                        .and_then(|hs| hs.iter().find(|h| h.pid == pid))
                        .map(|h| h.command.clone()),
                    _ => None,
                },
                state: e.state.as_str(),
            })
            .collect();
        Some(a)
    }

    /// `info`'s lines for it.
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        if let Some(r) = &self.reason {
            return writeln!(out, "activity: corrupt: {r}");
        }
        if let Some(q) = self.queued {
            let (of, unit) = match (self.slots, self.capacity) {
                (Some(n), _) => (n, "slots"),
                (None, Some(_)) => (0, ""),
                _ => (0, ""),
            };
            if of > 0 {
                writeln!(out, "queued:   {q} of {of} {unit} {}", fmt::bar(q, of, 20))?;
            } else if let (Some(b), Some(cap)) = (self.queued_bytes, self.capacity) {
                writeln!(
                    out,
                    "queued:   {q} messages, {b} of {cap} ring bytes {}",
                    fmt::bar(b, cap, 20)
                )?;
            }
        }
        match (self.sent, self.received) {
            (Some(s), Some(r)) => writeln!(out, "messages: {s} sent, {r} received")?,
            (Some(s), None) => writeln!(out, "messages: {s} sent")?,
            _ => {}
        }
        if let Some(m) = self.max_message {
            writeln!(out, "largest:  {m} bytes a message")?;
        }
        if let Some(v) = self.version {
            let w = if self.writing == Some(true) {
                " (a write in progress)"
            } else {
                ""
            };
            writeln!(out, "version:  {v}{w}")?;
        }
        if let Some(p) = self.permits {
            writeln!(out, "permits:  {p}")?;
        }
        if let Some(l) = self.lock {
            match self.holder {
                Some(pid) => writeln!(out, "lock:     {l} (pid {pid})")?,
                None => writeln!(out, "lock:     {l}")?,
            }
        }
        for e in &self.ends {
            let who = match (e.pid, &e.command) {
                (None, _) => "none".to_owned(),
                (Some(p), Some(c)) => format!("pid {p} ({c}), {}", e.state),
                (Some(p), None) => format!("pid {p}, {}", e.state),
            };
            writeln!(out, "{:<9} {who}", format!("{}:", e.role))?;
        }
        Ok(())
    }

    /// A short summary for `list`'s ACTIVITY column.
    pub fn short(&self) -> String {
        if self.status == "corrupt" {
            return "corrupt".into();
        }
        if let Some(q) = self.queued {
            return match self.slots {
                Some(n) => format!("{q}/{n} queued"),
                None => format!("{q} queued"),
            };
        }
        if let Some(s) = self.sent {
            return format!("{s} sent");
        }
        if let Some(v) = self.version {
            return format!("v{v}");
        }
        if let Some(p) = self.permits {
            return format!("{p} permits");
        }
        match (self.lock, self.holder) {
            (Some(l), Some(pid)) => format!("{l} {pid}"),
            (Some(l), None) => l.to_owned(),
            _ => "-".into(),
        }
    }
}

/// A segment header.
#[derive(Debug, Serialize)]
pub struct Segment {
    /// `spsc`, `mpmc`, `broadcast`, `latest`, `event`, `mutex` or `unknown`.
    pub kind: &'static str,
    /// The header format version.
    pub version: u32,
    /// The layout fingerprint, 16 hex digits.
    pub fingerprint: String,
    /// Kind-specific capacity.
    pub capacity: u64,
    /// Kind-specific parameter.
    pub param: u64,
    /// The size its creator made.
    pub total_len: u64,
    /// The creator's pid.
    pub creator_pid: u32,
    /// Whether the creator finished making it.
    pub ready: bool,
    /// The type of a typed channel's messages (a service's requests); null
    /// for bytes.
    pub message_type: Option<MessageTypeOut>,
    /// For a request-response service: its shape, servers and clients.
    pub service: Option<Service>,
}

/// A message type as a segment records it.
#[derive(Debug, Serialize)]
pub struct MessageTypeOut {
    /// The identity (the end of it when long, after `…`).
    pub identity: String,
    /// Bytes of one value.
    pub size: u64,
    /// Alignment in bytes.
    pub align: u64,
}

/// A request-response service's registry.
#[derive(Debug, Serialize)]
pub struct Service {
    /// The largest request, in bytes.
    pub max_request: u64,
    /// The largest response, in bytes.
    pub max_response: u64,
    /// The response type of a typed service; null for bytes.
    pub response_type: Option<MessageTypeOut>,
    /// Pids of the live servers.
    pub servers: Vec<u32>,
    /// Pids of the live clients.
    pub clients: Vec<u32>,
    /// Client slots in all.
    pub client_slots: u64,
}

impl From<&filemap::MessageType> for MessageTypeOut {
    fn from(t: &filemap::MessageType) -> MessageTypeOut {
        MessageTypeOut {
            identity: t.identity().to_owned(),
            size: t.size(),
            align: t.align(),
        }
    }
}

impl Service {
    /// The registry of the service `name`, if it is one that can be read.
    fn of(name: &str, h: &Header) -> Option<Service> {
        if h.kind != filemap::segment::Kind::Service {
            return None;
        }
        let i = filemap::rpc::inspect(name).ok()?;
        Some(Service {
            max_request: i.max_request,
            max_response: i.max_response,
            response_type: i.response_type.as_ref().map(MessageTypeOut::from),
            servers: i.servers,
            clients: i.clients,
            client_slots: i.client_slots,
        })
    }
}

/// A process holding or mapping an object.
#[derive(Debug, Serialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Its command name.
    pub command: String,
    /// It has the object open.
    pub open: bool,
    /// It has the object mapped.
    pub mapped: bool,
}

/// What `list --json` prints.
#[derive(Debug, Serialize)]
pub struct List {
    /// Every object, sorted by name.
    pub objects: Vec<Object>,
}

impl Segment {
    /// The header of the object `name` (and, for a service, its registry).
    fn of(name: &str, h: &Header) -> Segment {
        Segment {
            message_type: h.message_type.as_ref().map(MessageTypeOut::from),
            service: Service::of(name, h),
            kind: h.kind.as_str(),
            version: h.version,
            fingerprint: format!("{:016x}", h.fingerprint),
            capacity: h.capacity,
            param: h.param,
            total_len: h.total_len,
            creator_pid: h.creator_pid,
            ready: h.ready,
        }
    }
}

impl From<&ObjectInfo> for Object {
    fn from(o: &ObjectInfo) -> Object {
        Object {
            name: o.name.clone(),
            size: o.size,
            uid: Some(o.uid),
            user: o.user.clone(),
            mode: Some(format!("{:04o}", o.mode)),
            backing: o.backing.as_str(),
            file: o.file.clone(),
            untrusted: o.untrusted.clone(),
            lifetime: Some(o.origin.as_str()),
            state: Some(o.state.as_str()),
            segment: o.header.as_ref().map(|h| Segment::of(&o.name, h)),
            handles: None,
            holders: Some(
                o.holders
                    .iter()
                    .map(|h| Holder {
                        pid: h.pid,
                        command: h.command.clone(),
                        open: h.open,
                        mapped: h.mapped,
                    })
                    .collect(),
            ),
            path: Some(format!("/dev/shm/{}", o.name)),
            activity: None,
        }
        .observed()
    }
}

impl Object {
    /// What opening tells, where the OS offers no inspection (Windows, macOS).
    pub fn opened(name: &str, m: &filemap::Mapping, header: Option<&Header>) -> Object {
        Object {
            name: name.to_owned(),
            size: m.len(),
            uid: None,
            user: None,
            mode: None,
            backing: m.backing().as_str(),
            file: m.file_path().map(str::to_owned),
            untrusted: None,
            lifetime: None,
            state: None,
            segment: header.map(|h| Segment::of(name, h)),
            holders: None,
            handles: None,
            path: None,
            activity: None,
        }
        .observed()
    }

    /// With its [`Activity`] read.
    fn observed(mut self) -> Object {
        self.activity = Activity::of(&self.name, self.segment.as_ref(), self.holders.as_deref());
        self
    }

    /// (Windows) A section as `filemap::os::windows::sections` lists it:
    /// every section lives while a handle does, so each is live.
    #[cfg(windows)]
    pub fn from_section(s: &filemap::os::windows::SectionInfo) -> Object {
        Object {
            name: s.name.clone(),
            size: s.size.unwrap_or(0),
            uid: None,
            user: None,
            mode: None,
            backing: match s.file_backed {
                Some(true) => "file",
                _ => "memory",
            },
            file: None,
            untrusted: None,
            lifetime: Some("transient"),
            state: Some("live"),
            segment: s.header.as_ref().map(|h| Segment::of(&s.name, h)),
            holders: None,
            handles: s.handles,
            path: None,
            activity: None,
        }
        .observed()
    }

    /// `info`'s text form: a line per field the OS told.
    pub fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "name:     {}", self.name)?;
        writeln!(out, "size:     {}", fmt::size_line(self.size))?;
        if let Some(uid) = self.uid {
            match &self.user {
                Some(u) => writeln!(out, "owner:    {u} (uid {uid})")?,
                None => writeln!(out, "owner:    uid {uid}")?,
            }
        }
        if let Some(mode) = &self.mode {
            writeln!(out, "mode:     {mode}")?;
        }
        match (&self.file, &self.path) {
            (Some(f), Some(p)) => {
                writeln!(out, "backing:  {} ({f})", self.backing)?;
                writeln!(out, "record:   {p}")?;
            }
            (Some(p), None) | (None, Some(p)) => writeln!(out, "backing:  {} ({p})", self.backing)?,
            (None, None) => writeln!(out, "backing:  {}", self.backing)?,
        }
        if let Some(why) = &self.untrusted {
            writeln!(out, "trust:    untrusted: {why}")?;
        }
        if let Some(l) = self.lifetime {
            writeln!(out, "lifetime: {l}")?;
        }
        if let Some(s) = self.state {
            writeln!(out, "state:    {s}")?;
        }
        writeln!(out, "header:   {}", header_text(self.segment.as_ref()))?;
        if let Some(t) = self.segment.as_ref().and_then(|s| s.message_type.as_ref()) {
            writeln!(
                out,
                "type:     {} ({} bytes, alignment {})",
                t.identity, t.size, t.align
            )?;
        }
        if let Some(s) = self.segment.as_ref().and_then(|s| s.service.as_ref()) {
            let pids = |v: &[u32]| {
                if v.is_empty() {
                    "none".to_owned()
                } else {
                    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
                }
            };
            writeln!(
                out,
                "service:  requests up to {} bytes, responses up to {} bytes{}",
                s.max_request,
                s.max_response,
                match &s.response_type {
                    Some(t) => format!(", responses of type {} ({} bytes)", t.identity, t.size),
                    None => String::new(),
                }
            )?;
            writeln!(out, "servers:  {}", pids(&s.servers))?;
            writeln!(
                out,
                "clients:  {} (of {} slots)",
                pids(&s.clients),
                s.client_slots
            )?;
        }
        if let Some(a) = &self.activity {
            a.write_text(out)?;
        }
        match (&self.holders, self.handles) {
            (None, Some(n)) => {
                writeln!(out, "handles:  {n} (in every process, this one's excluded)")?
            }
            (None, None) => writeln!(out, "holders:  not available on this OS")?,
            (Some(hs), _) if hs.is_empty() => writeln!(out, "holders:  none")?,
            (Some(hs), _) => {
                for (i, h) in hs.iter().enumerate() {
                    let how = match (h.open, h.mapped) {
                        (true, true) => "open, mapped",
                        (true, false) => "open",
                        _ => "mapped",
                    };
                    let label = if i == 0 { "holders:" } else { "" };
                    writeln!(out, "{label:<9} {} {} ({how})", h.pid, h.command)?;
                }
            }
        }
        Ok(())
    }

    /// The holders as `pid(command),...`, `N handles` (Windows), or `-`.
    pub fn holders_text(&self) -> String {
        if let (None, Some(n)) = (&self.holders, self.handles) {
            return format!("{n} handles");
        }
        match &self.holders {
            Some(hs) if !hs.is_empty() => hs
                .iter()
                .map(|h| format!("{}({})", h.pid, h.command))
                .collect::<Vec<_>>()
                .join(","),
            _ => "-".into(),
        }
    }
}

fn header_text(h: Option<&Segment>) -> String {
    match h {
        None => "none (a raw mapping)".into(),
        Some(h) => format!(
            "filemap segment: kind {}, format v{}, layout {}, capacity {}, param {}, \
             {} bytes, made by pid {}, {}",
            h.kind,
            h.version,
            h.fingerprint,
            h.capacity,
            h.param,
            h.total_len,
            h.creator_pid,
            if h.ready { "ready" } else { "not ready" }
        ),
    }
}

/// Writes `v` as one line of JSON.
pub fn write_json(out: &mut impl Write, v: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Object {
        Object {
            name: "jobs".into(),
            size: 4096,
            uid: Some(0),
            user: Some("root".into()),
            mode: Some("0600".into()),
            backing: "memory",
            file: None,
            untrusted: None,
            lifetime: Some("transient"),
            state: Some("live"),
            segment: Some(Segment {
                kind: "spsc",
                version: 1,
                fingerprint: "0123456789abcdef".into(),
                capacity: 64,
                param: 0,
                total_len: 4096,
                creator_pid: 1,
                ready: true,
                message_type: Some(MessageTypeOut {
                    identity: "app::Reading".into(),
                    size: 16,
                    align: 8,
                }),
                service: Some(Service {
                    max_request: 64,
                    max_response: 64,
                    response_type: None,
                    servers: vec![1],
                    clients: vec![],
                    client_slots: 64,
                }),
            }),
            holders: Some(vec![Holder {
                pid: 1,
                command: "x".into(),
                open: true,
                mapped: false,
            }]),
            handles: Some(1),
            path: None,
            activity: Some(Activity {
                capacity: Some(4096),
                max_message: Some(2040),
                queued: Some(3),
                queued_bytes: Some(48),
                sent: Some(10),
                received: Some(7),
                sent_bytes: Some(240),
                ends: vec![EndOut {
                    role: "sender",
                    pid: Some(1),
                    command: Some("x".into()),
                    state: "live",
                }],
                ..Activity::empty("ok")
            }),
        }
    }

    /// The README's JSON table, as (field, meaning) pairs.
    fn readme_fields() -> Vec<(String, String)> {
        // The workspace's README; a packaged crate carries it at its root.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let readme = ["../../README.md", "README.md"]
            .iter()
            .find_map(|p| std::fs::read_to_string(dir.join(p)).ok())
            .expect("README.md beside the workspace or the package");
        let start = readme
            .find("JSON (`info --json`")
            .expect("the README has the JSON schema section");
        let fields = readme[start..]
            .lines()
            .skip_while(|l| !l.starts_with("| field"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_owned(), cells[3].to_owned())
            })
            .collect();
        fields
    }

    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        k.sort();
        k
    }

    fn backticked(text: &str) -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(|s| s.trim_matches('"').to_owned())
            .collect()
    }

    #[test]
    fn the_readme_schema_lists_exactly_the_fields_printed() {
        let v = serde_json::to_value(sample()).expect("serialises");
        let rows = readme_fields();
        let mut documented: Vec<String> = rows.iter().map(|(f, _)| f.clone()).collect();
        documented.sort();
        assert_eq!(documented, keys(&v), "README table vs output::Object");
        // The segment row names every header field, the holders row every
        // holder field.
        let meaning = |f: &str| &rows.iter().find(|(k, _)| k == f).expect("row").1;
        for k in keys(&v["segment"]) {
            assert!(backticked(meaning("segment")).contains(&k), "segment.{k}");
        }
        for k in keys(&v["holders"][0]) {
            assert!(backticked(meaning("holders")).contains(&k), "holders.{k}");
        }
        for k in keys(&v["activity"]) {
            assert!(backticked(meaning("activity")).contains(&k), "activity.{k}");
        }
        for k in keys(&v["activity"]["ends"][0]) {
            assert!(
                backticked(meaning("activity")).contains(&k),
                "activity.ends.{k}"
            );
        }
    }

    #[test]
    fn fields_the_os_does_not_tell_are_null_not_absent() {
        let o = Object {
            uid: None,
            user: None,
            mode: None,
            lifetime: None,
            state: None,
            holders: None,
            segment: None,
            ..sample()
        };
        let v = serde_json::to_value(o).expect("serialises");
        assert_eq!(keys(&v), keys(&serde_json::to_value(sample()).unwrap()));
        assert!(v["uid"].is_null() && v["holders"].is_null() && v["segment"].is_null());
    }
}
