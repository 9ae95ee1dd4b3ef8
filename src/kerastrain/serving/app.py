"""`serve`: a run's raw-input model behind FastAPI. POST /predict (JSON rows or CSV),
GET /health, GET /schema, OpenAPI docs at /docs. The model runs as one concrete
TensorFlow function, the requests that wait while it runs batched into one call
(`serving/predictor.py`); the predictions have the fields of `kerastrain predict`'s CSV."""

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
    for a body declared larger than `max_bytes`. Plain ASGI, not a BaseHTTPMiddleware,
    which costs a task per request."""

    def __init__(self, app: Any, api_key: str | None, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.key = api_key.encode() if api_key is not None else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            from fastapi.responses import JSONResponse

            headers = dict(scope["headers"])
            if self.key is not None and scope["path"] != "/health" and \
                    not hmac.compare_digest(headers.get(b"x-api-key", b""), self.key):
                await JSONResponse({"detail": f"a valid {KEY_HEADER} header is required"},
                                   status_code=401)(scope, receive, send)
                return
            size = headers.get(b"content-length", b"0")
            if not size.isdigit() or int(size) > self.max_bytes:
                await JSONResponse({"detail": "the request is larger than "
                                    f"{self.max_bytes} bytes"}, status_code=413)(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(predictor: Predictor, api_key: str | None = None,
              max_bytes: int = MAX_BYTES) -> Any:
    """The FastAPI app serving `predictor`; with `api_key`, every request but /health
    must carry it in the X-API-Key header (401 otherwise)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    raw, batcher = predictor.raw, Batcher(predictor)
    app = FastAPI(title=f"kerastrain: {raw.run_dir.name}",
                  description="Predictions of a kerastrain run: raw columns in, the run's "
                              "fitted preprocessing inside. See GET /schema.")

    app.add_middleware(Guard, api_key=api_key, max_bytes=max_bytes)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "run_dir": str(raw.run_dir)}

    @app.get("/schema")
    def schema() -> dict[str, Any]:
        return raw.describe()

    body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {
            "type": "object", "required": ["rows"],
            "properties": {"rows": {"type": "array", "items": {"type": "object"}}}},
            "example": {"rows": [{spec.column: None for spec in raw.inputs}]}},
        "text/csv": {"schema": {"type": "string"}}}}}

    @app.post("/predict", openapi_extra=body)
    async def predict(request: Request) -> Any:
        chunks, size = [], 0
        async for chunk in request.stream():   # a body without Content-Length, too
            size += len(chunk)
            if size > max_bytes:
                return JSONResponse({"detail": f"the request is larger than {max_bytes} "
                                     "bytes"}, status_code=413)
            chunks.append(chunk)
        data = b"".join(chunks)
        try:
            rows = _rows(request.headers.get("content-type", ""), data)
            predictions = await batcher.predict(rows)
        except RowProblems as problems:
            return JSONResponse({"detail": problems.problems}, status_code=422)
        return JSONResponse({"predictions": predictions})   # no re-encoding pass

    return app


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
    if ready is not None:
        ready(f"http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
