"""An open-weight generator's configuration (`generators.<name>` with `backend: huggingface`),
where its weights come from, and the checks a study that names one runs before any job.

Nothing here imports `transformers`: the checks must run (and say which extra to install) where
it is missing, and the workflow reads these settings at every start.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from regurgitate.generators.prompts import Prompt, resolve_prompt

BACKEND = "huggingface"
EXTRA = "llm"
INSTALL = f'pip install "torch==2.13.0" -e ".[{EXTRA}]"'
# What the backend imports: the extra's packages (accelerate is not needed).
EXTRA_MODULES = ("transformers", "peft")
METHODS = ("lora", "full")


class MissingModelError(RuntimeError):
    """The weights are neither a local directory nor in the Hugging Face cache."""


class MissingExtraError(RuntimeError):
    """The packages of the `llm` extra are not installed."""


@dataclass(frozen=True)
class OpenWeightsDecoding:
    beam: int = 1
    max_new_tokens: int = 256
    batch_size: int = 16
    length_penalty: float = 1.0


@dataclass(frozen=True)
class OpenWeightsSettings:
    name: str
    model: str  # a hub id (with `revision`) or a local directory
    prompt: Prompt  # causal models only
    revision: str | None = None
    source_lang: str | None = None  # sequence-to-sequence language codes (NLLB, M2M)
    target_lang: str | None = None
    decoding: OpenWeightsDecoding = field(default_factory=OpenWeightsDecoding)
    max_length: int = 512  # tokens of a prompt or source; longer ones are cut
    precision: str = "auto"  # auto: bf16 on a CUDA GPU that supports it, else fp32

    @classmethod
    def from_config(cls, name: str, generator: dict, prompts: dict | None = None):
        if generator["backend"] != BACKEND:
            raise ValueError(
                f"generators.{name}.backend: {generator['backend']!r} is not {BACKEND}"
            )
        simple = {
            key: generator[key]
            for key in ("revision", "source_lang", "target_lang", "max_length", "precision")
            if generator.get(key) is not None
        }
        return cls(
            name=name,
            model=str(generator["model"]),
            prompt=resolve_prompt(
                prompts, generator.get("prompt", "default"), generator.get("prompt_version")
            ),
            decoding=OpenWeightsDecoding(**(generator.get("decoding") or {})),
            **simple,
        )

    @property
    def is_local(self) -> bool:
        return is_local_path(self.model)

    def fetch_command(self) -> str:
        revision = f" --revision {self.revision}" if self.revision else ""
        return f"huggingface-cli download {self.model}{revision}"

    def model_dir(self) -> Path:
        """The folder the weights are read from: the local directory, or the snapshot of the
        pinned revision in the Hugging Face cache. Never downloads: a job that found nothing
        would otherwise hang on a machine without network, or fetch gigabytes unasked."""
        if self.is_local:
            path = Path(self.model).expanduser()
            if not (path / "config.json").is_file():
                raise MissingModelError(
                    f"generators.{self.name}: the model directory {path} "
                    f"{'holds no config.json' if path.is_dir() else 'does not exist'}; point "
                    f"generators.{self.name}.model at a folder that save_pretrained wrote, or at "
                    "a hub id with a revision"
                )
            return path
        require_extra(self.name)
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(
                snapshot_download(self.model, revision=self.revision, local_files_only=True)
            )
        except (LocalEntryNotFoundError, FileNotFoundError, OSError) as err:
            cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache"
            raise MissingModelError(
                f"generators.{self.name}: the model {self.model} at revision "
                f"{self.revision or '(none pinned)'} is not in the Hugging Face cache ({cache}) "
                f"and jobs never download; fetch it on a machine with network with "
                f"`{self.fetch_command()}` (accept its licence on the hub first where it asks "
                f"for one), or set generators.{self.name}.model to a local directory "
                f"[{type(err).__name__}]"
            ) from None


def is_local_path(model: str) -> bool:
    """A local directory is an absolute path, one that starts with `.` or `~`, or a folder that
    exists; anything else is a hub id (`organisation/name`)."""
    return model.startswith(("/", ".", "~")) or Path(model).is_dir()


def missing_extra() -> list[str]:
    return [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]


def require_extra(name: str) -> None:
    missing = missing_extra()
    if missing:
        raise MissingExtraError(
            f"generators.{name}: the {BACKEND} backend needs the `{EXTRA}` extra "
            f"({', '.join(missing)} not installed): {INSTALL}"
        )


def open_weights_generators(config: dict) -> list[str]:
    return [g for g, s in config["generators"].items() if s["backend"] == BACKEND]


def finetune_open_weights(config: dict) -> bool:
    """E1 fine-tunes an open-weight model when its base is a huggingface generator."""
    finetune = config.get("finetune")
    return bool(finetune) and config["generators"][finetune["base"]]["backend"] == BACKEND


def recursion_open_weights(config: dict) -> bool:
    """The recursion's generations are fine-tuned open-weight models."""
    recursion = config.get("recursion")
    return (
        bool(recursion) and recursion["experiment"] == "finetune" and finetune_open_weights(config)
    )


def finetune_method(config: dict) -> dict:
    """How E1 fine-tunes an open-weight base: `method` (lora or full), the LoRA settings and
    the micro-batch size, from the `finetune` block."""
    finetune = config["finetune"]
    return {
        "method": finetune.get("method", "lora"),
        "lora": dict(finetune.get("lora") or {}),
        "micro_batch_tokens": finetune.get("micro_batch_tokens"),
    }


def check_open_weights(config: dict, error: type[Exception] = ValueError) -> None:
    """What the schema cannot say about open-weight generators; `error` is the study's
    ConfigError. Runs before any job, so a missing extra stops the study at once."""
    names = open_weights_generators(config)
    if not names:
        return
    missing = missing_extra()
    if missing:
        raise error(
            f"generators.{names[0]}.backend: {BACKEND} generators need the `{EXTRA}` extra "
            f"({', '.join(missing)} not installed): {INSTALL}"
        )
    for name in names:
        generator = config["generators"][name]
        model = str(generator["model"])
        if not is_local_path(model) and not generator.get("revision"):
            raise error(
                f"generators.{name}.revision: {model} is a hub id; pin the commit (or tag) its "
                "weights are read at, so that the study reads the same model everywhere"
            )
