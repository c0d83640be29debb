"""The report's table pages (plots/tables.py): what a reader compares first comes first."""

import re

import polars as pl

from regurgitate.plots.tables import table_page


def test_a_table_page_shows_scores_and_tests_before_the_signatures():
    frame = pl.DataFrame(
        {
            "experiment": ["scratch"],
            "condition": ["gen-weak"],
            "size": [100],
            "n_seeds": [3],
            "bleu_mean": [20.5],
            "bleu_signature": ["nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.5.1"],
            "chrf_mean": [45.0],
            "chrf_signature": ["nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.5.1"],
            "bleu_delta": [-1.5],
            "p_seeds_and_sentences": [0.01],
            "significant": [True],
            "early_stopped": [1.0],
        }
    )
    page = table_page(frame, "scratch")
    head = re.findall(r"<th>([^<]+)</th>", page)
    assert head[:7] == [
        *["experiment", "condition", "size", "n_seeds", "bleu_mean", "bleu_delta"],
        "p_seeds_and_sentences",
    ]
    assert head[-2:] == ["bleu_signature", "chrf_signature"]
    assert sorted(head) == sorted(frame.columns)
    # each row's cells follow its header
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page)
    assert cells[head.index("bleu_delta")] == "-1.5"
