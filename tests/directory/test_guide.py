"""docs/guides/ldap.md names exactly the directory's settings idp/settings.py reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_guide_documents_every_directory_setting_and_no_other():
    settings_source = (ROOT / "idp" / "settings.py").read_text()
    guide = (ROOT / "docs" / "guides" / "ldap.md").read_text()
    read = set(re.findall(r'os\.environ\.get\("(IDP_LDAP_\w+)"', settings_source))
    read |= set(re.findall(r'env_(?:bool|int|list)\("(IDP_LDAP_\w+)"', settings_source))
    documented = set(re.findall(r"\b(IDP_LDAP_[A-Z_]+)\b", guide))
    # The table names the attribute map's variables as a range: USERNAME ... JOB_TITLE.
    documented |= {f"IDP_LDAP_ATTR_{name}" for name in re.findall(r"`([A-Z_]+)` `\w+`", guide)}
    assert read, "no directory settings found"
    assert read - documented == set()
    assert documented - read == set()
