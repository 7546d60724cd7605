"""Certificates for the TLS tests, made per run (``dualmq.devcerts``, which runs ``openssl``).

``openssl`` is a tool nobody here wrote: without it these tests skip, or fail under
``DUALMQ_REQUIRE_INTEROP=1``, like the other interop tests.
"""

from __future__ import annotations

from pathlib import Path

from dualmq.devcerts import Certificates
from dualmq.devcerts import make_certificates as _make
from tests.support import require_binary

__all__ = ["Certificates", "make_certificates"]


def make_certificates(directory: Path) -> Certificates:
    """A CA, and a server certificate for 127.0.0.1 signed by it, in ``directory``."""
    require_binary("openssl", "openssl")
    return _make(directory)
