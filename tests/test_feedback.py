"""What a user watching a run reads: log lines that name their job and say how far it has got
and how long it has left, and the summary that ends a run, finished or failed."""

import logging
import re

import polars as pl
import pytest
import torch

from regurgitate.engine.batching import encode_pairs, epoch_batches
from regurgitate.engine.decode import DecodeConfig, translate
from regurgitate.engine.model import ModelConfig, Transformer
from regurgitate.engine.progress import Progress, duration
from regurgitate.engine.train import DevSet, TrainConfig, train
from regurgitate.jobs.log import job_tag, setup_logging
from regurgitate.jobs.report import LOG_LINE, failure_summary, run_summary


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (44.6, "45s"), (190, "3m10s"), (7500, "2h05m"), (3 * 86400 + 4 * 3600, "3d04h")],
)
def test_a_duration_reads_as_a_person_says_it(seconds, text):
    assert duration(seconds) == text


def test_progress_gives_the_share_done_and_the_time_left_at_the_pace_so_far():
    progress = Progress(600, start=0.0)
    assert progress.describe(0, now=5.0) == "0/600 (0%), time left not known yet"
    # 30 steps in 10 s: the other 570 take 190 s.
    assert progress.describe(30, now=10.0) == "30/600 (5%), 3m10s left"
    assert progress.describe(600, now=99.0) == "600/600 (100%), 0s left"


def test_a_resumed_run_is_paced_by_the_work_done_since_it_resumed():
    progress = Progress(600, done_at_start=300, start=0.0)
    # 30 steps in 30 s since the resume, 270 to go; counting the 300 before would say 27 s.
    assert progress.describe(330, now=30.0) == "330/600 (55%), 4m30s left"


@pytest.mark.parametrize(
    ("path", "tag"),
    [
        ("logs/train_student/scratch/real/1000/1.log", "train_student/scratch/real/1000/1"),
        ("/work/study/logs/prepare_pools.log", "prepare_pools"),
        ("elsewhere/job.log", "elsewhere/job"),
    ],
)
def test_a_job_is_named_by_its_log_under_logs(path, tag):
    assert job_tag(path) == tag


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = handlers, level


def test_every_line_of_a_job_names_it_and_the_summary_reads_it_back(tmp_path, restore_logging):
    log_path = tmp_path / "logs" / "train_student" / "scratch" / "gen-weak" / "1000" / "2.log"
    setup_logging(log_path)
    logging.getLogger("regurgitate.engine.train").warning("12 of 1000 training pairs were cut")
    (line,) = log_path.read_text().splitlines()
    assert "[train_student/scratch/gen-weak/1000/2] WARNING regurgitate.engine.train: 12 of" in line
    match = LOG_LINE.match(line)
    assert match["level"] == "WARNING" and match["message"] == "12 of 1000 training pairs were cut"


@pytest.mark.parametrize(
    ("max_steps", "max_epochs", "cap"), [(12, 100, "max_steps 12"), (1000, 2, "max_epochs 2 x")]
)
def test_training_lines_count_steps_against_the_cap_that_bounds_them(
    toy_tokenizer, toy_pairs, tmp_path, caplog, max_steps, max_epochs, cap
):
    pairs = toy_pairs[:100]
    data = encode_pairs(toy_tokenizer, [p[0] for p in pairs], [p[1] for p in pairs], 64)
    dev = DevSet([p[0] for p in toy_pairs[300:305]], [p[1] for p in toy_pairs[300:305]])
    model_cfg = ModelConfig(
        vocab_size=toy_tokenizer.vocab_size, d_model=16, heads=2, encoder_layers=1,
        decoder_layers=1, ffn_dim=32, dropout=0.0, max_positions=64,
    )  # fmt: skip
    cfg = TrainConfig(
        max_tokens=400, warmup_steps=2, max_steps=max_steps, max_epochs=max_epochs,
        eval_every=1000, log_every=2, patience=3,
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="regurgitate.engine.train"):
        _, summary = train(model_cfg, cfg, data, dev, toy_tokenizer, tmp_path / "c.pt")
    total = min(max_steps, max_epochs * len(epoch_batches(data, 400, cfg.seed, 0)))
    assert summary["steps"] == total
    start = next(m for m in caplog.messages if m.startswith("training "))
    assert f"at most {total} steps ({cap}" in start and "fewer if dev bleu stops" in start
    steps = [m for m in caplog.messages if re.match(r"step \d+/", m) and "loss" in m]
    assert steps and all(re.match(rf"step \d+/{total} \(\d+%\), \S+ left; epoch", m) for m in steps)


def test_decoding_lines_count_sentences_and_the_time_left(toy_tokenizer, caplog):
    torch.manual_seed(0)
    model = Transformer(
        ModelConfig(
            vocab_size=toy_tokenizer.vocab_size,
            d_model=16,
            heads=2,
            encoder_layers=1,
            decoder_layers=1,
            ffn_dim=32,
            dropout=0.0,
        )  # fmt: skip
    )
    sources = [f"Ein mann spielt {'sehr ' * (i % 7)}." for i in range(40)]
    with caplog.at_level(logging.INFO, logger="regurgitate.engine.decode"):
        translate(model, toy_tokenizer, sources, DecodeConfig(beam=1, max_tokens=40), progress="g")
    lines = [m for m in caplog.messages if m.startswith("g: sentences")]
    assert lines[-1].startswith("g: sentences 40/40 (100%), 0s left")
    assert all(re.match(r"g: sentences \d+/40 \(\d+%\), \S+ left \(", m) for m in lines)


def experiment_table(path, name="scratch"):
    """An experiment table as jobs.report.table_experiment writes it (the columns read)."""
    rows = []
    for size in (100, 1000):
        for condition, learned, delta in (("real", None, None), ("gen-weak", False, -1.5)):
            rows.append(
                {
                    "experiment": name, "condition": condition, "size": size, "n_seeds": 3,
                    "bleu_mean": 20.0 + size / 100 + (delta or 0), "bleu_ci_low": 19.0,
                    "bleu_ci_high": 31.25, "bleu_delta": delta,
                    "bleu_delta_low": delta and delta - 0.5, "bleu_delta_high": delta and -1.0,
                    "significant": None if delta is None else True, "significance_note": None,
                    "generator_learned": learned,
                }
            )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows).write_csv(path)


def job_log(root, relative, *lines):
    path = root / "logs" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = "2026-01-01 10:00:00,000"
    tag = relative.removesuffix(".log")
    path.write_text("".join(f"{stamp} [{tag}] {line}\n" for line in lines))
    return path


STARTED = "INFO regurgitate: job started (process 1, 1.0 s of CPU to start)"


def test_the_end_of_a_study_shows_its_results_warnings_and_where_to_look(tmp_path):
    experiment_table(tmp_path / "results" / "tables" / "scratch.csv")
    pl.DataFrame({"generator": ["weak"], "bleu": [0.4], "generator_learned": [False]}).write_csv(
        tmp_path / "results" / "tables" / "generators.csv"
    )
    (tmp_path / "results" / "figures").mkdir(parents=True)
    (tmp_path / "results" / "figures" / "scratch.png").touch()
    job_log(
        tmp_path, "train_student/scratch/gen-weak/1000/1.log",
        STARTED, "WARNING regurgitate.jobs.train: 7 of 1000 training pairs are longer and were cut",
        STARTED, "WARNING regurgitate.jobs.train: 5 of 1000 training pairs are longer and were cut",
        "INFO regurgitate.engine.train: step 10/60 (17%), 1m00s left; epoch 1/5",
    )  # fmt: skip
    job_log(
        tmp_path, "train_student/scratch/real/1000/1.log",
        STARTED, "WARNING regurgitate.jobs.train: 3 of 1000 training pairs are longer and were cut",
    )  # fmt: skip
    for name, cut in (("strong", 9), ("weak", 3)):
        job_log(
            tmp_path, f"generate_synthetic/{name}.log",
            STARTED, f"WARNING regurgitate.jobs.generate: {name}: {cut} of 50 translations cut",
        )  # fmt: skip
    job_log(
        tmp_path, "report/table_generators.log",
        STARTED, "WARNING regurgitate.jobs.report: generator weak has test BLEU 0.40 (below 1): "
        "it did not learn to translate, so the conditions it wrote measure nothing about "
        "generated text; give it more teacher pairs or training steps (generators.weak)",
    )  # fmt: skip

    blocks = run_summary(
        experiments=["scratch", "finetune"],  # finetune's table was not made
        configfiles=["config/my study.yaml"],
        config_args=["seed=2"],
        snakefile=str(tmp_path / "workflow" / "Snakefile"),
        root=tmp_path,
    )
    levels, texts = zip(*blocks, strict=True)
    headline, not_learned, warnings, where = texts
    assert levels == (logging.INFO, logging.WARNING, logging.WARNING, logging.INFO)
    assert headline.startswith("The run is finished. Test BLEU at each experiment")
    lines = headline.splitlines()
    assert "scratch, 100 training pairs:" not in lines
    table = lines[lines.index("scratch, 1000 training pairs:") + 1 :]
    assert re.split(r"\s{2,}", table[1].strip()) == ["real", "3", "30.00 [19.00, 31.25]"]
    assert re.split(r"\s{2,}", table[2].strip()) == [
        "gen-weak *", "3", "28.50 [19.00, 31.25]", "-1.50 [-2.00, -1.00]", "yes"
    ]  # fmt: skip
    assert "did not learn to translate" in table[3]
    assert not_learned.startswith("generator weak has test BLEU 0.40")
    # Said once: not again among the logs' warnings. The cut pairs are one kind, from the last
    # attempt of each log only; the cut translations another, whichever generator wrote them.
    assert "generator weak" not in warnings
    assert "2 other kinds of warning" in warnings
    assert "5 of 1000 training pairs" in warnings and "7 of" not in warnings
    cut_pairs = "logs/train_student/scratch/gen-weak/1000/1.log, logs/train_student/scratch/real"
    assert f"in 2 logs: {cut_pairs}" in warnings
    cut_translations = "strong: 9 of 50 translations cut\n    in 2 logs: logs/generate_synthetic/"
    assert cut_translations in warnings
    assert "results/figures/ (scratch.png;" in where
    report = "snakemake --report report.html --configfile 'config/my study.yaml' --config seed=2"
    assert report in where  # workflow/Snakefile of the working directory: no -s


SNAKEMAKE_LOG = """\
[Thu Jan  1 10:00:00 2026]
Error in rule train_student:
    message: None
    jobid: 7
    output: results/runs/scratch/real/1000/1/model.pt
    log: logs/train_student/scratch/real/1000/1.log (check log file(s) for error details)
[Thu Jan  1 10:00:05 2026]
Error in rule evaluate_run:
    jobid: 9
    log: logs/evaluate_run/scratch/real/1000/1.log (check log file(s) for error details)
Finished jobid: 9 (Rule: evaluate_run)
Exiting because a job execution failed. Look above for error messages
"""


def test_a_failed_run_names_the_failed_jobs_their_logs_and_what_is_kept(tmp_path):
    log_path = job_log(
        tmp_path, "train_student/scratch/real/1000/1.log", STARTED, "ERROR regurgitate: job failed"
    )
    with log_path.open("a") as log:
        log.write("Traceback (most recent call last):\nValueError: no pairs to train on\n")
    snakemake_log = tmp_path / "snakemake.log"
    snakemake_log.write_text(SNAKEMAKE_LOG)
    (level, failed), (_, warnings) = failure_summary(
        snakemake_logs=[str(snakemake_log)],
        configfiles=["config/tiny.yaml"],
        snakefile="/elsewhere/workflow/Snakefile",
        root=tmp_path,
    )
    assert level == logging.ERROR
    lines = failed.splitlines()
    # evaluate_run failed once and then finished (a retry): not a failure.
    assert lines[0] == "The run stopped: 1 job failed."
    assert lines[1] == "  train_student (job 7): logs/train_student/scratch/real/1000/1.log"
    assert lines[2].strip() == "ValueError: no pairs to train on"
    assert "Everything that finished is kept" in failed
    rerun = "snakemake -s /elsewhere/workflow/Snakefile --cores <N> --configfile config/tiny.yaml"
    assert lines[-1].strip() == rerun
    assert warnings == "No job logged a warning."


def test_without_snakemakes_log_the_failed_jobs_are_those_whose_journal_is_left(tmp_path):
    log_path = job_log(tmp_path, "train_generator/weak.log", STARTED, "ERROR regurgitate: boom")
    log_path.with_name(".weak.log.attempts").touch()
    job_log(tmp_path, "train_generator/strong.log", STARTED)  # succeeded: its journal is gone
    (_, failed), _ = failure_summary(snakemake_logs=[], configfiles=[], root=tmp_path)
    assert failed.splitlines()[:2] == [
        "The run stopped: 1 job failed.",
        "  train_generator/weak: logs/train_generator/weak.log",
    ]
