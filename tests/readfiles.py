"""Reading a whole file in a test, closed at once (no ResourceWarning from ``open(p).read()``)."""
from __future__ import annotations

import json
import os
from typing import Any


def read_text(path: "str | os.PathLike") -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def read_bytes(path: "str | os.PathLike") -> bytes:
    with open(path, "rb") as f:
        return f.read()


def read_json(path: "str | os.PathLike") -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
