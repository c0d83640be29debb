"""The workflow's job glue: one module per rule file, one function per script.

These are the only modules that read and write the workflow's files; the packages below them
(engine, study, generators, analysis, plots) take and return data.
"""
