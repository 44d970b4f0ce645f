"""filemap from Python, with real processes on the other side: the
multiprocessing "spawn" context, subprocess, and filemap's Rust test helper
(fm-helper, built by `cargo build -p filemap-testkit`) for Rust <-> Python."""

import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import numpy as np
import pytest

import filemap

SPAWN = multiprocessing.get_context("spawn")
REPO = pathlib.Path(__file__).resolve().parents[3]


def unique(tag):
    return f"fmpy-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def helper_path():
    exe = "fm-helper.exe" if os.name == "nt" else "fm-helper"
    path = pathlib.Path(os.environ.get("FM_HELPER", REPO / "target" / "debug" / exe))
    if not path.exists():
        pytest.skip(f"{path} is not built (cargo build -p filemap-testkit)")
    return str(path)


# The numbered test messages of filemap-testkit (message_len/message_fill),
# so that a Rust process and a Python one can check each other's streams.
def message_len(n, max_len):
    h = ((n * 0x9E3779B97F4A7C15) & (2**64 - 1)) >> 40
    if n % 1000 == 999:
        return max_len
    if n % 1000 == 0:
        return 0
    return h % min(97, max_len + 1)


def message(n, max_len):
    return bytes(((n * 31 + i * 7) % 251) for i in range(message_len(n, max_len)))


# ---------------------------------------------------------------- mappings


def _child_writes_through_numpy(name):
    m = filemap.Mapping.open(name)
    arr = np.frombuffer(m.view(), dtype=np.int32)
    arr[10] = 42
    arr[11] = -7
    del arr


def test_numpy_is_zero_copy_across_processes():
    name = unique("np")
    with filemap.Mapping.create(name, 4096) as m:
        v = m.view()
        arr = np.frombuffer(v, dtype=np.int32)
        assert arr.flags.writeable
        p = SPAWN.Process(target=_child_writes_through_numpy, args=(name,))
        p.start()
        p.join(30)
        assert p.exitcode == 0
        # The child wrote through its own array; ours sees it: one memory.
        assert arr[10] == 42 and arr[11] == -7
        assert v.read_at(40, 4) == (42).to_bytes(4, sys.byteorder)
        del arr


def test_a_read_only_view_is_read_only_in_numpy_and_memoryview():
    name = unique("ro")
    with filemap.Mapping.create(name, 4096) as m:
        m.view().write_at(0, b"kept")
        ro = filemap.Mapping.open(name, access="r")
        v = ro.view()
        assert v.readonly
        arr = np.frombuffer(v, dtype=np.uint8)
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 1
        mv = memoryview(v)
        assert mv.readonly and bytes(mv[:4]) == b"kept"
        with pytest.raises(TypeError):
            mv[0] = 1
        mv.release()
        with pytest.raises(filemap.AccessDenied):
            v.write_at(0, b"x")
        with pytest.raises(filemap.AccessDenied):
            ro.view(access="rw")
        del arr


def test_closing_an_exported_view_raises_buffer_error():
    with filemap.Mapping.anonymous(4096) as m:
        v = m.view()
        mv = memoryview(v)
        with pytest.raises(BufferError):
            v.close()
        mv[0] = 9  # still mapped
        mv.release()
        v.close()
        with pytest.raises(ValueError):
            memoryview(v)


def test_copy_on_write_views_stay_private():
    with filemap.Mapping.anonymous(4096) as m:
        cow = m.view(access="cow")
        cow.write_at(0, b"mine")
        assert m.view().read_at(0, 4) == b"\0\0\0\0"


def test_the_name_goes_with_its_last_holder_even_killed():
    name = unique("kill")
    code = textwrap.dedent(
        f"""
        import sys, time, filemap
        m = filemap.Mapping.create({name!r}, 4096)
        m.view().write_at(0, b"alive")
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        assert filemap.Mapping.open(name, "r").view().read_at(0, 5) == b"alive"
        p.kill()
        p.wait(30)
        with pytest.raises(filemap.NotFound) as e:
            filemap.Mapping.open(name)
        assert name in str(e.value)
        assert isinstance(e.value, FileNotFoundError)
    finally:
        p.kill()


def test_create_or_open_and_exceptions():
    name = unique("co")
    m, created = filemap.Mapping.create_or_open(name, 8192)
    assert created and len(m) == 8192 and m.name == name and m.backing == "memory"
    again, created = filemap.Mapping.create_or_open(name, 1)
    assert not created and len(again) == 8192
    with pytest.raises(filemap.AlreadyExists) as e:
        filemap.Mapping.create(name, 1)
    assert isinstance(e.value, FileExistsError) and name in str(e.value)
    with pytest.raises(filemap.InvalidArgument):
        filemap.Mapping.create("bad/name", 1)
    with pytest.raises(filemap.InvalidArgument):
        m.view(8000, 1000)
    with pytest.raises(ValueError):
        filemap.Mapping.open(name, access="write")
    m.close()
    with pytest.raises(ValueError):
        len(m)


def test_a_child_inherits_an_unnamed_mapping():
    m = filemap.Mapping.anonymous(4096)
    m.view().write_at(0, b"parent")
    h = m.inherit("rw")
    code = textwrap.dedent(
        """
        import os, filemap
        m = filemap.Mapping.from_inherited(os.environ["FILEMAP_TOKEN"])
        print(m.view().read_at(0, 6).decode(), flush=True)
        m.view().write_at(8, b"child")
        # A token is adopted once: a second adoption would own (and close)
        # the same descriptor twice.
        try:
            filemap.Mapping.from_inherited(os.environ["FILEMAP_TOKEN"])
            raise SystemExit("adopted twice")
        except filemap.InvalidArgument as e:
            assert "adopted already" in str(e), e
        m.view().write_at(16, b"still")
        """
    )
    env = dict(os.environ, FILEMAP_TOKEN=h.token)
    kw = {"pass_fds": [h.handle]} if os.name != "nt" else {"close_fds": False}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30, **kw
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "parent"
    assert m.view().read_at(8, 5) == b"child"
    assert m.view().read_at(16, 5) == b"still"


def test_python_shared_memory_attaches_to_a_filemap_mapping_and_back():
    from multiprocessing import resource_tracker, shared_memory

    name = unique("interop")
    with filemap.Mapping.create(name, 4096) as m:
        m.view().write_at(0, b"from filemap")
        shm = shared_memory.SharedMemory(name)
        # Python 3.11 registers even an attach with its resource tracker,
        # which would unlink the object when this process exits.
        resource_tracker.unregister(shm._name, "shared_memory")
        assert bytes(shm.buf[:12]) == b"from filemap"
        shm.buf[20:23] = b"py!"
        assert m.view().read_at(20, 3) == b"py!"
        shm.close()
    other = unique("interop2")
    shm = shared_memory.SharedMemory(other, create=True, size=4096)
    try:
        shm.buf[:6] = b"python"
        fm = filemap.Mapping.open(other)
        assert fm.view().read_at(0, 6) == b"python"
        fm.close()
    finally:
        shm.close()
        shm.unlink()


# ---------------------------------------------------------------- channels


def _spsc_sender(name, count):
    tx = filemap.SpscSender.open(name)
    for n in range(count):
        tx.send(message(n, 200))


def test_spsc_across_processes_every_message_checked():
    name = unique("spsc")
    rx = filemap.SpscReceiver.create(name, 4096)
    p = SPAWN.Process(target=_spsc_sender, args=(name, 5000))
    p.start()
    for n in range(5000):
        assert rx.recv(timeout=30) == message(n, 200), n
    p.join(30)
    assert p.exitcode == 0
    with pytest.raises(filemap.PeerGone) as e:
        rx.recv(timeout=5)
    assert isinstance(e.value, BrokenPipeError)


def test_recv_into_does_not_allocate_and_keeps_a_message_too_long():
    name = unique("into")
    rx = filemap.SpscReceiver.create(name, 4096)
    tx = filemap.SpscSender.open(name)
    tx.send(b"x" * 100)
    tx.send(b"short")
    small = bytearray(10)
    with pytest.raises(ValueError):
        rx.recv_into(small, timeout=1)
    big = np.zeros(200, dtype=np.uint8)
    assert rx.recv_into(big, timeout=1) == 100 and bytes(big[:100]) == b"x" * 100
    assert rx.recv_into(small, timeout=1) == 5 and bytes(small[:5]) == b"short"
    assert rx.try_recv() is None
    with pytest.raises(filemap.Timeout) as e:
        rx.recv(timeout=0.05)
    assert isinstance(e.value, TimeoutError) and name in str(e.value)


def _mpmc_sender(name, ident, count):
    tx = filemap.MpmcSender.open(name)
    for n in range(count):
        tx.send(ident.to_bytes(4, "little") + n.to_bytes(8, "little"))


def test_mpmc_from_two_processes():
    name = unique("mpmc")
    rx = filemap.MpmcReceiver.create(name, 64, 64)
    ps = [SPAWN.Process(target=_mpmc_sender, args=(name, i, 2000)) for i in range(2)]
    for p in ps:
        p.start()
    last = {0: -1, 1: -1}
    for _ in range(4000):
        m = rx.recv(timeout=30)
        ident, n = int.from_bytes(m[:4], "little"), int.from_bytes(m[4:12], "little")
        assert n == last[ident] + 1
        last[ident] = n
    for p in ps:
        p.join(30)
        assert p.exitcode == 0


def _broadcaster(name, count):
    tx = filemap.BroadcastSender.open(name)
    for n in range(count):
        tx.send(message(n, 128))


def test_broadcast_counts_what_it_missed():
    name = unique("bcast")
    rx = filemap.BroadcastReceiver.create(name, 16, 128)
    p = SPAWN.Process(target=_broadcaster, args=(name, 3000))
    p.start()
    n = 0
    while n < 3000:
        try:
            r = rx.recv(timeout=30)
        except filemap.PeerGone:
            break
        # A named tuple: by name, or unpacked as before.
        assert isinstance(r, filemap.Received)
        data, seq, missed = r
        assert (r.data, r.seq, r.missed) == (data, seq, missed)
        n += missed
        assert seq == n and data == message(n, 128)
        n += 1
    p.join(30)


def _event_notifier(name):
    filemap.Event.open(name).notify_one()


def test_events_across_processes():
    name = unique("ev")
    ev = filemap.Event.create(name)
    assert ev.wait(timeout=0.05) is False
    p = SPAWN.Process(target=_event_notifier, args=(name,))
    p.start()
    assert ev.wait(timeout=30) is True
    p.join(30)


def test_rust_and_python_share_an_spsc_channel_both_ways():
    helper = helper_path()
    # Rust sends, Python receives.
    a = unique("r2p")
    rx = filemap.SpscReceiver.create(a, 4096)
    rust = subprocess.Popen([helper, "spsc-send", a, "3000"], stdout=subprocess.PIPE, text=True)
    assert rust.stdout.readline().strip() == "ready"
    max_len = 4096 // 2 - 8
    for n in range(3000):
        assert rx.recv(timeout=30) == message(n, max_len), n
    assert rust.wait(30) == 0
    # Python sends, Rust receives and checks every message.
    b = unique("p2r")
    tx = filemap.SpscSender.create(b, 4096)
    rust = subprocess.Popen(
        [helper, "spsc-recv", b, "3000"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert rust.stdout.readline().strip() == "ready"
    assert tx.max_message == max_len
    for n in range(3000):
        tx.send(message(n, max_len), timeout=30)
    assert rust.stdout.readline().strip() == "received 3000"
    rust.stdin.close()
    assert rust.wait(30) == 0


# ------------------------------------------------------ GIL and signals


def test_a_blocked_recv_releases_the_gil():
    name = unique("gil")
    rx = filemap.SpscReceiver.create(name, 4096)
    tx = filemap.SpscSender.open(name)
    got = []
    t = threading.Thread(target=lambda: got.append(rx.recv(timeout=30)))
    t.start()
    # This thread runs Python while the other waits in recv.
    count, end = 0, time.monotonic() + 0.3
    while time.monotonic() < end:
        count += 1
    assert count > 10_000, count
    tx.send(b"done")
    t.join(30)
    assert got == [b"done"]


@pytest.mark.skipif(os.name == "nt", reason="SIGINT is a Unix signal")
def test_ctrl_c_interrupts_a_blocking_recv():
    name = unique("sigint")
    code = textwrap.dedent(
        f"""
        import filemap
        rx = filemap.SpscReceiver.create({name!r}, 4096)
        try:
            print("waiting", flush=True)
            rx.recv()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "waiting"
        # Only once it sleeps inside recv (on the channel's futex) does the
        # signal test what it should.
        wchan = pathlib.Path(f"/proc/{p.pid}/wchan")
        end = time.monotonic() + 10
        while wchan.exists() and "futex" not in wchan.read_text():
            assert time.monotonic() < end, "the process never slept in recv"
            time.sleep(0.005)
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        assert p.stdout.readline().strip() == "interrupted"
        assert time.monotonic() - sent < 5
        assert p.wait(30) == 0
    finally:
        p.kill()


def _locked_add(name, n):
    lock = filemap.Lock.open(name)
    shm = filemap.Mapping.open(name + "-data")
    v = shm.view()
    for _ in range(n):
        with lock:
            x = int.from_bytes(v.read_at(0, 8), "little")
            v.write_at(0, (x + 1).to_bytes(8, "little"))


def test_a_lock_serialises_processes_and_survives_a_killed_holder():
    name = unique("lock")
    lock = filemap.Lock.create(name)
    data = filemap.Mapping.create(name + "-data", 4096)
    ps = [SPAWN.Process(target=_locked_add, args=(name, 500)) for _ in range(3)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(60)
        assert p.exitcode == 0
    assert int.from_bytes(data.view().read_at(0, 8), "little") == 1500
    # A holder killed while holding it: the next acquire gets it, and is told.
    code = textwrap.dedent(
        f"""
        import time, filemap
        l = filemap.Lock.open({name!r})
        l.acquire()
        print("held", flush=True)
        time.sleep(60)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        assert lock.acquire(timeout=0.05) is False
        p.kill()
        p.wait(30)
        assert lock.acquire(timeout=30) is True
        assert lock.previous_owner_died
        lock.release()
    finally:
        p.kill()


def _attach_and_exit(name):
    m = filemap.Mapping.open(name)
    assert m.view().read_at(0, 4) == b"keep"


def test_a_process_that_only_attached_never_removes_the_object():
    # Python's resource_tracker unlinks SharedMemory segments an exiting
    # process attached to (3.8-3.12); filemap never registers with it.
    name = unique("tracker")
    m = filemap.Mapping.create(name, 4096)
    m.view().write_at(0, b"keep")
    for _ in range(2):
        p = SPAWN.Process(target=_attach_and_exit, args=(name,))
        p.start()
        p.join(30)
        assert p.exitcode == 0
    assert filemap.Mapping.open(name).view().read_at(0, 4) == b"keep"


def test_rust_and_python_share_a_latest_cell_both_ways():
    import struct

    helper = helper_path()
    # Rust writes [n; 16] u64 values (a [u8; 128] cell) as fast as it can;
    # Python reads whole ones.
    a = unique("latest-r2p")
    r = filemap.LatestReader.create(a, bytes(128))
    rust = subprocess.Popen([helper, "latest-write-bytes", a], stdout=subprocess.PIPE, text=True)
    try:
        assert rust.stdout.readline().strip() == "ready"
        last, distinct = 0, 0
        end = time.monotonic() + 10
        while distinct < 1000 and time.monotonic() < end:
            words = struct.unpack("<16Q", r.read())
            assert len(set(words)) == 1, words  # never torn
            assert words[0] >= last
            if words[0] != last:
                distinct, last = distinct + 1, words[0]
        assert distinct >= 1000
    finally:
        rust.kill()
        rust.wait(30)
    # Python writes; Rust reads and checks every value it sees.
    b = unique("latest-p2r")
    w = filemap.LatestWriter.create(b, bytes(128))
    assert w.size == 128
    with pytest.raises(filemap.InvalidArgument):
        w.write(b"short")
    rust = subprocess.Popen(
        [helper, "latest-read", b, "200"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert rust.stdout.readline().strip() == "ready"
    stop = threading.Event()

    def write_values():
        n = 0
        while not stop.is_set():
            n += 1
            w.write(struct.pack("<16Q", *([n] * 16)))

    writer = threading.Thread(target=write_values)
    writer.start()
    try:
        line = rust.stdout.readline().strip()
    finally:
        stop.set()
        writer.join(30)
    assert line == "consistent 200", line
    rust.stdin.close()
    assert rust.wait(30) == 0


def test_zero_copy_receive_in_a_with_block():
    name = unique("zc")
    rx = filemap.SpscReceiver.create(name, 4096)
    tx = filemap.SpscSender.open(name)
    payload = np.arange(64, dtype=np.float32)
    tx.send(payload)  # any bytes-like object, sent in place
    tx.send(b"next")
    with rx.recv_message(timeout=5) as m:
        arr = np.frombuffer(m, dtype=np.float32)
        assert not arr.flags.writeable  # read-only: it is the ring
        assert np.array_equal(arr, payload) and len(m) == 256
        with pytest.raises(ValueError):
            rx.recv(timeout=0)  # one message at a time
        with pytest.raises(BufferError):
            m.release()  # `arr` still uses it
        del arr
    with pytest.raises(ValueError):
        memoryview(m)  # released with the block
    assert rx.recv(timeout=5) == b"next"
    # Dropped without release: freed by garbage collection.
    tx.send(b"gc")
    m = rx.recv_message(timeout=5)
    assert m.to_bytes() == b"gc"
    del m
    tx.send(b"after")
    assert rx.recv(timeout=5) == b"after"


def mpmc_message(ident, seq, max_len):
    """fm-helper's mpmc message `seq` of sender `ident` (native byte order)."""
    body_n = seq ^ ident
    length = message_len(body_n, max_len - 12)
    fill_n = ((seq * 31) & (2**64 - 1)) ^ ident
    body = bytes(((fill_n * 31 + i * 7) % 251) for i in range(length))
    return ident.to_bytes(4, sys.byteorder) + seq.to_bytes(8, sys.byteorder) + body


def test_rust_and_python_share_mpmc_and_broadcast_channels_both_ways():
    helper = helper_path()
    # mpmc, Rust -> Python: every message of sender 5, whole and in order.
    a = unique("mpmc-r2p")
    rx = filemap.MpmcReceiver.create(a, 64, 128)
    rust = subprocess.Popen([helper, "mpmc-send", a, "5", "2000"], stdout=subprocess.PIPE, text=True)
    assert rust.stdout.readline().strip() == "ready"
    for seq in range(2000):
        assert rx.recv(timeout=30) == mpmc_message(5, seq, 128), seq
    assert rust.stdout.readline().strip() == "sent 2000"
    rust.kill()
    rust.wait(30)
    # mpmc, Python -> Rust: the helper checks each message and counts.
    b = unique("mpmc-p2r")
    tx = filemap.MpmcSender.create(b, 64, 128)
    rust = subprocess.Popen([helper, "mpmc-recv", b], stdout=subprocess.PIPE, text=True)
    assert rust.stdout.readline().strip() == "ready"
    for seq in range(2000):
        tx.send(mpmc_message(9, seq, 128), timeout=30)
    tx.send(b"", timeout=30)  # the end
    assert rust.stdout.readline().strip() == f"got 9:2000:{sum(range(2000))}"
    rust.kill()
    rust.wait(30)
    # broadcast, Rust -> Python: what is received is whole; the rest is counted missed.
    c = unique("bcast-r2p")
    brx = filemap.BroadcastReceiver.create(c, 64, 256)
    rust = subprocess.Popen([helper, "bcast-send", c, "3000"], stdout=subprocess.PIPE, text=True)
    assert rust.stdout.readline().strip() == "ready"
    n = 0
    while n < 3000:
        data, seq, missed = brx.recv(timeout=30)
        n += missed
        assert seq == n and data == message(n, 256), n
        n += 1
    rust.kill()
    rust.wait(30)
    # broadcast, Python -> Rust.
    d = unique("bcast-p2r")
    btx = filemap.BroadcastSender.create(d, 64, 256)
    rust = subprocess.Popen([helper, "bcast-recv", d, "3000", "256"], stdout=subprocess.PIPE, text=True)
    assert rust.stdout.readline().strip() == "ready"
    for n in range(3000):
        btx.send(message(n, 256))
    line = rust.stdout.readline().strip()
    got, missed = int(line.split()[1]), int(line.split()[3])
    assert line.startswith("received") and got + missed == 3000 and got > 0, line
    rust.kill()
    rust.wait(30)


def test_owners_accepts_this_users_objects_and_checks_its_argument():
    name = unique("owners")
    m = filemap.Mapping.create(name, 4096)
    m.view().write_at(0, b"mine")
    for owners in ("me", "anyone", [], [12345]):
        o = filemap.Mapping.open(name, owners=owners)
        assert o.view().read_at(0, 4) == b"mine"
        o.close()
    again, created = filemap.Mapping.create_or_open(name, 4096, owners="me")
    assert not created
    again.close()
    with pytest.raises(ValueError):
        filemap.Mapping.open(name, owners="everyone")
    m.close()


def test_timeouts_report_the_timeout_asked_for():
    # Every waiting call waits in slices of 100 ms (to run signal handlers);
    # its time-out used to report the last slice ("timed out after 99.95ms").
    # It states the timeout asked for.
    name = unique("tmo")
    srx = filemap.SpscReceiver.create(name + "-s", 4096)
    stx = filemap.SpscSender.open(name + "-s")
    mrx = filemap.MpmcReceiver.create(name + "-m", 2, 64)
    mtx = filemap.MpmcSender.open(name + "-m")
    brx = filemap.BroadcastReceiver.create(name + "-b", 4, 64)
    btx = filemap.BroadcastSender.open(name + "-b")
    buf = bytearray(64)
    waits = {
        "spsc recv": lambda t: srx.recv(timeout=t),
        "spsc recv_into": lambda t: srx.recv_into(buf, timeout=t),
        "spsc recv_message": lambda t: srx.recv_message(timeout=t),
        "mpmc recv": lambda t: mrx.recv(timeout=t),
        "mpmc recv_into": lambda t: mrx.recv_into(buf, timeout=t),
        "broadcast recv": lambda t: brx.recv(timeout=t),
    }
    for what, call in waits.items():
        for asked, said in ((0.25, "250ms"), (1.0, "1s")):
            with pytest.raises(filemap.Timeout) as e:
                call(asked)
            assert f"timed out after {said} " in str(e.value), (what, str(e.value))
    # Senders waiting for room: fill each first.
    while stx.try_send(b"x" * 100):
        pass
    while mtx.try_send(b"x"):
        pass
    for what, call in {
        "spsc send": lambda t: stx.send(b"x" * 100, timeout=t),
        "mpmc send": lambda t: mtx.send(b"x", timeout=t),
    }.items():
        with pytest.raises(filemap.Timeout) as e:
            call(0.25)
        assert "timed out after 250ms " in str(e.value), (what, str(e.value))
    del btx
