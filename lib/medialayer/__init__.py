"""medialayer: find duplicate, copied and edited product media across a catalog.

    >>> import medialayer
    >>> medialayer.match("a.jpg", "b.jpg").to_dict()["match_type"]   # doctest: +SKIP
    'mirrored'
"""
from .config import Config, ConfigError, load_config
from .envelope import MatchResult
from .pairwise import match, match_pairs

__version__ = "0.1.0"
__all__ = ["Config", "ConfigError", "MatchResult", "load_config", "match", "match_pairs", "__version__"]
