//! `filemap._filemap`: the native half of the `filemap` Python package
//! (the Python half, in `python/filemap`, re-exports it and defines the
//! exception classes). Every blocking call releases the GIL and wakes
//! every 100 ms to let Python run its signal handlers, so Ctrl-C
//! interrupts it with `KeyboardInterrupt`.

use pyo3::prelude::*;

mod blocking;
mod buffers;
mod channels;
mod errors;
mod lease;
mod mapping;
mod rpc;
mod sync;

pub(crate) use blocking::*;
pub(crate) use buffers::*;
pub(crate) use channels::*;
pub(crate) use mapping::*;
pub(crate) use rpc::*;
pub(crate) use sync::*;

#[pymodule]
fn _filemap(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Lock>()?;
    m.add_class::<Message>()?;
    m.add_class::<LatestWriter>()?;
    m.add_class::<LatestReader>()?;
    m.add_class::<Mapping>()?;
    m.add_class::<Inheritable>()?;
    m.add_class::<View>()?;
    m.add_class::<SpscSender>()?;
    m.add_class::<SpscReceiver>()?;
    m.add_class::<MpmcSender>()?;
    m.add_class::<MpmcReceiver>()?;
    m.add_class::<BroadcastSender>()?;
    m.add_class::<BroadcastReceiver>()?;
    m.add_class::<Event>()?;
    m.add_class::<RpcServer>()?;
    m.add_class::<RpcRequest>()?;
    m.add_class::<RpcClient>()?;
    Ok(())
}
