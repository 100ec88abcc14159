"""What the directory says, read with python-ldap into plain values: people (their mapped
attributes, disabled or not) and groups with their nesting. Every search is paged (RFC 2696:
Active Directory answers at most 1,000 entries otherwise) and every value filtered by
python-ldap's escaping, never by string building."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import ldap
import ldap.dn
import ldap.filter
from ldap.controls import SimplePagedResultsControl

from directory.config import MAPPED_FIELDS, DirectorySettings


def dn_key(dn: str) -> str:
    """A DN compared the way directories compare them: spacing and letter case ignored."""
    try:
        return str(ldap.dn.dn2str(ldap.dn.str2dn(dn))).lower()
    except ldap.DECODING_ERROR:
        return dn.strip().lower()


def _str(value: bytes | str) -> str:
    # python-ldap answers bytes; django-auth-ldap's searches hand back text.
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _text(values: list[bytes] | list[str] | None) -> str:
    if not values:
        return ""
    return _str(values[0]).strip()


def paged_search(
    connection: Any, *, base: str, filterstr: str, attrs: list[str], page_size: int
) -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    control = SimplePagedResultsControl(True, size=page_size, cookie="")
    while True:
        msgid = connection.search_ext(
            base, ldap.SCOPE_SUBTREE, filterstr, attrs, serverctrls=[control]
        )
        _type, entries, _msgid, controls = connection.result3(msgid)
        for dn, entry in entries:
            if dn is not None:  # a search reference (Active Directory's referrals)
                yield dn, entry
        cookie = next(
            (
                found.cookie
                for found in controls
                if found.controlType == SimplePagedResultsControl.controlType
            ),
            b"",
        )
        if not cookie:
            return
        control.cookie = cookie


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    values: dict[str, str]
    disabled: bool = False

    @property
    def key(self) -> str:
        return dn_key(self.dn)

    @property
    def username(self) -> str:
        return self.values.get("username", "")


def user_from_entry(
    config: DirectorySettings, dn: str, entry: dict[str, Any], *, disabled: bool
) -> DirectoryUser:
    # Attribute names are case-insensitive; python-ldap keeps the server's spelling.
    by_name = {name.lower(): values for name, values in entry.items()}
    values = {
        name: _text(by_name.get(config.attr_map.get(name, "").lower()))
        for name in MAPPED_FIELDS
        if config.attr_map.get(name)
    }
    return DirectoryUser(dn=dn, values=values, disabled=disabled)


def read_users(connection: Any, config: DirectorySettings) -> list[DirectoryUser]:
    """Every person under the user base, each marked disabled when the disabled filter
    matches it."""
    everyone = config.all_users_filter
    disabled = (
        {
            dn_key(dn)
            for dn, _entry in paged_search(
                connection,
                base=config.user_base,
                filterstr=f"(&{everyone}{config.disabled_filter})",
                attrs=["1.1"],
                page_size=config.page_size,
            )
        }
        if config.disabled_filter
        else set()
    )
    return [
        user_from_entry(config, dn, entry, disabled=dn_key(dn) in disabled)
        for dn, entry in paged_search(
            connection,
            base=config.user_base,
            filterstr=everyone,
            attrs=config.user_attributes,
            page_size=config.page_size,
        )
    ]


def is_disabled(connection: Any, config: DirectorySettings, dn: str) -> bool:
    """Whether the disabled filter matches this one entry (a base search: one round trip)."""
    if not config.disabled_filter:
        return False
    found = connection.search_s(dn, ldap.SCOPE_BASE, config.disabled_filter, ["1.1"])
    return bool(found)


@dataclass
class GroupGraph:
    """Groups by DN key: their names and their members (people and groups, by DN key)."""

    names: dict[str, str] = field(default_factory=dict)
    dns: dict[str, str] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    # Member key -> the groups holding it, built on first use (a full sync asks per person).
    _index: dict[str, list[str]] | None = field(default=None, repr=False)

    def add(self, config: DirectorySettings, dn: str, entry: dict[str, list[bytes]]) -> str:
        by_name = {name.lower(): values for name, values in entry.items()}
        key = dn_key(dn)
        self._index = None
        self.names[key] = _text(by_name.get(config.group_name_attr.lower()))
        self.dns[key] = dn
        self.members[key] = {
            dn_key(_str(value)) for value in by_name.get(config.group_member_attr.lower(), [])
        }
        return key

    def containers(self, key: str) -> list[str]:
        if self._index is None:
            index: dict[str, list[str]] = {}
            for group in sorted(self.members):
                for member in self.members[group]:
                    index.setdefault(member, []).append(group)
            self._index = index
        return self._index.get(key, [])

    def parent(self, key: str) -> str | None:
        """The group this one sits in here: groups nest as a tree in this IdP, so of several
        containing groups the first by DN (every run picks the same). A person in the
        other ones is made a direct member of them (`direct_groups`), so nobody's effective
        groups differ from the directory's."""
        containers = [group for group in self.containers(key) if group != key]
        return containers[0] if containers else None

    def effective_groups(self, member_key: str) -> set[str]:
        """Every group `member_key` is in, directly or through nested groups (cycles end)."""
        found: set[str] = set()
        frontier = {member_key}
        while frontier:
            above = {group for item in frontier for group in self.containers(item)}
            frontier = above - found
            found |= above
        return found

    def tree_ancestors(self, key: str) -> set[str]:
        found: set[str] = set()
        parent = self.parent(key)
        while parent is not None and parent not in found:
            found.add(parent)
            parent = self.parent(parent)
        return found

    def direct_groups(self, member_key: str) -> set[str]:
        """The groups to make this person a direct member of here: their effective groups
        less those the tree of parents already implies."""
        effective = self.effective_groups(member_key)
        implied = {ancestor for key in effective for ancestor in self.tree_ancestors(key)}
        return effective - implied


def read_groups(connection: Any, config: DirectorySettings) -> GroupGraph:
    graph = GroupGraph()
    if not config.group_base:
        return graph
    for dn, entry in paged_search(
        connection,
        base=config.group_base,
        filterstr=config.group_filter,
        attrs=[config.group_name_attr, config.group_member_attr],
        page_size=config.page_size,
    ):
        graph.add(config, dn, entry)
    return graph


def read_groups_of(connection: Any, config: DirectorySettings, dn: str) -> GroupGraph:
    """The groups one person is in and every group above those (a search per level of
    nesting, as django-auth-ldap's nested group types do): enough for their memberships and
    for each of those groups' parent."""
    graph = GroupGraph()
    if not config.group_base:
        return graph
    frontier = {dn}
    seen: set[str] = set()
    while frontier:
        member_filter = "".join(
            ldap.filter.filter_format(f"({config.group_member_attr}=%s)", [value])
            for value in sorted(frontier)
        )
        found = connection.search_s(
            config.group_base,
            ldap.SCOPE_SUBTREE,
            f"(&{config.group_filter}(|{member_filter}))",
            [config.group_name_attr, config.group_member_attr],
        )
        frontier = set()
        for group_dn, entry in found:
            if group_dn is None:
                continue
            key = graph.add(config, group_dn, entry)
            if key not in seen:
                seen.add(key)
                frontier.add(group_dn)
    return graph
