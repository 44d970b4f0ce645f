//! Unix roles: what other users and other programs can do to filemap's
//! objects, and lifetime scenarios (forks, children, killed holders).

use super::*;
use filemap::{Access, Mapping, ViewAccess};
use std::sync::atomic::Ordering;

/// Roles that attack or exercise the Unix lifetime protocol:
///
/// - `lock-attack PATH`: what a process that may only read an object can
///   try against its owner: open it read-only, take `flock(LOCK_EX)` and a
///   process-associated write lock (`F_SETLK`), say which it got
///   (`flock ok|refused fcntl ok|refused`), and hold them until `exit`.
/// - `shrink PATH SIZE`: what any process that may write an object can do
///   to its holders: open it and `ftruncate` it to `SIZE` (says `shrunk`).
/// - `reopen-inherited`: try to open the descriptor named by `FILEMAP_TOKEN`
///   again, read-write, through `/proc/self/fd` (`reopen ok|refused`).
/// - `plant-record NAME PATH`: write a file record naming PATH at
///   `/dev/shm/NAME` by hand, as any user can, with filemap's marks.
/// - `sweep-scenario N SIZE`: in a private `/dev/shm`, N holders of SIZE
///   bytes killed, then an unrelated `create` in a new process without and
///   with sweeping, while Python maps one of them and a foreign object
///   stands beside; says `killed L U unswept L U swept L U kept-mapped B
///   kept-foreign B` (names left, bytes of the tmpfs used, 1 for kept).
/// - `churn PREFIX MILLIS`: three threads create, write and drop names
///   `PREFIX-T-I` while a fourth runs `/bin/true`, for MILLIS ms; says
///   `made N spawned M` and exits cleanly.
/// - `fork-hold NAME`: open the mapping, `fork`; the parent drops its
///   `Mapping` at once and says `parent dropped`, then waits for `exit`; the
///   child keeps its copy of the mapping until the file `NAME.release`
///   appears in the temporary folder (at most 60 s), then writes what its
///   view reads at offset 0 to `NAME.seen`, drops it and exits.
pub(crate) fn role(args: &[String]) -> Option<i32> {
    use rustix::fs::{self as rfs, FlockOperation, Mode, OFlags};
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let wait_exit = || {
        for l in std::io::stdin().lines() {
            if l.map(|l| l.trim() == "exit").unwrap_or(true) {
                break;
            }
        }
    };
    match a.as_slice() {
        ["lock-attack", path] => {
            let fd = rfs::open(*path, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())
                .expect("open read-only");
            let word = |ok: bool| if ok { "ok" } else { "refused" };
            let flock = rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok();
            let fcntl = rfs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok();
            println!("flock {} fcntl {}", word(flock), word(fcntl));
            std::io::stdout().flush().unwrap();
            wait_exit();
            Some(0)
        }
        ["shrink", path, size] => {
            let fd = rfs::open(*path, OFlags::RDWR | OFlags::NONBLOCK, Mode::empty())
                .expect("open read-write");
            rfs::ftruncate(&fd, size.parse().expect("size")).expect("ftruncate");
            println!("shrunk");
            std::io::stdout().flush().unwrap();
            Some(0)
        }
        ["plant-record", name, path] => {
            // What any user can do: write a well-formed file record by hand
            // (`sys/record.rs`'s layout) naming PATH, with filemap's marks
            // for a persistent file record (set-user-ID and set-group-ID).
            use std::os::unix::fs::MetadataExt;
            let md = std::fs::metadata(path).expect("stat the file");
            let mut b = b"FMFILE01".to_vec();
            b.extend_from_slice(&md.dev().to_le_bytes());
            b.extend_from_slice(&md.ino().to_le_bytes());
            b.extend_from_slice(&md.len().to_le_bytes());
            b.extend_from_slice(&(path.len() as u32).to_le_bytes());
            b.extend_from_slice(path.as_bytes());
            let sum = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
                (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            b.extend_from_slice(&sum.to_le_bytes());
            let shm = format!("/dev/shm/{name}");
            let fd = rfs::open(
                shm.as_str(),
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
                Mode::from_raw_mode(0o600),
            )
            .expect("create in /dev/shm");
            rustix::io::write(&fd, &b).expect("write the record");
            rfs::fchmod(&fd, Mode::from_raw_mode(0o6600)).expect("fchmod");
            println!("planted");
            std::io::stdout().flush().unwrap();
            Some(0)
        }
        ["reopen-inherited"] => {
            let token = std::env::var("FILEMAP_TOKEN").expect("FILEMAP_TOKEN");
            let fd = token.split(':').nth(2).expect("a descriptor in the token");
            let reopened = rfs::open(
                format!("/proc/self/fd/{fd}").as_str(),
                OFlags::RDWR,
                Mode::empty(),
            );
            println!("reopen {}", if reopened.is_ok() { "ok" } else { "refused" });
            std::io::stdout().flush().unwrap();
            Some(0)
        }
        ["sweep-scenario", n, size] => {
            // Run in a private /dev/shm (a mount namespace of its own): N
            // holders each create a name of SIZE bytes and are killed with
            // SIGKILL; then a new process makes one unrelated `create`, first
            // with sweeping turned off, then on. Says how many names were
            // left and how much of the tmpfs was used after each.
            use std::io::BufRead as _;
            use std::process::{Command, Stdio};
            let n: usize = n.parse().expect("count");
            let me = std::env::current_exe().expect("own path");
            let used = || {
                let st = rustix::fs::statvfs("/dev/shm").expect("statvfs /dev/shm");
                (st.f_blocks - st.f_bfree) * st.f_frsize
            };
            let left = || {
                std::fs::read_dir("/dev/shm")
                    .expect("read /dev/shm")
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("held-"))
                    .count()
            };
            let create = |name: &str, size: &str, sweep: bool| {
                let mut c = Command::new(&me);
                c.args(["create", name, size])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped());
                if sweep {
                    c.env_remove("FILEMAP_SWEEP");
                } else {
                    c.env("FILEMAP_SWEEP", "0");
                }
                let mut child = c.spawn().expect("spawn a holder");
                let mut line = String::new();
                std::io::BufReader::new(child.stdout.take().expect("stdout"))
                    .read_line(&mut line)
                    .expect("read its first line");
                assert!(line.starts_with("ok created"), "{line}");
                child
            };
            let mut holders: Vec<_> = (0..n)
                .map(|i| create(&format!("held-{i}"), size, false))
                .collect();
            for h in &mut holders {
                h.kill().expect("SIGKILL a holder");
                h.wait().expect("reap it");
            }
            // A foreign program maps one of them (without filemap's lock),
            // and a foreign object stands beside them: a sweep keeps both.
            let mut mapper = Command::new("python3")
                .args([
                    "-c",
                    "import mmap, os, sys\n\
                     fd = os.open('/dev/shm/held-0', os.O_RDWR)\n\
                     m = mmap.mmap(fd, 4096)\n\
                     print('mapped', flush=True)\n\
                     sys.stdin.read()",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("run python3");
            let mut line = String::new();
            std::io::BufReader::new(mapper.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("read");
            assert_eq!(line.trim(), "mapped");
            std::fs::write("/dev/shm/foreign-x", b"not filemap's").expect("a foreign object");
            let killed = (left(), used());
            // An unrelated create in a new process, sweeping off: all stay.
            let mut quiet = create("unrelated-a", "4096", false);
            drop(quiet.stdin.take());
            quiet.wait().expect("wait");
            let unswept = (left(), used());
            // The same with sweeping on (the default).
            let mut sweeper = create("unrelated-b", "4096", true);
            drop(sweeper.stdin.take());
            sweeper.wait().expect("wait");
            let swept = (left(), used());
            let kept_mapped = std::path::Path::new("/dev/shm/held-0").exists();
            let kept_foreign = std::path::Path::new("/dev/shm/foreign-x").exists();
            drop(mapper.stdin.take());
            mapper.wait().expect("wait for python3");
            println!(
                "killed {} {} unswept {} {} swept {} {} kept-mapped {} kept-foreign {}",
                killed.0,
                killed.1,
                unswept.0,
                unswept.1,
                swept.0,
                swept.1,
                u8::from(kept_mapped),
                u8::from(kept_foreign)
            );
            std::io::stdout().flush().unwrap();
            Some(0)
        }
        ["churn", prefix, millis] => {
            // Three threads create a 64 KiB name, write a byte and drop it,
            // over and over, while a fourth runs `/bin/true` (any program
            // with subprocesses); then a clean exit.
            use std::sync::atomic::AtomicBool;
            let stop = AtomicBool::new(false);
            let run_for = std::time::Duration::from_millis(millis.parse().expect("millis"));
            let (made, spawned) = std::thread::scope(|s| {
                let spawner = s.spawn(|| {
                    let mut n = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        std::process::Command::new("/bin/true")
                            .status()
                            .expect("run /bin/true");
                        n += 1;
                    }
                    n
                });
                let makers: Vec<_> = (0..3)
                    .map(|t| {
                        let stop = &stop;
                        s.spawn(move || {
                            let mut i = 0u32;
                            while !stop.load(Ordering::Relaxed) {
                                let m = Mapping::create(&format!("{prefix}-{t}-{i}"), 64 << 10)
                                    .expect("create");
                                m.view(0..1, ViewAccess::ReadWrite)
                                    .and_then(|v| v.write_at(0, &[1]))
                                    .expect("write");
                                drop(m);
                                i += 1;
                            }
                            i
                        })
                    })
                    .collect();
                std::thread::sleep(run_for);
                stop.store(true, Ordering::Relaxed);
                let made: u32 = makers.into_iter().map(|h| h.join().unwrap()).sum();
                (made, spawner.join().unwrap())
            });
            println!("made {made} spawned {spawned}");
            std::io::stdout().flush().unwrap();
            Some(0)
        }
        ["fork-hold", name] => {
            let m = Mapping::open(name, Access::ReadWrite).expect("open");
            // SAFETY: this process has one thread here (the helper starts
            // none before this role), so the child may go on running Rust.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let release = std::env::temp_dir().join(format!("{name}.release"));
                let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while !release.exists() && std::time::Instant::now() < end {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                // What the child's copy of the views reads now, for the test.
                let mut b = [0u8; 1];
                let seen = m
                    .view(0..1, ViewAccess::Read)
                    .and_then(|v| v.read_at(0, &mut b))
                    .map_or_else(|e| format!("{e}"), |()| b[0].to_string());
                let seen_path = std::env::temp_dir().join(format!("{name}.seen"));
                let _ = std::fs::write(seen_path.with_extension("tmp"), seen);
                let _ = std::fs::rename(seen_path.with_extension("tmp"), seen_path);
                drop(m);
                let _ = std::fs::remove_file(&release);
                // Skip the parent's stdio buffers and exit handlers.
                // SAFETY: `_exit` ends this process at once; nothing after runs.
                unsafe { libc::_exit(0) };
            }
            drop(m);
            println!("parent dropped");
            std::io::stdout().flush().unwrap();
            wait_exit();
            Some(0)
        }
        _ => None,
    }
}
