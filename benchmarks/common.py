"""What the speed benchmarks share: real sentence pairs, a tokenizer trained on them, the model
dimensions both sides use, the reference model, peak memory, and A/B rounds in subprocesses."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MULTI30K = REPO.parent / "shared" / "data" / "multi30k" / "train.tsv"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Model dimensions default to the CPU preset's `small` architecture (config/config.yaml)."""
    parser.add_argument("--pairs", type=Path, default=MULTI30K, help="TSV: german<TAB>english")
    parser.add_argument("--max-pairs", type=int, default=29000)
    parser.add_argument("--vocab-size", type=int, default=6000)
    parser.add_argument("--d-model", type=int, default=192)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2, help="encoder and decoder layers each")
    parser.add_argument("--ffn-dim", type=int, default=512)
    parser.add_argument("--max-positions", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each side")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds, medians reported")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seed", type=int, default=1)


def read_pairs(path: Path, limit: int) -> tuple[list[str], list[str]]:
    if not path.exists():
        print(f"SKIPPED: {path} is absent; pass --pairs with a german<TAB>english TSV")
        sys.exit(0)
    sources, targets = [], []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            de, en = line.rstrip("\n").split("\t")
            sources.append(de)
            targets.append(en)
            if len(sources) >= limit:
                break
    return sources, targets


def tokenizer_for(args):
    """A SentencePiece model trained on the benchmark's pairs, cached by corpus and size."""
    from regurgitate.engine.tokenizer import Tokenizer, train_tokenizer

    sources, targets = read_pairs(args.pairs, args.max_pairs)
    key = hashlib.sha256(f"{args.pairs}:{args.max_pairs}:{args.vocab_size}".encode()).hexdigest()
    path = RESULTS / "tokenizers" / f"{key[:12]}.model"
    if not path.exists():
        train_tokenizer(sources + targets, path, vocab_size=args.vocab_size)
    return Tokenizer(path), sources, targets


def project_model_config(args, vocab_size: int, dropout: float = 0.1):
    from regurgitate.engine.model import ModelConfig

    return ModelConfig(
        vocab_size=vocab_size,
        d_model=args.d_model,
        heads=args.heads,
        encoder_layers=args.layers,
        decoder_layers=args.layers,
        ffn_dim=args.ffn_dim,
        dropout=dropout,
        max_positions=args.max_positions,
    )


def reference_model(args, tokenizer, dropout: float = 0.1):
    """MarianMTModel of the project model's dimensions, with one tied embedding matrix."""
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(
        vocab_size=tokenizer.vocab_size,
        decoder_vocab_size=tokenizer.vocab_size,
        d_model=args.d_model,
        encoder_layers=args.layers,
        decoder_layers=args.layers,
        encoder_attention_heads=args.heads,
        decoder_attention_heads=args.heads,
        encoder_ffn_dim=args.ffn_dim,
        decoder_ffn_dim=args.ffn_dim,
        max_position_embeddings=args.max_positions,
        activation_function="relu",
        dropout=dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_id,
        eos_token_id=tokenizer.eos_id,
        bos_token_id=tokenizer.bos_id,
        decoder_start_token_id=tokenizer.bos_id,
        forced_eos_token_id=None,
    )
    return MarianMTModel(config)


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def memory_mb(device: str) -> tuple[float, float]:
    """(current, peak) memory in MB: resident set size of this process on CPU (VmRSS, VmHWM:
    unlike ru_maxrss, VmHWM does not inherit the parent's size across exec), allocated
    tensors on CUDA."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.memory_allocated() / 2**20, torch.cuda.max_memory_allocated() / 2**20
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()
    else:
        # Writing 5 resets VmHWM to the current RSS (Linux >= 4.0).
        Path("/proc/self/clear_refs").write_text("5")


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def child_environment() -> dict:
    """This checkout's library first on the path of a child interpreter."""
    return dict(os.environ, PYTHONPATH=f"{REPO / 'src'}:{os.environ.get('PYTHONPATH', '')}")


def run_side(script: Path, side: str, argv: list[str]) -> dict:
    """Run one side in a fresh interpreter; its last stdout line is a JSON result."""
    done = subprocess.run(
        [sys.executable, str(script), "--side", side, *argv],
        env=child_environment(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{script.name} --side {side} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_ratio(
    rounds: list[dict], key: str, side: str = "project", other: str = "reference"
) -> float:
    return statistics.median(r[side][key] / r[other][key] for r in rounds)


def machine() -> dict:
    import torch

    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = set(text.split())
        info["avx512_bf16"] = "avx512_bf16" in flags
        info["amx_bf16"] = "amx_bf16" in flags
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def gpu_peak_tflops(precision: str) -> float | None:
    """The dense peak of this machine's GPU in `precision` (bf16, or fp32: TF32 where torch
    lets fp32 matmuls use it), from the footprint's table, which tells an H100 PCIe from an
    H100 SXM by the device name; None without a GPU or for a GPU not in the table."""
    import torch

    from regurgitate.study.footprint import GPU_PEAK_TFLOPS, gpu_model

    if not torch.cuda.is_available():
        return None
    model = gpu_model(torch.cuda.get_device_name())
    if model is None:
        return None
    bf16, tf32, fp32 = GPU_PEAK_TFLOPS[model]
    if precision == "bf16":
        return bf16
    return tf32 if tf32 and torch.get_float32_matmul_precision() != "highest" else fp32


# The operators with which the host waits for the device: reading a tensor's value (item,
# tolist), and boolean indexing, whose output size only the device knows (nonzero,
# masked_select). On a CPU they cost nothing, but they are the same calls a CUDA run makes,
# so counting them on the CPU counts a GPU run's synchronisations.
HOST_SYNC_OPS = (
    "aten::nonzero",
    "aten::item",
    "aten::_local_scalar_dense",
    "aten::masked_select",
    "aten::is_nonzero",
)


TOLIST = "Tensor.tolist"


OPTIMIZER_READS = "aten::item in Optimizer.step"


def host_sync_counts(events, tolist: int = 0) -> dict[str, int]:
    """The count of each host-synchronising operator among a profiler's `events()`, and of
    `tolist` calls (which read a tensor without an operator the profiler records). Values the
    optimizer reads are counted apart: AdamW keeps its step counters on the host (unless it is
    capturable or fused), so reading them never waits for a GPU."""
    counts = dict.fromkeys(HOST_SYNC_OPS, 0) | {OPTIMIZER_READS: 0, TOLIST: tolist}
    for event in events:
        if event.name not in HOST_SYNC_OPS:
            continue
        if event.name == "aten::item" and _in_optimizer(event):
            counts[OPTIMIZER_READS] += 1
        elif not _in_optimizer(event):
            counts[event.name] += 1
    return counts


def _in_optimizer(event) -> bool:
    while event is not None:
        if event.name.startswith("Optimizer.step#"):
            return True
        event = event.cpu_parent
    return False


@contextlib.contextmanager
def counting_tolist():
    """Count Tensor.tolist calls in the block: yields a list whose length is the count."""
    import torch

    calls = []
    original = torch.Tensor.tolist

    def counted(self):
        calls.append(1)
        return original(self)

    torch.Tensor.tolist = counted
    try:
        yield calls
    finally:
        torch.Tensor.tolist = original


def write_result(name: str, result: dict) -> Path:
    path = RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def pegasus_twin(model, tokenizer):
    """The project model's weights in a PegasusForConditionalGeneration, Hugging Face's pre-norm
    encoder-decoder of the Marian family (MarianMTModel is post-norm and cannot hold them).

    Pegasus puts the sine features of its positions in the first half of the model dimension and
    the cosines in the second, where the project interleaves them; permuting the model dimension
    of every weight maps one onto the other, so the two compute the same function.
    """
    import torch
    from transformers import PegasusConfig, PegasusForConditionalGeneration

    cfg = model.cfg
    d = cfg.d_model
    config = PegasusConfig(
        vocab_size=cfg.vocab_size,
        d_model=d,
        encoder_layers=cfg.encoder_layers,
        decoder_layers=cfg.decoder_layers,
        encoder_attention_heads=cfg.heads,
        decoder_attention_heads=cfg.heads,
        encoder_ffn_dim=cfg.ffn_dim,
        decoder_ffn_dim=cfg.ffn_dim,
        max_position_embeddings=cfg.max_positions,
        activation_function="relu",
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        scale_embedding=True,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_id,
        eos_token_id=tokenizer.eos_id,
        bos_token_id=tokenizer.bos_id,
        decoder_start_token_id=tokenizer.bos_id,
        forced_eos_token_id=None,
    )
    twin = PegasusForConditionalGeneration(config).eval()
    perm = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])
    ours = {k: v.detach() for k, v in model.state_dict().items()}
    state = {}

    def linear(name: str, weight, bias, rows: bool = False, cols: bool = True):
        if cols:
            weight = weight[:, perm]
        if rows:
            weight, bias = weight[perm], bias[perm]
        state[f"{name}.weight"], state[f"{name}.bias"] = weight, bias

    def norm(name: str, prefix: str):
        state[f"{name}.weight"] = ours[f"{prefix}.weight"][perm]
        state[f"{name}.bias"] = ours[f"{prefix}.bias"][perm]

    def attention(name: str, prefix: str, cross: bool):
        if cross:
            q = [ours[f"{prefix}.q.weight"]], [ours[f"{prefix}.q.bias"]]
            kv = ours[f"{prefix}.kv.weight"].chunk(2), ours[f"{prefix}.kv.bias"].chunk(2)
            weights, biases = q[0] + list(kv[0]), q[1] + list(kv[1])
        else:
            weights = ours[f"{prefix}.qkv.weight"].chunk(3)
            biases = ours[f"{prefix}.qkv.bias"].chunk(3)
        for proj, w, b in zip(("q_proj", "k_proj", "v_proj"), weights, biases, strict=True):
            linear(f"{name}.{proj}", w, b)
        out = f"{prefix}.out"
        linear(f"{name}.out_proj", ours[f"{out}.weight"], ours[f"{out}.bias"], True, False)

    def feed_forward(name: str, prefix: str):
        linear(f"{name}.fc1", ours[f"{prefix}.0.weight"], ours[f"{prefix}.0.bias"])
        w, b = ours[f"{prefix}.3.weight"], ours[f"{prefix}.3.bias"]
        linear(f"{name}.fc2", w, b, rows=True, cols=False)

    for i in range(cfg.encoder_layers):
        ours_layer, layer = f"encoder.{i}", f"model.encoder.layers.{i}"
        norm(f"{layer}.self_attn_layer_norm", f"{ours_layer}.norm1")
        attention(f"{layer}.self_attn", f"{ours_layer}.attn", cross=False)
        norm(f"{layer}.final_layer_norm", f"{ours_layer}.norm2")
        feed_forward(layer, f"{ours_layer}.ffn")
    for i in range(cfg.decoder_layers):
        ours_layer, layer = f"decoder.{i}", f"model.decoder.layers.{i}"
        norm(f"{layer}.self_attn_layer_norm", f"{ours_layer}.norm1")
        attention(f"{layer}.self_attn", f"{ours_layer}.self_attn", cross=False)
        norm(f"{layer}.encoder_attn_layer_norm", f"{ours_layer}.norm2")
        attention(f"{layer}.encoder_attn", f"{ours_layer}.cross_attn", cross=True)
        norm(f"{layer}.final_layer_norm", f"{ours_layer}.norm3")
        feed_forward(layer, f"{ours_layer}.ffn")
    norm("model.encoder.layer_norm", "encoder_norm")
    norm("model.decoder.layer_norm", "decoder_norm")
    state["model.shared.weight"] = ours["embed.weight"][:, perm]
    missing, unexpected = twin.load_state_dict(state, strict=False)
    left = [k for k in missing if "embed_positions" not in k and k != "final_logits_bias"]
    left = [k for k in left if not k.endswith(("embed_tokens.weight", "lm_head.weight"))]
    if left or unexpected:
        raise RuntimeError(f"weights not carried over: {left}; unexpected: {unexpected}")
    return twin
