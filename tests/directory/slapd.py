"""A real OpenLDAP server (Debian's slapd) for the directory tests: a slapd.conf and an mdb
database in a temporary directory, seeded offline with slapadd from LDIF, serving on a free
loopback port. Optionally StartTLS with a certificate made here (cryptography)."""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"

SUFFIX = "dc=example,dc=com"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
SERVICE_DN = f"cn=idp-service,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service-secret"
USER_BASE = f"ou=people,{SUFFIX}"
GROUP_BASE = f"ou=groups,{SUFFIX}"
# Active Directory's userPrincipalName (its own OID, 1.2.840.113556.1.4.656), which OpenLDAP's
# schemas lack, and an auxiliary class that carries it (an OID of OpenLDAP's experimental arc):
# the tests sign in by `alice@corp.example` as a person of Active Directory would.
AD_UPN_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.29.1 NAME 'idpTestPrincipal' AUXILIARY
  MAY userPrincipalName )
"""
# ppolicy: a value of pwdAccountLockedTime of 000001010000Z locks the account for good.
LOCKED_FOR_GOOD = "000001010000Z"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def person(uid: str, given: str, surname: str, password: str, **extra: str) -> str:
    lines = [
        f"dn: uid={uid},{USER_BASE}",
        "objectClass: inetOrgPerson",
        f"uid: {uid}",
        f"cn: {given} {surname}",
        f"givenName: {given}",
        f"sn: {surname}",
        f"mail: {uid}@example.com",
        f"userPassword: {password}",
    ]
    lines += [f"{name}: {value}" for name, value in extra.items()]
    return "\n".join(lines) + "\n"


def group(cn: str, *members: str) -> str:
    lines = [f"dn: cn={cn},{GROUP_BASE}", "objectClass: groupOfNames", f"cn: {cn}"]
    lines += [f"member: {member}" for member in members]
    return "\n".join(lines) + "\n"


def user_dn(uid: str) -> str:
    return f"uid={uid},{USER_BASE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUP_BASE}"


BASE_LDIF = f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: ou=policies,{SUFFIX}
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,{SUFFIX}
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE

dn: {SERVICE_DN}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: idp-service
userPassword: {SERVICE_PASSWORD}
"""


@dataclass
class TLSFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path, *, host: str = "127.0.0.1") -> TLSFiles:
    """A CA and a server certificate for `host` (an IP address SAN), made with cryptography."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test directory CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(
        ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "key.pem"
    )
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(files.key, 0o600)
    return files


@dataclass
class Slapd:
    """One running slapd. `url` is its ldap:// address on loopback."""

    directory: Path
    port: int
    tls: TLSFiles | None = None
    # With TLS, slapd also listens for LDAPS (TLS from the first byte) on this port.
    tls_port: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}/"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}/"

    @property
    def conf(self) -> Path:
        return self.directory / "slapd.conf"

    @property
    def listeners(self) -> str:
        return f"{self.url} {self.ldaps_url}" if self.tls_port else self.url

    def write_config(self) -> None:
        schemas = ["core", "cosine", "inetorgperson", "nis"]
        tls = (
            f"TLSCACertificateFile {self.tls.ca}\n"
            f"TLSCertificateFile {self.tls.cert}\n"
            f"TLSCertificateKeyFile {self.tls.key}\n"
            if self.tls
            else ""
        )
        (self.directory / "db").mkdir(exist_ok=True)
        upn_schema = self.directory / "ad-upn.schema"
        upn_schema.write_text(AD_UPN_SCHEMA)
        self.conf.write_text(
            "".join(f"include {SCHEMA_DIR}/{name}.schema\n" for name in schemas)
            + f"include {upn_schema}\n"
            + f"modulepath {MODULE_DIR}\nmoduleload back_mdb\nmoduleload ppolicy\n"
            + f"pidfile {self.directory}/slapd.pid\n"
            + tls
            + "database mdb\n"
            + f"suffix {SUFFIX}\nrootdn {ROOT_DN}\nrootpw {ROOT_PASSWORD}\n"
            + f"directory {self.directory}/db\nmaxsize 10485760\n"
            + f"overlay ppolicy\nppolicy_default cn=default,ou=policies,{SUFFIX}\n"
            # The service account and the root read everything; a person authenticates with
            # their own password and reads nothing else; no one anonymous reads anything.
            + "access to attrs=userPassword by anonymous auth by * none\n"
            + f'access to * by dn.exact="{SERVICE_DN}" read by self read by * none\n'
        )

    def seed(self, ldif: str) -> None:
        path = self.directory / "seed.ldif"
        path.write_text(ldif)
        subprocess.run(
            [SLAPADD, "-f", str(self.conf), "-l", str(path)],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [SLAPD, "-f", str(self.conf), "-h", self.listeners, "-d", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd stopped: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("slapd did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def connect(self):  # type: ignore[no-untyped-def]
        """A python-ldap connection bound as the root (for tests changing the directory)."""
        import ldap

        connection = ldap.initialize(self.url)
        connection.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
        return connection


def start_slapd(ldif: str, *, tls: bool = False) -> Slapd:
    directory = Path(tempfile.mkdtemp(prefix="idp-slapd-"))
    server = Slapd(directory=directory, port=free_port())
    if tls:
        server.tls = make_tls_files(directory)
        server.tls_port = free_port()
    server.write_config()
    server.seed(BASE_LDIF + "\n" + ldif)
    server.start()
    return server


def remove_slapd(server: Slapd) -> None:
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)
