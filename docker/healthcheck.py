"""The image's health check, for whatever the container runs.

`serve --transport http`: ready when `GET /health/ready` on its port answers 200 (the database
answers and the scheduler loop turns). Anything else (`serve` over stdio, `worker`) has no HTTP
endpoint: healthy while its process runs, which is whenever this check can run at all.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

DEFAULT_PORT = "8765"


def main() -> int:
    words = Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")
    if "--transport" not in words or words[words.index("--transport") + 1] != "http":
        return 0
    port = words[words.index("--port") + 1] if "--port" in words else DEFAULT_PORT
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as error:
        print(f"not ready: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
