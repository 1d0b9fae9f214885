"""A strict HTML well-formedness check (stdlib), a local SMTP server and a webhook receiver."""

from __future__ import annotations

import json
import socket
import threading
import xml.etree.ElementTree as ET
from email import message_from_bytes, policy
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from liebian.reports.service import sign

VOID = {"meta", "br", "img", "hr", "input", "link", "rect"}
SECRET = "report-secret-0123456789"


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ids: set[str] = set()
        self.count: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.count[tag] = self.count.get(tag, 0) + 1
        self.ids.update(v for k, v in attrs if k == "id")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.count[tag] = self.count.get(tag, 0) + 1

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, (
            f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        )
        self.stack.pop()


def parse_html(text: str) -> _Checker:
    """Parse and check that every element is closed in order; every inline SVG is valid XML."""
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.stack == [], f"unclosed: {checker.stack}"
    start = 0
    while (i := text.find("<svg", start)) >= 0:
        j = text.index("</svg>", i) + len("</svg>")
        ET.fromstring(text[i:j])
        start = j
    return checker


class Mailbox:
    def __init__(self) -> None:
        self.messages = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                outer.messages.append(
                    (envelope.rcpt_tos, message_from_bytes(envelope.original_content, policy=policy.default))
                )
                return "250 OK"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self.fail = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                ok = self.headers["X-Liebian-Signature"] == "sha256=" + sign(
                    SECRET, self.headers["X-Liebian-Timestamp"], raw
                )
                if ok and not outer.fail:
                    outer.received.append(json.loads(raw))
                self.send_response(500 if outer.fail else 200 if ok else 400)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/reports"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
