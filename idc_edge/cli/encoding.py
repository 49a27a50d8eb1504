"""Standard output and error in whatever encoding the terminal or pipe has.

idc-edge's text uses a few characters beyond ASCII (``µm``, ``mm²``, ``≥``, ``…``, ``×``), and file names
may hold any. Under a locale that is not UTF-8 (``LANG=de_DE.ISO-8859-1`` on an older workstation, a
serial console, ``PYTHONIOENCODING=ascii`` in a service's environment) Python's standard output
cannot encode them: ``idc-edge report`` stopped half way through its summary with "internal error
(UnicodeEncodeError ...)". :data:`HANDLER` spells such characters in ASCII instead, :data:`DATA_HANDLER`
escapes them (rows of file names), and both write a file name's undecodable bytes (surrogate escapes)
back as those bytes.
"""
from __future__ import annotations

import codecs

#: the name of the error handler registered by :func:`register` for text: the program's own symbols spelt
#: in ASCII (``µm`` as ``um``, ``≥`` as ``>=``)
HANDLER = "idc-edge-spell"
#: the one for data (file names in ``classify``'s rows): every character escaped (``\\xe9``), never spelt
#: as another, so a name written cannot be taken for another file's (``a×b.png`` is not ``axb.png``)
DATA_HANDLER = "idc-edge-escape"

#: ASCII spellings of the characters idc-edge's own messages and reports use, where the stream's
#: encoding has no such character; any other character is written as a Python escape (``\\u03b1``)
ASCII_SPELLING = {
    "…": "...", "≥": ">=", "≤": "<=", "−": "-", "–": "-", "—": "-", "×": "x", "µ": "u", "μ": "u", "²": "2",
    "³": "3", "σ": "sigma", "°": " deg", "→": "->", "←": "<-", "·": ".", "‘": "'", "’": "'", "“": '"',
    "”": '"', "±": "+/-", "≈": "~", "≠": "!=", "⁻": "-", "¹": "1", "⁰": "0", "\u00a0": " ", "\u202f": " ",
}


def _replacement(error: UnicodeError, spelling: dict) -> tuple[bytes, int]:
    """Each character ``error`` could not encode as ASCII bytes (its entry in ``spelling``, else a
    ``\\x``/``\\u`` escape), or, for a surrogate escape of an undecodable file-name byte (U+DC80 to
    U+DCFF), that byte itself. Returns (replacement, where to go on)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = bytearray()
    for ch in error.object[error.start:error.end]:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        else:
            out += spelling.get(ch, ch.encode("ascii", "backslashreplace").decode("ascii")).encode("ascii")
    return bytes(out), error.end


def spell(error: UnicodeError) -> tuple[bytes, int]:
    """Codec error handler :data:`HANDLER` (see :func:`_replacement`, with :data:`ASCII_SPELLING`)."""
    return _replacement(error, ASCII_SPELLING)


def escape(error: UnicodeError) -> tuple[bytes, int]:
    """Codec error handler :data:`DATA_HANDLER` (see :func:`_replacement`, nothing spelt)."""
    return _replacement(error, {})


def register() -> None:
    """Register :func:`spell` and :func:`escape` (once per process; again is harmless)."""
    for handler, function in ((HANDLER, spell), (DATA_HANDLER, escape)):
        try:
            codecs.lookup_error(handler)
        except LookupError:
            codecs.register_error(handler, function)


def encode_errors_with(handler: str, *streams) -> None:
    """Set each text stream's encoding errors to ``handler`` (:data:`HANDLER` or :data:`DATA_HANDLER`);
    streams that cannot be reconfigured (a test's capture, a closed stream's stand-in) are left as they are."""
    register()
    for stream in streams:
        try:
            stream.reconfigure(errors=handler)
        except (AttributeError, ValueError, OSError):
            pass
