"""``/p11Image.bmp``: the ``/pkcs11info`` JSON carried in the pixels of a 2000x1 BMP.

A page that cannot read a cross-origin JSON answer can draw a cross-origin image on a canvas
(the answer allows it with ``Access-Control-Allow-Origin``) and read its pixels back. Layout
(the vendor's client scripts, restated in ``docs/hipki.md``): a 54-byte header
(BITMAPFILEHEADER 14 bytes + BITMAPINFOHEADER 40 bytes, 24 bits per pixel, bottom-up), then
6000 bytes of pixel data: the UTF-8 text, a terminating zero, zero padding. A text longer
than 5999 bytes is cut (the JSON without certificates is far shorter).
"""

from __future__ import annotations

import struct

WIDTH, HEIGHT = 2000, 1
PIXEL_BYTES = WIDTH * 3 * HEIGHT  # 6000, already a multiple of 4: no row padding
HEADER = 54


def text_bmp(text: str) -> bytes:
    """The BMP carrying ``text`` from byte 54, zero-terminated."""
    payload = text.encode("utf-8")[: PIXEL_BYTES - 1]
    pixels = payload + bytes(PIXEL_BYTES - len(payload))
    file_header = struct.pack("<2sIHHI", b"BM", HEADER + PIXEL_BYTES, 0, 0, HEADER)
    info_header = struct.pack("<IiiHHIIiiII", 40, WIDTH, HEIGHT, 1, 24, 0, PIXEL_BYTES, 2835, 2835, 0, 0)
    return file_header + info_header + pixels


def bmp_text(bmp: bytes) -> str:
    """The text a page reads back: bytes from 54 up to the first zero."""
    if bmp[:2] != b"BM" or len(bmp) < HEADER:
        raise ValueError("not a BMP")
    body = bmp[HEADER:]
    end = body.find(b"\x00")
    return body[: end if end >= 0 else len(body)].decode("utf-8")


__all__ = ["HEADER", "PIXEL_BYTES", "bmp_text", "text_bmp"]
