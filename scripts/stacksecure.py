"""A secured local stack's material: a CA, the server certificate, the passwords, and what each side is told.

`footfall stack up --secure` (and the test that runs footfall over TLS with authentication) starts
Apache Kafka with one `SASL_SSL` listener (SCRAM-SHA-512; the broker speaks to itself on it as
`admin`) and Redis on a TLS port only, with its `default` user off and one ACL user. Everything is
made fresh in `<run_dir>/tls` by `openssl`: a CA, a server key and a certificate for `127.0.0.1`
and `localhost` signed by it, and random passwords. Keys, passwords and the client settings file
are readable by their owner only (0600).

The clients get `client.env`: the `FOOTFALL_*` variables (broker, protocol, mechanism, user,
password, CA file, and a `rediss://` URL with the Redis user's password and `ssl_ca_certs`).
The controller listener stays plain text on loopback: only the broker itself connects to it.

>>> material = SecureMaterial.__new__(SecureMaterial)
>>> material.tls_dir, material.kafka_admin_password = Path("/run/tls"), "pw"
>>> print(material.kafka_properties().splitlines()[0])
sasl.enabled.mechanisms=SCRAM-SHA-512
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["KAFKA_USER", "REDIS_USER", "SASL_MECHANISM", "SecureMaterial"]

SASL_MECHANISM = "SCRAM-SHA-512"
KAFKA_USER = "footfall"
REDIS_USER = "footfall"
_KAFKA_ADMIN = "admin"


def _private(path: Path, text: str) -> Path:
    """Write `text` to `path`, readable and writable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)
    return path


@dataclass
class SecureMaterial:
    """Certificates and passwords for one secured stack, made in `tls_dir`."""

    tls_dir: Path
    kafka_admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    kafka_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    redis_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    def __post_init__(self) -> None:
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.tls_dir, 0o700)
        self._make_certificates()

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.tls_dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.tls_dir / "server.key"

    @property
    def kafka_keystore(self) -> Path:
        """The server key then its certificate, in one PEM file (Kafka's PEM key store)."""
        return self.tls_dir / "kafka-keystore.pem"

    def _make_certificates(self) -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("openssl is needed to make the secured stack's certificates: apt-get install -y openssl")
        d = self.tls_dir

        def run(*args: str) -> None:
            done = subprocess.run([openssl, *args], capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise RuntimeError(f"openssl {args[0]} failed: {done.stderr[-1000:]}")

        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=footfall local CA",
            "-keyout", str(d / "ca.key"), "-out", str(self.ca_file))
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(self.server_key), "-out", str(d / "server.csr"))
        _private(d / "server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                   "extendedKeyUsage=serverAuth,clientAuth\n")
        run("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(self.ca_file), "-CAkey", str(d / "ca.key"),
            "-CAcreateserial", "-days", "30", "-extfile", str(d / "server.ext"), "-out", str(self.server_cert))
        for key in (d / "ca.key", self.server_key):
            os.chmod(key, 0o600)
        _private(self.kafka_keystore, self.server_key.read_text() + self.server_cert.read_text())

    # -- what each side is told ---------------------------------------------------------------

    def kafka_properties(self) -> str:
        """Broker properties of the `SASL_SSL` listener (PEM key and trust stores, SCRAM as `admin`)."""
        jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{_KAFKA_ADMIN}" '
                f'password="{self.kafka_admin_password}";')
        return "\n".join([
            f"sasl.enabled.mechanisms={SASL_MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={SASL_MECHANISM}",
            f"listener.name.sasl_ssl.{SASL_MECHANISM.lower()}.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.tls_dir / 'kafka-keystore.pem'}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.tls_dir / 'ca.pem'}",
            "",
        ])

    def scram_users(self) -> list[str]:
        """`kafka-storage format --add-scram` arguments: the broker's own user and footfall's."""
        return [arg for name, password in ((_KAFKA_ADMIN, self.kafka_admin_password), (KAFKA_USER, self.kafka_password))
                for arg in ("--add-scram", f"{SASL_MECHANISM}=[name={name},password={password}]")]

    def redis_config(self, port: int, data_dir: Path) -> str:
        """redis.conf: TLS on `port` only, no persistence, `default` user off, footfall's user with every right."""
        return "\n".join([
            "port 0", f"tls-port {port}", "bind 127.0.0.1", "protected-mode yes", 'save ""', "appendonly no",
            f"dir {data_dir}", "daemonize no",
            f"tls-cert-file {self.server_cert}", f"tls-key-file {self.server_key}",
            f"tls-ca-cert-file {self.ca_file}", "tls-auth-clients no",
            "user default off",
            f"user {REDIS_USER} on >{self.redis_password} ~* &* +@all",
            "",
        ])

    def redis_url(self, port: int) -> str:
        return f"rediss://{REDIS_USER}:{self.redis_password}@127.0.0.1:{port}/0?ssl_ca_certs={self.ca_file}"

    def client_env(self, bootstrap: str, redis_port: int | None) -> dict[str, str]:
        """The `FOOTFALL_*` variables a worker or tool needs to reach this stack."""
        env = {
            "FOOTFALL_BROKER": bootstrap,
            "FOOTFALL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "FOOTFALL_KAFKA_SASL_MECHANISM": SASL_MECHANISM,
            "FOOTFALL_KAFKA_SASL_USERNAME": KAFKA_USER,
            "FOOTFALL_KAFKA_SASL_PASSWORD": self.kafka_password,
            "FOOTFALL_KAFKA_SSL_CAFILE": str(self.ca_file),
        }
        if redis_port is not None:
            env["FOOTFALL_REDIS_URL"] = self.redis_url(redis_port)
        return env

    @staticmethod
    def write_private(path: Path, text: str) -> Path:
        """Write `text` to `path` readable by its owner only (keys, passwords, what holds them)."""
        return _private(path, text)
