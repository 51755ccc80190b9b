"""The address students' phones use to reach this laptop on the classroom network.

``python -m distviz.lan`` prints the base URL to advertise (``http://<address>:<port>/``), or
``DISTVIZ_PUBLIC_URL`` when set. The address is the one the operating system would use for an
outgoing route: a UDP socket is "connected" to a documentation address (TEST-NET-1), which
sends nothing, and asked for its own end. A machine with no network gets 127.0.0.1 and a warning.
"""
from __future__ import annotations

import os
import socket
import sys


def lan_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet leaves: connect() on UDP only picks a route
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def public_url(port: int) -> str:
    url = os.environ.get("DISTVIZ_PUBLIC_URL", "").strip()
    if url:
        return url.rstrip("/") + "/"
    return f"http://{lan_address()}:{port}/"


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    url = public_url(port)
    if "//127." in url or "//localhost" in url:
        print(f"distviz: no network address found; students cannot reach {url}", file=sys.stderr)
    print(url)
