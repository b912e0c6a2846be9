"""Block Kit as Slack sees it: the limits Slack enforces, and the text a person would read.

`check_blocks` raises the same `invalid_blocks` errors (with `[ERROR] ... [json-pointer:...]`
explanations) Slack returns, so a layout that only works against a lenient fake fails here too.
`blocks_text` flattens the visible text so tests can assert on wording without walking the JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import SlackError, invalid_blocks

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ID = 255
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25

# Block element types that carry an action_id (and so must not collide).
_INTERACTIVE = {
    "button", "checkboxes", "datepicker", "datetimepicker", "timepicker", "overflow",
    "plain_text_input", "radio_buttons", "static_select", "external_select", "users_select",
    "conversations_select", "channels_select", "multi_static_select", "multi_external_select",
    "multi_users_select", "multi_conversations_select", "multi_channels_select", "email_text_input",
    "number_input", "url_text_input", "rich_text_input", "file_input",
}  # fmt: skip


def check_blocks(blocks: Any, *, max_blocks: int, pointer: str = "/blocks", unique_actions: bool = True) -> None:
    """Raise `SlackError` the way Slack rejects `blocks`; return quietly when Slack would accept them.

    `unique_actions` applies Slack's message rule that an action_id may appear once per message;
    views only need it unique within each block (input blocks are keyed by block_id).
    """
    if not isinstance(blocks, list):
        raise invalid_blocks([f"[ERROR] must be an array [json-pointer:{pointer}]"], error="invalid_blocks_format")
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"[ERROR] no more than {max_blocks} items allowed [json-pointer:{pointer}]")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"{pointer}/{index}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"[ERROR] missing required field: type [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                problems.append(f'[ERROR] duplicate block_id "{block_id}" [json-pointer:{where}/block_id]')
            block_ids.add(block_id)
            _limit(problems, block_id, MAX_ID, f"{where}/block_id")
        if not unique_actions:
            action_ids = set()
        problems.extend(_check_block(block, where))
        for element, element_where in _elements(block, where):
            problems.extend(_check_element(element, element_where, action_ids))
    if problems:
        raise invalid_blocks(problems)


def _check_block(block: Mapping[str, Any], where: str) -> list[str]:
    """Per-type limits for one block (text lengths, field and element counts)."""
    problems: list[str] = []
    kind = block["type"]
    if kind == "section":
        if block.get("text") is None and not block.get("fields"):
            problems.append(f"[ERROR] must provide either text or fields [json-pointer:{where}]")
        if block.get("text") is not None:
            problems.extend(_check_text(block["text"], f"{where}/text", MAX_SECTION_TEXT))
        fields = block.get("fields") or []
        if len(fields) > MAX_FIELDS:
            problems.append(f"[ERROR] no more than {MAX_FIELDS} items allowed [json-pointer:{where}/fields]")
        for i, field in enumerate(fields):
            problems.extend(_check_text(field, f"{where}/fields/{i}", MAX_FIELD_TEXT))
    elif kind == "header":
        problems.extend(_check_text(block.get("text"), f"{where}/text", MAX_HEADER_TEXT, plain_only=True))
    elif kind == "context" and len(block.get("elements") or []) > MAX_CONTEXT_ELEMENTS:
        problems.append(f"[ERROR] no more than {MAX_CONTEXT_ELEMENTS} items allowed [json-pointer:{where}/elements]")
    elif kind == "actions" and len(block.get("elements") or []) > MAX_ACTIONS_ELEMENTS:
        problems.append(f"[ERROR] no more than {MAX_ACTIONS_ELEMENTS} items allowed [json-pointer:{where}/elements]")
    return problems


def _elements(block: Mapping[str, Any], where: str) -> Iterable[tuple[Mapping[str, Any], str]]:
    """The interactive elements of a block, each with its json-pointer."""
    if isinstance(block.get("accessory"), dict):
        yield block["accessory"], f"{where}/accessory"
    if isinstance(block.get("element"), dict):
        yield block["element"], f"{where}/element"
    if block.get("type") == "actions":
        for i, element in enumerate(block.get("elements") or []):
            if isinstance(element, dict):
                yield element, f"{where}/elements/{i}"


def _check_element(element: Mapping[str, Any], where: str, action_ids: set[str]) -> list[str]:
    """Button limits and action_id uniqueness (`action_ids` is shared across the checked scope)."""
    problems: list[str] = []
    action_id = element.get("action_id")
    if element.get("type") in _INTERACTIVE and isinstance(action_id, str):
        if action_id in action_ids:
            problems.append(
                f'[ERROR] duplicate action_id "{action_id}": action_id must be unique in a message '
                f"[json-pointer:{where}/action_id]"
            )
        action_ids.add(action_id)
        _limit(problems, action_id, MAX_ID, f"{where}/action_id")
    if element.get("type") == "button":
        problems.extend(_check_text(element.get("text"), f"{where}/text", MAX_BUTTON_TEXT, plain_only=True))
        if isinstance(element.get("value"), str):
            _limit(problems, element["value"], MAX_BUTTON_VALUE, f"{where}/value")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"[ERROR] must be a valid enum value [json-pointer:{where}/style]")
    return problems


def _check_text(obj: Any, where: str, max_len: int, *, plain_only: bool = False) -> list[str]:
    """A composition text object: right type, non-empty, and within `max_len` characters."""
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"[ERROR] missing required field: text [json-pointer:{where}]"]
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in allowed:
        return [f"[ERROR] must be a valid enum value [json-pointer:{where}/type]"]
    problems: list[str] = []
    if not obj["text"]:
        problems.append(f"[ERROR] must be more than 0 characters [json-pointer:{where}/text]")
    _limit(problems, obj["text"], max_len, f"{where}/text")
    return problems


def _limit(problems: list[str], value: str, max_len: int, where: str) -> None:
    """Slack's wording for a string over its length limit."""
    if len(value) > max_len:
        problems.append(f"[ERROR] must be less than {max_len + 1} characters [json-pointer:{where}]")


def check_message_text(text: Any) -> None:
    """`msg_too_long` for top-level `text` over Slack's 40,000 character limit."""
    if isinstance(text, str) and len(text) > 40_000:
        raise SlackError("msg_too_long")


def blocks_text(blocks: Iterable[Mapping[str, Any]] | None) -> str:
    """All text a person would see in `blocks`, one piece per line.

    Covers section text and fields, headers, context elements, button and other element labels,
    input labels and hints, rich_text and markdown blocks, so `"Roll back" in blocks_text(...)`
    works whatever layout the bot chose.
    """
    parts: list[str] = []
    for block in blocks or []:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "markdown" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif kind == "rich_text":
            parts.extend(_rich_text(block.get("elements") or []))
        else:
            for key in ("text", "label", "hint"):
                parts.extend(_text_of(block.get(key)))
            for field in block.get("fields") or []:
                parts.extend(_text_of(field))
            for element in block.get("elements") or []:
                parts.extend(_text_of(element))
                parts.extend(_text_of(element.get("text")) if isinstance(element, Mapping) else [])
            if isinstance(block.get("accessory"), Mapping):
                parts.extend(_text_of(block["accessory"].get("text")))
    return "\n".join(p for p in parts if p)


def _text_of(obj: Any) -> list[str]:
    """The string inside a text object (`{"type": "mrkdwn", "text": ...}`), if `obj` is one."""
    if isinstance(obj, Mapping) and obj.get("type") in ("plain_text", "mrkdwn") and isinstance(obj.get("text"), str):
        return [obj["text"]]
    return []


def _rich_text(elements: Iterable[Any]) -> list[str]:
    """Text, links and mentions of rich_text elements, flattened depth-first."""
    parts: list[str] = []
    for element in elements:
        if not isinstance(element, Mapping):
            continue
        if isinstance(element.get("text"), str):
            parts.append(element["text"])
        elif element.get("type") == "user" and isinstance(element.get("user_id"), str):
            parts.append(f"<@{element['user_id']}>")
        if isinstance(element.get("elements"), list):
            parts.extend(_rich_text(element["elements"]))
    return parts
