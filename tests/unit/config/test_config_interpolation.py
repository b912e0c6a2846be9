"""${VAR} / ${VAR:-default} / $$ interpolation."""

from __future__ import annotations

import pytest

from bot.config.interpolation import interpolate, interpolate_string


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
        ("${A:-fallback}", {}, "fallback"),
        ("${A:-fallback}", {"A": ""}, "fallback"),
        ("${A:-fallback}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("${A:-http://h:1/x}/y", {}, "http://h:1/x/y"),
        ("${A}", {"A": ""}, ""),
        ("cost $$5", {}, "cost $5"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("a $ b", {}, "a $ b"),
        ("trailing $", {}, "trailing $"),
        ("${A}${B}", {"A": "1", "B": "2"}, "12"),
    ],
)
def test_interpolate_string(text: str, env: dict[str, str], expected: str) -> None:
    result, issues, _ = interpolate_string(text, env)
    assert issues == []
    assert result == expected


def test_missing_variables_are_all_reported_without_values() -> None:
    _, issues, _ = interpolate_string("${A}/${B}/${C}", {"B": "secret-value"})
    assert [message for message, _ in issues] == [
        "environment variable A is not set",
        "environment variable C is not set",
    ]
    assert issues[0][1] == "export A, or write ${A:-default}"
    assert all("secret-value" not in message for message, _ in issues)


@pytest.mark.parametrize("text", ["${A", "${}", "${1A}", "${A:default}", "${A-b}"])
def test_malformed_placeholders(text: str) -> None:
    _, issues, _ = interpolate_string(text, {"A": "x"})
    assert len(issues) == 1
    assert "placeholder" in issues[0][0] or "never closed" in issues[0][0]


def test_only_string_values_are_interpolated_and_paths_are_tracked() -> None:
    data = {"${KEY}": "${V}", "n": 5, "items": [{"url": "${MISSING}"}, "${V}"]}
    result = interpolate(data, {"V": "val", "KEY": "k"})
    assert result.value == {"${KEY}": "val", "n": 5, "items": [{"url": ""}, "val"]}
    assert result.problems == [
        (
            ("items", 0, "url"),
            "environment variable MISSING is not set",
            "export MISSING, or write ${MISSING:-default}",
        )
    ]
    assert result.failed == {("items", 0, "url")}
    assert result.variables == {("${KEY}",): ("V",), ("items", 1): ("V",)}
