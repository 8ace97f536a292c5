"""Real PostgreSQL and Redis servers on free loopback ports.

The tests start them in temporary directories and remove them afterwards. The local
deployment (localdev/session.py) gives them a directory under `.local/` and leaves them
running between `make demo` and `make destroy-local`."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from localdev.tls import TlsFiles, postgres_tls, redis_tls

if TYPE_CHECKING:
    import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts connections on this local port."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def terminate(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`; reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready within {timeout_s} s")


def pg_bin(name: str) -> str:
    """The path of a PostgreSQL server binary (initdb, pg_ctl, postgres): on PATH, else the newest installed."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"{name} not found: install the PostgreSQL server (make servers)")
    return found


def as_postgres_user() -> list[str]:
    """initdb refuses to run as root: drop to the `postgres` (or `nobody`) user."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        if subprocess.run(["id", "-u", user], capture_output=True).returncode == 0:
            return ["runuser", "-u", user, "--"]
    raise RuntimeError("running as root without a postgres user")


def _on_cpus(cpus: set[int] | None) -> Callable[[], None] | None:
    """A preexec_fn pinning the server (and every process it forks) to `cpus`."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


class PostgresServer:
    """`durable=False` (tests) turns fsync off for speed; benchmarks keep production durability.

    `cpus` pins the postmaster and its backends, so a benchmark can keep them off the
    core it measures."""

    def __init__(self, durable: bool = False, cpus: set[int] | None = None, password_auth: bool = False,
                 root: Path | None = None, password: str = "x", tls: TlsFiles | None = None) -> None:
        """`tls`: serve TLS only (`hostssl`; a plaintext TCP connection is refused), as RDS with
        rds.force_ssl=1 does; clients verify the server against `tls.ca`."""
        self.durable = durable
        self.tls = tls
        self.cpus = cpus
        if root is None:
            self.dir = Path(tempfile.mkdtemp(prefix="pg-test-"))
        else:
            root.mkdir(parents=True, exist_ok=True)
            self.dir = root
        self.port = free_port()
        self.password = password
        self.prefix = as_postgres_user()
        if self.prefix:
            shutil.chown(self.dir, user=self.prefix[2])
        self.data = self.dir / "data"
        auth = ["-A", "trust"]
        if password_auth:  # every login checks its password (scram), as on RDS
            pwfile = self.dir / "pw"
            pwfile.write_text(password + "\n")
            if self.prefix:
                shutil.chown(pwfile, user=self.prefix[2])
            auth = ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
        subprocess.run([*self.prefix, pg_bin("initdb"), "-D", str(self.data), "-U", "test", *auth,
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        (self.dir / "pw").unlink(missing_ok=True)  # the superuser password is not left on disk
        if tls is not None:
            self._serve_tls_only(tls, "scram-sha-256" if password_auth else "trust")
        self.start()

    def _serve_tls_only(self, tls: TlsFiles, method: str) -> None:
        """The server's certificate and key where the server's user can read them, and a pg_hba.conf
        that admits TCP connections over TLS only (the Unix socket stays, for pg_ctl)."""
        own = self.dir / "tls"
        own.mkdir(exist_ok=True)
        for source, name in ((tls.cert, "server.pem"), (tls.key, "server.key")):
            shutil.copyfile(source, own / name)
            (own / name).chmod(0o600)
            if self.prefix:
                shutil.chown(own / name, user=self.prefix[2])
        if self.prefix:
            shutil.chown(own, user=self.prefix[2])
        hba = self.data / "pg_hba.conf"
        stat = hba.stat()
        hba.write_text(f"local all all {method}\nhostssl all all 127.0.0.1/32 {method}\n"
                       "hostnossl all all 0.0.0.0/0 reject  # TLS only, as rds.force_ssl=1\n")
        os.chown(hba, stat.st_uid, stat.st_gid)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=50"
        if self.tls is not None:
            opts += f" -c ssl=on -c ssl_cert_file={self.dir}/tls/server.pem -c ssl_key_file={self.dir}/tls/server.key"
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run([*self.prefix, pg_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                        str(self.dir / "log"), "-w", "start"], check=True, capture_output=True,
                       preexec_fn=_on_cpus(self.cpus))

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([*self.prefix, pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                       capture_output=True)

    def dsn(self, dbname: str = "postgres") -> dict[str, object]:
        dsn: dict[str, object] = {"host": "127.0.0.1", "port": self.port, "user": "test", "password": self.password,
                                  "dbname": dbname}
        if self.tls is not None:
            dsn.update(postgres_tls(str(self.tls.ca)))
        return dsn

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    """`persistent=True` keeps the data across stop()/start(), like a failover to a replica."""

    def __init__(self, password: str | None = None, cpus: set[int] | None = None, persistent: bool = False,
                 root: Path | None = None, tls: TlsFiles | None = None) -> None:
        """`tls`: TLS only (no plaintext port), as ElastiCache with transit encryption required."""
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server not found: install it (make servers)")
        self.port = free_port()
        self.password = password
        self.detached = root is not None  # outlives this process (its own session), like pg_ctl's postmaster
        if root is None:
            self.dir = tempfile.mkdtemp(prefix="redis-test-")
        else:
            root.mkdir(parents=True, exist_ok=True)
            self.dir = str(root)
        self.args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--appendonly", "no",
                     "--save", "3600 1" if persistent else ""]
        if password:
            self.args += ["--requirepass", password]
        self.tls = tls
        if tls is not None:
            self.args[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            self.args += ["--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key),
                          "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "no"]
        self.cpus = cpus
        self.start()

    def client(self, **options: object) -> redis.Redis:
        """A client as the processor makes one: TLS verified against the local CA when the server has TLS."""
        import redis

        if self.tls is not None:
            options = {**redis_tls(str(self.tls.ca)), **options}
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **options)

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        preexec_fn=_on_cpus(self.cpus), start_new_session=self.detached)
        client = self.client()
        wait_for(lambda: _ping(client), 10, "redis-server")

    def stop(self) -> None:
        """SIGTERM: a persistent server saves its data first."""
        self.process.terminate()
        self.process.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


class MotoServer:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.stop()
