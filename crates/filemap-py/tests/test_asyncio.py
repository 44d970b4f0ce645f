"""The awaitable forms (`await rx.recv_async()`, `await tx.send_async()`,
`await ev.wait_async()`) on asyncio's loop, with real processes on the
other side (fm-helper), cancellation, and no thread per awaiting call."""

import asyncio
import os
import signal
import subprocess
import sys

import pytest

import filemap
from test_filemap import helper_path, message, message_len, unique


def spawn(*args):
    p = subprocess.Popen(
        [helper_path(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    return p


def threads():
    """This process's OS threads (Rust's included, which Python does not list)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads line")


async def cancelled_receives(rx, tx, n):
    """`n` awaited receives, each cancelled at once after its message is
    sent: sometimes before the message came, sometimes after the Rust side
    took it. A cancelled one's message is got by the next receive."""
    got = []
    for i in range(n):
        task = asyncio.create_task(rx.recv_async())
        await asyncio.sleep(0)
        tx.send(i.to_bytes(4, "little"))
        task.cancel()
        try:
            got.append(await task)
        except asyncio.CancelledError:
            got.append(await asyncio.wait_for(rx.recv_async(), 10))
    return got


def test_awaited_round_trips_with_a_rust_process_every_message_checked():
    ping, pong = unique("aping"), unique("apong")
    tx = filemap.SpscSender.create(ping, 4096)
    rx = filemap.SpscReceiver.create(pong, 4096)
    echo = spawn("spsc-hold-echo", ping, pong, "300")
    assert echo.stdout.readline().strip() == "ready"

    async def main():
        for i in range(300):
            msg = i.to_bytes(4, "little") * (1 + i % 40)
            await tx.send_async(msg)
            assert await asyncio.wait_for(rx.recv_async(), 30) == msg

    asyncio.run(main())
    assert echo.stdout.readline().strip() == "echoed 300"
    echo.stdin.close()
    assert echo.wait(30) == 0


def test_a_full_ring_makes_send_async_wait_on_the_loop_not_block_it():
    name = unique("afull")
    tx = filemap.SpscSender.create(name, 4096)
    rx = filemap.SpscReceiver.open(name)
    msg = bytes(1000)
    while tx.try_send(msg):
        pass

    async def main():
        send = asyncio.create_task(tx.send_async(msg))
        ticks = 0
        # The loop keeps running other work while the send waits.
        while not send.done() and ticks < 5:
            await asyncio.sleep(0.01)
            ticks += 1
        assert not send.done() and ticks == 5
        while rx.try_recv() is not None:  # the receiver frees space in batches: drain
            pass
        await asyncio.wait_for(send, 10)

    asyncio.run(main())


def test_cancelling_an_awaited_receive_takes_no_message_and_keeps_the_receiver():
    name = unique("acancel")
    tx = filemap.SpscSender.create(name, 4096)
    rx = filemap.SpscReceiver.open(name)

    async def main():
        task = asyncio.create_task(rx.recv_async())
        await asyncio.sleep(0.05)
        assert not task.done()
        # While it waits, the receiver is the task's.
        with pytest.raises(ValueError, match="recv_async"):
            rx.try_recv()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # asyncio.wait_for cancels too.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(rx.recv_async(), 0.05)
        tx.send(b"after")
        return await asyncio.wait_for(rx.recv_async(), 10)

    assert asyncio.run(main()) == b"after"
    # Back for the blocking calls as well.
    tx.send(b"sync")
    assert rx.recv(timeout=5) == b"sync"


def test_a_killed_sender_is_peer_gone_in_the_awaiting_task():
    name = unique("agone")
    rx = filemap.SpscReceiver.create(name, 4096)
    holder = spawn("spsc-hold", name)
    assert holder.stdout.readline().strip() == "holding"

    async def main():
        task = asyncio.create_task(rx.recv_async())
        await asyncio.sleep(0.05)
        holder.send_signal(signal.SIGKILL)
        with pytest.raises(filemap.PeerGone):
            await asyncio.wait_for(task, 30)

    asyncio.run(main())
    holder.wait(30)


def test_many_awaiting_receivers_take_no_thread_each():
    names = [unique(f"amany{i}") for i in range(64)]
    txs = [filemap.SpscSender.create(n, 4096) for n in names]
    rxs = [filemap.SpscReceiver.open(n) for n in names]

    async def main():
        tasks = [asyncio.create_task(rx.recv_async()) for rx in rxs]
        await asyncio.sleep(0.3)  # every task past its short spin, asleep
        during = threads()
        for i, tx in enumerate(txs):
            tx.send(i.to_bytes(2, "little"))
        got = await asyncio.wait_for(asyncio.gather(*tasks), 30)
        return during, got

    before = threads()
    during, got = asyncio.run(main())
    assert got == [i.to_bytes(2, "little") for i in range(64)]
    # A small runtime (its workers, filemap's reactor), not 64 threads.
    assert during - before < 16, (before, during)


def test_wait_async_is_woken_by_another_process():
    name = unique("aevent")
    ev = filemap.Event.create(name)

    async def main():
        task = asyncio.create_task(ev.wait_async())
        await asyncio.sleep(0.05)
        assert not task.done()
        notifier = spawn("event-notify", name, "1")
        await asyncio.wait_for(task, 30)
        notifier.stdin.close()
        notifier.wait(30)

    asyncio.run(main())


def test_a_wake_that_comes_to_a_cancelled_wait_is_kept_for_the_next():
    name = unique("awake")
    ev = filemap.Event.create(name)
    other = filemap.Event.open(name)

    async def main():
        task = asyncio.create_task(ev.wait_async())
        await asyncio.sleep(0.05)
        other.notify_one()  # the awaiting future takes the permit...
        task.cancel()  # ...and its task is cancelled before it resumes
        try:
            await task
        except asyncio.CancelledError:
            pass
        # Either the task took the wake, or it is kept for the next wait:
        # never lost.
        return task.cancelled()

    if asyncio.run(main()):
        assert ev.wait(timeout=5)
    assert not ev.wait(timeout=0.05)  # and only one


def test_a_message_that_comes_to_a_cancelled_receive_is_kept_for_the_next():
    name = unique("amsg")
    tx = filemap.SpscSender.create(name, 4096)
    rx = filemap.SpscReceiver.open(name)

    async def main():
        got = []
        got += await cancelled_receives(rx, tx, 200)
        return got

    got = asyncio.run(main())
    assert got == [i.to_bytes(4, "little") for i in range(200)]


# ------------------------------------------------------- mpmc and broadcast


def test_mpmc_recv_async_in_several_tasks_takes_each_message_of_a_rust_sender_once():
    name = unique("ampmc")
    rx = filemap.MpmcReceiver.create(name, 64, 64)
    count = 2000
    sender = spawn("mpmc-send", name, "7", str(count))
    assert sender.stdout.readline().strip() == "ready"
    seen = []

    async def worker():
        while len(seen) < count:
            m = await rx.recv_async()
            ident = int.from_bytes(m[:4], "little")
            seq = int.from_bytes(m[4:12], "little")
            assert ident == 7
            payload = m[12:]
            assert len(payload) == message_len(seq ^ 7, 64 - 12), seq
            k = ((seq * 31) & (2**64 - 1)) ^ 7
            assert payload == bytes(((k * 31 + i * 7) % 251) for i in range(len(payload)))
            seen.append(seq)

    async def main():
        tasks = [asyncio.create_task(worker()) for _ in range(4)]
        while len(seen) < count:
            done = [t for t in tasks if t.done()]
            for t in done:
                t.result()  # a failed check fails the test
            await asyncio.wait(tasks, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        # The others wait for a message that will not come: cancel them.
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(asyncio.wait_for(main(), 60))
    assert sorted(seen) == list(range(count))
    assert rx.try_recv() is None  # nothing taken twice, nothing left behind
    assert sender.stdout.readline().strip() == f"sent {count}"
    sender.stdin.close()
    assert sender.wait(30) == 0


def test_a_message_that_comes_to_a_cancelled_mpmc_receive_is_kept_for_the_next():
    name = unique("ampmcc")
    rx = filemap.MpmcReceiver.create(name, 64, 64)
    tx = filemap.MpmcSender.open(name)

    async def main():
        got = []
        got += await cancelled_receives(rx, tx, 200)
        # Some waits past their tries, cancelled while asleep.
        for i in range(5):
            task = asyncio.create_task(rx.recv_async())
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        tx.send(b"last")
        got.append(await asyncio.wait_for(rx.recv_async(), 10))
        return got

    got = asyncio.run(main())
    assert got == [i.to_bytes(4, "little") for i in range(200)] + [b"last"]
    assert rx.try_recv() is None


def test_broadcast_recv_async_gets_every_message_of_a_rust_sender_in_order():
    name = unique("abcast")
    rx = filemap.BroadcastReceiver.create(name, 1024, 256)
    count = 500
    sender = spawn("bcast-send", name, str(count))
    assert sender.stdout.readline().strip() == "ready"

    async def main():
        out = []
        while len(out) < count:
            r = await asyncio.wait_for(rx.recv_async(), 30)
            out.append(r)
        return out

    got = asyncio.run(main())
    for n, r in enumerate(got):
        assert (r.seq, r.missed) == (n, 0)
        assert r.data == message(n, 256), n
    assert sender.stdout.readline().strip() == f"sent {count}"
    # Nothing more: the sender has closed its end.
    with pytest.raises(filemap.PeerGone):
        rx.try_recv()
    sender.stdin.close()
    assert sender.wait(30) == 0


def test_a_cancelled_broadcast_receive_loses_nothing_and_lends_the_receiver_meanwhile():
    name = unique("abcastc")
    rx = filemap.BroadcastReceiver.create(name, 256, 64)
    tx = filemap.BroadcastSender.open(name)

    async def main():
        waiting = asyncio.create_task(rx.recv_async())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        with pytest.raises(ValueError, match="recv_async"):
            rx.try_recv()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        got = []
        got += await cancelled_receives(rx, tx, 200)
        return got

    got = asyncio.run(main())
    assert [(r.seq, r.missed, r.data) for r in got] == [
        (i, 0, i.to_bytes(4, "little")) for i in range(200)
    ]
    assert rx.try_recv() is None
    tx.send(b"sync")
    assert rx.recv(timeout=5).data == b"sync"
