"""myelin's Python bridge: runs a Cortex predictor (0.23-0.25 interface) for a myelin replica.

The replica (Node) starts one such process per ``processes_per_replica``. It owns HTTP, admission,
metrics and the models of ONNX/TensorFlow predictors; this process runs only the user's code, with
``threads_per_process`` threads. Standard library only; numpy is imported when a model client or a
numpy value needs it.

Protocol (version 2, docs/python-bridge.md): frames on two pipes, file descriptor 3 (replica to
Python) and 4 (Python to replica). A frame is ``u32 header length | u32 body length`` (big-endian),
a UTF-8 JSON header, then the body: the header's ``bufs`` list gives the byte length of each binary
part, in order. stdout and stderr stay free for the user's output.
"""

from __future__ import annotations

import collections
import copy
import importlib.util
import inspect
import io
import json
import logging
import math
import os
import signal
import struct
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Sequence, Tuple

PROTOCOL = 2
_PREFIX = struct.Struct(">II")
#: Largest JSON header accepted, in bytes.
MAX_HEADER_BYTES = 64 << 20
#: Traceback lines kept in a start-up failure (the replica shows them in ``myelin get``).
TRACEBACK_TAIL_LINES = 20

# ---------------------------------------------------------------------------------------- framing


class Channel:
    """Framed, thread-safe messages over a pair of pipes (read end ``rfd``, write end ``wfd``)."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self._reader = open(rfd, "rb", buffering=1 << 16, closefd=True)
        self._wfd = wfd
        self._lock = threading.Lock()

    def _read_exact(self, n: int) -> Optional[bytearray]:
        out = bytearray(n)
        view = memoryview(out)
        got = 0
        while got < n:
            k = self._reader.readinto(view[got:])
            if not k:
                return None
            got += k
        return out

    def read(self) -> Optional[Tuple[Dict[str, Any], List[memoryview]]]:
        """Next frame as (header, binary parts), or None at end of input (the replica is gone)."""
        prefix = self._read_exact(_PREFIX.size)
        if prefix is None:
            return None
        header_len, body_len = _PREFIX.unpack(prefix)
        if header_len > MAX_HEADER_BYTES:
            raise ValueError(f"frame header of {header_len} bytes exceeds {MAX_HEADER_BYTES}")
        raw = self._read_exact(header_len)
        body = self._read_exact(body_len) if body_len else bytearray()
        if raw is None or body is None:
            return None
        header = json.loads(raw)
        parts: List[memoryview] = []
        view = memoryview(body)
        offset = 0
        for length in header.get("bufs", ()):
            parts.append(view[offset : offset + length])
            offset += length
        if offset != body_len:
            raise ValueError(f'frame "bufs" add up to {offset} bytes, the body has {body_len}')
        return header, parts

    def send(self, header: Dict[str, Any], parts: Sequence[bytes] = ()) -> None:
        """Writes one frame; ``parts`` are bytes-like objects sent after the header."""
        header["bufs"] = [len(p) for p in parts]
        raw = json.dumps(header, separators=(",", ":"), default=_json_default).encode("utf-8")
        data = b"".join((_PREFIX.pack(len(raw), sum(header["bufs"])), raw, *parts))
        view = memoryview(data)
        with self._lock:
            while view:
                written = os.write(self._wfd, view)
                view = view[written:]


# ------------------------------------------------------------------------------ request data types


class MultiDict:
    """A read-only multi-valued mapping, like starlette's QueryParams/Headers/FormData.

    ``d[key]`` and ``d.get(key)`` give the last value of a key (as starlette does), ``getlist`` every
    value; ``items()`` one pair per key, ``multi_items()`` every pair. With ``casefold`` set, keys
    compare case-insensitively (HTTP headers; keys are stored lower-case).
    """

    def __init__(self, pairs: Iterable[Tuple[str, Any]], casefold: bool = False) -> None:
        self._casefold = casefold
        self._list = [((k.lower() if casefold else k), v) for k, v in pairs]
        self._dict = {k: v for k, v in self._list}

    def _key(self, key: str) -> str:
        return key.lower() if self._casefold and isinstance(key, str) else key

    def __getitem__(self, key: str) -> Any:
        return self._dict[self._key(key)]

    def __contains__(self, key: object) -> bool:
        return self._key(key) in self._dict  # type: ignore[arg-type]

    def __iter__(self):
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MultiDict):
            return sorted(self._list, key=repr) == sorted(other._list, key=repr)
        if isinstance(other, dict):
            return self._dict == other
        return NotImplemented

    def get(self, key: str, default: Any = None) -> Any:
        return self._dict.get(self._key(key), default)

    def getlist(self, key: str) -> List[Any]:
        k = self._key(key)
        return [v for kk, v in self._list if kk == k]

    def keys(self):
        return self._dict.keys()

    def values(self):
        return self._dict.values()

    def items(self):
        return self._dict.items()

    def multi_items(self) -> List[Tuple[str, Any]]:
        return list(self._list)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._list!r})"


class QueryParams(MultiDict):
    """Query parameters (starlette's ``request.query_params``)."""


class Headers(MultiDict):
    """Request headers, keys case-insensitive (starlette's ``request.headers``)."""

    def __init__(self, pairs: Iterable[Tuple[str, Any]]) -> None:
        super().__init__(pairs, casefold=True)


class UploadFile:
    """An uploaded file of a multipart form: ``filename``, ``content_type``, ``file`` (a binary file)."""

    def __init__(self, filename: str, content_type: str, data: bytes) -> None:
        self.filename = filename
        self.content_type = content_type
        self.file = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        """Reads from ``file`` (synchronous, unlike starlette's coroutine: predictors run in threads)."""
        return self.file.read(size)

    def __repr__(self) -> str:
        return f"UploadFile(filename={self.filename!r}, content_type={self.content_type!r})"


class FormData(MultiDict):
    """A form (urlencoded or multipart): values are ``str`` or ``UploadFile``."""


# ----------------------------------------------------------------------------------- errors, JSON


class HTTPError(Exception):
    """Raised by the bridge (or a predictor) to answer with ``status_code`` and ``detail``."""

    def __init__(self, status_code: int, detail: str = "", headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}


class StartupError(Exception):
    """The predictor cannot start: the message names the file, class and problem (Cortex's wording)."""


def _json_default(value: Any) -> Any:
    """JSON for what ``json`` cannot encode itself: numpy arrays and scalars, bytes, sets."""
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _http_error_of(err: BaseException) -> Optional[Tuple[int, str, Dict[str, str]]]:
    """(status, detail, headers) of an HTTP exception: ours, starlette/fastapi's, or any look-alike."""
    status = getattr(err, "status_code", None)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return None
    if not hasattr(err, "detail"):
        return None
    detail = getattr(err, "detail")
    headers = getattr(err, "headers", None) or {}
    text = detail if isinstance(detail, str) else json.dumps(detail, default=_json_default)
    return status, text, {str(k): str(v) for k, v in dict(headers).items()}


def _traceback_tail(err: BaseException, lines: int = TRACEBACK_TAIL_LINES) -> str:
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


#: Frames of the machinery between the bridge and the user's code, left out of start-up tracebacks.
_INTERNAL_FILES = (os.path.abspath(__file__), os.path.dirname(os.path.abspath(ThreadPoolExecutor.__init__.__code__.co_filename)))


def _is_internal_frame(filename: str) -> bool:
    return filename.startswith("<frozen importlib") or any(filename == f or filename.startswith(f + os.sep) for f in _INTERNAL_FILES)


def _startup_traceback(err: BaseException, lines: int = TRACEBACK_TAIL_LINES) -> str:
    """The last ``lines`` lines of a start-up failure's traceback, the user's frames only (the bridge's,
    importlib's and the thread pool's are left out, so ``myelin deploy`` shows where the user's code
    failed). A ``StartupError`` raised from an exception shows that exception; one without a cause has
    nothing to add to its message (empty string)."""
    shown: BaseException = err
    if isinstance(err, StartupError):
        if err.__cause__ is None:
            return ""
        shown = err.__cause__
    te = traceback.TracebackException.from_exception(shown)
    seen = set()
    todo = [te]
    while todo:
        t = todo.pop()
        if t is None or id(t) in seen:
            continue
        seen.add(id(t))
        t.stack = traceback.StackSummary.from_list([f for f in t.stack if not _is_internal_frame(f.filename)])
        todo.extend((t.__cause__, t.__context__))
    text = "".join(te.format())
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


# ------------------------------------------------------------------------------------ model clients

# Element types on the wire (numpy names) and their ONNX names, for NodeArg-like metadata.
_ONNX_TYPE = {
    "float32": "tensor(float)",
    "float64": "tensor(double)",
    "float16": "tensor(float16)",
    "int8": "tensor(int8)",
    "int16": "tensor(int16)",
    "int32": "tensor(int32)",
    "int64": "tensor(int64)",
    "uint8": "tensor(uint8)",
    "uint16": "tensor(uint16)",
    "uint32": "tensor(uint32)",
    "uint64": "tensor(uint64)",
    "bool": "tensor(bool)",
    "string": "tensor(string)",
}


class NodeArg:
    """A model input or output as onnxruntime's ``NodeArg`` shows it: ``name``, ``shape``, ``type``.

    ``shape`` has ints, ``str`` for named dynamic dimensions and ``None`` for unknown ones; ``type`` is
    ONNX's (``tensor(float)``). ``dtype`` is the numpy name (myelin's addition).
    """

    def __init__(self, name: str, dtype: str, shape: Sequence[Any]) -> None:
        self.name = name
        self.dtype = dtype
        self.type = _ONNX_TYPE.get(dtype, dtype)
        self.shape = [None if d == -1 or d is None else d for d in shape]

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


def _numpy():
    try:
        import numpy  # noqa: PLC0415 - imported on first use: a PythonPredictor may not need it
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise RuntimeError("the onnx and tensorflow clients need numpy in the predictor's Python (pip install numpy)") from e
    return numpy


def _to_array(value: Any, arg: NodeArg, model_name: str):
    """Cortex's ``transform_to_numpy``: dtype from the model; a value of lower rank than the model's
    input is reshaped to its shape (named dims as -1, unknown ones as 1) when at most one dimension is
    named. A value of the input's rank keeps its shape (a batch of 2 for ``[None, 4]`` stays ``[2, 4]``;
    the runtime refuses a wrong one with a 400 naming the input)."""
    np = _numpy()
    target = "object" if arg.dtype == "string" else arg.dtype
    shape = [-1 if isinstance(d, str) else (d if isinstance(d, int) else 1) for d in arg.shape]
    try:
        if isinstance(value, np.ndarray):
            arr = value
            if np.issubdtype(arr.dtype, np.number) != np.issubdtype(np.dtype(target), np.number):
                raise ValueError(f"expected dtype '{target}' but found '{arr.dtype}'")
            if str(arr.dtype) != target:
                arr = arr.astype(target)
        else:
            arr = np.array(value, dtype=target)
        if shape and arr.ndim < len(shape) and shape.count(-1) <= 1:
            arr = arr.reshape(shape)
        return arr
    except Exception as e:
        raise HTTPError(400, f"failed to convert to numpy array for model '{model_name}': key '{arg.name}': {e}") from e


def _to_inputs(model_input: Any, args: Sequence[NodeArg], model_name: str) -> Dict[str, Any]:
    """Cortex's ``convert_to_onnx_input``: one input takes the value or ``{name: value}``; several a dict."""
    if len(args) == 1:
        arg = args[0]
        if isinstance(model_input, dict):
            if model_input.get(arg.name) is None:
                raise HTTPError(400, f"missing key '{arg.name}' for model '{model_name}'")
            return {arg.name: _to_array(model_input[arg.name], arg, model_name)}
        return {arg.name: _to_array(model_input, arg, model_name)}
    if not isinstance(model_input, dict):
        keys = ", ".join(f'"{a.name}"' for a in args)
        raise HTTPError(400, f"expected model_input to be a dictionary with keys '{keys}' for model '{model_name}'")
    out = {}
    for arg in args:
        if model_input.get(arg.name) is None:
            raise HTTPError(400, f"missing key '{arg.name}' for model '{model_name}'")
        out[arg.name] = _to_array(model_input[arg.name], arg, model_name)
    return out


class ModelClient:
    """``onnx_client`` / ``tensorflow_client``: the models live in the replica (onnxruntime-node, TF.js);
    ``predict`` shapes the input here and sends the tensors over the bridge as raw bytes."""

    def __init__(self, bridge: "Bridge", fmt: str, models: List[Dict[str, Any]]) -> None:
        self._bridge = bridge
        self._format = fmt
        self._models = {m["name"]: m for m in models}
        self._inputs = {m["name"]: [NodeArg(i["name"], i["dtype"], i["shape"]) for i in m["inputs"]] for m in models}
        self._outputs = {m["name"]: [NodeArg(o["name"], o["dtype"], o["shape"]) for o in m["outputs"]] for m in models}

    def _select(self, model_name: Optional[str], model_version: Any) -> Tuple[str, str]:
        version = str(model_version)
        if version != "latest" and not version.isnumeric():
            raise HTTPError(400, "model_version must be either a parse-able numeric value or 'latest'")
        names = list(self._models)
        if len(names) == 1 and names[0] == "_cortex_default":
            return names[0], version
        if model_name is None:
            raise HTTPError(400, f"model_name was not specified, choose one of the following: {names}")
        if model_name not in self._models:
            raise HTTPError(404, f"'{model_name}' model wasn't found in the list of available models")
        # Versions are the replica's to check: its model client follows live reload (a version added
        # after start is served, a removed one answers 404 naming those left).
        return model_name, version

    def _signature(self, name: str, version: str) -> List[NodeArg]:
        """The model's inputs; with model caching a model not loaded yet has none at start, so the
        replica is asked (``model_signature``: it loads the version, then answers its signature)."""
        if not self._inputs.get(name):
            h, _ = self._bridge.ask_node({"op": "model_signature", "model": name, "version": version})
            self._inputs[name] = [NodeArg(i["name"], i["dtype"], i["shape"]) for i in h["inputs"]]
            self._outputs[name] = [NodeArg(o["name"], o["dtype"], o["shape"]) for o in h["outputs"]]
        return self._inputs[name]

    def input_signature(self, model_name: Optional[str] = None) -> List[NodeArg]:
        """The inputs of a model, as ``NodeArg``-like objects."""
        name, _ = self._select(model_name, "latest")
        return self._signature(name, "latest")

    def predict(self, model_input: Any, model_name: Optional[str] = None, model_version: str = "latest") -> Any:
        """Runs a model: a list of numpy arrays (ONNX, in output order) or a dict by output name (TensorFlow)."""
        name, version = self._select(model_name, model_version)
        arrays = _to_inputs(model_input, self._signature(name, version), name)
        outputs = self._bridge.call_model(name, version, arrays)
        if self._format == "onnx":
            return [arr for _, arr in outputs]
        return {n: arr for n, arr in outputs}

    @property
    def metadata(self) -> Dict[str, Any]:
        """Models and versions, as Cortex's client showed them."""
        return {n: {"versions": list(m["versions"])} for n, m in self._models.items()}


class _LoadedModel:
    """One model version in memory: what ``load_model`` returned, the store's timestamp of the copy it
    was loaded from, and how many running predictions hold it (those are never evicted)."""

    __slots__ = ("value", "timestamp", "bytes", "refs", "removed")

    def __init__(self, value: Any, timestamp: Any, size: int) -> None:
        self.value = value
        self.timestamp = timestamp
        #: Bytes of the version on disk (what ``cache_bytes`` counts).
        self.bytes = size
        self.refs = 0
        #: The version left the store (live reload): dropped as soon as nobody holds it.
        self.removed = False


#: The model versions the prediction running on this thread obtained (key → entry), or None outside one.
_held = threading.local()


class PythonClient:
    """``python_client`` of a PythonPredictor with models (Cortex 0.25 ``multi_model_reloading``).

    The replica owns the tree of models and versions and their local copies (live reload, the disk
    cache); this process keeps what ``load_model(model_path)`` returned, per (model, version). Every
    ``get_model`` asks the replica which version it means (``resolve_model``: Cortex's selection rules,
    400/404 answers naming what exists); only a version not in memory asks for its local path (which
    may download it) and calls ``load_model``.

    Without ``cache_size`` every version is loaded before the process is ready (``preload``) and kept;
    versions added later are loaded by the first ``get_model`` that asks for them, and removed ones are
    dropped. With ``cache_size`` versions are loaded on request and at most ``cache_size`` stay in
    memory (and, with myelin's ``cache_bytes``, at most that many bytes of them, counted on disk), least
    recently used evicted first, except those held by a running prediction: when all are held the
    cache exceeds its size until a prediction ends.

    Thread-safe: loads of different versions run in parallel, two threads asking for one version load
    it once. Counters (``hits``, ``misses``, ``evictions``, ``loads``, ``load_ms``) go to the replica
    with the next answer frame.
    """

    def __init__(self, bridge: "Bridge", cache_size: Optional[int], cache_bytes: Optional[int] = None) -> None:
        self._bridge = bridge
        self._cache_size = cache_size
        self._cache_bytes = cache_bytes
        self._entries: "collections.OrderedDict[Tuple[str, str], _LoadedModel]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self._loading: Dict[Tuple[str, str], threading.Lock] = {}
        self._load: Optional[Callable[[str], Any]] = None
        self._stats = {"hits": 0, "misses": 0, "evictions": 0, "loads": 0, "load_ms": 0.0}
        self._dirty = True

    def set_load_method(self, load: Callable[[str], Any]) -> None:
        self._load = load

    # -- the user's API --

    def get_model(self, model_name: Optional[str] = None, model_version: Any = "latest") -> Any:
        """The value ``load_model`` returned for a version: ``model_name`` is ignored for a single model
        (``path``) and required with several; ``model_version`` is digits or ``"latest"``. Raises
        ``HTTPError`` 400 (malformed) or 404 (unknown model or version)."""
        if model_version is None:
            model_version = "latest"
        if isinstance(model_version, bool) or not isinstance(model_version, (str, int)):
            raise HTTPError(400, f"model_version must be either a parse-able numeric value or 'latest' (got {model_version!r})")
        sel, _ = self._bridge.ask_node({"op": "resolve_model", "model": model_name, "version": str(model_version), "local": False})
        key = (sel["name"], sel["version"])
        held = getattr(_held, "models", None)
        with self._lock:
            value = self._take(key, sel.get("timestamp"), held)
            if value is not _MISSING:
                return value
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:
            with self._lock:
                # Another thread loaded it while this one waited.
                value = self._take(key, sel.get("timestamp"), held)
                if value is not _MISSING:
                    return value
            return self._load_version(key, held)

    @property
    def metadata(self) -> Dict[str, Any]:
        """Models and their versions as the replica serves them now (``{name: {versions, timestamps}}``)."""
        h, _ = self._bridge.ask_node({"op": "list_models"})
        return {m["name"]: {"versions": [v["version"] for v in m["versions"]], "timestamps": [v["timestamp"] for v in m["versions"]]} for m in h["models"]}

    # -- the bridge's side --

    def preload(self) -> None:
        """Loads every version the replica serves (no ``cache_size``: before the process is ready)."""
        h, _ = self._bridge.ask_node({"op": "list_models"})
        for m in h["models"]:
            for v in m["versions"]:
                key = (m["name"], v["version"])
                with self._lock:
                    if key in self._entries:
                        continue
                self._load_version(key, None, preload=True)

    def release(self, held: Dict[Tuple[str, str], _LoadedModel]) -> None:
        """A prediction ended: the versions it held may be evicted (or dropped, if removed) now."""
        with self._lock:
            for key, entry in held.items():
                entry.refs -= 1
                if entry.removed and entry.refs == 0 and self._entries.get(key) is entry:
                    del self._entries[key]
                    self._dirty = True
            self._evict_excess()

    def drop(self, model: str, version: str) -> None:
        """A version left the store (or was re-uploaded): forget it once no prediction holds it."""
        key = (model, version)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.removed = True
            if entry.refs == 0:
                del self._entries[key]
            self._dirty = True

    def take_stats(self) -> Optional[Dict[str, Any]]:
        """The counters, when they changed since the last call (else None)."""
        with self._lock:
            if not self._dirty:
                return None
            self._dirty = False
            return {**self._stats, "in_memory": len(self._entries)}

    # -- internals (``_lock`` held where noted) --

    def _take(self, key: Tuple[str, str], timestamp: Any, held: Optional[Dict[Tuple[str, str], _LoadedModel]]) -> Any:
        """With ``_lock``: the value of a current entry (a hit: now the most recent, held by the
        running prediction), or ``_MISSING``."""
        entry = self._entries.get(key)
        if entry is None or entry.removed or entry.timestamp != timestamp:
            return _MISSING
        self._entries.move_to_end(key)
        self._stats["hits"] += 1
        self._dirty = True
        self._hold(key, entry, held)
        return entry.value

    @staticmethod
    def _hold(key: Tuple[str, str], entry: _LoadedModel, held: Optional[Dict[Tuple[str, str], _LoadedModel]]) -> None:
        if held is not None and key not in held:
            entry.refs += 1
            held[key] = entry

    def _load_version(self, key: Tuple[str, str], held: Optional[Dict[Tuple[str, str], _LoadedModel]], preload: bool = False) -> Any:
        """Asks for the version's local path, runs ``load_model`` on it (without ``_lock``) and keeps
        the result; evicts beyond ``cache_size``."""
        name, version = key
        if self._load is None:
            raise RuntimeError("the predictor has no load_model(self, model_path) method")
        local, _ = self._bridge.ask_node({"op": "resolve_model", "model": name, "version": version, "local": True})
        shown = "the model" if name == "_cortex_default" else f"model {name}"
        logging.getLogger("myelin.bridge").info("loading %s of version %s", shown, version)
        started = time.monotonic()
        try:
            value = self._load(local["path"])
        except Exception as e:
            raise RuntimeError(f"failed loading {shown} of version {version}: {type(e).__name__}: {e}") from e
        finally:
            # The replica keeps the disk copy (disk_cache_size) until load_model is done with it.
            if local.get("pin") is not None:
                self._bridge.channel.send({"op": "unpin", "pin": local["pin"]})
        elapsed_ms = (time.monotonic() - started) * 1000.0
        with self._lock:
            if not preload:
                self._stats["misses"] += 1
            self._stats["loads"] += 1
            self._stats["load_ms"] += elapsed_ms
            entry = _LoadedModel(value, local.get("timestamp"), int(local.get("bytes") or 0))
            self._entries.pop(key, None)
            self._entries[key] = entry
            self._hold(key, entry, held)
            self._evict_excess()
            self._dirty = True
        return value

    def _evict_excess(self) -> None:
        """With ``_lock``: least recently used versions that no prediction holds go, down to ``cache_size``."""
        if self._cache_size is None:
            return
        while len(self._entries) > self._cache_size or (
            self._cache_bytes is not None and sum(e.bytes for e in self._entries.values()) > self._cache_bytes
        ):
            victim = next((k for k, e in self._entries.items() if e.refs == 0), None)
            if victim is None:
                # Every version is in use: over the size until a prediction releases one.
                return
            del self._entries[victim]
            self._stats["evictions"] += 1
            self._dirty = True
            logging.getLogger("myelin.bridge").info("evicted model %s of version %s from memory (cache_size %d)", victim[0], victim[1], self._cache_size)


_MISSING = object()


# ----------------------------------------------------------------------------- loading user code

CLASS_NAME = {"python": "PythonPredictor", "onnx": "ONNXPredictor", "tensorflow": "TensorFlowPredictor"}
CLIENT_ARG = {"onnx": "onnx_client", "tensorflow": "tensorflow_client"}
PREDICT_ARGS = ("payload", "query_params", "headers", "batch_id")
POST_PREDICT_ARGS = ("response", "payload", "query_params", "headers")


def _load_module(path: str):
    spec = importlib.util.spec_from_file_location("cortex_predictor", path)
    if spec is None or spec.loader is None:
        raise StartupError(f"error in {os.path.basename(path)}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules["cortex_predictor"] = module
    spec.loader.exec_module(module)
    return module


def _check_args(cls: type, method: str, required: Sequence[str], optional: Sequence[str], where: str) -> List[str]:
    """The argument names of ``cls.method`` after Cortex's signature checks; raises StartupError."""
    fn = getattr(cls, method, None)
    if fn is None:
        raise StartupError(f'{where}: class {cls.__name__}: required method "{method}" is not defined')
    if not callable(fn):
        raise StartupError(f'{where}: class {cls.__name__}: "{method}" is defined, but is not a method')
    args = inspect.getfullargspec(fn).args
    shown = f"{method}({', '.join(args)})"
    if not args or args[0] != "self":
        raise StartupError(f'{where}: class {cls.__name__}: invalid signature for method "{shown}": "self" must be the first argument')
    for name in required:
        if name not in args:
            raise StartupError(f'{where}: class {cls.__name__}: invalid signature for method "{shown}": "{name}" is a required argument, but was not provided')
    for name in args[1:]:
        if name not in required and name not in optional:
            raise StartupError(f'{where}: class {cls.__name__}: invalid signature for method "{shown}": "{name}" is not a supported argument')
    return args[1:]


def _check_python_predictor_with_models(cls: type, init_args: Sequence[str], where: str) -> None:
    """Cortex's extra checks of a PythonPredictor whose API has models: ``python_client`` in
    ``__init__`` and a ``load_model(self, model_path)`` method. Raises StartupError."""
    if "python_client" not in init_args:
        shown = f"__init__({', '.join(['self', *init_args])})"
        raise StartupError(
            f'{where}: class {cls.__name__}: invalid signature for method "{shown}": "python_client" is a required argument, but was not provided: '
            'when the python predictor type is used and models are specified in the api spec, adding the "python_client" argument is required'
        )
    if getattr(cls, "load_model", None) is None:
        raise StartupError(
            f'{where}: class {cls.__name__}: required method "load_model" is not defined: '
            'when the python predictor type is used and models are specified in the api spec, adding the "load_model" method is required'
        )
    _check_args(cls, "load_model", ["model_path"], [], where)


class Predictor:
    """The user's predictor, loaded: a class instance (``predict``/``post_predict``) or a request
    handler module (``pre_inference``/``post_inference`` around the model)."""

    def __init__(self, bridge: "Bridge", init: Dict[str, Any]) -> None:
        self.kind: str = init["kind"]
        self.path: str = init["path"]
        where = f"error in {os.path.basename(self.path)}"
        module = _load_module(self.path)
        self.client: Any = None
        if init.get("models") and self.kind in ("onnx", "tensorflow", "handler"):
            fmt = init.get("model_format", self.kind)
            self.client = ModelClient(bridge, fmt, init["models"])
        if self.kind == "handler":
            self.pre = getattr(module, "pre_inference", None)
            self.post = getattr(module, "post_inference", None)
            if self.pre is None and self.post is None:
                raise StartupError(f"{where}: a request handler needs a pre_inference(sample, metadata) or post_inference(prediction, metadata) function")
            for name, fn in (("pre_inference", self.pre), ("post_inference", self.post)):
                if fn is not None and not callable(fn):
                    raise StartupError(f"{where}: {name} must be a function")
            fmt = init.get("model_format", "onnx")
            model = init["models"][0]
            self.input_metadata = [NodeArg(i["name"], i["dtype"], i["shape"]) for i in model["inputs"]]
            self.output_metadata = [NodeArg(o["name"], o["dtype"], o["shape"]) for o in model["outputs"]]
            if fmt == "tensorflow":
                self.input_metadata = {a.name: a for a in self.input_metadata}  # type: ignore[assignment]
                self.output_metadata = {a.name: a for a in self.output_metadata}  # type: ignore[assignment]
            self.class_name = None
            #: Request parts the user's code reads besides the payload (the replica sends only those).
            self.uses: List[str] = []
            return
        target = CLASS_NAME[self.kind]
        found = [c for n, c in inspect.getmembers(module, inspect.isclass) if n == target]
        if not found:
            raise StartupError(f"{where}: {target} class is not defined")
        cls = found[0]
        self.class_name = cls.__name__
        #: ``python_client`` settings when the API has models (``multi_model_reloading``), else None.
        models_spec: Optional[Dict[str, Any]] = init.get("python_client") if self.kind == "python" else None
        if self.kind == "python":
            init_args = _check_args(cls, "__init__", ["config"], ["job_spec", "python_client"], where)
            if models_spec is not None:
                _check_python_predictor_with_models(cls, init_args, where)
        else:
            init_args = _check_args(cls, "__init__", [CLIENT_ARG[self.kind], "config"], ["job_spec"], where)
        self.predict_args = _check_args(cls, "predict", [], PREDICT_ARGS, where)
        self.post_predict_args: Optional[List[str]] = None
        if getattr(cls, "post_predict", None) is not None:
            self.post_predict_args = _check_args(cls, "post_predict", [], POST_PREDICT_ARGS, where)
        taken = set(self.predict_args) | set(self.post_predict_args or ())
        self.uses = [name for name in ("query_params", "headers") if name in taken]
        if models_spec is not None:
            self.client = PythonClient(bridge, models_spec.get("cache_size"), models_spec.get("cache_bytes"))
        kwargs: Dict[str, Any] = {}
        if "config" in init_args:
            kwargs["config"] = copy.deepcopy(init.get("config") or {})
        if "job_spec" in init_args:
            kwargs["job_spec"] = None
        if self.kind == "python" and "python_client" in init_args:
            kwargs["python_client"] = self.client
        if self.kind in CLIENT_ARG:
            kwargs[CLIENT_ARG[self.kind]] = self.client
        try:
            self.instance = cls(**kwargs)
        except Exception as e:
            raise StartupError(f"{where}: class {cls.__name__}: __init__ failed: {type(e).__name__}: {e}") from e
        if isinstance(self.client, PythonClient):
            self.client.set_load_method(self.instance.load_model)
            if models_spec is not None and models_spec.get("cache_size") is None:
                # No cache: every version is in memory before the process is ready (as Cortex's
                # start-up did), so no prediction waits for a load.
                try:
                    self.client.preload()
                except Exception as e:
                    raise StartupError(f"{where}: class {cls.__name__}: load_model failed: {e}") from e

    def describe(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"path": self.path}
        if self.class_name:
            out["class"] = self.class_name
        else:
            out["pre_inference"] = self.pre is not None
            out["post_inference"] = self.post is not None
        return out


# ------------------------------------------------------------------------------------- the bridge


class _Call:
    """A model call waiting for the replica's answer."""

    __slots__ = ("event", "header", "parts")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.header: Dict[str, Any] = {}
        self.parts: List[memoryview] = []


#: The request a pool thread is running (its id goes with the thread's log records).
_request = threading.local()


class _ChannelLogHandler(logging.Handler):
    """Sends Python log records to the replica, which logs them as pino JSON at the same level."""

    def __init__(self, bridge: "Bridge") -> None:
        super().__init__()
        self._bridge = bridge

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if record.exc_info:
                msg += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            frame = {"op": "log", "level": record.levelname.lower(), "logger": record.name, "msg": msg}
            rid = getattr(_request, "rid", None)
            if rid is not None:
                frame["rid"] = rid
            self._bridge.channel.send(frame)
        except Exception:  # pragma: no cover - never let logging break a prediction
            pass


class Bridge:
    """Reads frames on the main thread, runs predictions on a pool of ``threads`` threads."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.predictor: Optional[Predictor] = None
        self.pool: Optional[ThreadPoolExecutor] = None
        self.monitoring: Optional[Dict[str, Any]] = None
        self._calls: Dict[int, _Call] = {}
        self._calls_lock = threading.Lock()
        self._next_call = 0
        #: One thread per process: predictions run on the thread that reads the pipe.
        self.inline = False
        #: Frames read while the main thread waited for a model result (run next by the main loop).
        self._deferred: Deque[Tuple[Dict[str, Any], List[memoryview]]] = collections.deque()

    # -- requests to the replica (from predictor threads) --

    def ask_node(self, header: Dict[str, Any], parts: Sequence[bytes] = ()) -> Tuple[Dict[str, Any], List[memoryview]]:
        """Sends a request frame (``model_call``, ``resolve_model``, ``list_models``) and waits for its
        ``model_result``; raises ``HTTPError`` when the replica answers with a status, else RuntimeError."""
        call = _Call()
        with self._calls_lock:
            self._next_call += 1
            cid = self._next_call
            self._calls[cid] = call
        header["cid"] = cid
        self.channel.send(header, parts)
        if self.inline and threading.current_thread() is threading.main_thread():
            # This is the only reader: it reads its own answer; anything else waits for the main loop.
            # (A thread of the user's own, e.g. a warm-up, waits for the main loop to deliver it.)
            while not call.event.is_set():
                frame = self._read()
                if frame[0].get("op") == "model_result":
                    self._on_model_result(*frame)
                else:
                    self._deferred.append(frame)
        else:
            call.event.wait()
        h = call.header
        if not h.get("ok"):
            message = str(h.get("message", f"{header['op']} failed"))
            raise HTTPError(int(h["status"]), message) if h.get("status") else RuntimeError(message)
        return h, call.parts

    # -- model calls (from predictor threads) --

    def call_model(self, model: str, version: str, arrays: Dict[str, Any]) -> List[Tuple[str, Any]]:
        """Sends input tensors to the replica's runtime and waits for the outputs (numpy arrays)."""
        np = _numpy()
        tensors, parts = [], []
        for name, arr in arrays.items():
            dtype = "string" if arr.dtype == object or arr.dtype.kind in "US" else str(arr.dtype)
            entry: Dict[str, Any] = {"name": name, "dtype": dtype, "shape": list(arr.shape)}
            if dtype == "string":
                entry["strings"] = [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in arr.reshape(-1).tolist()]
            else:
                entry["buf"] = len(parts)
                parts.append(np.ascontiguousarray(arr).tobytes())
            tensors.append(entry)
        h, call_parts = self.ask_node({"op": "model_call", "model": model, "version": version, "inputs": tensors}, parts)
        out = []
        for t in h["outputs"]:
            if t["dtype"] == "string":
                arr = np.array(t["strings"], dtype=object).reshape(t["shape"])
            else:
                arr = np.frombuffer(call_parts[t["buf"]], dtype=t["dtype"]).reshape(t["shape"])
            out.append((t["name"], arr))
        return out

    def _on_model_result(self, header: Dict[str, Any], parts: List[memoryview]) -> None:
        with self._calls_lock:
            call = self._calls.pop(header["cid"], None)
        if call is not None:
            call.header, call.parts = header, parts
            call.event.set()

    # -- start-up --

    def _init(self, init: Dict[str, Any]) -> None:
        project = init["project_dir"]
        os.chdir(project)
        for p in (project, init.get("python_path") or project):
            if p not in sys.path:
                sys.path.insert(0, p)
        self.monitoring = init.get("monitoring")
        level = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}.get(init.get("log_level") or "info", logging.INFO)
        root = logging.getLogger()
        root.handlers[:] = [_ChannelLogHandler(self)]
        root.setLevel(level)
        try:
            if self.inline:
                # __init__ on the thread that runs predict, as Cortex did with one thread per process.
                self.predictor = Predictor(self, init)
            else:
                self.pool = ThreadPoolExecutor(max_workers=int(init["threads"]), thread_name_prefix="predict")
                # Cortex ran __init__ on a request thread (some libraries want predict on the thread that loaded them).
                self.predictor = self.pool.submit(Predictor, self, init).result()
        except BaseException as e:  # noqa: BLE001 - every start-up failure is reported to the replica
            message = str(e) if isinstance(e, StartupError) else f"error in {os.path.basename(init['path'])}: {type(e).__name__}: {e}"
            self.channel.send({"op": "init_failed", "message": message, "traceback": _startup_traceback(e)})
            self.channel_close_and_exit(1)
        self._send_answer(
            {
                "op": "ready",
                "pid": os.getpid(),
                "python": sys.version.split()[0],
                "executable": sys.executable,
                "predictor": self.predictor.describe(),
                "uses": self.predictor.uses,
            }
        )

    def channel_close_and_exit(self, code: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    # -- predictions (on pool threads) --

    def _payload(self, p: Dict[str, Any], parts: List[memoryview]) -> Any:
        kind = p["kind"]
        if kind == "json":
            return json.loads(bytes(parts[p["buf"]]))
        if kind == "text":
            return bytes(parts[p["buf"]]).decode("utf-8")
        if kind == "bytes":
            return bytes(parts[p["buf"]])
        if kind == "form":
            pairs = []
            for f in p["fields"]:
                if "buf" in f:
                    pairs.append((f["name"], UploadFile(f["filename"], f["content_type"], bytes(parts[f["buf"]]))))
                else:
                    pairs.append((f["name"], f["value"]))
            return FormData(pairs)
        return None

    def _send_answer(self, frame: Dict[str, Any], parts: Sequence[bytes] = ()) -> None:
        """Sends a ``result``/``error``/``batch_result`` frame with the model counters when they changed."""
        client = self.predictor.client if self.predictor is not None else None
        if isinstance(client, PythonClient):
            stats = client.take_stats()
            if stats is not None:
                frame["model_stats"] = stats
        self.channel.send(frame, parts)

    def _call_predict(self, pred: Predictor, kwargs: Dict[str, Any]) -> Any:
        """The user's ``predict``; the model versions it obtains through ``python_client`` are held
        (never evicted) until it returns."""
        if not isinstance(pred.client, PythonClient):
            return pred.instance.predict(**kwargs)
        held: Dict[Tuple[str, str], _LoadedModel] = {}
        _held.models = held
        try:
            return pred.instance.predict(**kwargs)
        finally:
            _held.models = None
            pred.client.release(held)

    def _error_frame(self, e: BaseException) -> Dict[str, Any]:
        """An exception as an answer: ``kind: http`` (status, message, headers) or ``kind: exception``."""
        http = _http_error_of(e)
        if http is not None:
            status, detail, extra = http
            return {"kind": "http", "status": status, "message": detail, "headers": extra}
        return {"kind": "exception", "name": type(e).__name__, "message": str(e), "traceback": _traceback_tail(e, 60)}

    def _predict(self, header: Dict[str, Any], parts: List[memoryview]) -> None:
        rid = header["id"]
        _request.rid = header.get("rid")
        pred = self.predictor
        assert pred is not None
        debug = bool(header.get("debug"))
        stages: List[Tuple[str, Any]] = []
        try:
            payload = self._payload(header["payload"], parts)
            # Built only for predictors that take them (the replica sends them only then).
            query = QueryParams(header["query"]) if "query" in header else None
            headers = Headers(header["headers"]) if "headers" in header else None
            if pred.kind == "handler":
                value = self._run_handler(pred, payload, stages if debug else None)
            else:
                kwargs: Dict[str, Any] = {}
                if "payload" in pred.predict_args:
                    kwargs["payload"] = payload
                if "query_params" in pred.predict_args:
                    kwargs["query_params"] = query
                if "headers" in pred.predict_args:
                    kwargs["headers"] = headers
                if "batch_id" in pred.predict_args:
                    kwargs["batch_id"] = None
                value = self._call_predict(pred, kwargs)
                if debug:
                    stages.append(("inference", value))
            status, out_headers, body = _encode_response(value)
        except BaseException as e:  # noqa: BLE001 - every failure is an answer, never a dead thread
            self._send_answer({"op": "error", "id": rid, **self._error_frame(e)})
            return
        reply: Dict[str, Any] = {"op": "result", "id": rid, "status": status, "headers": out_headers}
        try:
            if stages:
                reply["stages"] = [[name, _debug_value(v)] for name, v in stages]
            if self.monitoring is not None:
                reply["monitored"] = _monitored_value(value, self.monitoring)
            self._send_answer(reply, [body])
        except Exception as e:  # noqa: BLE001 - an answer that cannot be sent is an error answer
            self._send_answer({"op": "error", "id": rid, **self._error_frame(e)})
            return
        self._post_predict(pred, rid, value, payload, query, headers)

    def _post_predict(self, pred: Predictor, rid: Any, value: Any, payload: Any, query: Any, headers: Any) -> None:
        """The user's ``post_predict`` after the answer was sent (its failure is only logged)."""
        if pred.kind == "handler" or pred.post_predict_args is None:
            return
        kwargs: Dict[str, Any] = {}
        names = pred.post_predict_args
        if "response" in names:
            kwargs["response"] = value
        if "payload" in names:
            kwargs["payload"] = payload
        if "query_params" in names:
            kwargs["query_params"] = query
        if "headers" in names:
            kwargs["headers"] = headers
        try:
            pred.instance.post_predict(**kwargs)
        except Exception:  # noqa: BLE001
            logging.getLogger("myelin.bridge").exception("post_predict failed (request %s)", rid)

    def _predict_batch(self, header: Dict[str, Any], parts: List[memoryview]) -> None:
        """Server-side batching (Cortex's DynamicBatcher): one ``predict`` call whose declared arguments
        are lists with one entry per request; it returns a list of the same length, entry i answering
        request i. An exception instance at position i fails only request i (myelin's addition). A
        ``predict`` that raises, or returns anything but such a list, fails the whole batch."""
        rid = header["id"]
        items = header["items"]
        _request.rid = ",".join(str(it.get("rid")) for it in items)
        pred = self.predictor
        assert pred is not None
        n = len(items)
        try:
            payloads = [self._payload(it["payload"], parts) for it in items]
            queries = [QueryParams(it["query"]) if "query" in it else None for it in items]
            heads = [Headers(it["headers"]) if "headers" in it else None for it in items]
            kwargs: Dict[str, Any] = {}
            if "payload" in pred.predict_args:
                kwargs["payload"] = payloads
            if "query_params" in pred.predict_args:
                kwargs["query_params"] = queries
            if "headers" in pred.predict_args:
                kwargs["headers"] = heads
            if "batch_id" in pred.predict_args:
                kwargs["batch_id"] = [None] * n
            values = self._call_predict(pred, kwargs)
            if not isinstance(values, (list, tuple)):
                raise TypeError(f"please return a list when using server side batching, got {type(values)}")
            if len(values) != n:
                raise ValueError(f"predict returned a list of {len(values)} results for a batch of {n} requests: return one result per request, in order")
        except BaseException as e:  # noqa: BLE001 - the whole batch fails with one answer
            self._send_answer({"op": "error", "id": rid, **self._error_frame(e)})
            return
        answers: List[Dict[str, Any]] = []
        bodies: List[bytes] = []
        for it, value in zip(items, values):
            if isinstance(value, BaseException):
                answers.append({"ok": False, **self._error_frame(value)})
                continue
            try:
                status, out_headers, body = _encode_response(value)
                answer: Dict[str, Any] = {"ok": True, "status": status, "headers": out_headers, "buf": len(bodies)}
                if it.get("debug"):
                    answer["stages"] = [["inference", _debug_value(value)]]
                if self.monitoring is not None:
                    answer["monitored"] = _monitored_value(value, self.monitoring)
            except Exception as e:  # noqa: BLE001 - an answer that cannot be encoded fails its request only
                answers.append({"ok": False, **self._error_frame(e)})
                continue
            bodies.append(body)
            answers.append(answer)
        self._send_answer({"op": "batch_result", "id": rid, "items": answers}, bodies)
        for i, value in enumerate(values):
            if answers[i]["ok"]:
                self._post_predict(pred, items[i].get("rid"), value, payloads[i], queries[i], heads[i])

    def _run_handler(self, pred: Predictor, sample: Any, stages: Optional[List[Tuple[str, Any]]]) -> Any:
        """Legacy request handler: pre_inference → model → post_inference (Cortex 0.1x's ONNX/TF serve)."""
        prepared = sample
        if pred.pre is not None:
            prepared = pred.pre(sample, pred.input_metadata)
            if stages is not None:
                stages.append(("pre_inference", prepared))
        prediction = pred.client.predict(prepared)
        if stages is not None:
            stages.append(("inference", prediction))
        if pred.post is None:
            return prediction
        result = pred.post(prediction, pred.output_metadata)
        if stages is not None:
            stages.append(("post_inference", result))
        return result

    # -- main loop --

    def serve(self) -> None:
        self.channel.send({"op": "hello", "protocol": PROTOCOL, "pid": os.getpid(), "python": sys.version.split()[0]})
        while True:
            self._dispatch(self._deferred.popleft() if self._deferred else self._read())

    def _read(self) -> Tuple[Dict[str, Any], List[memoryview]]:
        frame = self.channel.read()
        if frame is None:
            # The replica closed the pipe (it stopped or died): nothing can answer any more.
            self.channel_close_and_exit(0)
        return frame  # type: ignore[return-value]

    def _dispatch(self, frame: Tuple[Dict[str, Any], List[memoryview]]) -> None:
        header, parts = frame
        op = header.get("op")
        if op == "predict" or op == "predict_batch":
            run = self._predict if op == "predict" else self._predict_batch
            if self.inline:
                run(header, parts)
            else:
                assert self.pool is not None
                self.pool.submit(run, header, parts)
        elif op == "models_changed":
            # Live reload: versions removed from the store (or re-uploaded) leave memory; added ones are
            # loaded by the first get_model that asks for them.
            client = self.predictor.client if self.predictor is not None else None
            if isinstance(client, PythonClient):
                for c in header.get("changes", ()):
                    if c.get("change") == "removed":
                        client.drop(str(c["model"]), str(c["version"]))
                stats = client.take_stats()
                if stats is not None:
                    self.channel.send({"op": "model_stats", "model_stats": stats})
        elif op == "model_result":
            self._on_model_result(header, parts)
        elif op == "init":
            if header.get("protocol") != PROTOCOL:
                self.channel.send({"op": "init_failed", "message": f"bridge protocol {PROTOCOL}, replica speaks {header.get('protocol')}", "traceback": ""})
                self.channel_close_and_exit(1)
            # One thread per process: everything runs on this thread, with no hand-off between threads
            # (each costs tens of microseconds of wake-ups per request). Several: a pool, fed from here.
            self.inline = int(header["threads"]) == 1
            if self.inline:
                self._init(header)
            else:
                threading.Thread(target=self._init, args=(header,), name="init", daemon=True).start()
        elif op == "shutdown":
            if self.pool is None:
                self.channel_close_and_exit(0)
            # Predictions still running may call a model: this thread keeps reading their answers while
            # another one waits for the pool, then ends the process.
            pool = self.pool
            threading.Thread(target=lambda: (pool.shutdown(wait=True), self.channel_close_and_exit(0)), name="shutdown", daemon=True).start()


def _is_response_object(value: Any) -> bool:
    """A starlette/fastapi ``Response`` (or look-alike): an int ``status_code`` and a ``body``."""
    return isinstance(getattr(value, "status_code", None), int) and hasattr(value, "body") and not isinstance(value, (dict, list, str, bytes))


def _encode_response(value: Any) -> Tuple[int, List[List[str]], bytes]:
    """What ``predict`` returned as (status, headers, body), Cortex's rules: bytes → octet-stream,
    str → text/plain, a Response object as it is, anything else → JSON."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return 200, [["content-type", "application/octet-stream"]], bytes(value)
    if isinstance(value, str):
        return 200, [["content-type", "text/plain; charset=utf-8"]], value.encode("utf-8")
    if _is_response_object(value):
        body = value.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"the response's body must be bytes or str (got {type(body).__name__}); streaming responses are not supported")
        headers: List[List[str]] = []
        raw = getattr(value, "raw_headers", None)
        if raw is not None:
            for k, v in raw:
                k = k.decode("latin-1") if isinstance(k, bytes) else str(k)
                v = v.decode("latin-1") if isinstance(v, bytes) else str(v)
                if k.lower() != "content-length":
                    headers.append([k.lower(), v])
        else:
            for k, v in dict(getattr(value, "headers", None) or {}).items():
                if str(k).lower() != "content-length":
                    headers.append([str(k).lower(), str(v)])
            media = getattr(value, "media_type", None)
            if media and not any(k == "content-type" for k, _ in headers):
                headers.append(["content-type", str(media)])
        return int(value.status_code), headers, bytes(body)
    try:
        text = json.dumps(value, default=_json_default)
    except Exception as e:
        raise TypeError(
            f"{e}: please return an object that is JSON serializable (including its nested fields), a bytes object, a string, or a starlette.response.Response object"
        ) from e
    return 200, [["content-type", "application/json"]], text.encode("utf-8")


def _debug_value(value: Any) -> Any:
    """A JSON-safe copy of a stage's value for ``?debug=true`` (numpy → lists, bytes → a size)."""
    try:
        return json.loads(json.dumps(value, default=_json_default))
    except Exception:  # noqa: BLE001
        return repr(value)


def _monitored_value(value: Any, monitoring: Dict[str, Any]) -> Any:
    """The value prediction monitoring counts (same rules as the replica's: prediction-monitor.ts)."""
    key = monitoring.get("key")
    v = value
    np = sys.modules.get("numpy")
    if key is not None:
        if not isinstance(v, dict):
            return None
        v = v.get(key)
    if np is not None and isinstance(v, np.generic):
        v = v.item()
    if monitoring.get("model_type") == "classification":
        if isinstance(v, str):
            return v
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return None
    if isinstance(v, float) and math.isfinite(v):
        return v
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**53:
        return v
    return None


def main() -> None:
    """Entry point: ``python3 myelin_bridge.py`` with the replica's pipes on fds 3 (in) and 4 (out)."""
    # Ctrl-C on a foreground `myelin serve` reaches the whole process group: the replica drains and
    # stops its workers itself (shutdown frame, or its pipe closing), so Python ignores SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    bridge = Bridge(Channel(3, 4))
    try:
        bridge.serve()
    except BaseException:  # noqa: BLE001 - a broken protocol stream: say why on stderr, then stop
        traceback.print_exc()
        bridge.channel_close_and_exit(70)


if __name__ == "__main__":
    main()
