//! A pipe each way: the child's stdin and stdout.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout};

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};

pub(crate) struct Pipe;

pub(crate) struct Parent {
    io: Option<(ChildStdin, ChildStdout)>,
    buf: Vec<u8>,
}

impl Transport for Pipe {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        Ok(Parent {
            io: None,
            buf: vec![0; case.size],
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let mut buf = vec![0u8; case.size];
        ready();
        let mut r = std::io::stdin().lock();
        let mut w = std::io::stdout().lock();
        for _ in 0..case.total {
            if case.latency() {
                r.read_exact(&mut buf)?;
            }
            w.write_all(&buf)?;
            if case.latency() {
                w.flush()?;
            }
        }
        w.flush()?;
        Ok(())
    }
}

impl ParentSide for Parent {
    fn attach(&mut self, child: &mut Child, _case: &Case) -> Result<()> {
        let missing = || BenchError::Unsupported("the peer has no piped stdin/stdout".into());
        let w = child.stdin.take().ok_or_else(missing)?;
        let r = child.stdout.take().ok_or_else(missing)?;
        self.io = Some((w, r));
        Ok(())
    }

    fn round_trip(&mut self, _i: u64) -> Result<()> {
        let (w, r) = self.io.as_mut().ok_or_else(not_attached)?;
        w.write_all(&self.buf)?;
        r.read_exact(&mut self.buf)?;
        Ok(())
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        let (_, r) = self.io.as_mut().ok_or_else(not_attached)?;
        r.read_exact(&mut self.buf)?;
        Ok(())
    }
}

#[cold]
fn not_attached() -> BenchError {
    BenchError::Unsupported("the pipes are not attached".into())
}
