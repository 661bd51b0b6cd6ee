"""Header fields for outgoing mail: RFC 5322 folding and RFC 2047 encoded-words.

Plain ASCII text is written as is, folded at spaces below 78 characters a line.
Anything else (non-ASCII, text that looks like an encoded-word, runs of spaces,
words too long to fold) is written as UTF-8 base64 encoded-words, each at most
75 characters, so the receiver decodes exactly the original text. Addresses are
ASCII (checked on input; international domains arrive as punycode).
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache

_LINE = 78
_WORD_PREFIX, _WORD_SUFFIX = "=?utf-8?b?", "?="
_MAX_WORD_BYTES = 45  # 45 bytes -> 60 base64 characters; with the wrapper 72 <= 75
# A name's word is kept in one encoded-word up to this size (longer than RFC 2047's
# 75 characters, which readers accept) rather than cut inside the word (see _phrase_words).
_MAX_PHRASE_WORD_BYTES = 300
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)


def _plain_ok(text: str, longest_word: int) -> bool:
    return (
        text.isascii()
        and text.isprintable()
        and "=?" not in text
        and text == " ".join(text.split())
        and all(len(word) <= longest_word for word in text.split(" "))
    )


def encoded_words(text: str) -> list[str]:
    """``text`` as encoded-words, split between characters (never inside one)."""
    words: list[str] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8", "replace")
        if chunk and len(chunk) + len(data) > _MAX_WORD_BYTES:
            words.append(_WORD_PREFIX + base64.b64encode(chunk).decode() + _WORD_SUFFIX)
            chunk = b""
        chunk += data
    if chunk or not words:
        words.append(_WORD_PREFIX + base64.b64encode(chunk).decode() + _WORD_SUFFIX)
    return words


def _fold(name: str, tokens: list[str]) -> bytes:
    """``Name: tok tok`` with a CRLF + space before any token that would pass 78 chars."""
    line = f"{name}:"
    lines: list[str] = []
    for token in tokens:
        if len(line) + 1 + len(token) > _LINE and line != f"{name}:":
            lines.append(line)
            line = " " + token
        else:
            line += " " + token
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def unstructured_header(name: str, value: str) -> bytes:
    """A Subject-like header (``value`` already checked to hold no line break)."""
    if _plain_ok(value, _LINE - len(name) - 2):
        return _fold(name, value.split(" "))
    return _fold(name, encoded_words(value))


def _phrase(name: str) -> list[str]:
    """A display name as tokens: atoms, a quoted string, or encoded-words."""
    if _plain_ok(name, 60) and all(c in _ATEXT or c == " " for c in name):
        return name.split(" ")
    if _plain_ok(name, 60):
        return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _phrase_words(name)


def _phrase_words(name: str) -> list[str]:
    """Encoded-words for a display name, one per word of the name.

    Readers that do not drop the folding space between two encoded-words of a
    phrase (Python's parser is one) would otherwise show a space inside a word;
    cut at the name's own spaces, the folding space stands for that space.
    A single word too long for one encoded-word is still cut where it must be.
    """
    segments = re.findall(r"\s*\S+\s*", name) or [name]
    words: list[str] = []
    for segment in segments:
        text = segment[:-1] if segment.endswith(" ") else segment
        data = text.encode("utf-8", "replace")
        if len(data) <= _MAX_PHRASE_WORD_BYTES:
            words.append(_WORD_PREFIX + base64.b64encode(data).decode() + _WORD_SUFFIX)
        else:
            words.extend(encoded_words(text))
    return words


@lru_cache(maxsize=4096)
def address_header(name: str, mailboxes: tuple[tuple[str, str], ...]) -> bytes:
    """``From``/``To``/``Cc`` from (display name, address) pairs; cached (same parties recur)."""
    tokens: list[str] = []
    for index, (display, address) in enumerate(mailboxes):
        last = index == len(mailboxes) - 1
        angle = f"<{address}>" if display else address
        words = [*_phrase(display), angle] if display else [angle]
        if not last:
            words[-1] += ","
        tokens.extend(words)
    return _fold(name, tokens)
