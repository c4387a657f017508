"""The bench's projection of whole-model decode times from measured rows (no measuring)."""
import pytest

from nmjax.benchreport import markdown, projection


def _layer(model, layer, field, channels, s_per_generation, seq_per_s=1e6):
    return {"model": model, "width": 1.0, "layer": layer, "receptive_field": field,
            "channels": channels, "ga_s_per_generation_per_neuron": s_per_generation,
            "score_seq_per_s": seq_per_s}


def _decoded(layer, seconds, generations, decoupling):
    return {"layer": layer, "seconds_per_neuron": seconds, "generations_mean": generations,
            "kmeans_s_per_neuron": decoupling,
            "batches": [{"neurons": [0], "samples": [70_000, 90_000]}]}


def test_a_decoded_basset_layer_projects_to_its_measured_seconds_per_neuron():
    layers = [_layer("basset", 1, 19, 300, 0.004), _layer("basset", 2, 51, 200, 0.04),
              _layer("basset", 3, 132, 200, 2.0), _layer("bd10", 3, 14, 128, 0.5)]
    decoded = [_decoded(2, 4.0, 50, 1.5), _decoded(3, 160.0, 40, 50.0)]
    basset, bd10 = projection(layers, decoded, default_generations=100)
    per_layer = {x["layer"]: x for x in basset["layers"]}
    assert per_layer[3]["hours"] == pytest.approx(200 * 160.0 / 3600, abs=1e-3)
    assert per_layer[2]["hours"] == pytest.approx(200 * 4.0 / 3600, abs=1e-3)
    # no decoded layer-1 neurons: Basset L3's generations and seconds beyond the GA
    assert per_layer[1]["hours"] == pytest.approx(300 * (40 * 0.004 + 80.0) / 3600, abs=1e-3)
    # bd10's layer 3 runs its own GA rate for Basset L3's generations, plus the 80 s Basset's
    # neurons spent beyond their GA (re-scoring and decoupling)
    assert bd10["layers"][0]["hours"] == pytest.approx(128 * (40 * 0.5 + 80.0) / 3600, abs=1e-3)
    assert not bd10["all_layers"]


def test_the_decoded_table_gives_sample_sizes_and_peak_memory():
    result = {"mode": "full", "started": "now", "machine": "cpu", "jax": "0", "load_start": 0,
              "load_end": 0, "peak": {"jax_fp32": 1, "numpy_fp32": 1, "jax_bf16": 1,
                                      "fp32_peak": 1},
              "layers": [], "projection": [],
              "decoded": [{**_decoded(3, 160.0, 40, 50.0), "includes_compile": False,
                           "max_samples": 100_000, "peak_rss_mb": 3984.8,
                           "authors_s_per_neuron_at_least": 720,
                           "speedup_vs_authors_at_least": 4.5, "target_speedup": 10,
                           "load_before": 1, "load_after": 1}]}
    row = [l for l in markdown(result).splitlines() if l.startswith("| 3 |")][0]
    assert "| 100000 |" in row and "| 70000-90000 | 3984.8 |" in row
