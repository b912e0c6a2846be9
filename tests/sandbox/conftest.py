"""Make the stand-in's fixtures available to its own tests."""

from .fixtures import fake_slack, make_events_client

__all__ = ["fake_slack", "make_events_client"]
