"""Masking the secrets a camera URL carries, for every place a URL is shown or recorded.

A network camera's address may hold its password twice over: in the user-info
(``rtsp://user:pass@cam/x``) and in the query string (``rtsp://cam/x?user=a&password=b``, ``pwd=``,
``token=``, ``key=`` ...). Descriptions, results headers, the live page, warnings and every
:class:`~idc_edge.errors.IdcEdgeError` message pass text through :func:`redact_url`; only the
stream's opening takes the real URL.
"""
from __future__ import annotations

import re

#: ``scheme://`` then the user-info: everything up to the last ``@`` before the host's end (``/``,
#: ``?``, ``#``, a blank or a quote), so a password holding a bare ``@`` is masked whole.
_USER_INFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/?#\s'\"]*)@")

#: one URL: ``scheme://`` up to a blank or a quote (a URL inside a pipeline or a quoted message)
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]*")

#: a query or fragment parameter ``name=value`` (after ``?``, ``&``, ``;`` or ``#``) whose name holds
#: a word cameras and services use for a secret: ``password``, ``pwd``, ``pass``, ``token``,
#: ``key``/``apikey``, ``auth``, ``secret``, ``sig``/``signature``, ``cred``, ``session``/``sid``
_SECRET_PARAM = re.compile(r"(?P<lead>[?&;#](?P<key>[^=&;#?]*)=)(?P<value>[^&;#]*)")
_SECRET_WORDS = re.compile(r"pass|pwd|pw$|secret|token|key|auth|sig|cred|session|^sid$|^code$", re.IGNORECASE)


def _mask_url(url: str) -> str:
    """One URL with its user-info password and every secret-named query parameter masked."""
    def info(m: re.Match) -> str:
        user, colon, _ = m.group("info").partition(":")
        return f"{m.group('scheme')}{user}{':***' if colon else ''}@"

    def param(m: re.Match) -> str:
        secret = _SECRET_WORDS.search(m.group("key")) and m.group("value")
        return m.group("lead") + ("***" if secret else m.group("value"))

    url = _USER_INFO.sub(info, url, count=1)
    head, mark, rest = url.partition("?")
    return head + mark + _SECRET_PARAM.sub(param, "?" + rest)[1:] if mark else url


def redact_url(text: str) -> str:
    """``text`` with the secrets of every URL in it masked: the user-info password
    (``rtsp://user:pass@cam/x`` → ``rtsp://user:***@cam/x``) and query parameters named like a
    secret (``rtsp://cam/x?user=a&password=b`` → ``rtsp://cam/x?user=a&password=***``; also
    ``pwd``, ``pass``, ``token``, ``key``, ``auth``, ``secret``, ``sig``...). ``text`` may be a URL, a
    GStreamer pipeline holding one or a message quoting one; other text is unchanged.

    For describing or recording a camera (terminal, results header, live view, snapshots,
    reports, error and warning lines); only the stream's opening takes the real URL.
    """
    return _URL.sub(lambda m: _mask_url(m.group(0)), text)
