"""The apps import each other in floors, never in circles (ARCHITECTURE.md, "The floors"), and
import only public names of the libraries they stand on.

Every import our modules make at run time counts, at module level or inside a function (a
deferred import is still a dependency); imports under `if TYPE_CHECKING:` do not run and are
left out. A circle of two or more modules fails the test with the modules it runs through.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "accounts",
    "oauth_clients",
    "adminapi",
    "idp",
    "federation",
    "directory",
    "scim",
    "webhooks",
    "provisioning",
)


def _modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in _runtime_imports(child))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def _target(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [_target(alias.name, modules) for alias in node.names]
            elif node.level == 0 and node.module:
                # `from package import module` names a module; `from module import name` not.
                targets = [
                    _target(f"{node.module}.{alias.name}", modules)
                    if f"{node.module}.{alias.name}" in modules
                    else _target(node.module, modules)
                    for alias in node.names
                ]
            else:
                targets = []
            graph[name].update(t for t in targets if t and t != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_detector_finds_a_circle_and_ignores_type_only_imports():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\nimport y\n"
    )
    assert [ast.unparse(n) for n in _runtime_imports(tree)] == [
        "from typing import TYPE_CHECKING",
        "import y",
    ]


def test_no_import_circle_between_our_modules():
    graph = import_graph()
    assert "accounts.services" in graph
    assert "oauth_clients.oidc.signout" in graph["accounts.services"]  # the graph sees imports
    assert circles(graph) == []


def test_accounts_and_the_registry_reach_the_engine_through_its_one_door():
    """The engine (oauth_clients/oidc/) imports people and the registry; they import it only
    through oauth_clients.oidc.signout (ARCHITECTURE.md, "The floors")."""
    graph = import_graph()
    # The protocol engines share the floor: OIDC (`oauth_clients/oidc/`) and SAML
    # (`oauth_clients/saml/`, which may use the OIDC engine's helpers; it has no door yet).
    engine = {
        name
        for name in graph
        if name.startswith("oauth_clients.oidc")
        or name == "oauth_clients.saml"
        or name.startswith("oauth_clients.saml.")
    }
    door = "oauth_clients.oidc.signout"
    assert door in graph["accounts.services"]  # the graph sees the door being used
    below = {
        name
        for name in graph
        if name.startswith("accounts") or (name.startswith("oauth_clients") and name not in engine)
    }
    reaching = {
        name: sorted(graph[name] & (engine - {door}))
        for name in sorted(below)
        if graph[name] & (engine - {door})
    }
    assert reaching == {}


def test_scim_sits_above_people_and_the_registry():
    """SCIM (scim/) uses accounts and the registry; nothing below it imports it (only the
    wiring, idp/, mounts it)."""
    graph = import_graph()
    assert "accounts.services" in graph["scim.services"]  # the graph sees scim's imports
    below = {name for name in graph if name.startswith(("accounts", "oauth_clients"))}
    reaching = {name: sorted(t for t in graph[name] if t.startswith("scim")) for name in below}
    assert {name: targets for name, targets in reaching.items() if targets} == {}


def test_people_and_the_registry_never_import_outbound_provisioning():
    """provisioning/ sits above accounts and the registry: it hears of their changes through
    the audit feed (accounts/audit.py `event_published`), never by being imported. Only the
    admin API (adminapi/), above it, calls its services."""
    graph = import_graph()
    assert "accounts.audit" in graph["provisioning.receivers"]  # the graph sees the app
    reaching = {
        name: sorted(target for target in graph[name] if target.startswith("provisioning"))
        for name in sorted(graph)
        if not name.startswith(("provisioning", "adminapi"))
        and any(target.startswith("provisioning") for target in graph[name])
    }
    assert reaching == {}


LIBRARIES = ("django", "oauth2_provider", "oauthlib", "allauth")


def _private(dotted: str) -> bool:
    """A module path or name the library keeps to itself: a part with a leading underscore, or
    a package named `internal` (allauth's convention)."""
    return any(part.startswith("_") or part == "internal" for part in dotted.split("."))


def private_library_imports(source: str) -> list[str]:
    """Every import of a private name of Django, DOT, oauthlib or allauth in `source`, type-only
    imports included (they break as surely when the library renames the name)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                alias.name
                for alias in node.names
                if alias.name.split(".")[0] in LIBRARIES and _private(alias.name)
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in LIBRARIES:
                continue
            if _private(node.module):
                found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names if _private(alias.name)]
    return found


def test_the_private_import_detector():
    source = (
        "from allauth.core.internal import ratelimit\n"
        "from django.db.models.query import _chain\n"
        "import oauthlib._private\n"
        "from oauth2_provider.models import get_access_token_model\n"
        "from ._local import x\n"
        "from mylib._private import y\n"
    )
    assert private_library_imports(source) == [
        "allauth.core.internal",
        "django.db.models.query._chain",
        "oauthlib._private",
    ]


def test_no_module_imports_a_private_name_of_the_libraries():
    """Django, DOT, oauthlib and allauth may change what they keep private in any release; the
    apps build on their public names only (ARCHITECTURE.md)."""
    found = {
        name: private
        for name, path in _modules().items()
        if (private := private_library_imports(path.read_text()))
    }
    assert found == {}


def test_people_and_the_registry_never_import_the_federation_app():
    """`federation` (upstream sign-in) sits above `accounts` and the registry: they reach it only
    through allauth's adapter setting (SOCIALACCOUNT_ADAPTER), never by import."""
    graph = import_graph()
    assert "accounts.sessions" in graph["federation.services"]  # the graph sees federation
    reaching = {
        name: sorted(target for target in targets if target.startswith("federation"))
        for name, targets in graph.items()
        if name.startswith(("accounts", "oauth_clients"))
        and any(target.startswith("federation") for target in targets)
    }
    assert reaching == {}
