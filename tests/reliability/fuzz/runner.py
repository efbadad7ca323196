"""A small coverage-guided mutation fuzzer for the harnesses, run in a separate worker process.

The worker runs one input at a time under a memory limit (RLIMIT_AS) and records which line-to-line
arcs of facedouble's own code it took; the parent enforces a time limit per input (a worker that does
not answer is killed: a hang) and keeps every input that reached new arcs in the working corpus, so
mutations build on inputs that got further into a format. A finding is any exception other than the
documented one, a hang, a crash of the worker, or a MemoryError.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing as mp
import random
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

MEMORY_LIMIT = 4 << 30  # bytes of address space per worker: "unbounded memory" ends here as a MemoryError
_PKG = str(Path(__file__).resolve().parents[3] / "facedouble")
_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x10000, 16384]


def signature(exc: BaseException) -> str:
    """Type and message with numbers and paths blanked: one signature per distinct failure."""
    text = re.sub(r"/[^\s:'\"]+", "<path>", str(exc))
    return f"{type(exc).__name__}: {re.sub(r'[0-9]+', '#', text)[:80]}"


def _worker(conn, trace: bool) -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # libpng/FFmpeg complain on stderr about every broken input: not ours to show
    from tests.reliability.fuzz.harness import ALLOWED, TARGETS

    scratch = Path(tempfile.mkdtemp(prefix="fdfuzz-"))
    seen: set[tuple[str, int, int]] = set()
    arcs: set[tuple[str, int, int]] = set()
    _prev: dict[Any, int] = {}  # frame -> its previous line, for line-to-line arcs

    def local(frame, event, arg):
        if event == "line":
            arcs.add((frame.f_code.co_qualname, _prev.get(frame, 0), frame.f_lineno))
            _prev[frame] = frame.f_lineno
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(_PKG) else None

    while True:
        msg = conn.recv()
        if msg is None:
            return
        name, data = msg
        arcs.clear()
        _prev.clear()
        status, sig = "ok", ""
        if trace:
            sys.settrace(tracer)
        try:
            TARGETS[name](data, scratch)
        except ALLOWED[name] as exc:
            status, sig = "error", signature(exc)
            if "\n" in str(exc):
                status, sig = "finding", "multi-line error: " + sig
        except MemoryError as exc:
            status, sig = "finding", "MemoryError: " + signature(exc)
        except Exception as exc:  # noqa: BLE001 - any other exception is what we are looking for
            tb = traceback.extract_tb(exc.__traceback__)
            where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb)
                          if f.filename.startswith(_PKG)), "?")
            status, sig = "finding", f"{type(exc).__name__} at {where} || {signature(exc)[:70]}"
        finally:
            sys.settrace(None)
            for path in sorted(scratch.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        new = arcs - seen
        seen |= arcs
        path_hash = hashlib.blake2b(repr(sorted(arcs)).encode(), digest_size=8).hexdigest()
        conn.send((status, sig, len(new), path_hash, len(seen)))


@dataclasses.dataclass
class Result:
    """What one input did."""

    status: str  # ok | error (the documented one) | finding
    signature: str
    new_arcs: int = 0
    path: str = ""
    seconds: float = 0.0


class Worker:
    """The child process that runs inputs; restarted after a hang or crash."""

    def __init__(self, trace: bool = True):
        self.trace = trace
        self._ctx = mp.get_context("spawn")
        self._start()

    def _start(self) -> None:
        self.conn, child = self._ctx.Pipe()
        self.proc = self._ctx.Process(target=_worker, args=(child, self.trace), daemon=True)
        self.proc.start()
        self.arcs_total = 0

    def run(self, name: str, data: bytes, limit: float) -> Result:
        """Run one input; a hang past `limit` seconds or a dead worker is a finding."""
        t0 = time.perf_counter()
        self.conn.send((name, data))
        # the first input after a (re)start also pays for the worker's imports
        if self.conn.poll(limit + (20.0 if self.arcs_total == 0 else 0.0)):
            try:
                status, sig, new, path, total = self.conn.recv()
            except EOFError:
                return self._died(t0)
            self.arcs_total = max(total, 1)
            return Result(status, sig, new, path, time.perf_counter() - t0)
        if not self.proc.is_alive():
            return self._died(t0)
        self.proc.kill()
        self.proc.join()
        self._start()
        return Result("finding", f"hang: over {limit:.0f} s", 0, "", time.perf_counter() - t0)

    def _died(self, t0: float) -> Result:
        self.proc.join()
        code = self.proc.exitcode
        self._start()
        return Result("finding", f"worker crashed (exit code {code})", 0, "", time.perf_counter() - t0)

    def close(self) -> None:
        """Stop the worker."""
        try:
            self.conn.send(None)
            self.proc.join(5)
        except (BrokenPipeError, OSError):
            pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def mutate(data: bytes, rng: random.Random, pool: list[bytes], tokens: list[bytes]) -> bytes:
    """1-4 stacked mutations: bit flips, interesting integers, inserts, deletes, duplicates, splices, tokens."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9 if tokens else 8)
        n = len(buf)
        if op == 0 and n:
            pos = rng.randrange(n)
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            buf[rng.randrange(n)] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        elif op == 2 and n >= 4:
            pos = rng.randrange(n - 3)
            value = rng.choice(_INTERESTING) & 0xFFFFFFFF
            buf[pos:pos + 4] = value.to_bytes(4, rng.choice(("big", "little")))
        elif op == 3:
            pos = rng.randrange(n + 1)
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4 and n > 1:
            pos = rng.randrange(n)
            del buf[pos:pos + rng.randint(1, max(1, n // 8))]
        elif op == 5 and n > 1:
            pos, length = rng.randrange(n), rng.randint(1, max(1, n // 8))
            at = rng.randrange(n)
            buf[at:at] = buf[pos:pos + length]
        elif op == 6 and n > 1:
            buf = buf[:rng.randrange(1, n)]  # truncate
        elif op == 7 and pool:
            other = rng.choice(pool)
            if other:
                cut, cut2 = rng.randrange(len(buf) + 1), rng.randrange(len(other))
                buf = buf[:cut] + other[cut2:]
        elif op == 8:
            pos = rng.randrange(n + 1)
            token = rng.choice(tokens)
            if rng.random() < 0.5 and n:
                buf[pos:pos + len(token)] = token
            else:
                buf[pos:pos] = token
    if len(buf) > 1 << 20:
        del buf[1 << 20:]
    return bytes(buf)


@dataclasses.dataclass
class Campaign:
    """Figures of a fuzzing run of one target."""

    target: str
    executions: int = 0
    corpus: int = 0
    arcs: int = 0
    paths: set[str] = dataclasses.field(default_factory=set)
    errors: set[str] = dataclasses.field(default_factory=set)
    findings: dict[str, bytes] = dataclasses.field(default_factory=dict)  # signature -> first input
    examples: dict[str, str] = dataclasses.field(default_factory=dict)  # signature -> its message
    seconds: float = 0.0


def fuzz(name: str, seconds: float, seed: int = 0, worker: Worker | None = None,
         max_execs: int | None = None, min_execs: int = 0) -> Campaign:
    """Run the seeds, then mutate for `seconds` (and at least until `min_execs` inputs ran, so a short run on a
    busy machine still fuzzes); returns the campaign's figures and findings."""
    from tests.reliability.fuzz.harness import TIME_LIMIT, TOKENS, seeds

    own = worker is None
    worker = worker or Worker()
    rng = random.Random(seed)
    limit = TIME_LIMIT[name]
    tokens = TOKENS.get(name, [])
    camp = Campaign(name)
    corpus = list(seeds(name))
    t0 = time.perf_counter()

    def one(data: bytes) -> Result:
        res = worker.run(name, data, limit)
        camp.executions += 1
        if res.path:
            camp.paths.add(res.path)
        camp.arcs = max(camp.arcs, worker.arcs_total)
        if res.status == "finding":
            key, _, example = res.signature.partition(" || ")
            if key not in camp.findings:
                camp.findings[key] = data
                camp.examples[key] = example
        elif res.status == "error":
            camp.errors.add(res.signature)
        return res

    try:
        for data in corpus:
            one(data)
        while (time.perf_counter() - t0 < seconds or camp.executions < min_execs) and \
                (max_execs is None or camp.executions < max_execs):
            parent = rng.choice(corpus)
            child = mutate(parent, rng, corpus, tokens)
            res = one(child)
            if res.new_arcs and res.status != "finding" and len(corpus) < 2000:
                corpus.append(child)
    finally:
        if own:
            worker.close()
    camp.corpus, camp.seconds = len(corpus), time.perf_counter() - t0
    return camp
