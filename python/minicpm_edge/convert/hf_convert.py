"""Hugging Face checkpoint directory -> GGUF.

Everything that can be wrong with the input (config, tensor names, shapes,
tokenizer) is checked before the output file is opened; only then are tensors
decoded, transformed and encoded one at a time.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import gguf
import numpy as np
from gguf import GGUFWriter

from .arch_base import DecoderArch, TensorSpec
from .arch_bitnet import BitNetArch
from .arch_llama import LlamaArch
from .arch_minicpm import MiniCPMArch
from .errors import (CheckpointFormatError, MissingTensorError, ShapeMismatchError, UnexpectedTensorError,
                     UnsupportedArchitectureError)
from .hf_reader import HFCheckpoint
from .plan import add_type_metadata, plan_entry
from .quantize import OutType, choose_type, head_tensor
from .vocab import Vocab
from .writer import Planned, write_gguf

log = logging.getLogger(__name__)

ARCHITECTURES: dict[str, type[DecoderArch]] = {
    name: cls for cls in (LlamaArch, MiniCPMArch, BitNetArch) for name in cls.hf_architectures
}
# config.json files without "architectures" still name their model_type.
MODEL_TYPES: dict[str, type[DecoderArch]] = {"llama": LlamaArch, "minicpm": MiniCPMArch, "bitnet": BitNetArch}


def select_arch(config: dict) -> DecoderArch:
    names = config.get("architectures") or []
    if isinstance(names, str):
        names = [names]
    names = [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    for name in names:
        if name in ARCHITECTURES:
            return ARCHITECTURES[name](config)
    if not names and config.get("model_type") in MODEL_TYPES:
        return MODEL_TYPES[config["model_type"]](config)
    found = ", ".join(map(str, names)) or f"model_type {config.get('model_type')!r}"
    raise UnsupportedArchitectureError(
        f"unsupported architecture {found}; supported: {', '.join(sorted(ARCHITECTURES))}")


def _check_tensors(ckpt: HFCheckpoint, arch: DecoderArch, specs: list[TensorSpec]) -> None:
    missing = [s.hf_name for s in specs if s.hf_name not in ckpt.tensors]
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise MissingTensorError(
            f"{ckpt.dir}: {len(missing)} tensor(s) the {arch.gguf_arch} architecture needs are missing: "
            f"{', '.join(missing[:10])}{more}")
    missing = [c for s in specs for c in s.companions if c not in ckpt.tensors]
    if missing:
        raise MissingTensorError(f"{ckpt.dir}: tensor(s) missing: {', '.join(missing[:10])}")
    for s in specs:
        ref = ckpt.tensors[s.hf_name]
        want = s.hf_shape or s.shape
        if tuple(ref.shape) != want:
            raise ShapeMismatchError(
                f"{s.hf_name}: shape {list(ref.shape)} in the checkpoint, but config.json implies {list(want)}")
        if s.hf_dtype is not None and ref.dtype != s.hf_dtype:
            raise CheckpointFormatError(f"{s.hf_name}: dtype {ref.dtype} in the checkpoint, expected {s.hf_dtype}")
    wanted = {s.hf_name for s in specs} | {c for s in specs for c in s.companions}
    extra = sorted(n for n in ckpt.tensors if n not in wanted and not arch.is_ignored(n))
    if extra:
        raise UnexpectedTensorError(
            f"{ckpt.dir}: tensor(s) the {arch.gguf_arch} architecture has no place for: {', '.join(extra[:10])}"
            + (f" and {len(extra) - 10} more" if len(extra) > 10 else ""))


def _loader(ckpt: HFCheckpoint, spec: TensorSpec):
    def run() -> np.ndarray:
        values = spec.load(ckpt) if spec.load is not None else ckpt.load_float32(spec.hf_name)
        if spec.transform is not None:
            values = spec.transform(values)
        return values
    return run


def _general_metadata(w: GGUFWriter, ckpt: HFCheckpoint, n_params: int) -> None:
    """general.* authorship keys, derived like llama.cpp does (model card, config, dir name)."""
    w.add_type(gguf.GGUFType.MODEL)
    try:
        meta = gguf.Metadata.load(None, ckpt.dir, None, n_params)
    except Exception as e:  # a model card we cannot parse must not stop a conversion
        log.warning("could not read model card metadata: %s", e)
        meta = gguf.Metadata()
    if meta.name is None:
        meta.name = ckpt.dir.name
    if meta.size_label is None and n_params > 0:
        meta.size_label = gguf.size_label(n_params, 0, 0, 0)
    meta.set_gguf_meta_model(w)


def convert_hf(src: Path, out: Path, out_type: OutType, progress: bool = True) -> Path:
    ckpt = HFCheckpoint(src)
    arch = select_arch(ckpt.config)
    specs = arch.tensor_specs()
    _check_tensors(ckpt, arch, specs)
    extra = arch.extra_tensors()
    vocab = Vocab(ckpt.dir, arch.hp.n_vocab, ckpt.config)

    plan: list[Planned] = []
    head = head_tensor([name for name, _ in extra] + [s.gguf_name for s in specs])
    for name, values in extra:
        choice = choose_type(name, values.shape, out_type, head)
        plan.append(plan_entry(name, values.shape, choice, lambda v=values: v))
    for s in specs:
        choice = choose_type(s.gguf_name, s.shape, out_type, head)
        plan.append(plan_entry(s.gguf_name, s.shape, choice, _loader(ckpt, s)))
    n_params = sum(math.prod(s.shape) for s in specs)

    def add_metadata(w: GGUFWriter) -> None:
        _general_metadata(w, ckpt, n_params)
        arch.add_metadata(w)
        add_type_metadata(w, out_type, plan)
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        vocab.add_to(w)

    log.info("converting %s (%s, %d tensors) to %s", src, arch.gguf_arch, len(plan), out_type.name)
    return write_gguf(out, arch.gguf_arch, add_metadata, plan, progress=progress)
