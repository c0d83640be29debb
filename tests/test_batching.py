import numpy as np

from regurgitate.engine.batching import (
    EncodedPairs,
    collate,
    epoch_batches,
    length_buckets,
    padding_fraction,
)


def test_buckets_respect_budget_and_cover_everything():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 40, size=500)
    batches = length_buckets(lengths, max_tokens=256, rng=rng)
    assert sorted(i for b in batches for i in b) == list(range(500))
    assert all(len(b) * max(lengths[b]) <= 256 for b in batches)


def test_bucketing_keeps_padding_low():
    rng = np.random.default_rng(0)
    data = EncodedPairs(
        [[5] * int(n) for n in rng.integers(2, 40, 400)],
        [[6] * int(n) for n in rng.integers(2, 40, 400)],
    )
    batches = [collate(data, b, 0, 2, 3) for b in epoch_batches(data, 512, seed=1, epoch=0)]
    shuffled = rng.permutation(400).tolist()
    naive = [collate(data, shuffled[i : i + 16], 0, 2, 3) for i in range(0, 400, 16)]
    assert padding_fraction(batches) < padding_fraction(naive)


def test_epoch_batches_depend_only_on_seed_and_epoch():
    data = EncodedPairs([[5] * (i % 17 + 1) for i in range(100)], [[6] * 3] * 100)
    assert epoch_batches(data, 64, 1, 0) == epoch_batches(data, 64, 1, 0)
    assert epoch_batches(data, 64, 1, 0) != epoch_batches(data, 64, 1, 1)


def test_collate_adds_bos_and_eos():
    data = EncodedPairs([[7, 8]], [[9, 10, 11]])
    batch = collate(data, [0], pad_id=0, bos_id=2, eos_id=3)
    assert batch.src.tolist() == [[7, 8, 3]]
    assert batch.tgt_in.tolist() == [[2, 9, 10, 11]]
    assert batch.tgt_out.tolist() == [[9, 10, 11, 3]]
    assert batch.target_tokens == 4


def test_collate_gives_the_real_target_positions_by_index():
    """The training step takes the real positions by these indices (no boolean mask on the
    device): they and their tokens are those of the padded targets, row by row."""
    data = EncodedPairs([[7], [7, 8, 9]], [[9, 10, 11], [12]])
    batch = collate(data, [0, 1], pad_id=0, bos_id=2, eos_id=3)
    assert batch.tgt_out.tolist() == [[9, 10, 11, 3], [12, 3, 0, 0]]
    assert batch.src.tolist() == [[7, 3, 0, 0], [7, 8, 9, 3]]
    mask = batch.tgt_out != 0
    assert batch.real.tolist() == mask.view(-1).nonzero().view(-1).tolist() == [0, 1, 2, 3, 4, 5]
    assert batch.targets.tolist() == batch.tgt_out[mask].tolist() == [9, 10, 11, 3, 12, 3]
    assert batch.target_tokens == 6
