"""The Python half of the awaitable forms (`await rx.recv_async()`,
`await tx.send_async(data)`, `await ev.wait_async()`): coroutines, so that
`asyncio.create_task` takes them as `await` does.

A receive or send first tries for a short while, yielding to the loop
between tries (`asyncio.sleep(0)`: other tasks run), so that back-to-back
traffic never leaves the loop's thread; only then does it wait on filemap's
runtime, whose future completes on this loop. What such a wait took (a
message, a wake) is left in the receiver or event until the coroutine picks
it up, so a task cancelled in between loses nothing: the next call gets it.
"""

import asyncio
import time

# How long a receive or send keeps trying before it waits on filemap's
# runtime (a wake through it costs tens of microseconds).
SPIN_NS = 50_000


async def awaiting(future):
    return await future


async def done():
    return None


async def tries(rx):
    """Tries to receive for SPIN_NS, yielding to the loop between tries:
    the message, or None."""
    end = time.perf_counter_ns() + SPIN_NS
    while True:
        m = rx.try_recv()
        if m is not None:
            return m
        if time.perf_counter_ns() >= end:
            return None
        await asyncio.sleep(0)


async def receive(rx):
    m = await tries(rx)
    if m is not None:
        return m
    future = rx._recv_future()
    if future is not None:
        await future
    return rx._arrived()


async def receive_shared(rx):
    # An mpmc receiver: several awaited receives may run on it at once, and
    # another receive may take the message a wait left before this
    # coroutine does (`_arrived` is then None): it goes around again.
    while True:
        m = await receive(rx)
        if m is not None:
            return m


async def send(tx, data):
    end = time.perf_counter_ns() + SPIN_NS
    while time.perf_counter_ns() < end:
        if tx.try_send(data):
            return None
        await asyncio.sleep(0)
    future = tx._send_future(data)
    if future is not None:
        await future
    return None


async def woken(future, event):
    if future is not None:
        await future
    event._woken()
