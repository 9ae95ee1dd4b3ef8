"""`serve`: a run's raw-input model behind FastAPI. POST /predict (JSON rows or CSV),
GET /health, GET /schema, OpenAPI docs at /docs. The model runs as one concrete
TensorFlow function, the requests that wait while it runs batched into one call
(`serving/predictor.py`); the predictions have the fields of `kerastrain predict`'s CSV.
POST /predict is plain ASGI in front of FastAPI (`Guard`), documented in its OpenAPI."""

import gc
import hmac
import json
import socket
from pathlib import Path
from typing import Any

from kerastrain.errors import UserError
from kerastrain.export.load import load_raw_model
from kerastrain.serving.predictor import Batcher, Predictor
from kerastrain.serving.rows import RowProblems, csv_rows

API_KEY_ENV = "KERASTRAIN_API_KEY"
MAX_BYTES = 10 * 1024 * 1024
KEY_HEADER = "X-API-Key"


class Guard:
    """ASGI middleware: 401 without the API key (when one is set; /health is open), 413
    for a body declared larger than `max_bytes`; POST /predict answered here by
    `predict`. Plain ASGI, not a BaseHTTPMiddleware (a task per request), and /predict
    not a FastAPI route: its request and response objects and dependency solving cost as
    much as the rest of a single-row request (`build_app` documents it in OpenAPI)."""

    def __init__(self, app: Any, api_key: str | None, max_bytes: int, predict: Any) -> None:
        self.app, self.max_bytes, self.predict = app, max_bytes, predict
        self.key = api_key.encode() if api_key is not None else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if self.key is not None and scope["path"] != "/health" and \
                    not hmac.compare_digest(headers.get(b"x-api-key", b""), self.key):
                await _reply(send, 401, {"detail": f"a valid {KEY_HEADER} header is required"})
                return
            size = headers.get(b"content-length", b"0")
            if not size.isdigit() or int(size) > self.max_bytes:
                await _reply(send, 413, {"detail": f"the request is larger than "
                                         f"{self.max_bytes} bytes"})
                return
            if scope["path"] == "/predict":
                if scope["method"] == "POST":
                    await self.predict(headers.get(b"content-type", b""), receive, send)
                else:
                    await _reply(send, 405, {"detail": "Method Not Allowed"},
                                 [(b"allow", b"POST")])
                return
        await self.app(scope, receive, send)


async def _reply(send: Any, status: int, content: Any,
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """A JSON response, as FastAPI's JSONResponse writes it."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())] + (extra or [])})
    await send({"type": "http.response.body", "body": body})


def predict_endpoint(batcher: Batcher, max_bytes: int) -> Any:
    """POST /predict in plain ASGI: the body (with or without Content-Length) read up to
    `max_bytes` (413 above), its rows' predictions (422 naming the bad rows)."""

    async def predict(content_type: bytes, receive: Any, send: Any) -> None:
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > max_bytes:
                await _reply(send, 413, {"detail": f"the request is larger than {max_bytes} "
                                         "bytes"})
                return
            more = message.get("more_body", False)
        try:
            rows = _rows(content_type.decode("latin-1"), b"".join(chunks))
            predictions = await batcher.predict(rows)
        except RowProblems as problems:
            await _reply(send, 422, {"detail": problems.problems})
            return
        await _reply(send, 200, {"predictions": predictions})

    return predict


def build_app(predictor: Predictor, api_key: str | None = None,
              max_bytes: int = MAX_BYTES) -> Any:
    """The FastAPI app serving `predictor`; with `api_key`, every request but /health
    must carry it in the X-API-Key header (401 otherwise)."""
    from fastapi import FastAPI
    from fastapi.openapi.utils import get_openapi

    raw = predictor.raw
    app = FastAPI(title=f"kerastrain: {raw.run_dir.name}",
                  description="Predictions of a kerastrain run: raw columns in, the run's "
                              "fitted preprocessing inside. See GET /schema.")
    app.add_middleware(Guard, api_key=api_key, max_bytes=max_bytes,
                       predict=predict_endpoint(Batcher(predictor), max_bytes))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "run_dir": str(raw.run_dir)}

    @app.get("/schema")
    def schema() -> dict[str, Any]:
        return raw.describe()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
            spec["paths"]["/predict"] = {"post": _predict_doc(raw)}
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi
    return app


def _predict_doc(raw: Any) -> dict[str, Any]:
    """POST /predict in OpenAPI."""
    return {"summary": "Predict", "operationId": "predict", "requestBody": {
        "required": True, "content": {
            "application/json": {"schema": {
                "type": "object", "required": ["rows"],
                "properties": {"rows": {"type": "array", "items": {"type": "object"}}}},
                "example": {"rows": [{spec.column: None for spec in raw.inputs}]}},
            "text/csv": {"schema": {"type": "string"}}}},
        "responses": {
            "200": {"description": '{"predictions": [...]}: one object per row, the fields '
                                   "of `kerastrain predict`'s CSV"},
            "401": {"description": f"no valid {KEY_HEADER} header (when a key is set)"},
            "413": {"description": "a body larger than the limit"},
            "422": {"description": '{"detail": [{"row", "column", "message"}, ...]}: the '
                                   "rows the model cannot take"}}}


def _rows(content_type: str, data: bytes) -> list[Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RowProblems([{"row": None, "column": None,
                            "message": "the body is not UTF-8"}]) from None
    if content_type.startswith("text/csv"):
        return csv_rows(text)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowProblems([{"row": None, "column": None,
                            "message": f"the body is not JSON: {exc}"}]) from None
    if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
        raise RowProblems([{"row": None, "column": None,
                            "message": 'expected {"rows": [{"column": value, ...}, ...]}'}])
    return body["rows"]


def check_address(host: str, port: int) -> None:
    """A `UserError` when the address cannot be listened on (a port in use), before the
    model is loaded."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose "
                        "another port (or host).", option="port") from None


def serve(path: str | Path, host: str = "127.0.0.1", port: int = 8000,
          fold: str | None = None, unsafe: bool = False, max_bytes: int = MAX_BYTES,
          api_key: str | None = None, ready: Any = None) -> None:
    """Serve the run at `path` until interrupted (SIGINT or SIGTERM end it cleanly).
    `ready(url)` is called once the model is loaded, before listening."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise UserError("serving needs FastAPI and uvicorn: pip install "
                        "'kerastrain[serve]'.") from None
    check_address(host, port)
    predictor = Predictor(load_raw_model(path, fold, unsafe))
    app = build_app(predictor, api_key, max_bytes)
    gc.collect()   # TensorFlow's and Keras's 400,000 objects out of the collector's way:
    gc.freeze()    # a full collection of them pauses every request for a few 100 ms
    if ready is not None:
        ready(f"http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
