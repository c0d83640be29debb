"""Paired bootstrap and approximate randomisation over test sentences, combining seeds."""

import json
import os
import random
import shutil
import subprocess

import pytest

from regurgitate.analysis.significance import (
    approximate_randomisation,
    differences_to_baseline,
    paired_bootstrap,
)

WORDS = "the a cat dog sat on mat red blue big small house tree runs jumps over".split()  # noqa: SIM905


def _corrupt(words: list[str], keep: float, rng: random.Random) -> str:
    return " ".join(w if rng.random() < keep else rng.choice(WORDS) for w in words)


def _systems(n: int = 60, seed: int = 3) -> tuple[list[str], list[str], list[str]]:
    """References, a weaker and a stronger system (each word kept with p 0.6 and 0.7)."""
    rng = random.Random(seed)
    refs, weak, strong = [], [], []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        refs.append(" ".join(words))
        weak.append(_corrupt(words, 0.6, rng))
        strong.append(_corrupt(words, 0.7, rng))
    return refs, weak, strong


@pytest.mark.skipif(shutil.which("sacrebleu") is None, reason="sacrebleu's command line is needed")
@pytest.mark.parametrize(
    ("flag", "count_flag", "n"),
    [("--paired-bs", "--paired-bs-n", 1000), ("--paired-ar", "--paired-ar-n", 2000)],
)
def test_one_seed_is_sacrebleus_command_line(tmp_path, flag, count_flag, n):
    refs, weak, strong = _systems()
    for name, lines in {"ref": refs, "bl": weak, "sys": strong}.items():
        (tmp_path / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = subprocess.run(
        [
            "sacrebleu",
            "ref.txt",
            "-i",
            "bl.txt",
            "sys.txt",
            "-m",
            "bleu",
            flag,
            count_flag,
            str(n),
            "-f",
            "json",
        ],
        cwd=tmp_path,
        env={**os.environ, "SACREBLEU_SEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    expected = json.loads(out.stdout)[1]["BLEU"]["p_value"]
    if flag == "--paired-bs":
        result = paired_bootstrap(refs, [weak], [strong], resamples=n, seed=12345)
        assert result.p_value == pytest.approx(expected, abs=1e-12)
        assert result.delta == pytest.approx(
            json.loads(out.stdout)[1]["BLEU"]["score"] - json.loads(out.stdout)[0]["BLEU"]["score"]
        )
    else:
        assert approximate_randomisation(
            refs, [weak], [strong], trials=n, seed=12345
        ) == pytest.approx(expected, abs=1e-12)


def test_identical_systems_are_not_different():
    refs, weak, _ = _systems()
    result = paired_bootstrap(refs, [weak, weak], [weak, weak])
    assert (result.delta, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert approximate_randomisation(refs, [weak], [weak], trials=500) == 1.0


def test_a_system_better_on_every_sentence_is_significant():
    refs, weak, _ = _systems(n=80)
    # Perfect translations against the noisy ones: better on every sentence.
    result = paired_bootstrap(refs, [weak], [refs], resamples=500)
    assert result.p_value < 0.01
    assert 0 < result.low < result.delta < result.high
    assert approximate_randomisation(refs, [weak], [refs], trials=500) < 0.01


def test_noise_is_not_significant():
    """Two systems of the same quality: their difference is inside the interval of zero."""
    refs, _, _ = _systems(n=80, seed=1)
    rng = random.Random(7)
    a = [_corrupt(r.split(), 0.7, rng) for r in refs]
    b = [_corrupt(r.split(), 0.7, rng) for r in refs]
    result = paired_bootstrap(refs, [a], [b], resamples=500)
    assert result.low < 0 < result.high
    assert result.p_value > 0.05
    assert approximate_randomisation(refs, [a], [b], trials=500) > 0.05


def test_seeds_are_averaged_on_the_same_sentences():
    refs, weak, strong = _systems()
    one = paired_bootstrap(refs, [weak], [strong], resamples=300)
    # Seed 2 of the system equals the baseline: the mean difference halves, for every resample
    # too, because both seeds are resampled on the same sentences.
    two = paired_bootstrap(refs, [weak, weak], [strong, weak], resamples=300)
    assert two.delta == pytest.approx(one.delta / 2)
    assert (two.low, two.high) == pytest.approx((one.low / 2, one.high / 2))
    assert two.n_seeds == 2


def test_misaligned_translations_are_an_error():
    refs, weak, strong = _systems()
    with pytest.raises(ValueError, match="59 hypotheses for 60 references"):
        paired_bootstrap(refs, [weak], [strong[:-1]])
    with pytest.raises(ValueError, match="paired seeds"):
        paired_bootstrap(refs, [weak, weak], [strong])


def test_every_condition_is_compared_with_real_at_its_size():
    refs, weak, strong = _systems(n=80)
    hypotheses = {
        ("scratch", "real", 100, 1): strong,
        ("scratch", "real", 100, 2): strong,
        ("scratch", "gen-weak", 100, 1): weak,
        ("scratch", "gen-weak", 100, 2): weak,
        ("scratch", "self", 100, 2): strong,  # only seed 2 is paired
        ("scratch", "real", 300, 1): weak,
        ("scratch", "gen-weak", 300, 1): refs,
    }
    table = differences_to_baseline(refs, hypotheses, "real", resamples=200, trials=200)
    rows = {(r["condition"], r["size"]): r for r in table.iter_rows(named=True)}
    assert sorted(rows) == [("gen-weak", 100), ("gen-weak", 300), ("self", 100)]
    assert rows[("self", 100)]["bleu_delta"] == 0.0 and not rows[("self", 100)]["significant"]
    assert rows[("self", 100)]["paired_seeds"] == 1
    assert rows[("gen-weak", 300)]["bleu_delta"] == pytest.approx(100 - sacrebleu_bleu(weak, refs))
    assert rows[("gen-weak", 300)]["significant"]
    assert rows[("gen-weak", 100)]["bleu_delta"] < 0


def sacrebleu_bleu(hypotheses, references):
    from sacrebleu.metrics import BLEU

    return BLEU().corpus_score(hypotheses, [references]).score
