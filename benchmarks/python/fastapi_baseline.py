"""The baseline of benchmarks/python-bridge.bench.ts: a Cortex predictor on FastAPI + uvicorn.

This is the stack Cortex 0.2x's Python image ran (``cortex/serve/serve.py`` on uvicorn), cut down to
what answers a prediction: the user's ``predictor.py`` is imported, ``PythonPredictor(config=...)``
(or ``ONNXPredictor``, not used here) is constructed on a thread of the request pool, as Cortex did,
and ``POST /predict`` parses the JSON body with ``await request.json()``, calls ``predict`` on the
thread pool (``threads`` threads: anyio's default limiter is set to it, as Cortex set the event loop's
default executor), and answers ``str`` as text/plain, ``bytes`` as octet-stream, anything else as JSON.

Two flavours (``--flavour``):

- ``minimal`` (default): one ``async def`` route, the body parsed in it and ``predict`` run with
  ``run_in_threadpool``; no middleware. The fastest FastAPI server of this shape.
- ``cortex``: serve.py's shape: CORS middleware, a request-registration middleware (start time,
  request id, status and duration recorded per request, in memory instead of files) and a
  payload-parsing middleware in front of a sync ``def`` route (FastAPI runs it on the thread pool).

One uvicorn process (no ``--workers``), access log off, keep-alive 65 s. The socket is bound by this
script (``127.0.0.1``, port 0 unless ``--port``) and handed to uvicorn, so the port is known before it
serves: one JSON line ``{"type": "myelin.replica.listening", "port": N, ...}`` is printed on stdout once
the predictor is constructed. Exits on SIGTERM/SIGINT (uvicorn's handlers).

    /usr/bin/python3 benchmarks/python/fastapi_baseline.py --predictor examples/iris-sklearn/predictor.py \
        --config '{"C": 10}' [--threads 1] [--flavour minimal|cortex] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import json
import os
import socket
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List

import anyio.to_thread
import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response


def load_predictor(path: str, config: Dict[str, Any], pool: ThreadPoolExecutor) -> Any:
    """Imports ``path`` and constructs its ``PythonPredictor(config=...)`` on a pool thread (Cortex's start())."""
    project = os.path.dirname(os.path.abspath(path))
    os.chdir(project)
    if project not in sys.path:
        sys.path.insert(0, project)
    spec = importlib.util.spec_from_file_location("cortex_predictor", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, "PythonPredictor")
    return pool.submit(lambda: cls(config=config)).result()


def to_response(prediction: Any) -> Response:
    """Cortex's rules: bytes → octet-stream, str → text/plain, a Response as it is, else JSON."""
    if isinstance(prediction, bytes):
        return Response(content=prediction, media_type="application/octet-stream")
    if isinstance(prediction, str):
        return Response(content=prediction, media_type="text/plain")
    if isinstance(prediction, Response):
        return prediction
    return Response(content=json.dumps(prediction), media_type="application/json")


def predict_kwargs(arg_names: List[str], request: Request, payload: Any) -> Dict[str, Any]:
    """The ``predict`` arguments by name, as Cortex's ``build_predict_kwargs``."""
    kwargs: Dict[str, Any] = {}
    if "payload" in arg_names:
        kwargs["payload"] = payload
    if "headers" in arg_names:
        kwargs["headers"] = request.headers
    if "query_params" in arg_names:
        kwargs["query_params"] = request.query_params
    return kwargs


async def parse_body(request: Request) -> Any:
    """Cortex's parse_payload: JSON by content type, text/bytes otherwise (forms are not benchmarked)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("application/json"):
        return await request.json()
    body = await request.body()
    return body.decode("utf-8") if content_type.startswith("text/plain") else body


def minimal_app(predictor: Any, arg_names: List[str]) -> FastAPI:
    """One async route: parse, ``predict`` on the thread pool, encode."""
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        try:
            payload = await parse_body(request)
        except json.JSONDecodeError as e:
            return JSONResponse(content={"error": str(e)}, status_code=400)
        prediction = await run_in_threadpool(predictor.predict, **predict_kwargs(arg_names, request, payload))
        return to_response(prediction)

    return app


def cortex_app(predictor: Any, arg_names: List[str]) -> FastAPI:
    """serve.py's shape: CORS, request registration and payload parsing middlewares, a sync route."""
    app = FastAPI()
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=True, allow_methods=["*"], allow_headers=["*"])
    # What serve.py posted per request (status code and latency); kept in memory here, not sent anywhere.
    recorded: Dict[str, float] = {"requests": 0, "latency_s": 0.0}

    def is_prediction(request: Request) -> bool:
        return request.url.path == "/predict" and request.method == "POST"

    @app.middleware("http")
    async def register_request(request: Request, call_next: Callable) -> Response:
        request.state.start_time = time.time()
        request.state.request_id = request.headers.get("x-request-id") or str(uuid.uuid1())
        response = await call_next(request)
        if is_prediction(request):
            recorded["requests"] += 1
            recorded["latency_s"] += time.time() - request.state.start_time
        return response

    @app.middleware("http")
    async def parse_payload(request: Request, call_next: Callable) -> Response:
        if not is_prediction(request):
            return await call_next(request)
        try:
            request.state.payload = await parse_body(request)
        except json.JSONDecodeError as e:
            return JSONResponse(content={"error": str(e)}, status_code=400)
        return await call_next(request)

    def predict(request: Request) -> Response:
        return to_response(predictor.predict(**predict_kwargs(arg_names, request, request.state.payload)))

    app.add_api_route("/predict", predict, methods=["POST"])
    return app


def main() -> None:
    """Parses the arguments, constructs the predictor, binds the socket and runs uvicorn until a signal."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--predictor", required=True, help="the user's predictor.py")
    ap.add_argument("--config", default="{}", help="predictor.config as JSON")
    ap.add_argument("--threads", type=int, default=1, help="threads_per_process: size of the request thread pool")
    ap.add_argument("--flavour", choices=("minimal", "cortex"), default="minimal")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--http", default="auto", help="uvicorn --http: auto (httptools when installed, else h11), h11, httptools")
    ap.add_argument("--loop", default="auto", help="uvicorn --loop: auto (uvloop when installed, else asyncio), asyncio, uvloop")
    args = ap.parse_args()

    pool = ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="predict")
    predictor = load_predictor(os.path.abspath(args.predictor), json.loads(args.config), pool)
    arg_names = inspect.getfullargspec(predictor.predict).args
    app = (cortex_app if args.flavour == "cortex" else minimal_app)(predictor, arg_names)

    @app.on_event("startup")
    async def size_thread_pool() -> None:
        # starlette >= 0.15 runs sync code through anyio, whose limiter (40 by default) bounds the
        # threads; Cortex's starlette ran it on the loop's default executor of threads_per_process.
        anyio.to_thread.current_default_thread_limiter().total_tokens = args.threads
        asyncio.get_running_loop().set_default_executor(pool)

    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (as the
    # ones loop.create_server(host, port) makes); without it uvicorn's separate writes of the head and
    # the body wait for the client's delayed ACK (~40 ms per request on loopback).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(2048)
    config = uvicorn.Config(app, loop=args.loop, http=args.http, log_level="warning", access_log=False, timeout_keep_alive=65, lifespan="on")
    server = uvicorn.Server(config)
    config.load()  # resolves auto http/loop, so the line below says what runs
    http_impl = getattr(config.http_protocol_class, "__name__", str(config.http_protocol_class))
    loop_impl = "uvloop" if args.loop == "uvloop" or (args.loop == "auto" and importlib.util.find_spec("uvloop")) else "asyncio"
    line = {
        "type": "myelin.replica.listening",
        "port": sock.getsockname()[1],
        "pid": os.getpid(),
        "flavour": args.flavour,
        "threads": args.threads,
        "http": http_impl,
        "loop": loop_impl,
        "python": sys.version.split()[0],
        "versions": {m: sys.modules[m].__version__ for m in ("fastapi", "uvicorn", "starlette") if hasattr(sys.modules.get(m), "__version__")},
    }
    print(json.dumps(line), flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
