//! A Unix domain stream socket: the parent listens on a path in the
//! temporary folder, the child connects.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Child;

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};

pub(crate) struct UnixSocket;

pub(crate) struct Parent {
    listener: UnixListener,
    path: PathBuf,
    stream: Option<UnixStream>,
    buf: Vec<u8>,
}

fn path(case: &Case) -> PathBuf {
    std::env::temp_dir().join(case.object("sock"))
}

impl Transport for UnixSocket {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let path = path(case);
        Ok(Parent {
            listener: UnixListener::bind(&path)?,
            path,
            stream: None,
            buf: vec![0; case.size],
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let mut buf = vec![0u8; case.size];
        let mut s = UnixStream::connect(path(case))?;
        ready();
        for _ in 0..case.total {
            if case.latency() {
                s.read_exact(&mut buf)?;
            }
            s.write_all(&buf)?;
        }
        Ok(())
    }
}

impl ParentSide for Parent {
    fn attach(&mut self, _child: &mut Child, _case: &Case) -> Result<()> {
        let (s, _) = self.listener.accept()?;
        let _ = std::fs::remove_file(&self.path);
        self.stream = Some(s);
        Ok(())
    }

    fn round_trip(&mut self, _i: u64) -> Result<()> {
        let s = self.stream.as_mut().ok_or_else(not_attached)?;
        s.write_all(&self.buf)?;
        s.read_exact(&mut self.buf)?;
        Ok(())
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        let s = self.stream.as_mut().ok_or_else(not_attached)?;
        s.read_exact(&mut self.buf)?;
        Ok(())
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cold]
fn not_attached() -> BenchError {
    BenchError::Unsupported("the socket is not connected".into())
}
