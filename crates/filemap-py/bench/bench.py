"""Python IPC side by side, in one run: filemap's spsc channel against
multiprocessing.Pipe, multiprocessing.Queue, and SharedMemory with an Event
hand-off. Two processes each (multiprocessing "spawn"); 64-byte round trips
(median of per-round medians) and 1 MiB one-way throughput. Then asyncio:
filemap's awaitable forms (`await tx.send_async`, `await rx.recv_async`)
against asyncio streams over a Unix socket, 64-byte round trips from a
coroutine on the running loop (the peer echoes, blocking).

    python crates/filemap-py/bench/bench.py [--rounds 3]
"""

import argparse
import asyncio
import multiprocessing as mp
import socket
import os
import statistics
import time
import uuid
from multiprocessing import shared_memory

import filemap

CTX = mp.get_context("spawn")
SMALL, BIG = 64, 1 << 20


def uniq(tag):
    return f"fmbench-{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------ the peers


def fm_echo(ping, pong, n):
    rx, tx = filemap.SpscReceiver.open(ping), filemap.SpscSender.open(pong)
    buf = bytearray(SMALL)
    for _ in range(n):
        k = rx.recv_into(buf)
        tx.send(memoryview(buf)[:k])


def fm_stream(name, n):
    tx = filemap.SpscSender.open(name)
    data = bytes(BIG)
    for _ in range(n):
        tx.send(data)


def pipe_echo(conn, n):
    buf = bytearray(SMALL)
    for _ in range(n):
        k = conn.recv_bytes_into(buf)
        conn.send_bytes(buf, 0, k)


def pipe_stream(conn, n):
    data = bytes(BIG)
    for _ in range(n):
        conn.send_bytes(data)


def queue_echo(qin, qout, n):
    for _ in range(n):
        qout.put(qin.get())


def queue_stream(q, n):
    data = bytes(BIG)
    for _ in range(n):
        q.put(data)


def shm_echo(name, ping, pong, n):
    shm = shared_memory.SharedMemory(name)
    for _ in range(n):
        ping.wait()
        ping.clear()
        shm.buf[SMALL : 2 * SMALL] = shm.buf[:SMALL]
        pong.set()
    shm.close()


def shm_stream(name, full, empty, n):
    shm = shared_memory.SharedMemory(name)
    data = bytes(BIG)
    for _ in range(n):
        empty.wait()
        empty.clear()
        shm.buf[:BIG] = data
        full.set()
    shm.close()


# ------------------------------------------------------------ the cases


def unix_echo(path, n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    buf = bytearray(SMALL)
    for _ in range(n):
        got = 0
        while got < SMALL:
            got += s.recv_into(memoryview(buf)[got:])
        s.sendall(buf)
    s.close()


ASYNC_KINDS = ["filemap spsc, asyncio", "asyncio Unix stream"]


async def _async_trips(kind, n):
    msg = bytes(range(SMALL))
    times = []
    if kind == "filemap spsc, asyncio":
        ping, pong = uniq("aping"), uniq("apong")
        tx, rx = filemap.SpscSender.create(ping, 1 << 16), filemap.SpscReceiver.create(pong, 1 << 16)
        p = CTX.Process(target=fm_echo, args=(ping, pong, n))
        p.start()
        for _ in range(n):
            t = time.perf_counter()
            await tx.send_async(msg)
            await rx.recv_async()
            times.append(time.perf_counter() - t)
    else:
        path = f"/tmp/{uniq('sock')}"
        accepted = asyncio.get_running_loop().create_future()

        async def on_conn(r, w):
            accepted.set_result((r, w))

        server = await asyncio.start_unix_server(on_conn, path)
        p = CTX.Process(target=unix_echo, args=(path, n))
        p.start()
        reader, writer = await accepted
        for _ in range(n):
            t = time.perf_counter()
            writer.write(msg)
            await writer.drain()
            await reader.readexactly(SMALL)
            times.append(time.perf_counter() - t)
        writer.close()
        server.close()
        os.unlink(path)
    p.join()
    return times


def async_round_trips(kind, n):
    """As round_trips, the parent's side a coroutine on an asyncio loop."""
    return asyncio.run(_async_trips(kind, 2 * n))[n:]


def round_trips(kind, n):
    """Per-round-trip times (seconds) of n 64-byte round trips, after as
    many untimed ones again as a warm-up (the peer process starting, idle
    vCPUs waking: the first few hundred trips of a fresh pair are slow)."""
    msg = bytes(range(SMALL))
    times = []
    warm = n
    n += warm
    if kind == "filemap spsc":
        ping, pong = uniq("ping"), uniq("pong")
        tx, rx = filemap.SpscSender.create(ping, 1 << 16), filemap.SpscReceiver.create(pong, 1 << 16)
        p = CTX.Process(target=fm_echo, args=(ping, pong, n))
        p.start()
        buf = bytearray(SMALL)
        for _ in range(n):
            t = time.perf_counter()
            tx.send(msg)
            rx.recv_into(buf)
            times.append(time.perf_counter() - t)
    elif kind == "multiprocessing.Pipe":
        a, b = CTX.Pipe()
        p = CTX.Process(target=pipe_echo, args=(b, n))
        p.start()
        buf = bytearray(SMALL)
        for _ in range(n):
            t = time.perf_counter()
            a.send_bytes(msg)
            a.recv_bytes_into(buf)
            times.append(time.perf_counter() - t)
    elif kind == "multiprocessing.Queue":
        qin, qout = CTX.Queue(), CTX.Queue()
        p = CTX.Process(target=queue_echo, args=(qin, qout, n))
        p.start()
        for _ in range(n):
            t = time.perf_counter()
            qin.put(msg)
            qout.get()
            times.append(time.perf_counter() - t)
    else:  # SharedMemory + Event hand-off
        shm = shared_memory.SharedMemory(create=True, size=2 * SMALL)
        ping, pong = CTX.Event(), CTX.Event()
        p = CTX.Process(target=shm_echo, args=(shm.name, ping, pong, n))
        p.start()
        for _ in range(n):
            t = time.perf_counter()
            shm.buf[:SMALL] = msg
            ping.set()
            pong.wait()
            pong.clear()
            bytes(shm.buf[SMALL : 2 * SMALL])
            times.append(time.perf_counter() - t)
        shm.close()
        shm.unlink()
    p.join()
    return times[warm:]


def stream(kind, n):
    """MB/s of n one-way 1 MiB messages (the receiver copies each out)."""
    buf = bytearray(BIG)
    if kind == "filemap spsc":
        name = uniq("stream")
        rx = filemap.SpscReceiver.create(name, 4 * BIG + 64)
        p = CTX.Process(target=fm_stream, args=(name, n))
        p.start()
        rx.recv_into(buf)  # the first message: the peer is up
        t = time.perf_counter()
        for _ in range(n - 1):
            rx.recv_into(buf)
    elif kind == "multiprocessing.Pipe":
        a, b = CTX.Pipe(duplex=False)
        p = CTX.Process(target=pipe_stream, args=(b, n))
        p.start()
        a.recv_bytes_into(buf)
        t = time.perf_counter()
        for _ in range(n - 1):
            a.recv_bytes_into(buf)
    elif kind == "multiprocessing.Queue":
        q = CTX.Queue()
        p = CTX.Process(target=queue_stream, args=(q, n))
        p.start()
        q.get()
        t = time.perf_counter()
        for _ in range(n - 1):
            buf[:] = q.get()
    else:
        shm = shared_memory.SharedMemory(create=True, size=BIG)
        full, empty = CTX.Event(), CTX.Event()
        empty.set()
        p = CTX.Process(target=shm_stream, args=(shm.name, full, empty, n))
        p.start()
        t = None
        for i in range(n):
            full.wait()
            full.clear()
            buf[:] = shm.buf[:BIG]
            empty.set()
            if i == 0:
                t = time.perf_counter()
        shm.close()
        shm.unlink()
    secs = time.perf_counter() - t
    p.join()
    return (n - 1) * BIG / secs / 1e6


KINDS = ["filemap spsc", "multiprocessing.Pipe", "multiprocessing.Queue", "SharedMemory + Event"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trips", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=500)
    a = ap.parse_args()
    rt = {k: [] for k in KINDS}
    tp = {k: [] for k in KINDS}
    for _ in range(a.rounds):
        for k in KINDS:  # interleaved, so that a noisy moment hits every kind
            rt[k].append(statistics.median(round_trips(k, a.trips)))
            tp[k].append(stream(k, a.messages))
    pipe_rt = statistics.median(rt["multiprocessing.Pipe"])
    pipe_tp = statistics.median(tp["multiprocessing.Pipe"])
    print(f"Python {'.'.join(map(str, os.sys.version_info[:3]))}, {a.rounds} rounds (medians)")
    print(f"{'transport':<24} {'64 B round trip':>16} {'vs Pipe':>8} {'1 MiB stream':>14} {'vs Pipe':>8}")
    for k in KINDS:
        r, s = statistics.median(rt[k]), statistics.median(tp[k])
        print(f"{k:<24} {r * 1e6:>13.1f} us {pipe_rt / r:>7.1f}x {s:>9.0f} MB/s {s / pipe_tp:>7.1f}x")
    art = {k: [] for k in ASYNC_KINDS}
    for _ in range(a.rounds):
        for k in ASYNC_KINDS:
            art[k].append(statistics.median(async_round_trips(k, a.trips)))
    sock = statistics.median(art["asyncio Unix stream"])
    print()
    print(f"{'asyncio (awaited on the loop)':<30} {'64 B round trip':>16} {'vs Unix stream':>15}")
    for k in ASYNC_KINDS:
        r = statistics.median(art[k])
        print(f"{k:<30} {r * 1e6:>13.1f} us {sock / r:>14.1f}x")


if __name__ == "__main__":
    main()
