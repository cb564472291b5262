"""The byte stream of a ``dockyard exec`` session (``GET /exec/<session>``), both sides.

The control plane answers the stream as a sequence of frames, each a one-byte kind, a
four-byte big-endian length and that many bytes of payload (Docker's own attach framing,
plus one kind of its own for the end):

* :data:`STDOUT` (1), :data:`STDERR` (2): output of the command (with a TTY, all of it is
  stdout, as with ``docker exec -t``);
* :data:`EXIT` (3): the last frame, its payload JSON ``{"exitCode": N}`` (N null when Docker
  could not tell).

Pure: no I/O, so both the server (:mod:`runner.execs`) and the CLI (:mod:`runner.exec_cli`)
use it and it is tested on its own.
"""

from __future__ import annotations

import json
import struct

__all__ = ["EXIT", "STDERR", "STDOUT", "TOKEN_HEADER", "Decoder", "exit_frame", "frame"]

STDOUT, STDERR, EXIT = 1, 2, 3
TOKEN_HEADER = "X-Dockyard-Exec-Token"  # carries the session's tokenValue on each of its requests
_HEAD = struct.Struct(">BI")


def frame(kind: int, payload: bytes) -> bytes:
    return _HEAD.pack(kind, len(payload)) + payload


def exit_frame(code: int | None) -> bytes:
    return frame(EXIT, json.dumps({"exitCode": code}).encode())


class Decoder:
    """Feed it the stream's bytes as they come; it returns the whole frames they complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        out = []
        while len(self._buffer) >= _HEAD.size:
            kind, size = _HEAD.unpack_from(self._buffer)
            if len(self._buffer) < _HEAD.size + size:
                break
            out.append((kind, bytes(self._buffer[_HEAD.size : _HEAD.size + size])))
            del self._buffer[: _HEAD.size + size]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held (non-zero at the end: the stream was cut)."""
        return len(self._buffer)
