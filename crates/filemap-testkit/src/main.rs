//! `fm-helper`: a process that holds a filemap mapping and obeys one-line
//! commands on stdin, replying one line on stdout. Used by the cross-process
//! tests; see `tests/`.
//!
//! ```text
//! fm-helper [--wait-go] [--umask OCT] SETUP...
//! SETUP:  create NAME SIZE [persistent] [reserve] [large] [mode=OCT]
//!         create-or-open NAME SIZE
//!         open NAME r|rw
//!         file PATH SIZE r|rw
//!         named-file NAME PATH SIZE r|rw [persistent]
//!         anonymous SIZE
//!         serve-mapping PATH SIZE r|rw    (Unix: hand one over on a socket)
//!         receive-mapping PATH            (Unix: take one from a socket)
//!         inherited | inherited-twice     (token in FILEMAP_TOKEN)
//! then, one per line:
//!         write OFF HEX        write through a read-write view of OFF..OFF+len
//!         read OFF LEN         read through a read-only view of OFF..OFF+LEN
//!         cow OFF HEX          write through a copy-on-write view, reply its bytes
//!         add OFF N            atomic fetch_add on the u64 at OFF, reply the old value
//!         len                  reply the mapping's size
//!         commit OFF LEN       commit a range of a reserved mapping
//!         committed            reply the committed length
//!         large                reply the large page size and the bytes mapped with them
//!         backing              reply the backing and the file path
//!         dup PID r|rw         (Windows) duplicate into PID, reply the token
//!         adopt TOKEN          (Windows) adopt a duplicated handle
//!         follow ADDR          map at ADDR, follow the pointer stored at offset 0
//!         flush OFF LEN        flush_durable of a view
//!         exit                 reply "bye" and exit 0
//! Other roles take the whole command line instead of a SETUP, one module
//! per family under `roles/`, each with its `role()`: `spsc`, `sync` (cells,
//! events, the mutex), `queues` (broadcast, mpmc), `waiting` (WaitSet,
//! async), `unix` (lock-attack, shrink, reopen-inherited, plant-record,
//! sweep-scenario, churn, fork-hold); and the hostile peers (`hostile.rs`).
//! Each is documented where it is matched.
//! Replies: "ok ..." or "err KIND message" (`filemap::ErrorKind`).
//! ```

mod hostile;
mod roles;

use std::io::{BufRead, Write};
use std::sync::atomic::Ordering;

use filemap::{Access, Disposition, Error, Lifetime, Mapping, Options, ViewAccess};
use filemap_testkit::hex;

fn err_line(e: &Error) -> String {
    format!("err {} {}", e.kind(), e)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn num(s: Option<&str>) -> u64 {
    s.expect("missing number").parse().expect("number")
}

fn setup(args: &[String]) -> Result<(Mapping, &'static str), Error> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["create", name, size, rest @ ..] => {
            let mut o = Options::new();
            for r in rest {
                if *r == "persistent" {
                    o = o.lifetime(Lifetime::Persistent);
                } else if *r == "reserve" {
                    o = o.reserve(true);
                } else if *r == "large" {
                    o = o.large_pages(true);
                } else if let Some(m) = r.strip_prefix("mode=") {
                    o = o.mode(u32::from_str_radix(m, 8).expect("octal mode"));
                }
            }
            Ok((o.create(name, size.parse().expect("size"))?, "created"))
        }
        ["create-or-open", name, size] => {
            let (m, how) = Mapping::create_or_open(name, size.parse().expect("size"))?;
            Ok((
                m,
                if how == Disposition::Created {
                    "created"
                } else {
                    "opened"
                },
            ))
        }
        ["open", name, acc] => Ok((Mapping::open(name, access(acc))?, "opened")),
        ["file", path, size, acc] => Ok((
            Mapping::from_path(path, size.parse().expect("size"), access(acc))?,
            "mapped",
        )),
        // A named file mapping: NAME maps the file PATH (SIZE 0: its size).
        ["named-file", name, path, size, acc, rest @ ..] => {
            let mut o = Options::new().access(access(acc));
            if rest.contains(&"persistent") {
                o = o.lifetime(Lifetime::Persistent);
            }
            Ok((
                o.create_file(name, path, size.parse().expect("size"))?,
                "created",
            ))
        }
        ["anonymous", size] => Ok((Mapping::anonymous(size.parse().expect("size"))?, "created")),
        // Unix hand-over to an unrelated process: listen on PATH, say
        // `listening`, hand a fresh unnamed mapping of SIZE bytes to the
        // first process that connects, with ACCESS.
        #[cfg(unix)]
        ["serve-mapping", path, size, acc] => {
            use filemap::os::unix::MappingExt;
            let m = Mapping::anonymous(size.parse().expect("size"))?;
            let listener = std::os::unix::net::UnixListener::bind(path).expect("bind");
            println!("listening");
            std::io::stdout().flush().unwrap();
            let (conn, _) = listener.accept().expect("accept");
            let _ = std::fs::remove_file(path);
            m.send_over(&conn, access(acc))?;
            Ok((m, "served"))
        }
        // ...and the process that connects and receives it.
        #[cfg(unix)]
        ["receive-mapping", path] => {
            let conn = std::os::unix::net::UnixStream::connect(path).expect("connect");
            Ok((filemap::os::unix::receive_mapping(&conn)?, "received"))
        }
        ["inherited"] => {
            let token = std::env::var("FILEMAP_TOKEN").expect("FILEMAP_TOKEN");
            // SAFETY: the token comes from our parent's `inherit`, and is used once.
            Ok((unsafe { Mapping::from_inherited(&token) }?, "inherited"))
        }
        // Adopt the token, then try to adopt it again: the second must be
        // refused (`InvalidToken`), or both would own (and close) one fd.
        ["inherited-twice"] => {
            let token = std::env::var("FILEMAP_TOKEN").expect("FILEMAP_TOKEN");
            // SAFETY: the token comes from our parent's `inherit`; the second
            // adoption is the behaviour under test, and must be refused.
            let m = unsafe { Mapping::from_inherited(&token) }?;
            // SAFETY: as above.
            match unsafe { Mapping::from_inherited(&token) } {
                Err(Error::InvalidToken { reason, .. }) if reason.contains("adopted already") => {
                    Ok((m, "inherited-once"))
                }
                other => panic!("a second adoption of one token: {other:?}"),
            }
        }
        other => panic!("bad setup {other:?}"),
    }
}

fn access(s: &str) -> Access {
    match s {
        "r" => Access::Read,
        "rw" => Access::ReadWrite,
        _ => panic!("access must be r or rw"),
    }
}

fn command(m: &Mapping, line: &str) -> Result<String, Error> {
    let mut it = line.split_whitespace();
    let cmd = it.next().unwrap_or("");
    Ok(match cmd {
        "write" => {
            let off = num(it.next());
            let data = unhex(it.next().unwrap_or(""));
            let v = m.view(off..off + data.len() as u64, ViewAccess::ReadWrite)?;
            v.write_at(0, &data)?;
            "ok".into()
        }
        "read" => {
            let off = num(it.next());
            let len = num(it.next());
            let v = m.view(off..off + len, ViewAccess::Read)?;
            format!("ok {}", hex(&v.to_vec()))
        }
        "cow" => {
            let off = num(it.next());
            let data = unhex(it.next().unwrap_or(""));
            let v = m.view(off..off + data.len() as u64, ViewAccess::CopyOnWrite)?;
            v.write_at(0, &data)?;
            format!("ok {}", hex(&v.to_vec()))
        }
        "add" => {
            let off = num(it.next());
            let n = num(it.next());
            let v = m.view(off..off + 8, ViewAccess::ReadWrite)?;
            format!("ok {}", v.atomic_u64(0)?.fetch_add(n, Ordering::AcqRel))
        }
        "len" => format!("ok {}", m.len()),
        // Reserve-then-commit: commit a range; how much is committed.
        "commit" => {
            let off = num(it.next());
            let len = num(it.next());
            m.commit(off..off + len)?;
            "ok".into()
        }
        "committed" => format!("ok {}", m.committed_len()?),
        // Large pages: the size asked for (0: none), and how many bytes of a
        // view of the whole object the OS maps with large pages once every
        // page has been touched.
        "large" => {
            let v = m.view(.., ViewAccess::Read)?;
            let mut sum = 0u64;
            for at in (0..v.len()).step_by(4096) {
                sum = sum.wrapping_add(u64::from(v.load_u32(at & !3)? & 1));
            }
            std::hint::black_box(sum);
            format!(
                "ok {} {}",
                m.large_page_size().unwrap_or(0),
                v.large_page_bytes()?
            )
        }
        // What backs it, and the file's path where known.
        "backing" => format!(
            "ok {} {}",
            m.backing().as_str(),
            m.file_path().unwrap_or("-")
        ),
        // Windows hand-over to an unrelated process: duplicate this mapping
        // into process PID; the reply is the token for it.
        #[cfg(windows)]
        "dup" => {
            use filemap::os::windows::MappingExt;
            let pid = num(it.next()) as u32;
            let acc = access(it.next().unwrap_or("r"));
            format!("ok {}", m.duplicate_into(pid, acc)?)
        }
        // ...and, in that process, adopt it: read its first 6 bytes and try
        // writing `from B` at offset 8.
        "adopt" => {
            let token = it.next().unwrap_or("");
            // SAFETY: the token was made for this process by `dup`, and is
            // adopted once.
            let got = unsafe { Mapping::from_inherited(token) }?;
            let mut first = [0u8; 6];
            got.view(0..6, ViewAccess::Read)?.read_at(0, &mut first)?;
            let wrote = match got.view(8..14, ViewAccess::ReadWrite) {
                Ok(v) => v.write_at(0, b"from B").map(|()| "ok")?,
                Err(Error::AccessDenied { .. }) => "denied",
                Err(e) => return Err(e),
            };
            format!("ok {} write={wrote}", hex(&first))
        }
        "follow" => {
            // Map the whole object at ADDR, read the pointer stored at its
            // offset 0, and read 8 bytes where it points.
            let at: usize = num(it.next()) as usize;
            let v = m.map_at(0, 0, ViewAccess::Read, at)?;
            let p = v.load_u64(0)? as usize;
            assert!(
                p >= at && p + 8 <= at + v.len(),
                "the pointer {p:#x} is not inside the view"
            );
            // SAFETY: `p..p + 8` lies inside the live view `v` (checked), and
            // the test that wrote it writes nothing more meanwhile.
            let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, 8) }.to_vec();
            format!("ok {}", hex(&bytes))
        }
        "flush" => {
            let off = num(it.next());
            let len = num(it.next());
            m.view(off..off + len, ViewAccess::ReadWrite)?
                .flush_durable()?;
            "ok".into()
        }
        other => panic!("unknown command {other:?}"),
    })
}

/// This process's CPU time so far (user and system).
#[cfg(unix)]
fn cpu_time() -> std::time::Duration {
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid start.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec as u64)
            + std::time::Duration::from_micros(t.tv_usec as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[cfg(not(unix))]
fn cpu_time() -> std::time::Duration {
    std::time::Duration::ZERO
}

/// How many threads this process has (Linux: /proc/self/status; 0 elsewhere).
fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Lets this process open as many descriptors as its hard limit allows
/// (a thousand channels hold a thousand descriptors).
#[cfg(unix)]
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

#[cfg(not(unix))]
fn raise_fd_limit() {}

#[cfg(unix)]
fn set_umask(octal: &str) {
    let m = u32::from_str_radix(octal, 8).expect("octal umask");
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(m as _));
}

#[cfg(not(unix))]
fn set_umask(_: &str) {
    panic!("--umask is for Unix only");
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // Before stdin is locked below: these roles read it themselves.
    if let Some(code) = hostile::role(&args) {
        std::process::exit(code);
    }
    #[cfg(unix)]
    if let Some(code) = roles::unix::role(&args) {
        std::process::exit(code);
    }
    if let Some(code) = roles::rpc::serve(&args) {
        std::process::exit(code);
    }
    if let ["inspect", name] = args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        // What `filemap::inspect` says of NAME, from this process (whose
        // user a test may have changed).
        match filemap::inspect::info(name) {
            Ok(o) => println!("state {}", o.state.as_str()),
            Err(e) => println!("{}", err_line(&e)),
        }
        return;
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout();
    while let Some(flag) = args.first().cloned() {
        if flag == "--wait-go" {
            args.remove(0);
            let go = lines.next();
            assert!(
                matches!(go, Some(Ok(ref l)) if l.trim() == "go"),
                "expected go"
            );
        } else if flag == "--umask" {
            set_umask(&args[1]);
            args.drain(..2);
        } else {
            break;
        }
    }
    if let Some(r) = roles::channel_role(&args) {
        match r {
            Ok(line) => {
                println!("{line}");
                // Stay until told to exit, so the end stays open meanwhile.
                for l in lines {
                    if l.map(|l| l.trim() == "exit").unwrap_or(true) {
                        println!("bye");
                        break;
                    }
                }
                return;
            }
            Err(e) => {
                println!("{}", err_line(&e));
                std::process::exit(1);
            }
        }
    }
    let m = match setup(&args) {
        Ok((m, how)) => {
            writeln!(out, "ok {how} {}", m.len()).unwrap();
            m
        }
        Err(e) => {
            writeln!(out, "{}", err_line(&e)).unwrap();
            std::process::exit(1);
        }
    };
    out.flush().unwrap();
    for line in lines {
        let line = line.expect("stdin");
        if line.trim() == "exit" {
            writeln!(out, "bye").unwrap();
            out.flush().unwrap();
            drop(m);
            return;
        }
        // `exit-at NANOS`: let go of the mapping at that instant (ns since
        // the Unix epoch, spinning for the last stretch so that two helpers
        // let go within microseconds of each other), then say `bye`.
        if let Some(at) = line.trim().strip_prefix("exit-at ") {
            let at: u128 = at.parse().expect("nanoseconds");
            let now = || {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_nanos()
            };
            while now() < at {
                std::hint::spin_loop();
            }
            drop(m);
            writeln!(out, "bye").unwrap();
            out.flush().unwrap();
            return;
        }
        let reply = command(&m, &line).unwrap_or_else(|e| err_line(&e));
        writeln!(out, "{reply}").unwrap();
        out.flush().unwrap();
    }
}
