"""The sandbox page in a real browser: Debian's Chromium, headless, driven by Playwright for Python.

No browser is downloaded (never `playwright install`): `.ci/run` installs Debian's `chromium`. The
test clicks through the demo-day drill as a newcomer would, checks what the issue promises on the
page, takes a screenshot mid-incident, and prints the drill's stopwatch and click count.

The screenshot goes to docs/img/sandbox.png (the README and docs/sandbox.md show it) when that file
is missing or UPDATE_SCREENSHOT=1, so an ordinary run leaves the working tree clean.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from bot.sandbox.run import Sandbox, SandboxOptions, running_sandbox

ROOT = Path(__file__).parent.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "docs" / "img" / "sandbox.png"
WAIT_MS = 30_000  # a step runs real HTTP and health checks on a shared 2-core machine


@pytest.fixture
async def sandbox(redis_url: str, tmp_path: Path) -> AsyncIterator[Sandbox]:
    options = SandboxOptions(config_dir=ROOT / "playbooks", port=0, redis_url=redis_url, db=tmp_path / "g.db")
    async with running_sandbox(options, say=lambda _: None) as running:
        yield running


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; missing fails under CI=true (it must run there) and skips elsewhere."""
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
async def page(sandbox: Sandbox, chromium: Path) -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900}, timezone_id="America/New_York")
            page.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)
            await page.goto(sandbox.url + "/")
            yield page
        finally:
            await browser.close()


async def as_user(page: Page, name: str) -> None:
    await page.select_option("#user", value=f"U0{name.upper()}")
    await expect(page.locator("#user")).to_have_value(f"U0{name.upper()}")


async def send(page: Page, text: str) -> None:
    await page.fill("#composer-input", text)
    await page.press("#composer-input", "Enter")


async def open_channel(page: Page, name: str) -> None:
    await page.locator("#channels a", has_text=re.compile(f"^# {name}")).click()
    await expect(page.locator("#channel-header")).to_have_text(re.compile(f"^# {name}"))


async def run_step(page: Page, label: str, *, confirm: bool) -> None:
    """Click a playbook step (through its confirm dialog) and wait for its ✅ in the playbook message."""
    await page.locator("#messages button.sbtn", has_text=re.compile(f"^{label}$")).last.click()
    if confirm:
        dialog = page.get_by_role("alertdialog")
        await expect(dialog).to_contain_text(f"Run: {label}")
        await dialog.get_by_role("button", name="Run it").click()
    line = page.locator("#messages .block-section", has_text=re.compile(f"^{re.escape(label)}"))
    await expect(line).to_contain_text("✅ succeeded")


async def test_the_demo_day_drill_in_a_browser(sandbox: Sandbox, page: Page, tmp_path: Path) -> None:
    await as_user(page, "carol")
    await page.get_by_role("button", name="Start the demo-day drill").click()
    await expect(page.locator("#stopwatch")).to_contain_text("demo-day drill is ready")
    await open_channel(page, "deploys")
    await expect(page.locator("#messages")).to_contain_text("v142 (9f3c2e1)")  # the deploy, recorded by "CI"
    await expect(page.locator("#messages")).to_contain_text("SHARED_DB_POOL_SIZE")
    await expect(page.locator("#messages time").first).to_be_visible()  # <!date^…> shown in the browser's zone

    # "are we down?" → the answer in the thread.
    await open_channel(page, "general")
    await send(page, "are we down?")
    await page.get_by_role("button", name="1 reply").click()
    thread = page.locator("#thread-messages")
    await expect(thread).to_contain_text("down")
    await expect(thread).to_contain_text("api")

    # Declare from the answer → the incident channel appears with the playbook's buttons.
    await thread.get_by_role("button", name="Declare incident").click()
    incident = page.locator("#channels a", has_text=re.compile(r"^# inc-"))
    await expect(incident).to_be_visible()
    await incident.click()
    await expect(page.locator("#messages button.sbtn.danger", has_text="Roll back last deploy")).to_be_visible()
    await expect(page.locator("#messages .mention").first).to_be_visible()  # <@U…> as a name

    playbook = page.locator("#messages .msg", has=page.locator("button", has_text="Verify database and queue"))
    before = await playbook.get_attribute("data-ts")
    await run_step(page, "Roll back last deploy", confirm=True)
    assert sandbox.world.services["api"].state == "up"  # the rollback mended the API
    await run_step(page, "Disable worker", confirm=True)
    await run_step(page, "Scale down looping services", confirm=True)
    await run_step(page, "Verify database and queue", confirm=False)
    # Verify's success is edited into the playbook message in place (same message, no new one).
    edited = page.locator(f'#messages .msg[data-ts="{before}"]')
    await expect(edited).to_contain_text("(edited)")
    await expect(edited.locator(".block-section", has_text="Verify database and queue")).to_contain_text("succeeded")
    await expect(page.locator("#stopwatch")).to_contain_text("stopped")
    seconds = float((await page.locator("#stopwatch-time").inner_text()).removesuffix(" s"))
    clicks = int(await page.locator("#clicks").inner_text())
    update = os.environ.get("UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists()
    shot = SCREENSHOT if update else tmp_path / "sandbox.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG")
    print(f"\ndemo-day drill in the browser: {seconds:.1f} s from 'are we down?' to verify, {clicks} clicks")
    assert sandbox.world.heroku.apps["acme-prod"].formation["worker"]["quantity"] == 0
    assert sandbox.world.kube.deployments[("prod", "api-consumer")]["spec"]["replicas"] == 0
    await run_step(page, "Replay failed jobs", confirm=False)

    # A non-responder's click is refused, shown only to them.
    await as_user(page, "alice")
    await page.locator("#messages button.sbtn", has_text=re.compile("^Roll back last deploy$")).last.click()
    await page.get_by_role("alertdialog").get_by_role("button", name="Run it").click()
    refusal = page.locator("#messages .msg.ephemeral")
    await expect(refusal).to_contain_text("Only visible to you")
    await expect(refusal).to_contain_text("responder")

    # /freeze for 1h Demo → announced in #deploys; /audit lists it.
    await as_user(page, "carol")
    await expect(page.locator("#messages .msg.ephemeral")).to_have_count(0)  # alice's, not carol's
    await open_channel(page, "general")
    await page.fill("#composer-input", "/freeze")
    await expect(page.locator("#hint")).to_contain_text("for 2h Demo Day")  # the manifest's usage hint
    await send(page, "/freeze for 1h Demo")
    await open_channel(page, "deploys")
    await expect(page.locator("#messages")).to_contain_text("❄️ @carol froze production: Demo")
    await send(page, "/audit")
    await expect(page.locator("#messages .msg.ephemeral")).to_contain_text(re.compile("freeze", re.IGNORECASE))


async def test_the_freeze_modal_shows_its_validation_error(sandbox: Sandbox, page: Page) -> None:
    await as_user(page, "dave")
    await send(page, "/freeze new")
    dialog = page.get_by_role("dialog", name="New freeze window")
    await expect(dialog).to_be_visible()
    times = dialog.locator('input[type="time"]')
    await times.nth(0).fill("18:00")
    await times.nth(1).fill("09:00")  # ends before it starts
    await dialog.locator("input[data-type=plain_text_input]").fill("Demo Day")
    await dialog.get_by_role("button", name="Freeze").click()
    await expect(dialog.locator(".field-error")).to_be_visible()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
