"""WebShop, rebuilt: catalogue (synthetic or the original files), BM25 search, the WebShop reward, an
in-process engine over small immutable session records, and a Flask site on the same engine.
"""

from webshop_server.catalog import Catalog, Product
from webshop_server.engine import Engine, EngineStep, SessionRecord, parse_action
from webshop_server.reward import Reward, get_reward
from webshop_server.sources import load_catalog

__all__ = [
    "Catalog",
    "Engine",
    "EngineStep",
    "Product",
    "Reward",
    "SessionRecord",
    "get_reward",
    "load_catalog",
    "parse_action",
]
