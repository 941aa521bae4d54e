"""Synthetic digit-like data of any size, seeded."""

from __future__ import annotations

import numpy as np

from harness.data.dataset import N_CLASSES, SYNTHETIC_N_TEST, Dataset


def synthetic(n_train: int, input_size: int, seed: int) -> Dataset:
    """Digit-like random data of any size, for runs that must not depend on real images.

    Each class has a fixed random "stroke" pattern over about a fifth of the
    inputs, as much ink as an MNIST digit carries; a sample keeps each stroke
    pixel with probability 0.6, gains stray pixels with probability 0.08, and
    inked pixels take intensities in [0.5, 1). Sparse inputs matter: dense
    uniform ones would saturate every sigmoid of the book's N(0, 1)
    initialisation and nothing would be learnt. Patterns, train and test use
    separate child streams of ``default_rng(seed)``, and every per-sample
    quantity its own stream, so the training set for N samples is the first N
    rows of the one for more, and the test set never depends on N.
    """
    # SeedSequence(seed) is what default_rng(seed) builds on; spawning from it
    # (rather than Generator.spawn) keeps numpy 1.24 supported.
    pattern_seq, train_seq, test_seq = np.random.SeedSequence(seed).spawn(3)
    strokes = np.random.default_rng(pattern_seq).random((N_CLASSES, input_size)) < 0.2

    def draw(seq: np.random.SeedSequence, count: int) -> tuple[np.ndarray, np.ndarray]:
        label_rng, ink_rng, value_rng = (np.random.default_rng(s) for s in seq.spawn(3))
        labels = label_rng.integers(0, N_CLASSES, count).astype(np.int64)
        draw_ink = ink_rng.random((count, input_size))
        inked = np.where(strokes[labels], draw_ink < 0.6, draw_ink < 0.08)
        inputs = np.where(inked, 0.5 + 0.5 * value_rng.random((count, input_size)), 0.0)
        return inputs, labels

    train_images, train_labels = draw(train_seq, n_train)
    test_images, test_labels = draw(test_seq, SYNTHETIC_N_TEST)
    return Dataset("synthetic", train_images, train_labels, test_images, test_labels)
