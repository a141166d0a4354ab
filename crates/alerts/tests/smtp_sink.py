"""A real SMTP server (aiosmtpd) for the email notifier's tests.

    python smtp_sink.py MODE DIR      MODE: none | starttls | tls

Issues a throwaway CA and a certificate for localhost (trustme), writes the CA to DIR/ca.pem,
starts aiosmtpd on a free loopback port (STARTTLS required, or implicit TLS, or plain), with
AUTH LOGIN/PLAIN accepting only atalaya / s3cret when TLS is on, and writes every accepted
message to DIR/NNNN.eml and its recipients to DIR/NNNN.rcpt. Prints "ready PORT" when it
accepts connections, then serves until killed.
"""
import pathlib
import socket
import ssl
import sys
import time

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)


class Sink:
    def __init__(self):
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        (out / f"{self.n:04}.rcpt").write_text("\n".join(envelope.rcpt_tos))
        (out / f"{self.n:04}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"atalaya" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ca = trustme.CA()
cert = ca.issue_cert("localhost", "127.0.0.1")
ca.cert_pem.write_to_path(str(out / "ca.pem"))
server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
cert.configure_cert(server_ctx)

port = free_port()
kwargs = dict(hostname="127.0.0.1", port=port, authenticator=authenticate)
if mode == "starttls":
    kwargs.update(tls_context=server_ctx, require_starttls=True, auth_require_tls=True)
elif mode == "tls":
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    kwargs.update(ssl_context=server_ctx, auth_require_tls=False, server_hostname="localhost")
else:
    kwargs.update(auth_require_tls=False)
controller = Controller(Sink(), **kwargs)
if mode == "tls":
    # aiosmtpd's readiness probe does not trust the throwaway CA: probe with a context that does.
    def probe():
        with socket.create_connection(("127.0.0.1", port), 2.0) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.recv(1024)

    controller._trigger_server = probe
controller.start()
print(f"ready {port}", flush=True)
while True:
    time.sleep(3600)
