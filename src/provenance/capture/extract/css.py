"""Tokenise CSS and list the URLs it refers to through ``url()``, ``image-set()``, ``@import``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import tinycss2
from tinycss2.bytes import decode_stylesheet_bytes

from provenance.capture.extract.parsing import _requisite_url

_IMAGE_SET_FUNCTIONS = frozenset({"image-set", "-webkit-image-set"})


@dataclass(frozen=True)
class _CssReference:
    url: str
    kind: str  # "import", "font" or "url"


def _parse_css(css: str) -> list[Any]:
    return list(tinycss2.parse_component_value_list(css, skip_comments=True))


def _first_string(nodes: Iterable[Any]) -> str | None:
    for node in nodes:
        if node.type == "string":
            return str(node.value)
        if node.type == "url":
            return str(node.value)
    return None


def _import_target(nodes: list[Any], start: int) -> tuple[str | None, int]:
    """Return the URL of an ``@import`` whose prelude starts at ``nodes[start]``.

    Also returns the index after the URL token, so that it is not visited again as a url().
    """
    for index in range(start, len(nodes)):
        node = nodes[index]
        if node.type in ("whitespace", "comment"):
            continue
        if node.type in ("string", "url"):
            return str(node.value), index + 1
        if node.type == "function" and node.lower_name == "url":
            return _first_string(node.arguments), index + 1
        return None, index
    return None, len(nodes)


def _function_targets(node: Any) -> list[str]:
    """Return the URLs a CSS function names directly."""
    name = node.lower_name
    if name in ("url", "src"):
        target = _first_string(node.arguments)
        return [target] if target is not None else []
    if name in _IMAGE_SET_FUNCTIONS:
        # image-set("a.png" 1x) takes plain strings as URLs
        return [str(arg.value) for arg in node.arguments if arg.type == "string"]
    return []


@dataclass
class _CssFrame:
    nodes: list[Any]
    font: bool  # inside @font-face, where url() names a font
    index: int = 0
    font_block_next: bool = False


def _css_reference_nodes(nodes: list[Any]) -> Iterator[_CssReference]:
    """Walk a tinycss2 component list in source order (iteratively: CSS can nest deeply)."""
    stack = [_CssFrame(nodes, font=False)]
    while stack:
        frame = stack[-1]
        if frame.index >= len(frame.nodes):
            stack.pop()
            continue
        node = frame.nodes[frame.index]
        frame.index += 1
        kind = "font" if frame.font else "url"
        if node.type == "at-keyword":
            if node.lower_value == "import":
                target, frame.index = _import_target(frame.nodes, frame.index)
                if target is not None:
                    yield _CssReference(target, "import")
            frame.font_block_next = node.lower_value == "font-face"
        elif node.type == "url":
            yield _CssReference(str(node.value), kind)
        elif node.type == "function":
            yield from (_CssReference(target, kind) for target in _function_targets(node))
            if node.lower_name not in ("url", "src"):
                stack.append(_CssFrame(list(node.arguments), font=frame.font))
        elif node.type in ("{} block", "() block", "[] block"):
            stack.append(_CssFrame(list(node.content), font=frame.font or frame.font_block_next))
            frame.font_block_next = False


def _css_targets(css: str, base: str) -> list[tuple[str, str]]:
    """Return absolute (url, reference kind) pairs of a stylesheet in source order."""
    found: list[tuple[str, str]] = []
    for reference in _css_reference_nodes(_parse_css(css)):
        url = _requisite_url(base, reference.url)
        if url is not None:
            found.append((url, reference.kind))
    return found


def css_references(css: bytes | str, url: str) -> tuple[str, ...]:
    """Return the URLs a stylesheet refers to through ``url()`` and ``@import``.

    Absolute (resolved against ``url``, the stylesheet's own URL), deduplicated, in source
    order; ``data:`` URLs are skipped. Bytes are decoded as CSS says (BOM, ``@charset``, UTF-8).
    """
    text = css if isinstance(css, str) else str(decode_stylesheet_bytes(css)[0])
    seen: dict[str, None] = {}
    for target, _ in _css_targets(text, url):
        seen.setdefault(target, None)
    return tuple(seen)
