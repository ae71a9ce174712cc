"""Smithy RPC v2 CBOR <-> awsJson1_0 for CloudWatch: the one translator of the test world.

aws-sdk-cloudwatch (1.100 and later) speaks only Smithy RPC v2 CBOR; moto 5.2.5 answers CloudWatch
in awsJson1_0 and awsQuery only (404 for CBOR). Both the realism layer (`aws_realism.py`) and the
launcher of bare moto (`moto_cbor.py`) translate with this module, so the SDK's calls work against
every emulator the project starts.

Request:  POST /service/GraniteServiceVersion20100801/operation/<Op>, Content-Type: application/cbor
          -> POST / with X-Amz-Target: GraniteServiceVersion20100801.<Op>, application/x-amz-json-1.0
Response: the JSON answer -> CBOR typed by the operation's output shape (from botocore's service
          model in the virtualenv: timestamps as CBOR tag 1, doubles as CBOR floats, integers as
          CBOR ints, which the Rust decoder requires), with `smithy-protocol: rpc-v2-cbor`.
Errors:   {"__type", "message"} -> a CBOR map; `x-amzn-query-error: Code;Sender` (which the Rust
          client prefers for the code) passed on, or made from `__type`. An HTML error page (moto's
          answer to an action it does not implement) becomes `InternalFailure`.

Python 3.11 standard library only.
"""

from __future__ import annotations

import base64
import glob
import gzip
import importlib.util
import json
import math
import os
import struct
import sys
from datetime import datetime

TARGET_PREFIX = "GraniteServiceVersion20100801"
OPERATION_PATH = f"/service/{TARGET_PREFIX}/operation/"
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
CBOR_CONTENT_TYPE = "application/cbor"


class Tag:
    """A CBOR tagged value (tag 1: epoch-based date/time)."""

    def __init__(self, tag: int, value):
        self.tag, self.value = tag, value

    def __eq__(self, other):
        return isinstance(other, Tag) and (self.tag, self.value) == (other.tag, other.value)

    def __repr__(self):
        return f"Tag({self.tag}, {self.value!r})"


_BREAK = object()


def decode(data: bytes):
    """One CBOR item (RFC 8949), definite or indefinite lengths; an empty body is an empty map."""
    if not data:
        return {}
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise ValueError("truncated CBOR")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    def argument(info: int):
        if info < 24:
            return info
        if info in (24, 25, 26, 27):
            size = 1 << (info - 24)
            return int.from_bytes(read(size), "big")
        if info == 31:
            return None
        raise ValueError(f"bad CBOR additional info {info}")

    def item():
        initial = read(1)[0]
        major, info = initial >> 5, initial & 31
        if major == 7:
            simple = {20: False, 21: True, 22: None, 23: None}
            if info in simple:
                return simple[info]
            if info == 25:
                return _half(struct.unpack(">H", read(2))[0])
            if info == 26:
                return struct.unpack(">f", read(4))[0]
            if info == 27:
                return struct.unpack(">d", read(8))[0]
            if info == 31:
                return _BREAK
            return argument(info)
        n = argument(info)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major in (2, 3):
            if n is None:
                parts = []
                while (part := item()) is not _BREAK:
                    parts.append(part if isinstance(part, bytes) else part.encode())
                raw = b"".join(parts)
            else:
                raw = read(n)
            return raw if major == 2 else raw.decode("utf-8")
        if major == 4:
            out = []
            while n is None or len(out) < n:
                v = item()
                if v is _BREAK:
                    break
                out.append(v)
            return out
        if major == 5:
            out, count = {}, 0
            while n is None or count < n:
                k = item()
                if k is _BREAK:
                    break
                out[k] = item()
                count += 1
            return out
        return Tag(n, item())

    value = item()
    if pos != len(data):
        raise ValueError("trailing bytes after the CBOR item")
    return value


def _half(h: int) -> float:
    exp, frac = (h >> 10) & 0x1F, h & 0x3FF
    if exp == 0:
        val = math.ldexp(frac, -24)
    elif exp == 31:
        val = math.inf if frac == 0 else math.nan
    else:
        val = math.ldexp(frac + 1024, exp - 25)
    return -val if h & 0x8000 else val


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def encode(v) -> bytes:
    if v is None:
        return b"\xf6"
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if isinstance(v, Tag):
        return _head(6, v.tag) + encode(v.value)
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, bytes):
        return _head(2, len(v)) + v
    if isinstance(v, str):
        raw = v.encode()
        return _head(3, len(raw)) + raw
    if isinstance(v, (list, tuple)):
        return _head(4, len(v)) + b"".join(encode(x) for x in v)
    if isinstance(v, dict):
        return _head(5, len(v)) + b"".join(encode(k) + encode(x) for k, x in v.items())
    raise TypeError(f"cannot encode {type(v).__name__} as CBOR")


# ---- the service model -----------------------------------------------------------------------

_MODEL: dict | None = None


def model() -> dict:
    """botocore's CloudWatch model (plain gzip + JSON), from the Python that runs this."""
    global _MODEL
    if _MODEL is None:
        roots = [os.path.join(sys.prefix, "lib", "python3*", "site-packages")]
        spec = importlib.util.find_spec("botocore")
        if spec and spec.origin:
            roots.insert(0, os.path.dirname(os.path.dirname(spec.origin)))
        paths = [p for root in roots
                 for p in glob.glob(os.path.join(root, "botocore", "data", "cloudwatch", "*", "service-2.json.gz"))]
        if not paths:
            raise RuntimeError("cbor_json: botocore's CloudWatch model is not installed (run with the project's .venv)")
        with gzip.open(sorted(paths)[-1]) as f:
            _MODEL = json.load(f)
    return _MODEL


def typed(value, shape_name: str):
    """A JSON answer's value made CBOR-ready as the output shape types it."""
    if value is None:
        return None
    shape = model()["shapes"][shape_name]
    kind = shape["type"]
    if kind == "structure":
        members = shape["members"]
        return {k: typed(v, members[k]["shape"]) for k, v in value.items() if k in members and v is not None}
    if kind == "list":
        return [typed(v, shape["member"]["shape"]) for v in value]
    if kind == "map":
        return {k: typed(v, shape["value"]["shape"]) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return Tag(1, float(value))
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    if kind == "blob":
        return base64.b64decode(value)
    return value


def plain(value):
    """A decoded CBOR request value as awsJson has it (timestamps as epoch seconds, blobs base64)."""
    if isinstance(value, Tag):
        return plain(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list):
        return [plain(x) for x in value]
    if isinstance(value, dict):
        return {k: plain(x) for k, x in value.items()}
    return value


# ---- requests and responses ------------------------------------------------------------------

def operation(path: str) -> str | None:
    """The CloudWatch operation a Smithy RPC v2 CBOR request path names, else None."""
    path = path.split("?", 1)[0]
    if path.startswith(OPERATION_PATH) and "/" not in path[len(OPERATION_PATH):]:
        return path[len(OPERATION_PATH):] or None
    return None


def request_to_json(op: str, headers: list, body: bytes) -> tuple[list, bytes]:
    """The CBOR request as awsJson1_0: new headers (the client's, protocol ones replaced) and body."""
    doc = plain(decode(body))
    if not isinstance(doc, dict):
        raise ValueError("a CBOR request body must be a map")
    dropped = {"content-type", "content-length", "x-amz-target", "smithy-protocol", "accept", "x-amzn-query-mode"}
    out = [(k, v) for k, v in headers if k.lower() not in dropped]
    out += [("Content-Type", JSON_CONTENT_TYPE), ("X-Amz-Target", f"{TARGET_PREFIX}.{op}")]
    return out, json.dumps(doc).encode()


def _header(headers: list, name: str):
    return next((v for k, v in headers if k.lower() == name.lower()), None)


def response_to_cbor(op: str, status: int, headers: list, body: bytes) -> tuple[list, bytes]:
    """A JSON (or HTML error) answer to `op` as Smithy RPC v2 CBOR: headers and body."""
    try:
        doc = json.loads(body) if body.strip() else {}
    except ValueError:
        doc = {"__type": "InternalFailure", "message": body[:300].decode("utf-8", "replace")}
    out = [("Content-Type", CBOR_CONTENT_TYPE), ("smithy-protocol", "rpc-v2-cbor")]
    request_id = _header(headers, "x-amzn-requestid")
    if request_id:
        out.append(("x-amzn-RequestId", request_id))
    if status >= 300:
        code = str(doc.get("__type") or _header(headers, "x-amzn-errortype") or "InternalFailure").split("#")[-1]
        code = code.split(":")[0]
        message = doc.get("message") or doc.get("Message") or ""
        query_error = _header(headers, "x-amzn-query-error") or f"{code};{'Sender' if status < 500 else 'Receiver'}"
        out.append(("x-amzn-query-error", query_error))
        return out, encode({"__type": code, "message": str(message)})
    shape = model()["operations"].get(op, {}).get("output", {}).get("shape")
    return out, encode(typed(doc, shape) if shape else {})


class Middleware:
    """WSGI middleware in front of moto's server app: CBOR requests are answered in CBOR."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        op = operation(environ.get("PATH_INFO", ""))
        if op is None:
            return self.app(environ, start_response)
        import io
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = [(k[5:].replace("_", "-").title(), v) for k, v in environ.items() if k.startswith("HTTP_")]
        try:
            json_headers, json_body = request_to_json(op, headers, body)
        except (ValueError, TypeError) as e:
            out, data = response_to_cbor(op, 400, [], json.dumps({"__type": "SerializationException",
                                                                 "message": str(e)}).encode())
            start_response("400 Bad Request", out + [("Content-Length", str(len(data)))])
            return [data]
        env = dict(environ)
        for k in [k for k in env if k.startswith("HTTP_")]:
            del env[k]
        for k, v in json_headers:
            if k.lower() == "content-type":
                env["CONTENT_TYPE"] = v
            else:
                env["HTTP_" + k.upper().replace("-", "_")] = v
        env.update({"PATH_INFO": "/", "REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(json_body)),
                    "wsgi.input": io.BytesIO(json_body), "QUERY_STRING": ""})
        seen: dict = {}

        def capture(status, response_headers, exc_info=None):
            seen["status"], seen["headers"] = status, response_headers
            return lambda _chunk: None

        chunks = self.app(env, capture)
        try:
            answer = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        code = int(seen["status"].split()[0])
        out, data = response_to_cbor(op, code, list(seen["headers"]), answer)
        start_response(seen["status"], out + [("Content-Length", str(len(data)))])
        return [data]
