import pytest
import torch
import torch.nn.functional as F

from regurgitate.engine import model as model_module
from regurgitate.engine.decode import _Decoder
from regurgitate.engine.model import KVCache, ModelConfig, Transformer, load_model, save_model


def make_model(**overrides) -> Transformer:
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=50,
        d_model=32,
        heads=4,
        encoder_layers=2,
        decoder_layers=2,
        ffn_dim=64,
        max_positions=64,
        **({"dropout": 0.0} | overrides),
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


def test_stepwise_decoding_matches_full_decoding():
    """Beam search's decoder, one position at a time through the key/value cache, gives the
    logits of the whole target decoded at once (the banned pad token aside)."""
    model = make_model()
    src = torch.randint(4, 50, (2, 6))
    tgt = torch.randint(4, 50, (2, 5))
    full = model(src, tgt)
    decoder = _Decoder(model, src, max_len=5, banned=[0])
    with torch.inference_mode():
        steps = [decoder.step(tgt[:, t], beams=1).clone() for t in range(5)]
    stepped = torch.stack(steps, dim=1)
    assert (stepped[..., 0] == float("-inf")).all()
    torch.testing.assert_close(stepped[..., 1:], full[..., 1:], atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_cache_follows_rows_that_are_reordered_repeated_and_dropped():
    """As beam search moves rows (a row continues another, several continue one, rows leave),
    each row's cached keys and values are those of the row it continues."""
    cache = KVCache(layers=2, max_len=6)
    history = []  # per step, the keys of layer 1 that the rows hold
    rows_now = 4
    moves = [[2, 0, 0, 3], [1, 1, 2, 3, 0], [4, 0, 2], [1, 2], [1, 0, 0]]
    for step, rows in enumerate([torch.tensor(r) for r in moves] + [None]):
        written = {}
        for layer in range(2):
            k, v = torch.randn(rows_now, 2, 1, 4), torch.randn(rows_now, 2, 1, 4)
            keys, values = cache.write(layer, k, v)
            written[layer] = (k, v)
            assert keys.shape == (rows_now, 2, step + 1, 4)
            expected = [*(h[layer][0] for h in history), k]
            torch.testing.assert_close(keys, torch.cat(expected, dim=2))
            torch.testing.assert_close(values[:, :, -1:], v)
        cache.length += 1
        history.append(written)
        if rows is None:
            break
        cache.select(rows)
        history = [
            {
                layer: (k.index_select(0, rows), v.index_select(0, rows))
                for layer, (k, v) in h.items()
            }
            for h in history
        ]
        rows_now = len(rows)
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


# What model.pt holds (besides its config), as every model file written before issue 27
# spelled it: parameter names and shapes, for a model of make_model's dimensions.
def state_dict_before_issue_27(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    d, f = cfg.d_model, cfg.ffn_dim
    shapes = {"embed.weight": (cfg.vocab_size, d)}

    def linear(name: str, n_in: int, n_out: int) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (n_out, n_in), (n_out,)

    def norm(name: str) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (d,), (d,)

    for i in range(cfg.encoder_layers):
        norm(f"encoder.{i}.norm1")
        linear(f"encoder.{i}.attn.qkv", d, 3 * d)
        linear(f"encoder.{i}.attn.out", d, d)
        norm(f"encoder.{i}.norm2")
        linear(f"encoder.{i}.ffn.0", d, f)
        linear(f"encoder.{i}.ffn.3", f, d)
    for i in range(cfg.decoder_layers):
        norm(f"decoder.{i}.norm1")
        linear(f"decoder.{i}.self_attn.qkv", d, 3 * d)
        linear(f"decoder.{i}.self_attn.out", d, d)
        norm(f"decoder.{i}.norm2")
        linear(f"decoder.{i}.cross_attn.q", d, d)
        linear(f"decoder.{i}.cross_attn.kv", d, 2 * d)
        linear(f"decoder.{i}.cross_attn.out", d, d)
        norm(f"decoder.{i}.norm3")
        linear(f"decoder.{i}.ffn.0", d, f)
        linear(f"decoder.{i}.ffn.3", f, d)
    norm("encoder_norm")
    norm("decoder_norm")
    return shapes


def test_model_files_written_before_issue_27_still_load(tmp_path):
    """A model.pt of the format before the training-speed work (issue 27) loads, every weight
    where it was, and the model keeps that format."""
    cfg = make_model().cfg
    torch.manual_seed(5)
    old = {name: torch.randn(shape) for name, shape in state_dict_before_issue_27(cfg).items()}
    torch.save({"config": cfg.to_dict(), "state_dict": old}, tmp_path / "model.pt")
    model, _ = load_model(tmp_path / "model.pt")
    loaded = model.state_dict()
    assert loaded.keys() == old.keys()
    for name, weight in old.items():
        assert torch.equal(loaded[name], weight), name


def batch(rows: int = 5, vocab: int = 50):
    """A training batch of padded sources and targets, its real target positions (flat) and
    their tokens."""
    torch.manual_seed(3)
    src, tgt = torch.randint(4, vocab, (rows, 9)), torch.randint(4, vocab, (rows, 7))
    src[1, 6:], src[3, 3:], tgt[2, 4:], tgt[4, 1:] = 0, 0, 0, 0
    real = (tgt != 0).view(-1).nonzero().view(-1)
    return src, tgt, real, torch.randint(4, vocab, (len(real),))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("rows", [3, 256])
def test_training_loss_is_the_cross_entropy_of_the_logits(monkeypatch, smoothing, rows):
    """Transformer.loss (the vocabulary projection fused with the label-smoothed loss, `rows`
    positions at a time) computes the loss of F.cross_entropy on the model's logits, and the
    same gradients, in fp32."""
    monkeypatch.setattr(model_module, "LOSS_ROWS", rows)
    model = make_model().train()  # dropout 0: the two computations see the same network
    src, tgt, real, targets = batch()
    fused = model.loss(src, tgt, real, targets, smoothing)
    fused.backward()
    fused_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    plain = F.cross_entropy(model(src, tgt, keep=real), targets, label_smoothing=smoothing)
    plain.backward()
    torch.testing.assert_close(fused, plain)
    for name, p in model.named_parameters():
        torch.testing.assert_close(fused_grads[name], p.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_training_loss_in_bf16_autocast_follows_fp32():
    """Under bf16 autocast the fused loss multiplies in bf16, as F.linear would there: the loss
    and the gradients stay within bf16's precision of fp32's, and come back in fp32."""
    model = make_model().train()
    src, tgt, real, targets = batch()
    losses, grads = [], []
    for bf16 in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(src, tgt, real, targets, 0.1)
        loss.backward()
        losses.append(loss.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert grads[1].dtype == torch.float32
    assert not torch.equal(losses[1], losses[0])  # the products were bf16's
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-2, atol=0)
    assert (grads[1] - grads[0]).norm() < 0.05 * grads[0].norm()


def test_dropout_masks_drop_at_the_rate_and_keep_the_expectation():
    """keep_scale: 0 with probability p (to 1/65536), else 1 / (1 - p); a new mask at every call,
    the same masks from the same seed."""
    like = torch.empty(400, 1000)
    for p in (0.1, 0.3):
        torch.manual_seed(0)
        first, second = model_module.keep_scale(like, p), model_module.keep_scale(like, p)
        dropped = (first == 0).float().mean().item()
        assert abs(dropped - p) < 0.005
        assert torch.unique(first).tolist() == [0.0, pytest.approx(1 / (1 - p), rel=1e-4)]
        assert abs(first.mean().item() - 1.0) < 0.01
        assert not torch.equal(first, second)
        torch.manual_seed(0)
        assert torch.equal(model_module.keep_scale(like, p), first)


def test_dropout_and_dropout_add_apply_one_mask():
    x, h = torch.randn(30, 40), torch.randn(30, 40)
    torch.manual_seed(1)
    mask = model_module.keep_scale(h, 0.2)
    for fn, expected in (
        (lambda: model_module.dropout(h, 0.2, True), h * mask),
        (lambda: model_module.dropout_add(x, h, 0.2, True), x + h * mask),
    ):
        torch.manual_seed(1)
        torch.testing.assert_close(fn(), expected)
    assert model_module.dropout(h, 0.2, False) is h
    assert torch.equal(model_module.dropout_add(x, h, 0.2, False), x + h)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_with_dropout_computes_scaled_dot_product_attention(causal):
    """At rate 0 (a mask of ones) the training attention is scaled_dot_product_attention, with
    a padding mask or causal, forward and backward."""
    torch.manual_seed(2)
    q, k, v = (torch.randn(3, 2, 6, 8, requires_grad=True) for _ in range(3))
    mask = None if causal else (torch.arange(6) < torch.tensor([6, 4, 1])[:, None])[:, None, None]
    ours = model_module.attention_with_dropout(q, k, v, mask, causal, 0.0)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    torch.testing.assert_close(ours, theirs)
    grads = torch.autograd.grad(ours.square().sum(), (q, k, v))
    for a, b in zip(grads, torch.autograd.grad(theirs.square().sum(), (q, k, v)), strict=True):
        torch.testing.assert_close(a, b)


def test_training_dropout_drops_what_it_should():
    """In training, with dropout, the model's loss varies with the random state and repeats
    with it; in evaluation it is deterministic."""
    model = make_model(dropout=0.3).train()
    src, tgt, real, targets = batch()
    torch.manual_seed(7)
    a = model.loss(src, tgt, real, targets, 0.1)
    b = model.loss(src, tgt, real, targets, 0.1)
    torch.manual_seed(7)
    assert torch.equal(model.loss(src, tgt, real, targets, 0.1), a)
    assert not torch.equal(a, b)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(src, tgt), model(src, tgt))
