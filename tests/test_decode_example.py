"""The bundled example: planted motifs appear in motifs.meme of layer 2 (12 bp receptive field).

Decodes layers 1-2 with a reduced population (fast); the full-size decode of all five layers
is a manual check (see the decoder's report / README).
"""

import nmjax
from nmjax.config import DecodeConfig
from nmjax.decoder import decode
from nmjax.example import example_model_path
from nmjax.matching import compare
from nmjax.meme import read_meme
from nmjax.motifdb import jaspar_motifs


def test_example_layer2_motifs_match_planted_jaspar_motifs(tmp_path):
    path = example_model_path()
    planted = {m.name: m.alt_name for m in read_meme(path.parent / "planted.meme")}
    net = nmjax.load()
    config = DecodeConfig(population=600, max_generations=40, neuron_batch=16, rounds=1)
    decode(net, layers=[2], out=tmp_path, config=config, progress=False)
    motifs = read_meme(tmp_path / "layer2/motifs.meme")
    found = {planted[m.target] for m in compare(motifs, jaspar_motifs())
             if m.target in planted and m.q_value < 0.01}
    # CEBPB (10 bp) and MEF2C (11 bp) fit in the 12 bp window; Spi1, HNF4A and GFI1 partly
    assert {"CEBPB", "MEF2C"} <= found, found
    assert len(found) >= 4, found
