import pytest
import torch

from regurgitate.engine.batching import encode_pairs
from regurgitate.engine.model import ModelConfig
from regurgitate.engine.train import DevSet, TrainConfig, learning_rate, train


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


def test_resumed_training_ends_like_uninterrupted(tmp_path, toy_tokenizer, toy_pairs):
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    cfg = TrainConfig(
        max_tokens=400,
        lr=3e-3,
        warmup_steps=5,
        max_steps=24,
        eval_every=6,
        patience=100,
        log_every=5,
        seed=3,
    )
    whole, summary = train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "a.pt")

    def kill_at_14(step):
        if step == 14:
            raise Killed

    with pytest.raises(Killed):
        train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "b.pt", on_step=kill_at_14)
    assert torch.load(tmp_path / "b.pt", weights_only=False)["state"]["step"] == 12
    resumed, resumed_summary = train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "b.pt")
    for (name, a), (_, b) in zip(
        whole.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed_summary["dev_history"] == summary["dev_history"]
    assert resumed_summary["steps"] == 24


def test_checkpoint_of_other_configuration_is_not_resumed(tmp_path, toy_tokenizer, toy_pairs):
    data, dev, model_cfg = setup(toy_tokenizer, toy_pairs)
    cfg = TrainConfig(max_tokens=400, warmup_steps=5, max_steps=6, eval_every=3, log_every=3)
    train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "c.pt")
    other = TrainConfig(max_tokens=400, warmup_steps=5, max_steps=9, eval_every=3, log_every=3)
    _, summary = train(model_cfg, other, data, dev, toy_tokenizer, tmp_path / "c.pt")
    assert [h["step"] for h in summary["dev_history"]] == [3, 6, 9]


def test_training_learns_and_stops_early(tmp_path, toy_tokenizer, toy_pairs):
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
    _, summary = train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "d.pt")
    history = [h["chrf"] for h in summary["dev_history"]]
    assert summary["best_dev_chrf"] == max(history)
    assert summary["best_dev_chrf"] > 40  # word-for-word toy translation is learnable
    if summary["steps"] < 400:  # stopped early: the last `patience` evaluations did not improve
        assert max(history[-2:]) <= summary["best_dev_chrf"]
        assert summary["best_step"] < summary["steps"]
    assert summary["target_tokens_per_second"] > 0


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
    assert summary["epochs_completed"] == 2
    assert [h["step"] for h in summary["dev_history"]] == [summary["steps"]]
