"""Open-weight generators through Hugging Face `transformers`: a causal instruct model (its chat
template, the API generators' prompt and answer cleaning) or a sequence-to-sequence translation
model (Marian opus-mt, NLLB, M2M with their language codes).

Sources are encoded once, sorted by length and cut into batches, so that a batch pads to about
its own length; decoding is greedy or beam search as configured, which makes every run give the
same translations. Only the model's special tokens come from its `generation_config`: sampling
defaults that a hub model ships (temperature, top-p, repetition penalty) are not applied.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from regurgitate.engine.progress import Progress, fraction, time_left
from regurgitate.generators.base import Generation
from regurgitate.generators.cleaning import clean_output, output_flags
from regurgitate.generators.open_weights_settings import (
    BACKEND,
    OpenWeightsSettings,
    require_extra,
)

log = logging.getLogger(__name__)
ADAPTER_CONFIG = "adapter_config.json"


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 on a CUDA GPU that supports it; fp32 on the CPU, where bf16 generation is slower on
    most processors and rounds the translations differently."""
    if precision == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    return precision == "bf16"


@dataclass
class Loaded:
    model: object
    tokenizer: object
    seq2seq: bool
    settings: OpenWeightsSettings
    device: torch.device


def load_tokenizer(settings: OpenWeightsSettings, path: Path, seq2seq: bool):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # A causal model continues the prompt where it ends: pads go to the left.
    tokenizer.padding_side = "right" if seq2seq else "left"
    if settings.source_lang and hasattr(tokenizer, "src_lang"):
        tokenizer.src_lang = settings.source_lang
    return tokenizer


def load(
    settings: OpenWeightsSettings,
    device: torch.device,
    weights: Path | None = None,
    dtype: torch.dtype | None = None,
    merge: bool = True,
) -> Loaded:
    """The model and tokenizer of a generator; `weights` is a fine-tuned run's folder (a LoRA
    adapter over the base, or full weights), merged into the base for decoding unless `merge`
    is off. `dtype` defaults to bf16 where `use_bf16` says, else fp32."""
    require_extra(settings.name)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    base = settings.model_dir()
    config = AutoConfig.from_pretrained(base, local_files_only=True)
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    if dtype is None:
        dtype = torch.bfloat16 if use_bf16(settings.precision, device) else torch.float32
    cls = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    adapter = weights is not None and (Path(weights) / ADAPTER_CONFIG).is_file()
    source = base if weights is None or adapter else Path(weights)
    model = cls.from_pretrained(source, dtype=dtype, local_files_only=True)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, weights, is_trainable=False)
        if merge:
            model = model.merge_and_unload()
    model.to(device).eval()
    tokenizer = load_tokenizer(settings, base, seq2seq)
    return Loaded(model, tokenizer, seq2seq, settings, device)


def chat_text(tokenizer, prompt, source: str, answer: str | None = None) -> str:
    """The chat as the model's template writes it: the prompt's system and user turns, then the
    assistant's turn (opened for generation, or holding `answer`). A template without a system
    role gets the system text at the head of the user turn."""
    system, user = prompt.messages(source)
    turns = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    if answer is not None:
        turns.append({"role": "assistant", "content": answer})
    options = {"tokenize": False, "add_generation_prompt": answer is None}
    try:
        return tokenizer.apply_chat_template(turns, **options)
    except Exception as err:  # jinja's TemplateError: "System role not supported"
        if "system" not in str(err).lower():
            raise
        merged = [{"role": "user", "content": f"{system}\n\n{user}"}, *turns[2:]]
        return tokenizer.apply_chat_template(merged, **options)


def encode_sources(loaded: Loaded, sources: list[str]) -> list[list[int]]:
    tokenizer, limit = loaded.tokenizer, loaded.settings.max_length
    if loaded.seq2seq:
        ids = tokenizer(sources, truncation=True, max_length=limit)["input_ids"]
    else:
        texts = [chat_text(tokenizer, loaded.settings.prompt, s) for s in sources]
        # The template holds the special tokens it needs.
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        ids = [row[-limit:] for row in ids]  # a cut keeps the turn that asks for the answer
    return ids


def generation_config(loaded: Loaded):
    from transformers import GenerationConfig

    settings, model, tokenizer = loaded.settings, loaded.model, loaded.tokenizer
    own = model.generation_config
    decoding = settings.decoding
    options = {
        "do_sample": False,
        "num_beams": decoding.beam,
        "max_new_tokens": decoding.max_new_tokens,
        "length_penalty": decoding.length_penalty,
        "eos_token_id": own.eos_token_id
        if own.eos_token_id is not None
        else tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": own.bos_token_id,
        "decoder_start_token_id": own.decoder_start_token_id,
        "return_dict_in_generate": True,
        "output_scores": True,
    }
    if loaded.seq2seq and settings.target_lang:
        # NLLB names its languages by token (eng_Latn), M2M by code (en) through get_lang_id.
        if hasattr(tokenizer, "get_lang_id"):
            options["forced_bos_token_id"] = tokenizer.get_lang_id(settings.target_lang)
        else:
            options["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(settings.target_lang)
    elif own.forced_bos_token_id is not None:
        options["forced_bos_token_id"] = own.forced_bos_token_id
    return GenerationConfig(**options)


@dataclass
class Hypothesis:
    ids: list[int]  # generated tokens, up to (not including) the end of sequence
    logprob: float  # of the generated tokens, end of sequence included
    finished: bool


def eos_ids(config) -> set[int]:
    eos = config.eos_token_id
    return set(eos if isinstance(eos, list) else [eos])


@torch.inference_mode()
def generate(loaded: Loaded, ids: list[list[int]], progress: str | None = None) -> list[Hypothesis]:
    """Decode every encoded source, in batches of sources of about one length (longest first,
    so that a batch too large for the device fails at once)."""
    tokenizer, model = loaded.tokenizer, loaded.model
    config = generation_config(loaded)
    stop = eos_ids(config)
    order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))
    size = loaded.settings.decoding.batch_size
    results: list[Hypothesis | None] = [None] * len(ids)
    bar = tqdm(total=len(ids), desc=progress, unit="row", disable=progress is None)
    # The time left counts prompt tokens, not sources: batches come longest first.
    pace, done, work_done, next_report = Progress(sum(map(len, ids))), 0, 0, 0.1
    for start in range(0, len(order), size):
        batch = order[start : start + size]
        inputs = tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt")
        inputs = {k: v.to(loaded.device) for k, v in inputs.items()}
        out = model.generate(**inputs, generation_config=config)
        prompt_length = 0 if loaded.seq2seq else inputs["input_ids"].shape[1]
        new = out.sequences[:, prompt_length:]
        if loaded.seq2seq:
            new = new[:, 1:]  # the decoder's start token
        beams = out.beam_indices if config.num_beams > 1 else None
        scores = model.compute_transition_scores(
            out.sequences, out.scores, beams, normalize_logits=config.num_beams == 1
        )
        scores = scores[:, -new.shape[1] :] if new.shape[1] else scores[:, :0]
        for row, index in enumerate(batch):
            tokens, logprob, finished = [], 0.0, False
            for token, value in zip(new[row].tolist(), scores[row].tolist(), strict=True):
                logprob += value
                if token in stop:
                    finished = True
                    break
                tokens.append(token)
            results[index] = Hypothesis(tokens, logprob, finished)
        bar.update(len(batch))
        done += len(batch)
        work_done += sum(len(ids[i]) for i in batch)
        if progress and done / len(ids) >= next_report:
            log.info(
                "%s: sources %s, %s",
                progress,
                fraction(done, len(ids)),
                time_left(pace.seconds_left(work_done)),
            )
            next_report += 0.1
    bar.close()
    return results


class OpenWeightsGenerator:
    """A `Generator` over a Hugging Face model (a base from the hub or a folder, or a run's
    fine-tuned weights over it)."""

    def __init__(
        self,
        settings: OpenWeightsSettings,
        device: torch.device,
        weights: Path | None = None,
        progress: bool = True,
    ):
        self.name = settings.name
        self.settings = settings
        self.loaded = load(settings, device, weights)
        self.progress = progress

    @property
    def model_id(self) -> str:
        revision = f"@{self.settings.revision}" if self.settings.revision else ""
        return f"{self.settings.model}{revision}"

    def translate(self, sources: list[str]) -> list[Generation]:
        loaded = self.loaded
        ids = encode_sources(loaded, sources)
        log.info(
            "%s: %d sources, %s %s, %s decoding (beam %d), batches of %d",
            self.name, len(sources), "seq2seq" if loaded.seq2seq else "causal", self.model_id,
            loaded.device, self.settings.decoding.beam, self.settings.decoding.batch_size,
        )  # fmt: skip
        hypotheses = generate(loaded, ids, self.name if self.progress else None)
        rows = [
            to_generation(loaded, source, hypothesis, len(prompt))
            for source, hypothesis, prompt in zip(sources, hypotheses, ids, strict=True)
        ]
        flags = Counter(flag for row in rows for flag in row.flags)
        if flags:
            log.warning("%s: flagged rows (kept, see the flags column): %s", self.name, dict(flags))
        return rows


def to_generation(loaded: Loaded, source: str, hypothesis: Hypothesis, prompt_tokens: int):
    """A hypothesis as a row of the synthetic-data table: a causal model's answer cleaned and
    flagged as an API model's is; a translation model's text as it is, on one line."""
    raw = loaded.tokenizer.decode(hypothesis.ids, skip_special_tokens=True)
    finish = "stop" if hypothesis.finished else "length"
    if loaded.seq2seq:
        target = " ".join(raw.split())
        flags = ["empty"] * (not target) + ["cut_off"] * (not hypothesis.finished)
    else:
        prompt = loaded.settings.prompt
        target = clean_output(raw, source, prompt)
        flags = output_flags(raw, target, finish, prompt, source)
    return Generation(
        target=target,
        logprob=hypothesis.logprob,
        tokens=len(hypothesis.ids),
        cost=0.0,
        finish_reason=finish,
        input_tokens=prompt_tokens,
        flags=flags,
    )


__all__ = ["BACKEND", "OpenWeightsGenerator", "generate", "load"]
