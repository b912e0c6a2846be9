"""Responders are typed when the configuration loads: a user id is a user, an S… id a user group."""

from __future__ import annotations

from bot.config.models import Access, Principal
from bot.services.access import Responders
from tests.support.clock import FakeClock


class Directory:
    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups
        self.asked: list[str] = []

    async def group_members(self, group_id: str) -> list[str]:
        self.asked.append(group_id)
        return self.groups[group_id]


def test_responders_are_parsed_into_users_and_groups_when_the_config_loads() -> None:
    access = Access.model_validate({"responders": ["U0CAROL", "S0SRE", "W0EXT"]})
    assert access.principals == (Principal("U0CAROL", False), Principal("S0SRE", True), Principal("W0EXT", False))


async def test_only_groups_are_looked_up_and_users_are_matched_by_id() -> None:
    directory = Directory({"S0SRE": ["U0ERIN"]})
    responders = Responders(
        Access.model_validate({"responders": ["U0CAROL", "S0SRE"]}).principals, FakeClock(), directory=directory
    )
    assert (await responders.membership("U0CAROL")).allowed and directory.asked == []
    assert (await responders.membership("U0ERIN")).allowed and directory.asked == ["S0SRE"]
    assert not (await responders.membership("U0MALLORY")).allowed
    assert await responders.user_ids() == ["U0CAROL", "U0ERIN"]
