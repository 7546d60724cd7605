"""Throwaway certificates for TLS tests, made per test run with the ``openssl`` program.

One CA, a server certificate for ``127.0.0.1``/``localhost`` signed by it, and client
certificates (for mTLS) signed by it too. Nothing is committed: every run makes fresh keys in its
temporary directory. ``openssl`` is a tool nobody here wrote; without it the tests that need
certificates skip (fail under ``DUALMQ_REQUIRE_INTEROP=1``), like the other interop tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import attrs

from tests.support import require_binary

OPENSSL_TIMEOUT = 60


@attrs.frozen
class Certificates:
    """Paths of the files made by :func:`make_certificates`."""

    directory: Path
    ca_file: Path
    ca_key: Path
    cert_file: Path
    key_file: Path

    def client(self, common_name: str) -> tuple[Path, Path]:
        """A client certificate and key whose subject is ``CN=<common_name>,O=dualmq``."""
        key = self.directory / f"{common_name}.key"
        cert = self.directory / f"{common_name}.crt"
        if not cert.exists():
            _sign(self, key, cert, f"/O=dualmq/CN={common_name}", extensions="extendedKeyUsage=clientAuth")
        return cert, key


def _openssl(*args: str) -> None:
    result = subprocess.run([require_binary("openssl", "openssl"), *args], capture_output=True,
                            timeout=OPENSSL_TIMEOUT)
    assert result.returncode == 0, result.stderr.decode(errors="replace")


def _sign(certs: Certificates, key: Path, cert: Path, subject: str, *, extensions: str) -> None:
    request = key.with_suffix(".csr")
    extfile = key.with_suffix(".ext")
    extfile.write_text(extensions + "\n")
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request),
             "-subj", subject)
    _openssl("x509", "-req", "-in", str(request), "-CA", str(certs.ca_file), "-CAkey", str(certs.ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-sha256", "-extfile", str(extfile))


def make_certificates(directory: Path) -> Certificates:
    """A CA and a server certificate for 127.0.0.1 and localhost, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    certs = Certificates(directory, directory / "ca.crt", directory / "ca.key", directory / "server.crt",
                         directory / "server.key")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(certs.ca_key), "-out",
             str(certs.ca_file), "-days", "2", "-subj", "/O=dualmq/CN=dualmq test CA")
    _sign(certs, certs.key_file, certs.cert_file, "/O=dualmq/CN=localhost",
          extensions="subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
    return certs
