"""Fixtures: a real dreamd (the built one, $DREAMD) on a free loopback port
with a temporary data directory, stopped after the test(s)."""

import os
import shutil
import signal
import subprocess
import tempfile
from typing import List, Optional

import pytest

# Tests run from the build tree: PYTHONPATH holds the built package.
import dream


class Daemon:
    def __init__(self, extra: Optional[List[str]] = None, listen: str = "127.0.0.1:0") -> None:
        exe = os.environ.get("DREAMD")
        if not exe:
            raise RuntimeError("DREAMD is not set: run the tests with meson test")
        self.dir = tempfile.mkdtemp(prefix="dreamd-py-")
        args = [exe, "--listen", listen, "--data-dir", os.path.join(self.dir, "data")]
        self.proc = subprocess.Popen(args + (extra or []), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()  # "listening on ADDR"
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"dreamd did not report its address: {line!r}")
        self.addr = line[len("listening on "):]
        if not listen.startswith("unix:"):
            self.port = int(self.addr.rsplit(":", 1)[1])

    def client(self, **kw) -> dream.Client:
        return dream.Client(self.addr, **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        # ASan builds: a sanitizer report fails the test.
        assert "AddressSanitizer" not in err and "runtime error" not in err, err


@pytest.fixture(scope="module")
def server():
    d = Daemon()
    yield d
    d.stop()


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c


@pytest.fixture
def daemon_factory():
    started = []

    def start(*extra: str, listen: str = "127.0.0.1:0") -> Daemon:
        d = Daemon(list(extra), listen)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()
