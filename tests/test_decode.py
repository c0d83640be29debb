import torch

from regurgitate.engine import decode
from regurgitate.engine.batching import pad
from regurgitate.engine.decode import DecodeConfig, beam_search, decode_batches, translate
from regurgitate.engine.device import autocast_context
from regurgitate.engine.model import ModelConfig, Transformer

BOS, EOS = 2, 3


def make_model(seed: int, vocab: int = 30) -> Transformer:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=vocab,
        d_model=32,
        heads=2,
        encoder_layers=1,
        decoder_layers=2,
        ffn_dim=64,
        dropout=0.0,
        max_positions=64,
    )
    model = Transformer(cfg).eval()
    with torch.no_grad():  # make EOS reachable but not immediate, so lengths vary
        model.embed.weight[EOS] *= 3
    return model


def greedy_by_recomputation(model, src_row: torch.Tensor, limit: int) -> list[int]:
    """Step-by-step greedy decoding that reruns the whole decoder each step (no cache)."""
    tokens = [BOS]
    for _ in range(limit):
        logits = model(src_row.unsqueeze(0), torch.tensor([tokens]))[0, -1]
        logits[[0, BOS]] = float("-inf")
        nxt = int(logits.argmax())
        if nxt == EOS:
            return tokens[1:]
        tokens.append(nxt)
    return tokens[1:]


def test_beam_one_equals_stepwise_greedy():
    cfg = DecodeConfig(beam=1, max_len_a=1.0, max_len_b=8)
    for seed in range(5):
        model = make_model(seed)
        rows = [torch.randint(4, 30, (n,)).tolist() + [EOS] for n in (3, 7, 5, 2)]
        src = pad(rows, 0)
        hyps = beam_search(model, src, cfg, BOS, EOS)
        for row, hyp in zip(rows, hyps, strict=True):
            limit = int(1.0 * len(row) + 8)
            expected = greedy_by_recomputation(model, torch.tensor(row), limit)
            # A hypothesis cut off at the limit has `limit - 1` tokens, plus a forced EOS.
            assert hyp.tokens == expected[: len(hyp.tokens)]
            assert hyp.finished == (len(expected) < limit)


def test_beam_search_scores_are_sequence_logprobs():
    model = make_model(1)
    src = pad([[5, 6, 7, EOS], [8, 9, EOS]], 0)
    for hyp, row in zip(beam_search(model, src, DecodeConfig(beam=4), BOS, EOS), src, strict=True):
        tgt = [BOS] + hyp.tokens
        with torch.no_grad():
            logits = model(row.unsqueeze(0), torch.tensor([tgt]))[0]
        logits[:, [0, BOS]] = float("-inf")
        logp = logits.log_softmax(-1)
        expected = sum(float(logp[i, t]) for i, t in enumerate(hyp.tokens + [EOS]))
        assert abs(hyp.logprob - expected) < 1e-3


def test_wider_beam_finds_at_least_as_likely_output():
    model = make_model(2)
    rows = [torch.randint(4, 30, (6,)).tolist() + [EOS] for _ in range(8)]
    src = pad(rows, 0)
    cfg = dict(length_penalty=0.0, max_len_a=1.0, max_len_b=6)
    greedy = beam_search(model, src, DecodeConfig(beam=1, **cfg), BOS, EOS)
    beam = beam_search(model, src, DecodeConfig(beam=5, **cfg), BOS, EOS)
    assert sum(h.logprob for h in beam) >= sum(h.logprob for h in greedy) - 1e-4


def test_batching_does_not_change_results():
    model = make_model(3)
    rows = [torch.randint(4, 30, (n,)).tolist() + [EOS] for n in (2, 9, 4, 6, 3)]
    cfg = DecodeConfig(beam=3)
    together = beam_search(model, pad(rows, 0), cfg, BOS, EOS)
    alone = [beam_search(model, pad([r], 0), cfg, BOS, EOS)[0] for r in rows]
    assert [h.tokens for h in together] == [h.tokens for h in alone]


def test_max_length_guard(monkeypatch):
    """A hypothesis that never ends is cut off at its length limit: limit - 1 tokens and a
    forced EOS, marked unfinished."""
    model = make_model(4)
    step = decode._Decoder.step

    def eos_never_wins(self, *args, **kwargs):
        logits = step(self, *args, **kwargs)
        logits[..., EOS] -= 1e4
        return logits

    monkeypatch.setattr(decode._Decoder, "step", eos_never_wins)
    src = pad([[5, 6, EOS]], 0)
    for beam in (1, 2):
        cfg = DecodeConfig(beam=beam, max_len_a=1.0, max_len_b=2)
        (hyp,) = beam_search(model, src, cfg, BOS, EOS)
        assert len(hyp.tokens) == 4 and not hyp.finished


def test_decode_batches_cover_all_indices_within_budget():
    lengths = [5, 50, 7, 3, 22, 9, 40]
    batches = decode_batches(lengths, max_tokens=120, beam=2)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) * 2 <= 120


def test_translate_returns_input_order(toy_tokenizer):
    torch.manual_seed(0)
    model = Transformer(
        ModelConfig(
            vocab_size=toy_tokenizer.vocab_size,
            d_model=32,
            heads=2,
            encoder_layers=1,
            decoder_layers=1,
            ffn_dim=32,
            dropout=0.0,
        )
    )
    sources = [
        "Ein mann spielt .",
        "Die katze sitzt neben dem großen haus im garten heute .",
        "Ein kind .",
    ]
    out = translate(model, toy_tokenizer, sources, DecodeConfig(beam=2, max_tokens=50))
    one_by_one = [translate(model, toy_tokenizer, [s], DecodeConfig(beam=2))[0] for s in sources]
    assert [text for text, _ in out] == [text for text, _ in one_by_one]


@torch.no_grad()
def beam_by_recomputation(model, src_row: torch.Tensor, beam: int, limit: int, lp: float):
    """One sentence's beam search, spelled out: every beam rescored by a full forward pass over
    the whole vocabulary each step (no cache, no batching, no candidate shortcuts)."""
    beams, finished = [(0.0, [BOS])], []
    for step in range(limit):
        candidates = []
        for score, tokens in beams:
            logits = model(src_row.unsqueeze(0), torch.tensor([tokens]))[0, -1]
            logits[[0, BOS]] = float("-inf")
            logp = logits.log_softmax(-1)
            if step + 1 >= limit:  # at the limit only EOS may follow
                logp[torch.arange(len(logp)) != EOS] = float("-inf")
            candidates += [(score + float(logp[t]), tokens, t) for t in range(len(logp))]
        candidates.sort(key=lambda c: -c[0])
        beams = []
        for rank, (score, tokens, t) in enumerate(candidates[: 2 * beam]):
            if t == EOS:
                if rank < beam and len(finished) < beam and score > float("-inf"):
                    length = len(tokens)  # the hypothesis (without BOS) plus EOS
                    finished.append((score / length**lp, tokens[1:], score))
            elif len(beams) < beam:
                beams.append((score, tokens + [t]))
        if len(finished) >= beam or step + 1 >= limit:
            break
    return max(finished, key=lambda f: f[0])


def assert_as_recomputed(model, rows, hyps, beam: int, limit) -> None:
    """Each hypothesis is what the plain search finds for its row, `limit(row)` tokens at most."""
    for row, hyp in zip(rows, hyps, strict=True):
        _, tokens, logprob = beam_by_recomputation(model, torch.tensor(row), beam, limit(row), 1.0)
        assert hyp.tokens == tokens
        assert abs(hyp.logprob - logprob) < 1e-4


def test_beam_search_equals_beam_search_spelled_out():
    """The batched, cached search with its shortcuts finds exactly what the plain one finds; with
    400 tokens the best continuations are found by blocks of the vocabulary (_top_logits)."""
    for seed, beam, vocab in [(0, 1, 30), (1, 2, 30), (2, 4, 30), (3, 4, 30), (4, 4, 400)]:
        model = make_model(seed, vocab)
        rows = [torch.randint(4, 30, (n,)).tolist() + [EOS] for n in (2, 8, 4, 6, 3)]
        cfg = DecodeConfig(beam=beam, max_len_a=1.0, max_len_b=4, length_penalty=1.0)
        hyps = beam_search(model, pad(rows, 0), cfg, BOS, EOS)
        assert_as_recomputed(model, rows, hyps, beam, lambda row: len(row) + 4)


def test_cached_search_equals_recomputation_as_sentences_finish_apart():
    """Sentences that finish at different steps leave the batch and take their rows out of the
    key/value cache; the search of those that go on must not notice, at one beam and at four."""
    for seed, beam in [(0, 1), (1, 1), (0, 4), (1, 4)]:
        model = make_model(seed)
        rows = [torch.randint(4, 30, (n,)).tolist() + [EOS] for n in (9, 1, 6, 3, 12, 2, 7, 4)]
        cfg = DecodeConfig(beam=beam, max_len_a=1.0, max_len_b=6, length_penalty=1.0)
        hyps = beam_search(model, pad(rows, 0), cfg, BOS, EOS)
        # Finished at different steps: some by EOS, some at their (different) length limits.
        assert len({len(h.tokens) for h in hyps}) >= 4
        assert seed == 0 or {h.finished for h in hyps} == {True, False}
        assert_as_recomputed(model, rows, hyps, beam, lambda row: len(row) + 6)


def test_sentences_leaving_at_the_first_step_take_their_source_with_them():
    """At the first step each sentence has one row, after it k: when sentences leave then, the
    rows of those that go on can be as many as before (here 4 sentences, 2 leave, beam 2), and
    must still read their own source."""
    model = make_model(0)
    short = [[5, EOS], [7, EOS]]  # limit 1: done at the first step
    long = [[6, 9, 11, 12, 8, 13, 14, 15, EOS], [20, 21, 22, 23, 24, 25, 26, EOS]]
    cfg = DecodeConfig(beam=2, max_len_a=0.5, max_len_b=0, length_penalty=1.0)
    for rows in (short + long, long + short, [short[0], long[0], short[1], long[1]]):
        hyps = beam_search(model, pad(rows, 0), cfg, BOS, EOS)
        assert_as_recomputed(model, rows, hyps, 2, lambda row: max(1, len(row) // 2))


def test_top_logits_equal_topk():
    """The block search of the beams' best continuations finds what torch.topk finds, for
    vocabularies it splits into blocks and for those it leaves to topk (no divisor)."""
    torch.manual_seed(0)
    for vocab, n in [(6000, 8), (6000, 2), (4096, 10), (400, 8), (997, 8), (30, 10)]:
        logits = torch.randn(37, vocab) * 4
        logits[:, [0, 2]] = float("-inf")
        logits[3, :] = 1.5  # a row of equal values: any n of them will do
        logits[5, :] = torch.linspace(-1, 1, vocab)  # the best all in one block
        values, columns = decode._top_logits(logits, n)
        expected = logits.topk(n, dim=1).values
        assert torch.equal(values, expected)
        assert torch.equal(logits.gather(1, columns), values)
        assert all(len(set(row)) == n for row in columns.tolist())


def test_bf16_search_is_batch_invariant_and_near_fp32():
    """Under bf16 autocast (`precision: auto` on CPUs with native bf16) the search takes its own
    path to fp32 logits; a sentence decodes alone as in a batch, and as in fp32 here."""
    model = make_model(2)
    rows = [torch.randint(4, 30, (n,)).tolist() + [EOS] for n in (2, 8, 5)]
    for beam in (1, 4):
        cfg = DecodeConfig(beam=beam, max_len_b=4)
        fp32 = beam_search(model, pad(rows, 0), cfg, BOS, EOS)
        with autocast_context(torch.device("cpu"), True):
            together = beam_search(model, pad(rows, 0), cfg, BOS, EOS)
            alone = [beam_search(model, pad([r], 0), cfg, BOS, EOS)[0] for r in rows]
        assert [h.tokens for h in together] == [h.tokens for h in alone]
        assert [h.tokens for h in together] == [h.tokens for h in fp32]
        assert all(abs(a.logprob - b.logprob) < 0.1 for a, b in zip(together, fp32, strict=True))


def test_batches_joining_a_search_under_way_find_what_they_find_alone(monkeypatch):
    """A batch joins the search under way (decode.JOIN_AT) as a cohort at its own position, with
    its own cache and source memory; sentences finish and leave from every cohort. Each
    sentence still finds what the plain search finds, at one beam and at three."""
    model = make_model(0)
    rows = [torch.randint(4, 30, (n,)).tolist() + [EOS] for n in (2, 9, 4, 6, 3, 7, 1, 5, 8, 2)]
    batches = [pad(rows[i : i + 3], 0) for i in range(0, len(rows), 3)]
    step, positions = decode._Decoder.step, set()

    def recording(self, *args, **kwargs):
        positions.add(tuple(c.cache.length for c in self.cohorts))
        return step(self, *args, **kwargs)

    monkeypatch.setattr(decode._Decoder, "step", recording)
    for beam in (1, 3):
        positions.clear()
        # Room for about a batch: the next one joins once sentences have left.
        cfg = DecodeConfig(beam=beam, max_len_a=1.0, max_len_b=4, max_tokens=30 * beam)
        found = dict(decode._search(model, batches, cfg, BOS, EOS))
        assert sorted(found) == list(range(len(rows)))
        assert any(len(set(p)) > 1 for p in positions)  # cohorts at different positions
        hyps = [found[i] for i in range(len(rows))]
        assert_as_recomputed(model, rows, hyps, beam, lambda row: len(row) + 4)
