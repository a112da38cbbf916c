"""WebShop's reward, term by term as in the original ``web_agent_site/engine/goal.py``.

``reward = r_type * (matched attributes + matched options + [price <= price_upper]) / (|A| + |O| + 1)``

* Attributes: a goal attribute matches when some product attribute has ``token_set_ratio > 85``, or when it
  is a lower-case substring of the title, the joined bullet points or the description.
* Options: every goal and selected option goes through ``normalize_color`` (the first entry of the
  alphabetical ``COLOR_SET`` contained in it, e.g. "navy blue" -> "blue", even "standard" -> "tan"); a goal
  option matches when some selected option has ``token_set_ratio > 85``. Synthetic goals pass
  ``goal_options.items()``: ``(name, value)`` tuples, for which ``normalize_color`` tests tuple membership and
  the fuzzy match sees the stringified tuple ("color black") -- kept as is, since it decides rewards.
* Fuzzy scores: the original's thefuzz rounds ``token_set_ratio`` to an integer after its default processing
  (lower-case, non-alphanumerics to spaces); rapidfuzz's ``default_process`` plus ``round`` reproduces it.
* Type: ``r_type`` is 1.0, lowered to 0.5 when neither the scrape query matches, nor two category levels,
  nor more than 20% of the goal title's nouns; then to 0.1 under 10% of the nouns and to 0 with none.

**Nouns without spaCy.** The original tags titles with spaCy (``NOUN``/``PROPN``); its model is not on the
package registry and re-uploads are a supply-chain risk, and NLTK taggers need downloads too. We use a
small deterministic rule: the nouns of a title are its alphabetic runs (two letters or more; hyphens and
apostrophes split words, as spaCy's tokenizer does) that are not
function words, not in a closed list of frequent product-title adjectives and colour words, and not a
number. Brand names and product nouns survive (as spaCy's PROPN/NOUN would), qualifiers mostly do not. For
buying the goal product itself the choice never matters (the title matches itself and the query matches);
``benchmarks/bench_webshop.py --reward-agreement`` measures how often it changes ``r_type`` elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from webshop_server.catalog import Product


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: The original's colour vocabulary (``normalize.py``); its alphabetical order decides normalisation.
COLOR_SET = _words(
    "alabaster apricot aqua ash asphalt azure banana beige black blue blush bordeaux bronze brown burgundy "
    "camel camo caramel champagne charcoal cheetah chestnut chocolate christmas coffee cognac copper coral "
    "cranberry cream crystal dark denim eggplant elephant espresso fuchsia gold granite grape graphite grass "
    "gray green grey heather indigo ivory ivy khaki lavender lemon leopard light lilac lime magenta maroon "
    "mauve merlot midnight mint mocha multicolor mushroom mustard natural navy nude olive orange peach "
    "pewter pink plum purple rainbow red rose royal rust sand sapphire seashell silver skull slate steel "
    "stone stonewash sunflower tan taupe teal tiger turquoise violet walnut wheat white wine yellow"
)

FUZZY_THRESHOLD = 85

_FUNCTION_WORDS = frozenset(_words(
    "a an the and or nor but for of to in on at by with without from into onto over under up down off out "
    "as per via plus vs x is are be was were it its this that these those your you our my his her their "
    "all any each every both some no not only also just more most very too so than then"
))
_TITLE_ADJECTIVES = frozenset(_words(
    "new best premium professional pro original classic deluxe luxury ultra super extra mini portable "
    "small large big medium little tiny huge long short wide narrow tall high low thin thick heavy light "
    "soft hard smooth warm cool cold hot dry wet fresh natural organic pure real genuine authentic "
    "waterproof wireless rechargeable adjustable durable reusable washable foldable compatible "
    "easy quick fast slim compact comfortable cute cozy stylish elegant modern vintage casual "
    "lightweight heavyweight solid clear transparent full multi double single triple dual "
    "unisex free non vegan healthy delicious sweet spicy "
    "black white red blue green yellow pink purple orange brown grey gray silver gold beige navy khaki "
    "ivory teal"
))
_WORD = re.compile(r"[a-z]+")  # spaCy splits hyphens and "'s" off words too


def title_nouns(title: str) -> list[str]:
    """The nouns of a product title by the rule described in the module docstring (duplicates kept)."""
    return [w for w in _WORD.findall(title.lower())
            if len(w) >= 2 and w not in _FUNCTION_WORDS and w not in _TITLE_ADJECTIVES]


def normalize_color(option: Any) -> Any:
    """The first ``COLOR_SET`` entry contained in ``option`` (substring, or member for a tuple), else it."""
    for color in COLOR_SET:
        if color in option:
            return color
    return option


def fuzzy_match(a: Any, b: Any) -> bool:
    """thefuzz's ``token_set_ratio(a, b) > 85``: stringified inputs, default processing, rounded score."""
    return round(fuzz.token_set_ratio(str(a), str(b), processor=default_process)) > FUZZY_THRESHOLD


@dataclass(frozen=True, slots=True)
class TypeMatch:
    """The parts of the type term: r_type and the three signals it is computed from."""

    r_type: float
    query_match: bool
    category_match: bool
    title_score: float


def type_reward(product: Product, goal: Mapping[str, Any], nouns=title_nouns) -> TypeMatch:
    """The type term; ``nouns`` is the title noun extractor (swappable for measurements)."""
    query_match = product.query == goal["query"]
    goal_path = {part.strip() for part in str(goal["product_category"]).split("›")}
    category_match = len(set(product.category_path) & goal_path) >= 2
    desired = nouns(goal["name"])
    purchased = set(nouns(product.title))
    title_score = len(purchased & set(desired)) / len(desired) if desired else 0.2
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return TypeMatch(r_type, query_match, category_match, title_score)


def attribute_matches(product: Product, goal_attributes: Iterable[str]) -> int:
    """How many goal attributes the product has (fuzzy against its attributes, else substring of its text)."""
    title = product.title.lower()
    bullets = " ".join(product.bullet_points).lower()
    description = product.description.lower()
    matches = 0
    for wanted in goal_attributes:
        if any(fuzzy_match(have, wanted) for have in product.attributes) or (
            wanted in title or wanted in bullets or wanted in description
        ):
            matches += 1
    return matches


def option_matches(selected: Iterable[str], goal_options: Iterable[Any]) -> int:
    """How many goal options some selected option matches, after colour normalisation of both sides."""
    chosen = [normalize_color(o) for o in selected]
    wanted = [normalize_color(o) for o in goal_options]
    return sum(1 for g in wanted if any(fuzzy_match(c, g) for c in chosen))


@dataclass(frozen=True, slots=True)
class Reward:
    """The reward and its parts (the original's verbose ``info``)."""

    total: float
    type: TypeMatch
    attribute_matches: int
    option_matches: int
    price_ok: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "reward": self.total, "r_type": self.type.r_type, "query_match": self.type.query_match,
            "category_match": self.type.category_match, "title_score": self.type.title_score,
            "attribute_matches": self.attribute_matches, "option_matches": self.option_matches,
            "price_ok": self.price_ok,
        }


def get_reward(product: Product, goal: Mapping[str, Any], price: float, options: Mapping[str, str],
               nouns=title_nouns) -> Reward:
    """The reward for buying ``product`` at ``price`` with the selected ``options`` ({group: value})."""
    goal_options = goal["goal_options"]
    wanted_options = list(goal_options.items()) if isinstance(goal_options, Mapping) else list(goal_options)
    kind = type_reward(product, goal, nouns)
    price_ok = bool(price <= goal["price_upper"]) if goal["price_upper"] > 0 else False
    n_att = attribute_matches(product, goal["attributes"])
    n_opt = option_matches(list(options.values()), wanted_options)
    total = (n_att + n_opt + price_ok) / (len(goal["attributes"]) + len(wanted_options) + 1) * kind.r_type
    return Reward(total, kind, n_att, n_opt, price_ok)
