"""Synthetic province generator: a realistic daily drop (seven files, mixed formats, noisy IDs and names,
planted problem cases) and its ground truth, for tests, demos and benchmarks.

    from dibao_synth import generate
    summary = generate(households=2000, seed=7, out=Path("drop"))  # truth in drop_truth/
"""

from dibao_synth.generator import SynthSummary, generate

__all__ = ["SynthSummary", "generate"]
