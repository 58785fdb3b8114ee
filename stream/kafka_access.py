"""How footfall reaches Kafka: the bootstrap list and the client security (TLS, SASL PLAIN or SCRAM).

Every Kafka client footfall makes takes its options from one `KafkaAccess`: the worker's Faust
app (`faust_credentials`), its admin, range-reading and rebuild clients (kafka-python and
aiokafka keyword arguments), and the tools (producer, export, alerts, webhooks). So one set of
`FOOTFALL_KAFKA_*` settings reaches all of them, and a client that forgot them cannot exist.

The four protocols are Kafka's own: `PLAINTEXT` (the default, for a broker on loopback or a
trusted network), `SSL` (TLS, optionally with a client certificate), `SASL_PLAINTEXT` and
`SASL_SSL` (a user name and password by `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; over TLS
unless the network is trusted: `PLAIN` sends the password as it is). The server certificate is
checked against `cafile` (or the system's trust store) and, unless turned off, its host name.

Examples
--------
>>> access = KafkaAccess("kafka-1:9093,kafka-2:9093", protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
...                      username="footfall", password="s3cret")
>>> access  # no password, no file paths
KafkaAccess(bootstrap='kafka-1:9093,kafka-2:9093', protocol='SASL_SSL',
            sasl_mechanism='SCRAM-SHA-512', username='footfall')
>>> options = access.kafka_python()
>>> options["bootstrap_servers"], options["security_protocol"], options["sasl_plain_username"]
(['kafka-1:9093', 'kafka-2:9093'], 'SASL_SSL', 'footfall')
>>> options["ssl_context"].check_hostname
True
>>> KafkaAccess("127.0.0.1:9092").aiokafka()
{'bootstrap_servers': '127.0.0.1:9092', 'security_protocol': 'PLAINTEXT'}
>>> KafkaAccess("127.0.0.1:9092").faust_credentials() is None
True
>>> print(problems_of(protocol="SASL_SSL", sasl_mechanism="PLAIN", username="", password="x")[0])
needs a user name and a password (FOOTFALL_KAFKA_SASL_USERNAME, FOOTFALL_KAFKA_SASL_PASSWORD)

"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROTOCOLS", "SASL_MECHANISMS", "KafkaAccess", "problems_of"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaAccess:
    """Where the brokers are and how to speak to them (`Settings.kafka` builds it from `FOOTFALL_KAFKA_*`)."""

    bootstrap: str
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    cafile: str = field(default="", repr=False)
    certfile: str = field(default="", repr=False)
    keyfile: str = field(default="", repr=False)
    check_hostname: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        found = problems_of(self.protocol, self.sasl_mechanism, self.username, self.password, self.cafile,
                            self.certfile, self.keyfile)
        if found:
            raise ValueError(f"Kafka security protocol {self.protocol}: {found[0]}")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the clients (None without TLS): server certificate and host name checked."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.cafile or None)
        context.check_hostname = self.check_hostname
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile or None)
        return context

    def security(self) -> dict[str, Any]:
        """The security keyword arguments alone (kafka-python and aiokafka name them alike)."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)
        return options

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's `KafkaProducer`, `KafkaConsumer` and `KafkaAdminClient`."""
        return {"bootstrap_servers": self.bootstrap.split(","), **self.security()}

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's `AIOKafkaProducer`, `AIOKafkaConsumer` and `AIOKafkaAdminClient`."""
        return {"bootstrap_servers": self.bootstrap, **self.security()}

    def faust_credentials(self) -> Any:
        """`faust.App(broker_credentials=...)`: SASL or TLS credentials, None for `PLAINTEXT`."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(username=self.username, password=self.password,
                                         mechanism=self.sasl_mechanism, ssl_context=self.ssl_context())
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context())
        return None


def problems_of(protocol: str, sasl_mechanism: str = "", username: str = "", password: str = "",
                cafile: str = "", certfile: str = "", keyfile: str = "") -> list[str]:
    """What is wrong with these security options (empty: nothing), each naming the variable to fix."""
    if protocol not in PROTOCOLS:
        return [f"FOOTFALL_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}"]
    found: list[str] = []
    sasl = protocol.startswith("SASL_")
    if sasl:
        if sasl_mechanism not in SASL_MECHANISMS:
            found.append(f"FOOTFALL_KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}")
        if not username or not password:
            found.append("needs a user name and a password (FOOTFALL_KAFKA_SASL_USERNAME, "
                         "FOOTFALL_KAFKA_SASL_PASSWORD)")
    elif sasl_mechanism or username or password:
        found.append("a SASL mechanism, user or password is set but the protocol does not use SASL "
                     "(set FOOTFALL_KAFKA_SECURITY_PROTOCOL=SASL_SSL)")
    files = {"FOOTFALL_KAFKA_SSL_CAFILE": cafile, "FOOTFALL_KAFKA_SSL_CERTFILE": certfile,
             "FOOTFALL_KAFKA_SSL_KEYFILE": keyfile}
    if protocol not in ("SSL", "SASL_SSL") and any(files.values()):
        found.append("TLS files are set but the protocol does not use TLS (set FOOTFALL_KAFKA_SECURITY_PROTOCOL "
                     "to SSL or SASL_SSL)")
    if keyfile and not certfile:
        found.append("FOOTFALL_KAFKA_SSL_KEYFILE is set without FOOTFALL_KAFKA_SSL_CERTFILE")
    for var, path in files.items():
        if path and not os.access(path, os.R_OK):
            found.append(f"{var}={path!r} is not a readable file")
    return found
