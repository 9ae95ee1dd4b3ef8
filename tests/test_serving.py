"""`serve` in a subprocess on a free port, real HTTP requests: predictions equal
`kerastrain predict` (JSON rows and CSV, empty fields, unseen categories), a bad row is a
422 naming its row and column, a missing or wrong API key a 401, SIGTERM stops it."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import test_tables
from conftest import Cli
from test_tables import HEADER, messy_rows, write_csv

messy_run = test_tables.messy_run   # the trained messy-table run, a module fixture here too
KEY = "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: bytes | None = None, kind: str = "application/json",
         key: str | None = KEY) -> tuple[int, dict]:
    headers = {"Content-Type": kind, **({"X-API-Key": key} if key else {})}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(request):
    run, tmp = request.getfixturevalue("messy_run")
    port = free_port()
    env = {**os.environ, "KERASTRAIN_API_KEY": KEY}
    process = subprocess.Popen([sys.executable, "-m", "kerastrain", "serve", str(run),
                                "--port", str(port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if call(url + "/health")[0] == 200:
                break
        except OSError:
            time.sleep(0.5)
        assert process.poll() is None, process.stderr.read()
    yield url, process, run, tmp
    if process.poll() is None:
        process.kill()
        process.wait()


def test_predictions_equal_predict_for_json_and_csv_rows(cli: Cli, server) -> None:
    url, _, run, tmp = server
    rows = [r[:-1] for r in messy_rows(25, 5, year=2031, new=True)]
    rows[0][1:7] = ["", "", "", "", "", ""]                 # every feature empty
    rows[1][3] = "NA"                                      # a marker
    data = write_csv(tmp / "serve.csv", rows, HEADER[:-1])
    result = cli("predict", run, data, "--output", tmp / "serve_p.csv", "--overwrite")
    assert result.exit_code == 0, result.output
    with open(tmp / "serve_p.csv", newline="") as handle:
        expected = list(csv.DictReader(handle))
    body = json.dumps({"rows": [dict(zip(HEADER, r, strict=False)) for r in rows]})
    status, answer = call(url + "/predict", body.encode())
    assert status == 200, answer
    by_csv = call(url + "/predict", data.read_bytes(), "text/csv")[1]["predictions"]
    single = call(url + "/predict", json.dumps({"rows": [dict(zip(HEADER, rows[0],
                                                                  strict=False))]}).encode())
    for got in (answer["predictions"], by_csv, single[1]["predictions"]):
        for mine, theirs in zip(got, expected, strict=False):
            assert mine["churn"] == theirs["churn"]
            for name in ("prob_leave", "prob_stay"):
                assert mine[name] == pytest.approx(float(theirs[name]), abs=1e-5)
    assert len(by_csv) == len(expected)


def test_schema_lists_the_columns_with_their_kinds(server) -> None:
    status, schema = call(server[0] + "/schema")
    assert status == 200
    assert {i["column"]: i["kind"] for i in schema["inputs"]}["signup"] == "date"


def test_openapi_documents_predict_with_its_bodies_and_answers(server) -> None:
    status, spec = call(server[0] + "/openapi.json")
    assert status == 200
    post = spec["paths"]["/predict"]["post"]
    assert sorted(post["requestBody"]["content"]) == ["application/json", "text/csv"]
    assert "signup" in post["requestBody"]["content"]["application/json"]["example"]["rows"][0]
    assert sorted(post["responses"]) == ["200", "401", "413", "422"]
    assert {"/health", "/schema"} <= set(spec["paths"])
    assert call(server[0] + "/predict")[0] == 405   # GET: the path is there, not the method
    assert call(server[0] + "/nowhere")[0] == 404


def test_a_bad_row_is_a_422_naming_row_and_column(server) -> None:
    rows = [dict(zip(HEADER, r, strict=False)) for r in messy_rows(3, 6)]
    rows[1]["age"] = "old"
    del rows[2]["plan"]
    status, answer = call(server[0] + "/predict", json.dumps({"rows": rows}).encode())
    assert status == 422
    assert {(p["row"], p["column"]) for p in answer["detail"]} == {(1, "age"), (2, "plan")}
    assert "expected a number, got 'old'" in answer["detail"][0]["message"]


def test_a_missing_or_wrong_api_key_is_a_401(server) -> None:
    body = json.dumps({"rows": []}).encode()
    assert call(server[0] + "/predict", body, key=None)[0] == 401
    assert call(server[0] + "/predict", body, key="wrong")[0] == 401
    assert call(server[0] + "/schema", key=None)[0] == 401
    assert call(server[0] + "/predict", body)[0] == 200


def test_a_too_large_request_is_a_413(server) -> None:
    body = json.dumps({"rows": [{"note": "x" * (11 * 1024 * 1024)}]}).encode()
    try:
        status = call(server[0] + "/predict", body)[0]
    except (ConnectionError, urllib.error.URLError):   # the server may close on it
        status = 413
    assert status == 413
    chunked = iter([b'{"rows": [{"note": "', b"x" * (11 * 1024 * 1024), b'"}]}'])
    request = urllib.request.Request(server[0] + "/predict", data=chunked, headers={
        "Content-Type": "application/json", "X-API-Key": KEY,
        "Transfer-Encoding": "chunked"})
    try:
        urllib.request.urlopen(request, timeout=30)
        status = 200
    except urllib.error.HTTPError as error:
        status = error.code
    except (ConnectionError, urllib.error.URLError):
        status = 413
    assert status == 413


def test_a_port_in_use_is_refused_before_loading(cli: Cli, server) -> None:
    url, _, run, _ = server
    result = cli("serve", run, "--port", url.rsplit(":", 1)[1])
    assert result.exit_code == 2 and "cannot listen on 127.0.0.1" in result.stderr
    assert "--port" in result.stderr


def test_sigterm_stops_it_cleanly(server) -> None:
    _, process, _, _ = server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "Traceback" not in process.stderr.read()


def test_serve_help_imports_neither_tensorflow_nor_fastapi() -> None:
    code = ("import sys\nfrom kerastrain.cli import app\n"
            "from typer.testing import CliRunner\n"
            "r = CliRunner().invoke(app, ['serve', '--help'])\nassert r.exit_code == 0\n"
            "r = CliRunner().invoke(app, ['export', '--help'])\nassert r.exit_code == 0\n"
            "print(sorted(m for m in ('tensorflow', 'fastapi', 'uvicorn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parent)
    assert done.stdout.strip() == "[]", done.stderr


class CountingModel:
    """A stand-in for `Predictor`: rows are numbers, a prediction is the row doubled;
    each call's row count is kept; 'bad' is a bad row, 'boom' makes the call fail."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def pack(self, rows: list) -> list:
        import numpy as np

        from kerastrain.serving.rows import RowProblems

        if "bad" in rows:
            raise RowProblems([{"row": rows.index("bad"), "column": "x", "message": "bad"}])
        return [np.array([0 if r == "boom" else r for r in rows]), np.array(rows, object)]

    def run(self, packed: list) -> list:
        self.calls.append(len(packed[0]))
        if "boom" in list(packed[1]):
            raise RuntimeError("the model failed")
        return [{"y": 2 * int(v)} for v in packed[0]]


def test_concurrent_requests_run_as_one_call_each_with_its_own_rows() -> None:
    import asyncio

    from kerastrain.serving.predictor import Batcher
    from kerastrain.serving.rows import RowProblems

    async def go(requests: list, max_rows: int = 4096) -> tuple[list, list]:
        model = CountingModel()
        batcher = Batcher(model, max_rows)
        out = await asyncio.gather(*(batcher.predict(r) for r in requests),
                                   return_exceptions=True)
        return out, model.calls

    out, calls = asyncio.run(go([[1], [2, 3], [4], [], [5]]))
    assert out == [[{"y": 2}], [{"y": 4}, {"y": 6}], [{"y": 8}], [], [{"y": 10}]]
    assert calls == [5]                                  # five rows, one call
    out, calls = asyncio.run(go([[1, 2], [3, 4], [5, 6, 7]], max_rows=5))
    assert calls == [4, 3] and out[2] == [{"y": 10}, {"y": 12}, {"y": 14}]
    out, calls = asyncio.run(go([[1], [2, "bad"], [3]]))   # a bad row: its request alone
    assert isinstance(out[1], RowProblems) and out[1].problems[0]["row"] == 1
    assert out[0] == [{"y": 2}] and out[2] == [{"y": 6}] and calls == [2]
    out, calls = asyncio.run(go([[1], ["boom"]]))         # a failed call: its requests
    assert all(isinstance(o, RuntimeError) for o in out) and calls == [2]


def test_batched_rows_equal_each_request_run_alone(request) -> None:
    import asyncio

    from kerastrain.export.load import load_raw_model
    from kerastrain.serving.predictor import Batcher, Predictor

    run, _ = request.getfixturevalue("messy_run")
    predictor = Predictor(load_raw_model(run))
    rows = [dict(zip(HEADER, r, strict=False)) for r in messy_rows(12, 7, year=2031, new=True)]
    rows[3].update(age="", plan="NA", signup="", note="")
    requests = [rows[:1], rows[1:5], rows[5:6], rows[6:12]]
    alone = [predictor.predict(r) for r in requests]
    calls = []
    run_once = predictor.run
    predictor.run = lambda packed: calls.append(len(packed[0])) or run_once(packed)

    async def together() -> list:
        batcher = Batcher(predictor)
        return await asyncio.gather(*(batcher.predict(r) for r in requests))

    batched = asyncio.run(together())
    assert calls == [12]
    for mine, theirs in zip(batched, alone, strict=True):
        assert [p["churn"] for p in mine] == [p["churn"] for p in theirs]
        for a, b in zip(mine, theirs, strict=True):
            assert a["prob_leave"] == pytest.approx(b["prob_leave"], abs=1e-6)


def test_the_loaded_model_is_out_of_the_garbage_collectors_way(request, monkeypatch) -> None:
    import gc

    import uvicorn

    from kerastrain.serving import app

    run, _ = request.getfixturevalue("messy_run")
    frozen = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: frozen.append(gc.get_freeze_count()))
    try:
        app.serve(run, port=free_port())
    finally:
        gc.unfreeze()
    assert frozen[0] > 100_000     # TensorFlow's and the model's objects, before listening
