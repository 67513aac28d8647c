"""The audit log: one JSON line per request, with who, what model and adapter, how much, how long, and
the outcome. Never prompt or answer text, never the API key: the record is built from a fixed set
of fields and nothing else can get into it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class AuditRecord:
    request_id: str
    endpoint: str
    key_id: str | None = None
    model: str | None = None
    adapter: str | None = None
    adapter_version: str | None = None
    kb: str | None = None
    citations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    status: int = 200
    error_code: str | None = None
    finish_reason: str | None = None
    stream: bool = False
    phi_prompt: dict[str, int] = field(default_factory=dict)  # PHI kind -> count found in the prompt
    phi_output: dict[str, int] = field(default_factory=dict)  # PHI kind -> count found in the output
    phi_action: str | None = None  # redacted | blocked | refused
    attempts: int = 0  # generation attempts made (more than 1: retried after a generator replica was lost)
    idempotency: str | None = None  # with an Idempotency-Key: new | replayed | in_use | mismatch
    gateway: str | None = None  # the gateway replica that handled the request


class AuditLog:
    """Appends records to a JSON-lines file; each line is one ``write`` on an O_APPEND descriptor, so
    several replicas on one machine can share a file without interleaving lines."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._lock = threading.Lock()

    def write(self, record: AuditRecord) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
                 **asdict(record)}
        entry["latency_ms"] = round(entry["latency_ms"], 1)
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            os.write(self._fd, line)

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass
