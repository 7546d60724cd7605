"""Throwaway certificates for trying TLS out: tests, benchmarks, a first secured broker.

One CA, a server certificate for ``127.0.0.1``/``localhost`` signed by it, and client
certificates (for mTLS) signed by it too, all made with the ``openssl`` program in a directory
of your choice. Good for a laptop and a test run, not for production: the keys are unencrypted
and valid for two days. Run ``python -m dualmq.devcerts DIR`` to make them from a shell.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import attrs

__all__ = ["CertificateError", "Certificates", "make_certificates"]

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


class CertificateError(RuntimeError):
    """``openssl`` is missing or refused to make a certificate."""


def _openssl(*args: str) -> None:
    program = shutil.which("openssl")
    if program is None:
        raise CertificateError("openssl not found: install it (Debian package 'openssl')")
    result = subprocess.run([program, *args], capture_output=True, timeout=OPENSSL_TIMEOUT)
    if result.returncode != 0:
        raise CertificateError(f"openssl {args[0]} failed: {result.stderr.decode(errors='replace').strip()}")


def _sign(certs: Certificates, key: Path, cert: Path, subject: str, *, extensions: str) -> None:
    request = key.with_suffix(".csr")
    extfile = key.with_suffix(".ext")
    extfile.write_text(extensions + "\n")
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request),
             "-subj", subject)
    _openssl("x509", "-req", "-in", str(request), "-CA", str(certs.ca_file), "-CAkey", str(certs.ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-sha256", "-extfile", str(extfile))


def make_certificates(directory: Path) -> Certificates:
    """A CA and a server certificate for 127.0.0.1 and localhost, in ``directory``.

    Raises:
        CertificateError: no ``openssl``, or it failed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    certs = Certificates(directory, directory / "ca.crt", directory / "ca.key", directory / "server.crt",
                         directory / "server.key")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(certs.ca_key), "-out",
             str(certs.ca_file), "-days", "2", "-subj", "/O=dualmq/CN=dualmq test CA")
    _sign(certs, certs.key_file, certs.cert_file, "/O=dualmq/CN=localhost",
          extensions="subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
    return certs


if __name__ == "__main__":
    made = make_certificates(Path(sys.argv[1] if len(sys.argv) > 1 else "dualmq-certs"))
    print(f"CA {made.ca_file}\ncertificate {made.cert_file}\nkey {made.key_file}")
