"""Freeze windows: when deploys must wait, who may let one through, and what is announced.

Shaped like `bot.services.incidents`:

- `models`: the domain types (windows, exemptions, decisions, notices) and the refusals;
- `grammar`: `/freeze` arguments ("2h", "until fri 18:00", "every fri 16:00 for 60h") → times;
- `service`: the use cases (create, list, cancel, extend, the gate) in one unit of work each;
- `exemptions`: break-glass, a responder asks and another approves;
- `gate`: the pure decision and its bounded snapshot; `listing`: the bounded upcoming-windows snapshot;
- `schedule`: reminders and recurring windows; `ticker`: the scheduler tick that announces them;
- `notices`: announcements ⇄ outbox payloads; `records`: rows ⇄ domain;
- `on_incident`: the incident feature's freeze (`freeze.on_incident`), over the service.

Deploy recording, which the gate refuses while frozen, is its own feature: `bot.services.deploys`.
This package's `__init__` imports nothing, so the gate's decision loads without SQL.
"""
