"""WebShop text environment: one engine, three transports (in-process, HTTP, headless Chromium)."""

from tsr_envs.webshop.catalogs import CatalogKey, get_shop
from tsr_envs.webshop.env import WebShopEnv

__all__ = ["CatalogKey", "WebShopEnv", "get_shop"]
