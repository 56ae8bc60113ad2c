"""``paddle.dataset``: readers over data sets kept on local disk (never downloaded)."""

from . import text_corpus, uci_housing

__all__ = ["uci_housing", "text_corpus"]
