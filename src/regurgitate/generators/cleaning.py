"""From an API's answer to one line of translation, and the flags of rows that may not be one.

Chat models wrap translations despite the prompt: a preamble (`Here is the translation:`), the
echoed source, quotation marks of every typography (matched or not), markdown, code fences and
explanation lines. Cleaning removes each wrapper that the source itself does not have (a source
in quotes keeps its quotes), and never removes a line or a label it cannot name; what still looks
wrapped afterwards is flagged `wrapped` instead of being kept silently.
"""

from __future__ import annotations

import re

from regurgitate.generators.prompts import Prompt

DOUBLE_QUOTES = '"“”„‟«»「」『』'
SINGLE_QUOTES = "'‘’‚‛‹›"
QUOTES = DOUBLE_QUOTES + SINGLE_QUOTES
END_PUNCTUATION = ".!?…,;"

# Words that only an answer about a translation uses (the source says whether it uses them too).
META = re.compile(r"translat\w*|übersetz\w*", re.IGNORECASE)
LEAD = r"(?:sure|certainly|of course|okay|ok|absolutely|gladly|here(?:'s|’s| is| you go| it is))"
# A label made only of lead words: "Sure, here it is", "Here you go" (never "Here is the plan").
LEAD_ONLY = re.compile(rf"^{LEAD}(?:[\s,!.]+{LEAD})*[\s,!.]*$", re.IGNORECASE)
LABEL = re.compile(r"^[*_]{0,2}(?P<label>[^:\n*_]{1,90}?)[*_]{0,2}\s*:[*_]{0,2}(?:\s+|$)")
INTERJECTION = re.compile(rf"^{LEAD}[\s!.,]*$", re.IGNORECASE)
FENCE_LINE = re.compile(r"^```[\w-]*$")
# A line after the translation that explains it: a note, a literal rendering, an alternative.
EXPLANATION = re.compile(
    r"^[*_(\[]*\s*(?:notes?|n\.b\.|explanation|literally|lit\.|literal(?: translation)?"
    r"|alternatively|alternative|or|also|this (?:is|means|translation|sentence)|the (?:word|phrase"
    r"|sentence|original|term|german|source))\b",
    re.IGNORECASE,
)
TRAILING_NOTE = re.compile(
    r"(?:\s+\((?:note|n\.b\.|literally|lit\.|or|i\.e\.|also|alternatively|translat\w*|formal"
    r"|informal)\b[^()]*\)|(?<=[.!?\"”»'’])\s+(?:(?:note|n\.b\.|literally|explanation)\s*:"
    r"|(?:this|the above) translation\b).*)$",
    re.IGNORECASE,
)
NOTE_LEFT = re.compile(r"\bnote\s*:|\(\s*(?:note|literally)\b|\bliterally\b", re.IGNORECASE)
# What is left of a preamble that cleaning does not dare to take off ("Here is my attempt:").
LEAD_LEFT = re.compile(
    r"^(?:(?:sure|certainly|of course|okay|absolutely|gladly)\b[^:\n]{0,60}"
    r"|here(?:'s|’s| is| are)\b[^:\n]{0,40}\b(?:attempt|version|answer|rendering|result|output"
    r"|response)\b[^:\n]{0,20}):",
    re.IGNORECASE,
)
EMPHASIS = ("**", "__", "`", "*", "_")


def languages(prompt: Prompt | None) -> tuple[str, str]:
    return (prompt.source_language, prompt.target_language) if prompt else ("German", "English")


def is_preamble_label(label: str, source: str, target_language: str) -> bool:
    """Whether `label:` introduces the translation rather than being part of it."""
    label = label.strip().lower()
    if META.search(label):
        return not META.search(source)
    names = {target_language.lower(), f"in {target_language.lower()}"}
    return label in names or bool(LEAD_ONLY.match(label))


def is_preamble_line(line: str, source: str, prompt: Prompt | None) -> bool:
    source_language, target_language = languages(prompt)
    if INTERJECTION.match(line) and not INTERJECTION.match(source.strip()):
        return True
    label = LABEL.match(line)
    if label and label.end() == len(line):  # nothing follows the colon
        return is_preamble_label(label["label"], source, target_language)
    # the source echoed back, with or without its language's name
    echo = re.sub(rf"^[*_]*{re.escape(source_language)}[*_]*\s*:[*_]*\s*", "", line, flags=re.I)
    return bool(source.strip()) and echo.strip() == source.strip()


def is_explanation(line: str, source: str) -> bool:
    if line.startswith("(") and line.endswith(")") and not source.strip().startswith("("):
        return True
    return bool(EXPLANATION.match(line) or (META.search(line) and not META.search(source)))


def answer_lines(raw: str, source: str, prompt: Prompt | None) -> tuple[list[str], int]:
    """The answer's non-empty lines (fences dropped) and the index of the translation's line."""
    lines = [line.strip() for line in raw.strip().splitlines()]
    lines = [line for line in lines if line and not FENCE_LINE.match(line)]
    first = 0
    # A preamble line goes only when a line follows it: an answer never becomes empty.
    while first < len(lines) - 1 and is_preamble_line(lines[first], source, prompt):
        first += 1
    return lines, first


def strip_label(line: str, source: str, target_language: str) -> str:
    """`Translation: text` to `text`; `Here is the plan: text` stays."""
    # A preamble may hold a label of its own: "Sure! English translation: text".
    for _ in range(2):
        label = LABEL.match(line)
        rest = line[label.end() :].strip() if label else ""
        if not (rest and is_preamble_label(label["label"], source, target_language)):
            break
        line = rest
    return line


def elided(after: str) -> bool:
    """Whether an apostrophe before `after` starts a word ('90s, 'tis) rather than a quote."""
    return after.isdigit() or after.islower()


def edge_quotes(text: str) -> tuple[int, int]:
    """How many quotation marks open and close `text` (a closing one may precede its final
    punctuation, as in `"text".`); a trailing apostrophe counts only after punctuation, where it
    cannot be a plural possessive (`the students'`)."""
    lead = 0
    for i, ch in enumerate(text):
        if ch == " ":
            continue
        if ch not in QUOTES or (ch in SINGLE_QUOTES and elided(text[i + 1 : i + 2])):
            break
        lead += 1
    tail = re.search(rf"[{re.escape(QUOTES + END_PUNCTUATION)}\s]*$", text)[0]
    trail = 0
    for i, ch in enumerate(tail):
        if ch in DOUBLE_QUOTES:
            trail += 1
        elif ch in SINGLE_QUOTES:
            before = tail[:i] if i else text[: len(text) - len(tail)][-1:]
            trail += bool(lead or (before and before[-1] in END_PUNCTUATION))
    return lead, trail


def strip_quotes(text: str, source: str) -> str:
    """Removes the quotation marks at either end that the source does not have at that end."""
    lead, trail = edge_quotes(text)
    keep_lead, keep_trail = edge_quotes(source.strip())
    for _ in range(max(0, lead - keep_lead)):
        text = text.lstrip()[1:]
    for _ in range(max(0, trail - keep_trail)):
        tail = re.search(rf"[{re.escape(QUOTES + END_PUNCTUATION)}\s]*$", text)
        marks = [i for i, ch in enumerate(tail[0]) if ch in QUOTES]
        if not marks:
            break
        cut = tail.start() + marks[-1]
        text = text[:cut] + text[cut + 1 :]
    return text.strip()


def unwrap(text: str, source: str) -> str:
    """Quotes, markdown emphasis and a blockquote around the whole text, nested in any order."""
    while True:
        before = text
        if text.startswith(">") and not source.lstrip().startswith(">"):
            text = text[1:].strip()
        for mark in EMPHASIS:
            wrapped = text.startswith(mark) and text.endswith(mark) and len(text) > 2 * len(mark)
            if wrapped and mark not in source:
                text = text[len(mark) : -len(mark)].strip()
                break
        text = strip_quotes(text, source)
        if text == before:
            return text


def clean_output(raw: str, source: str = "", prompt: Prompt | None = None) -> str:
    """One line of translation: without a preamble, an echoed source, code fences, markdown,
    quotation marks the source lacks, or notes after it."""
    lines, first = answer_lines(raw, source, prompt)
    if not lines:
        return ""
    line = strip_label(lines[first], source, languages(prompt)[1])
    line = TRAILING_NOTE.sub("", line).strip() or line
    return unwrap(line, source)


def balanced(text: str) -> bool:
    """Whether every double quotation mark opens or closes a pair in order; a mark's role comes
    from its neighbours (after a space it opens, before one it closes), as typographies differ."""
    depth = 0
    for i, ch in enumerate(text):
        if ch not in DOUBLE_QUOTES:
            continue
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if before.isspace() or before in "([{-–—/":
            depth += 1
        elif after.isspace() or after in END_PUNCTUATION + ")]}:-–—":
            depth -= 1
        else:  # inside a word: a straight quote toggles
            depth += 1 if depth == 0 else -1
        if depth < 0:
            return False
    return depth == 0


def looks_wrapped(raw: str, cleaned: str, source: str = "", prompt: Prompt | None = None) -> bool:
    """Whether a cleaned target may still hold (or have lost) part of a wrapper: a quotation mark
    the source does not balance, a word about translating, a note, a label, or a dropped line
    that is not an explanation (a second sentence of the translation, perhaps)."""
    lines, first = answer_lines(raw, source, prompt)
    if any(not is_explanation(line, source) for line in lines[first + 1 :]):
        return True
    source = source.strip()
    if not balanced(cleaned) and balanced(source):
        return True
    lead, trail = edge_quotes(cleaned)
    keep_lead, keep_trail = edge_quotes(source)
    return (
        lead > keep_lead
        or trail > keep_trail
        or bool(META.search(cleaned) and not META.search(source))
        or bool(NOTE_LEFT.search(cleaned) and not NOTE_LEFT.search(source))
        or (cleaned.endswith(":") and not source.endswith(":"))
        or bool(LEAD_LEFT.match(cleaned) and not LEAD_LEFT.match(source))
    )


REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) sorry|I apologi[sz]e|I can(?:not|'t)|I(?:'m| am) (?:not able|unable)"
    r"|as an AI|I won't)\b",
    re.IGNORECASE,
)
# Function words: enough to tell the study's two languages apart in a sentence.
STOPWORDS = {
    "English": {
        "the", "a", "an", "and", "of", "to", "in", "is", "that", "it", "for", "on", "with",
        "we", "this", "are", "be", "not", "as", "by", "have", "was", "which", "i", "you",
    },
    "German": {
        "der", "die", "das", "und", "ist", "nicht", "ein", "eine", "mit", "auf", "für", "wir",
        "den", "dem", "des", "zu", "von", "sich", "es", "im", "ich", "sie", "auch", "dass",
    },
}  # fmt: skip


def looks_like(text: str, language: str) -> bool | None:
    """Whether `text` reads as `language` rather than another known one; None = cannot tell."""
    if language not in STOPWORDS:
        return None
    words = re.findall(r"[^\W\d_]+", text.lower())
    hits = {lang: sum(w in stop for w in words) for lang, stop in STOPWORDS.items()}
    if sum(hits.values()) < 2:
        return None
    return hits[language] >= max(hits.values())


def output_flags(
    raw: str, cleaned: str, finish_reason: str, prompt: Prompt, source: str = ""
) -> list[str]:
    """Why a row may not be a usable translation: refusal, empty, cut_off, wrong_language,
    wrapped (cleaning could not take the whole wrapper off, see `looks_wrapped`)."""
    flags = []
    refused = finish_reason == "refusal" or REFUSAL.search(raw)
    if refused:
        flags.append("refusal")
    if not cleaned:
        flags.append("empty")
    if finish_reason == "length":
        flags.append("cut_off")
    if cleaned and looks_like(cleaned, prompt.target_language) is False:
        flags.append("wrong_language")
    if cleaned and not refused and looks_wrapped(raw, cleaned, source, prompt):
        flags.append("wrapped")
    return flags
