"""Real receivers for the alert tests: an HTTP endpoint that verifies Standard Webhooks
signatures (with the reference ``standardwebhooks`` library), an aiosmtpd SMTP server, an MQTT
subscriber on the real Mosquitto, and a private Mosquitto on a port of its own."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage as Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from standardwebhooks import Webhook, WebhookVerificationError
from webhook_support import DEV_EUI, free_port, payload_body

from lora_emotion.labels import FER2013
from lora_emotion.messages import Reading, Status, encode, port_of

MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883


def new_whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def reading_body(
    label: str | None, confidence: float | None, base_time: float, dev_eui: str = DEV_EUI
) -> bytes:
    """A KPN delivery of one compact emotion reading (FER2013 labels)."""
    message = Reading(label_set=FER2013, label=label, confidence=confidence)
    return payload_body(
        encode(message).hex(), port_of(message), base_time=base_time, dev_eui=dev_eui
    )


def status_body(base_time: float, **fields: Any) -> bytes:
    """A KPN delivery of one status message."""
    message = Status(firmware=(1, 2, 3), **fields)
    return payload_body(encode(message).hex(), port_of(message), base_time=base_time)


def wait_for(condition: Callable[[], Any], timeout_s: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")


def require_mosquitto() -> None:
    try:
        socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Mosquitto is required under CI=true on {MQTT_HOST}:{MQTT_PORT}: {exc}")
        pytest.skip(f"no MQTT broker on {MQTT_HOST}:{MQTT_PORT} ({exc})")


class WebhookReceiver:
    """An HTTP server that keeps each request whose signature verifies under ``secret``.

    ``fail_with`` makes it answer that status (the request is still recorded as attempted).
    """

    def __init__(self, secret: str, port: int = 0) -> None:
        self.secret = secret
        self.verifier = Webhook(secret)
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.rejected = 0
        self.fail_with: int | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.attempts += 1
                if receiver.fail_with is not None:
                    self.send_response(receiver.fail_with)
                    self.end_headers()
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    payload = receiver.verifier.verify(body, headers)
                except WebhookVerificationError:
                    receiver.rejected += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.received.append({"id": headers["webhook-id"], "payload": payload})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def ids(self) -> list[str]:
        return [item["id"] for item in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content, policy=policy.default))
        return "250 OK"


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback, optionally requiring a login."""

    def __init__(
        self,
        port: int | None = None,
        login: tuple[str, str] | None = None,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = _Collect()
        self.port = port or free_port()

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and login is not None
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == login
            )
            return AuthResult(success=ok)

        kwargs: dict[str, Any] = {}
        if login is not None:
            kwargs = {
                "authenticator": authenticate,
                "auth_require_tls": starttls is not None,
                "auth_required": True,
            }
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if implicit_tls is not None:
            kwargs.update(ssl_context=implicit_tls)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages

    def close(self) -> None:
        self.controller.stop()


class Subscriber:
    """A paho-mqtt client subscribed to ``topic`` on a broker, collecting messages."""

    def __init__(self, topic: str, port: int = MQTT_PORT) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool, float]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        subscribed = threading.Event()

        def on_message(client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
            self.messages.append(
                (message.topic, json.loads(message.payload), bool(message.retain), time.time())
            )

        self.client.on_message = on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(MQTT_HOST, port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert subscribed.wait(5), "subscription not acknowledged"

    def payloads(self, prefix: str = "") -> list[dict[str, Any]]:
        return [payload for topic, payload, _, _ in self.messages if topic.startswith(prefix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class PrivateBroker:
    """A Mosquitto of our own on ``port``, to start late (an unreachable broker that comes up)."""

    def __init__(self, port: int) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [binary, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: _listening(port), 10, f"mosquitto on port {port}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def self_signed_certificate(directory: Any) -> tuple[str, str]:
    """(certificate, key) files for 127.0.0.1, made here (nothing committed is a key)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = f"{directory}/smtp-cert.pem"
    key_path = f"{directory}/smtp-key.pem"
    with open(cert_path, "wb") as out:
        out.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path
