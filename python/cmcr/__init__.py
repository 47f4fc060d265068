"""cmcr: C-MCR ("Connecting Multi-modal Contrastive Representations") from Python, over the C
library libcmcr (docs/python.md).

    import cmcr
    model = cmcr.Model.load("clap_clip.pt")
    clap = cmcr.Clap("630k-fusion-best.pt")
    clip = cmcr.Clip("clip-vit-base-patch32")
    audio = clap.embed_audio(["toilet.wav", "BBQ.wav", "train.wav"])
    images = clip.embed_images(["toilet.jpeg", "BBQ.jpeg", "train.jpeg"])
    table = model.similarity(audio, "a", images, "b", softmax=True)   # softmax(10 * sim)

Arrays: float32 C-contiguous arrays go to C without a copy; other float dtypes and layouts are
converted; results are NumPy arrays. Errors: cmcr.Error and its subclasses, one per
cmcr_status, carrying the library's one-line message. Every C call runs with the GIL released.
"""
from ._errors import (ArgumentError, Error, FileError, FormatError, InvalidValueError, OutOfMemoryError, ShapeError,
                      StoppedError, UnsupportedError)
from ._lib import HEADER, LIBRARY, VERSION, ffi, set_log
from .encoders import Clap, Clip, PointBert, encoder_kind, load_encoder
from .evaluate import RetrievalMetrics, World, ZeroshotMetrics, eval_retrieval, eval_zeroshot, synth, synth_defaults
from .model import HeadShape, Model, dot_rows, load_model, normalize_rows, preset_shape, softmax_rows
from .tensors import Tensors, file_format, load_labels, load_matrix, load_tensors, save_matrix, save_tensors
from .train import TrainStats, aggregate, checkpoint_info, train, train_settings

__version__ = VERSION
__all__ = [
    "Error", "ArgumentError", "FileError", "FormatError", "UnsupportedError", "ShapeError", "InvalidValueError",
    "OutOfMemoryError", "StoppedError",
    "Model", "HeadShape", "load_model", "preset_shape", "dot_rows", "normalize_rows", "softmax_rows",
    "train", "TrainStats", "train_settings", "checkpoint_info", "aggregate",
    "eval_retrieval", "eval_zeroshot", "RetrievalMetrics", "ZeroshotMetrics", "synth", "synth_defaults", "World",
    "Clip", "Clap", "PointBert", "encoder_kind", "load_encoder",
    "Tensors", "load_tensors", "save_tensors", "load_matrix", "save_matrix", "load_labels", "file_format",
    "info", "set_log", "LIBRARY", "VERSION",
]


def info():
    """The library's build and numeric back-end: version, where it was loaded from, the matrix
    products' back-end and kernels, OpenBLAS's kernels and threads, MPI and bfloat16 support."""
    from ._lib import lib, text
    bf16 = bool(lib.cmcr_bf16_support())
    return {"version": VERSION, "library": LIBRARY, "header": HEADER,
            "gemm_backend": text(lib.cmcr_gemm_backend()), "gemm_kernels": text(lib.cmcr_gemm_kernels()),
            "blas_core": text(lib.cmcr_blas_core()), "blas_threads": int(lib.cmcr_blas_threads()),
            "blas_better_core": text(lib.cmcr_blas_better_core(ffi.NULL)),
            "mpi": bool(lib.cmcr_mpi_support()), "bf16": bf16}
