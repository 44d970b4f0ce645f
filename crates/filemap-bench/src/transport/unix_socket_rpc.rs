//! Request-response over a Unix domain stream socket, as a program would
//! write it without filemap: each message framed as `[id u64][length
//! u32][payload]`, the server answering each request with a response of
//! the same size and id, the client checking the id. Reads are buffered
//! (one system call per message when it has arrived whole).

use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Child;

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};

pub(crate) struct UnixSocketRpc;

pub(crate) struct Parent {
    listener: UnixListener,
    path: PathBuf,
    conn: Option<(BufReader<UnixStream>, UnixStream)>,
    out: Vec<u8>,
    payload: Vec<u8>,
}

fn path(case: &Case) -> PathBuf {
    std::env::temp_dir().join(case.object("rpc-sock"))
}

/// Reads one frame: its id, and its payload into `payload`.
fn read_frame(r: &mut impl Read, payload: &mut Vec<u8>) -> Result<u64> {
    let mut head = [0u8; 12];
    r.read_exact(&mut head)?;
    let id = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
    payload.resize(len, 0);
    r.read_exact(payload)?;
    Ok(id)
}

fn frame(out: &mut Vec<u8>, id: u64, payload: &[u8]) {
    out.clear();
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

impl Transport for UnixSocketRpc {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let path = path(case);
        Ok(Parent {
            listener: UnixListener::bind(&path)?,
            path,
            conn: None,
            out: Vec::with_capacity(case.size + 12),
            payload: vec![0x5a; case.size],
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let s = UnixStream::connect(path(case))?;
        let mut r = BufReader::with_capacity(case.size + 4096, s.try_clone()?);
        let mut w = s;
        let (mut payload, mut out) = (Vec::new(), Vec::new());
        ready();
        for _ in 0..case.total {
            let id = read_frame(&mut r, &mut payload)?;
            frame(&mut out, id, &payload);
            w.write_all(&out)?;
        }
        Ok(())
    }
}

impl ParentSide for Parent {
    fn attach(&mut self, _child: &mut Child, case: &Case) -> Result<()> {
        let (s, _) = self.listener.accept()?;
        let _ = std::fs::remove_file(&self.path);
        let r = BufReader::with_capacity(case.size + 4096, s.try_clone()?);
        self.conn = Some((r, s));
        Ok(())
    }

    fn round_trip(&mut self, i: u64) -> Result<()> {
        let (r, w) = self
            .conn
            .as_mut()
            .ok_or_else(|| BenchError::Unsupported("the socket is not connected".into()))?;
        frame(&mut self.out, i, &self.payload);
        w.write_all(&self.out)?;
        let id = read_frame(r, &mut self.payload)?;
        if id != i {
            return Err(BenchError::Unsupported(format!(
                "the response to request {i} came with id {id}"
            )));
        }
        Ok(())
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        Err(BenchError::Unsupported(
            "request-response has no streaming row".into(),
        ))
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
