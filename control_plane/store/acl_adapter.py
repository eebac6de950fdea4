"""Casbin's async adapter over the ``acl_rules`` table.

Casbin keeps the whole policy in memory and calls these methods to persist each change
(auto-save). Several processes may write the same table, so inserts tolerate a row that
another process added first (the unique constraint on ``(ptype, v0, v1, v2)``), and removals
tolerate a row that is already gone: the database stays the source of truth, and a process
that lost a race reloads it when the change signal arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from casbin.persist.adapters.asyncio import AsyncAdapter, AsyncBatchAdapter, AsyncUpdateAdapter
from sqlalchemy import ColumnElement, and_, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.store.database import Database
from control_plane.store.models import AclRuleRow

_COLUMNS = (AclRuleRow.v0, AclRuleRow.v1, AclRuleRow.v2)


def _values(rule: Sequence[str]) -> dict[str, str]:
    if not 1 <= len(rule) <= len(_COLUMNS):
        raise ValueError(f"an ACL rule has 1 to {len(_COLUMNS)} fields, got {list(rule)!r}")
    padded = [*rule, *[""] * (len(_COLUMNS) - len(rule))]
    return {"v0": padded[0], "v1": padded[1], "v2": padded[2]}


def _matches(ptype: str, rule: Sequence[str]) -> ColumnElement[bool]:
    values = _values(rule)
    return and_(
        AclRuleRow.ptype == ptype,
        AclRuleRow.v0 == values["v0"],
        AclRuleRow.v1 == values["v1"],
        AclRuleRow.v2 == values["v2"],
    )


def _rule_of(ptype: str, v0: str, v1: str, v2: str) -> list[str]:
    # `g` rules have two fields; `p` rules three. Casbin compares rules as lists, so the
    # stored padding must not come back.
    return [v0, v1] if ptype.startswith("g") else [v0, v1, v2]


class AclAdapter(AsyncAdapter, AsyncBatchAdapter, AsyncUpdateAdapter):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def load_policy(self, model: Any) -> None:
        async with self._db.session() as session:
            rows = (
                await session.execute(select(AclRuleRow.ptype, *_COLUMNS).order_by(AclRuleRow.id))
            ).all()
        for ptype, v0, v1, v2 in rows:
            sec = ptype[:1]
            if sec in model.model and ptype in model.model[sec]:
                model.model[sec][ptype].policy.append(_rule_of(ptype, v0, v1, v2))

    async def save_policy(self, model: Any) -> bool:
        rows: list[dict[str, str]] = []
        for sec in ("p", "g"):
            for ptype, assertion in model.model.get(sec, {}).items():
                rows.extend({"ptype": ptype, **_values(rule)} for rule in assertion.policy)
        async with self._db.session() as session, session.begin():
            await session.execute(delete(AclRuleRow))
            if rows:
                await session.execute(insert(AclRuleRow), rows)
        return True

    async def add_policy(self, sec: str, ptype: str, rule: Sequence[str]) -> bool:
        return await self.add_policies(sec, ptype, [rule])

    async def add_policies(self, sec: str, ptype: str, rules: Sequence[Sequence[str]]) -> bool:
        async with self._db.session() as session:
            try:
                async with session.begin():
                    await self._insert_missing(session, ptype, rules)
            except IntegrityError:
                # Another process inserted one of these rows between our read and our insert;
                # a second pass sees it and adds only what is still missing.
                async with session.begin():
                    await self._insert_missing(session, ptype, rules)
        return True

    async def remove_policy(self, sec: str, ptype: str, rule: Sequence[str]) -> bool:
        return await self.remove_policies(sec, ptype, [rule])

    async def remove_policies(self, sec: str, ptype: str, rules: Sequence[Sequence[str]]) -> bool:
        if not rules:
            return True
        async with self._db.session() as session, session.begin():
            await session.execute(
                delete(AclRuleRow).where(or_(*(_matches(ptype, rule) for rule in rules)))
            )
        return True

    async def remove_filtered_policy(
        self, sec: str, ptype: str, field_index: int, *field_values: str
    ) -> bool:
        conditions: list[ColumnElement[bool]] = [AclRuleRow.ptype == ptype]
        for offset, value in enumerate(field_values):
            index = field_index + offset
            if index >= len(_COLUMNS):
                raise ValueError(f"an ACL rule has no field {index}")
            if value != "":  # Casbin's convention: an empty value matches anything.
                conditions.append(_COLUMNS[index] == value)
        async with self._db.session() as session, session.begin():
            await session.execute(delete(AclRuleRow).where(and_(*conditions)))
        return True

    async def update_policy(
        self, sec: str, ptype: str, old_rule: Sequence[str], new_policy: Sequence[str]
    ) -> bool:
        return await self.update_policies(sec, ptype, [old_rule], [new_policy])

    async def update_policies(
        self,
        sec: str,
        ptype: str,
        old_rules: Sequence[Sequence[str]],
        new_rules: Sequence[Sequence[str]],
    ) -> bool:
        """Replace ``old_rules`` by ``new_rules`` in one transaction (a reader never sees
        neither, or both)."""
        async with self._db.session() as session:
            for attempt in range(2):
                try:
                    async with session.begin():
                        await session.execute(
                            delete(AclRuleRow).where(
                                or_(*(_matches(ptype, rule) for rule in old_rules))
                            )
                        )
                        await self._insert_missing(session, ptype, new_rules)
                    break
                except IntegrityError:
                    if attempt:
                        raise
        return True

    async def update_filtered_policies(
        self,
        sec: str,
        ptype: str,
        new_rules: Sequence[Sequence[str]],
        field_index: int,
        *field_values: str,
    ) -> list[list[str]]:
        raise NotImplementedError("AclAdapter does not support update_filtered_policies")

    @staticmethod
    async def _insert_missing(
        session: AsyncSession, ptype: str, rules: Sequence[Sequence[str]]
    ) -> None:
        seen: set[tuple[str, str, str]] = set()
        for rule in rules:
            values = _values(rule)
            key = (values["v0"], values["v1"], values["v2"])
            if key in seen:
                continue
            seen.add(key)
            exists = await session.scalar(select(AclRuleRow.id).where(_matches(ptype, rule)))
            if exists is None:
                await session.execute(insert(AclRuleRow).values(ptype=ptype, **values))
