r"""Text from archives and manifests made safe for one line of a terminal.

File names, manifest strings and page titles are anybody's bytes: a control character in one
can move the cursor, clear the screen or fake a line of output, and a lone surrogate (JSON
allows ``"\ud800"``; undecodable file names become them) cannot be printed at all.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_TAB = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def escape_controls(text: str, *, keep_tabs: bool = False) -> str:
    r"""``text`` with control characters as ``\xNN`` and lone surrogates as ``\udNNN``."""
    pattern = _CONTROL_BUT_TAB if keep_tabs else _CONTROL
    text = pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
