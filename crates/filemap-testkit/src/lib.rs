//! Test support: drive `fm-helper` processes line by line, with deadlines.
//!
//! A test spawns helpers with [`Helper::spawn`], sends them one-line commands
//! and reads one-line replies. Every wait has a deadline ([`DEADLINE`]) and
//! panics with what it was waiting for, so a broken test fails instead of hanging.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// `ETXTBSY` on Linux (a program file open for writing).
const ETXTBSY: i32 = 26;

/// The longest any single wait in a test may take.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The `fm-helper` executable next to the test binary (`target/<profile>/`).
pub fn helper_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("test binary lives in target/<profile>/deps");
    dir.join(format!("fm-helper{}", std::env::consts::EXE_SUFFIX))
}

/// The helper run as another user where this process may: as `nobody`
/// when this process is root, else as this user (the test then takes
/// permissions away from itself instead: see [`OtherUser::is_other`]). It runs
/// from a copy every user can execute, wherever the tree was cloned; the copy
/// is removed when this is dropped.
#[cfg(unix)]
pub struct OtherUser {
    exe: PathBuf,
    /// True when the helper runs as another user (`nobody`).
    pub is_other: bool,
}

#[cfg(unix)]
impl OtherUser {
    /// Copies the helper for another user to run.
    pub fn new() -> OtherUser {
        use std::os::unix::fs::PermissionsExt;
        let exe = std::env::temp_dir().join(unique("helper"));
        std::fs::copy(helper_path(), &exe).expect("copy the helper");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))
            .expect("make the copy executable by all");
        OtherUser {
            exe,
            is_other: rustix::process::geteuid().is_root(),
        }
    }

    /// A command that runs the helper copy, as `nobody` when root.
    pub fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(&self.exe);
        if self.is_other {
            c.uid(65534).gid(65534);
        }
        c
    }
}

#[cfg(unix)]
impl Default for OtherUser {
    fn default() -> Self {
        OtherUser::new()
    }
}

#[cfg(unix)]
impl Drop for OtherUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.exe);
    }
}

/// A name no other test (or test run) uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "fmtest-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A running helper process.
pub struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    what: String,
}

impl Helper {
    /// Spawns `fm-helper ARGS`.
    pub fn spawn(args: &[&str]) -> Helper {
        Self::spawn_cmd(Command::new(helper_path()).args(args), &args.join(" "))
    }

    /// Spawns a prepared command (for extra env, uid, ...).
    pub fn spawn_cmd(cmd: &mut Command, what: &str) -> Helper {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // A program file just written (a copy of the helper another user can
        // run) is briefly "busy" while a child forked by another test thread
        // still holds its write descriptor, until that child's exec: retry
        // that one error, a bounded number of times.
        let end = Instant::now() + Duration::from_secs(10);
        let mut child = loop {
            match cmd.spawn() {
                Ok(c) => break c,
                Err(e) if e.raw_os_error() == Some(ETXTBSY) && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("spawning fm-helper {what}: {e}"),
            }
        };
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line.trim_end().to_owned()).is_err() {
                    break;
                }
            }
        });
        Helper {
            stdin: child.stdin.take(),
            child,
            lines,
            what: what.to_owned(),
        }
    }

    /// The next line the helper prints; panics after [`DEADLINE`] or at EOF.
    pub fn line(&self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(l) => l,
            Err(e) => panic!("fm-helper {}: no line within {DEADLINE:?} ({e})", self.what),
        }
    }

    /// The next line if one comes within `wait` (for polling loops that have
    /// their own deadline).
    pub fn line_within(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// Sends one command line without waiting for the reply.
    pub fn send(&mut self, cmd: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{cmd}")
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("fm-helper {}: writing {cmd:?}: {e}", self.what));
    }

    /// Sends a command and returns its one-line reply.
    pub fn ask(&mut self, cmd: &str) -> String {
        self.send(cmd);
        self.line()
    }

    /// Sends a command whose reply must start with `ok`; returns the rest.
    pub fn ok(&mut self, cmd: &str) -> String {
        let r = self.ask(cmd);
        match r.strip_prefix("ok") {
            Some(rest) => rest.trim().to_owned(),
            None => panic!("fm-helper {}: {cmd:?} answered {r:?}", self.what),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the helper's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Kills the process (SIGKILL on Unix, TerminateProcess on Windows) and waits for it.
    pub fn kill(mut self) {
        self.child.kill().expect("kill helper");
        self.wait();
    }

    /// Kills the process (as [`Helper::kill`]) without giving up the handle.
    pub fn kill_in_place(&self) {
        // `Child::kill` needs `&mut`; kill by pid, then reap on drop.
        #[cfg(unix)]
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        #[cfg(windows)]
        let _ = std::process::Command::new("taskkill")
            .args(["/F", "/PID", &self.child.id().to_string()])
            .status();
    }

    /// Asks the helper to exit and waits for it.
    pub fn exit(mut self) -> ExitStatus {
        if self.stdin.is_some() {
            let _ = self.ask("exit");
        }
        self.stdin = None;
        self.wait()
    }

    /// Waits for the process to end, with the deadline.
    pub fn wait(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(
                Instant::now() < end,
                "fm-helper {} did not exit within {DEADLINE:?}",
                self.what
            );
            // Polling a child's exit: std offers no wait with a timeout.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Helper {
    /// Ends the process cleanly if it still runs: end of input first (both
    /// `fm-helper` and `filemap create` exit on it and release their mapping,
    /// leaving nothing in /dev/shm), then a kill if that takes too long.
    fn drop(&mut self) {
        self.stdin = None;
        let end = Instant::now() + Duration::from_secs(10);
        while let Ok(None) = self.child.try_wait() {
            if Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A loopback TCP port nothing listens on (free when this returns; for
/// tests that give Zenoh an explicit endpoint).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("its address").port()
}

/// Waits until `cond` holds, polling, for at most [`DEADLINE`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            Instant::now() < end,
            "condition not met within {DEADLINE:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The test message number `n` of a stream: its length (0 up to `max`, mostly
/// short, now and then the largest) and its bytes are a function of `n`, so the
/// receiver can check that nothing was lost, duplicated, reordered or torn.
pub fn message_len(n: u64, max: usize) -> usize {
    let h = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    match n % 1000 {
        999 => max,
        0 => 0,
        _ => (h as usize) % 97.min(max + 1),
    }
}

/// Fills `buf` (of `message_len(n, ..)` bytes) with message `n`'s bytes.
pub fn message_fill(n: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (n.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8;
    }
}

/// Checks that `got` is message `n`; returns what is wrong otherwise.
pub fn message_check(n: u64, max: usize, got: &[u8]) -> Result<(), String> {
    check_bytes(n, message_len(n, max), message_fill, got)
}

/// Checks that `got` is the `len` bytes `fill` makes for message `n`.
fn check_bytes(n: u64, len: usize, fill: fn(u64, &mut [u8]), got: &[u8]) -> Result<(), String> {
    if got.len() != len {
        return Err(format!("message {n}: {} bytes, expected {len}", got.len()));
    }
    let mut want = vec![0; len];
    fill(n, &mut want);
    if got != want.as_slice() {
        return Err(format!("message {n}: wrong bytes"));
    }
    Ok(())
}

/// Length of numbered message `n` (the bridge tests): 1 byte to 64 KiB,
/// mixed: every 1000th is 64 KiB, every 10th is 1 to 8 bytes (with `min8`,
/// 8), the rest 8 bytes to 4 KiB.
pub fn numbered_len(n: u64, min8: bool) -> usize {
    let h = (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize;
    match n % 1000 {
        999 => 64 * 1024,
        _ if n.is_multiple_of(10) => {
            if min8 {
                8
            } else {
                1 + h % 8
            }
        }
        _ => 8 + h % 4089,
    }
}

/// Numbered message `n`'s bytes: its number (little-endian, as far as it
/// fits), then bytes that depend on `n` and their place.
pub fn numbered_fill(n: u64, buf: &mut [u8]) {
    let num = n.to_le_bytes();
    for (i, b) in buf.iter_mut().enumerate() {
        *b = match num.get(i) {
            Some(x) if i < 8 => *x,
            _ => (n.wrapping_mul(131).wrapping_add(i as u64 * 7) % 251) as u8,
        };
    }
}

/// The number a numbered message of 8 bytes or more carries.
pub fn numbered_of(got: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(got.get(..8)?.try_into().ok()?))
}

/// Checks that `got` is numbered message `n`, whole; says what is wrong.
pub fn numbered_check(n: u64, min8: bool, got: &[u8]) -> Result<(), String> {
    check_bytes(n, numbered_len(n, min8), numbered_fill, got)
}

/// The typed channels' test type: what `typed-send` sends and the tests
/// receive, laid out the same in both (`#[repr(C)]`, no padding).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
)]
#[repr(C)]
pub struct Reading {
    /// Which sensor.
    pub sensor: u32,
    /// Flags, here the low bits of the number.
    pub flags: u32,
    /// The number of the reading, as a float.
    pub value: f64,
    /// The number of the reading.
    pub n: u64,
}

impl Reading {
    /// Reading number `n`, all fields derived from it.
    pub fn numbered(n: u64) -> Reading {
        Reading {
            sensor: (n % 7) as u32,
            flags: (n & 0xff) as u32,
            value: n as f64 * 0.5,
            n,
        }
    }
}

/// The request client `k` sends as its call number `n` (8 to 64 bytes,
/// naming both).
pub fn rpc_request(k: u64, n: u64) -> Vec<u8> {
    let mut v = ((k << 48) | n).to_le_bytes().to_vec();
    let len = 8 + (n % 57) as usize;
    v.extend((8..len).map(|i| (n as usize).wrapping_mul(31).wrapping_add(i) as u8));
    v
}

/// The response the test servers give to `req`: its bytes reversed, each
/// plus one (so a response checked against its request proves both the
/// routing and the content).
pub fn rpc_response(req: &[u8]) -> Vec<u8> {
    req.iter().rev().map(|b| b.wrapping_add(1)).collect()
}

/// Message `n` of shared broadcast sender `k` (16 to 195 bytes): `n`, `k`,
/// then bytes that depend on both and their place.
pub fn shared_message(k: u32, n: u64) -> Vec<u8> {
    let len = 16 + ((n.wrapping_mul(7) + u64::from(k)) % 180) as usize;
    let mut v = n.to_le_bytes().to_vec();
    v.extend_from_slice(&k.to_le_bytes());
    v.extend((12..len).map(|i| {
        (n.wrapping_mul(131)
            .wrapping_add(u64::from(k) * 17)
            .wrapping_add(i as u64)
            % 251) as u8
    }));
    v
}

/// The `(k, n)` a shared broadcast message carries, if it is whole.
pub fn shared_message_check(got: &[u8]) -> Result<(u32, u64), String> {
    let n = u64::from_le_bytes(got.get(..8).ok_or("short")?.try_into().expect("8"));
    let k = u32::from_le_bytes(got.get(8..12).ok_or("short")?.try_into().expect("4"));
    if got != shared_message(k, n).as_slice() {
        return Err(format!(
            "message {n} of sender {k} is not whole ({} bytes)",
            got.len()
        ));
    }
    Ok((k, n))
}
