"""The huggingface backend: generation, fine-tuning (full and LoRA), resume after a kill, and the
messages of a missing model or extra, on tiny random models built here (tests/tiny_hf.py)."""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml

pytest.importorskip("transformers")
pytest.importorskip("peft")

import tiny_hf  # noqa: E402
from conftest import REPO, TINY  # noqa: E402
from toy import toy_pair  # noqa: E402

from regurgitate.generators.open_weights import OpenWeightsGenerator  # noqa: E402
from regurgitate.generators.open_weights_finetune import (  # noqa: E402
    FinetuneSettings,
    encode_examples,
    finetune,
    micro_batches,
    prepare,
    train_step,
)
from regurgitate.generators.open_weights_settings import (  # noqa: E402
    MissingModelError,
    OpenWeightsSettings,
)
from regurgitate.jobs.open_weights import translate_pool_open_weights  # noqa: E402
from regurgitate.study.config import ConfigError, check_config  # noqa: E402

CPU = torch.device("cpu")
# A short prompt: the tiny models' steps cost what their prompts' tokens cost.
PROMPTS = {"short": {1: {"system": "Translate German to English.", "user": "{source}"}}}
TRAINING = {
    "max_tokens": 120,
    "lr": 3e-3,
    "warmup_steps": 4,
    "max_steps": 8,
    "max_epochs": 50,
    "eval_every": 3,
    "patience": 5,
    "eval_metric": "bleu",
    "eval_sentences": 8,
    "log_every": 4,
    "seed": 3,
    "select": "last",
    "precision": "fp32",
    "label_smoothing": 0.0,
}


def pairs(n: int, seed: int = 1) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    rows = [toy_pair(rng) for _ in range(n)]
    return [s for s, _ in rows], [t for _, t in rows]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {
        "causal": tiny_hf.build_causal(root / "causal", hidden=32),
        "seq2seq": tiny_hf.build_seq2seq(root / "seq2seq"),
    }


def settings(path: Path, **extra) -> OpenWeightsSettings:
    generator = {"backend": "huggingface", "model": str(path), "prompt": "short"}
    generator["decoding"] = {"max_new_tokens": 12, **extra.pop("decoding", {})}
    return OpenWeightsSettings.from_config("hf", {**generator, **extra}, PROMPTS)


def quiet(settings: OpenWeightsSettings, weights: Path | None = None) -> OpenWeightsGenerator:
    return OpenWeightsGenerator(settings, CPU, weights, progress=False)


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_generation_is_deterministic_and_independent_of_batching(models, kind):
    """The same translations and log-probabilities whatever the batch size and the order of the
    sources; every row has the columns of every generator."""
    sources = pairs(12)[0]
    one = OpenWeightsGenerator(settings(models[kind], decoding={"batch_size": 1}), CPU, None, False)
    many = OpenWeightsGenerator(
        settings(models[kind], decoding={"batch_size": 5}), CPU, None, False
    )
    first = one.translate(sources)
    second = many.translate(sources[::-1])[::-1]
    assert [r.target for r in first] == [r.target for r in second]
    assert [r.tokens for r in first] == [r.tokens for r in second]
    for a, b in zip(first, second, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
        assert a.logprob < 0 and a.finish_reason in ("stop", "length") and a.cost == 0.0
        assert a.tokens <= 12 and (a.finish_reason == "length") == ("cut_off" in a.flags)


def test_beam_search_scores_at_least_greedy(models):
    sources = pairs(6)[0]
    greedy = OpenWeightsGenerator(settings(models["seq2seq"]), CPU, None, False).translate(sources)
    beam = OpenWeightsGenerator(
        settings(models["seq2seq"], decoding={"beam": 4, "length_penalty": 0.0}), CPU, None, False
    ).translate(sources)
    assert sum(b.logprob for b in beam) >= sum(g.logprob for g in greedy) - 1e-4


def test_target_language_code_is_forced(models):
    """NLLB and M2M name the target language by its first generated token."""
    generator = OpenWeightsGenerator(
        settings(models["seq2seq"], target_lang="eng_Latn"), CPU, None, False
    )
    from regurgitate.generators.open_weights import encode_sources, generate

    loaded = generator.loaded
    hypotheses = generate(loaded, encode_sources(loaded, pairs(3)[0]))
    code = loaded.tokenizer.convert_tokens_to_ids("eng_Latn")
    assert all(h.ids[0] == code for h in hypotheses)


def test_causal_examples_learn_only_the_answer(models):
    loaded = OpenWeightsGenerator(settings(models["causal"]), CPU, None, False).loaded
    sources, targets = pairs(3)
    for example, target in zip(encode_examples(loaded, sources, targets), targets, strict=True):
        learned = [t for t in example.labels if t != -100]
        text = loaded.tokenizer.decode(learned, skip_special_tokens=True)
        assert text.strip() == target
        assert learned[-2] == loaded.tokenizer.convert_tokens_to_ids("<|im_end|>")
        assert example.labels[: len(example.labels) - len(learned)] == [-100] * (
            len(example.labels) - len(learned)
        )


def test_micro_batches_keep_the_step_and_its_loss(models):
    """Micro-batches split a step without changing it: the accumulated loss is the whole step's
    mean over its target tokens (dropout off, so that the passes compare)."""
    s = settings(models["seq2seq"])
    sources, targets = pairs(40)
    results = []
    for micro in (None, 40):
        ft = FinetuneSettings.from_config(
            {**TRAINING, "max_steps": 1}, {"method": "full", "micro_batch_tokens": micro}
        )
        loaded = prepare(s, ft, CPU)
        loaded.model.eval()
        examples = encode_examples(loaded, sources, targets)
        step = list(range(12))
        assert sum(micro_batches(examples, step, micro), []) == step
        optimizer = torch.optim.SGD(loaded.model.parameters(), lr=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        loss, _ = train_step(loaded, ft, examples, step, optimizer, scheduler, False)
        results.append(loss)
    assert results[0] == pytest.approx(results[1], rel=1e-5)


def finetune_run(model, out: Path, method="lora", training=None, on_step=None, kind="causal"):
    sources, targets = pairs(60)
    dev = pairs(8, seed=9)
    lora = {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}
    ft = FinetuneSettings.from_config(
        {**TRAINING, **(training or {})}, {"method": method, "lora": lora}
    )
    return finetune(
        settings(model), ft, sources, targets, dev, out / "last.pt", out / "model", CPU, on_step
    )


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    (file,) = folder.glob("*.safetensors")
    return load_file(file)


# Fine-tuning runs: seconds each on an idle machine, minutes on a shared one.
@pytest.mark.slow
def test_lora_keeps_only_the_adapter_and_changes_the_translations(models, tmp_path):
    summary = finetune_run(models["causal"], tmp_path)
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == ["README.md", "adapter_config.json", "adapter_model.safetensors"] or (
        "adapter_model.safetensors" in files and "model.safetensors" not in files
    )
    assert all("lora_" in name for name in weights(tmp_path / "model"))
    assert summary["steps"] == 8 and summary["trainable_parameters"] < summary["parameters"] / 5
    assert not (tmp_path / "last.pt").exists()  # the finished model supersedes the checkpoints
    base = OpenWeightsGenerator(settings(models["causal"]), CPU, None, False)
    tuned = OpenWeightsGenerator(settings(models["causal"]), CPU, tmp_path / "model", False)
    sources = pairs(5, seed=4)[0]
    assert [r.logprob for r in base.translate(sources)] != [
        r.logprob for r in tuned.translate(sources)
    ]


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import torch
    # The thread count of the uninterrupted run: a product's sums may be split by thread
    # (AMX kernels do), and bit-identical weights are promised for the same settings.
    torch.set_num_threads({threads})
    sys.path.insert(0, {tests!r})
    import test_open_weights as t

    def on_step(step):
        if step == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)

    t.finetune_run(Path({model!r}), Path({out!r}), {method!r}, {training!r}, on_step)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_one(models, tmp_path, method):
    """A process killed (SIGKILL) after step 5, its checkpoint at step 3, resumes from there
    (weights, optimizer, scheduler, data position, random state) and ends with the same
    weights, bit for bit, on the CPU; LoRA's dropout draws from the restored random state."""
    training = {"select": "best"} if method == "full" else {}
    whole = finetune_run(models["causal"], tmp_path / "whole", method, training)
    killed = tmp_path / "killed"
    script = KILLER.format(
        tests=str(Path(__file__).parent), kill_at=5, model=str(models["causal"]),
        out=str(killed), method=method, training=training, threads=torch.get_num_threads(),
    )  # fmt: skip
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr[-3000:]
    assert (killed / "last.pt").exists() and not (killed / "model").exists()
    assert torch.load(killed / "last.pt", weights_only=False)["state"]["step"] == 3
    resumed = finetune_run(models["causal"], killed, method, training)
    assert resumed == whole
    a, b = weights(tmp_path / "whole" / "model"), weights(killed / "model")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# Fine-tuning runs: seconds each on an idle machine, minutes on a shared one.
@pytest.mark.slow
def test_a_checkpoint_of_other_data_is_not_resumed(models, tmp_path):
    finetune_run(models["seq2seq"], tmp_path / "a", "full", {"max_steps": 3})
    ft = FinetuneSettings.from_config({**TRAINING, "max_steps": 4}, {"method": "full"})
    sources, targets = pairs(60, seed=2)
    # a checkpoint of step 3 of the first run's data, left where the second run looks
    script = KILLER.format(
        tests=str(Path(__file__).parent), kill_at=4, model=str(models["seq2seq"]),
        out=str(tmp_path / "b"), method="full", training={"max_steps": 4},
        threads=torch.get_num_threads(),
    )  # fmt: skip
    subprocess.run([sys.executable, "-c", script], capture_output=True)
    summary = finetune(
        settings(models["seq2seq"]), ft, sources, targets, pairs(4), tmp_path / "b" / "last.pt",
        tmp_path / "b" / "model", CPU,
    )  # fmt: skip
    assert summary["steps"] == 4 and summary["pairs"] == 60


def test_a_missing_model_stops_at_once_naming_it_and_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    hub = OpenWeightsSettings.from_config(
        "big", {"backend": "huggingface", "model": "Qwen/Qwen2.5-1.5B-Instruct", "revision": "abc"}
    )
    with pytest.raises(MissingModelError) as err:
        OpenWeightsGenerator(hub, CPU)
    message = str(err.value)
    assert "generators.big" in message and "Qwen/Qwen2.5-1.5B-Instruct" in message
    assert "huggingface-cli download Qwen/Qwen2.5-1.5B-Instruct --revision abc" in message
    folder = OpenWeightsSettings.from_config(
        "mine", {"backend": "huggingface", "model": str(tmp_path / "nothing")}
    )
    with pytest.raises(MissingModelError, match=r"generators\.mine: the model directory .*nothing"):
        OpenWeightsGenerator(folder, CPU)


def test_pool_translation_writes_the_generator_table_and_cost(models, tmp_path):
    sources, _ = pairs(10)
    pool = pl.DataFrame({"id": [f"s{i}" for i in range(10)], "source": sources})
    pool.write_parquet(tmp_path / "pool.parquet")
    generator = {"backend": "huggingface", "model": str(models["seq2seq"]),
                 "decoding": {"max_new_tokens": 12}}  # fmt: skip
    for out in ("a", "b"):
        translate_pool_open_weights(
            name="mt", generator=generator, prompts=None, pool_path=tmp_path / "pool.parquet",
            out=tmp_path / f"{out}.parquet", cost_out=tmp_path / f"{out}.cost.json", device="cpu",
        )  # fmt: skip
    table = pl.read_parquet(tmp_path / "a.parquet")
    assert table.columns == [
        "id", "source", "target", "logprob", "tokens", "cost", "finish_reason", "input_tokens",
        "flags",
    ]  # fmt: skip
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    cost = json.loads((tmp_path / "a.cost.json").read_text())
    assert cost["backend"] == "huggingface" and cost["rows"] == 10 and cost["cost"] == 0


def tiny_config(model: str = "/models/base") -> dict:
    config = yaml.safe_load(TINY.read_text())
    config["generators"]["base"] = {"backend": "huggingface", "model": model}
    return config


def test_config_checks_name_the_key():
    config = tiny_config()
    check_config(copy.deepcopy(config))
    config["generators"]["base"]["model"] = "Qwen/Qwen2.5-0.5B-Instruct"
    with pytest.raises(ConfigError, match=r"generators\.base\.revision"):
        check_config(copy.deepcopy(config))
    config["generators"]["base"]["revision"] = "7ae557604adf67be50417f59c2c2f167def9a775"
    config["finetune"]["base"] = "base"
    check_config(copy.deepcopy(config))


def test_a_study_without_the_extra_stops_before_any_job_naming_it(tmp_path):
    """Where transformers and peft cannot be imported, the config check names the extra."""
    script = textwrap.dedent(
        f"""
        import sys, yaml
        sys.modules["transformers"] = None  # as where the extra is not installed
        sys.modules["peft"] = None
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from regurgitate.study.config import check_config
        config = yaml.safe_load(open({str(TINY)!r}))
        config["generators"]["base"] = {{"backend": "huggingface", "model": "/m"}}
        check_config(config)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 1
    assert "generators.base.backend" in result.stderr
    assert 'pip install "torch==2.13.0" -e ".[llm]"' in result.stderr
    assert os.environ.get("HF_HUB_OFFLINE") == "1" and REPO.exists()
