"""Where the repository is, so that a test finds shipped files (playbooks/, .env.example, the manifest)
wherever in tests/ it lives."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
