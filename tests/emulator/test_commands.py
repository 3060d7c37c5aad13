"""ISO 7816-4 commands on the iso-demo profile: exact bytes and status words."""

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from .conftest import PIN_BAD, PIN_OK


def tdes_ecb(key: bytes, block: bytes) -> bytes:
    """The terminal's side of EXTERNAL AUTHENTICATE, straight from cryptography (2-key 3DES)."""
    encryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


SELECT_APP = "00A4040C07A0000002471001"


# -- SELECT (§11.2.2) ---------------------------------------------------------------------


def test_select_mf_variants(send):
    assert send("00A4000C023F00") == (b"", 0x9000)
    assert send("00A4000C") == (b"", 0x9000)  # P1=00 without data selects the MF
    data, sw = send("00A4000400")
    assert sw == 0x9000 and data == bytes.fromhex("620A8201388302 3F008A0105".replace(" ", ""))


def test_select_by_fid_child_ef_df_and_parent(send):
    assert send.sw("00A4010C025000") == 0x9000  # child DF
    assert send.sw("00A4020C025001") == 0x9000  # EF under current DF
    assert send.sw("00A4020C025000") == 0x6A82  # a DF is not an EF
    data, sw = send("00A4030400")  # parent of current DF 5000 is the MF
    assert sw == 0x9000 and bytes.fromhex("83023F00") in data


def test_select_fcp_of_transparent_ef_has_size(send):
    data, sw = send("00A4080404 50005001 00".replace(" ", ""))
    assert sw == 0x9000
    assert data == bytes.fromhex("6211 800200C8 820101 83025001 880108 8A0105".replace(" ", ""))


def test_select_by_path_from_mf_and_current_df(send):
    assert send.sw("00A4080C0450005002") == 0x9000
    assert send.sw("00A4080C063F0050005002") == 0x9000  # path repeating the MF is tolerated
    assert send.sw("00A4090C025001") == 0x9000  # relative to current DF 5000
    assert send.sw("00A4080C045000FFFF") == 0x6A82
    assert send.sw("00A4080C03500050") == 0x6700


def test_select_by_df_name_returns_fci(send):
    data, sw = send("00A4040007A000000247100100")
    assert sw == 0x9000
    assert data == bytes.fromhex("6F13 820138 83025000 8407A0000002471001 8A0105".replace(" ", ""))
    assert send.sw("00A4040C03A00000") == 0x9000  # partial DF name, first occurrence
    assert send.sw("00A4040C05A000000999") == 0x6A82


def test_select_fmd_and_errors(send):
    assert send("00A4000802 3F00 00".replace(" ", "")) == (b"\x64\x00", 0x9000)
    assert send.sw("00A4000C02 1234".replace(" ", "")) == 0x6A82
    assert send.sw("00A4000C03 3F0000".replace(" ", "")) == 0x6700
    assert send.sw("00A4050C023F00") == 0x6A86


def test_select_fid_finds_siblings_of_the_current_df(send):
    send(SELECT_APP)
    assert send.sw("00A4000C022F00") == 0x9000  # EF.DIR is a child of the parent (MF)


# -- READ / UPDATE BINARY (§11.3) ----------------------------------------------------------


def test_read_binary_current_ef_and_sfi(send):
    send(SELECT_APP)
    data, sw = send("00B0810005")
    assert (data, sw) == (b"Hello", 0x9000)
    assert send("00B0000605") == (b"from ", 0x9000)  # EF 5001 stays current after SFI read
    data, sw = send("00B0000000")  # Le=256 on a 200-byte file: all of it, end of file reached
    assert sw == 0x6282 and len(data) == 200 and data.endswith(b"!")
    data, sw = send("00B00000C8")
    assert sw == 0x9000 and len(data) == 200


def test_read_binary_bounds(send):
    send(SELECT_APP)
    send("00A4020C025001")
    data, sw = send("00B000C410")  # offset 196 of 200: four bytes then end of file
    assert (data, sw) == (b"...!", 0x6282)
    assert send("00B000C801") == (b"", 0x6282)  # offset == size
    assert send.sw("00B000C901") == 0x6B00  # offset beyond the end
    assert send.sw("00B00000") == 0x6700  # no Le
    assert send.sw("00B0A00004") == 0x6A86  # P1 b8=1 with bits b7-b6 set


def test_read_binary_without_current_ef(send):
    assert send.sw("00B0000004") == 0x6986


def test_read_binary_of_record_file_is_incompatible(send):
    assert send.sw("00A4020C022F00") == 0x9000
    assert send.sw("00B0000004") == 0x6981


def test_read_binary_odd_ins_beyond_32767(send):
    assert send.sw("00A4000C020101") == 0x9000
    assert send("00B1000004 5402 8000 08".replace(" ", "")) == (bytes.fromhex("5304") + b"ZZZZ", 0x9000)
    data, sw = send("00B1010105 5403 009C3E 0A".replace(" ", ""))  # FID 0101 in P1-P2, offset 39998
    assert (data, sw) == (bytes.fromhex("5302") + b"ZZ", 0x6282)
    assert send.sw("00B10000020102 08".replace(" ", "")) == 0x6A80  # no DO 54


def test_update_binary_and_access_rules(send):
    send(SELECT_APP)
    assert send.sw("00D6830003 414243".replace(" ", "")) == 0x9000  # EF.NOTES via SFI 3, always
    assert send("00B0000003") == (b"ABC", 0x9000)
    assert send.sw("00D6003F02 4445".replace(" ", "")) == 0x6A84  # past the end of 64 bytes
    assert send.sw("00D6004102 4445".replace(" ", "")) == 0x6B00
    assert send.sw("00D6810001 00".replace(" ", "")) == 0x6982  # EF.PUBLIC: update never
    assert send.sw("00B0820004") == 0x6982  # EF.PRIVATE needs PIN 01
    assert send.sw(PIN_OK) == 0x9000
    assert send("00B0820006") == (b"secret", 0x9000)


# -- records (§11.4) -----------------------------------------------------------------------


def test_read_update_append_record(send):
    send(SELECT_APP)
    assert send("00B2012400") == (b"\x01\x02\x03", 0x9000)  # SFI 4, record 1
    assert send.sw("00B2022400") == 0x6A83
    assert send.sw("00B2012402") == 0x6C03  # wrong Le: exact length in SW2
    assert send.sw("00E2002002 AABB".replace(" ", "")) == 0x6982  # update needs PIN 01
    send(PIN_OK)
    assert send.sw("00E2002002 AABB".replace(" ", "")) == 0x9000
    assert send("00B2022400") == (b"\xaa\xbb", 0x9000)
    assert send.sw("00DC012401 FF".replace(" ", "")) == 0x9000
    assert send("00B2012400") == (b"\xff", 0x9000)
    for _ in range(3):
        assert send.sw("00E2002001 00".replace(" ", "")) == 0x9000
    assert send.sw("00E2002001 00".replace(" ", "")) == 0x6A84  # max_records 5
    assert send.sw("00B2010500") == 0x6A86  # P2 b3-b1 other than 100


def test_record_current_record_and_ef_dir(send):
    data, sw = send("00B201F400")  # SFI 1E: EF.DIR
    assert sw == 0x9000 and data == bytes.fromhex("610C4F07A0000002471001500141")
    assert send("00B2000400") == (data, 0x9000)  # P1=00: the current record


# -- GET DATA, GET CHALLENGE ---------------------------------------------------------------


def test_get_data(send):
    assert send("00CA9F7F00") == (bytes.fromhex("9F7F04DEADBEEF"), 0x9000)
    assert send("00CA5F5200") == (bytes.fromhex("454944454D55"), 0x9000)
    assert send.sw("00CA010100") == 0x6A88


def test_get_challenge(send, card):
    card.random = lambda n: bytes(range(n))
    assert send("0084000008") == (bytes(range(8)), 0x9000)
    assert send.sw("00840000") == 0x6700
    assert send.sw("0084010008") == 0x6A86


def test_external_authenticate_opens_admin_file(send, card):
    key = bytes.fromhex("404142434445464748494A4B4C4D4E4F")
    send(SELECT_APP)
    assert send.sw("00A4020C025005") == 0x9000
    assert send.sw("00B0000004") == 0x6982
    assert send.sw("0082000108" + "00" * 8) == 0x6985  # no challenge yet
    challenge, _ = send("0084000008")
    response = tdes_ecb(key, challenge)
    assert send.sw("0082000108" + bytes(8).hex()) == 0x6300  # wrong answer: authentication failed
    assert send.sw("0082000108" + response.hex()) == 0x6985  # and the challenge is used up
    challenge, _ = send("0084000008")
    response = tdes_ecb(key, challenge)
    assert send.sw("0082000108" + response.hex()) == 0x9000
    assert send("00B0000004") == (bytes.fromhex("00112233"), 0x9000)
    assert send.sw("0082000208" + response.hex()) == 0x6A88


# -- PINs (§11.5.6-§11.5.10) ---------------------------------------------------------------


def test_verify_countdown_and_blocking(send, card):
    assert send.sw("00200001") == 0x63C3
    assert send.sw(PIN_BAD) == 0x63C2
    assert send.sw(PIN_BAD) == 0x63C1
    assert send.sw("00200001") == 0x63C1
    assert send.sw(PIN_OK) == 0x9000  # a correct PIN resets the counter
    assert send.sw("00200001") == 0x9000  # verified: no data answers 9000
    for expected in (0x63C2, 0x63C1, 0x6983):
        assert send.sw(PIN_BAD) == expected
    assert send.sw(PIN_OK) == 0x6983  # blocked: even the right PIN fails
    assert send.sw("00200001") == 0x6983
    assert card.pins[1].remaining == 0
    assert send.sw("00200002") == 0x63CA  # PUK has ten tries
    assert send.sw("00200009") == 0x6A88


def test_verify_wrong_block_length_costs_a_try(send):
    assert send.sw("0020000106 313233343536".replace(" ", "")) == 0x63C2


def test_verify_reset_status_p1_ff(send):
    send(PIN_OK)
    assert send.sw("00200001") == 0x9000
    assert send.sw("0020FF01") == 0x9000
    assert send.sw("00200001") == 0x63C3


def test_change_reference_data(send):
    old, new = "313233343536FFFF", "3635343332313030"
    assert send.sw(f"0024000110{old}{new}") == 0x9000
    assert send.sw(PIN_OK) == 0x63C2
    assert send.sw(f"0020000108{new}") == 0x9000
    assert send.sw("0024000108 3131313131FFFFFF".replace(" ", "")) == 0x6700  # P1=00 needs old and new
    assert send.sw("0024010108 3131313131FFFFFF".replace(" ", "")) == 0x6A80  # 5 digits: too short
    assert send.sw("0024010108 313131313131FFFF".replace(" ", "")) == 0x9000  # P1=01 after VERIFY
    assert send.sw("0020000108 313131313131FFFF".replace(" ", "")) == 0x9000


def test_change_reference_data_with_wrong_old_pin_counts(send):
    assert send.sw("0024000110 393939393939FFFF 3635343332313030".replace(" ", "")) == 0x63C2
    assert send.sw("0024010108 3635343332313030".replace(" ", "")) == 0x6982  # P1=01 needs VERIFY


def test_reset_retry_counter_with_puk(send):
    for _ in range(3):
        send(PIN_BAD)
    assert send.sw("00200001") == 0x6983
    puk = "3837363534333231"
    assert send.sw(f"002C010108{puk}") == 0x9000  # P1=01: PUK only
    assert send.sw("00200001") == 0x63C3
    for _ in range(3):
        send(PIN_BAD)
    assert send.sw(f"002C000110{puk}3131323233333434") == 0x9000  # P1=00: PUK and new PIN
    assert send.sw("0020000108 3131323233333434".replace(" ", "")) == 0x9000
    assert send.sw(f"002C010110{puk}{'30' * 8}") == 0x6700  # P1=01 with more than the PUK
    assert send.sw("002C010108 3030303030303030".replace(" ", "")) == 0x63C9  # wrong PUK counts


def test_reset_retry_counter_with_admin_key(send, card):
    for _ in range(3):
        send(PIN_BAD)
    assert send.sw("002C0301") == 0x6982  # unblock condition auth:01 not met
    challenge, _ = send("0084000008")
    response = tdes_ecb(bytes.fromhex("404142434445464748494A4B4C4D4E4F"), challenge)
    assert send.sw("0082000108" + response.hex()) == 0x9000
    assert send.sw("002C0301") == 0x9000
    assert send.sw("00200001") == 0x63C3
    assert send.sw("002C020108 3939393939393939".replace(" ", "")) == 0x9000  # P1=02: new PIN
    assert send.sw("0020000108 3939393939393939".replace(" ", "")) == 0x9000
    assert send.sw("002C0401") == 0x6A86


def test_unknown_instruction_and_class(send):
    assert send.sw("00EE0000") == 0x6D00
    assert send.sw("80A4000C023F00") == 0x6E00
    assert send.sw("FFA4000C023F00") == 0x6E00
