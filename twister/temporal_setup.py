"""Registering the job workflows' search attributes on a Temporal namespace (``twister temporal
setup``, idempotent), and the check a worker makes at start: a workflow that sets an attribute the
namespace lacks fails every task, so a worker refuses to run against such a namespace."""

from __future__ import annotations

import logging
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from twister.models import SEARCH_ATTRIBUTE_TYPES
from twister.workflows.visibility import SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)


class SetupNeeded(Exception):
    """The namespace lacks search attributes twister sets, or has one of their names with another type."""


async def missing_search_attributes(client: Client, namespace: str) -> list[SearchAttributeKey[Any]]:
    """The attributes still to register; raises ``SetupNeeded`` for a name taken with another type."""
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    existing = dict(listed.custom_attributes)
    clashes = [
        f"{key.name} is {IndexedValueType.Name(existing[key.name])}, twister needs {SEARCH_ATTRIBUTE_TYPES[key.name]}"
        for key in SEARCH_ATTRIBUTES
        if key.name in existing and existing[key.name] != key.indexed_value_type.value
    ]
    if clashes:
        raise SetupNeeded(f"Search attributes of namespace {namespace!r} clash with twister's: {'; '.join(clashes)}")
    return [key for key in SEARCH_ATTRIBUTES if key.name not in existing]


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Adds the missing attributes; returns their names (none when all were there)."""
    missing = await missing_search_attributes(client, namespace)
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type.value) for key in missing
                },
            )
        )
    return [key.name for key in missing]


async def check_search_attributes(client: Client, namespace: str) -> None:
    """Raises ``SetupNeeded`` when the namespace lacks an attribute; a cluster that does not let this
    process list them (no operator permission) is trusted, with a warning."""
    try:
        missing = await missing_search_attributes(client, namespace)
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            raise
        log.warning("cannot list the search attributes of namespace %s (%s); assuming they exist", namespace, exc)
        return
    if missing:
        names = ", ".join(key.name for key in missing)
        raise SetupNeeded(
            f"Temporal namespace {namespace!r} lacks the search attributes {names} that job workflows set: "
            "run `twister temporal setup` once (same TWISTER_TEMPORAL_* settings)"
        )
