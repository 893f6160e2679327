"""Expected answer types: a question asking "how much", "when", "where" or "how long" is only
answered by a passage that holds a value of that kind.

Classic question answering checks this before answering; it catches questions about a
real study's detail that the documents never give ("Chung的研究剂量是多少？" when the text
names no dose), which vector similarity cannot tell from answerable ones. The same value
patterns find the short answer inside a sentence ("全长多少？" -> "1,000米").

Value patterns are deliberately forgiving: a wrong "no value here" turns a right answer
into an abstention, so "多少人" accepts "150万" and "多长" accepts a length or a duration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A number: Arabic with separators, exponents and ranges, or Chinese numerals.
_NUM = r"(?:\d[\d.,，×⁰¹²³⁴⁵⁶⁷⁸⁹^–\-~～/]*[\d⁰¹²³⁴⁵⁶⁷⁸⁹]|\d|[一二两三四五六七八九十百千万亿]+)"
_APPROX = r"(?:约|近|超过|逾|达|共|合计|大约|至少|最多)?"
_LENGTH_UNITS = r"(?:千米|公里|米|厘米|毫米|公分|公尺|英尺|英寸|英里|吋|呎|海里|光年|里|km|cm|mm|m\b|平方公里|平方米|平方英里|亩|公顷|吨|公斤|千克|克|磅|kg)"
_TIME_UNITS = r"(?:个)?(?:天|日|周|星期|月|年|小时|分钟|秒|世纪|days?|weeks?|months?|years?|hours?)"
_PLACE_SUFFIX = r"[省市县区州国镇乡村岛洲湖山河江海港湾路街城洋府郡岸峡谷原]"


@dataclass(frozen=True)
class AnswerType:
    """What a question asks for, how it asks in Chinese or English, and what a value looks like."""

    name: str
    asks: re.Pattern
    value: re.Pattern


ANSWER_TYPES: tuple[AnswerType, ...] = (
    AnswerType(
        "dose",
        re.compile(r"剂量|多少个?(细胞|MSCs?|颗粒|外泌体)|\bdose|\bdosage|how many cells", re.I),
        re.compile(_NUM + r"\s*(?:万|亿)?\s*(?:个)?(?:细胞|颗粒)(?:\s*/\s*(?:公斤|kg|mL|ml)(?:体重)?)?|"
                   + _NUM + r"\s*(?:mL|ml|mg|μg|ug)(?:\s*/\s*(?:公斤|kg))?|/公斤|/kg|剂量组", re.I),
    ),
    AnswerType(
        "duration",
        re.compile(r"多久|多长时间|多少(天|年|个月|周|小时)|随访.{0,4}(几|多少)|几(天|周|个月|年|小时)|how long|how many (days|weeks|months|years)", re.I),
        # A calendar year ("2023年") is a date, not a duration.
        re.compile(r"(?<!\d)(?!(?:19|20)\d\d年)" + _NUM + r"\s*(?:万|亿)?\s*" + _TIME_UNITS, re.I),  # "2,400万年"
    ),
    AnswerType(
        "times",
        re.compile(r"(几|多少)次|how (many times|often)", re.I),
        re.compile(r"[一二两三四五六七八九十\d]+\s*次|每(天|日|周|月)", re.I),
    ),
    AnswerType(
        "count",
        re.compile(r"(多少|几)(例|名|位|个人|人|个患者|名患者)|样本量|纳入了?(多少|几)|人口|how many (patients|participants|subjects|people)", re.I),
        re.compile(_NUM + r"\s*(?:万|亿)?\s*(?:例|名|位|人|户)|" + _NUM + r"\s*(?:万|亿)|样本量", re.I),
    ),
    AnswerType(
        "cost",
        re.compile(r"多少钱|费用|价格|花费|成本|\bcost|\bprice", re.I),
        re.compile(_NUM + r"\s*(?:元|美元|欧元|万元|日元|英镑|港元|越南盾)|\$\s*\d|费用|价格", re.I),
    ),
    AnswerType(
        # "多长" without 时间 may ask a length or a duration: both kinds of value answer it.
        "measure",
        re.compile(r"多长(?!时间)|全长|多高|多宽|多深|多远|多重|多大|长度|高度|宽度|深度|海拔|身高|体重|体长|面积|how (long|tall|high|wide|deep|far|big|heavy)", re.I),
        # "多大" asks a size or an age ("年仅两岁"); "2,400万年" is a length of time.
        re.compile(_APPROX + _NUM + r"\s*(?:多)?\s*(?:万|亿)?\s*(?:" + _LENGTH_UNITS + r"|" + _TIME_UNITS + r"|岁|周岁)", re.I),
    ),
    AnswerType(
        "when",
        re.compile(r"哪一?年|何年|什么时候|何时|什么时间|哪一?天|几月|几号|第几(天|周|个月|年)|哪个朝代|什么年代|哪个世纪|什么时期|\bwhen\b|what year", re.I),
        re.compile(
            r"(?:公元前?)?\d{1,4}\s*年|\d{1,2}\s*月|\d{1,2}\s*日|世纪|年代|元年|[一二三四五六七八九十]+年|第\s*" + _NUM + r"\s*(?:天|日|周|个月|年)|"
            + _NUM + r"\s*" + _TIME_UNITS + r"\s*(?:后|前|内|以后|以前|之后|之前|期间)|(?:后|前)\s*" + _NUM + r"\s*" + _TIME_UNITS
            + r"|时期|时代|期间|初期|末期|早期|晚期|\b(?:19|20)\d\d\b",
            re.I,
        ),
    ),
    AnswerType(
        "age",
        re.compile(r"多大年纪|多少岁|几岁|年龄|多大岁数|how old|\bage\b", re.I),
        re.compile(_NUM + r"\s*(?:岁|周岁|years? old)|年龄为?\s*" + _NUM, re.I),
    ),
    AnswerType(
        "temperature",
        re.compile(r"多少度|几度|温度|摄氏|\btemperature\b", re.I),
        re.compile(r"[-−零下]*\s*" + _NUM + r"\s*(?:℃|°C|°F|度|摄氏度)", re.I),
    ),
    AnswerType(
        "organisation",
        re.compile(r"哪家|哪所|哪个(医院|大学|学校|公司|机构|组织|单位|团队|实验室)|什么(医院|大学|机构|组织|公司)|谁资助|资助方|\bwhich (hospital|university|company|institution)", re.I),
        re.compile(r"[\u4e00-\u9fff]{1,12}(?:医院|大学|学院|学校|公司|集团|中心|研究所|研究院|机构|协会|基金会|委员会|实验室|银行|政府|部)|"
                   r"\b(?:University|Hospital|Institute|College|Foundation|Inc|Ltd|Corporation)\b"),
    ),
    AnswerType(
        "place",
        re.compile(r"哪里|哪儿|什么地方|在哪|何地|何处|哪个(国家|城市|省|地区|地方)|哪些(国家|地区|地方|城市)|\bwhere\b", re.I),
        re.compile(r"[\u4e00-\u9fff]{1,8}" + _PLACE_SUFFIX + r"|\b[A-Z][a-z]+"),
    ),
)
# Words that introduce another name of a thing: "俗名龙尖", "或称内台航线", "原名东那须野".
ALIAS_CUES = ("俗名", "俗称", "别名", "别称", "又名", "亦名", "又称", "或称", "亦称", "也称", "也叫", "又叫", "原名", "本名",
              "初名", "旧名", "曾名", "前称", "古称", "通称", "昵称", "简称", "全称", "旧称", "学名", "笔名", "艺名", "名为",
              "称为", "叫做", "名称为", "英文名", "英文全称", "英文名称", "英文简称", "中文名", "曾用名", "英文")
_CUE = "(?:" + "|".join(sorted(ALIAS_CUES, key=len, reverse=True)) + ")"
ANSWER_TYPES += (
    AnswerType(
        "alias",
        # Not what a name means or where it comes from ("名字是怎样得来的？", "名字是什么意思？").
        re.compile(r"(?:" + _CUE + r"|别号|名字|名称)(?:是什么|叫什么|什么|为何|有哪些)(?!意思|含义|来历|由来)|"
                   r"(?:也|又|还|或)(?:叫|称)什么|"
                   r"\b(?:also (?:called|known as)|other names?|alias)\b", re.I),
        # The name after its cue, up to the clause's end, with what it brackets ("无头土香（台湾）、无头香"):
        # the group "value" is the name itself ("初名为越南建设银行" -> 越南建设银行), and never starts with
        # another cue ("英文全称：Bank…", not "全称：…").
        re.compile("(?:" + "|".join(f"(?<={cue})" for cue in ALIAS_CUES) + r")(?:为|是)?[：:]?\s*[「“\"《]?"
                   + "(?P<value>(?!" + _CUE + r")[\u4e00-\u9fffA-Za-z0-9](?:[^，,。；;（()）」”\"》]|[（(][^）)]{0,30}[）)]){0,60})",
                   re.I),
    ),
)
_BY_NAME = {t.name: t for t in ANSWER_TYPES}


def asked_types(question: str) -> list[str]:
    """The kinds of value a question asks for: ``"剂量是多少？"`` -> ``["dose"]``."""
    return [t.name for t in ANSWER_TYPES if t.asks.search(question)]


def holds_type(text: str, kind: str) -> bool:
    """Whether ``text`` contains a value of the given kind: ``"1×10⁸个细胞"`` holds a dose."""
    return bool(value_pattern(kind).search(text))


def value_spans(kind: str, text: str) -> list[tuple[int, int]]:
    """Where the values of ``kind`` are in ``text``: the pattern's group "value" where it has one
    (the name after "俗名"), else the whole match."""
    pattern = value_pattern(kind)
    group = "value" if "value" in pattern.groupindex else 0
    return [m.span(group) for m in pattern.finditer(text)]


def value_pattern(kind: str) -> re.Pattern:
    """The pattern of a value of ``kind``; an unknown kind is a ValueError."""
    try:
        return _BY_NAME[kind].value
    except KeyError:
        raise ValueError(f"unknown answer type {kind!r}") from None


def missing_types(question: str, passages: list[str]) -> list[str]:
    """The asked kinds of value that none of the passages holds."""
    joined = "\n".join(passages)
    return [kind for kind in asked_types(question) if not holds_type(joined, kind)]
