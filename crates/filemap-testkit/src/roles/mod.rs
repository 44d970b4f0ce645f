//! The roles that take the whole command line (as opposed to a SETUP and
//! commands, `main.rs`), one module per family, each with its `role()`:
//! `fm-helper ROLE ARGS...` runs the first family whose `role()` knows ROLE,
//! and says its result in one line (or `err KIND message`).

mod queues;
pub(crate) mod rpc;
mod spsc;
mod sync;
#[cfg(unix)]
pub(crate) mod unix;
mod waiting;

pub(crate) use std::io::Write;

#[allow(unused_imports)]
use crate::{cpu_time, raise_fd_limit, thread_count};
pub(crate) use filemap::channel::spsc::{Receiver, Sender};
pub(crate) use filemap::sync::LatestWriter;
pub(crate) use filemap::Error;
pub(crate) use filemap_testkit::{message_check, message_fill, message_len};

/// Why a family did not run a role.
pub(crate) enum RoleError {
    /// Not one of its roles.
    NotMine,
    /// One of its roles, which failed.
    Failed(Error),
}

impl From<Error> for RoleError {
    fn from(e: Error) -> Self {
        RoleError::Failed(e)
    }
}

impl RoleError {
    fn into_option(self) -> Option<Result<String, Error>> {
        match self {
            RoleError::NotMine => None,
            RoleError::Failed(e) => Some(Err(e)),
        }
    }
}

/// `create=CAP` among the arguments.
pub(crate) fn cap(rest: &[&str]) -> Option<u64> {
    rest.iter()
        .find_map(|r| r.strip_prefix("create="))
        .map(|c| c.parse::<u64>().expect("capacity"))
}

/// Prints `line` at once.
pub(crate) fn say(line: &str) {
    println!("{line}");
    std::io::stdout().flush().unwrap();
}

/// The role named by `args[0]`, from whichever family has it.
pub(crate) fn channel_role(args: &[String]) -> Option<Result<String, Error>> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    spsc::role(&a)
        .or_else(|| sync::role(&a))
        .or_else(|| queues::role(&a))
        .or_else(|| waiting::role(&a))
        .or_else(|| rpc::role(&a))
}
