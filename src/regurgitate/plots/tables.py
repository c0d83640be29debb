"""A table as a page of the report: Snakemake's report viewer shows HTML but only offers a CSV
for download, so every table of the study is also written as HTML."""

from __future__ import annotations

import html

import polars as pl

STYLE = """
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
"""


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def table_page(frame: pl.DataFrame, title: str) -> str:
    """An HTML page of `frame`, every value as written (the CSV's rounding), numbers aligned
    right and empty fields (no value, e.g. the interval of a single seed) left blank."""
    head = "".join(f"<th>{html.escape(column)}</th>" for column in frame.columns)
    body = []
    for row in frame.iter_rows():
        cells = []
        for value in row:
            text = "" if value is None else str(value)
            kind = ' class="number"' if is_number(text) else ""
            cells.append(f"<td{kind}>{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>"
        f"<h1>{html.escape(title)}</h1>\n<table><thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table></body></html>\n"
    )
