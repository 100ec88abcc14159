"""How pysaml2 runs xmlsec1: through a two-line wrapper that starts it without the system's CAs.

xmlsec1 reads OpenSSL's default CA file (the system bundle, some 140 certificates) into its X.509
store every time it starts: 23 of the 31 ms of CPU one signature cost on the bench machine
(docs/performance.md, "SAML sign-in"), and pysaml2 starts xmlsec1 for every signature. The IdP
never uses that store: SAML trusts the keys in metadata, not a CA (pysaml2 signs with our key
file and verifies with the app's registered certificate, `--pubkey-cert-pem` and `raw-x509-cert`
key data only). So xmlsec1 runs with `SSL_CERT_FILE=/dev/null` in its own environment; the
worker's own TLS (metadata fetches, back-channel logout) keeps the system CAs.

pysaml2 takes a program path and passes no environment, hence a wrapper script, written once per
process into its private key directory (`keys.private_directory`, 0700) and tried once; where it
cannot run (a temporary directory mounted noexec, no /bin/sh), xmlsec1 itself is used, as before.
To remove it: let `idp.xmlsec_binary` return the binary without `without_ca_bundle`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shlex
import subprocess
import threading

from oauth_clients.saml.keys import private_directory

logger = logging.getLogger(__name__)
_lock = threading.Lock()


def without_ca_bundle(binary: str) -> str:
    """A program that runs `binary` with no CA file to load (see the module docstring), or
    `binary` itself where the wrapper cannot run."""
    return _wrapper(binary, os.getpid())


@functools.lru_cache(maxsize=8)
def _wrapper(binary: str, pid: int) -> str:
    # `pid`: a forked worker writes its own, in its own private directory.
    name = "xmlsec1-" + hashlib.sha256(binary.encode()).hexdigest()[:12]
    script = f'#!/bin/sh\nSSL_CERT_FILE=/dev/null exec {shlex.quote(binary)} "$@"\n'
    with _lock:
        path = private_directory() / name
        try:
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
                with os.fdopen(fd, "w") as handle:
                    handle.write(script)
            subprocess.run([str(path), "--version"], capture_output=True, check=True, timeout=10)  # noqa: S603 (our own script)
        except (OSError, subprocess.SubprocessError) as exc:
            logger.warning("xmlsec1 runs with the system CA bundle (wrapper unusable: %s)", exc)
            return binary
    return str(path)
