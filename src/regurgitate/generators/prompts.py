"""Prompt templates for API generators, and the cleaning and flagging of what they return."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PROMPT = {
    "version": 1,
    "system": (
        "You are a professional translator. Translate the user's {source_language} text into "
        "{target_language}. Reply with the {target_language} translation only: no preamble, "
        "no notes, no quotation marks, one line."
    ),
    "user": "{source}",
    "source_language": "German",
    "target_language": "English",
}


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    system: str
    user: str
    source_language: str
    target_language: str

    def messages(self, source: str) -> tuple[str, str]:
        """(system, user) text for one source."""
        fields = {
            "source_language": self.source_language,
            "target_language": self.target_language,
        }
        # The source goes in last, so that braces in it are never read as template fields.
        user = self.user.replace("{source}", "\0").format(**fields).replace("\0", source)
        return self.system.format(**fields), user

    def identity(self) -> dict:
        """What of the prompt determines an answer: part of every cache key."""
        return {
            "name": self.name,
            "version": self.version,
            "system": self.system,
            "user": self.user,
            "languages": [self.source_language, self.target_language],
        }


def resolve_prompt(prompts: dict | None, name: str, version: int | None) -> Prompt:
    """The template `name` at `version` (the highest when None) from the config's `prompts`
    block; `default` is built in unless the config redefines it."""
    versions = dict((prompts or {}).get(name) or {})
    if name == "default" and not versions:
        versions = {DEFAULT_PROMPT["version"]: DEFAULT_PROMPT}
    if not versions:
        raise KeyError(f"prompt {name!r} is not in the config's prompts block")
    versions = {int(v): t for v, t in versions.items()}
    chosen = max(versions) if version is None else int(version)
    if chosen not in versions:
        raise KeyError(f"prompt {name!r} has no version {chosen} (has {sorted(versions)})")
    template = {**DEFAULT_PROMPT, **versions[chosen]}
    return Prompt(
        name=name,
        version=chosen,
        system=template["system"],
        user=template["user"],
        source_language=template["source_language"],
        target_language=template["target_language"],
    )


PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|of course)[,!.]?\s*)?"
    r"(?:here(?:'s| is)[^:\n]{0,60}translation[^:\n]{0,30}"
    r"|(?:the\s+)?(?:english\s+)?translation|translated text|english|übersetzung)\s*:\s*",
    re.IGNORECASE,
)
FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)
QUOTES = [('"', '"'), ("'", "'"), ("“", "”"), ("„", "“"), ("«", "»"), ("‘", "’")]
REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) sorry|I apologi[sz]e|I can(?:not|'t)|I(?:'m| am) (?:not able|unable)"
    r"|as an AI|I won't)\b",
    re.IGNORECASE,
)


def clean_output(text: str) -> str:
    """One line of translation: without a preamble, code fences, surrounding quotes, notes."""
    text = text.strip()
    fenced = FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    text = PREAMBLE.sub("", text, count=1).strip()
    fenced = FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = lines[0] if lines else ""
    for left, right in QUOTES:
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            text = text[len(left) : -len(right)].strip()
            break
    return text


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


def output_flags(raw: str, cleaned: str, finish_reason: str, prompt: Prompt) -> list[str]:
    """Why a row may not be a usable translation: refusal, empty, cut_off, wrong_language."""
    flags = []
    if finish_reason == "refusal" or REFUSAL.search(raw):
        flags.append("refusal")
    if not cleaned:
        flags.append("empty")
    if finish_reason == "length":
        flags.append("cut_off")
    if cleaned and looks_like(cleaned, prompt.target_language) is False:
        flags.append("wrong_language")
    return flags
