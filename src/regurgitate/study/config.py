"""What the JSON schema cannot say about a configuration, and the values derived from it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from regurgitate.generators.open_weights_settings import BACKEND as OPEN_WEIGHTS
from regurgitate.generators.open_weights_settings import check_open_weights
from regurgitate.generators.prompts import resolve_prompt
from regurgitate.study.corpus import parallel_file_names
from regurgitate.study.vocabulary import (
    EXPERIMENT_ORDER,
    FINETUNE,
    GENERATION_ZERO_REGIME,
    HUMAN,
    REAL,
    REAL_SHARE,
    RECURSION,
    SCRATCH,
    SELF,
    detector_condition,
    gen_condition,
    mixed_condition,
    ordered_condition,
    partial_condition,
    sources_condition,
)


class ConfigError(ValueError):
    """A configuration value that is well-formed but does not fit the rest; names the key."""


def check_config(config: dict) -> None:
    """Cross-key checks, run before any job (the schema has checked each key on its own)."""
    architectures = config["architectures"]
    generators = config["generators"]
    for reserved, meaning in RESERVED_SOURCES.items():
        if reserved in generators:
            raise ConfigError(
                f"generators.{reserved}: the name is reserved for {meaning}; rename the generator"
            )
    for name, generator in generators.items():
        if generator["backend"] != "local":
            check_api_generator(name, generator, config.get("prompts"))
        elif generator["architecture"] not in architectures:
            raise ConfigError(
                f"generators.{name}.architecture: {generator['architecture']!r} is not one of "
                f"the architectures {sorted(architectures)}"
            )
    check_open_weights(config, ConfigError)
    _check_scratch(config)
    _check_architectures(config)
    _check_cleaning(config)
    if FINETUNE in config:
        _check_finetune_base(config)
    if "mitigations" in config:
        _check_mitigations(config)
    for experiment in experiments(config):
        _check_partial(config, experiment)
    _check_corpus(config)
    _check_pools(config)
    fixed = {pool: size for pool, size in config["pools"].items() if size is not None}
    check_pool_demands(pool_demands(config), fixed)


# Names a generator cannot take: tables, legends and the mechanisms put them beside the
# generators' names as other sources of targets.
RESERVED_SOURCES = {
    HUMAN: "the human references",
    REAL: "the condition trained on the human references",
    SELF: "the condition trained on the base model's own output",
}


def _check_architectures(config: dict) -> None:
    for name, architecture in config["architectures"].items():
        if architecture["d_model"] % architecture["heads"]:
            raise ConfigError(
                f"architectures.{name}.heads: d_model={architecture['d_model']} does not split "
                f"into {architecture['heads']} heads; choose heads that divide d_model (or a "
                "d_model that is a multiple of heads)"
            )


def _check_cleaning(config: dict) -> None:
    cleaning = config["cleaning"]
    if cleaning.get("min_words", 1) > cleaning["max_words"]:
        raise ConfigError(
            f"cleaning.min_words: {cleaning['min_words']} is more than cleaning.max_words="
            f"{cleaning['max_words']}, so every pair would be dropped; lower min_words or raise "
            "max_words"
        )


# What each pool is for, where a size of 0 would leave the study without it.
POOL_USES = {
    "teacher": "the tokenizer and the generators learn from it",
    "student": "every condition's sources come from it",
    "dev": "training stops early and keeps the best model on its scores",
}


def _check_pools(config: dict) -> None:
    """No pool the study needs is asked to be empty (a null size takes what the others leave,
    which only reading the corpus can tell: prepare_pools checks that one)."""
    pools = config["pools"]
    open_ended = [pool for pool, size in pools.items() if size is None]
    if len(open_ended) > 1:
        raise ConfigError(
            f"pools: {' and '.join(open_ended)} are both null, but only one pool can take what "
            "the others leave; give all but one of them a size"
        )
    for pool, use in POOL_USES.items():
        if pools[pool] == 0:
            raise ConfigError(f"pools.{pool}: 0 pairs, but {use}; give it pairs (or null)")
    settings = config.get("mitigations") or {}
    detectors = settings.get("detector", True) and settings.get("generators")
    if (
        detectors
        and settings.get("experiments")
        and pools["detector"] is not None
        and pools["detector"] < 2
    ):
        raise ConfigError(
            f"pools.detector: {pools['detector']} pairs, but S3 (mitigations.detector) trains "
            "each detector on it and scores it on a held-out share: it needs at least 2"
        )
    if RECURSION in config:
        _check_recursion(config)


def _check_corpus(config: dict) -> None:
    corpus = config["corpus"]
    if corpus["format"] != "multi30k":
        # A multi30k corpus's keys are ignored here, so that a command-line override of the
        # format (which Snakemake merges into the block) need not unset them.
        if corpus.get("test_tsv") is None and not config["pools"]["test"]:
            raise ConfigError(
                "pools.test: must be positive unless corpus.test_tsv names a test file"
            )
        return
    train, test = corpus["train_split"], corpus.get("test_split")
    if corpus.get("test_tsv") is not None:
        raise ConfigError(
            "corpus.test_tsv: a multi30k corpus's test set is corpus.test_split; set test_tsv "
            "to null"
        )
    if test == train:
        raise ConfigError(
            f"corpus.test_split: {test!r} is also corpus.train_split; the test set must be "
            "another split"
        )
    if test is None and not config["pools"]["test"]:
        raise ConfigError(
            "pools.test: must be positive unless corpus.test_split names a test split"
        )
    checksums = corpus.get("sha256s") or {}
    for name in corpus_downloads(corpus):
        if name not in checksums:
            raise ConfigError(
                f"corpus.sha256s: no SHA-256 for {name}; every downloaded file is checked "
                f"(sha256sum {name} of a trusted copy gives it)"
            )


def corpus_download(corpus: dict, file: str) -> tuple[str, str | None]:
    """(URL, SHA-256) of one file of a multi30k corpus."""
    downloads = corpus_downloads(corpus)
    if file not in downloads:
        raise ValueError(
            f"{file}: not a file of the configured corpus (corpus.train_split, "
            f"corpus.test_split); those are {sorted(downloads)}"
        )
    return downloads[file]


def corpus_downloads(corpus: dict) -> dict[str, tuple[str, str | None]]:
    """The files a `multi30k` corpus downloads: name -> (URL, expected SHA-256); none for the
    other formats (a `europarl` archive is one file, `corpus.url`)."""
    if corpus["format"] != "multi30k":
        return {}
    splits = [corpus["train_split"]]
    if corpus.get("test_split") is not None:
        splits.append(corpus["test_split"])
    base = corpus["base_url"].rstrip("/")
    checksums = corpus.get("sha256s") or {}
    return {
        name: (f"{base}/{name}", checksums.get(name))
        for split in splits
        for name in parallel_file_names(split)
    }


def _check_generator_name(config: dict, key: str, name: str) -> None:
    if name not in config["generators"]:
        raise ConfigError(
            f"{key}: {name!r} is not one of the generators {sorted(config['generators'])}"
        )


def _check_finetune_base(config: dict) -> None:
    base = config[FINETUNE]["base"]
    _check_generator_name(config, "finetune.base", base)
    backend = config["generators"][base]["backend"]
    if backend not in ("local", "openai", OPEN_WEIGHTS):
        raise ConfigError(
            f"finetune.base: {base!r} is an {backend} generator; E1 fine-tunes a local model, "
            f"an open-weight ({OPEN_WEIGHTS}) one, or an OpenAI model through its fine-tuning API"
        )


def finetune_through_api(config: dict) -> bool:
    """E1 runs through the OpenAI fine-tuning API when its base model is an openai generator."""
    finetune = config.get(FINETUNE)
    return bool(finetune) and config["generators"][finetune["base"]]["backend"] == "openai"


def _check_scratch(config: dict) -> None:
    architectures = config["architectures"]
    scratch = config[SCRATCH]
    if scratch["architecture"] not in architectures:
        raise ConfigError(
            f"scratch.architecture: {scratch['architecture']!r} is not one of the "
            f"architectures {sorted(architectures)}"
        )


@dataclass(frozen=True)
class PoolDemand:
    """A config key whose value needs `pairs` pairs of a pool (fewer than the pool holds, when
    `below`: an order of the whole pool trains on the same pairs as any other order)."""

    key: str
    pool: str
    pairs: int
    below: bool = False


def pool_demands(config: dict) -> list[PoolDemand]:
    """What the configured sizes need of the pools: checked against a pool's fixed size before
    any job, and against what the corpus gave a `null` pool right after the pools are made."""
    demands = [
        PoolDemand(f"generators.{name}.teacher_pairs", "teacher", generator["teacher_pairs"])
        for name, generator in config["generators"].items()
        if generator["backend"] == "local" and generator.get("teacher_pairs")
    ]
    for experiment in experiments(config):
        settings = config[experiment]
        demands.append(PoolDemand(f"{experiment}.sizes", "student", max(settings["sizes"])))
        if settings.get("partial", {}).get("sizes"):
            pairs = max(settings["partial"]["sizes"])
            demands.append(PoolDemand(f"{experiment}.partial.sizes", "student", pairs))
    demands += _ordering_demands(config)
    if RECURSION in config:
        pairs = max(config[RECURSION]["sizes"])
        demands.append(PoolDemand("recursion.sizes", "student", pairs))
    return demands


def _ordering_demands(config: dict) -> list[PoolDemand]:
    """S1 and S3 reorder the student pool; at the pool's own size every order trains on the
    same pairs, so a mitigation measured there would measure nothing."""
    settings = config.get("mitigations") or {}
    ordering = settings.get("generators") and (
        settings.get("metrics") or settings.get("detector", True)
    )
    if not ordering:
        return []
    demands = []
    for experiment in settings["experiments"]:
        sizes = settings.get("sizes") or config[experiment]["sizes"]
        key = "mitigations.sizes" if settings.get("sizes") else f"{experiment}.sizes"
        demands.append(PoolDemand(key, "student", max(sizes), below=True))
    return demands


def check_pool_demands(
    demands: list[PoolDemand], pools: dict[str, int], null_pools: tuple[str, ...] = ()
) -> None:
    """Refuse a demand that the pools of `pools` (pool -> pairs; absent where unknown) cannot
    meet, naming the key; `null_pools` are those whose size is what the corpus left them."""
    for demand in demands:
        held = pools.get(demand.pool)
        if held is None:
            continue
        if demand.below and demand.pairs >= held:
            raise ConfigError(
                f"{demand.key}: S1 and S3 order the student pool, so at {demand.pairs} pairs "
                f"(pools.{demand.pool}={held}{_made(demand.pool, null_pools)}) every order trains "
                "on the same pairs; set mitigations.sizes to sizes below the pool"
            )
        if demand.pairs > held:
            raise ConfigError(
                f"{demand.key}: {demand.pairs} pairs exceed pools.{demand.pool}={held}"
                f"{_made(demand.pool, null_pools)}; lower {demand.key} or give the pool more pairs"
            )


def _made(pool: str, null_pools: tuple[str, ...]) -> str:
    return " as the corpus filled it" if pool in null_pools else ""


def pools_for_config(report_path: str | Path, config: dict) -> dict[str, int]:
    """The pool sizes of the cleaning report at `report_path` where it was made for this
    config's corpus, cleaning, pools and seed; none otherwise (the pools will be made again)."""
    try:
        report = json.loads(Path(report_path).read_text())
    except (OSError, ValueError):
        return {}
    if report.get("request") != pools_request(config):
        return {}
    return report["pools"]


def null_pools(config: dict) -> tuple[str, ...]:
    """The pools that take what the corpus leaves (size null)."""
    return tuple(pool for pool, size in config["pools"].items() if size is None)


def pools_request(config: dict) -> dict:
    """Everything the pools depend on in the config, recorded in the cleaning report."""
    return {
        "corpus": config["corpus"],
        "cleaning": config["cleaning"],
        "pools": config["pools"],
        "seed": config["seed"],
    }


def _check_partial(config: dict, experiment: str) -> None:
    for name in config[experiment].get("partial", {}).get("generators", []):
        _check_generator_name(config, f"{experiment}.partial.generators", name)


def _check_mitigations(config: dict) -> None:
    settings = config["mitigations"]
    for experiment in settings["experiments"]:
        if experiment not in config:
            raise ConfigError(f"mitigations.experiments: {experiment!r} is not configured")
        missing = set(settings.get("sizes", [])) - set(config[experiment]["sizes"])
        if missing:
            raise ConfigError(
                f"mitigations.sizes: {sorted(missing)} are not among {experiment}.sizes, where "
                "real and unmitigated data are trained to measure the gap"
            )
    for name in settings["generators"]:
        _check_generator_name(config, "mitigations.generators", name)
    _check_mixes(config, settings.get("mixes", []))
    metrics = set(settings.get("metrics", []))
    if metrics & {"round_trip", "dual_cross_entropy"} and settings["generators"]:
        architecture = settings.get("reverse_architecture")
        if architecture not in config["architectures"]:
            raise ConfigError(
                f"mitigations.reverse_architecture: {architecture!r} is not one of the "
                f"architectures {sorted(config['architectures'])} (round_trip and "
                "dual_cross_entropy need a reverse model)"
            )
    if "dual_cross_entropy" in metrics and settings["generators"]:
        scorer = settings.get("forward_scorer")
        _check_generator_name(config, "mitigations.forward_scorer", scorer)
        if config["generators"][scorer]["backend"] != "local":
            raise ConfigError(f"mitigations.forward_scorer: {scorer!r} must be a local generator")


def _check_mixes(config: dict, mixes: list[list[str]]) -> None:
    """Each mix names known generators, and no two mixes name the same ones: a mix listed twice
    (in any order) would train the same condition twice under one or two ids."""
    seen: dict[frozenset, int] = {}
    for index, mix in enumerate(mixes):
        for name in mix:
            _check_generator_name(config, f"mitigations.mixes[{index}]", name)
        if frozenset(mix) in seen:
            raise ConfigError(
                f"mitigations.mixes[{index}]: {mix} mixes the same generators as "
                f"mitigations.mixes[{seen[frozenset(mix)]}]; list each mix once"
            )
        seen[frozenset(mix)] = index


def experiments(config: dict) -> list[str]:
    """The experiments this configuration runs: E2 always, E1 where `finetune` is set."""
    return [e for e in EXPERIMENT_ORDER if e in config]


def self_generator(config: dict, experiment: str) -> str | None:
    """The generator whose targets are `self`: in E1 the base model's own translations. E2 has
    none: a generator trained on the teacher pool is a teacher with more data than the student,
    so training on its output is distillation, not a model learning from its own output."""
    if experiment == FINETUNE:
        return config[FINETUNE]["base"]
    return None


def generator_labels(name: str, generator: dict) -> dict:
    """What a generator's metrics JSON says about it, beside its scores."""
    if generator["backend"] != "local":
        return {"generator": name, "architecture": f"{generator['backend']}:{generator['model']}"}
    return {
        "generator": name,
        "architecture": generator["architecture"],
        "teacher_pairs": generator.get("teacher_pairs"),
    }


def check_api_generator(name: str, generator: dict, prompts: dict | None) -> None:
    key = f"generators.{name}"
    try:
        resolve_prompt(prompts, generator.get("prompt", "default"), generator.get("prompt_version"))
    except KeyError as err:
        raise ConfigError(f"{key}.prompt: {err.args[0]}") from None
    prices = generator.get("prices") or {}
    if generator.get("budget") is not None and not (prices.get("input") or prices.get("output")):
        raise ConfigError(
            f"{key}.budget: a budget needs {key}.prices (input and output per million tokens) "
            "to count what is spent"
        )
    sampling = generator.get("sampling") or {}
    if generator["backend"] == "anthropic":
        for option in ("seed", "logprobs"):
            if sampling.get(option):
                raise ConfigError(f"{key}.sampling.{option}: the anthropic backend has no {option}")
    limit = generator.get("tokens_per_minute")
    if limit is not None and limit < sampling.get("max_tokens", 256):
        raise ConfigError(
            f"{key}.tokens_per_minute: {limit} is less than one request's "
            f"{key}.sampling.max_tokens ({sampling.get('max_tokens', 256)})"
        )


def training_settings(config: dict, *overrides: dict | None) -> dict:
    """The top-level `training` block with later blocks' keys replacing earlier ones."""
    settings = dict(config["training"])
    for override in overrides:
        settings.update(override or {})
    return settings


def decoding_settings(config: dict, override: dict | None = None) -> dict:
    return {**config["decoding"], **(override or {})}


def cross_generators(config: dict, experiment: str) -> list[str]:
    """Generators that give a `gen-<g>` condition: all but the one that plays `self`."""
    return [g for g in config["generators"] if g != self_generator(config, experiment)]


def generator_condition(config: dict, experiment: str, generator: str) -> str:
    """The condition id under which all of a generator's targets train the students."""
    return SELF if generator == self_generator(config, experiment) else gen_condition(generator)


def partial_conditions(config: dict, experiment: str) -> list[str]:
    partial = config[experiment].get("partial")
    if not partial:
        return []
    return [partial_condition(g, pct) for g in partial["generators"] for pct in partial["percents"]]


def partial_sizes(config: dict, experiment: str) -> list[int]:
    """Partial conditions train at the experiment's largest size unless `partial.sizes` says."""
    settings = config[experiment]
    return settings["partial"].get("sizes") or [max(settings["sizes"])]


def mitigation_conditions(config: dict, experiment: str) -> list[str]:
    """S1 ordered-<g>-<metric>, S2 mixed-<g1>+<g2>, S3 detector-<g>, where configured, and the
    sources-<c> control of every S1 and S3 condition (unless source_controls is off)."""
    settings = config.get("mitigations")
    if not settings or experiment not in settings["experiments"]:
        return []
    generators = settings["generators"]
    ordered = [ordered_condition(g, m) for g in generators for m in settings.get("metrics", [])]
    mixed = [mixed_condition(mix) for mix in settings.get("mixes", [])]
    detector = [detector_condition(g) for g in generators] if settings.get("detector", True) else []
    controls = [sources_condition(c) for c in [*ordered, *detector]]
    if not settings.get("source_controls", True):
        controls = []
    return [*ordered, *mixed, *detector, *controls]


def experiment_conditions(config: dict, experiment: str) -> list[str]:
    own = [SELF] if self_generator(config, experiment) else []
    gen = [gen_condition(g) for g in cross_generators(config, experiment)]
    return [
        REAL,
        *own,
        *gen,
        *partial_conditions(config, experiment),
        *mitigation_conditions(config, experiment),
    ]


def experiment_runs(config: dict, experiment: str) -> list[tuple[str, int, int]]:
    """Every (condition, size, seed) the experiment trains."""
    settings = config[experiment]
    partial = set(partial_conditions(config, experiment))
    mitigated = set(mitigation_conditions(config, experiment))

    def sizes(condition: str) -> list[int]:
        if condition in partial:
            return partial_sizes(config, experiment)
        if condition in mitigated and config["mitigations"].get("sizes"):
            return config["mitigations"]["sizes"]
        return settings["sizes"]

    return [
        (condition, size, seed)
        for condition in experiment_conditions(config, experiment)
        for size in sizes(condition)
        for seed in settings["seeds"]
    ]


def full_set_conditions(config: dict, experiment: str) -> dict[str, str]:
    """Each generator's condition id in the experiment (`self` or `gen-<g>`)."""
    return {g: generator_condition(config, experiment, g) for g in config["generators"]}


def student_architecture(config: dict, experiment: str) -> dict:
    """E2 students have `scratch.architecture`; E1 students are the base model's."""
    if experiment == FINETUNE:
        return config["architectures"][
            config["generators"][config[FINETUNE]["base"]]["architecture"]
        ]
    return config["architectures"][config[SCRATCH]["architecture"]]


# --- recursion --------------------------------------------------------------------------------


def _check_recursion(config: dict) -> None:
    settings = config[RECURSION]
    start = settings["experiment"]
    if start not in config:
        raise ConfigError(f"recursion.experiment: {start!r} is not configured")
    if start == FINETUNE:
        if finetune_through_api(config):
            raise ConfigError(
                "recursion.experiment: finetune's base is an openai model; every generation of "
                "the recursion is trained and decoded here, so it needs a local base"
            )
        if "architecture" in settings:
            raise ConfigError(
                "recursion.architecture: fine-tuned generations have the base model's "
                f"architecture ({config[FINETUNE]['base']!r}); set it only with experiment: scratch"
            )
    elif "architecture" in settings and settings["architecture"] not in config["architectures"]:
        raise ConfigError(
            f"recursion.architecture: {settings['architecture']!r} is not one of the "
            f"architectures {sorted(config['architectures'])}"
        )
    if REAL_SHARE in settings["regimes"] and settings.get("real_share") is None:
        raise ConfigError(
            f"recursion.real_share: the {REAL_SHARE} regime needs the percentage of human "
            "pairs it keeps in every generation"
        )


def recursion_runs(config: dict) -> list[tuple[str, int, int, int]]:
    """Every (regime, generation, size, seed) the recursion trains: generation 0 once per size
    and seed (its regime is `real`), then generations 1..recursion.generations of each regime;
    none without a `recursion` block."""
    settings = config.get(RECURSION)
    if not settings:
        return []
    lineages = [(size, seed) for size in settings["sizes"] for seed in settings["seeds"]]
    roots = [(GENERATION_ZERO_REGIME, 0, size, seed) for size, seed in lineages]
    return roots + [
        (regime, generation, size, seed)
        for regime in settings["regimes"]
        for generation in range(1, settings["generations"] + 1)
        for size, seed in lineages
    ]


def recursion_architecture(config: dict) -> dict:
    """Fine-tuned generations have the base model's architecture; from scratch, the
    recursion's own `architecture` or else the E2 students'."""
    settings = config[RECURSION]
    if settings["experiment"] == SCRATCH and "architecture" in settings:
        return config["architectures"][settings["architecture"]]
    return student_architecture(config, settings["experiment"])


def recursion_training(config: dict, seed: int) -> dict:
    """The trainer settings of a generation: the top-level block, then the start experiment's
    overrides, then the recursion's, then the run's seed and checkpoint selection (the
    recursion's `select`, else the start experiment's). From a base model, `best` evaluates the
    base at step 0 and keeps it wherever fine-tuning does not raise dev BLEU: a generation would
    then be the base itself, not a model trained on its parent's output, which is why a
    fine-tuning recursion selects `last` unless told otherwise."""
    settings = config[RECURSION]
    start = config[settings["experiment"]]
    select = settings.get("select", start["select"])  # the schema gives every experiment one
    return training_settings(
        config,
        start.get("training"),
        settings.get("training"),
        {"seed": seed, "select": select},
    )
