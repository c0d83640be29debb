import polars as pl
import pytest
from matplotlib.collections import PolyCollection

from regurgitate.analysis.diversity import MEASURES, MIN_DIVERSITY_TOKENS
from regurgitate.analysis.mechanisms import mechanisms_table, source_mechanisms
from regurgitate.analysis.translation_errors import FLAGS
from regurgitate.plots.mechanisms import plot_loss_vs_mechanisms, plot_mechanisms

SETTINGS = {"chrf_threshold": 50.0, "sample_tokens": 300, "bootstrap": 10, "seed": 3}


@pytest.fixture
def student(toy_pairs):
    pairs = toy_pairs[:200]
    return pl.DataFrame(
        {
            "id": [f"student-{i:06d}" for i in range(len(pairs))],
            "source": [de for de, _ in pairs],
            "target": [en for _, en in pairs],
        }
    )


def degraded(student: pl.DataFrame) -> pl.DataFrame:
    """A generator that gets every other sentence right and copies the source otherwise."""
    targets = [
        target if i % 2 == 0 else source
        for i, (source, target) in enumerate(zip(student["source"], student["target"], strict=True))
    ]
    return student.with_columns(target=pl.Series(targets))


def test_human_source_has_flags_and_diversity_but_no_error_rate(student):
    record = source_mechanisms(student, None, "human", **SETTINGS)
    assert record["error_rate"] is None and record["sentence_chrf"] is None
    assert record["n"] == 200
    assert set(record["flags"]) == set(FLAGS)
    assert set(record["diversity"]) == set(MEASURES)


def test_generator_errors_are_counted_against_the_human_targets(student):
    record = source_mechanisms(student, degraded(student)[::-1], "weak", **SETTINGS)
    assert record["error_rate"] == pytest.approx(0.5)
    assert record["flags"]["copied_source"] == 100
    scores = record["sentence_chrf"]
    assert len(scores) == 200 and sum(s == 100 for s in scores) == 100


def test_same_seed_samples_the_same_sentences_for_every_source(student):
    human = source_mechanisms(student, None, "human", **SETTINGS)
    copy = source_mechanisms(student, student, "mirror", **SETTINGS)
    assert copy["diversity"] == human["diversity"]
    assert copy["error_rate"] == 0.0


def test_too_small_a_source_names_the_source(student):
    with pytest.raises(ValueError, match="weak: cannot sample 100000 tokens"):
        source_mechanisms(
            student, degraded(student), "weak", **(SETTINGS | {"sample_tokens": 100000})
        )


def mechanisms_of(student):
    records = [
        source_mechanisms(student, degraded(student), "weak", **SETTINGS),
        source_mechanisms(student, None, "human", **SETTINGS),
    ]
    losses = pl.DataFrame(
        {
            "generator": ["weak", "weak"],
            "experiment": ["scratch", "finetune"],
            "size": [8000, 8000],
            "loss_mean": [4.0, 2.0],
            "loss_ci_low": [3.0, 1.0],
            "loss_ci_high": [5.0, 3.0],
            "n_seeds": [2, 2],
        }
    )
    return records, mechanisms_table(records, losses, {"weak": 12.5})


def test_table_has_a_row_per_source_human_first(student):
    _, table = mechanisms_of(student)
    assert table["source"].to_list() == ["human", "weak"]
    weak = table.row(1, named=True)
    assert weak["error_rate"] == pytest.approx(0.5)
    assert weak["copied_source_share"] == pytest.approx(0.5)
    assert weak["generator_bleu"] == 12.5
    assert weak["bleu_loss_scratch_mean"] == 4.0 and weak["bleu_loss_finetune_ci_high"] == 3.0
    assert table.row(0, named=True)["bleu_loss_scratch_mean"] is None
    for measure in MEASURES:
        assert (table[f"{measure}_ci_low"] <= table[measure] + 1e-9).all()


def test_figures_draw_every_source(student):
    records, table = mechanisms_of(student)
    chrf = {r["source"]: r["sentence_chrf"] for r in records if r["sentence_chrf"]}
    figure = plot_mechanisms(table, chrf, 50.0)
    assert len(figure.axes) == 4
    assert [t.get_text() for t in figure.axes[2].get_xticklabels()] == ["human", "weak"]
    loss = plot_loss_vs_mechanisms(table, ["scratch", "finetune"])
    # one point per generator and experiment in each of the three panels
    assert all(len(ax.containers) == 2 for ax in loss.axes)


def test_every_source_gets_the_sample_the_smallest_can_give(student, tmp_path, caplog):
    from regurgitate.jobs.analyze import mechanisms_sample_size

    student.write_parquet(tmp_path / "student.parquet")
    short = student.with_columns(target=pl.lit("a dog ."))
    short.write_parquet(tmp_path / "short.parquet")
    settings = {"sample_tokens": 100000, "keep_punctuation": False}
    with caplog.at_level("WARNING"):
        record = mechanisms_sample_size(
            student_path=tmp_path / "student.parquet",
            synthetic_paths={"short": str(tmp_path / "short.parquet")},
            settings=settings,
            out=tmp_path / "size.json",
        )
    assert record["totals"]["short"] == 2 * student.height  # "." is not a word
    assert record["sample_tokens"] == 2 * student.height
    assert "capped" in caplog.text and "short" in caplog.text


def test_a_source_too_small_to_measure_gets_no_diversity(student, tmp_path):
    """A generator that writes almost nothing (fewer tokens than MIN_DIVERSITY_TOKENS) is left
    out of the common sample: its record has no diversity, its table row null diversity
    columns, and the figures draw the other sources."""
    from regurgitate.jobs.analyze import mechanisms_sample_size, mechanisms_source

    targets = ["a dog" if i < 10 else "" for i in range(student.height)]
    mute = student.with_columns(target=pl.Series(targets))
    student.write_parquet(tmp_path / "student.parquet")
    mute.write_parquet(tmp_path / "mute.parquet")
    settings = SETTINGS | {"keep_punctuation": False}
    size = mechanisms_sample_size(
        student_path=tmp_path / "student.parquet",
        synthetic_paths={"mute": str(tmp_path / "mute.parquet")},
        settings=settings,
        out=tmp_path / "size.json",
    )
    assert size["totals"]["mute"] == 20 < MIN_DIVERSITY_TOKENS
    assert size["excluded"] == ["mute"] and size["sample_tokens"] == SETTINGS["sample_tokens"]
    records = [
        mechanisms_source(
            student_path=tmp_path / "student.parquet",
            synthetic_path=synthetic,
            name=name,
            settings=settings,
            sample_size_path=tmp_path / "size.json",
            seed=SETTINGS["seed"],
            out=tmp_path / f"{name}.json",
        )
        for name, synthetic in (("human", None), ("mute", tmp_path / "mute.parquet"))
    ]
    human, mute_record = records
    assert mute_record["diversity"] is None and mute_record["sample_tokens"] is None
    assert mute_record["error_rate"] > 0.9
    assert set(human["diversity"]) == set(MEASURES)
    table = mechanisms_table(records, pl.DataFrame(schema=LOSS_SCHEMA), {"mute": 0.5})
    row = table.row(1, named=True)
    assert row["source"] == "mute" and row["generator_bleu"] == 0.5
    for measure in MEASURES:
        assert row[measure] is None and row[f"{measure}_ci_low"] is None
        assert row[f"{measure}_ci_high"] is None
        assert table.row(0, named=True)[measure] is not None
    chrf = {r["source"]: r["sentence_chrf"] for r in records if r["sentence_chrf"]}
    figure = plot_mechanisms(table, chrf, 50.0)
    assert [t.get_text() for t in figure.axes[2].get_xticklabels()] == ["human"]


LOSS_SCHEMA = {
    "generator": pl.String,
    "experiment": pl.String,
    "size": pl.Int64,
    **{f"loss_{stat}": pl.Float64 for stat in ("mean", "ci_low", "ci_high")},
}


def test_loss_is_a_curve_over_the_generator_ladder():
    ladder = pl.DataFrame(
        {
            "source": ["human", "g1", "g2", "g3", "g4"],
            "error_rate": [None, 0.8, 0.5, 0.3, 0.1],
            "mtld": [50.0, 8.0, 15.0, 20.0, 30.0],
            "mtld_ci_low": [49.0, 7.0, 14.0, 19.0, 29.0],
            "mtld_ci_high": [51.0, 9.0, 16.0, 21.0, 31.0],
            "generator_bleu": [None, 5.0, 12.0, 20.0, 28.0],
            "bleu_loss_scratch_mean": [None, 15.0, 9.0, 4.0, 1.0],
            "bleu_loss_scratch_ci_low": [None, 14.0, 8.0, 3.0, 0.0],
            "bleu_loss_scratch_ci_high": [None, 16.0, 10.0, 5.0, 2.0],
        }
    )
    figure = plot_loss_vs_mechanisms(ladder, ["scratch"])
    for ax, column in zip(figure.axes, ["error_rate", "mtld", "generator_bleu"], strict=True):
        (curve,) = [line for line in ax.get_lines() if line.get_label() == "E2 scratch"]
        order = ladder.filter(pl.col("source") != "human").sort(column)
        assert list(curve.get_xdata()) == order[column].to_list()
        assert list(curve.get_ydata()) == order["bleu_loss_scratch_mean"].to_list()
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 1  # the interval band
        assert len(ax.containers) == 4  # a point with its interval per generator
