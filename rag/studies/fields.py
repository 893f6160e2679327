"""Reading a study's fields out of its sentences: word classes and patterns, never a guess.

Every function takes the document text and the study's body sentence spans (in order) and
returns exact spans ``(start, end)`` of the text, or None when the sentences do not say.
Statements about studies still to be done ("仍需在更大规模的随机对照试验中加以验证") and a
study's stated aim ("旨在评估…安全性") are not read as its design or its outcome.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

Spans = Sequence[tuple[int, int]]
Span = tuple[int, int]

_CLAUSE_END = "，,；;：:。！？!?"
_OPEN, _CLOSE = "（(", "）)"
# A clause that only leads into the next one ("结果显示，…", "其中，…").
_LEAD_IN = re.compile(r"^(?:结果显示|结果表明|研究发现|其中|然而|此外|同时|但|但是|另外|并且|而且|同样|最终)$")
# Speaking of research to come, or of a study's aim, not of what a study did or found.
_FUTURE = re.compile(r"仍需|需要|有待|未来|应当|亟需|还需")
_AIM = re.compile(r"旨在|目的|为了|评估[^，,。]{0,30}(?:安全|疗效|有效)")
# A word that denies what follows it: "缺乏随机化设计", "未设对照组", "无对照".
_NEGATION = re.compile(r"(?:缺乏|缺少|没有|未设|未|无|非)(?:设立|设置|设)?$")

# Word classes. None names a disease, a study or an author: they are the vocabulary of trials.
PATIENT = r"(?:患者|患儿|病人|受试者|参与者|病例|志愿者)"
COUNT = re.compile(r"(?P<n>\d+)\s*(?:例|名|位|人)")
STAGE = re.compile(r"(?:完全性|不完全性)?(?:亚急性|急性|慢性)(?:期)?|轻(?:度)?至中度|中(?:度)?至重度|轻度|中度|重度|"
                   r"进(?:行|展)(?:性|型)|复发缓解型|早期|中晚期|晚期|终末期")
STAGE_OF_PATIENTS = re.compile(r"(?P<s>" + STAGE.pattern + r")[^，,。；;、：:（()）]{0,12}?" + PATIENT)
DISEASE_BEFORE_PATIENT = re.compile(
    r"(?:\d+\s*[例名位]|针对|对|在|纳入(?:了)?|招募(?:了)?|入组(?:了)?|共有|共)(?P<d>[^\d，,。；;、：:（()）的]{2,24}?)" + PATIENT)
DISEASE_AFTER_TREAT = re.compile(r"(?:治疗|用于)(?P<d>[^\d，,。；;、：:（()）]{2,16}?)(?=[，,。；;]|$|患者|的|安全|疗效|有效)")
DESIGN = {
    "randomised": re.compile(r"随机(?:化)?(?:分组|分配)?"),
    "controlled": re.compile(r"(?:安慰剂|假手术|空白)?对照(?:组)?(?:[（(][^）)]{0,12}[）)])?"),
    "blinded": re.compile(r"[双单三]盲"),
    "open_label": re.compile(r"开放标签|开放性|非盲"),
    "single_arm": re.compile(r"单臂|单组"),
    "phase": re.compile(r"[IVⅠⅡⅢⅣ]+\s*(?:/\s*[IVⅠⅡⅢⅣ]+)?\s*期|[1-4]\s*(?:/\s*[1-4])?\s*期(?=临床|试验)"),
}
ARM_NAMED = re.compile(r"(?P<arm>(?:实验|试验|治疗|干预|移植|安慰剂|对照|[低中高]剂量|细胞)组)\s*(?:[（(]\s*|为|共|有|纳入)?"
                       r"(?P<n>\d+\s*(?:例|名|位|人))")
ARM_COUNTED = re.compile(r"(?P<n>\d+\s*(?:例|名|位|人))(?:患者)?(?:接受|被分配到|分入|进入)(?:了)?(?P<arm>[^（(，,。；;\d]{1,10}?)(?=[（(，,。；;])")
TOTAL = re.compile(r"(?:样本量|总样本|共纳入|共入组|共招募)(?:仅|只)?(?:为|有|了)?\s*(?P<n>\d+\s*(?:例|名|位|人))|"
                   r"(?P<m>\d+\s*(?:例|名|位|人))(?=[^，,。；;\d]{0,24}?" + PATIENT + ")")
DONOR = re.compile(r"同种异体|异体|异基因|自体|自身")
TISSUE = re.compile(r"骨髓|脂肪组织|脂肪|脐带血|脐带|胎盘|羊膜|牙髓|沃顿胶|外周血|经血|子宫内膜|滑膜")
_PRODUCT_HEAD = r"(?:MSCs?|间充质干细胞|间充质基质细胞|基质细胞|神经祖细胞|神经干细胞|神经前体细胞|干细胞|祖细胞|外泌体|细胞外囊泡|囊泡)"
_ABBREV = r"(?:[（(][A-Za-z\-]{1,20}[）)])?"
# The words a product's name is built of: donor, tissue, "来源", "的" ("人脐带血来源的间充质干细胞").
_MODIFIER = r"(?:同种异体|异体|异基因|自体|人|组织|来源|衍生|的|" + TISSUE.pattern + ")"
PRODUCT = re.compile(r"(?:" + _MODIFIER + r")*" + _PRODUCT_HEAD + _ABBREV
                     + r"(?:(?:" + _MODIFIER + r")+" + _PRODUCT_HEAD + _ABBREV + r")*")
ROUTE = re.compile(r"(?:经)?(?:静脉|鞘内|颅内|脑室内?|侧脑室|鼻内|经鼻|脊髓内|髓内|动脉内?|颈动脉|肌肉|皮下|腰椎穿刺|腹腔|立体定向|病灶内?|局部)"
                   r"(?:内)?(?:注射|输注|滴注|给予|给药|移植|植入|途径)")
QUANTITY = re.compile(
    r"\d+(?:\.\d+)?\s*(?:×\s*10[⁰¹²³⁴⁵⁶⁷⁸⁹]+|万|亿|百万)\s*(?:个)?(?:细胞|颗粒|cells|particles)?"
    r"(?:\s*/\s*(?:公斤|千克|kg|毫升|mL|ml|\d+\s*(?:mL|ml|毫升))(?:体重)?)?|"
    r"\d+(?:\.\d+)?\s*(?:mg|毫克|μg|微克)(?:\s*/\s*(?:kg|公斤|千克))?")
_DOSE_LEAD = re.compile(r"(?:[低中高]|不同|单次|总)?剂量(?:最高|最低|分别|均)?(?:达|为|是)?\s*[（(]?$")
FOLLOW_UP = re.compile(r"随访(?:期)?(?:至|了|达|长达|时间为|期为|为)?\s*第?\s*\d+(?:\.\d+)?\s*(?:个)?(?:周|月|年|天|日)|"
                       r"为期\s*\d+\s*(?:个)?(?:周|月|年|天)的(?:观察|随访|评估)期?|"
                       r"(?:术后|治疗后|给药后|移植后|注射后)\s*\d+\s*(?:个)?(?:周|月|年|天)(?:时)?|"
                       r"\d+\s*(?:个)?(?:周|月|年|天)(?:时|后)的(?:临床)?(?:结局|评估|随访)")
SAFETY = re.compile(r"安全|不良反应|不良事件|副作用|耐受|并发症|发热|头痛|呕吐|感染|肿瘤|死亡")
EFFICACY = re.compile(r"有效|疗效|改善|提高|结局|获益|恢复|评分|下降|减缓|显著|好转|进展")
LIMITATION = re.compile(r"缺乏|缺少|局限|外推性|单中心设计|不足以|样本量(?:较|仅|小)|无法得出|难以[^，,。]{0,6}得出|尚不能|仍需|有待|偏倚|未设对照")


@lru_cache(maxsize=1 << 14)  # each field's search cuts the same sentences again: most of reading a record
def clauses(text: str, start: int, end: int) -> tuple[Span, ...]:
    """The clauses of a sentence, cut at commas, semicolons and colons outside brackets.

    ``"结果显示该疗法安全,并在巴氏指数(BI,改良)上改善。"`` -> ``"结果显示该疗法安全"``,
    ``"并在巴氏指数(BI,改良)上改善"``.
    """
    out, depth, begin = [], 0, start
    for i in range(start, end):
        c = text[i]
        depth += (c in _OPEN) - (c in _CLOSE and depth > 0)
        if c in _CLAUSE_END and depth == 0:
            if i > begin:
                out.append((begin, i))
            begin = i + 1
    if end > begin:
        out.append((begin, end))
    return tuple(_joined_lead_ins(text, out))


def _joined_lead_ins(text: str, spans: list[Span]) -> list[Span]:
    """Clauses with a bare lead-in ("其中", "结果显示") joined to the clause it leads into."""
    out: list[Span] = []
    for span in spans:
        if out and _LEAD_IN.match(text[out[-1][0]:out[-1][1]].strip()):
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    return out


def first_match(pattern: re.Pattern, text: str, sentences: Spans, group: int | str = 0,
                skip: re.Pattern | None = _FUTURE) -> Span | None:
    """The first match of ``pattern`` in the sentences, outside clauses that ``skip`` marks."""
    for s, e in sentences:
        for cs, ce in clauses(text, s, e):
            if skip is not None and skip.search(text[cs:ce]):
                continue
            m = pattern.search(text, cs, ce)
            if m and m.group(group):
                return m.span(group)
    return None


def disease(text: str, sentences: Spans) -> Span | None:
    """The condition studied: what the patients have, or what is treated.

    ``"纳入了30例急性缺血性卒中患者"`` -> ``"急性缺血性卒中"``.
    """
    return first_match(DISEASE_BEFORE_PATIENT, text, sentences, "d") or first_match(DISEASE_AFTER_TREAT, text, sentences, "d")


def stage(text: str, sentences: Spans, condition: Span | None) -> Span | None:
    """The stage or severity of the disease ("急性", "慢性", "轻至中度"): inside the condition's name,
    else the first one said of patients ("慢性卒中患者"), not of a side effect ("轻度注射部位反应")."""
    if condition is not None and (m := STAGE.search(text, *condition)):
        return m.span()
    return first_match(STAGE_OF_PATIENTS, text, sentences, "s")


def design(text: str, sentences: Spans) -> dict[str, Span | None]:
    """Each design trait (randomised, controlled, blinded, open_label, single_arm, phase) as stated;
    a denied trait keeps its denial in the span ("缺乏随机化设计" is not randomised)."""
    return {name: _with_negation(text, first_match(pattern, text, sentences)) for name, pattern in DESIGN.items()}


def _with_negation(text: str, span: Span | None) -> Span | None:
    """A span widened to the word that denies it, if one stands right before it."""
    if span is None:
        return None
    m = _NEGATION.search(text, max(0, span[0] - 4), span[0])
    return (m.start(), span[1]) if m else span


def is_denied(text: str) -> bool:
    """Whether a design span states the trait's absence. ``"缺乏随机化设计"`` -> True."""
    return bool(re.match(r"(?:缺乏|缺少|没有|未设|未|无|非)", text))


def arms(text: str, sentences: Spans) -> list[tuple[Span, Span]]:
    """Each arm the sentences number: (its name, its count).

    ``"实验组(39例患者)…并设对照组(15例患者)"`` -> (实验组, 39例), (对照组, 15例).
    """
    found: dict[int, tuple[Span, Span]] = {}
    for s, e in sentences:
        for pattern in (ARM_NAMED, ARM_COUNTED):
            for m in pattern.finditer(text, s, e):
                if not _FUTURE.search(text[s:e]):
                    found.setdefault(m.start("n"), (m.span("arm"), m.span("n")))
    named: dict[str, tuple[Span, Span]] = {}
    for arm, n in sorted(found.values(), key=lambda a: a[1][0]):
        named.setdefault(text[arm[0]:arm[1]], (arm, n))  # an arm's first count is its size
    return list(named.values())


def arm_phrase(text: str, name: Span, count: Span) -> Span:
    """The phrase holding an arm's name and count, its bracket closed.

    ``"实验组(39例患者)"`` -> all of it; ``"3例接受低剂量"`` -> all of it.
    """
    start, end = min(name[0], count[0]), max(name[1], count[1])
    inside = text[start:end]
    if inside.count("(") + inside.count("（") > inside.count(")") + inside.count("）"):
        close = re.compile(r"[^（()）。，,；;]{0,6}[)）]").match(text, end)
        if close:
            end = close.end()
    return start, end


def total(text: str, sentences: Spans, arm_counts: set[int]) -> Span | None:
    """The number of patients in the whole study, as stated (never a sum of arms).

    A count inside an arm or after "其中" (a subgroup) is not the total.
    """
    for s, e in sentences:
        for cs, ce in clauses(text, s, e):
            clause = text[cs:ce]
            if _FUTURE.search(clause) or clause.lstrip().startswith("其中"):
                continue
            for m in TOTAL.finditer(text, cs, ce):
                span = m.span("n") if m.group("n") else m.span("m")
                if span[0] not in arm_counts:
                    return span
    return None


def product(text: str, sentences: Spans) -> Span | None:
    """The cell product as the text names it most fully ("自体骨髓来源的MSCs", "…来源的外泌体(…)")."""
    best: Span | None = None
    for s, e in sentences:
        for m in PRODUCT.finditer(text, s, e):
            start = m.start() + len(m.group()) - len(m.group().lstrip("的"))
            if best is None or m.end() - start > best[1] - best[0]:
                best = (start, m.end())
    return best


def within_or_first(pattern: re.Pattern, text: str, inside: Span | None, sentences: Spans) -> Span | None:
    """A match inside ``inside`` (the product's name) if any, else the first in the sentences."""
    if inside is not None:
        m = pattern.search(text, *inside)
        if m:
            return m.span()
    return first_match(pattern, text, sentences)


def route(text: str, sentences: Spans) -> Span | None:
    """How the product was given; several routes in one sentence give one span from first to last.

    ``"首次为…行脊髓内注射,三个月后进行鞘内注射"`` -> ``"脊髓内注射,三个月后进行鞘内注射"``.
    """
    for s, e in sentences:
        found = [m.span() for m in ROUTE.finditer(text, s, e)]
        if found and not _AIM.search(text[s:found[0][0]]):
            return found[0][0], found[-1][1]
    for s, e in sentences:  # a route named inside the stated aim is still the route
        found = [m.span() for m in ROUTE.finditer(text, s, e)]
        if found:
            return found[0][0], found[-1][1]
    return None


def dose(text: str, sentences: Spans) -> Span | None:
    """The dose or doses, from the first quantity to the last in the first sentence that gives any,
    with the word "剂量" that introduces them.

    ``"不同剂量(2×10⁸、4×10⁸和8×10⁸个颗粒)"`` -> that whole phrase.
    """
    for s, e in sentences:
        found = [m.span() for m in QUANTITY.finditer(text, s, e) if _is_dose(text, m)]
        if not found:
            continue
        start, end = found[0][0], found[-1][1]
        lead = _DOSE_LEAD.search(text, max(s, start - 12), start)
        if lead:
            start = lead.start()
        if text[start:end].count("(") + text[start:end].count("（") > text[start:end].count(")") + text[start:end].count("）"):
            if end < e and text[end] in _CLOSE:
                end += 1
        return start, end
    return None


def _is_dose(text: str, m: re.Match) -> bool:
    """A quantity of cells, particles or drug, not a count of people or a date."""
    q = m.group()
    return bool(re.search(r"×|细胞|颗粒|cells|particles|mg|毫克|μg|微克", q))


def follow_up(text: str, sentences: Spans) -> Span | None:
    """How long patients were followed or when the outcome was judged ("随访至第48周", "90天时的临床结局")."""
    return first_match(FOLLOW_UP, text, sentences, skip=None)


def outcome(text: str, sentences: Spans, kind: re.Pattern, other: re.Pattern, skip: set[int]) -> Span | None:
    """The first statement of one kind of outcome: from the clause that states it through the clauses
    after it that add to it, stopping at one that states the other kind.

    ``"给药后立即出现短暂性发热,但均在1–2天内自行消退。"`` -> safety, the whole sentence but its mark.
    """
    for s, e in sentences:
        if s in skip:
            continue
        parts = clauses(text, s, e)
        for i, (cs, ce) in enumerate(parts):
            clause = text[cs:ce]
            if _AIM.search(clause) or _FUTURE.search(clause) or not kind.search(clause):
                continue
            end = ce
            for ns, ne in parts[i + 1:]:
                if other.search(text[ns:ne]) or _FUTURE.search(text[ns:ne]):
                    break
                end = ne
            return cs, end
    return None


def limitations(text: str, sentences: Spans) -> Span | None:
    """The sentence in which the document states the study's limits ("由于缺乏对照组，尚难以…")."""
    for s, e in sentences:
        if LIMITATION.search(text, s, e):
            return s, e
    return None
