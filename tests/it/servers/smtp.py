"""A real SMTP server for the email test: Python's aiosmtpd, one listener
with STARTTLS required and one with TLS from the first byte, both asking for
AUTH (user `sitewatch`, password `pa55`). Each message it accepts is parsed
with Python's own email package and written as JSON (headers, the plain-text
and HTML parts decoded, the user that logged in, whether TLS was on) to
OUTDIR/<n>.json. Prints its two ports as one JSON line, then serves until
its standard input closes.

    python smtp.py CERT KEY OUTDIR
"""

import email
import email.policy
import json
import logging
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

cert, key, outdir = sys.argv[1:4]
# aiosmtpd's own log (its warnings about this test's set-up) stays quiet.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_type()] = part.get_content()
        record = {
            "headers": {k: str(v) for k, v in message.items()},
            "content_type": message.get_content_type(),
            "text": parts.get("text/plain"),
            "html": parts.get("text/html"),
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": session.auth_data.decode() if isinstance(session.auth_data, bytes) else None,
            "tls": server.transport.get_extra_info("sslcontext") is not None,
        }
        n = len(os.listdir(outdir))
        path = os.path.join(outdir, f"{n}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK: queued as %d" % n


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"sitewatch"
        and auth_data.password == b"pa55"
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)


def free_port():
    # aiosmtpd's readiness check connects to the port it was given: not 0.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


common = dict(hostname="127.0.0.1", auth_required=True, authenticator=authenticator)
starttls = Controller(Handler(), port=free_port(), tls_context=context, require_starttls=True, **common)
# aiosmtpd knows of STARTTLS only: TLS from the first byte is TLS all the same.
implicit = Controller(
    Handler(), port=free_port(), ssl_context=context, auth_require_tls=False, **common
)
starttls.start()
implicit.start()
print(json.dumps({"starttls": starttls.port, "tls": implicit.port}), flush=True)
sys.stdin.read()
starttls.stop()
implicit.stop()
