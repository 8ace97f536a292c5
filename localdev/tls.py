"""A local certificate authority and a server certificate, so the local PostgreSQL and Redis speak
TLS only and the processor verifies them exactly as it verifies RDS and ElastiCache on AWS.

Made with the `openssl` CLI (installed with the servers, `make servers`): a CA valid for 30 days
and one server certificate for `localhost` and 127.0.0.1 (the address the local endpoints map
to), both P-256. Reused while valid; a session's files live under `.local/tls/`.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from processor.connections import redis_tls_options

DAYS = 30


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # what clients trust
    cert: Path  # the server's certificate, signed by `ca`
    key: Path  # its private key


def postgres_tls(ca_file: str) -> dict[str, str]:
    """psycopg2 parameters for a local PostgreSQL: verified TLS, as the processor connects to RDS."""
    return {"sslmode": "verify-full", "sslrootcert": ca_file}


def redis_tls(ca_file: str) -> dict[str, object]:
    """redis-py parameters for a local Redis: verified TLS, exactly as the processor connects to ElastiCache."""
    return redis_tls_options(ca_file)


def _openssl_binary() -> str:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("openssl not found: install it (make servers)")
    return binary


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run([_openssl_binary(), *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_ca(directory: Path, name: str = "localdev CA") -> tuple[Path, Path]:
    """(certificate, key) of a new CA in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", str(DAYS), "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)
    (directory / "ca.key").chmod(0o600)
    return directory / "ca.pem", directory / "ca.key"


def make_tls(directory: Path) -> TlsFiles:
    """A CA and a server certificate for localhost / 127.0.0.1 in `directory` (reused when present and valid)."""
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if all(p.exists() for p in (files.ca, files.cert, files.key)) and _valid_for_a_day(files.cert):
        return files
    ca_cert, _ = make_ca(directory)
    (directory / "server.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                          "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=localhost", cwd=directory)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", ca_cert.name, "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", str(DAYS), "-extfile", "server.ext", cwd=directory)
    files.key.chmod(0o600)
    return files


def _valid_for_a_day(cert: Path) -> bool:
    return subprocess.run([_openssl_binary(), "x509", "-in", str(cert), "-noout", "-checkend", "86400"],
                          capture_output=True, check=False).returncode == 0


def make_named_certificate(tls: TlsFiles, name: str) -> tuple[Path, Path]:
    """(certificate, key) for the DNS `name`, signed by `tls`'s CA (its key beside it): what an operator
    would import into ACM for the catalog read API's load balancer. Reused while valid."""
    directory = tls.ca.parent
    stem = "named-" + "".join(c if c.isalnum() or c in "-." else "_" for c in name)
    cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
    if cert.exists() and key.exists() and _valid_for_a_day(cert):
        return cert, key
    (directory / f"{stem}.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                           f"extendedKeyUsage=serverAuth\nsubjectAltName=DNS:{name}\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key.name,
             "-out", f"{stem}.csr", "-subj", f"/CN={name}", cwd=directory)
    _openssl("x509", "-req", "-in", f"{stem}.csr", "-CA", tls.ca.name, "-CAkey", "ca.key", "-CAcreateserial",
             "-out", cert.name, "-days", str(DAYS), "-extfile", f"{stem}.ext", cwd=directory)
    key.chmod(0o600)
    return cert, key
