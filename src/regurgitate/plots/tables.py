"""A table as a page of the report: Snakemake's report viewer shows HTML but only offers a CSV
for download, so every table of the study is also written as HTML."""

from __future__ import annotations

import html

import polars as pl

from regurgitate.analysis.aggregate import MIN_GENERATOR_BLEU

STYLE = """
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
tbody tr.not-learned { background: #fbe3e3; }
p.not-learned { background: #fbe3e3; padding: 0.3em 0.5em; display: inline-block; }
"""

NOT_LEARNED_NOTE = (
    "Shaded rows: `generator_learned` is false, the generator that wrote the targets did not "
    f"learn to translate (test BLEU below {MIN_GENERATOR_BLEU:g}), so these rows say nothing "
    "about generated text."
)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# What a reader compares first: the row's identity, its score, its difference to `real` with
# the difference's interval and test. sacreBLEU's long signatures go last, where they do not
# push those off the screen.
READER_FIRST = [
    *["experiment", "condition", "compared", "generator", "regime", "generation", "strategy"],
    *["size", "n_seeds", "bleu_mean", "bleu_ci_low", "bleu_ci_high", "bleu_delta"],
    *["bleu_delta_low", "bleu_delta_high", "p_seeds_and_sentences", "significant"],
    *["significance_note", "delta_in_seed_sd"],
]


def reader_order(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame`'s columns in READER_FIRST's order, the others as they were, signatures last."""
    first = [c for c in READER_FIRST if c in frame.columns]
    last = [c for c in frame.columns if c.endswith("_signature")]
    middle = [c for c in frame.columns if c not in first and c not in last]
    return frame.select(*first, *middle, *last)


def table_page(frame: pl.DataFrame, title: str) -> str:
    """An HTML page of `frame` in `reader_order`, every value as written (the CSV's rounding),
    numbers aligned right and empty fields (no value, e.g. the interval of a single seed) left
    blank. Rows whose `generator_learned` is false are shaded, with a note that says why."""
    frame = reader_order(frame)
    head = "".join(f"<th>{html.escape(column)}</th>" for column in frame.columns)
    learned = (
        frame.columns.index("generator_learned") if "generator_learned" in frame.columns else None
    )
    body = []
    shaded = False
    for row in frame.iter_rows():
        cells = []
        for value in row:
            text = "" if value is None else str(value)
            kind = ' class="number"' if is_number(text) else ""
            cells.append(f"<td{kind}>{html.escape(text)}</td>")
        not_learned = learned is not None and str(row[learned]).lower() == "false"
        shaded |= not_learned
        row_class = ' class="not-learned"' if not_learned else ""
        body.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    note = f'<p class="not-learned">{html.escape(NOT_LEARNED_NOTE)}</p>\n' if shaded else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>"
        f"<h1>{html.escape(title)}</h1>\n{note}"
        f"<table><thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table></body></html>\n"
    )
