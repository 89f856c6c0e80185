"""A bounded load test on loopback: ``python -m benchmarks.loadtest`` (``make loadtest``).

Starts the app under uvicorn with several worker processes on 127.0.0.1 and a free port,
drives it with concurrent clients (a mix of 1-row, 100-row, malformed and NaN bodies, each
with its expected status), and stops after a fixed number of requests or a deadline,
whichever comes first. Prints p50/p99 per kind, throughput, and errors (any unexpected status,
any 5xx, any transport failure), then stops the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = {"one": 20, "two": 12.66645094909174, "three": 15.8990837351338}
KINDS: list[tuple[str, bytes, int]] = [
    ("1 row", json.dumps(SEED).encode(), 200),
    ("100 rows", json.dumps([{**SEED, "two": 12 + i / 50} for i in range(100)]).encode(), 200),
    ("malformed", b'{"one": 20,', 400),
    ("NaN", b'{"one": 20, "two": NaN, "three": 1}', 422),
]


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k, _, _ in KINDS})
    errors: list[str] = field(default_factory=list)
    server_errors: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(registry: str, port: int, workers: int) -> Iterator[tuple[subprocess.Popen[bytes], IO[bytes]]]:
    """uvicorn with ``workers`` processes on 127.0.0.1:``port``, stopped (and its log closed) on exit."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "MODEL_URI": registry,
        "POWERTOOLS_METRICS_NAMESPACE": "LoadTest",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "INFERENCE_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "lambda_app.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    # The log goes to a file, not a pipe: a chatty server can never block on it.
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            yield server, log
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait(timeout=5)


def wait_ready(base_url: str, server: subprocess.Popen[bytes], log: IO[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited with {server.returncode}: {log.read().decode()[-2000:]}")
        try:
            if httpx2.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server not ready within {timeout} s")


async def client(base_url: str, index: int, budget: list[int], deadline: float, results: Results) -> None:
    async with httpx2.AsyncClient(base_url=base_url, timeout=30) as http:
        turn = index
        while budget[0] > 0 and time.monotonic() < deadline:
            budget[0] -= 1
            kind, body, expected = KINDS[turn % len(KINDS)]
            turn += 1
            start = time.perf_counter()
            try:
                response = await http.post(
                    "/predict", content=body, headers={"content-type": "application/json"}
                )
            except httpx2.HTTPError as exc:
                results.errors.append(f"{kind}: {type(exc).__name__}")
                continue
            results.latencies[kind].append((time.perf_counter() - start) * 1000)
            if response.status_code >= 500:
                results.server_errors += 1
            if response.status_code != expected:
                results.errors.append(f"{kind}: {response.status_code} (expected {expected})")


def run(registry: str, workers: int, clients: int, requests: int, seconds: float) -> dict[str, Any]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with serving(registry, port, workers) as (server, log):
        wait_ready(base_url, server, log)
        results = Results()
        budget = [requests]
        started = time.perf_counter()
        deadline = time.monotonic() + seconds

        async def main() -> None:
            await asyncio.gather(*(client(base_url, i, budget, deadline, results) for i in range(clients)))

        asyncio.run(main())
        elapsed = time.perf_counter() - started
    done = sum(len(v) for v in results.latencies.values()) + len(results.errors)
    report: dict[str, Any] = {
        "workers": workers,
        "clients": clients,
        "requests": done,
        "seconds": elapsed,
        "requests_per_s": done / elapsed,
        "errors": len(results.errors),
        "server_errors": results.server_errors,
        "error_samples": results.errors[:10],
        "kinds": {},
    }
    for kind, values in results.latencies.items():
        if values:
            report["kinds"][kind] = {
                "count": len(values),
                "p50_ms": float(np.percentile(values, 50)),
                "p99_ms": float(np.percentile(values, 99)),
            }
    return report


def print_report(report: dict[str, Any]) -> None:
    print(
        f"{report['requests']} requests in {report['seconds']:.1f} s ({report['requests_per_s']:.0f}/s),"
        f" {report['workers']} workers, {report['clients']} concurrent clients, 127.0.0.1 only"
    )
    print("| kind | requests | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: |")
    for kind, stats in report["kinds"].items():
        print(f"| {kind} | {stats['count']} | {stats['p50_ms']:.2f} | {stats['p99_ms']:.2f} |")
    print(f"errors: {report['errors']} (5xx: {report['server_errors']}) {report['error_samples']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadtest", description=__doc__)
    parser.add_argument("--model-uri", default=str(ROOT / "model-registry"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args(argv)
    report = run(args.model_uri, args.workers, args.clients, args.requests, args.seconds)
    print_report(report)
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
