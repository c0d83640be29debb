"""Tiny random models of real Hugging Face architectures, built in the tests (these machines
cannot download weights): a 2-layer Llama with a chat template and a 1+1-layer Marian, each with
a byte-level BPE tokenizer trained on the toy corpus, saved with `save_pretrained`."""

from __future__ import annotations

import os
import random
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in a test reaches the network

from toy import toy_pair  # noqa: E402

# Qwen2's ChatML template: the turns the causal model is prompted and fine-tuned with.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "deu_Latn", "eng_Latn"]


def toy_sentences(n: int = 600, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [s for _ in range(n) for s in toy_pair(rng)]


def train_tokenizer(seq2seq: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # The prompt's English words too, so that a causal prompt is not a string of bytes.
    prompt = "You are a professional translator. Translate the user's German text into English."
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([*toy_sentences(), prompt] * 2, trainer)
    if seq2seq:  # Marian ends every source and target with </s>
        tok.post_processor = processors.TemplateProcessing(
            single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
        )
    eos = "</s>" if seq2seq else "<|im_end|>"
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token=eos, pad_token="<pad>", unk_token="<unk>"
    )
    if not seq2seq:
        fast.chat_template = CHATML
    return fast


def build_causal(path: Path, hidden: int = 48, layers: int = 2, seed: int = 0) -> Path:
    """A random Llama (2 layers, hidden 48) with a ChatML tokenizer, saved in `path`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(seq2seq=False)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return Path(path)


def build_seq2seq(path: Path, d_model: int = 32, seed: int = 0) -> Path:
    """A random Marian (1+1 layers, d_model 32) with its tokenizer, saved in `path`."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    tokenizer = train_tokenizer(seq2seq=True)
    config = MarianConfig(
        vocab_size=len(tokenizer),
        d_model=d_model,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
        share_encoder_decoder_embeddings=True,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    model.generation_config.decoder_start_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return Path(path)


# The tiny study's prompt: the tiny models' steps cost what their prompts' tokens cost.
SHORT_PROMPT = {"short": {1: {"system": "Translate German to English.", "user": "{source}"}}}


def pretrain(path: Path, steps: int = 12, seed: int = 0, lr: float = 5e-3) -> Path:
    """Teach a tiny model a little of the toy translation (full fine-tuning through the
    project's own code), so that it answers with words instead of special tokens."""
    import torch

    from regurgitate.engine.train import TrainConfig
    from regurgitate.generators.open_weights_finetune import FinetuneSettings, finetune
    from regurgitate.generators.open_weights_settings import OpenWeightsSettings

    rng = random.Random(seed + 100)
    pairs = [toy_pair(rng) for _ in range(200)]
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    settings = OpenWeightsSettings.from_config(
        "base", {"backend": "huggingface", "model": str(path), "prompt": "short"}, SHORT_PROMPT
    )
    training = TrainConfig(
        max_tokens=300, lr=lr, warmup_steps=2, max_steps=steps, select="last",
        precision="fp32", label_smoothing=0.0, eval_every=10**6, log_every=10**6,
    )  # fmt: skip
    trained = Path(f"{path}.trained")
    finetune(
        settings, FinetuneSettings(training, method="full"), sources, targets, ([], []),
        trained / "last.pt", trained / "model", torch.device("cpu"),
    )  # fmt: skip
    return trained / "model"
