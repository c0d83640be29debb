import polars as pl
import pytest
import torch

from regurgitate.engine.batching import encode_pairs
from regurgitate.engine.model import ModelConfig, Transformer, load_model, save_model
from regurgitate.engine.train import (
    TIMING,
    DevSet,
    TrainConfig,
    checkpoint_files,
    evaluate,
    learning_rate,
    make_optimizer,
    save_checkpoint,
    split_timing,
    train,
)
from regurgitate.io import write_parquet


class Killed(Exception):
    pass


def setup(tokenizer, pairs):
    data = encode_pairs(tokenizer, [p[0] for p in pairs[:300]], [p[1] for p in pairs[:300]], 64)
    dev = DevSet([p[0] for p in pairs[300:340]], [p[1] for p in pairs[300:340]])
    model_cfg = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        d_model=32,
        heads=2,
        encoder_layers=1,
        decoder_layers=1,
        ffn_dim=64,
        dropout=0.1,
        max_positions=64,
    )
    return data, dev, model_cfg


RESUMED = TrainConfig(
    max_tokens=400,
    lr=3e-3,
    warmup_steps=5,
    max_steps=24,
    eval_every=6,
    patience=100,
    log_every=5,
    seed=3,
)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, toy_tokenizer, toy_pairs):
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    path = tmp_path_factory.mktemp("whole") / "a.pt"
    return train(model_cfg, RESUMED, data, dev, toy_tokenizer, path)


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garble(path):
    path.write_bytes(b"not a zip file at all")


# How a kill at step 14 (checkpoints at steps 6 and 12) is damaged, and the step it resumes from.
DAMAGES = {
    "none": ([], 12),
    "truncated": ([truncate], 6),
    "not_a_zip": ([garble], 6),
    "both": ([truncate, garble], 0),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_resumed_training_ends_like_uninterrupted(
    tmp_path, toy_tokenizer, toy_pairs, uninterrupted, damage, caplog
):
    """A kill at step 14 resumes from the checkpoint of step 12; when that one cannot be read
    it is set aside and the one of step 6 resumed, and when neither can, training starts over:
    every way, it ends exactly as the uninterrupted run."""
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    whole, summary = uninterrupted

    def kill_at_14(step):
        if step == 14:
            raise Killed

    checkpoint = tmp_path / "b.pt"
    with pytest.raises(Killed):
        train(model_cfg, RESUMED, data, dev, toy_tokenizer, checkpoint, on_step=kill_at_14)
    assert torch.load(checkpoint, weights_only=False)["state"]["step"] == 12
    damages, resumed_from = DAMAGES[damage]
    for damage_file, path in zip(damages, checkpoint_files(checkpoint), strict=False):
        damage_file(path)
    started = []
    resumed, resumed_summary = train(
        model_cfg, RESUMED, data, dev, toy_tokenizer, checkpoint, on_step=started.append
    )
    assert started[0] == resumed_from + 1
    for (name, a), (_, b) in zip(
        whole.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed_summary["dev_history"] == summary["dev_history"]
    assert resumed_summary["steps"] == 24
    for path in checkpoint_files(checkpoint)[: len(damages)]:
        assert (path.parent / f"{path.name}.corrupt").exists()
        assert f"{path} cannot be read" in caplog.text


def test_a_killed_checkpoint_write_is_cleaned_up_by_the_next_run(
    tmp_path, toy_tokenizer, toy_pairs
):
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    cfg = TrainConfig(max_tokens=400, warmup_steps=5, max_steps=1, eval_every=1, log_every=1)
    # What a kill in the middle of writing the checkpoint leaves (the pid is no process's).
    stale = tmp_path / ".last.pt.999999999.x1y2z3.tmp"
    stale.write_bytes(b"half a checkpoint")
    there = []  # at each step, whether the leftover is still there: gone before training
    checkpoint = tmp_path / "last.pt"
    train(
        model_cfg,
        cfg,
        data,
        dev,
        toy_tokenizer,
        checkpoint,
        on_step=lambda _: there.append(stale.exists()),
    )
    assert there == [False]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_stop_while_a_checkpoint_is_written_leaves_the_latest_whole(tmp_path, monkeypatch):
    """An interrupt that arrives while the next checkpoint is written (a job stopped by its
    workflow) finds the latest checkpoint under its own name, with its own contents."""
    latest, previous = checkpoint_files(tmp_path / "last.pt")
    save_checkpoint(latest, {"step": 1})
    save_checkpoint(latest, {"step": 2})
    assert torch.load(previous)["step"] == 1

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(latest, {"step": 3})
    assert torch.load(latest)["step"] == 2
    assert torch.load(previous)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.previous.pt", "last.pt"]


def test_checkpoint_of_other_configuration_is_not_resumed(tmp_path, toy_tokenizer, toy_pairs):
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    cfg = TrainConfig(max_tokens=400, warmup_steps=5, max_steps=6, eval_every=3, log_every=3)
    train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "c.pt")
    other = TrainConfig(max_tokens=400, warmup_steps=5, max_steps=9, eval_every=3, log_every=3)
    _, summary = train(model_cfg, other, data, dev, toy_tokenizer, tmp_path / "c.pt")
    assert [h["step"] for h in summary["dev_history"]] == [3, 6, 9]


def test_training_learns_and_returns_its_best_model(tmp_path, toy_tokenizer, toy_pairs):
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    cfg = TrainConfig(
        max_tokens=600,
        lr=5e-3,
        warmup_steps=20,
        max_steps=400,
        eval_every=20,
        patience=2,
        log_every=20,
        eval_metric="chrf",
    )
    model, summary = train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "d.pt")
    history = {h["step"]: h["chrf"] for h in summary["dev_history"]}
    assert summary["best_dev_chrf"] == max(history.values()) == history[summary["best_step"]]
    assert summary["best_dev_chrf"] > 40  # word-for-word toy translation is learnable
    assert history[cfg.eval_every] < 40  # and was not known at the first evaluation
    bf16 = summary["precision"] == "bf16"
    assert evaluate(model, toy_tokenizer, dev, "chrf", bf16) == summary["best_dev_chrf"]
    assert summary[TIMING]["target_tokens_per_second"] > 0
    assert split_timing(summary) == (
        {k: v for k, v in summary.items() if k != TIMING},
        summary[TIMING],
    )


def test_early_stopping_returns_the_best_evaluations_weights(
    tmp_path, toy_tokenizer, toy_pairs, monkeypatch
):
    """Dev scores are scripted, so the run stops early for sure: 20 at the second evaluation
    is not beaten by the third (a tie) nor by the fourth, and patience=2 ends the run there."""
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    scores = iter([10.0, 20.0, 20.0, 15.0, 30.0, 40.0])
    weights = []

    def scripted_evaluate(model, tokenizer, dev, metric, bf16):
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return next(scores)

    monkeypatch.setattr("regurgitate.engine.train.evaluate", scripted_evaluate)
    cfg = TrainConfig(
        max_tokens=400,
        lr=3e-3,
        warmup_steps=5,
        max_steps=100,
        eval_every=3,
        patience=2,
        log_every=3,
        eval_metric="chrf",
    )
    model, summary = train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "s.pt")
    assert [h["chrf"] for h in summary["dev_history"]] == [10.0, 20.0, 20.0, 15.0]
    assert summary["steps"] == 12 < cfg.max_steps
    assert summary["best_step"] == summary["steps"] - cfg.patience * cfg.eval_every == 6
    assert summary["best_dev_chrf"] == 20.0 and summary["stopped_by"] == "patience"
    returned = model.state_dict()
    assert all(torch.equal(returned[name], value) for name, value in weights[1].items())
    assert not all(torch.equal(returned[name], value) for name, value in weights[3].items())


def test_learning_rate_warms_up_then_decays():
    cfg = TrainConfig(lr=1e-3, warmup_steps=100)
    assert learning_rate(1, cfg) == pytest.approx(1e-5)
    assert learning_rate(100, cfg) == pytest.approx(1e-3)
    assert learning_rate(400, cfg) == pytest.approx(5e-4)


def test_loss_based_stopping_is_refused():
    with pytest.raises(ValueError, match="eval_metric"):
        TrainConfig(eval_metric="loss")


def test_epoch_cap_ends_with_one_evaluation(tmp_path, toy_tokenizer, toy_pairs):
    from regurgitate.engine.batching import epoch_batches

    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    cfg = TrainConfig(
        max_tokens=400,
        warmup_steps=5,
        max_steps=10_000,
        max_epochs=2,
        eval_every=10_000,
        log_every=10,
    )
    _, summary = train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "e.pt")
    per_epoch = [len(epoch_batches(data, 400, cfg.seed, epoch)) for epoch in (0, 1)]
    assert summary["steps"] == sum(per_epoch)
    assert summary["epochs_completed"] == 2 and summary["stopped_by"] == "max_epochs"
    assert [h["step"] for h in summary["dev_history"]] == [summary["steps"]]


def _scripted(monkeypatch, values):
    """Dev scores given in advance; the weights at each evaluation are recorded."""
    scores, weights = iter(values), []

    def scripted_evaluate(model, tokenizer, dev, metric, bf16):
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return next(scores)

    monkeypatch.setattr("regurgitate.engine.train.evaluate", scripted_evaluate)
    return weights


SELECT_CFG = dict(max_tokens=400, lr=3e-3, warmup_steps=5, eval_every=3, log_every=3)


def test_select_last_keeps_the_final_weights_and_trains_the_whole_budget(
    tmp_path, toy_tokenizer, toy_pairs, monkeypatch
):
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    weights = _scripted(monkeypatch, [30.0, 20.0, 10.0, 5.0])
    cfg = TrainConfig(**SELECT_CFG, max_steps=12, patience=1, select="last")
    model, summary = train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "s.pt")
    # Patience would have stopped at step 6; `last` trains to max_steps and keeps step 12.
    assert summary["steps"] == 12 and summary["selected_step"] == 12
    assert summary["best_step"] == 3 and summary["select"] == "last"
    assert summary["stopped_by"] == "max_steps"  # patience is not a stop under `last`
    returned = model.state_dict()
    assert all(torch.equal(returned[name], value) for name, value in weights[-1].items())


def test_select_best_evaluates_the_init_weights_first(
    tmp_path, toy_tokenizer, toy_pairs, monkeypatch
):
    """E1 with dev selection: fine-tuning that only hurts keeps the base model (step 0)."""
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    torch.manual_seed(5)
    base = {k: v.clone() for k, v in Transformer(model_cfg).state_dict().items()}
    weights = _scripted(monkeypatch, [25.0, 20.0, 18.0, 15.0])
    cfg = TrainConfig(**SELECT_CFG, max_steps=100, patience=3)
    model, summary = train(
        model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "s.pt", init_state=base
    )
    assert [h["step"] for h in summary["dev_history"]] == [0, 3, 6, 9]
    assert summary["selected_step"] == 0 and summary["steps"] == 9
    returned = model.state_dict()
    assert all(torch.equal(returned[name], base[name]) for name in base)
    assert all(torch.equal(weights[0][name], base[name]) for name in base)


def test_finetuning_starts_from_the_init_models_weights(tmp_path, toy_tokenizer, toy_pairs):
    """E1: `train_model` with `init_model` trains the base model on, not a fresh one. With a
    learning rate too small to move any weight by 1e-5, the student is the base model."""
    from regurgitate.jobs.train import train_model

    pairs = pl.DataFrame(
        {
            "id": [f"p{i}" for i in range(60)],
            "source": [s for s, _ in toy_pairs[:60]],
            "target": [t for _, t in toy_pairs[:60]],
        }
    )
    write_parquet(pairs, tmp_path / "curriculum.parquet")
    write_parquet(pairs.tail(10), tmp_path / "dev.parquet")
    architecture = {
        "d_model": 32,
        "heads": 2,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "ffn_dim": 64,
        "dropout": 0.0,
        "max_positions": 64,
    }
    torch.manual_seed(99)  # not the training seed: the base is no fresh model of that seed
    config = ModelConfig(
        vocab_size=toy_tokenizer.vocab_size, pad_id=toy_tokenizer.pad_id, **architecture
    )
    base = Transformer(config)
    save_model(base, tmp_path / "base.pt")
    training = {"max_tokens": 400, "lr": 1e-7, "warmup_steps": 1, "max_steps": 3}
    training |= {"eval_every": 3, "log_every": 3, "seed": 1, "precision": "fp32"}

    def student(name: str, init_model):
        summary = train_model(
            pairs_path=tmp_path / "curriculum.parquet",
            rows=50,
            dev_path=tmp_path / "dev.parquet",
            tokenizer_path=toy_tokenizer.path,
            architecture=architecture,
            training=training,
            checkpoint=tmp_path / f"{name}.ckpt",
            model_out=tmp_path / f"{name}.pt",
            summary_out=tmp_path / f"{name}.json",
            device="cpu",
            init_model=init_model,
        )
        assert summary["steps"] == 3 and summary["pairs"] == 50
        return load_model(tmp_path / f"{name}.pt")[0].state_dict()

    def furthest(a: dict, b: dict) -> float:
        return max(float((a[name] - b[name]).abs().max()) for name in a)

    finetuned = student("finetuned", tmp_path / "base.pt")
    scratch = student("scratch", None)
    assert furthest(finetuned, base.state_dict()) < 1e-5
    assert furthest(scratch, base.state_dict()) > 0.1


# The operators with which the host waits for the device: boolean indexing (its output size is
# known only on the device: nonzero, masked_select) and reading a value (item).
HOST_WAITS = {"aten::nonzero", "aten::masked_select", "aten::item", "aten::_local_scalar_dense"}


def test_a_training_step_never_waits_for_the_device(tmp_path, toy_tokenizer, toy_pairs):
    """Profiled on the CPU, the same calls a CUDA step makes: no boolean indexing, and no value
    read but AdamW's step counters, which live on the host (torch keeps them there unless the
    optimizer is capturable or fused)."""
    from torch.profiler import ProfilerActivity, profile, schedule

    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    # Steps 2 to 4 are profiled; the first step's set-up and the last step's evaluation and
    # loss logging are left out.
    cfg = TrainConfig(max_tokens=400, warmup_steps=5, max_steps=5, eval_every=5, log_every=5)
    profiler = profile(
        activities=[ProfilerActivity.CPU], schedule=schedule(wait=0, warmup=1, active=3, repeat=1)
    )
    with profiler:
        train(
            model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "c.pt",
            on_step=lambda _: profiler.step(),
        )  # fmt: skip

    def in_optimizer(event) -> bool:
        while event is not None:
            if event.name.startswith("Optimizer.step#"):
                return True
            event = event.cpu_parent
        return False

    waits = [e.name for e in profiler.events() if e.name in HOST_WAITS and not in_optimizer(e)]
    assert waits == []
    assert any(e.name == "aten::addmm" for e in profiler.events())  # the steps were profiled


def test_a_cpu_run_with_checkpoints_never_asks_cuda(
    tmp_path, toy_tokenizer, toy_pairs, monkeypatch
):
    """Saving and resuming the random state opens no CUDA context on a GPU host: a CPU run,
    killed and resumed, never calls torch.cuda's device or random-state functions."""

    def untouchable(*args, **kwargs):
        raise AssertionError("a CPU run asked CUDA")

    for name in ("is_available", "get_rng_state", "set_rng_state", "get_device_capability"):
        monkeypatch.setattr(torch.cuda, name, untouchable)
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    cfg = TrainConfig(max_tokens=400, warmup_steps=5, max_steps=6, eval_every=2, log_every=2)

    def kill_at_5(step):
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "c.pt", on_step=kill_at_5)
    started = []
    train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "c.pt", on_step=started.append)
    assert started[0] == 5  # resumed from step 4's checkpoint


CHECKPOINTED = TrainConfig(
    max_tokens=400,
    lr=3e-3,
    warmup_steps=5,
    max_steps=24,
    eval_every=3,
    patience=100,
    log_every=5,
    seed=3,
    checkpoint_minutes=10,
)


def test_checkpoints_are_written_no_more_often_than_the_interval(
    tmp_path, toy_tokenizer, toy_pairs, monkeypatch
):
    """Each step takes a minute of the patched clock; with evaluations every 3 steps and
    checkpoints at most every 10 minutes, checkpoints follow the evaluations of steps 12 and 24
    only. A run killed at step 20 resumes from step 12 and ends as the uninterrupted run."""
    import regurgitate.engine.train as engine_train

    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    minutes = [0.0]
    monkeypatch.setattr(engine_train, "clock", lambda: 60.0 * minutes[0])
    written = []
    original = engine_train.save_checkpoint

    def recorded(path, state):
        written.append(state["state"]["step"])
        original(path, state)

    monkeypatch.setattr(engine_train, "save_checkpoint", recorded)

    def one_minute(step):
        minutes[0] += 1

    whole, summary = train(
        model_cfg, CHECKPOINTED, data, dev, toy_tokenizer, tmp_path / "a.pt", on_step=one_minute
    )
    assert written == [12, 24]
    assert [h["step"] for h in summary["dev_history"]] == [3, 6, 9, 12, 15, 18, 21, 24]

    def killed_at_20(step):
        one_minute(step)
        if step == 20:
            raise Killed

    written.clear()
    minutes[0] = 0.0
    checkpoint = tmp_path / "b.pt"
    with pytest.raises(Killed):
        train(model_cfg, CHECKPOINTED, data, dev, toy_tokenizer, checkpoint, on_step=killed_at_20)
    assert written == [12]
    started = []
    resumed, resumed_summary = train(
        model_cfg, CHECKPOINTED, data, dev, toy_tokenizer, checkpoint, on_step=started.append
    )
    assert started[0] == 13
    for (name, a), (_, b) in zip(
        whole.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed_summary["dev_history"] == summary["dev_history"]


def test_the_checkpoint_interval_is_no_part_of_what_a_checkpoint_must_match():
    """A run resumes whatever interval wrote its checkpoint, and the switches added since
    checkpoints existed leave the key of a run that does not set them as it was."""
    from regurgitate.engine.train import _fingerprinted

    other = TrainConfig(**{**CHECKPOINTED.__dict__, "checkpoint_minutes": 0})
    assert _fingerprinted(other) == _fingerprinted(CHECKPOINTED)
    assert "deterministic" not in _fingerprinted(TrainConfig())
    assert _fingerprinted(TrainConfig(deterministic=True))["deterministic"] is True


def test_a_checkpoint_of_the_optimizer_before_issue_27_resumes_on_the_fused_kernel(
    tmp_path, toy_tokenizer, toy_pairs, monkeypatch
):
    """Training steps AdamW with torch's fused kernel (issue 27); a checkpoint written before,
    whose optimizer state names the per-parameter loop, resumes on the fused kernel too, not on
    the one the checkpoint names."""
    import regurgitate.engine.train as train_module

    optimizers = []

    def recorded(model, cfg):
        optimizers.append(make_optimizer(model, cfg))
        return optimizers[-1]

    monkeypatch.setattr(train_module, "make_optimizer", recorded)
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    cfg = TrainConfig(max_tokens=400, warmup_steps=5, max_steps=6, eval_every=2, log_every=2)

    def kill_at_5(step):
        if step == 5:
            raise Killed

    checkpoint = tmp_path / "c.pt"
    with pytest.raises(Killed):
        train(model_cfg, cfg, data, dev, toy_tokenizer, checkpoint, on_step=kill_at_5)
    assert all(group["fused"] for group in optimizers[0].param_groups)
    saved = torch.load(checkpoint, weights_only=False)
    for group in saved["optimizer"]["param_groups"]:
        group.update(fused=None, foreach=None)  # as AdamW's defaults wrote them before
    torch.save(saved, checkpoint)
    started = []
    train(model_cfg, cfg, data, dev, toy_tokenizer, checkpoint, on_step=started.append)
    assert started[0] == 5  # resumed from step 4's checkpoint
    assert all(group["fused"] for group in optimizers[1].param_groups)
