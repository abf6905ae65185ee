"""Tenant and season identifiers: validated once at the edge, carried as typed values.

Both are slugs matching ``[a-z0-9][a-z0-9-]*`` with at most 63 characters (the DNS-label
length, so an id can also name a Kubernetes label value or an object-store prefix). Anything
else — path separators (``../``), the multi-partition delimiter ``|``, upper case, spaces,
SQL — is refused with :class:`InvalidIdentifierError` before it reaches storage or a
partition key.
"""

from __future__ import annotations

import re
from typing import NewType

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")
MAX_SLUG_LENGTH = 63

TenantId = NewType("TenantId", str)
SeasonId = NewType("SeasonId", str)
FieldId = NewType("FieldId", str)


class InvalidIdentifierError(ValueError):
    """An identifier (tenant, season or field id) is not a valid slug."""


def _validate_slug(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifierError(f"{kind} id must be a string, got {type(value).__name__}: {value!r}")
    if not value:
        raise InvalidIdentifierError(f"{kind} id is empty")
    if len(value) > MAX_SLUG_LENGTH:
        raise InvalidIdentifierError(
            f"{kind} id {value[:80]!r} is {len(value)} characters long; the maximum is {MAX_SLUG_LENGTH}"
        )
    if not SLUG_PATTERN.fullmatch(value):
        raise InvalidIdentifierError(
            f"{kind} id {value!r} is not a slug: use lower-case letters, digits and '-', "
            "starting with a letter or digit (pattern [a-z0-9][a-z0-9-]*)"
        )
    return value


def tenant_id(value: object) -> TenantId:
    """Validate ``value`` as a tenant id.

    Raises:
        InvalidIdentifierError: ``value`` is not a string slug of 1..63 characters.
    """
    return TenantId(_validate_slug("tenant", value))


def season_id(value: object) -> SeasonId:
    """Validate ``value`` as a season id (e.g. ``s01``).

    Raises:
        InvalidIdentifierError: ``value`` is not a string slug of 1..63 characters.
    """
    return SeasonId(_validate_slug("season", value))


def field_id(value: object) -> FieldId:
    """Validate ``value`` as a field (farm plot) id.

    Raises:
        InvalidIdentifierError: ``value`` is not a string slug of 1..63 characters.
    """
    return FieldId(_validate_slug("field", value))
