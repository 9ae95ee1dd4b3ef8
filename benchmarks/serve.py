"""`kerastrain serve` under load (issue 16): single-row requests from concurrent clients
(p50 and p99 latency, requests/s, failures), a 1,000-row request, and the same model
called per request through `model.predict` in-process, as a ratio.

    python benchmarks/serve.py                       # trains a small iris run first
    python benchmarks/serve.py RUN_DIR --clients 8 --requests 200
    python benchmarks/serve.py --json out.json

Targets: single-row p50 <= 10 ms and p99 <= 30 ms; 1,000 rows <= 100 ms; no failure.
Besides latency (which other work on the machine inflates) it reports the server's CPU
time per single-row request under the concurrent load (`server_cpu_ms_per_request`, from
/proc) and, in-process, the CPU per request of the ASGI app called directly, one request
at a time and from 8 concurrent clients (`asgi_cpu_us`): figures that depend far less on
the machine's load.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iris_run(tmp: Path) -> Path:
    config = ROOT / "configs" / "iris_mlp.yaml"
    done = subprocess.run([sys.executable, "-m", "kerastrain", "fit", str(config), "--quiet",
                           "--set", "training.epochs=20"], cwd=tmp, capture_output=True,
                          text=True, check=True)
    return Path(tmp, done.stdout.strip().splitlines()[-1])


def iris_rows(n: int) -> list[dict]:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.drop(columns="target")
    records = frame.to_dict("records")
    return [records[i % len(records)] for i in range(n)]


def post(connection: http.client.HTTPConnection, rows: list[dict]) -> float:
    """One POST /predict on a kept-alive connection; its seconds."""
    body = json.dumps({"rows": rows}).encode()
    start = time.perf_counter()
    connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(response.status)
    return time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, clients: int, requests: int) -> dict:
    rows = iris_rows(150)
    times: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def client(k: int) -> None:
        mine = []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(requests):
            try:
                mine.append(post(connection, [rows[(k * requests + i) % len(rows)]]))
            except Exception:  # every failure counts, whatever it is
                failures[0] += 1
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    times.sort()
    return {"clients": clients, "requests": len(times) + failures[0], "failures": failures[0],
            "p50_ms": 1000 * times[len(times) // 2],
            "p99_ms": 1000 * times[min(len(times) - 1, int(0.99 * len(times)))],
            "requests_per_s": len(times) / wall}


def in_process(run: Path, calls: int) -> dict:
    """One row per call: `model.predict` (the run's model on preprocessed rows) and the
    compiled raw-input function `serve` uses."""
    from kerastrain.data.table import Table
    from kerastrain.export.load import load_raw_model
    from kerastrain.inference import load_run
    from kerastrain.serving.app import Predictor

    loaded = load_run(run)
    row = iris_rows(1)
    table = Table({k: __import__("numpy").array([v]) for k, v in row[0].items()}, "row")
    x = loaded.pre.transform_x(table)
    loaded.model.predict(x, verbose=0)
    predictor = Predictor(load_raw_model(run))

    def median(fn) -> float:
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)

    return {"model_predict_ms": median(lambda: loaded.model.predict(x, verbose=0)),
            "compiled_call_ms": median(lambda: predictor.predict(row)),
            "asgi_cpu_us": asgi_cpu(predictor, row[0], 10 * calls)}


def asgi_cpu(predictor, row: dict, calls: int) -> dict:
    """CPU microseconds per single-row POST /predict of the app called in-process (no
    sockets): `calls` requests one at a time, then from 8 concurrent clients."""
    import asyncio

    from kerastrain.serving.app import build_app

    app = build_app(predictor)
    body = json.dumps({"rows": [row]}).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/predict", "raw_path": b"/predict",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000),
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}

    async def one() -> None:
        sent = []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(dict(scope), receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(sent)

    async def clients(k: int, n: int) -> float:
        async def client() -> None:
            for _ in range(n // k):
                await one()
        start = time.process_time()
        await asyncio.gather(*(client() for _ in range(k)))
        return 1e6 * (time.process_time() - start) / (n // k * k)

    async def run() -> dict:
        await clients(1, 100)   # warm-up
        return {"one_at_a_time": await clients(1, calls), "clients_8": await clients(8, calls)}

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="per client")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    run = args.run or iris_run(tmp)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "kerastrain", "serve", str(run),
                               "--port", str(port)], stderr=subprocess.DEVNULL,
                              env={**os.environ, "KERASTRAIN_API_KEY": ""})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(50):                       # warm-up
            post(connection, iris_rows(1))
        before = cpu_seconds(server.pid)
        result = {"single_row": load(port, args.clients, args.requests)}
        result["server_cpu_ms_per_request"] = (1000 * (cpu_seconds(server.pid) - before)
                                               / result["single_row"]["requests"])
        big = iris_rows(1000)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # a fresh one
        result["rows_1000_ms"] = 1000 * statistics.median(post(connection, big)
                                                          for _ in range(7))
    finally:
        server.terminate()
        server.wait(timeout=60)
    result.update(in_process(run, 100))
    result["model_predict_over_serve_p50"] = (result["model_predict_ms"]
                                             / result["single_row"]["p50_ms"])
    result["cores"] = os.cpu_count()
    result["uvicorn"] = {"http": "httptools" if importlib.util.find_spec("httptools") else "h11",
                         "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
