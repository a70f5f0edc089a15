"""One connection to dreamd: addresses, frames, pipelined requests.

A frame is a 4-byte big-endian length followed by one serialized message
(dream.proto). Requests may be pipelined: each carries a request id and the
server's Responses carry it back; Responses of other requests that arrive
while one is awaited are kept until asked for.
"""

from __future__ import annotations

import os
import socket
import struct
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple, Union

from . import dream_pb2 as pb
from .errors import DreamConnectionError, InvalidError, LimitError, error_for_status

DEFAULT_ADDR = "127.0.0.1:7878"
DEFAULT_PORT = 7878
PROTOCOL_VERSION = 1
MAX_TOKEN = 4096  # bytes of a token (common/limits.h DREAM_MAX_TOKEN)
MAX_REPLY_FRAME = 1 << 30  # the largest reply frame this client accepts

_LEN = struct.Struct(">I")


def parse_addr(addr: str) -> Tuple[int, Union[str, Tuple[str, int]]]:
    """Socket family and address of ``HOST:PORT``, ``[IPV6]:PORT``,
    ``HOST`` (port 7878) or ``unix:PATH``, the forms the dream CLI accepts.

    Raises:
        InvalidError: the address has none of these forms.
    """
    bad = InvalidError(f"invalid server address '{addr}' (expected HOST:PORT, [IPV6]:PORT or "
                       "unix:PATH)")
    if not addr:
        raise bad
    if addr.startswith("unix:"):
        path = addr[5:]
        if not path or len(path.encode()) >= 108:
            raise bad
        return socket.AF_UNIX, path
    port: Optional[str] = None
    if addr.startswith("["):
        close = addr.find("]")
        if close <= 1:
            raise bad
        host = addr[1:close]
        rest = addr[close + 1:]
        if rest.startswith(":"):
            port = rest[1:]
        elif rest:
            raise bad
        if ":" not in host:
            raise bad
        family = socket.AF_INET6
    else:
        if addr.count(":") > 1:
            raise bad
        host, _, p = addr.partition(":")
        port = p if ":" in addr else None
        family = socket.AF_UNSPEC
    if not host:
        raise bad
    if port is None:
        num = DEFAULT_PORT
    else:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise bad
        num = int(port)
    return family, (host, num)


def read_token_file(path: str) -> str:
    """The token in a file: its first line without the line end and the
    blanks (spaces, tabs) around it, as ``dream --token-file`` reads it."""
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    line = data.split(b"\n", 1)[0].split(b"\r", 1)[0].strip(b" \t")
    if len(line) > MAX_TOKEN:
        raise LimitError(f"{path}: token too long ({len(line)} bytes, at most {MAX_TOKEN})")
    return line.decode()


def varint(v: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _request_id_field(rid: int) -> bytes:
    """Request.request_id (field 1, varint) as serialized; a message's fields
    may come in any order."""
    return b"\x08" + varint(rid)


def _send_all(sock: socket.socket, parts: List[Any]) -> None:
    """sendall of the concatenation of parts, by scatter-gather writes."""
    views = [memoryview(b).cast("B") for b in parts if len(b)]
    while views:
        sent = sock.sendmsg(views[:512])  # at most IOV_MAX (1024) buffers a call
        while sent and views:
            if sent >= views[0].nbytes:
                sent -= views[0].nbytes
                views.pop(0)
            else:
                views[0] = views[0][sent:]
                sent = 0


class Connection:
    """A connected, authenticated socket to dreamd (not thread-safe)."""

    def __init__(self, addr: str, token: Optional[str], timeout: Optional[float],
                 client_name: str) -> None:
        family, sa = parse_addr(addr)
        self.addr = addr
        self._next_id = 1
        self._pending: Dict[int, Deque[pb.Response]] = {}
        self._abandoned: set = set()
        self._buf = bytearray()
        self.max_frame = 1 << 20  # until the server's HelloReply says
        try:
            if family == socket.AF_UNIX:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(timeout)
                s.connect(sa)
            else:
                s = socket.create_connection(sa, timeout=timeout)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            hint = " (is dreamd running?)" if isinstance(
                e, (ConnectionRefusedError, FileNotFoundError)) else ""
            raise DreamConnectionError(
                f"cannot connect to dreamd at '{addr}': {e.strerror or e}{hint}") from e
        self.sock = s
        hello = pb.Request()
        hello.hello.protocol_version = PROTOCOL_VERSION
        hello.hello.client_name = client_name
        if token:
            hello.hello.token = token
        try:
            reply = self.call(hello)
        except BaseException:
            self.close()
            raise
        self.max_frame = reply.hello.max_frame_bytes or (64 << 20)
        self.roles = list(reply.hello.granted_roles)
        self.server_version = reply.hello.server_version

    def close(self) -> None:
        """Close the socket (idempotent)."""
        s, self.sock = getattr(self, "sock", None), None
        if s is not None:
            s.close()

    # ---- frames ---------------------------------------------------------------------------

    def send(self, req: pb.Request) -> int:
        """Send a request with a fresh request id; returns the id."""
        req.ClearField("request_id")
        return self.send_serialized(req.SerializeToString())

    def send_serialized(self, body: bytes) -> int:
        """Send a serialized Request without a request id (field 1), with a
        fresh one put before it; returns the id."""
        return self.send_parts([body])

    def send_parts(self, parts: List[Any]) -> int:
        """Send a serialized Request without a request id, given as buffers
        (bytes, memoryviews) to be sent one after the other without joining
        them, with a fresh request id put before them; returns the id."""
        rid = self._next_id
        self._next_id += 1
        head = _request_id_field(rid)
        n = len(head) + sum(memoryview(b).nbytes for b in parts)
        if n > self.max_frame:
            raise LimitError(f"request of {n} bytes, more than the server's frame limit "
                             f"of {self.max_frame} bytes; send fewer rows per request")
        if self.sock is None:
            raise DreamConnectionError(f"connection to dreamd at '{self.addr}' is closed")
        self._pending[rid] = deque()
        try:
            _send_all(self.sock, [_LEN.pack(n) + head] + list(parts))
        except OSError as e:
            raise self._lost(e) from e
        return rid

    def _lost(self, e: Optional[BaseException]) -> DreamConnectionError:
        self.close()
        why = f": {e}" if e else ""
        return DreamConnectionError(f"connection to dreamd at '{self.addr}' lost{why}")

    def _fill(self, n: int) -> None:
        """Read until the buffer holds at least n bytes."""
        if self.sock is None:
            raise DreamConnectionError(f"connection to dreamd at '{self.addr}' is closed")
        while len(self._buf) < n:
            try:
                chunk = self.sock.recv(max(n - len(self._buf), 1 << 20))
            except socket.timeout as e:
                self.close()
                raise DreamConnectionError(
                    f"dreamd at '{self.addr}' did not answer in time (timeout)") from e
            except OSError as e:
                raise self._lost(e) from e
            if not chunk:
                raise self._lost(None)
            self._buf += chunk

    def _read_frame(self) -> pb.Response:
        self._fill(4)
        (n,) = _LEN.unpack_from(self._buf)
        if n > MAX_REPLY_FRAME:
            self.close()
            raise DreamConnectionError(f"dreamd at '{self.addr}' sent a frame of {n} bytes")
        self._fill(4 + n)
        resp = pb.Response()
        resp.ParseFromString(memoryview(self._buf)[4:4 + n])
        del self._buf[:4 + n]
        return resp

    def recv(self, rid: int) -> pb.Response:
        """The next Response to request rid; raises the status's exception
        when it is an error (the request is then finished)."""
        q = self._pending.get(rid)
        if q is None:
            raise InvalidError(f"request {rid} is not in flight")
        while not q:
            resp = self._read_frame()
            other = self._pending.get(resp.request_id)
            if other is not None:
                other.append(resp)
            elif resp.request_id in self._abandoned:
                if not resp.more or resp.code != 0:
                    self._abandoned.discard(resp.request_id)
            elif resp.request_id == 0 and resp.code != 0:
                self.close()
                raise error_for_status(resp.code, resp.message)
        resp = q.popleft()
        if resp.code != 0 or not resp.more:
            del self._pending[rid]
        if resp.code != 0:
            raise error_for_status(resp.code, resp.message)
        return resp

    def abandon(self, rid: int) -> None:
        """Forget a stream still in flight: its further Responses are read
        and dropped."""
        q = self._pending.pop(rid, None)
        if q is not None and not (q and (not q[-1].more or q[-1].code != 0)):
            self._abandoned.add(rid)

    def call(self, req: pb.Request) -> pb.Response:
        """Send a request and wait for its single Response."""
        return self.recv(self.send(req))


def env_addr(addr: Optional[str]) -> str:
    """The address to use: addr, else $DREAM_ADDR, else 127.0.0.1:7878."""
    return addr or os.environ.get("DREAM_ADDR") or DEFAULT_ADDR
