"""The http action against a local deploy hook: exactly one attempt unless the step says it is idempotent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from tests.support.actions import action_from, make_ctx
from tests.support.fake_hook import FakeHook

Hook = tuple[FakeHook, str]


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    fake = FakeHook()
    async with fake.serve() as url:
        yield fake, url


def rollback_hook(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "http": {
            "method": "post",
            "url": f"{url}/rollback",
            "json": {"service": "api"},
            "headers": {
                "Authorization": "Bearer s3cret",
                "X-Deploy-Token": "t0k",
                "X-Team": "sre",
                "Content-Type": "application/json",
            },
            "timeout": "300ms",
            **extra,
        }
    }


async def test_describe_says_exactly_what_will_be_sent(hook: Hook) -> None:
    _, url = hook
    assert action_from(rollback_hook(url)).describe() == f"POST {url}/rollback for service api"
    nested = action_from({"http": {"url": f"{url}/x", "json": {"a": {"b": 1}}}})
    assert nested.describe() == f'POST {url}/x with JSON {{"a":{{"b":1}}}}'
    assert action_from({"http": {"method": "GET", "url": f"{url}/ping"}}).describe() == f"GET {url}/ping"
    flag = action_from({"http": {"method": "PUT", "url": f"{url}/flags/checkout", "json": {"enabled": False}}})
    assert flag.describe() == f"PUT {url}/flags/checkout for enabled false"


async def test_run_sends_the_request_once_and_reports_the_status(hook: Hook) -> None:
    fake, url = hook
    outcome = await action_from(rollback_hook(url)).run(make_ctx())
    assert outcome.ok, outcome.summary
    assert outcome.summary == f"POST {url}/rollback → 200 OK"
    [request] = fake.requests
    assert (request.method, request.path, request.body) == ("POST", "/rollback", {"service": "api"})
    assert request.headers["authorization"] == "Bearer s3cret"
    # never into the thread or audit log: no header value but a few harmless ones (custom ones carry credentials)
    assert outcome.details["headers"] == {
        "Authorization": "***",
        "X-Deploy-Token": "***",
        "X-Team": "***",
        "Content-Type": "application/json",
    }


async def test_preview_sends_nothing(hook: Hook) -> None:
    fake, url = hook
    outcome = await action_from(rollback_hook(url)).preview(make_ctx())
    assert outcome.ok
    assert outcome.summary == f"Would send POST {url}/rollback for service api (timeout 0.3s, one attempt)"
    assert fake.requests == []


async def test_a_503_is_not_retried_without_retry(hook: Hook) -> None:
    fake, url = hook
    fake.faults.fail(503)
    outcome = await action_from(rollback_hook(url)).run(make_ctx())
    assert not outcome.ok
    assert "answered 503: Service Unavailable (injected)" in outcome.summary
    assert len(fake.requests) == 1


async def test_a_hanging_hook_times_out_after_one_attempt(hook: Hook) -> None:
    fake, url = hook
    fake.faults.hang()
    outcome = await action_from(rollback_hook(url)).run(make_ctx())
    assert not outcome.ok
    assert outcome.summary.endswith("did not answer within 0.3s")
    assert len(fake.requests) == 1


async def test_idempotent_calls_are_retried_a_bounded_number_of_times(hook: Hook) -> None:
    fake, url = hook
    fake.faults.fail(503)
    step = action_from(rollback_hook(url, retry={"attempts": 3, "backoff": "10ms"}))
    assert (await step.preview(make_ctx())).summary.endswith("(timeout 0.3s, up to 3 attempts)")
    outcome = await step.run(make_ctx())
    assert not outcome.ok and "503" in outcome.summary
    assert len(fake.requests) == 3


async def test_a_retry_that_succeeds_reports_success(hook: Hook) -> None:
    fake, url = hook
    fake.faults.fail(502, times=2)
    outcome = await action_from(rollback_hook(url, retry={"attempts": 4, "backoff": "10ms"})).run(make_ctx())
    assert outcome.ok, outcome.summary
    assert [r.answered for r in fake.requests] == [502, 502, 200]


async def test_a_4xx_is_final_even_when_retries_are_allowed(hook: Hook) -> None:
    fake, url = hook
    fake.faults.fail(404)
    outcome = await action_from(rollback_hook(url, retry={"attempts": 3, "backoff": "10ms"})).run(make_ctx())
    assert not outcome.ok
    assert outcome.summary == f"POST {url}/rollback answered 404: Service Unavailable (injected)"
    assert len(fake.requests) == 1


async def test_the_breaker_opens_after_repeated_failures_and_stops_calling(hook: Hook) -> None:
    fake, url = hook
    fake.faults.fail(503)
    ctx = make_ctx()  # failure_threshold=3: one breaker per target, shared by every step calling it
    step = action_from(rollback_hook(url))
    for _ in range(3):
        assert not (await step.run(ctx)).ok
    outcome = await step.run(ctx)
    assert not outcome.ok
    assert f"{url} is failing since 09:00:00 UTC; calls paused until 09:01:00 UTC" in outcome.summary
    assert len(fake.requests) == 3


async def test_an_unreachable_hook_is_a_clear_failure() -> None:
    outcome = await action_from(rollback_hook("http://127.0.0.1:9")).run(make_ctx())
    assert not outcome.ok
    expected = "POST http://127.0.0.1:9/rollback failed: could not reach 127.0.0.1: ConnectError"
    assert outcome.summary.startswith(expected)


async def test_secrets_in_the_url_are_masked_wherever_people_see_it(hook: Hook) -> None:
    fake, url = hook
    base = url.replace("http://", "http://deployer:hunter2@")
    step = action_from({"http": {"url": f"{base}/rollback?service=api&token=abc123", "json": {"service": "api"}}})
    masked = url.replace("http://", "http://***@") + "/rollback?service=api&token=***"
    assert step.describe() == f"POST {masked} for service api"
    outcome = await step.run(make_ctx())
    assert outcome.ok and masked in outcome.summary and outcome.details["url"] == masked
    assert "abc123" not in repr(outcome) and "hunter2" not in repr(outcome) and "deployer" not in repr(outcome)
    [request] = fake.requests
    assert request.query == "service=api&token=abc123"  # the real URL was sent
    assert request.headers["authorization"].startswith("Basic ")
    fake.faults.fail(503)
    failed = await step.run(make_ctx())
    assert "answered 503" in failed.summary and "hunter2" not in repr(failed)


SECRET = "s3cr3t-9f8e7d6c5b4a39281706"


async def test_secret_body_values_never_reach_the_dialog_the_thread_or_the_audit_log(hook: Hook) -> None:
    fake, url = hook
    step = action_from(
        {"http": {"url": f"{url}/deploy", "json": {"service": "api", "token": SECRET, "auth": {"password": "pw1"}}}}
    )
    flat = action_from({"http": {"url": f"{url}/deploy", "json": {"service": "api", "token": SECRET}}})
    assert flat.describe() == f"POST {url}/deploy for service api, token ***"
    assert "pw1" not in step.describe() and SECRET not in step.describe()
    preview = await step.preview(make_ctx())
    assert preview.details["json"] == {"service": "api", "token": "***", "auth": "***"}
    outcome = await step.run(make_ctx())  # the hook echoes what it got: the answer holds the token
    assert outcome.ok, outcome.summary
    for shown in (preview, outcome):
        assert SECRET not in repr(shown) and "pw1" not in repr(shown)
    assert fake.requests[0].body["token"] == SECRET  # the real value was sent


async def test_the_details_keep_the_status_and_a_short_masked_first_line_never_the_body(hook: Hook) -> None:
    fake, url = hook

    async def answer(request: Request, body: object) -> Response:
        return PlainTextResponse(f"issued token={SECRET} for api\n" + "x" * 5000)

    fake.answer_with = answer
    outcome = await action_from(rollback_hook(url)).run(make_ctx())
    assert outcome.details["status"] == 200
    assert "response" not in outcome.details
    assert outcome.details["response_first_line"] == "issued token=*** for api"
    assert SECRET not in repr(outcome)


async def test_an_error_answer_quoting_the_token_is_masked_in_the_summary(hook: Hook) -> None:
    fake, url = hook

    async def answer(request: Request, body: object) -> Response:
        return PlainTextResponse(f"rejected api_key={SECRET}", status_code=403)

    fake.answer_with = answer
    outcome = await action_from(rollback_hook(url)).run(make_ctx())
    assert not outcome.ok
    assert outcome.summary == f"POST {url}/rollback answered 403: rejected api_key=***"


async def test_a_token_as_the_urls_username_or_in_its_path_is_masked() -> None:
    as_user = action_from({"http": {"url": f"https://{SECRET}@hooks.example.com/deploy"}})
    assert as_user.describe() == "POST https://***@hooks.example.com/deploy"
    webhook = action_from(
        {
            "http": {
                "url": "https://hooks.slack.com/services/T0001/B0002/XyZ0123456789abcdefGHIJK",
                "json": {"text": "rolling back"},
            }
        }
    )
    assert webhook.describe() == "POST https://hooks.slack.com/services/T0001/B0002/*** for text rolling back"
    preview = await webhook.preview(make_ctx())
    assert "XyZ0123456789abcdefGHIJK" not in repr(preview)


def test_the_usual_secret_key_names_are_masked_by_actions_and_the_audit_log() -> None:
    from bot.redaction import redact

    names = [
        "password",
        "PASSWD",
        "db_pass",
        "pwd",
        "client_secret",
        "access_token",
        "api_key",
        "X-Api-Key",
        "Authorization",
        "credentials",
        "session_id",
        "Cookie",
        "signature",
        "sig",
    ]
    body = {name: "v" for name in names}
    assert action_from(
        {"http": {"url": "https://hooks.example.com", "json": body}}
    ).describe() == "POST https://hooks.example.com for " + ", ".join(f"{name} ***" for name in names)
    assert redact(body) == {name: "[redacted]" for name in names}
