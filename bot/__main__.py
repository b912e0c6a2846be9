"""`python -m bot` runs the guardrail CLI."""

import sys

from bot.cli import main

sys.exit(main())
