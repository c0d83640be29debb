"""The rule graph of the study (regurgitate.jobs.rule_graph, regurgitate.plots.rule_graph): the
record the run writes as it starts, its layers, and the figure the report shows in place of
Snakemake's job graph."""

import json
import re
from itertools import combinations

import pytest
from conftest import TINY, run_snakemake
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.transforms import Bbox
from test_figure_layout import layout_problems

from regurgitate.jobs.rule_graph import (
    MissingRuleGraphError,
    figure_rule_graph,
    read_rule_graph,
    record_rule_graph,
)
from regurgitate.plots.rule_graph import (
    RuleGraph,
    feedback_edges,
    layout_rule_graph,
    plot_rule_graph,
    rule_layers,
)

# A small study's rules: pools feed everything; a tokenizer; a student trained and evaluated; a
# recursion whose curriculum reads the translations of the generation before it (a cycle of
# rules, and a loop: its curriculum reads the one before it); a figure that reads nothing.
STUDY = {
    "pools": [],
    "tokenizer": ["pools"],
    "train": ["pools", "tokenizer"],
    "evaluate": ["pools", "train"],
    "curriculum": ["curriculum", "pools", "translate"],
    "train_generation": ["curriculum"],
    "translate": ["curriculum", "train_generation"],
    "table": ["evaluate", "translate"],
    "figure_graph": [],
    "all": ["figure_graph", "table"],
}
LAYERS = [
    ["pools"],
    ["curriculum", "tokenizer"],
    ["train", "train_generation"],
    ["evaluate", "translate"],
    # a rule that reads nothing lies just above the rule that reads it, not at the top
    ["figure_graph", "table"],
    ["all"],
]
JOBS = {rule: 1 for rule in STUDY} | {"train": 12, "evaluate": 12, "translate": 3}
FILES = {rule: "rules/study.smk" for rule in STUDY} | {
    "pools": "rules/data.smk",
    "all": "Snakefile",
    "figure_graph": "rules/report.smk",
    "table": "rules/report.smk",
}


def test_the_record_is_sorted_and_the_same_for_the_same_graph(tmp_path):
    shuffled = {rule: set(reversed(deps)) for rule, deps in reversed(STUDY.items())}
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    assert record_rule_graph(first, STUDY, jobs=JOBS, files=FILES)
    assert record_rule_graph(second, shuffled, jobs=dict(reversed(JOBS.items())), files=FILES)
    assert first.read_bytes() == second.read_bytes()
    rules = json.loads(first.read_text())["rules"]
    assert list(rules) == sorted(STUDY)
    assert rules["curriculum"] == {
        "depends_on": ["curriculum", "pools", "translate"],
        "file": "rules/study.smk",
        "jobs": 1,
    }
    assert rules["train"]["jobs"] == 12 and rules["pools"]["depends_on"] == []
    graph = read_rule_graph(first)
    assert graph.depends_on == {rule: sorted(deps) for rule, deps in STUDY.items()}
    assert graph.jobs == JOBS and graph.files == FILES


def test_a_run_of_some_targets_keeps_the_whole_studys_record(tmp_path):
    path = tmp_path / "rule_graph.json"
    record_rule_graph(path, STUDY)
    kept = path.read_bytes()
    # The DAG of `snakemake results/tables/generators.csv`: no rule all.
    assert not record_rule_graph(path, {"table": ["evaluate"], "evaluate": []})
    assert path.read_bytes() == kept
    # A dependency that is no key of the mapping is a rule of the graph as well.
    record_rule_graph(path, {"all": ["table"]})
    assert json.loads(path.read_text())["rules"]["table"] == {"depends_on": []}


def test_layers_run_from_the_first_rules_to_all():
    assert rule_layers(STUDY) == LAYERS
    # The fewest arrows that break every cycle: the next generation's curriculum reads the
    # translations (the arrow drawn upward); the loop is no cycle to break.
    assert feedback_edges(STUDY) == {("translate", "curriculum")}
    layer = {rule: i for i, rules in enumerate(rule_layers(STUDY)) for rule in rules}
    for rule, deps in STUDY.items():
        for dep in deps:
            if dep != rule and (dep, rule) not in feedback_edges(STUDY):
                assert layer[dep] < layer[rule], (dep, rule)


def test_a_long_cycle_is_broken_by_one_upward_arrow():
    # 14 rules in a ring (past the exact search: the greedy order) and one more that reads one.
    ring = {f"r{i:02d}": [f"r{(i - 1) % 14:02d}"] for i in range(14)}
    graph = ring | {"all": ["r05"]}
    assert len(feedback_edges(graph)) == 1
    layers = rule_layers(graph)
    assert layers[-1] == ["all"] and sum(map(len, layers)) == 15


def test_arrows_that_a_longer_path_implies_are_left_out():
    layout = layout_rule_graph(STUDY)
    arrows = {(rule, reader) for rule, reader, _ in layout.chains}
    # pools -> evaluate is implied by pools -> train -> evaluate; the upward arrow stays.
    assert ("pools", "evaluate") not in arrows and ("pools", "train") not in arrows
    assert ("train", "evaluate") in arrows and ("translate", "curriculum") in arrows
    assert ("curriculum", "translate") not in arrows  # implied by train_generation
    assert layout.loops == {"curriculum"}
    full = layout_rule_graph(STUDY, reduce=False)
    assert {(rule, reader) for rule, reader, _ in full.chains} == {
        (dep, rule) for rule, deps in STUDY.items() for dep in deps if dep != rule
    }


def box_extents(figure):
    """The window extent of every rule's box."""
    figure.canvas.draw()
    (ax,) = figure.axes
    return [p.get_window_extent() for p in ax.patches if isinstance(p, FancyBboxPatch)]


def test_the_figure_is_legible_and_draws_every_arrow():
    graph = RuleGraph(
        depends_on={rule: sorted(deps) for rule, deps in STUDY.items()}, jobs=JOBS, files=FILES
    )
    figure = plot_rule_graph(graph)
    assert layout_problems(figure) == []
    boxes = box_extents(figure)
    assert len(boxes) == len(STUDY)
    for a, b in combinations(boxes, 2):
        assert Bbox.intersection(a, b) is None or Bbox.intersection(a, b).width <= 1
    (ax,) = figure.axes
    texts = {t.get_text() for t in ax.texts}
    assert {"train ×12", "evaluate ×12", "translate ×3", "pools", "all"} <= texts
    assert {"data.smk", "study.smk", "report.smk", "Snakefile"} <= texts
    assert "Rule graph: 10 rules, 34 jobs" in texts
    # Every arrow of the reduced graph, the loop, and the legend's key of the upward arrow.
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == len(layout_rule_graph(STUDY).chains) + 1 + 1
    # `all` is the lowest box.
    (ax,) = figure.axes
    lowest = min(ax.texts, key=lambda t: t.get_position()[1])
    assert lowest.get_text() == "all"


def test_the_figure_is_the_same_bytes_every_time(tmp_path):
    path = tmp_path / "rule_graph.json"
    record_rule_graph(path, STUDY, jobs=JOBS, files=FILES)
    made = []
    for name in ("first", "second"):
        png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
        figure_rule_graph(graph_path=path, png=png, pdf=pdf)
        made.append((png.read_bytes(), pdf.read_bytes()))
    assert made[0] == made[1]
    assert made[0][0][:8] == b"\x89PNG\r\n\x1a\n" and made[0][1][:4] == b"%PDF"


def test_no_record_says_what_to_run(tmp_path):
    with pytest.raises(MissingRuleGraphError, match="run the whole study"):
        figure_rule_graph(
            graph_path=tmp_path / "rule_graph.json",
            png=tmp_path / "rule_graph.png",
            pdf=tmp_path / "rule_graph.pdf",
        )
    assert not (tmp_path / "rule_graph.png").exists()


def snakemake_rule_graph(workdir) -> dict[str, set[str]]:
    """Snakemake's own rule graph of the study in `workdir` (`--rulegraph`, as DOT text)."""
    result = run_snakemake(workdir, TINY, "--rulegraph")
    labels = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', result.stdout, re.MULTILINE))
    graph = {rule: set() for rule in labels.values()}
    for dep, rule in re.findall(r"^\s*(\d+) -> (\d+)", result.stdout, re.MULTILINE):
        graph[labels[rule]].add(labels[dep])
    return graph


@pytest.mark.slow
def test_the_tiny_study_draws_snakemakes_rule_graph(finished_run, tmp_path):
    """The run recorded the rule graph of its DAG, the same as `snakemake --rulegraph` prints,
    and drew it legibly into results/figures/ (the figure from the record, byte for byte)."""
    record = finished_run / ".snakemake" / "regurgitate" / "rule_graph.json"
    graph = read_rule_graph(record)
    assert {rule: set(deps) for rule, deps in graph.depends_on.items()} == (
        snakemake_rule_graph(finished_run)
    )
    assert graph.jobs["all"] == 1 and graph.jobs["train_student"] > 1
    assert graph.files["train_student"] == "rules/train.smk"
    assert graph.files["all"] == "Snakefile"
    assert layout_problems(plot_rule_graph(graph)) == []
    png, pdf = tmp_path / "rule_graph.png", tmp_path / "rule_graph.pdf"
    figure_rule_graph(graph_path=record, png=png, pdf=pdf)
    figures = finished_run / "results" / "figures"
    assert png.read_bytes() == (figures / "rule_graph.png").read_bytes()
    assert pdf.read_bytes() == (figures / "rule_graph.pdf").read_bytes()
