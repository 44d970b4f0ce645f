//! The floor: one cache line per direction in a shared mapping. Spinning
//! ([`TransportKind::FloorSpin`]), or waiting in the kernel with futex wait/wake
//! ([`TransportKind::FloorFutex`], and [`TransportKind::FloorFutexIdle`] with an idle gap
//! before each round trip), Linux only for the futex rows.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use filemap::{Access, Mapping, View, ViewAccess};

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};
use crate::TransportKind;

pub(crate) struct Floor;

pub(crate) struct Parent {
    _m: Mapping,
    v: View,
    peer: TransportKind,
}

fn words(m: &Mapping) -> Result<View> {
    Ok(m.view(.., ViewAccess::ReadWrite)?)
}

impl Transport for Floor {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let m = Mapping::create(&case.name, 4096)?;
        Ok(Parent {
            v: words(&m)?,
            _m: m,
            peer: case.kind,
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let m = Mapping::open(&case.name, Access::ReadWrite)?;
        let v = words(&m)?;
        ready();
        if case.kind == TransportKind::FloorSpin {
            let (a, b): (&AtomicU64, &AtomicU64) = (v.atomic_u64(0)?, v.atomic_u64(64)?);
            for i in 1..=case.total {
                while a.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                b.store(i, Ordering::Release);
            }
        } else {
            let (a, b): (&AtomicU32, &AtomicU32) = (v.atomic_u32(0)?, v.atomic_u32(64)?);
            for i in 1..=case.total as u32 {
                futex::wait_until(a, i);
                b.store(i, Ordering::Release);
                futex::wake(b);
            }
        }
        Ok(())
    }
}

impl ParentSide for Parent {
    #[inline]
    fn round_trip(&mut self, i: u64) -> Result<()> {
        let i = i + 1;
        if self.peer == TransportKind::FloorSpin {
            let (a, b) = (self.v.atomic_u64(0)?, self.v.atomic_u64(64)?);
            a.store(i, Ordering::Release);
            while b.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
        } else {
            let (a, b) = (self.v.atomic_u32(0)?, self.v.atomic_u32(64)?);
            a.store(i as u32, Ordering::Release);
            futex::wake(a);
            futex::wait_until(b, i as u32);
        }
        Ok(())
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        Err(BenchError::Unsupported(
            "the floor has round trips only".into(),
        ))
    }
}

#[cfg(target_os = "linux")]
mod futex {
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Waits (in the kernel) until `w == v`.
    pub fn wait_until(w: &AtomicU32, v: u32) {
        loop {
            let cur = w.load(Ordering::Acquire);
            if cur == v {
                return;
            }
            let _ =
                rustix::thread::futex::wait(w, rustix::thread::futex::Flags::empty(), cur, None);
        }
    }

    pub fn wake(w: &AtomicU32) {
        let _ = rustix::thread::futex::wake(w, rustix::thread::futex::Flags::empty(), 1);
    }
}

#[cfg(not(target_os = "linux"))]
mod futex {
    use std::sync::atomic::{AtomicU32, Ordering};

    /// No futex here (the futex rows are not offered off Linux); spins.
    pub fn wait_until(w: &AtomicU32, v: u32) {
        while w.load(Ordering::Acquire) != v {
            std::hint::spin_loop();
        }
    }

    pub fn wake(_w: &AtomicU32) {}
}
