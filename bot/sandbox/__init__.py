"""`guardrail sandbox`: the real bot against an embedded Slack stand-in and local fakes, in a browser."""
