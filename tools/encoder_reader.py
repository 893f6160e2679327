"""Can the embedding model itself read out a short answer? A probe on CMRC (not used by the assistant).

    python tools/encoder_reader.py frozen
    python tools/encoder_reader.py fine-tune [--epochs 6] [--lr 1.5e-4]

No Chinese reader model ships offline; the one encoder that does is the bundled
multilingual-e5-small. Each CMRC question is given, with the sentence that holds its gold answer
("query: <question>" then "passage: <sentence>" in one input, so its tokens attend to each other),
and a start and an end score per sentence token pick the span (end at most MAX_SPAN_TOKENS after
start), as extractive readers do. Two ways to get those scores, both trained on the fit half only
and reported as exact match and character F1 on both halves:

- ``frozen``: the encoder as it ships; logistic regression on each token's last-layer state, its
  product with the mean question state and with the first token's state;
- ``fine-tune``: the encoder's layers (not its word embeddings) trained with a linear start/end
  head, per epoch on the held half. Its weights would have to ship, or be trained on every
  machine at set-up, for the assistant to use it.

Compare with ``tools/short_answer_bounds.py`` (the shipped chooser on the same sentences).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from rag.config import load_settings
from rag.indexing.embedder import resolve_model
from rag.quality.cmrc import answering_sentences
from rag.quality.span_eval import char_f1, exact_match

MAX_SPAN_TOKENS = 30
MAX_INPUT_TOKENS = 256
PASSAGE_PREFIX = "passage: "


def examples(tokenizer) -> list[dict]:
    """Per question: token ids, each token's character span in the sentence (None for the question's
    and special tokens), the gold start and end token (None when the tokens cannot hold it exactly), the half."""
    rows = []
    for item, sentence in answering_sentences():
        question, passage = tokenizer.encode("query: " + item.question), tokenizer.encode(PASSAGE_PREFIX + sentence)
        shift = len(PASSAGE_PREFIX)
        spans = [None] * len(question.ids) + [
            (max(0, a - shift), b - shift) if b > shift and (a, b) != (0, 0) else None for a, b in passage.offsets[1:]]
        ids = (question.ids + passage.ids[1:])[:MAX_INPUT_TOKENS]
        golds = [a for a, _ in item.answers]
        start = sentence.find(golds[0])
        rows.append({"half": item.half, "ids": ids, "spans": spans[:len(ids)], "sentence": sentence, "golds": golds,
                     "label": _token_label(spans[:len(ids)], start, start + len(golds[0])) if start >= 0 else None})
    return rows


def _token_label(spans: list, start: int, end: int) -> tuple[int, int] | None:
    """The first token holding character ``start`` and the last holding ``end - 1``."""
    first = next((k for k, s in enumerate(spans) if s and s[0] <= start < s[1]), None)
    last = next((k for k in range(len(spans) - 1, -1, -1) if spans[k] and spans[k][0] < end <= spans[k][1]), None)
    return (first, last) if first is not None and last is not None and last >= first else None


def decode(row: dict, start_scores: np.ndarray, end_scores: np.ndarray) -> str:
    """The sentence text of the best-scoring (start, end) pair of passage tokens."""
    tokens = [k for k, s in enumerate(row["spans"]) if s]
    best, pick = -np.inf, (tokens[0], tokens[0])
    for i in tokens:
        for j in tokens:
            if i <= j <= i + MAX_SPAN_TOKENS and start_scores[i] + end_scores[j] > best:
                best, pick = start_scores[i] + end_scores[j], (i, j)
    return row["sentence"][row["spans"][pick[0]][0]:row["spans"][pick[1]][1]].strip()


def scored(rows: list[dict], spans_of) -> dict[str, tuple[float, float]]:
    """Mean exact match and F1 per half of the spans ``spans_of(rows)`` reads out."""
    texts = spans_of(rows)
    out = {}
    for half in ("fit", "held"):
        picked = [(exact_match(t, r["golds"]), char_f1(t, r["golds"])) for r, t in zip(rows, texts) if r["half"] == half]
        if picked:
            out[half] = tuple(round(float(v), 3) for v in np.mean(picked, axis=0))
    return out


def frozen(rows: list[dict], model) -> None:
    """Logistic start and end heads on the frozen encoder's token states."""
    import torch
    from sklearn.linear_model import LogisticRegression

    def token_features(row: dict) -> np.ndarray:
        with torch.no_grad():
            states = model(input_ids=torch.tensor([row["ids"]])).last_hidden_state[0].numpy()
        n_question = next(k for k, s in enumerate(row["spans"]) if s)
        question = states[1:n_question].mean(axis=0)
        return np.hstack([states, states * question, states * states[0]])

    features = [token_features(r) for r in rows]
    train = [(x, r["label"]) for x, r in zip(features, rows) if r["half"] == "fit" and r["label"]]
    x = np.vstack([x for x, _ in train])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    starts = np.concatenate([np.arange(len(x)) == label[0] for x, label in train])
    ends = np.concatenate([np.arange(len(x)) == label[1] for x, label in train])
    for c in (0.001, 0.01, 0.1):
        heads = [LogisticRegression(C=c, max_iter=3000).fit((x - mean) / scale, y) for y in (starts, ends)]
        result = scored(rows, lambda rs: [decode(r, *(h.decision_function((f - mean) / scale) for h in heads))
                                          for r, f in zip(rs, features)])
        print(f"frozen, C={c}: exact match / F1  fit {result['fit']}  held {result['held']}", flush=True)


def fine_tune(rows: list[dict], model, epochs: int, lr: float, batch_size: int = 16) -> None:
    """Train the encoder's layers and a start/end head on the fit half; report each epoch."""
    import torch

    torch.manual_seed(0)
    random.seed(0)
    head = torch.nn.Linear(model.config.hidden_size, 2)
    for p in model.embeddings.parameters():
        p.requires_grad = False  # 96M of the 118M weights; few hundred questions cannot move them usefully
    trainable = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimiser = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01)
    train = [r for r in rows if r["half"] == "fit" and r["label"]]
    steps = epochs * -(-len(train) // batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up over a tenth, then linear decay
        optimiser, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, (steps - s) / steps))

    def logits(batch: list[dict]):
        n = max(len(r["ids"]) for r in batch)
        ids = torch.ones((len(batch), n), dtype=torch.long)  # 1 is the pad id
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        passage = torch.zeros((len(batch), n), dtype=torch.bool)
        for i, r in enumerate(batch):
            ids[i, :len(r["ids"])], mask[i, :len(r["ids"])] = torch.tensor(r["ids"]), 1
            passage[i, :len(r["ids"])] = torch.tensor([s is not None for s in r["spans"]])
        return head(model(input_ids=ids, attention_mask=mask).last_hidden_state).masked_fill(~passage[..., None], -1e4)

    def read(batch_rows: list[dict]) -> list[str]:
        model.eval()
        texts = []
        with torch.no_grad():
            for k in range(0, len(batch_rows), 32):
                chunk = batch_rows[k:k + 32]
                out = logits(chunk).numpy()
                texts += [decode(r, out[i, :, 0], out[i, :, 1]) for i, r in enumerate(chunk)]
        model.train()
        return texts

    began = time.monotonic()
    model.train()
    for epoch in range(1, epochs + 1):
        random.shuffle(train)
        for k in range(0, len(train), batch_size):
            batch = train[k:k + batch_size]
            out = logits(batch)
            loss = sum(torch.nn.functional.cross_entropy(out[:, :, end], torch.tensor([r["label"][end] for r in batch]))
                       for end in (0, 1))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        held = scored([r for r in rows if r["half"] == "held"], read)["held"]
        print(f"fine-tune, epoch {epoch} ({time.monotonic() - began:.0f} s): exact match / F1 held {held}", flush=True)
    print(f"fine-tuned: exact match / F1 {scored(rows, read)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("how", choices=("frozen", "fine-tune"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1.5e-4)
    args = parser.parse_args()

    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    torch.set_num_threads(2)
    folder, _ = resolve_model(load_settings())
    model = AutoModel.from_pretrained(folder).eval()
    rows = examples(Tokenizer.from_file(f"{folder}/tokenizer.json"))
    print(f"{sum(r['half'] == 'fit' and r['label'] is not None for r in rows)} fit questions to learn from, "
          f"{sum(r['half'] == 'held' for r in rows)} held", flush=True)
    if args.how == "frozen":
        frozen(rows, model)
    else:
        fine_tune(rows, model, args.epochs, args.lr)


if __name__ == "__main__":
    main()
