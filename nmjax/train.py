"""Train conv-stack models on simulated data (flax + optax), then fold them into a `Network`.

Training runs a flax module with real BatchNorm (batch statistics in training, running
statistics in evaluation). `to_network` folds each BatchNorm into the conv or dense layer
before it, exactly as a model converter does, so the decoder sees one affine map per neuron:

    scale = gamma / sqrt(var + eps);  kernel' = kernel * scale;  bias' = (bias - mean) * scale + beta

Loss: binary cross-entropy per task (sigmoid outputs), Adam, early stopping on the validation
loss (the best epoch's weights are kept). Test metrics: AUPRC and AUROC per task (sklearn).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .activations import activation_fn
from .architectures import build_config
from .errors import NmjaxError
from .fileio import write_text
from .meme import write_meme
from .network import Network, NetworkConfig, maxpool
from .simulate import SimulationConfig, planted_motifs, resolve_motifs, simulate


class TrainingModule(nn.Module):
    """The network of `config` with a BatchNorm after every conv and before its activation.

    Returns logits: the sigmoid of a last dense layer is left to the loss. Sows every
    conv's post-BatchNorm, pre-activation output as 'intermediates'/'conv{l}_output'.
    """

    config: NetworkConfig
    dropout: float = 0.0
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        h = x
        for l, spec in enumerate(self.config.convs, start=1):
            z = nn.Conv(spec.channels, (spec.kernel_width,), padding="VALID", name=f"conv{l}")(h)
            z = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                             epsilon=self.bn_epsilon, name=f"bn{l}")(z)
            self.sow("intermediates", f"conv{l}_output", z)
            h = maxpool(activation_fn(spec.activation)(z), spec.pool)
        last = len(self.config.head)
        for j, op in enumerate(self.config.head, start=1):
            if op.kind == "flatten":
                h = h.reshape(h.shape[0], -1)
            elif op.kind == "dense":
                h = nn.Dense(op.units, name=f"head{j}")(h)
                if j == last:
                    if op.activation != "sigmoid":
                        raise NmjaxError("training needs a sigmoid output layer, got "
                                         f"{op.activation!r}")
                else:
                    h = activation_fn(op.activation)(h)
                    h = nn.Dropout(self.dropout, deterministic=not train)(h)
            else:
                raise NmjaxError(f"training supports flatten and dense head layers, not {op.kind!r}")
        return h


def to_network(config: NetworkConfig, variables: dict, bn_epsilon: float = 1e-3) -> Network:
    """Fold every BatchNorm into the conv before it: the decodable twin of the trained module."""
    params, stats = variables["params"], variables["batch_stats"]
    folded: dict[str, Any] = {}
    for l in range(1, len(config.convs) + 1):
        bn, st = params[f"bn{l}"], stats[f"bn{l}"]
        scale = bn["scale"] / jnp.sqrt(st["var"] + bn_epsilon)
        conv = params[f"conv{l}"]
        folded[f"conv{l}"] = {"kernel": conv["kernel"] * scale,
                              "bias": (conv["bias"] - st["mean"]) * scale + bn["bias"]}
    for j, op in enumerate(config.head, start=1):
        if op.kind == "dense":
            folded[f"head{j}"] = dict(params[f"head{j}"])
    return Network(config, jax.tree_util.tree_map(np.asarray, folded))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; `seed` fixes initialisation, dropout and batch order."""

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    patience: int = 4
    dropout: float = 0.1
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """A trained model and how it got there."""

    network: Network
    variables: dict
    history: tuple[dict, ...]
    best_epoch: int
    train_seconds: float


def _bce(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.sigmoid_binary_cross_entropy(logits, labels).mean()


def init_variables(module: TrainingModule, key: jax.Array) -> dict:
    length = module.config.input_length
    x = jnp.zeros((1, length, module.config.convs[0].in_channels), jnp.float32)
    return module.init({"params": key}, x, train=False)


def make_steps(module: TrainingModule, optimizer: optax.GradientTransformation):
    """The two compiled stages: one optimisation step, and evaluation (logits) of a batch."""

    @jax.jit
    def train_step(params, batch_stats, opt_state, x, y, key):
        def loss_fn(p):
            logits, updates = module.apply({"params": p, "batch_stats": batch_stats},
                                           x.astype(jnp.float32), train=True,
                                           rngs={"dropout": key}, mutable=["batch_stats"])
            return _bce(logits, y.astype(jnp.float32)), updates["batch_stats"]

        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state, loss

    @jax.jit
    def eval_logits(variables, x):
        return module.apply(variables, x.astype(jnp.float32), train=False)

    return train_step, eval_logits


def _logits_in_batches(eval_logits, variables, x: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([np.asarray(eval_logits(variables, x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])


def train_network(config: NetworkConfig, train_xy: tuple[np.ndarray, np.ndarray],
                  valid_xy: tuple[np.ndarray, np.ndarray], settings: TrainConfig = TrainConfig(),
                  progress: bool = True) -> TrainResult:
    """Train `config` on (one-hot, labels) arrays with early stopping on the validation loss."""
    from tqdm import tqdm

    x_train, y_train = train_xy
    if len(x_train) < settings.batch_size:
        raise NmjaxError(f"the training split has {len(x_train)} sequences, fewer than one "
                         f"batch of {settings.batch_size}")
    module = TrainingModule(config, settings.dropout)
    key_init, key_dropout = jax.random.split(jax.random.key(settings.seed))
    variables = init_variables(module, key_init)
    params, batch_stats = variables["params"], variables["batch_stats"]
    optimizer = optax.adam(settings.learning_rate)
    opt_state = optimizer.init(params)
    train_step, eval_logits = make_steps(module, optimizer)
    order_rng = np.random.default_rng([settings.seed, 1])
    steps = len(x_train) // settings.batch_size
    best = (np.inf, 0, variables)
    history = []
    start = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        perm = order_rng.permutation(len(x_train))
        losses = []
        bar = tqdm(range(steps), desc=f"epoch {epoch}", disable=not progress, leave=False)
        for s in bar:
            idx = np.sort(perm[s * settings.batch_size:(s + 1) * settings.batch_size])
            step_key = jax.random.fold_in(key_dropout, (epoch - 1) * steps + s)
            params, batch_stats, opt_state, loss = train_step(
                params, batch_stats, opt_state, x_train[idx], y_train[idx], step_key)
            losses.append(loss)
            if s % 20 == 0:
                bar.set_postfix(loss=f"{float(loss):.4f}")
        current = {"params": params, "batch_stats": batch_stats}
        valid_loss = float(_bce(_logits_in_batches(eval_logits, current, valid_xy[0], 1024),
                                valid_xy[1].astype(np.float32)))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                        "valid_loss": valid_loss, "seconds": time.perf_counter() - start})
        if progress:
            tqdm.write(f"epoch {epoch}: train loss {history[-1]['train_loss']:.4f}  "
                       f"valid loss {valid_loss:.4f}")
        if valid_loss < best[0]:
            best = (valid_loss, epoch, current)
        elif epoch - best[1] >= settings.patience:
            break
    seconds = time.perf_counter() - start
    return TrainResult(to_network(config, best[2], module.bn_epsilon), best[2], tuple(history),
                       best[1], seconds)


def task_metrics(network: Network, x: np.ndarray, y: np.ndarray, task_names, batch_size=1024
                 ) -> dict[str, dict[str, float]]:
    """AUPRC and AUROC per task of the folded network on a labelled split."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    prob = np.concatenate([np.asarray(network.predict(x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])
    out = {}
    for t, name in enumerate(task_names):
        if y[:, t].min() == y[:, t].max():
            raise NmjaxError(f"task {name!r}: the test split has only one class; use more "
                             "test sequences or a higher positive_rate")
        out[name] = {"auprc": float(average_precision_score(y[:, t], prob[:, t])),
                     "auroc": float(roc_auc_score(y[:, t], prob[:, t])),
                     "positives": int(y[:, t].sum()), "n": int(len(y))}
    return out


def train_on_simulation(dataset: SimulationConfig, arch: str, width: float,
                        settings: TrainConfig, out_dir: str | os.PathLike | None = None,
                        progress: bool = True) -> tuple[TrainResult, dict]:
    """Simulate the splits, train, evaluate on the test split, and (with `out_dir`) write

    model.npz (nmjax checkpoint), model_keras2.h5 (Keras 2 HDF5 export), planted.meme,
    tasks.json (the simulation config: the ground truth) and metrics.json.
    """
    config = build_config(arch, len(dataset.tasks), dataset.length, width)
    motifs = resolve_motifs(dataset)
    t0 = time.perf_counter()
    splits = {s: simulate(dataset, s, motifs) for s in ("train", "valid", "test")}
    simulate_seconds = time.perf_counter() - t0
    result = train_network(config, (splits["train"].onehot, splits["train"].labels),
                           (splits["valid"].onehot, splits["valid"].labels), settings, progress)
    metrics = {
        "architecture": arch, "width": width, "dataset_seed": dataset.seed,
        "settings": dataclasses.asdict(settings),
        "tasks": {t.name: t.describe() for t in dataset.tasks},
        "test": task_metrics(result.network, splits["test"].onehot, splits["test"].labels,
                             dataset.task_names),
        "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "train_seconds": round(result.train_seconds, 1),
        "simulate_seconds": round(simulate_seconds, 1),
        "history": list(result.history),
        "parameters": int(sum(np.size(v) for v in jax.tree_util.tree_leaves(result.network.params))),
        "jax_version": jax.__version__, "cpu_count": os.cpu_count(),
    }
    if out_dir is not None:
        write_outputs(Path(out_dir), result.network, dataset, metrics)
    return result, metrics


def write_outputs(out: Path, network: Network, dataset: SimulationConfig, metrics: dict) -> None:
    """The checkpoint, its Keras 2 export, the ground truth and the metrics, each atomically."""
    network.save(out / "model.npz")
    try:
        from converters.keras import export_keras2_h5
    except ImportError:
        metrics["keras_export"] = None  # exporter not available in this installation
    else:
        export_keras2_h5(network, out / "model_keras2.h5")
        metrics["keras_export"] = "model_keras2.h5"
    write_meme(out / "planted.meme", planted_motifs(dataset))
    write_text(out / "tasks.json", json.dumps(dataset.to_json(), indent=2) + "\n")
    write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
