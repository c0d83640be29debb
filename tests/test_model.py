import torch

from regurgitate.engine.model import ModelConfig, Transformer, load_model, save_model


def make_model(**overrides) -> Transformer:
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=50,
        d_model=32,
        heads=4,
        encoder_layers=2,
        decoder_layers=2,
        ffn_dim=64,
        dropout=0.0,
        max_positions=64,
        **overrides,
    )
    return Transformer(cfg).eval()


def test_forward_shapes():
    model = make_model()
    src = torch.randint(4, 50, (3, 7))
    tgt = torch.randint(4, 50, (3, 5))
    assert model(src, tgt).shape == (3, 5, 50)


def test_embeddings_are_tied():
    """The output projection is the embedding matrix: a token that is in neither the source nor
    the target only reaches the logits through it, as its own logit, states @ its embedding."""
    model = make_model()
    unused = 40
    src, tgt = torch.randint(4, 30, (2, 6)), torch.randint(4, 30, (2, 5))
    memory, mask = model.encode(src)
    states = model.decode_states(tgt, model.memory_kv(memory), mask)
    before = model(src, tgt)
    delta = torch.randn(model.cfg.d_model)
    with torch.no_grad():
        model.embed.weight[unused] += delta
    after = model(src, tgt)
    others = torch.arange(50) != unused
    torch.testing.assert_close(after[..., others], before[..., others])
    torch.testing.assert_close(after[..., unused] - before[..., unused], states @ delta)
    # and so training on a pair moves the embedding of a token the pair does not hold
    model.zero_grad()
    model(src, tgt).logsumexp(-1).sum().backward()
    assert model.embed.weight.grad[unused].abs().sum() > 0


def test_source_padding_is_masked():
    """Extra padding on the source must not change the output."""
    model = make_model()
    src = torch.randint(4, 50, (1, 6))
    padded = torch.cat([src, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    tgt = torch.randint(4, 50, (1, 4))
    torch.testing.assert_close(model(src, tgt), model(padded, tgt), atol=1e-5, rtol=1e-5)


def test_decoder_is_causal():
    """Changing a later target token leaves the logits of earlier positions unchanged."""
    model = make_model()
    src = torch.randint(4, 50, (1, 6))
    tgt = torch.randint(4, 50, (1, 6))
    changed = tgt.clone()
    changed[0, 4] = (changed[0, 4] + 1) % 46 + 4
    a, b = model(src, tgt), model(src, changed)
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_cached_decoding_matches_full_decoding():
    model = make_model()
    src = torch.randint(4, 50, (2, 6))
    tgt = torch.randint(4, 50, (2, 5))
    full = model(src, tgt)
    memory, mask = model.encode(src)
    kv = model.memory_kv(memory)
    cache = model.kv_cache(5)
    steps = [model.decode(tgt[:, t : t + 1], kv, mask, cache) for t in range(5)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_cache_follows_rows_that_are_reordered_repeated_and_dropped():
    """As beam search moves rows (a row continues another, several continue one, rows leave),
    each row's cached decoding equals decoding its whole history again without a cache."""
    model = make_model()
    torch.manual_seed(1)
    src = torch.randint(4, 50, (4, 6))
    memory, mask = model.encode(src)
    kv, cache = model.memory_kv(memory), model.kv_cache(6)
    sources = torch.arange(4)  # the source of each row
    history = torch.randint(4, 50, (4, 1))  # each row's target tokens so far
    moves = [[2, 0, 0, 3], [1, 1, 2, 3, 0], [4, 0, 2], [1, 2], [1, 0, 0]]
    for rows in [torch.tensor(r) for r in moves]:
        step = model.decode(history[:, -1:], kv, mask, cache)[:, -1]
        full = model(src.index_select(0, sources), history)[:, -1]
        torch.testing.assert_close(step, full, atol=1e-5, rtol=1e-5)
        cache.select(rows)
        sources, history = sources[rows], history[rows]
        kv = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in kv]
        mask = mask.index_select(0, rows)
        history = torch.cat([history, torch.randint(4, 50, (len(rows), 1))], dim=1)
    assert len(history) == 3 and history.shape[1] == 6
    # and the step after the last move, which fills the cache
    step = model.decode(history[:, -1:], kv, mask, cache)[:, -1]
    full = model(src.index_select(0, sources), history)[:, -1]
    torch.testing.assert_close(step, full, atol=1e-5, rtol=1e-5)
    assert cache.length == cache.max_len


def test_save_and_load_roundtrip(tmp_path):
    model = make_model()
    save_model(model, tmp_path / "m.pt", extra={"summary": {"steps": 3}})
    loaded, payload = load_model(tmp_path / "m.pt")
    assert payload["summary"] == {"steps": 3}
    src, tgt = torch.randint(4, 50, (1, 4)), torch.randint(4, 50, (1, 3))
    torch.testing.assert_close(model(src, tgt), loaded(src, tgt))


def test_forward_keeps_only_the_asked_positions():
    model = make_model()
    src, tgt = torch.randint(4, 50, (2, 6)), torch.randint(4, 50, (2, 5))
    mask = torch.rand(2, 5) > 0.4
    keep = mask.view(-1).nonzero().view(-1)  # flat positions, row by row
    torch.testing.assert_close(model(src, tgt, keep=keep), model(src, tgt)[mask])
