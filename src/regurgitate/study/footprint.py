"""What a study needs of a cluster, from its configuration alone: each heavy job's time and
memory, the device-hours of every rule, and the disk its results take, before anything runs.

    python -m regurgitate.study.footprint --configfile config/paper.yaml

The workflow asks the executor for the same runtime and memory (`workflow/rules/common.smk`),
so what this prints is what a cluster is asked for. Training and decoding time is work over
speed: floating-point operations from the model's parameters, the batch budget and the steps,
divided by the effective FLOP/s of one job (`resources.train_flops`, `resources.decode_flops`;
by default what one thread of the development CPU reaches, see `CPU_FLOPS`). Training time is
an upper bound: `max_steps` or `max_epochs`, whichever ends first; early stopping ends sooner,
and the expected time counts where patience typically ends it (`expected_training_steps`).
Sentence lengths are not in the configuration: `--words` (25, Europarl's mean) sets them.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from regurgitate.study import open_weights_footprint
from regurgitate.study.config import (
    decoding_settings,
    experiment_runs,
    experiments,
    finetune_through_api,
    recursion_architecture,
    recursion_runs,
    recursion_training,
    student_architecture,
    training_settings,
)
from regurgitate.study.vocabulary import ACCUMULATE, FINETUNE

MB = 1e6  # decimal, as Snakemake's mem_mb
GB = 1e9

# Words of an average sentence (Europarl v7 de-en: about 25) and SentencePiece pieces per word
# (a 16k joint unigram model splits German and English words into about 1.4).
WORDS_PER_SENTENCE = 25.0
PIECES_PER_WORD = 1.4
# Bytes one row of a pool, curriculum or synthetic table takes on disk (two sentences of about
# 6 bytes a word plus ids and scores, Parquet-compressed about twofold), and one line of a
# hypothesis file.
BYTES_PER_WORD = 6.0
# Effective FLOP/s of one job on one thread of the development CPU (AMD EPYC Zen 4). BENCHMARKS.md:
# the CPU preset's `small` model trains at 1,910 (fp32) to 3,290 (bf16) target tokens/s, 33 to
# 56 GFLOP/s by `training_flops_per_token`, and decodes 44 to 80 sentences/s at beam 4 on a loaded
# machine, 15 to 26 GFLOP/s by `decoding_flops` at Multi30k's 12 words a sentence. A GPU reaches
# far more: measure it (a training log's "target tokens/s" times `training_flops_per_token`) and
# set `resources.train_flops` and `resources.decode_flops`.
CPU_FLOPS = {"train": 3.0e10, "decode": 1.5e10}
# Where a study runs on a CUDA device of no known model (`resources.gpu_model` unset or not in
# GPU_PEAK_TFLOPS) and does not set them: an assumption, not a measurement.
GPU_FLOPS = {"train": 2.0e13, "decode": 2.0e12}
# Dense (no sparsity) peak TFLOP/s of NVIDIA GPUs by model: (bf16, TF32, fp32), bf16 and TF32
# None where the GPU has no tensor cores for them (before Ampere: bf16 is emulated there, so
# `precision: auto` trains in fp32). From NVIDIA's datasheets: A100 (2020, the same peaks for
# PCIe and SXM4), H100 (SXM5, PCIe and NVL, 2023), H200 (2024, H100 SXM's compute), L40S (2023),
# L4 (2023), A10 (2021), V100 (SXM2 and PCIe, 2020), T4 (2019), and the Ada and Ampere GeForce
# whitepapers (RTX 4090: bf16 with fp32 accumulation; RTX 3090 likewise). A10G (AWS G5) has no
# public datasheet: the figures commonly quoted for it, lower than the A10's.
GPU_PEAK_TFLOPS = {
    "A100 SXM": (312.0, 156.0, 19.5),
    "A100 PCIe": (312.0, 156.0, 19.5),
    "H100 SXM": (989.0, 495.0, 67.0),
    "H100 PCIe": (756.0, 378.0, 51.0),
    "H100 NVL": (835.0, 418.0, 60.0),
    "H200": (989.0, 495.0, 67.0),
    "L40S": (362.0, 183.0, 91.6),
    "L4": (121.0, 60.0, 30.3),
    "A10G": (70.0, 35.0, 31.2),
    "A10": (125.0, 62.5, 31.2),
    "V100 SXM": (None, None, 15.7),
    "V100 PCIe": (None, None, 14.0),
    "T4": (None, None, 8.1),
    "RTX 4090": (165.2, 82.6, 82.6),
    "RTX 3090": (71.0, 35.6, 35.6),
}
# The share of the peak a job reaches: an assumption, stated once (no GPU was available to this
# work to measure it). Training a Transformer-base on 8k-token batches of short sentences: a
# quarter of the peak (the matmuls are small, d_model 512, and layer norms, softmax and the
# optimizer run off the tensor cores). Beam search: a hundredth (one position a step, so kernel
# launches and host work, not FLOPs, set its pace).
TRAIN_PEAK_FRACTION = 0.25
DECODE_PEAK_FRACTION = 0.01
# API generators: a batch interface answers within a day; single requests take about a second
# each unless `requests_per_minute` limits them to fewer.
BATCH_SECONDS = 24 * 3600.0
# What a worker process holds before its model: Python, torch, the pools and the tokenizer.
PROCESS_BYTES = 1.0 * GB
# Floats a training step keeps per token and layer for the backward pass, in units of d_model
# and ffn_dim (the decoder adds cross-attention and its memory's keys and values), and per target
# position and vocabulary entry for the output projection (logits, their float copy,
# log-softmax, gradients). Fitted to the peak RSS of fp32 training steps of paper.yaml's `small`
# and `base` architectures (16k vocabulary) at 1,024 to 8,192 tokens on the development CPU:
# within 10% of each.
ENCODER_ACTIVATIONS = (20, 5)
DECODER_ACTIVATIONS = (30, 5)
LOGIT_COPIES = 5
# The same under bf16 autocast on a GPU, in bytes, not measured but counted from what autograd
# keeps: the residual stream and layer-norm inputs stay fp32 (4 bytes), matmul inputs and
# outputs saved for the backward pass are bf16 (2), dropout masks 1 byte; per d_model about 22
# bytes in an encoder layer (q, k, v and the attention output for the fused kernel, two
# layer-norm inputs and outputs, two masks) and 35 in a decoder layer (cross-attention besides),
# per ffn_dim 5 (the hidden layer's input and output in bf16, its mask). Logits: the bf16
# projection, its fp32 copy, log-softmax and two gradients, 16 bytes a position and entry.
ENCODER_BF16_BYTES = (22, 5)
DECODER_BF16_BYTES = (35, 5)
LOGIT_BF16_BYTES = 16
# Autocast keeps a bf16 copy of the weights it casts during a step.
AUTOCAST_WEIGHT_BYTES = 2
# SentencePiece's peak memory per character of the sentences it trains on (unigram, measured on
# 58k and 232k Multi30k sentences: 24 bytes a character).
SENTENCEPIECE_BYTES_PER_CHAR = 24
# Bytes per parameter: fp32 weights; in training also their gradients, AdamW's two moments and
# the best weights so far, which the checkpoint holds too (weights, moments, best).
WEIGHT_BYTES = 4
TRAINING_BYTES = 20
CHECKPOINT_BYTES = 16
# Asked of the executor beyond the estimate: time for start-up, data and the unforeseen, and
# memory for the allocator's slack.
RUNTIME_MARGIN = 1.5
RUNTIME_FLOOR_MINUTES = 10
# `resources.max_runtime` where a configuration does not set it (the schema's default): a day,
# which most partitions allow.
MAX_RUNTIME = 1440
MEMORY_MARGIN = 1.3
MEMORY_STEP_MB = 500


@dataclass(frozen=True)
class Shape:
    """Parameter counts of a Transformer of the engine, by the part that does the work."""

    encoder: int
    decoder: int
    embedding: int  # the joint embedding, which is also the output projection

    @property
    def total(self) -> int:
        return self.encoder + self.decoder + self.embedding

    @property
    def file_bytes(self) -> int:
        """A model file: every weight in fp32 (save_model stores the state dict)."""
        return WEIGHT_BYTES * self.total


@cache
def _shape(architecture: tuple, vocab_size: int) -> Shape:
    # The engine's own model, built without memory, so that a change of the architecture
    # changes the estimate too. torch is imported when a model is first sized, not when the
    # workflow imports this module to parse its rules.
    import torch

    from regurgitate.engine.model import ModelConfig, Transformer

    with torch.device("meta"):
        model = Transformer(ModelConfig(vocab_size=vocab_size, **dict(architecture)))

    def count(*modules) -> int:
        return sum(p.numel() for m in modules for p in m.parameters())

    return Shape(
        encoder=count(model.encoder, model.encoder_norm),
        decoder=count(model.decoder, model.decoder_norm),
        embedding=count(model.embed),
    )


def shape(architecture: dict, vocab_size: int) -> Shape:
    return _shape(tuple(sorted(architecture.items())), vocab_size)


@dataclass(frozen=True)
class Machine:
    """What one job runs on: a GPU or CPU threads, the FLOP/s it reaches there, and whether
    it trains in bf16 autocast (which sets its GPU memory)."""

    gpu: bool
    train_flops: float
    decode_flops: float
    bf16: bool = False
    name: str = ""  # the GPU model of GPU_PEAK_TFLOPS, or what the speed rests on


def gpu_model(name: str | None) -> str | None:
    """The GPU_PEAK_TFLOPS entry of a device or model name: torch's device name ("NVIDIA H100
    PCIe", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "Tesla V100-PCIE-16GB") or a
    cluster's model name (`resources.gpu_model`: "a100", "h100_sxm"). A name that says
    neither PCIe nor SXM (a cluster's "h100") is taken for the slower PCIe card, so that
    runtimes asked for are not too short. None for an unknown name."""
    words = re.split(r"[^a-z0-9]+", (name or "").lower())
    joined = "".join(words)
    if any(w.startswith("sxm") for w in words) or "hbm3" in words:
        form = "SXM"
    else:
        form = "NVL" if "nvl" in words else "PCIe"
    for model in GPU_PEAK_TFLOPS:
        family = model.split()[0].lower()
        if family == "rtx":  # "RTX 4090" is one name, however spelled
            family = model.replace(" ", "").lower()
        if family in words or (family.startswith("rtx") and family in joined):
            with_form = f"{model.split()[0]} {form}"
            return with_form if with_form in GPU_PEAK_TFLOPS else model
    return None


def gpu_machine(config: dict) -> Machine:
    """A GPU job's speed from its model's peak (GPU_PEAK_TFLOPS) in the precision it trains
    in: bf16 where native under `precision: auto` or `bf16`, else fp32 matmuls on TF32 cores
    unless `training.strict_fp32` (decoding keeps fp32 matmuls strict)."""
    model = gpu_model(config.get("resources", {}).get("gpu_model"))
    if model is None:
        return Machine(True, GPU_FLOPS["train"], GPU_FLOPS["decode"], True, "an unknown GPU")
    bf16_peak, tf32_peak, fp32_peak = GPU_PEAK_TFLOPS[model]
    training = config.get("training", {})
    bf16 = training.get("precision", "auto") != "fp32" and bf16_peak is not None
    strict = training.get("strict_fp32", False)
    train_peak = bf16_peak if bf16 else (tf32_peak if tf32_peak and not strict else fp32_peak)
    decode_peak = bf16_peak if bf16 else fp32_peak
    return Machine(
        gpu=True,
        train_flops=TRAIN_PEAK_FRACTION * train_peak * 1e12,
        decode_flops=DECODE_PEAK_FRACTION * decode_peak * 1e12,
        bf16=bf16,
        name=model,
    )


def machine(config: dict, threads: int = 1) -> Machine:
    resources = config.get("resources", {})
    if gpus(config) > 0:
        where = gpu_machine(config)
    else:
        where = Machine(
            False,
            CPU_FLOPS["train"] * threads,
            CPU_FLOPS["decode"] * threads,
            name="the development CPU's speed, assumed: --measure measures this machine's",
        )
    given = resources.get("train_flops") is not None
    return Machine(
        gpu=where.gpu,
        train_flops=resources.get("train_flops") or where.train_flops,
        decode_flops=resources.get("decode_flops") or where.decode_flops,
        bf16=where.bf16,
        name=resources.get("speed_source") or ("resources.train_flops" if given else where.name),
    )


def gpus(config: dict) -> int:
    """GPUs one training or decoding job asks for: `resources.gpu`, else one where the study
    runs on a CUDA device and none where it runs on the CPU (`auto` asks for none: it takes a
    GPU only where the executor gives one)."""
    configured = config.get("resources", {}).get("gpu")
    if configured is not None:
        return configured
    return 1 if config.get("device", "auto").startswith("cuda") else 0


@dataclass(frozen=True)
class Estimate:
    """One job: seconds, the host memory it peaks at, the GPU memory it needs (0 on a CPU), the
    bytes it leaves (`kept`) and those it holds only while it runs (`scratch`)."""

    seconds: float
    memory: float
    gpu_memory: float = 0.0
    kept: float = 0.0
    scratch: float = 0.0
    # Where patience typically ends it (None: `seconds`, a job that runs its whole budget).
    expected_seconds: float | None = None

    @property
    def expected(self) -> float:
        return self.seconds if self.expected_seconds is None else self.expected_seconds


def pieces(words: float) -> float:
    """Target pieces of a sentence, end of sentence included."""
    return words * PIECES_PER_WORD + 1


def training_flops_per_token(model: Shape) -> float:
    """Forward and backward (3 x 2 FLOPs per parameter and token) through the encoder for the
    source, the decoder for the target and the output projection; sources about as long as
    targets."""
    return 6.0 * model.total


def decoding_flops(model: Shape, beam: int, words: float) -> float:
    """One sentence: its source through the encoder once, each target piece through the decoder
    and the output projection for every beam."""
    return 2.0 * pieces(words) * (model.encoder + beam * (model.decoder + model.embedding))


def training_steps(training: dict, rows: int, words: float) -> int:
    """Steps until max_steps or max_epochs, whichever comes first."""
    per_epoch = math.ceil(rows * pieces(words) / training["max_tokens"])
    return min(training["max_steps"], training["max_epochs"] * per_epoch)


# Where patience stops a training that keeps its best weights: its best dev score came after
# about 1 / lr steps (the peak learning rate; steps of 2,048 target tokens, inverse-square-root
# decay) in the development runs of benchmarks/plateau_check.py: 500 steps for students at lr
# 0.002 on 2,000 and 4,000 pairs, 700 to 1,000 for generators at lr 0.001 on 3,000 to 5,900
# pairs. Then it trains `patience` evaluations more. An estimate of the usual, not a bound: the
# bound is max_steps.
PLATEAU_LR_STEPS = 1.0


def expected_training_steps(training: dict, rows: int, words: float, select: str) -> int:
    """The steps a training is expected to take: all of its budget with `select: last`, else
    to its plateau (PLATEAU_LR_STEPS / lr) and `patience` evaluations beyond, at most the
    budget."""
    budget = training_steps(training, rows, words)
    if select != "best":
        return budget
    plateau = PLATEAU_LR_STEPS / training["lr"]
    return min(budget, round(plateau) + training["patience"] * training["eval_every"])


def activation_bytes(architecture: dict, tokens: float, bf16: bool = False) -> float:
    """What a training step keeps for its backward pass: fp32 floats (fitted on the CPU), or
    the bytes bf16 autocast keeps."""
    d, ffn = architecture["d_model"], architecture["ffn_dim"]
    encoder, decoder, size = (
        (ENCODER_BF16_BYTES, DECODER_BF16_BYTES, 1.0)
        if bf16
        else (ENCODER_ACTIVATIONS, DECODER_ACTIVATIONS, 4.0)
    )
    per_token = architecture["encoder_layers"] * (encoder[0] * d + encoder[1] * ffn) + architecture[
        "decoder_layers"
    ] * (decoder[0] * d + decoder[1] * ffn)
    return size * per_token * tokens


def training(
    architecture: dict,
    vocab_size: int,
    settings: dict,
    rows: int,
    where: Machine,
    words: float,
    select: str = "best",
) -> Estimate:
    """A model trained on `rows` pairs: steps of `max_tokens` target tokens, plus a dev
    evaluation (beam 1) of `eval_sentences` every `eval_every` steps; its whole budget, and
    where it is expected to stop (expected_training_steps)."""
    model = shape(architecture, vocab_size)

    def seconds(steps: int) -> float:
        work = steps * settings["max_tokens"] * training_flops_per_token(model)
        evaluations = steps // settings["eval_every"] + 1
        work_dev = evaluations * settings["eval_sentences"] * decoding_flops(model, 1, words)
        return work / where.train_flops + work_dev / where.decode_flops

    tokens = settings["max_tokens"]
    if where.bf16:
        device_bytes = (
            (TRAINING_BYTES + AUTOCAST_WEIGHT_BYTES) * model.total
            + activation_bytes(architecture, tokens, bf16=True)
            + LOGIT_BF16_BYTES * tokens * vocab_size
        )
    else:
        device_bytes = (
            TRAINING_BYTES * model.total
            + activation_bytes(architecture, tokens)
            + LOGIT_COPIES * 4.0 * tokens * vocab_size
        )
    host = PROCESS_BYTES + (3 * model.file_bytes if where.gpu else device_bytes)
    return Estimate(
        seconds=seconds(training_steps(settings, rows, words)),
        memory=host,
        gpu_memory=device_bytes if where.gpu else 0.0,
        kept=model.file_bytes,
        # the checkpoint, written next to itself before the old one is replaced
        scratch=2 * CHECKPOINT_BYTES * model.total,
        expected_seconds=seconds(expected_training_steps(settings, rows, words, select)),
    )


def decoding(
    architecture: dict,
    vocab_size: int,
    settings: dict,
    sentences: int,
    where: Machine,
    words: float,
) -> Estimate:
    """Beam search over `sentences` sources in batches of `max_tokens` (rows x longest source x
    beam): the weights, and per layer the cached keys and values of every beam."""
    model = shape(architecture, vocab_size)
    work = sentences * decoding_flops(model, settings["beam"], words)
    layers = architecture["encoder_layers"] + architecture["decoder_layers"]
    cache_bytes = 4.0 * 2 * layers * architecture["d_model"] * settings["max_tokens"]
    logits = 4.0 * settings["max_tokens"] / pieces(words) * vocab_size * settings["beam"]
    device_bytes = model.file_bytes + cache_bytes + logits
    host = PROCESS_BYTES + (2 * model.file_bytes if where.gpu else device_bytes)
    return Estimate(
        seconds=work / where.decode_flops,
        memory=host,
        gpu_memory=device_bytes if where.gpu else 0.0,
        kept=sentences * words * BYTES_PER_WORD,
    )


# Target tokens of one scoring batch (the pair_nll job's `batch_tokens`).
SCORING_BATCH_TOKENS = 8000


def scoring(
    architecture: dict, vocab_size: int, sentences: int, where: Machine, words: float
) -> Estimate:
    """Force-decoded log-likelihoods of `sentences` pairs: one forward pass each, in batches of
    SCORING_BATCH_TOKENS: the weights, the largest layer's output, and the batch's logits
    (those of autocast, their fp32 copy, the per-token losses' log-softmax)."""
    model = shape(architecture, vocab_size)
    work = sentences * pieces(words) * 2.0 * model.total
    tokens = SCORING_BATCH_TOKENS
    widest = max(architecture["ffn_dim"], 3 * architecture["d_model"])
    device_bytes = model.file_bytes + 4.0 * tokens * (2 * widest + 3 * vocab_size)
    host = PROCESS_BYTES + (2 * model.file_bytes if where.gpu else device_bytes)
    return Estimate(
        seconds=work / where.decode_flops,
        memory=host,
        gpu_memory=device_bytes if where.gpu else 0.0,
        kept=sentences * 16.0,
    )


# Pairs a pool of `null` size is taken to hold until the pools exist: Europarl's, an upper bound.
REMAINING = 2_000_000
# What a Multi30k corpus (`corpus.format: multi30k`, task 1) holds: 29,000 training pairs of
# about 11.9 English words (../shared/data/README.md), for --words and --remaining unless given.
MULTI30K_PAIRS, MULTI30K_WORDS = 29_000, 11.9


def corpus_shape(config: dict) -> tuple[float, int]:
    """Words a sentence and pairs left for a pool of `null` size, as far as the configuration
    says: Multi30k's where it names that corpus, else Europarl's (WORDS_PER_SENTENCE,
    REMAINING)."""
    if config["corpus"].get("format") != "multi30k":
        return WORDS_PER_SENTENCE, REMAINING
    sized = sum(rows for rows in config["pools"].values() if rows is not None)
    return MULTI30K_WORDS, max(MULTI30K_PAIRS - sized, 0)


CLEANING_REPORT = Path("results/pools/cleaning.json")
SCHEMA = Path("workflow/schemas/config.schema.yaml")


def pools_made(cleaning_report: Path) -> dict[str, int]:
    """The sizes of the pools prepare_pools wrote (its cleaning report), or none before."""
    if not cleaning_report.exists():
        return {}
    return json.loads(cleaning_report.read_text())["pools"]


# --- the study's jobs -------------------------------------------------------------------------


def pool_rows(config: dict, pool: str, remaining: int) -> int:
    """Pairs in a pool; a pool of `null` holds what remains of the corpus (`remaining`)."""
    rows = config["pools"].get(pool)
    return remaining if rows is None else rows


def local_generators(config: dict) -> list[str]:
    return [g for g, s in config["generators"].items() if s["backend"] == "local"]


def keeps_student_models(config: dict) -> bool:
    return bool(config.get("keep_student_models", False))


class Scale:
    """The estimate of each heavy job of a study, by what names it in the workflow (a
    generator, an experiment and size, a pool). Pools hold what `made` says (the pool sizes of
    results/pools/cleaning.json, once the pools exist), else what the config says, and a `null`
    pool `remaining` pairs (Europarl v7 de-en holds about 1.9M)."""

    def __init__(
        self,
        config: dict,
        words: float = WORDS_PER_SENTENCE,
        remaining: int = REMAINING,
        made: dict[str, int] | None = None,
    ):
        self.config = config
        self.words = words
        self.remaining = remaining
        self.made = made or {}
        self.vocab = config["tokenizer"]["vocab_size"]
        resources = config.get("resources", {})
        self.train_on_threads = resources.get("train_threads", 1)
        self.train_on = machine(config, self.train_on_threads)
        self.decode_on = machine(config, resources.get("decode_threads", 1))

    def rows(self, pool: str) -> int:
        if pool in self.made:
            return self.made[pool]
        return pool_rows(self.config, pool, self.remaining)

    def _architecture(self, name: str) -> dict:
        return self.config["architectures"][name]

    def _generator(self, name: str) -> dict:
        return self.config["generators"][name]

    def tokenizer_training(self) -> Estimate:
        """SentencePiece on at most `tokenizer.max_sentences` of the teacher pool's sentences."""
        sentences = min(self.config["tokenizer"]["max_sentences"], 2 * self.rows("teacher"))
        text = sentences * self.words * BYTES_PER_WORD
        return Estimate(seconds=0.0, memory=PROCESS_BYTES + SENTENCEPIECE_BYTES_PER_CHAR * text)

    def generator_training(self, generator: str) -> Estimate:
        settings = self._generator(generator)
        return training(
            self._architecture(settings["architecture"]),
            self.vocab,
            training_settings(self.config, settings.get("training")),
            settings.get("teacher_pairs") or self.rows("teacher"),
            self.train_on,
            self.words,
        )

    def generator_decoding(self, generator: str, pool: str) -> Estimate:
        """A local generator translating a pool (student, detector or test)."""
        settings = self._generator(generator)
        return decoding(
            self._architecture(settings["architecture"]),
            self.vocab,
            decoding_settings(self.config, settings.get("decoding")),
            self.rows(pool),
            self.decode_on,
            self.words,
        )

    def generation(self, generator: str, pool: str) -> Estimate:
        """A generator's translations of a pool: a local one decodes; an API one waits on its
        requests (or on its batches, which providers answer within a day)."""
        if self._generator(generator)["backend"] == open_weights_footprint.BACKEND:
            return open_weights_footprint.generation(self, generator, pool)
        if generator in local_generators(self.config):
            return self.generator_decoding(generator, pool)
        settings = self._generator(generator)
        if settings.get("batch"):
            return Estimate(seconds=BATCH_SECONDS, memory=PROCESS_BYTES)
        per_minute = settings.get("requests_per_minute") or 60 * settings.get("concurrency", 16)
        return Estimate(seconds=60 * self.rows(pool) / per_minute, memory=PROCESS_BYTES)

    def student_training(self, experiment: str, size: int) -> Estimate:
        settings = training_settings(self.config, self.config[experiment].get("training"))
        architecture = student_architecture(self.config, experiment)
        select = self.config[experiment].get("select", "last" if experiment == FINETUNE else "best")
        return training(architecture, self.vocab, settings, size, self.train_on, self.words, select)

    def student_decoding(self, experiment: str) -> Estimate:
        return decoding(
            student_architecture(self.config, experiment),
            self.vocab,
            decoding_settings(self.config),
            self.rows("test"),
            self.decode_on,
            self.words,
        )

    def _reverse(self) -> dict:
        return self._architecture(self.config["mitigations"]["reverse_architecture"])

    def reverse_training(self) -> Estimate:
        settings = training_settings(
            self.config, self.config["mitigations"].get("reverse_training")
        )
        rows = self.rows("teacher")
        return training(self._reverse(), self.vocab, settings, rows, self.train_on, self.words)

    def back_translation(self) -> Estimate:
        settings = decoding_settings(self.config)
        rows = self.rows("student")
        return decoding(self._reverse(), self.vocab, settings, rows, self.decode_on, self.words)

    def pair_scoring(self, direction: str) -> Estimate:
        """Dual cross-entropy: the forward scorer's or the reverse model's NLL of every pair."""
        mitigations = self.config["mitigations"]
        if direction == "reverse":
            architecture = self._reverse()
        else:
            architecture = self._architecture(
                self._generator(mitigations["forward_scorer"])["architecture"]
            )
        rows = self.rows("student")
        return scoring(architecture, self.vocab, rows, self.decode_on, self.words)

    def recursion_training(self, regime: str, generation: int, size: int) -> Estimate:
        """A local generation of the recursion: `size` pairs, or under `accumulate` the human
        pairs and every earlier generation's translations of the lineage's sources."""
        settings = recursion_training(self.config, seed=1)
        rows = size * (generation + 1) if regime == ACCUMULATE else size
        architecture = recursion_architecture(self.config)
        return training(
            architecture, self.vocab, settings, rows, self.train_on, self.words, settings["select"]
        )

    def recursion_decoding(self, rows: int) -> Estimate:
        """A generation translating its lineage's sources, or the test set."""
        settings = decoding_settings(self.config, self.config["recursion"].get("decoding"))
        architecture = recursion_architecture(self.config)
        return decoding(architecture, self.vocab, settings, rows, self.decode_on, self.words)

    def jobs(self) -> Iterator[tuple[str, Estimate]]:
        """Every model-bearing job of the study, as (rule, estimate)."""
        yield from open_weights_footprint.jobs(self)  # those of huggingface models
        for generator in local_generators(self.config):
            yield "train_generator", self.generator_training(generator)
            yield "generate_synthetic", self.generator_decoding(generator, "student")
            yield "evaluate_generator", self.generator_decoding(generator, "test")
        for experiment in experiments(self.config):
            if experiment == FINETUNE and (
                finetune_through_api(self.config) or open_weights_footprint.is_base(self.config)
            ):
                continue
            for _, size, _ in experiment_runs(self.config, experiment):
                yield "train_student", self.student_training(experiment, size)
                yield "evaluate_run", self.student_decoding(experiment)
        yield from self._mitigation_jobs()
        yield from self._recursion_jobs()

    def _recursion_jobs(self) -> Iterator[tuple[str, Estimate]]:
        """The local generations (an open-weight base's are open_weights_footprint's)."""
        settings = self.config.get("recursion")
        if not settings or (
            settings["experiment"] == FINETUNE and open_weights_footprint.is_base(self.config)
        ):
            return
        for regime, generation, size, _ in recursion_runs(self.config):
            yield "train_recursion", self.recursion_training(regime, generation, size)
            yield "translate_recursion", self.recursion_decoding(size)
            yield "evaluate_recursion", self.recursion_decoding(self.rows("test"))

    def _mitigation_jobs(self) -> Iterator[tuple[str, Estimate]]:
        settings = self.config.get("mitigations") or {}
        generators = settings.get("generators", [])
        metrics = set(settings.get("metrics", []))
        if settings.get("detector", True):
            for generator in set(generators) & set(local_generators(self.config)):
                yield "generate_detector_pool", self.generator_decoding(generator, "detector")
        if not generators or not metrics & {"round_trip", "dual_cross_entropy"}:
            return
        yield "train_reverse", self.reverse_training()
        for _ in generators:
            if "round_trip" in metrics:
                yield "back_translate", self.back_translation()
            if "dual_cross_entropy" in metrics:
                yield "pair_nll", self.pair_scoring("forward")
                yield "pair_nll", self.pair_scoring("reverse")


@dataclass
class Rule:
    """The jobs of one rule: how many, their sums, and the longest one's estimate."""

    name: str
    jobs: int = 0
    largest: Estimate = field(default_factory=lambda: Estimate(0.0, 0.0))
    seconds: float = 0.0
    expected_seconds: float = 0.0
    kept: float = 0.0
    temporary: bool = False  # its kept output is removed once read (temp() in the workflow)

    def add(self, estimate: Estimate) -> None:
        self.jobs += 1
        self.seconds += estimate.seconds
        self.expected_seconds += estimate.expected
        self.kept += estimate.kept
        if estimate.seconds >= self.largest.seconds:
            self.largest = estimate


def study(scale: Scale) -> dict[str, Rule]:
    """The study's model-bearing jobs by rule."""
    rules: dict[str, Rule] = {}
    for rule, estimate in scale.jobs():
        rules.setdefault(rule, Rule(rule)).add(estimate)
    if "train_student" in rules:
        rules["train_student"].temporary = not keeps_student_models(scale.config)
    return rules


# --- what the executor is asked for ------------------------------------------------------------


def runtime_minutes(estimate: Estimate, config: dict) -> int:
    """The time limit of a job: the estimate with a margin, in whole 10 minutes, at most
    `resources.max_runtime` (a training job stopped there resumes from its checkpoint when the
    executor runs it again)."""
    minutes = RUNTIME_FLOOR_MINUTES + RUNTIME_MARGIN * estimate.seconds / 60
    minutes = 10 * math.ceil(minutes / 10)
    cap = config.get("resources", {}).get("max_runtime", MAX_RUNTIME)
    return min(minutes, cap) if cap else minutes


def memory_mb(estimate: Estimate) -> int:
    """Host memory of a job, with a margin, in whole steps of 500 MB."""
    mb = MEMORY_MARGIN * estimate.memory / MB
    return MEMORY_STEP_MB * math.ceil(mb / MEMORY_STEP_MB)


# --- disk -------------------------------------------------------------------------------------


def data_bytes(scale: Scale) -> float:
    """Pools, synthetic data and curricula: every table of pairs the study writes (two
    sentences a row, Parquet-compressed about twofold)."""
    config = scale.config
    pair = scale.words * BYTES_PER_WORD
    pools = sum(scale.rows(p) for p in config["pools"])
    tables = len(config["generators"]) + sum(
        len({c for c, _, _ in experiment_runs(config, e)}) for e in experiments(config)
    )
    return pair * (pools + scale.rows("student") * tables)


@dataclass(frozen=True)
class Disk:
    """Bytes at the end of the run, and at the peak while `jobs` training jobs run at once."""

    kept: float
    peak: float


def disk(scale: Scale, rules: dict[str, Rule], jobs: int) -> Disk:
    kept = data_bytes(scale) + sum(r.kept for r in rules.values() if not r.temporary)
    training_rules = [r for r in rules.values() if r.name.startswith("train_")]
    # a running job's model and checkpoint; a temporary model also waits for its evaluation
    # after its job has ended
    in_flight = max(
        r.largest.scratch + r.largest.kept * (2 if r.temporary else 1) for r in training_rules
    )
    return Disk(kept=kept, peak=kept + jobs * in_flight)


# --- the command ------------------------------------------------------------------------------


def table(rules: dict[str, Rule], config: dict) -> list[dict]:
    return [
        {
            "rule": rule.name,
            "jobs": rule.jobs,
            "hours_each": rule.largest.seconds / 3600,
            "expected_hours_each": rule.largest.expected / 3600,
            "runtime_asked": runtime_minutes(rule.largest, config),
            "memory_gb": rule.largest.memory / GB,
            "mem_mb_asked": memory_mb(rule.largest),
            "gpu_memory_gb": rule.largest.gpu_memory / GB,
            "device_hours": rule.seconds / 3600,
            "expected_hours": rule.expected_seconds / 3600,
            "disk_gb": rule.kept / GB,
            "temporary": rule.temporary,
        }
        for rule in rules.values()
    ]


def summary(config: dict, jobs: int, words: float, remaining: int, made: dict) -> dict:
    """The table of rules, the total device-hours, and the disk as configured and with every
    student's model kept."""
    scale = Scale(config, words, remaining, made)
    rules = study(scale)
    keeping = Scale({**config, "keep_student_models": True}, words, remaining, made)
    return {
        "rules": table(rules, config),
        "device": (
            f"one GPU ({scale.train_on.name}, {'bf16' if scale.train_on.bf16 else 'fp32'} training)"
            if gpus(config)
            else f"{scale.train_on_threads} CPU thread(s)"
        ),
        "device_hours": sum(r.seconds for r in rules.values()) / 3600,
        "expected_device_hours": sum(r.expected_seconds for r in rules.values()) / 3600,
        "speed": (
            f"speed: {scale.train_on.train_flops / 1e9:,.1f} GFLOP/s a training job"
            f" ({scale.train_on.name})"
        ),
        "disk": disk(scale, rules, jobs),
        "disk_keeping_student_models": disk(keeping, study(keeping), jobs),
    }


# Seconds a job spends starting (Python, torch, the job's imports) beyond its work: about 4 s a
# job in the CPU preset's measured run (BENCHMARKS.md).
STARTUP_SECONDS = 4.0


def wall_hours(result: dict, cores: int, expected: bool = False) -> float:
    """The study's hours on `cores` cores, one job a core: its job-hours and start-ups spread
    over the cores, or its longest job where that is longer. A bound the scheduler approaches
    when many jobs are ready at once, as they are for most of a study. With `expected`, where
    patience is expected to stop each training (expected_training_steps), else every training's
    whole budget."""
    prefix = "expected_" if expected else ""
    jobs = sum(rule["jobs"] for rule in result["rules"])
    spread = (result[f"{prefix}device_hours"] + jobs * STARTUP_SECONDS / 3600) / cores
    return max(spread, max(rule[f"{prefix}hours_each"] for rule in result["rules"]))


def write(result: dict, out, cores: int | None = None) -> None:
    import polars as pl

    frame = pl.DataFrame(result["rules"]).with_columns(pl.selectors.float().round(2))
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True, tbl_width_chars=250):
        print(frame, file=out)
    now, before = result["disk"], result["disk_keeping_student_models"]
    print(
        f"job-hours: {result['device_hours']:,.1f} with every training to its max_steps or "
        f"max_epochs, {result['expected_device_hours']:,.1f} expected with patience stopping "
        f"those that keep their best weights at their plateau (each job on {result['device']})",
        file=out,
    )
    if cores:
        jobs = sum(rule["jobs"] for rule in result["rules"])
        print(
            f"on {cores} cores: about {wall_hours(result, cores, expected=True):,.1f} hours "
            f"expected, at most {wall_hours(result, cores):,.1f}, for these {jobs:,} model jobs, "
            f"one a core ({STARTUP_SECONDS:g} s start-up each); {result['speed']}",
            file=out,
        )
    print(
        f"disk at the end: {now.kept / GB:,.1f} GB ({before.kept / GB:,.1f} GB with "
        f"keep_student_models: true); peak while running: {now.peak / GB:,.1f} GB "
        f"({before.peak / GB:,.1f} GB)",
        file=out,
    )


def with_defaults(config: dict, schema_path: Path) -> dict:
    """The configuration as the workflow sees it: checked against its schema, with the
    schema's defaults filled in (as Snakemake's validate does)."""
    import jsonschema

    schema = yaml.safe_load(schema_path.read_text())
    base = jsonschema.validators.validator_for(schema)
    check_properties = base.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from check_properties(validator, properties, instance, schema)

    config = copy.deepcopy(config)
    jsonschema.validators.extend(base, {"properties": fill_defaults})(schema).validate(config)
    return config


def measured_speed(config: dict) -> dict:
    """`config` with `resources.train_flops` and `decode_flops` measured on this machine (a
    CPU study; a GPU study keeps its GPU's table speed)."""
    from regurgitate.study.config import SCRATCH, student_architecture
    from regurgitate.study.speed import measure

    if gpus(config):
        return config
    threads = config.get("resources", {}).get("train_threads", 1)
    measured = measure(
        student_architecture(config, SCRATCH),
        config["tokenizer"]["vocab_size"],
        training_settings(config, config[SCRATCH].get("training")),
        threads,
    )
    config = copy.deepcopy(config)
    config.setdefault("resources", {}).update(
        train_flops=measured.train_flops, decode_flops=measured.decode_flops
    )
    config["resources"]["speed_source"] = (
        f"measured here: {measured.steps} training steps in {measured.seconds:.1f} s on "
        f"{threads} thread(s), {'bf16' if measured.bf16 else 'fp32'}"
    )
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", type=Path, required=True)
    parser.add_argument(
        "--device", help="instead of the configuration's `device` (e.g. cuda: one GPU a job)"
    )
    parser.add_argument(
        "--gpu-model",
        help="instead of `resources.gpu_model`: the GPU whose speed is assumed (a100, h100_sxm, "
        f"...; known: {', '.join(GPU_PEAK_TFLOPS)})",
    )
    parser.add_argument(
        "--cores", type=int, help="also the hours the study takes on this many cores (CPU jobs)"
    )
    parser.add_argument(
        "--measure",
        action="store_true",
        help="time a few seconds of training steps of the study's student model on this machine "
        "and estimate with that speed, instead of the development CPU's",
    )
    parser.add_argument(
        "--words", type=float, help=f"per sentence (Multi30k's, else {WORDS_PER_SENTENCE:g})"
    )
    parser.add_argument("--jobs", type=int, default=10, help="training jobs at once (peak disk)")
    parser.add_argument(
        "--remaining",
        type=int,
        help=f"pairs in a pool of `null` size (what Multi30k leaves, else {REMAINING:,})",
    )
    parser.add_argument(
        "--directory", type=Path, default=Path("."), help="the workflow's (pool sizes, if made)"
    )
    parser.add_argument("--schema", type=Path, default=SCHEMA, help="the workflow's config schema")
    args = parser.parse_args(argv)
    if not args.schema.exists():
        parser.error(f"--schema {args.schema}: no such file (run from the repository's root)")
    config = with_defaults(yaml.safe_load(args.configfile.read_text()), args.schema)
    if args.device:
        config["device"] = args.device
    if args.gpu_model:
        config["resources"]["gpu_model"] = args.gpu_model
    if args.measure:
        config = measured_speed(config)
    made = pools_made(args.directory / CLEANING_REPORT)
    words, remaining = corpus_shape(config)
    words, remaining = args.words or words, args.remaining or remaining
    write(summary(config, args.jobs, words, remaining, made), sys.stdout, args.cores)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
