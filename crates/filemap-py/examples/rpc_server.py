"""A request-response server in Python, and its client in Rust.

This process makes the service `filemap-example-adder` and serves it: each
request is numbers joined by `+`, each response their sum. It runs the Rust
example `rpc` as its client (`cargo run --example rpc -- client`, or the
built program given as the first argument), which makes its calls and
prints the answers, and serves until that client is done.

    python crates/filemap-py/examples/rpc_server.py [PATH-TO-THE-RPC-EXAMPLE]
"""

import subprocess
import sys

import filemap

NAME = "filemap-example-adder"


def main() -> int:
    server = filemap.RpcServer.create(NAME, max_request=256, max_response=64)
    client = (
        [sys.argv[1], "client"]
        if len(sys.argv) > 1
        else ["cargo", "run", "-q", "-p", "filemap", "--example", "rpc", "--", "client"]
    )
    rust = subprocess.Popen(client)
    while rust.poll() is None:
        try:
            req = server.recv_request(timeout=0.1)
        except filemap.Timeout:
            continue
        total = sum(int(n) for n in req.data.split(b"+"))
        print(f"python server: {req.data.decode()} -> {total}", flush=True)
        req.respond(str(total).encode())
    return rust.returncode


if __name__ == "__main__":
    sys.exit(main())
