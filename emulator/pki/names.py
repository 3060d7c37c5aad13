"""Chinese names and places of the synthetic identities: their romanization and the areas of
the national ID's registration letters.

Shared by the LDS of :mod:`eidemu.emulator.pki.eid` (the MRZ names, DG11's place of birth)
and the EAC zones of :mod:`eidemu.emulator.pki.eac_zones` (the relatives' names, DG6), so
that neither imports the other's module for them. TEST DATA ONLY.
"""

from __future__ import annotations

# Wade-Giles spellings (without apostrophes) of the characters identities.py draws names from.
ROMANIZATION: dict[str, str] = {
    "陳": "CHEN", "林": "LIN", "黃": "HUANG", "張": "CHANG", "李": "LI", "王": "WANG", "吳": "WU",
    "劉": "LIU", "蔡": "TSAI", "楊": "YANG", "許": "HSU", "鄭": "CHENG", "謝": "HSIEH", "洪": "HUNG",
    "郭": "KUO", "邱": "CHIU", "曾": "TSENG", "廖": "LIAO", "賴": "LAI", "徐": "HSU", "周": "CHOU",
    "葉": "YEH", "蘇": "SU", "莊": "CHUANG", "呂": "LU", "江": "CHIANG", "何": "HO", "蕭": "HSIAO",
    "羅": "LO", "高": "KAO", "潘": "PAN", "簡": "CHIEN", "朱": "CHU", "鍾": "CHUNG", "游": "YU",
    "彭": "PENG", "詹": "CHAN", "胡": "HU", "施": "SHIH", "沈": "SHEN", "余": "YU", "盧": "LU",
    "梁": "LIANG", "趙": "CHAO", "顏": "YEN", "柯": "KO", "翁": "WENG", "魏": "WEI", "孫": "SUN",
    "戴": "TAI",
    "佳": "CHIA", "俊": "CHUN", "信": "HSIN", "傑": "CHIEH", "冠": "KUAN", "君": "CHUN", "婷": "TING",
    "子": "TZU", "宇": "YU", "宏": "HUNG", "宗": "TSUNG", "宜": "YI", "家": "CHIA", "廷": "TING",
    "建": "CHIEN", "彥": "YEN", "志": "CHIH", "怡": "YI", "惠": "HUI", "承": "CHENG", "文": "WEN",
    "明": "MING", "晴": "CHING", "書": "SHU", "柏": "PO", "欣": "HSIN", "涵": "HAN", "淑": "SHU",
    "玲": "LING", "穎": "YING", "美": "MEI", "翰": "HAN", "芬": "FEN", "蓁": "CHEN", "詩": "SHIH",
    "豪": "HAO", "鈺": "YU", "雅": "YA", "雯": "WEN",
}  # fmt: skip

# County or city of each national-ID registration letter (the letter table of taiwan-ids.md);
# used as the invented place of birth.
REGISTRATION_AREAS: dict[str, str] = {
    "A": "臺北市", "B": "臺中市", "C": "基隆市", "D": "臺南市", "E": "高雄市", "F": "新北市",
    "G": "宜蘭縣", "H": "桃園市", "I": "嘉義市", "J": "新竹縣", "K": "苗栗縣", "L": "臺中縣",
    "M": "南投縣", "N": "彰化縣", "O": "新竹市", "P": "雲林縣", "Q": "嘉義縣", "R": "臺南縣",
    "S": "高雄縣", "T": "屏東縣", "U": "花蓮縣", "V": "臺東縣", "W": "金門縣", "X": "澎湖縣",
    "Y": "陽明山", "Z": "連江縣",
}  # fmt: skip

__all__ = ["REGISTRATION_AREAS", "ROMANIZATION"]
