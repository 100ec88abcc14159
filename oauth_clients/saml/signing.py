"""Our XML signatures made in the worker, by libxmlsec1 itself, rather than by a new xmlsec1
process per signature.

pysaml2 signs by writing the document to a temporary file and running the `xmlsec1` program
(`--sign --privkey-pem KEY --id-attr:ID NODE --node-id ID`). The program is Debian's front end
to libxmlsec1; the python `xmlsec` package (pinned in requirements.txt) binds the same library.
`InProcessSigning` does in the worker what that command line does: the element whose `ID` is
`node_id` (its `ID` attribute registered as an XML ID, like `--id-attr:ID NODE`), the first
`ds:Signature` template at or under it (pysaml2's `pre_signature_part`: enveloped +
exclusive C14N, RSA-SHA256, SHA-256), filled in by `xmlsec.SignatureContext.sign` with our
current key. Nothing of the signature is built here: the template is pysaml2's, the digest and
signature libxmlsec1's. Figures: docs/performance.md, "SAML sign-in".

Only signing moves. Every signature we *check* (an app's AuthnRequest or LogoutRequest) still
goes through the inherited `validate_signature`, the xmlsec1 program with the app's registered
certificate, and pysaml2's checks after it (the signature-wrapping and comment-injection tests
in tests/saml/test_bad_input.py hold that path).

The document is our own (pysaml2's serialisation of what we build), parsed without entity
resolution or network access all the same. To remove: drop the `sec.crypto` line in
`idp._build_server`; pysaml2 then runs xmlsec1 per signature again.
"""

from __future__ import annotations

import functools
import os

import xmlsec
from lxml import etree
from saml2.sigver import CryptoBackendXmlSec1, SignatureError

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_comments=False
)


@functools.lru_cache(maxsize=8)
def _key(path: str, modified_ns: int) -> xmlsec.Key:
    # `modified_ns`: a key file rewritten under the same name (keys.py) is read again.
    return xmlsec.Key.from_file(path, xmlsec.constants.KeyDataFormatPem)


def _split(node_name: str) -> tuple[str, str]:
    """'urn:oasis:names:tc:SAML:2.0:assertion:Assertion' → (namespace, 'Assertion'), the way
    xmlsec1 reads `--id-attr:ID <namespace>:<name>`."""
    namespace, _, local = node_name.rpartition(":")
    return namespace, local


def sign_xml(statement: str | bytes, *, node_name: str, key_file: str, node_id: str | None) -> str:
    """`statement` with the signature template at or under the element `node_id` filled in."""
    document = statement.encode("utf-8") if isinstance(statement, str) else statement
    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SignatureError("the document to sign is not well-formed") from exc
    namespace, local = _split(node_name)
    tag = f"{{{namespace}}}{local}" if namespace else local
    context = xmlsec.SignatureContext()
    start = root if not node_id else None
    for element in root.iter(tag):
        if element.get("ID") is None:
            continue
        context.register_id(element, "ID")
        if node_id and element.get("ID") == node_id:
            start = element
    if start is None:
        raise SignatureError(f"no {local} with ID {node_id} to sign")
    template = xmlsec.tree.find_node(start, xmlsec.constants.NodeSignature)
    if template is None:
        raise SignatureError("no signature template to fill in")
    context.key = _key(key_file, os.stat(key_file).st_mtime_ns)
    try:
        context.sign(template)
    except xmlsec.Error as exc:
        raise SignatureError("libxmlsec1 could not sign the document") from exc
    declaration = document.lstrip().startswith(b"<?xml")
    signed: bytes = etree.tostring(root, xml_declaration=declaration, encoding="UTF-8")
    return signed.decode("utf-8")


class InProcessSigning(CryptoBackendXmlSec1):
    """pysaml2's xmlsec1 back end, signing in the worker (see the module docstring); checking
    signatures, encrypting and decrypting as before, with the program."""

    def sign_statement(  # type: ignore[override]
        self, statement: object, node_name: str, key_file: str, node_id: str
    ) -> str:
        # pysaml2 passes a string, bytes or a SamlBase (whose str() is its XML).
        document = statement if isinstance(statement, str | bytes) else str(statement)
        return sign_xml(document, node_name=node_name, key_file=key_file, node_id=node_id)
