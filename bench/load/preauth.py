#!/usr/bin/python3
"""Memory held by dreamd while unauthenticated clients send most of a large frame.

Usage: bench/load/preauth.py DREAMD tokens|none CONNECTIONS MIB

Starts DREAMD on 127.0.0.1 (port 0) with a temporary data directory (with a
token file when `tokens`), opens CONNECTIONS connections that each announce a
64 MiB frame and send MIB MiB of it without any hello, then prints dreamd's
RSS before, during and at its peak (VmHWM from /proc) and how many connections
the server closed. Loopback only; bounded to 20 s of sending.
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time


def main():
    if len(sys.argv) != 5 or sys.argv[2] not in ("tokens", "none"):
        sys.exit(__doc__)
    exe, tokens, n, mib = sys.argv[1], sys.argv[2] == "tokens", int(sys.argv[3]), int(sys.argv[4])
    d = tempfile.mkdtemp(prefix="dreamd-preauth-")
    args = [exe, "--data-dir", d + "/data", "--listen", "127.0.0.1:0", "--log-level", "error",
            "--port-file", d + "/port"]
    if tokens:
        with open(d + "/tok", "w") as f:
            f.write("admin:secret-token-1\n")
        args += ["--token-file", d + "/tok"]
    p = subprocess.Popen(args)
    try:
        for _ in range(200):
            if os.path.exists(d + "/port") and "listening" in open(d + "/port").read():
                break
            time.sleep(0.05)
        port = int(re.search(r"127\.0\.0\.1:(\d+)", open(d + "/port").read()).group(1))

        def rss(field):
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith(field):
                        return int(line.split()[1]) // 1024
            return -1

        before = rss("VmRSS")
        socks, closed, chunk = [], 0, b"\x5a" * (1 << 20)
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            s.send(struct.pack(">I", 64 << 20))
            socks.append([s, 0])
        t0 = time.time()
        while time.time() - t0 < 20:
            moved = False
            for e in socks:
                if e[0] is None or e[1] >= mib << 20:
                    continue
                try:
                    e[1] += e[0].send(chunk)
                    moved = True
                except BlockingIOError:
                    pass
                except OSError:
                    e[0] = None
                    closed += 1
            if not moved:
                if all(e[0] is None or e[1] >= mib << 20 for e in socks):
                    break
                if time.time() - t0 > 3:
                    break  # nothing moves: the server stopped reading
                time.sleep(0.2)
        print(f"{'token file' if tokens else 'no token file'}: {n} connections x {mib} MiB of "
              f"64 MiB frames: RSS {before} MiB before, {rss('VmRSS')} MiB during, peak "
              f"{rss('VmHWM')} MiB; {closed} closed by the server; "
              f"{sum(e[1] for e in socks) >> 20} MiB sent")
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
