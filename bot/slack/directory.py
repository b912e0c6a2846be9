"""Slack's side of `GroupDirectory`: user-group members through usergroups.users.list."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.resilience import Breakers, CallPolicy, call_outbound
from bot.services.access import GroupUnreadable
from bot.slack.failures import classify

log = logging.getLogger(__name__)

# Reading a group is idempotent: retry once, briefly; a group we cannot read grants nobody.
GROUP_LOOKUP = CallPolicy(timeout=5.0, attempts=2, deadline=10.0)


class SlackUserGroups:
    def __init__(self, client: AsyncWebClient, breakers: Breakers) -> None:
        self._client = client
        self._breakers = breakers

    async def group_members(self, group_id: str) -> list[str]:
        try:
            response = await call_outbound(
                "slack:usergroups.users.list",
                lambda: self._client.usergroups_users_list(usergroup=group_id),
                policy=GROUP_LOOKUP,
                breakers=self._breakers,
                idempotent=True,
            )
        except SlackApiError as exc:
            if exc.response.get("error") == "no_such_subteam":
                # A definite answer, not a failure: the group grants nobody (a configuration mistake).
                log.warning("responder group %s does not exist in Slack; it grants nobody", group_id)
                return []
            raise GroupUnreadable(classify(exc) or type(exc).__name__) from exc
        except Exception as exc:
            raise GroupUnreadable(classify(exc) or type(exc).__name__) from exc
        return [str(u) for u in response.get("users") or []]
