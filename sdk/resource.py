"""What every resource of `GliaClient` shares: the client, and reading a whole connection."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from glia.model import Model
from glia.pages import MAX_PAGE_SIZE

if TYPE_CHECKING:
    from sdk.client import GliaClient

M = TypeVar("M", bound=Model)


class Resource:
    def __init__(self, client: GliaClient) -> None:
        self._client = client

    async def _all_pages(
        self,
        document: str,
        field: str,
        model: type[M],
        variables: Mapping[str, Any] | None = None,
    ) -> builtins.list[M]:
        """Every node of the connection ``field`` that ``document`` asks for, page after page."""
        found: builtins.list[M] = []
        after: str | None = None
        while True:
            data = await self._client.execute(
                document, {**(variables or {}), "first": MAX_PAGE_SIZE, "after": after}
            )
            page = data[field]
            found += [model.model_validate(edge["node"]) for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]
