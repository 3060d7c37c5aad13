"""Profile loading: a bad profile fails at load time with one line naming file, place, problem."""

import json

import pytest

from eidemu.emulator.profile import ProfileError, load_profile

BASE = """\
eidemu_profile: 1
name: t
atr: 3B 80 80 01 01
"""


def load_text(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_profile(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("eidemu_profile: 2\natr: 3B00\n", "eidemu_profile: unsupported version"),
        ("eidemu_profile: 1\n", "top level: missing required key 'atr'"),
        (BASE + "colour: red\n", "top level: unknown key 'colour'"),
        ("eidemu_profile: 1\natr: 12 34\n", "atr: an ATR is 2..33 bytes starting with 3B or 3F"),
        ("eidemu_profile: 1\natr: 3B 8G\n", "atr: not a hex string"),
        (
            BASE + "files:\n  - fid: 5000\n    children:\n      - fid: 5001\n        content: XYZ\n",
            "files[0].children[0].content: not a hex string",
        ),
        (BASE + "files:\n  - fid: 5000\n  - fid: 5000\n", "files[1]: duplicate file identifier 5000 in 3F00"),
        (
            BASE + "files:\n  - fid: 5001\n    access: {read: sometimes}\n",
            "files[0].access.read: unknown access condition 'sometimes'",
        ),
        (
            BASE + "files:\n  - fid: 5001\n    content: {file: missing.bin}\n",
            "files[0].content.file: cannot read 'missing.bin'",
        ),
        (BASE + "files:\n  - fid: 5001\n    sfi: 31\n", "files[0].sfi: a short EF identifier is 1..30"),
        (BASE + "files:\n  - fid: 5001\n    type: cyclic\n", "files[0].type: unknown file type 'cyclic'"),
        (BASE + "pins:\n  - ref: 01\n    value: '12'\n", "pins[0]: PIN value length must be within"),
        (
            BASE + "pins:\n  - ref: 01\n    value: '1234'\n    tries: many\n",
            "pins[0].tries: expected a decimal integer",
        ),
        (BASE + "pins:\n  - ref: 01\n    value: '1234'\n    puk: 02\n", "PIN 01 names PUK 02, which is not defined"),
        (
            BASE + "pins:\n  - ref: 01\n    value: '1234'\n    change: sometimes\n",
            "pins[0].change: unknown access condition 'sometimes'",
        ),
        (BASE + "keys:\n  - {ref: 01, algorithm: 3des, value: 0011}\n", "keys[0].value: a 3des key is 16 or 24 bytes"),
        (BASE + "applications:\n  - {aid: A000, type: iso}\n", "applications[0].aid: an AID is 5..16 bytes"),
        (
            BASE + "applications:\n  - {aid: A000000001, type: wallet}\n",
            "applications[0]: unknown application type 'wallet'",
        ),
        (
            BASE + "applications:\n  - {aid: A000000001, type: iso, df: 3F00/7777}\n",
            "applications[0].df: no such DF in the file tree",
        ),
        (BASE + "data_objects:\n  5F52: XX\n", "data_objects.5F52: not a hex string"),
        (
            BASE + "applications:\n  - {aid: A000000001, type: iso, options: {colour: red}}\n",
            "applications[0].options: unknown option 'colour' (allowed: none)",
        ),
        (
            BASE + "default_application: {type: iso, options: [1, 2]}\n",
            "default_application.options: expected a mapping, found list",
        ),
        (BASE + "get_response: sometimes\n", "get_response: must be 'auto' or 'always'"),
        ("eidemu_profile: 1\natr: [3B\n", "line 3, column 1: syntax error"),
    ],
)
def test_bad_profiles_fail_with_one_line(tmp_path, body, message):
    with pytest.raises(ProfileError) as info:
        load_text(tmp_path, body)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(str(tmp_path / "p.yaml") + ": ")
    assert message in text


def test_hex_identifiers_are_not_read_as_decimal_or_octal(tmp_path):
    profile = load_text(
        tmp_path,
        BASE + "pins:\n  - {ref: 10, value: '1234'}\nfiles:\n  - fid: 0101\n    content: 00\n  - fid: 5000\n",
    )
    card = profile.build()
    assert set(card.pins) == {0x10}
    assert set(card.mf.children) == {0x0101, 0x5000}


def test_json_profiles_and_file_references(tmp_path):
    (tmp_path / "blob.bin").write_bytes(b"\x01\x02\x03")
    doc = {
        "eidemu_profile": 1,
        "atr": "3B 80 80 01 01",
        "files": [
            {"fid": "0001", "content": {"file": "blob.bin"}},
            {"fid": "0002", "content": {"text": "héllo", "pad_to": 8, "pad_byte": "FF"}},
        ],
    }
    profile = load_text(tmp_path, json.dumps(doc), "p.json")
    card = profile.build()
    assert bytes(card.mf.children[1].data) == b"\x01\x02\x03"
    assert bytes(card.mf.children[2].data) == "héllo".encode() + b"\xff\xff"


def test_unknown_shipped_profile_lists_the_shipped_ones():
    with pytest.raises(ProfileError, match=r"no such profile file \(shipped profiles: .*iso-demo"):
        load_profile("no-such-card")


def test_profile_id_changes_with_content(tmp_path):
    a = load_text(tmp_path, BASE, "a.yaml")
    b = load_text(tmp_path, BASE + "channels: 2\n", "b.yaml")
    assert a.profile_id != b.profile_id and a.profile_id.startswith("t#")


def test_pin_change_and_unblock_conditions_are_parsed(tmp_path):
    """``change`` (CHANGE REFERENCE DATA P1 01 without VERIFY) and ``unblock`` (RESET RETRY
    COUNTER P1 02/03) default to never; the eID holder PIN names the PIN-management right."""
    profile = load_text(
        tmp_path, BASE + "pins:\n  - {ref: 01, value: '1234', change: 'auth:01&ta:05', unblock: 'pin:01'}\n"
    )
    pin = profile.build().pins[0x01]
    assert str(pin.change) == "auth:01&ta:05" and str(pin.unblock) == "pin:01"
    plain = load_text(tmp_path, BASE + "pins:\n  - {ref: 01, value: '1234'}\n", "q.yaml").build().pins[0x01]
    assert str(plain.change) == str(plain.unblock) == "never"
