"""Typed channels over NumPy dtypes and request-response, with a Rust
process on the other side (fm-helper) where the point is that both
languages agree."""

import subprocess
import threading

import numpy as np
import pytest

import filemap
import filemap.typed as ft

from test_filemap import helper_path, unique

# filemap_testkit::Reading, laid out as Rust's #[repr(C)] does.
READING = np.dtype(
    [("sensor", "<u4"), ("flags", "<u4"), ("value", "<f8"), ("n", "<u8")], align=True
)
READING_NAME = "filemap_testkit::Reading"


def reading(n):
    return (n % 7, n & 0xFF, n * 0.5, n)


def rpc_request(k, n):
    head = ((k << 48) | n).to_bytes(8, "little")
    length = 8 + n % 57
    return head + bytes(((n * 31) + i) & 0xFF for i in range(8, length))


def rpc_response(req):
    return bytes((b + 1) & 0xFF for b in reversed(req))


def test_a_dtype_laid_out_as_the_rust_struct_reads_its_values():
    name = unique("typed")
    rx = ft.SpscReceiver.create(name, READING, 256, type_name=READING_NAME)
    count = 3000
    rust = subprocess.Popen(
        [helper_path(), "typed-send", name, str(count)], stdout=subprocess.PIPE, text=True
    )
    for n in range(count):
        v = rx.recv(timeout=30)
        assert tuple(v.tolist()) == reading(n), n
    assert rust.stdout.readline().strip() == f"sent {count}"
    rust.stdout.close()
    rust.wait(timeout=30)


def test_another_layout_or_identity_is_refused_naming_both():
    name = unique("typed-mismatch")
    tx = ft.SpscSender.create(name, READING, 8, type_name=READING_NAME)
    packed = np.dtype([("sensor", "<u4"), ("flags", "<u4"), ("value", "<f8"), ("n", "<u8")])
    with pytest.raises(filemap.Corrupt) as e:
        ft.SpscReceiver.open(name, packed, type_name=READING_NAME)  # alignment 1, not 8
    assert "Reading" in str(e.value) and "alignment 1" in str(e.value)
    with pytest.raises(filemap.Corrupt) as e:
        ft.SpscReceiver.open(name, READING, type_name="other.Reading")
    assert "other.Reading" in str(e.value) and READING_NAME in str(e.value)
    # The byte API still reads it; the typed one takes what fits.
    rx = ft.SpscReceiver.open(name, READING, type_name=READING_NAME)
    tx.send(reading(5))
    tx.send_array([reading(6), reading(7)])
    assert tuple(rx.recv(timeout=5).tolist()) == reading(5)
    assert [tuple(r) for r in rx.recv_array(timeout=5).tolist()] == [reading(6), reading(7)]


def test_a_python_client_calls_a_rust_server():
    name = unique("rpc-py-client")
    rust = subprocess.Popen(
        [helper_path(), "rpc-serve", name, "create"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert rust.stdout.readline().strip() == "ready"
        c = filemap.RpcClient.open(name)
        for n in range(2000):
            req = rpc_request(1, n)
            assert c.call(req, timeout=30) == rpc_response(req)
        # Several in flight, collected in another order.
        ids = [c.send_request(rpc_request(2, n)) for n in range(5)]
        for n in reversed(range(5)):
            assert c.response(ids[n], timeout=30) == rpc_response(rpc_request(2, n))
        assert c.in_flight == 0
    finally:
        rust.stdin.close()
        rust.wait(timeout=30)


def test_a_python_server_answers_a_rust_client():
    name = unique("rpc-py-server")
    server = filemap.RpcServer.create(name, max_request=64, max_response=64)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                req = server.recv_request(timeout=0.1)
            except filemap.Timeout:
                continue
            req.respond(rpc_response(req.data))

    t = threading.Thread(target=serve)
    t.start()
    try:
        out = subprocess.run(
            [helper_path(), "rpc-client", name, "4", "3000", "4"],
            input="exit\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.stdout.splitlines()[:2] == ["ready", "ok 3000"], out
    finally:
        stop.set()
        t.join()


def test_a_request_answered_twice_or_dropped_unanswered():
    name = unique("rpc-twice")
    server = filemap.RpcServer.create(name)
    c = filemap.RpcClient.open(name)
    a = c.send_request(b"a")
    b = c.send_request(b"b")
    ra = server.recv_request(timeout=5)
    rb = server.recv_request(timeout=5)
    ra.respond(b"A")
    with pytest.raises(ValueError):
        ra.respond(b"again")
    del rb  # unanswered: its client hears so
    assert c.response(a, timeout=5) == b"A"
    with pytest.raises(filemap.PeerGone):
        c.response(b, timeout=5)


def test_typed_request_response_between_numpy_values():
    name = unique("rpc-typed")
    q = np.dtype([("a", "<i8"), ("b", "<i8")])
    r = np.dtype("<i8")
    server = ft.RpcServer.create(name, q, r, request_type_name="add.Q", response_type_name="add.R")
    client = ft.RpcClient.open(name, q, r, request_type_name="add.Q", response_type_name="add.R")
    done = []

    def serve():
        value, req = server.recv_request(timeout=10)
        server.respond(req, value["a"] + value["b"])
        done.append(True)

    t = threading.Thread(target=serve)
    t.start()
    assert client.call((20, 22), timeout=10) == 42
    t.join()
    assert done
    with pytest.raises(filemap.Corrupt) as e:
        ft.RpcClient.open(name, q, np.dtype("<i4"), request_type_name="add.Q", response_type_name="add.R")
    assert "add.R" in str(e.value)


def test_the_module_example_runs():
    import doctest

    result = doctest.testmod(ft)
    assert result.attempted > 0 and result.failed == 0, result


def test_the_readmes_python_blocks_run():
    """Every ```python block of the README, run as it is written."""
    import pathlib
    import re

    readme = pathlib.Path(__file__).resolve().parents[3] / "README.md"
    blocks = re.findall(r"^```python\n(.*?)^```", readme.read_text(), re.S | re.M)
    assert len(blocks) >= 2, "the README's Python examples"
    for i, code in enumerate(blocks):
        namespace = {}
        exec(compile(code, f"README.md python block {i}", "exec"), namespace)
        namespace.clear()  # releases what the block made, before the next one


def test_the_python_server_example_answers_the_rust_client_example():
    import pathlib
    import sys

    helper = pathlib.Path(helper_path())
    exe = helper.parent / "examples" / ("rpc.exe" if sys.platform == "win32" else "rpc")
    if not exe.exists():
        pytest.skip(f"{exe} is not built (cargo build -p filemap --examples)")
    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "rpc_server.py"
    out = subprocess.run(
        [sys.executable, str(script), str(exe)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out
    for line in ["1 + 2 + 3 = 6", "-5 + 5 = 0", "10 + 20 = 30", "100 + 200 = 300"]:
        assert line in out.stdout, out.stdout
    assert "python server: 1 + 2 + 3 -> 6" in out.stdout, out.stdout
