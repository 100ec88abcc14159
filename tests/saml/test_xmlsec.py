"""xmlsec1 runs without the system's CA bundle (oauth_clients/saml/xmlsec.py): its own
environment only, and xmlsec1 itself where the wrapper cannot run. That signing and verifying
still work through it is every other SAML test's business."""

from __future__ import annotations

import os
import shutil
import subprocess

from oauth_clients.saml import xmlsec
from oauth_clients.saml.idp import xmlsec_binary


def test_xmlsec1_is_started_with_no_ca_file_and_this_process_keeps_its_own(tmp_path):
    program = tmp_path / "print-env"
    program.write_text('#!/bin/sh\necho "$SSL_CERT_FILE|$*"\n')
    program.chmod(0o700)

    wrapper = xmlsec.without_ca_bundle(str(program))

    assert wrapper != str(program)
    assert os.stat(wrapper).st_mode & 0o077 == 0, "in the private directory, for us alone"
    ran = subprocess.run([wrapper, "--sign", "a b"], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "/dev/null|--sign a b"
    assert os.environ.get("SSL_CERT_FILE") != "/dev/null"


def test_the_configured_xmlsec1_runs_through_the_wrapper():
    wrapper = xmlsec_binary()

    assert wrapper != shutil.which("xmlsec1")
    ran = subprocess.run([wrapper, "--version"], capture_output=True, text=True, check=True)
    assert ran.stdout.startswith("xmlsec1 ")


def test_xmlsec1_itself_where_the_wrapper_cannot_run(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError("noexec")

    monkeypatch.setattr(xmlsec.subprocess, "run", refuse)
    binary = str(tmp_path / "xmlsec1-elsewhere")

    assert xmlsec.without_ca_bundle(binary) == binary
