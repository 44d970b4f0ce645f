//! Round trips awaited on a tokio runtime: filemap spsc through its
//! futures (`send_async`, `recv_async`) on a current-thread
//! ([`TransportKind::AsyncCurrent`], idle peer: [`TransportKind::AsyncIdle`]) or multi-thread
//! runtime ([`TransportKind::AsyncMulti`]), and, for comparison, tokio's own
//! `UnixStream` ([`TransportKind::TokioUnixSocket`], Unix).
//!
//! The parent awaits each round trip with `block_on` (its thread parks in
//! the runtime while it waits); the child runs the whole echo loop as a
//! task (on a worker thread for the multi-thread runtime).

use filemap::channel::spsc::{Receiver, Sender};

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};
use crate::TransportKind;

pub(crate) struct Async;

fn runtime(peer: TransportKind) -> Result<tokio::runtime::Runtime> {
    let rt = if peer == TransportKind::AsyncMulti {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    rt.map_err(|e| BenchError::library("tokio runtime", e))
}

pub(crate) enum Parent {
    Filemap {
        rt: tokio::runtime::Runtime,
        tx: Sender,
        rx: Receiver,
        buf: Vec<u8>,
    },
    #[cfg(unix)]
    Unix {
        rt: tokio::runtime::Runtime,
        listener: Option<tokio::net::UnixListener>,
        path: std::path::PathBuf,
        stream: Option<tokio::net::UnixStream>,
        buf: Vec<u8>,
    },
}

#[cfg(unix)]
fn sock_path(case: &Case) -> std::path::PathBuf {
    std::env::temp_dir().join(case.object("tsock"))
}

impl Transport for Async {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let rt = runtime(case.kind)?;
        #[cfg(unix)]
        if case.kind == TransportKind::TokioUnixSocket {
            let path = sock_path(case);
            let listener = {
                let _in = rt.enter();
                tokio::net::UnixListener::bind(&path)?
            };
            return Ok(Parent::Unix {
                rt,
                listener: Some(listener),
                path,
                stream: None,
                buf: vec![0; case.size],
            });
        }
        let cap = case.ring_capacity();
        Ok(Parent::Filemap {
            rt,
            tx: Sender::create(&case.object("ping"), cap)?,
            rx: Receiver::create(&case.object("pong"), cap)?,
            buf: vec![0; case.size],
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let rt = runtime(case.kind)?;
        let total = case.total;
        let size = case.size;
        #[cfg(unix)]
        if case.kind == TransportKind::TokioUnixSocket {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let path = sock_path(case);
            let mut s = rt.block_on(tokio::net::UnixStream::connect(&path))?;
            ready();
            return rt.block_on(async move {
                let mut buf = vec![0u8; size];
                for _ in 0..total {
                    s.read_exact(&mut buf).await?;
                    s.write_all(&buf).await?;
                }
                Ok(())
            });
        }
        let mut rx = Receiver::open(&case.object("ping"))?;
        let mut tx = Sender::open(&case.object("pong"))?;
        ready();
        let echo = async move {
            let mut buf = vec![0u8; size];
            for _ in 0..total {
                rx.recv_async().await?.read_at(0, &mut buf)?;
                tx.send_async(&buf).await?;
            }
            Ok::<(), filemap::Error>(())
        };
        rt.block_on(async move {
            tokio::spawn(echo)
                .await
                .map_err(|e| BenchError::library("tokio task", e))?
                .map_err(BenchError::from)
        })
    }
}

impl ParentSide for Parent {
    fn attach(&mut self, _child: &mut std::process::Child, _case: &Case) -> Result<()> {
        #[cfg(unix)]
        if let Parent::Unix {
            rt,
            listener,
            path,
            stream,
            ..
        } = self
        {
            let l = listener
                .take()
                .ok_or_else(|| BenchError::Unsupported("attached twice".into()))?;
            let (s, _) = rt.block_on(l.accept())?;
            let _ = std::fs::remove_file(&*path);
            *stream = Some(s);
        }
        Ok(())
    }

    fn round_trip(&mut self, _i: u64) -> Result<()> {
        match self {
            Parent::Filemap { rt, tx, rx, buf } => rt.block_on(async {
                tx.send_async(buf).await?;
                rx.recv_async().await?.read_at(0, buf)?;
                Ok(())
            }),
            #[cfg(unix)]
            Parent::Unix {
                rt, stream, buf, ..
            } => {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let s = stream
                    .as_mut()
                    .ok_or_else(|| BenchError::Unsupported("the socket is not connected".into()))?;
                rt.block_on(async {
                    s.write_all(buf).await?;
                    s.read_exact(buf).await?;
                    Ok(())
                })
            }
        }
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        Err(BenchError::Unsupported(
            "async rows are round trips only".into(),
        ))
    }
}
