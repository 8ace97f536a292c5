"""A request body's content coding undone, as API Gateway undoes it before anything reads the body
("Call an API method with a compressed payload in API Gateway"): `gzip`, `deflate` and `identity`
are decompressed, and a coding API Gateway does not support, or a body that is not in the coding
its `Content-Encoding` names, is refused 415.
"""
from __future__ import annotations

import zlib

SUPPORTED = ("gzip", "deflate", "identity")  # API Gateway's supported content codings
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}  # deflate as HTTP means it: zlib-wrapped


class UnsupportedCoding(ValueError):
    """A coding API Gateway does not decode, or a body not in the coding it claims (415)."""


class DecodedTooLarge(ValueError):
    """A body that decompresses to more than the gateway takes (413)."""


def decoded(body: bytes, content_encoding: str, limit: int) -> bytes:
    """`body` with the codings of `content_encoding` undone, last applied first (RFC 9110 8.4): at most
    `limit` bytes, or DecodedTooLarge, so a small body that inflates without end is refused, not held."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding not in SUPPORTED:
            raise UnsupportedCoding(f"Content-Encoding {coding[:40]!r} is not one of {', '.join(SUPPORTED)}")
        if coding != "identity":
            body = _inflate(body, coding, limit)
    return body


def _inflate(body: bytes, coding: str, limit: int) -> bytes:
    """The body inflated: a gzip body may be several members one after another (RFC 1952), each inflated."""
    out = b""
    while True:
        inflater = zlib.decompressobj(_WBITS[coding])
        try:
            out += inflater.decompress(body, limit + 1 - len(out))
        except zlib.error:
            raise UnsupportedCoding(f"the body is not {coding}-compressed as its Content-Encoding says") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise DecodedTooLarge(f"the body decompresses to more than {limit:,} bytes")
        if not inflater.eof:
            raise UnsupportedCoding(f"the body ends inside its {coding} stream")
        body = inflater.unused_data
        if not body or coding != "gzip":
            if body:
                raise UnsupportedCoding(f"bytes follow the body's {coding} stream")
            return out
