"""A generator that did not learn to translate is visible where the numbers are read: in
generators.csv, the experiment tables, the report's table pages and the end-of-run message."""

import polars as pl

from regurgitate.analysis.aggregate import MIN_GENERATOR_BLEU, generator_learned, generator_table
from regurgitate.io import write_table
from regurgitate.jobs.report import end_of_run_message
from regurgitate.plots.tables import NOT_LEARNED_NOTE, table_page


def record(name, bleu):
    return {
        "generator": name,
        "architecture": "tiny",
        "train": {"pairs": 300, "parameters": 1000},
        "bleu": bleu,
        "chrf": 10.0,
        "bleu_signature": "nrefs:1",
    }


def test_the_generators_table_says_which_learnt():
    table = generator_table([record("strong", 12.0), record("weak", 0.4), record("edge", 1.0)])
    learned = dict(zip(table["generator"], table["generator_learned"], strict=True))
    assert learned == {"weak": False, "edge": True, "strong": True}
    assert MIN_GENERATOR_BLEU == 1.0


def test_each_condition_is_marked_by_the_generators_that_wrote_its_targets():
    learned = {"weak": False, "strong": True}
    conditions = [
        "real",
        "self",
        "gen-weak",
        "gen-strong",
        "partial-weak-25",
        "ordered-strong-oracle",
        "detector-weak",
        "mixed-weak+strong",
        "sources-ordered-weak-oracle",  # human targets on the sources the order chose
        "gen-unknown",
    ]
    marks = generator_learned(conditions, learned, self_generator="weak")
    assert marks.to_list() == [None, False, False, True, False, True, False, False, None, None]
    assert generator_learned(["self"], learned).to_list() == [None]  # E2 has no self


def test_the_end_of_run_message_names_each_generator_that_did_not_learn(tmp_path):
    path = tmp_path / "generators.csv"
    assert end_of_run_message(generators_path=path) == []  # not made: nothing to say
    write_table(generator_table([record("strong", 12.0), record("weak", 0.4)]), path)
    (line,) = end_of_run_message(generators_path=path)
    assert line.startswith("generator weak has test BLEU 0.40 (below 1)")
    assert "did not learn to translate" in line and "generators.weak" in line


def test_the_report_shades_rows_whose_generator_did_not_learn():
    frame = pl.DataFrame({"condition": ["real", "gen-weak"], "generator_learned": [None, "false"]})
    page = table_page(frame, "scratch")
    assert NOT_LEARNED_NOTE in page
    assert '<tr class="not-learned"><td>gen-weak</td>' in page
    assert "<tr><td>real</td>" in page
    fine = table_page(frame.with_columns(generator_learned=pl.lit("true")), "scratch")
    assert "not-learned" not in fine.split("</style>")[1]


def test_the_experiment_table_carries_the_tests_and_generator_learned(tmp_path):
    import json

    from regurgitate.analysis.significance import DIFFERENCE_COLUMNS
    from regurgitate.jobs.report import table_experiment

    references = [f"a small red house number {i} stands by the river" for i in range(30)]
    pl.DataFrame({"id": range(30), "source": references, "target": references}).write_parquet(
        tmp_path / "test.parquet"
    )
    outputs = {"real": references, "gen-weak": [r[:12] for r in references]}
    outputs |= {"self": references}
    run_paths = []
    for condition, lines in outputs.items():
        for seed in (1, 2):
            folder = tmp_path / condition / str(seed)
            folder.mkdir(parents=True)
            (folder / "test.hyp.txt").write_text("\n".join(lines) + "\n")
            metrics = {"experiment": "finetune", "condition": condition, "size": 100}
            metrics |= {"seed": seed, "bleu": 1.0, "chrf": 1.0}
            metrics |= {"bleu_signature": "b", "chrf_signature": "c"}
            (folder / "metrics.json").write_text(json.dumps(metrics))
            run_paths.append(str(folder / "metrics.json"))
    generators = []
    for name, bleu in (("weak", 0.3), ("strong", 20.0)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(record(name, bleu)))
        generators.append(str(path))
    table = table_experiment(
        run_paths=run_paths,
        hypothesis_paths=[p.replace("metrics.json", "test.hyp.txt") for p in run_paths],
        test_path=tmp_path / "test.parquet",
        out=tmp_path / "finetune.csv",
        seed=1,
        generator_metric_paths=generators,
        self_generator="strong",
    )
    assert set(DIFFERENCE_COLUMNS) <= set(table.columns)
    rows = {row["condition"]: row for row in table.iter_rows(named=True)}
    assert rows["gen-weak"]["generator_learned"] is False and rows["gen-weak"]["significant"]
    assert rows["self"]["generator_learned"] is True and rows["self"]["bleu_delta"] == 0
    assert rows["real"]["generator_learned"] is None
    written = pl.read_csv(tmp_path / "finetune.csv")
    assert written["generator_learned"].to_list() == [False, None, True]
