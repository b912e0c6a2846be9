"""The test harness's Slack stand-in: a fake Web API, a signed-request client, and an ASGI runner.

`FakeSlack` answers slack_sdk like Slack does and records every call; `SlackEventsClient` sends
the bot signed events, slash commands and interactions; `serve_asgi` runs either side under
uvicorn in the test's event loop. Fixtures live in `tests.sandbox.fixtures`.
"""

from .blocks import blocks_text
from .client import SlackEventsClient, compute_signature
from .fake_slack import DEFAULT_TOKEN, FakeSlack
from .recorder import BEGINNING, Call, Mark, ResponsePost
from .server import serve_asgi

__all__ = [
    "BEGINNING",
    "DEFAULT_TOKEN",
    "Call",
    "FakeSlack",
    "Mark",
    "ResponsePost",
    "SlackEventsClient",
    "blocks_text",
    "compute_signature",
    "serve_asgi",
]
