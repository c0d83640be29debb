"""Recursion: each regime's curricula, the tail measure, the table, the figure, the config, and
the order of generations in the workflow's DAG."""

import re

import numpy as np
import polars as pl
import pytest
import yaml
from conftest import REPO, run_snakemake

from regurgitate.analysis.recursion import (
    generation_differences,
    generation_measures,
    measure_values,
    rare_words,
    recursion_table,
    summarise_runs,
    tail_profile,
)
from regurgitate.jobs.curricula import curriculum_recursion
from regurgitate.plots.recursion import PANELS, plot_recursion
from regurgitate.study.config import (
    ConfigError,
    check_config,
    recursion_runs,
    recursion_training,
)
from regurgitate.study.recursion import lineage_pairs, parents, regime_curriculum

K = 12  # sources of the constructed lineage


def human() -> pl.DataFrame:
    """Generation 0's curriculum: K sources in a seeded order, human targets."""
    order = [7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6]
    return pl.DataFrame(
        {
            "id": [f"s{i}" for i in order],
            "source": [f"quelle {i}" for i in order],
            "target": [f"human {i}" for i in order],
            "origin": ["human"] * K,
        }
    )


def translations(generation: int) -> pl.DataFrame:
    """Generation g's translations of the lineage's sources, in another row order."""
    rows = human().sort("id")
    return rows.select(
        "id", "source", pl.format("gen{} {}", pl.lit(generation), pl.col("id")).alias("target")
    )


def written_by(row: dict) -> str:
    """The target a curriculum row must hold, given the origin it claims."""
    number = row["id"][1:]
    if row["origin"] == "human":
        return f"human {number}"
    generation = int(row["origin"].removeprefix("generation-"))
    return f"gen{generation} s{number}"


def build(regime: str, generation: int, **kwargs) -> pl.DataFrame:
    wanted = parents(regime, generation)
    return regime_curriculum(
        regime, generation, human(), {g: translations(g) for g in wanted}, seed=3, **kwargs
    )


def assert_targets_match_origins(curriculum: pl.DataFrame) -> None:
    for row in curriculum.iter_rows(named=True):
        assert row["target"] == written_by(row), row


@pytest.mark.parametrize(
    "regime, generation, expected",
    [
        ("real", 0, []),
        ("replace", 1, [0]),
        ("replace", 4, [3]),
        ("real-share", 3, [2]),
        ("accumulate", 1, [0]),
        ("accumulate", 4, [0, 1, 2, 3]),
        ("accumulate-fixed", 3, [0, 1, 2]),
    ],
)
def test_each_generation_reads_only_the_generations_it_trains_on(regime, generation, expected):
    assert parents(regime, generation) == expected


@pytest.mark.parametrize("regime, generation", [("real", 1), ("replace", 0), ("copy", 2)])
def test_generation_zero_is_real_and_only_real(regime, generation):
    with pytest.raises(ValueError, match="generation 0|not a regime"):
        parents(regime, generation)


@pytest.mark.parametrize("generation", [1, 2, 5])
def test_replace_trains_on_the_previous_generation_alone(generation):
    curriculum = build("replace", generation)
    assert curriculum.height == K
    assert sorted(curriculum["id"]) == sorted(human()["id"])
    assert set(curriculum["origin"]) == {f"generation-{generation - 1}"}
    assert_targets_match_origins(curriculum)


@pytest.mark.parametrize("generation", [1, 2, 4])
def test_accumulate_keeps_the_human_pairs_and_every_earlier_generation(generation):
    curriculum = build("accumulate", generation)
    assert curriculum.height == K * (generation + 1)
    origins = dict(curriculum["origin"].value_counts().iter_rows())
    assert origins == {"human": K} | {f"generation-{g}": K for g in range(generation)}
    # Every source once per origin.
    assert not curriculum.select("id", "origin").is_duplicated().any()
    assert_targets_match_origins(curriculum)


@pytest.mark.parametrize("generation", [1, 2, 3, 5])
def test_accumulate_fixed_keeps_its_size_and_shares_every_prefix_equally(generation):
    curriculum = build("accumulate-fixed", generation)
    origins = ["human", *[f"generation-{g}" for g in range(generation)]]
    assert curriculum.height == K
    assert sorted(curriculum["id"]) == sorted(human()["id"])  # one target per source
    for k in range(1, K + 1):
        counts = curriculum.head(k)["origin"].value_counts()
        shares = dict(counts.iter_rows())
        assert set(shares) <= set(origins)
        present = [shares.get(origin, 0) for origin in origins]
        assert max(present) - min(present) <= 1, (k, shares)
    assert_targets_match_origins(curriculum)


@pytest.mark.parametrize("percent", [25, 50])
@pytest.mark.parametrize("generation", [1, 3])
def test_real_share_keeps_its_share_of_human_pairs_in_every_prefix(percent, generation):
    curriculum = build("real-share", generation, real_share=percent)
    assert curriculum.height == K
    assert sorted(curriculum["id"]) == sorted(human()["id"])
    assert set(curriculum["origin"]) == {"human", f"generation-{generation - 1}"}
    is_human = (curriculum["origin"] == "human").to_list()
    for k in range(1, K + 1):
        assert sum(is_human[:k]) == k * percent // 100, k
    assert_targets_match_origins(curriculum)


def test_a_curriculum_refuses_other_generations_than_it_reads():
    with pytest.raises(ValueError, match=r"generations \[2\], got \[1\]"):
        regime_curriculum("replace", 3, human(), {1: translations(1)}, seed=1)
    with pytest.raises(ValueError, match="real_share"):
        build("real-share", 2)


def test_a_translation_of_other_sources_is_refused():
    wrong = translations(0).with_columns(pl.lit("andere quelle").alias("source"))
    with pytest.raises(ValueError, match="other sources"):
        regime_curriculum("replace", 1, human(), {0: wrong}, seed=1)


def test_generation_zero_is_a_prefix_of_the_real_curriculum():
    real = human()
    assert lineage_pairs(real, 5).equals(real.head(5))
    with pytest.raises(ValueError, match="13 pairs"):
        lineage_pairs(real, 13)


def test_the_curriculum_job_builds_every_generation_from_files(tmp_path):
    real_path = tmp_path / "real.parquet"
    human().write_parquet(real_path)
    root = tmp_path / "root.parquet"
    curriculum_recursion(regime="real", generation=0, size=8, out=root, real_path=real_path)
    assert pl.read_parquet(root)["id"].to_list() == human()["id"].head(8).to_list()
    paths = {}
    for g in (0, 1):
        paths[g] = str(tmp_path / f"gen{g}.parquet")
        translations(g).write_parquet(paths[g])
    out = tmp_path / "accumulate-2.parquet"
    curriculum = curriculum_recursion(
        regime="accumulate",
        generation=2,
        size=8,
        out=out,
        human_path=root,
        translation_paths=paths,
        seed=1,
    )
    assert pl.read_parquet(out).equals(curriculum)
    assert curriculum.height == 3 * 8
    assert_targets_match_origins(curriculum)


# --- the tail -------------------------------------------------------------------------------


REFERENCES = ["A cat sat.", "A dog ran.", "The cat ran fast!"]


def test_rare_words_are_the_words_seen_at_most_max_count_times():
    # a 2, cat 2, sat 1, dog 1, ran 2, the 1, fast 1; "." and "!" are not words.
    assert rare_words(REFERENCES, 1) == {"sat", "dog", "the", "fast"}
    assert rare_words(REFERENCES, 2) == {"a", "cat", "sat", "dog", "ran", "the", "fast"}


def test_the_tail_counts_the_rare_words_a_generation_still_writes():
    hypotheses = ["a cat sat down", "The dog.", "a cat ran"]
    assert tail_profile(REFERENCES, hypotheses, 1) == {
        "max_count": 1,
        "rare_words": 4,
        "produced": 3,  # sat, dog, the; not fast
        "share": 0.75,
    }
    assert tail_profile(REFERENCES, hypotheses, 2)["produced"] == 6  # all but fast
    assert tail_profile(REFERENCES, ["", "a cat"], 1)["share"] == 0


def test_rarity_can_come_from_a_larger_corpus():
    # In the pool, "a" and "ran" are frequent, "cat" twice, "sat", "dog", "the" and "fast" once
    # more than in the references; "unicorn" is rare but not in the references.
    pool = [*REFERENCES, "a a a ran ran", "a sat dog", "the fast unicorn"]
    assert tail_profile(REFERENCES, ["a cat sat", "the dog ran"], 2, pool) == {
        "max_count": 2,
        "rare_words": 5,  # cat, sat, dog, the, fast
        "produced": 4,  # all but fast
        "share": 0.8,
    }


def test_the_tail_needs_rare_words():
    with pytest.raises(ValueError, match="no word seen at most 1 times"):
        tail_profile(["a a", "b b"], ["a"], 1)


def test_generation_measures_hold_errors_diversity_and_tail():
    lineage = human().with_columns(target=pl.format("the {} walks a dog across the street", "id"))
    generated = lineage.select("id", "source", pl.lit("the the the the the").alias("target"))
    settings = {"chrf_threshold": 30, "bootstrap": 5, "seed": 1, "keep_punctuation": False}
    record = generation_measures(
        lineage, generated, "replace/1", sample_tokens=50, tail_max_count=1, **settings
    )
    assert record["error_rate"] == 1.0
    assert record["flags"]["repeated_ngrams"] == 0 and record["tail"]["produced"] == 0
    assert record["diversity"]["vocabulary"]["value"] == 1
    reference = generation_measures(
        lineage, None, "human", sample_tokens=50, tail_max_count=1, **settings
    )
    assert reference["error_rate"] is None and reference["tail"]["share"] == 1
    assert reference["diversity"]["mtld"]["value"] > record["diversity"]["mtld"]["value"]
    empty = generation_measures(
        lineage, generated, "replace/1", sample_tokens=None, tail_max_count=1, **settings
    )
    assert empty["diversity"] is None and empty["error_rate"] == 1.0
    assert measure_values(empty)["mtld"] is None
    assert measure_values(record)["mtld"] == record["diversity"]["mtld"]["value"]


# --- the table and the figure -----------------------------------------------------------------


def run_rows() -> pl.DataFrame:
    """Two seeds of generation 0 and two generations of replace and accumulate at 100 pairs:
    replace loses 5 BLEU a generation, accumulate keeps generation 0's."""
    rows = []
    for seed, noise in ((1, -0.5), (2, 0.5)):
        rows.append({"regime": "real", "generation": 0, "size": 100, "seed": seed, "bleu": 30})
        for g in (1, 2):
            rows.append(
                {"regime": "replace", "generation": g, "size": 100, "seed": seed}
                | {"bleu": 30 - 5 * g + noise}
            )
            rows.append(
                {"regime": "accumulate", "generation": g, "size": 100, "seed": seed}
                | {"bleu": 30 + noise}
            )
        rows.append({"regime": "human", "generation": None, "size": 100, "seed": seed})
    frame = pl.DataFrame(rows, schema_overrides={"bleu": pl.Float64})
    # Every other value tracks BLEU (human rows: MTLD 60, a full tail).
    human = pl.col("regime") == "human"
    return frame.with_columns(
        chrf=pl.col("bleu") * 2,
        error_rate=1 - pl.col("bleu") / 100,
        ter=100 - pl.col("bleu"),
        mtld=pl.when(human).then(60.0).otherwise(pl.col("bleu")),
        tail_share=pl.when(human).then(1.0).otherwise(pl.col("bleu") / 100),
        tail_words=pl.col("bleu"),
        rare_words=pl.lit(100.0),
        **{m: pl.col("bleu") for m in ("ttr", "mattr", "hdd", "distinct_1", "distinct_2")},
        **{m: pl.col("bleu") for m in ("vocabulary", "hapax_share", "compression_ratio")},
    )


def test_the_summary_is_a_mean_and_t_interval_over_seeds():
    summary = summarise_runs(run_rows())
    row = summary.filter((pl.col("regime") == "replace") & (pl.col("generation") == 2)).row(
        0, named=True
    )
    assert row["n_seeds"] == 2 and row["bleu_mean"] == pytest.approx(20)
    # t(0.975, 1) = 12.706; sd of 19.5 and 20.5 is 0.7071
    assert row["bleu_ci_high"] - 20 == pytest.approx(12.706 * 0.7071 / 2**0.5, rel=1e-3)
    human = summary.filter(pl.col("regime") == "human").row(0, named=True)
    assert human["bleu_mean"] is None and human["mtld_mean"] == 60


def test_paired_tests_compare_each_generation_with_generation_zero_of_its_seed():
    references = [f"sentence number {i} is about a small red house" for i in range(40)]
    words = [r.split() for r in references]
    perfect = [" ".join(w) for w in words]
    broken = [" ".join(w[:4]) for w in words]
    hypotheses = {
        ("real", 0, 40, 1): perfect,
        ("real", 0, 40, 2): perfect,
        ("replace", 1, 40, 1): broken,
        ("replace", 1, 40, 2): broken,
        ("accumulate", 1, 40, 1): perfect,
        ("accumulate", 1, 40, 2): perfect,
    }
    differences = generation_differences(
        references, hypotheses, seed=0, resamples=200, trials=200
    ).sort("regime")
    assert differences.select("regime", "generation", "size").rows() == [
        ("accumulate", 1, 40),
        ("replace", 1, 40),
    ]
    accumulate, replace = differences.iter_rows(named=True)
    assert accumulate["bleu_delta"] == 0 and not accumulate["significant"]
    assert replace["bleu_delta"] < -20 and replace["significant"]
    assert replace["paired_seeds"] == 2


def test_the_table_orders_human_root_then_regimes():
    differences = pl.DataFrame(
        {"regime": ["replace"], "generation": [1], "size": [100], "bleu_delta": [-5.0]}
    )
    table = recursion_table(run_rows(), differences)
    assert table.select("regime", "generation").rows() == [
        ("human", None),
        ("real", 0),
        ("replace", 1),
        ("replace", 2),
        ("accumulate", 1),
        ("accumulate", 2),
    ]
    assert table["bleu_delta"].to_list() == [None, None, -5.0, None, None, None]


def test_the_figure_starts_every_regime_at_generation_zero():
    table = recursion_table(run_rows(), pl.DataFrame(schema=TABLE_KEY))
    figure = plot_recursion(table, title="recursion")
    axes = figure.axes
    assert len(axes) == len(PANELS)
    bleu = axes[0]
    lines = {tuple(np.round(line.get_ydata(), 6)) for line in bleu.get_lines()}
    assert (30.0, 25.0, 20.0) in lines  # replace: generation 0, then 1 and 2
    assert (30.0, 30.0, 30.0) in lines  # accumulate
    for line in bleu.get_lines():
        if len(line.get_xdata()) == 3:
            assert list(line.get_xdata()) == [0, 1, 2]

    def dashed(ax):
        return [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]

    # The human targets' MTLD is a reference line; their tail (1 by definition) is not drawn.
    assert dashed(axes[1]) == [60] and dashed(axes[2]) == []
    # Bands: one per regime and panel, from the two seeds.
    assert all(len(ax.collections) == 2 for ax in axes)
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels[:3] == ["real (generation 0, human pairs)", "replace", "accumulate"]


TABLE_KEY = {"regime": pl.String, "generation": pl.Int64, "size": pl.Int64}


# --- config ---------------------------------------------------------------------------------

TINY = REPO / "tests" / "config" / "tiny.yaml"


def tiny_config() -> dict:
    """The tiny config as the workflow sees it (the schema's defaults filled in)."""
    from snakemake.utils import validate

    config = yaml.safe_load(TINY.read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def test_runs_are_generation_zero_then_every_regime_and_generation():
    config = tiny_config()
    runs = recursion_runs(config)
    assert runs[0] == ("real", 0, 100, 1)
    assert sorted(runs[1:]) == sorted(
        (r, g, 100, 1) for r in ("replace", "accumulate") for g in (1, 2)
    )
    del config["recursion"]
    assert recursion_runs(config) == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"regimes": ["real-share"]}, "recursion.real_share"),
        ({"sizes": [301]}, "recursion.sizes: 301 pairs exceed pools.student=300"),
        ({"architecture": "huge"}, "recursion.architecture: 'huge' is not one of"),
        ({"experiment": "finetune", "architecture": "tiny"}, "recursion.architecture"),
    ],
)
def test_recursion_config_errors_name_the_key(change, message):
    config = tiny_config()
    config["recursion"] |= change
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_config(config)


def test_recursion_needs_its_start_experiment():
    config = tiny_config()
    del config["finetune"]
    config["mitigations"]["experiments"] = ["scratch"]
    config["recursion"]["experiment"] = "finetune"
    with pytest.raises(ConfigError, match="recursion.experiment: 'finetune' is not configured"):
        check_config(config)


def test_a_fine_tuning_recursion_keeps_what_each_generation_learnt():
    """From a base model, `best` keeps the base wherever fine-tuning does not raise dev BLEU, so
    its generations would be the base, not models trained on their parents' output (the CPU
    preset's generations 2 to 4 were all the base): a fine-tuning recursion selects `last`
    as E1 does, a scratch one `best` as E2 does, and `recursion.select` overrides both."""
    config = tiny_config()
    assert recursion_training(config, 1)["select"] == "best"
    config["recursion"]["experiment"] = "finetune"
    settings = recursion_training(config, 2)
    assert settings["select"] == "last" and settings["seed"] == 2
    config["recursion"]["select"] = "best"
    assert recursion_training(config, 1)["select"] == "best"
    check_config(config)


# --- the DAG ----------------------------------------------------------------------------------


def dry_run_jobs(tmp_path, *targets) -> list[dict]:
    """The jobs of a dry run of the tiny config with every regime, in Snakemake's order: rule,
    wildcards, inputs, outputs."""
    config = yaml.safe_load(TINY.read_text())
    config["recursion"] |= {
        "regimes": ["replace", "accumulate", "accumulate-fixed", "real-share"],
        "generations": 3,
        "real_share": 25,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "corpus.tsv").write_text("")
    result = run_snakemake(tmp_path, path, "-n", *targets)
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", result.stdout):
        rule = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not rule:
            continue
        fields = dict(re.findall(r"^\s+(input|output|wildcards): (.*)$", block, re.MULTILINE))
        jobs.append(
            {
                "rule": rule.group(1),
                "input": fields.get("input", "").split(", "),
                "output": fields.get("output", "").split(", "),
                "wildcards": dict(
                    item.split("=") for item in fields.get("wildcards", "").split(", ") if item
                ),
            }
        )
    return jobs


def test_a_later_generation_waits_only_for_the_generations_it_reads(tmp_path):
    targets = [
        f"results/recursion/{regime}/3/100/1/model.pt"
        for regime in ("replace", "accumulate", "accumulate-fixed", "real-share")
    ]
    jobs = dry_run_jobs(tmp_path, *targets)
    made_by = {output: i for i, job in enumerate(jobs) for output in job["output"]}
    # Every job comes after the jobs that make its inputs.
    for i, job in enumerate(jobs):
        for path in job["input"]:
            assert made_by.get(path, -1) < i, (job["rule"], path)
    trained = {
        (job["wildcards"]["regime"], int(job["wildcards"]["generation"]))
        for job in jobs
        if job["rule"] == "train_recursion"
    }
    regimes = ("replace", "accumulate", "accumulate-fixed", "real-share")
    assert trained == {("real", 0)} | {(r, g) for r in regimes for g in (1, 2, 3)}
    # Nothing is evaluated or measured for a model alone; generation 3 translates nothing.
    assert {job["rule"] for job in jobs} >= {"curriculum_recursion", "translate_recursion"}
    assert not {"evaluate_recursion", "measures_recursion"} & {job["rule"] for job in jobs}
    translated = {
        (job["wildcards"]["regime"], int(job["wildcards"]["generation"]))
        for job in jobs
        if job["rule"] == "translate_recursion"
    }
    assert translated == {("real", 0)} | {(r, g) for r in regimes for g in (1, 2)}

    def curriculum_inputs(regime):
        (job,) = [
            j
            for j in jobs
            if j["rule"] == "curriculum_recursion"
            and j["wildcards"]["regime"] == regime
            and j["wildcards"]["generation"] == "3"
        ]
        return sorted(p for p in job["input"] if p.endswith("synthetic.parquet"))

    def synthetic(regime, generation):
        return f"results/recursion/{regime}/{generation}/100/1/synthetic.parquet"

    assert curriculum_inputs("replace") == [synthetic("replace", 2)]
    assert curriculum_inputs("real-share") == [synthetic("real-share", 2)]
    assert curriculum_inputs("accumulate") == sorted(
        [synthetic("real", 0), synthetic("accumulate", 1), synthetic("accumulate", 2)]
    )
    assert curriculum_inputs("accumulate-fixed") == sorted(
        [synthetic("real", 0), synthetic("accumulate-fixed", 1), synthetic("accumulate-fixed", 2)]
    )
