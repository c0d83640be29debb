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
    cache: dict = {}
    steps = [model.decode(tgt[:, t : t + 1], kv, mask, cache, offset=t) for t in range(5)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


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
    keep = torch.rand(2, 5) > 0.4
    torch.testing.assert_close(model(src, tgt, keep=keep), model(src, tgt)[keep])
