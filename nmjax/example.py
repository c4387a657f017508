"""The bundled example: a small model trained by `nmjax.train` on simulated data with known
motif grammars, its planted motifs (MEME) and its task config (the ground truth).

Regenerate it with the command in `nmjax/data/example/README.md`.
"""
from __future__ import annotations

from pathlib import Path

EXAMPLE_DIR = Path(__file__).parent / "data" / "example"


def example_model_path() -> Path:
    """The bundled nmjax checkpoint (`example5` architecture, 200 bp input, 5 tasks)."""
    return EXAMPLE_DIR / "model.npz"


def example_motifs_path() -> Path:
    """MEME file of the JASPAR motifs planted in the example's training data."""
    return EXAMPLE_DIR / "planted.meme"


def example_tasks_path() -> Path:
    """Simulation config (tasks, grammars, seed) the example was trained on."""
    return EXAMPLE_DIR / "tasks.json"


def example_metrics_path() -> Path:
    """Test AUPRC/AUROC per task, training time and settings of the example."""
    return EXAMPLE_DIR / "metrics.json"
