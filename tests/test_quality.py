import math

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F
from sacrebleu.metrics import CHRF

from regurgitate.analysis.quality import (
    aligned_targets,
    confidence,
    consensus,
    correlation_table,
    dual_cross_entropy,
    oracle,
    quality_table,
    rank_correlation,
    reverse_direction,
    round_trip,
)
from regurgitate.engine.decode import _Decoder
from regurgitate.engine.model import ModelConfig, Transformer, save_model
from regurgitate.engine.scoring import pair_nll
from regurgitate.io import write_parquet
from regurgitate.jobs.quality_models import pair_nll as pair_nll_job


def chrf(hyp: str, ref: str) -> float:
    return CHRF().sentence_score(hyp, [ref]).score


def test_confidence_is_logprob_per_position_eos_included():
    values = confidence(pl.Series([-6.0, -2.0, 0.0]), pl.Series([2, 3, 0]))
    np.testing.assert_allclose(values, [-2.0, -0.5, 0.0])
    np.testing.assert_allclose(confidence([-6.0], [2], counts_eos=False), [-3.0])
    # Higher is better: a sure pair outranks a doubtful one of the same length.
    sure, doubtful = confidence([-1.0, -5.0], [4, 4])
    assert sure > doubtful


def test_confidence_refuses_rows_without_logprob():
    with pytest.raises(ValueError, match="1 of 3 rows have no logprob .*row 1"):
        confidence([-1.0, None, -2.0], [1, 2, 3])
    with pytest.raises(ValueError, match="differ in length"):
        confidence([-1.0], [1, 2])


def test_consensus_is_the_mean_chrf_against_the_other_generators():
    targets = ["a man plays with a ball", "the dog runs"]
    first = ["a man plays with the ball", "a dog runs"]
    second = ["a man is playing", "the dog runs"]
    expected = [(chrf(targets[i], first[i]) + chrf(targets[i], second[i])) / 2 for i in range(2)]
    np.testing.assert_allclose(consensus(targets, [first, second]), expected)
    with pytest.raises(ValueError, match="at least one other generator"):
        consensus(targets, [])
    with pytest.raises(ValueError, match="differ in length"):
        consensus(targets, [first[:1]])


def test_round_trip_and_oracle_are_sentence_chrf():
    sources = ["ein mann spielt", "eine frau läuft"]
    back = ["ein mann spielt", "ein kind sitzt"]
    np.testing.assert_allclose(round_trip(back, sources), [100.0, chrf(back[1], sources[1])])
    assert round_trip(back, sources)[1] < 50
    np.testing.assert_allclose(oracle(back, sources), round_trip(back, sources))


def test_dual_cross_entropy_by_hand():
    # H_f = 1.0, H_r = 3.0: -(2 + 2) = -4. Equal 1.5 and 1.5: -(0 + 1.5) = -1.5.
    np.testing.assert_allclose(dual_cross_entropy([1.0, 1.5], [3.0, 1.5]), [-4.0, -1.5])
    # Same mean NLL, but the agreeing pair ranks higher.
    agree, disagree = dual_cross_entropy([2.0, 1.0], [2.0, 3.0])
    assert agree > disagree
    with pytest.raises(ValueError, match="differ in length"):
        dual_cross_entropy([1.0], [1.0, 2.0])


def test_spearman_on_a_hand_computed_case():
    # Ranks x: 1 2 3 4 5, y: 2 1 4 3 5; sum d^2 = 4, rho = 1 - 6 * 4 / (5 * 24) = 0.8.
    result = rank_correlation([10, 20, 30, 40, 50], [0.2, 0.1, 0.4, 0.3, 0.5])
    assert result["rho"] == pytest.approx(0.8)
    assert result["n"] == 5
    # Bonett-Wright interval by hand.
    half = 1.959964 * math.sqrt((1 + 0.8**2 / 2) / 2)
    assert result["ci_low"] == pytest.approx(math.tanh(math.atanh(0.8) - half), abs=1e-5)
    assert result["ci_high"] == pytest.approx(math.tanh(math.atanh(0.8) + half), abs=1e-5)
    assert 0 < result["p_value"] < 1


def test_rank_correlation_on_a_large_sample():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=2000)
    related = rank_correlation(truth + rng.normal(size=2000), truth)
    assert 0.6 < related["ci_low"] < related["rho"] < related["ci_high"] < 0.8
    assert related["p_value"] < 1e-10
    unrelated = rank_correlation(rng.normal(size=2000), truth)
    assert unrelated["ci_low"] < 0 < unrelated["ci_high"]
    # Monotone transforms do not change a rank correlation.
    assert rank_correlation(np.exp(truth), truth)["rho"] == pytest.approx(1.0)


def test_rank_correlation_edge_cases():
    assert math.isnan(rank_correlation([1, 1, 1, 1], [1, 2, 3, 4])["rho"])
    assert rank_correlation([1, 2, 3], [3, 2, 1])["ci_low"] is None
    with pytest.raises(ValueError, match="NaN"):
        rank_correlation([1, float("nan")], [1, 2])
    with pytest.raises(ValueError, match="differ in length"):
        rank_correlation([1, 2], [1, 2, 3])


def test_aligned_targets_follow_the_ids():
    synthetic = pl.DataFrame({"id": ["b", "a"], "target": ["B", "A"], "source": ["x", "y"]})
    assert aligned_targets(["a", "b"], synthetic, "weak") == ["A", "B"]
    with pytest.raises(ValueError, match="'weak' has no target for 1 ids .*first: c"):
        aligned_targets(["a", "c"], synthetic, "weak")


def test_reverse_direction_swaps_sides():
    pairs = pl.DataFrame({"id": ["1"], "source": ["de"], "target": ["en"], "logprob": [-1.0]})
    assert reverse_direction(pairs).to_dicts() == [{"id": "1", "source": "en", "target": "de"}]
    with pytest.raises(ValueError, match="lack the columns"):
        reverse_direction(pairs.drop("target"))


@pytest.fixture(scope="module")
def random_model(toy_tokenizer):
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=toy_tokenizer.vocab_size,
        d_model=32,
        heads=2,
        encoder_layers=1,
        decoder_layers=1,
        ffn_dim=64,
        dropout=0.0,
        max_positions=64,
    )
    model = Transformer(cfg).eval()
    with torch.no_grad():  # make EOS reachable, so that decoded targets end
        model.embed.weight[toy_tokenizer.eos_id] *= 4
    return model


def nll_one_pair(model, tokenizer, source: str, target: str) -> float:
    """The target's mean NLL from one unpadded forward pass, pad and BOS masked."""
    src = torch.tensor([tokenizer.encode([source])[0] + [tokenizer.eos_id]])
    tgt = tokenizer.encode([target])[0]
    with torch.no_grad():
        logits = model(src, torch.tensor([[tokenizer.bos_id] + tgt]))[0]
    logits[:, [tokenizer.pad_id, tokenizer.bos_id]] = float("-inf")
    logp = F.log_softmax(logits, dim=-1)
    gold = torch.tensor(tgt + [tokenizer.eos_id])
    return float(-logp[torch.arange(len(gold)), gold].mean())


def test_pair_nll_equals_the_loss_of_each_pair_alone(random_model, toy_tokenizer, toy_pairs):
    sources = [s for s, _ in toy_pairs[:24]]
    targets = [t for _, t in toy_pairs[:24]]
    batched = pair_nll(random_model, toy_tokenizer, sources, targets, 400, "cpu")
    expected = [
        nll_one_pair(random_model, toy_tokenizer, s, t)
        for s, t in zip(sources, targets, strict=True)
    ]
    np.testing.assert_allclose(batched, expected, rtol=1e-5)
    # Padding and batch composition leave each pair's score alone.
    one_by_one = pair_nll(random_model, toy_tokenizer, sources, targets, 1, "cpu")
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5)
    with pytest.raises(ValueError, match="24 sources but 23 targets"):
        pair_nll(random_model, toy_tokenizer, sources, targets[:23], 400, "cpu")


def nll_by_cached_decoding(model, tokenizer, source: str, target: str) -> float:
    """The target's mean NLL scored one token at a time through beam search's decoder and its
    key/value cache (pad and BOS banned as the search bans them)."""
    src = torch.tensor([tokenizer.encode([source])[0] + [tokenizer.eos_id]])
    gold = tokenizer.encode([target])[0] + [tokenizer.eos_id]
    decoder = _Decoder(model, src, len(gold), banned=[tokenizer.pad_id, tokenizer.bos_id])
    previous, total = tokenizer.bos_id, 0.0
    with torch.no_grad():
        for token in gold:
            logits = decoder.step(torch.tensor([previous]), beams=1)[0]
            total -= float(F.log_softmax(logits, dim=-1)[token])
            previous = token
    return total / len(gold)


def test_pair_nll_agrees_with_cached_decoding(random_model, toy_tokenizer, toy_pairs):
    sources = [s for s, _ in toy_pairs[40:52]]
    targets = [t for _, t in toy_pairs[40:52]]
    nll = pair_nll(random_model, toy_tokenizer, sources, targets, 400, "cpu")
    expected = [
        nll_by_cached_decoding(random_model, toy_tokenizer, s, t)
        for s, t in zip(sources, targets, strict=True)
    ]
    np.testing.assert_allclose(nll, expected, rtol=1e-4)


def test_pair_nll_job_scores_both_directions(tmp_path, random_model, toy_tokenizer, toy_pairs):
    pairs = pl.DataFrame(
        {
            "id": ["p1", "p2"],
            "source": [toy_pairs[0][0], toy_pairs[1][0]],
            "target": [toy_pairs[0][1], toy_pairs[1][1]],
        }
    )
    write_parquet(pairs, tmp_path / "pairs.parquet")
    save_model(random_model, tmp_path / "model.pt")
    inputs = {
        "model_path": tmp_path / "model.pt",
        "tokenizer_path": toy_tokenizer.path,
        "pairs_path": tmp_path / "pairs.parquet",
    }
    fp32 = {"device": "cpu", "precision": "fp32"}
    forward = pair_nll_job(**inputs, out=tmp_path / "f.parquet", **fp32)
    reverse = pair_nll_job(**inputs, out=tmp_path / "r.parquet", reverse=True, **fp32)
    assert pl.read_parquet(tmp_path / "f.parquet").equals(forward)
    assert forward["id"].to_list() == ["p1", "p2"]
    expected = [nll_one_pair(random_model, toy_tokenizer, t, s) for s, t in toy_pairs[:2]]
    np.testing.assert_allclose(reverse["nll"], expected, rtol=1e-5)


def quality_inputs():
    student = pl.DataFrame(
        {
            "id": ["a", "b", "c"],
            "source": ["ein hund", "eine katze", "ein mann"],
            "target": ["a dog", "a cat", "a man"],
        }
    )
    synthetic = pl.DataFrame(
        {
            "id": ["c", "b", "a"],
            "source": ["ein mann", "eine katze", "ein hund"],
            "target": ["a man", "the cat", "dog dog"],
            "logprob": [-1.0, -4.0, -9.0],
            "tokens": [2, 3, 2],
        }
    )
    rival = synthetic.with_columns(pl.Series("target", ["a man", "a cat", "a dog"]))
    back = pl.DataFrame({"id": ["a", "b", "c"], "target": ["hund hund", "die katze", "ein mann"]})
    forward = pl.DataFrame({"id": ["a", "b", "c"], "nll": [3.0, 1.0, 0.5]})
    reverse = pl.DataFrame({"id": ["c", "b", "a"], "nll": [0.5, 2.0, 1.0]})
    return student, synthetic, rival, back, forward, reverse


def test_quality_table_aligns_every_input_by_id():
    student, synthetic, rival, back, forward, reverse = quality_inputs()
    table = quality_table(
        student,
        synthetic,
        "weak",
        ["confidence", "consensus", "round_trip", "dual_cross_entropy", "oracle"],
        others={"strong": rival},
        back_translations=back,
        forward_nll=forward,
        reverse_nll=reverse,
    )
    assert table["id"].to_list() == ["a", "b", "c"]
    np.testing.assert_allclose(table["confidence"], [-3.0, -1.0, -1.0 / 3])
    np.testing.assert_allclose(
        table["consensus"], [chrf("dog dog", "a dog"), chrf("the cat", "a cat"), 100.0]
    )
    np.testing.assert_allclose(
        table["round_trip"], [chrf("hund hund", "ein hund"), chrf("die katze", "eine katze"), 100.0]
    )
    np.testing.assert_allclose(table["dual_cross_entropy"], [-(2 + 2), -(1 + 1.5), -0.5])
    np.testing.assert_allclose(
        table["oracle"], [chrf("dog dog", "a dog"), chrf("the cat", "a cat"), 100.0]
    )
    correlations = correlation_table(table, "weak")
    assert correlations["metric"].to_list() == [
        "confidence",
        "consensus",
        "round_trip",
        "dual_cross_entropy",
    ]
    assert correlations.filter(pl.col("metric") == "consensus")["rho"][0] == pytest.approx(1.0)
    assert set(correlations["generator"]) == {"weak"}


def test_quality_table_names_what_is_missing():
    student, synthetic, rival, back, forward, reverse = quality_inputs()
    with pytest.raises(ValueError, match=r"\['round_trip'\] of 'weak' lack their inputs"):
        quality_table(student, synthetic, "weak", ["oracle", "round_trip"])
    with pytest.raises(ValueError, match="unknown quality metrics \\['bleu'\\]"):
        quality_table(student, synthetic, "weak", ["bleu"])
    with pytest.raises(ValueError, match="reverse scores has no nll for 1 ids"):
        quality_table(
            student,
            synthetic,
            "weak",
            ["dual_cross_entropy"],
            forward_nll=forward,
            reverse_nll=reverse.head(2),
        )
    with pytest.raises(ValueError, match="no oracle column"):
        correlation_table(pl.DataFrame({"id": ["a"], "confidence": [1.0]}), "weak")
