"""A tiny bundled public-domain text corpus as Paddle's ``imikolov`` n-gram reader.

The text is ``torchfluid/data/gettysburg_preamble.txt`` (licence: ``data/LICENSES.md``).
Words are lower-cased runs of letters (``battle-field`` is two words); each line is a
sentence, wrapped in ``<s>`` ... ``<e>`` as Paddle's reader does. ``build_dict`` numbers
the words by falling frequency (ties by the word), ``<unk>`` last; ``train`` and
``test`` yield tuples of ``n`` consecutive word ids (``test``: every fifth line,
``train``: the others). Nothing is downloaded.
"""

from __future__ import annotations

import collections
import os
import re

from .._checks import check_int

__all__ = ["build_dict", "train", "test", "sentences", "CORPUS_FILE"]

CORPUS_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "gettysburg_preamble.txt"
)
_WORD = re.compile(r"[a-z]+")


def sentences() -> list[list[str]]:
    """The corpus as lists of lower-case words, one per line."""
    with open(CORPUS_FILE, encoding="utf-8") as f:
        return [_WORD.findall(line.lower()) for line in f if line.strip()]


def build_dict(min_word_freq: int = 0) -> dict[str, int]:
    """``word -> id`` for words seen more than ``min_word_freq`` times (with ``<s>`` and
    ``<e>`` once per line); ids by falling count, ties alphabetical; ``<unk>`` last."""
    min_word_freq = check_int("min_word_freq", min_word_freq, lo=0)
    counts = collections.Counter()
    for words in sentences():
        counts.update(["<s>", *words, "<e>"])
    kept = sorted((w for w, c in counts.items() if c > min_word_freq), key=lambda w: (-counts[w], w))
    word_idx = {w: i for i, w in enumerate(kept)}
    word_idx["<unk>"] = len(word_idx)
    return word_idx


def _reader(word_idx, n, keep):
    n = check_int("n", n, lo=1)
    if not isinstance(word_idx, dict) or "<unk>" not in word_idx:
        raise ValueError("word_idx must be a dict from build_dict() (with '<unk>')")
    unk = word_idx["<unk>"]

    def reader():
        for i, words in enumerate(sentences()):
            if not keep(i):
                continue
            ids = [word_idx.get(w, unk) for w in ["<s>", *words, "<e>"]]
            for j in range(n, len(ids) + 1):
                yield tuple(ids[j - n : j])

    return reader


def train(word_idx, n):
    """Reader of ``n``-grams (tuples of ids) from the training lines (all but every fifth)."""
    return _reader(word_idx, n, lambda i: i % 5 != 4)


def test(word_idx, n):
    """Reader of ``n``-grams from the test lines (every fifth)."""
    return _reader(word_idx, n, lambda i: i % 5 == 4)
