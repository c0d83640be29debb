"""Prompt templates for API generators (cleaning.py cleans and flags what they return)."""

from __future__ import annotations

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
