"""Export a sentence-transformers model once into an ONNX folder that onnxruntime runs alone.

Why: on the 2-core machine, torch takes ~55 ms to embed one question with e5-small and
~11 s to import sentence-transformers; onnxruntime runs the same graph in ~13 ms and
imports in 0.1 s (docs/benchmarks.md). The exported graph is the whole sentence-transformers
model (transformer, pooling, normalisation), so it gives the same vectors (cosine > 0.9999,
``tests/test_onnx_embedder.py``) and an index built with either backend serves the other.

The folder holds ``model.onnx``, the fast tokenizer's ``tokenizer.json`` and
``embedder.json`` (inputs, maximum length, dimension, pad id, and the sizes of the two
files, written last): a folder whose record is missing or whose sizes differ is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

from rag.errors import ModelError

log = logging.getLogger(__name__)

RECORD = "embedder.json"
FORMAT = 1  # bump when the folder's layout changes, so old exports are redone
OPSET = 17


def export_dir(cache_dir: Path, model_path: str, model_id: str) -> Path:
    """Where the export of this model lives: named by the model id and, for a folder, its files."""
    key = [model_id, str(FORMAT)]
    folder = Path(model_path)
    if folder.is_dir():  # a local folder may change under the same name: key on its files too
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                st = p.stat()
                key.append(f"{p.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"onnx-{digest}"


def is_complete(folder: Path) -> bool:
    """True if the record exists and both files have the sizes it lists."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        return record.get("format") == FORMAT and all(
            (folder / name).stat().st_size == size for name, size in record["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def ensure_exported(model_path: str, dest: Path) -> Path:
    """The ONNX folder for ``model_path`` at ``dest``, exported if missing, redone if damaged."""
    if is_complete(dest):
        return dest
    if dest.exists():
        log.info("ONNX export %s is incomplete or damaged; exporting again", dest)
        shutil.rmtree(dest, ignore_errors=True)
    # A warning, not info: the user waits for it (about 20 s on two cores), once per model.
    log.warning("exporting the embedding model to ONNX for onnxruntime (first use): %s", dest)
    tmp = dest.parent / f"{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # left by a crashed earlier process with our pid
    try:
        tmp.mkdir(parents=True)
        _export(model_path, tmp)
        try:
            os.rename(tmp, dest)  # atomic; refuses to replace a folder another process finished
        except OSError:
            if not is_complete(dest):
                raise
    except OSError as exc:
        raise ModelError(f"cannot write the ONNX export to {dest}: {exc}") from None
    except ModelError:
        raise
    except Exception as exc:  # the tracer and protobuf raise many types; the user needs one message
        raise ModelError(f"cannot export {model_path} to ONNX: {type(exc).__name__}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _export(model_path: str, folder: Path) -> None:
    """Trace the whole sentence-transformers model into ``folder``; the record goes last."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(model_path, device="cpu").eval()
    except Exception as exc:  # the library raises many types; the user needs one message
        raise ModelError(f"cannot load embedding model {model_path!r}: {exc}") from None
    tokenizer = model.tokenizer
    names = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]

    class Whole(torch.nn.Module):
        """The sentence-transformers pipeline as a function of the tokenizer's tensors."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(dict(zip(names, tensors)))["sentence_embedding"]

    sample = tokenizer(["query: 样例 sample"], return_tensors="pt")
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on indexing ops: checked by the equivalence test
        torch.onnx.export(Whole().eval(), tuple(sample[n] for n in names), str(folder / "model.onnx"),
                          dynamo=False, input_names=names, output_names=["embedding"],
                          dynamic_axes=axes, opset_version=OPSET)
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    files = {name: (folder / name).stat().st_size for name in ("model.onnx", "tokenizer.json")}
    max_len = min(model.max_seq_length or 512, getattr(tokenizer, "model_max_length", 512) or 512)
    record = {"format": FORMAT, "source": str(model_path), "inputs": names, "max_length": int(max_len),
              "dim": int(_dimension(model)), "pad_id": int(tokenizer.pad_token_id or 0),
              "pad_token": tokenizer.pad_token or "", "torch": torch.__version__, "files": files}
    (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _dimension(model) -> int:
    """The embedding size, under its sentence-transformers 6 name or the older one."""
    return (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
