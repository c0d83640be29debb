"""Footprint of the open-weight arm: GPU memory, time and disk of fine-tuning a Hugging Face base
(full weights or LoRA) and of its generation, for `regurgitate.study.footprint` and the cluster
profiles' resources.

The arithmetic, per job on one GPU (bf16 autocast), with P parameters, L layers, width h:
- full fine-tuning holds fp32 weights, gradients and two AdamW moments (16 bytes a parameter);
  LoRA holds the frozen base in bf16 (2 bytes a parameter) and the adapters' 16 bytes each;
- activations of a micro-batch: about 34 h bytes per token and layer (bf16, no recomputation;
  Korthikanti et al. 2022), plus its logits in fp32, twice (the loss and its gradient);
- a training token costs 6P FLOPs with full fine-tuning and 4P with LoRA (no weight gradients of
  the base), at GPU_TRAIN_FLOPS;
- decoding is bound by memory bandwidth: each generated token of a batch reads the weights once
  (2P bytes at GPU_BANDWIDTH), and the prompt costs 2P FLOPs a token;
- disk: a LoRA run keeps its adapter (fp32); a full run its fp32 weights (4P bytes), and its
  checkpoint (weights and AdamW moments, 12P bytes) twice while it runs.
On a CPU the same work runs at the CPU's FLOP/s (footprint.CPU_FLOPS times the threads).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from regurgitate.generators.open_weights_settings import BACKEND
from regurgitate.study.config import training_settings

GB = 1e9
PROCESS_BYTES = 2.0 * GB  # Python, torch and transformers loaded
GPU_CONTEXT_BYTES = 1.0 * GB  # the CUDA context and allocator slack
GPU_TRAIN_FLOPS = 5e13  # bf16 at about a third of a 24-80 GB GPU's peak
GPU_BANDWIDTH = 1.0e12  # bytes/s of GPU memory
# What `generate` spends a decoding step on besides reading the weights: a kernel launch or
# more per layer and Python around them (measured about 20-30 ms a step for a 28-layer model).
STEP_OVERHEAD_SECONDS = 0.025
ACTIVATION_BYTES = 34  # per token, layer and unit of width (bf16)
# The shapes of the preset's models (config.json of each), and what unknown models are taken as.
KNOWN = {
    "Qwen/Qwen2.5-1.5B-Instruct": {"parameters": 1.54e9, "layers": 28, "width": 1536,
                                   "vocab": 151936, "intermediate": 8960},
    "Qwen/Qwen2.5-0.5B-Instruct": {"parameters": 0.49e9, "layers": 24, "width": 896,
                                   "vocab": 151936, "intermediate": 4864},
    "Helsinki-NLP/opus-mt-de-en": {"parameters": 74e6, "layers": 12, "width": 512,
                                   "vocab": 58101, "intermediate": 2048},
    "facebook/nllb-200-distilled-600M": {"parameters": 615e6, "layers": 24, "width": 1024,
                                         "vocab": 256206, "intermediate": 4096},
}  # fmt: skip
PROMPT_TOKENS = 60  # a causal model's chat template and instruction, around the source
PIECES_PER_WORD = 1.4


def shape(generator: dict) -> dict:
    """Parameters, layers, width and vocabulary of a generator's model: the preset's known
    models, a local folder's config.json, else `parameters` (or 1B) with a typical shape."""
    model = str(generator["model"])
    if model in KNOWN:
        found = dict(KNOWN[model])
    else:
        found = {}
        config = Path(model).expanduser() / "config.json"
        if config.is_file():
            c = json.loads(config.read_text())
            width = c.get("hidden_size") or c.get("d_model") or 1024
            layers = c.get("num_hidden_layers") or (
                c.get("encoder_layers", 0) + c.get("decoder_layers", 0)
            )
            inter = c.get("intermediate_size") or c.get("decoder_ffn_dim") or 4 * width
            vocab = c.get("vocab_size", 32000)
            found = {"layers": layers or 1, "width": width, "vocab": vocab, "intermediate": inter}
            found["parameters"] = layers * (4 * width * width + 3 * width * inter) + vocab * width
    parameters = generator.get("parameters") or found.get("parameters") or 1e9
    layers = found.get("layers") or 24
    width = found.get("width") or int(math.sqrt(parameters / (12 * layers)))
    return {
        "parameters": float(parameters),
        "layers": layers,
        "width": width,
        "vocab": found.get("vocab") or 32000,
        "intermediate": found.get("intermediate") or 4 * width,
    }


def lora_parameters(model: dict, lora: dict) -> float:
    """Adapter parameters: r (in + out) for each adapted linear layer, all seven of a decoder
    layer (attention and MLP) with `all-linear`, else the named ones (taken as width x width)."""
    r, h, inter = lora.get("r", 16), model["width"], model["intermediate"]
    modules = lora.get("target_modules", "all-linear")
    # all seven linear layers of a decoder layer, else the named ones (taken as width x width)
    every = 4 * (h + h) + 3 * (h + inter)
    per_layer = every if modules == "all-linear" else len(modules) * 2 * h
    return r * per_layer * model["layers"]


def words(scale) -> float:
    return scale.words * PIECES_PER_WORD


def finetuning(scale, size: int, kept: bool | None = None):
    """One E1 run (or recursion generation, whose model is `kept`) on `size` pairs. An E1 run's
    model is temporary unless `keep_student_models`: it counts as scratch, not as kept."""
    from regurgitate.study.footprint import Estimate

    config = scale.config
    settings = config["finetune"]
    generator = config["generators"][settings["base"]]
    model = shape(generator)
    p = model["parameters"]
    training = training_settings(config, settings.get("training"))
    lora = settings.get("method", "lora") == "lora"
    target = words(scale) + 1
    tokens_per_pair = target * 2 + PROMPT_TOKENS
    per_epoch = math.ceil(size * target / training["max_tokens"])
    steps = min(training["max_steps"], training["max_epochs"] * per_epoch)
    seen = steps * training["max_tokens"] * tokens_per_pair / target
    flops = (4.0 if lora else 6.0) * p * seen
    micro = settings.get("micro_batch_tokens") or training["max_tokens"] * tokens_per_pair / target
    activations = ACTIVATION_BYTES * model["width"] * model["layers"] * micro
    logits = 2 * 4.0 * micro * model["vocab"]
    adapter = lora_parameters(model, settings.get("lora") or {}) if lora else 0.0
    weights = 2.0 * p + 16.0 * adapter if lora else 16.0 * p
    device = GPU_CONTEXT_BYTES + weights + activations + logits
    gpu = scale.train_on.gpu
    evaluations = (steps // training["eval_every"] + 1) if settings.get("select") == "best" else 0
    dev = evaluations * _decode_seconds(scale, generator, model, training["eval_sentences"])
    model_bytes = 4.0 * adapter if lora else 4.0 * p
    if kept is None:
        kept = bool(config.get("keep_student_models", False))
    checkpoint = 12.0 * (adapter if lora else p)
    return Estimate(
        seconds=flops / (GPU_TRAIN_FLOPS if gpu else scale.train_on.train_flops) + dev,
        memory=PROCESS_BYTES + (2.0 * p if gpu else device),
        gpu_memory=device if gpu else 0.0,
        kept=model_bytes if kept else 0.0,
        scratch=2 * checkpoint + (0.0 if kept else 2 * model_bytes),
    )


def _decode_seconds(scale, generator: dict, model: dict, rows: int) -> float:
    p = model["parameters"]
    decoding = generator.get("decoding") or {}
    batch = decoding.get("batch_size", 16)
    beam = decoding.get("beam", 1)
    new = min(decoding.get("max_new_tokens", 256), 2 * (words(scale) + 1))
    prompt = words(scale) + 1 + PROMPT_TOKENS
    if scale.decode_on.gpu:
        steps = math.ceil(rows / batch) * new
        per_step = 2.0 * p / GPU_BANDWIDTH + STEP_OVERHEAD_SECONDS
        return steps * per_step + rows * prompt * 2.0 * p / GPU_TRAIN_FLOPS
    return rows * (prompt + beam * new) * 2.0 * p / scale.decode_on.decode_flops


def generation(scale, generator_name: str, pool: str | int):
    """A generator (or a run fine-tuned from it) translating a pool, or `pool` rows."""
    from regurgitate.study.footprint import Estimate

    generator = scale.config["generators"][generator_name]
    model = shape(generator)
    p = model["parameters"]
    rows = pool if isinstance(pool, int) else scale.rows(pool)
    decoding = generator.get("decoding") or {}
    tokens = (
        decoding.get("batch_size", 16)
        * decoding.get("beam", 1)
        * (words(scale) + 1 + PROMPT_TOKENS + decoding.get("max_new_tokens", 256))
    )
    # the KV cache (2 x layers x width, bf16) and the last step's logits
    working = tokens * 4.0 * model["layers"] * model["width"] + 4.0 * tokens * model["vocab"] / 8
    device = GPU_CONTEXT_BYTES + 2.0 * p + working
    gpu = scale.decode_on.gpu
    return Estimate(
        seconds=_decode_seconds(scale, generator, model, rows),
        memory=PROCESS_BYTES + (2.0 * p if gpu else 4.0 * p + working),
        gpu_memory=device if gpu else 0.0,
    )


def is_base(config: dict) -> bool:
    """Whether E1 fine-tunes an open-weight base (whose jobs `jobs` estimates)."""
    finetune = config.get("finetune")
    return bool(finetune) and config["generators"][finetune["base"]]["backend"] == BACKEND


def jobs(scale):
    """The open-weight jobs of a study, as (rule, estimate), beside footprint.Scale.jobs's:
    every huggingface generator's synthetic data and test scores, and (with an open-weight base)
    every E1 run and recursion generation with its test translation."""
    from regurgitate.study.config import experiment_runs, recursion_runs

    config = scale.config
    for name, generator in config["generators"].items():
        if generator["backend"] == BACKEND:
            yield "generate_synthetic", generation(scale, name, "student")
            yield "evaluate_open_weights_generator", generation(scale, name, "test")
    if not is_base(config):
        return
    base = config["finetune"]["base"]
    for _, size, _ in experiment_runs(config, "finetune"):
        yield "finetune_open_weights", finetuning(scale, size)
        yield "evaluate_open_weights_run", generation(scale, base, "test")
    recursion = config.get("recursion") or {}
    if recursion.get("experiment") == "finetune":
        for _, generation_, size, _ in recursion_runs(config):
            rows = size * (generation_ + 1)
            yield "train_recursion_open_weights", finetuning(scale, rows, kept=True)
            yield "translate_recursion_open_weights", generation(scale, base, size)
            yield "evaluate_recursion_open_weights", generation(scale, base, "test")
