"""The price table: USD per million input and output tokens, by model (prices.yaml, plus
the user's own YAML in $HARNESS_LLM_PRICES or `ProviderConfig.prices_file`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

BUILTIN_PRICES = Path(__file__).with_name("prices.yaml")


class PriceError(ValueError):
    """A price table is malformed; the message names the file and entry."""


class Price(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0, description="USD per million input (prompt) tokens")
    output: float = Field(0.0, ge=0, description="USD per million output (completion) tokens")


class PriceTable:
    """Looks models up by exact name, then by the longest `prefix*` entry, then without a
    provider prefix (`openai/gpt-4o` -> `gpt-4o`) or a date suffix (`gpt-4o-2024-08-06`)."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self.prices = prices
        self._warned: set[str] = set()

    @classmethod
    def load(cls, extra: Optional[str | Path] = None) -> "PriceTable":
        """The built-in table, overridden entry by entry by `extra` (a YAML file) when given."""
        prices = _read(BUILTIN_PRICES)
        if extra:
            prices.update(_read(Path(extra)))
        return cls(prices)

    def price(self, model: str) -> Optional[Price]:
        for name in _candidates(model):
            if name in self.prices:
                return self.prices[name]
            stars = [k for k in self.prices if k.endswith("*") and name.startswith(k[:-1])]
            if stars:
                return self.prices[max(stars, key=len)]
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> Optional[float]:
        """USD for one call; None (and one warning per model) when the model has no price."""
        p = self.price(model)
        if p is None:
            if model not in self._warned:
                self._warned.add(model)
                print(f"harness llm: no price for model {model!r}: its cost is recorded as null; "
                      "add it to a YAML file named by HARNESS_LLM_PRICES", file=sys.stderr)
            return None
        return (input_tokens * p.input + output_tokens * p.output) / 1e6


def _candidates(model: str) -> list[str]:
    import re

    out = [model]
    bare = model.rsplit("/", 1)[-1]
    out.append(bare)
    undated = re.sub(r"-(\d{4}-\d{2}-\d{2}|\d{4})$", "", bare)
    out.append(undated)
    return list(dict.fromkeys(out))


def _read(path: Path) -> dict[str, Price]:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise PriceError(f"{path}: cannot read the price table ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise PriceError(f"{path}: expected a mapping of model -> {{input, output}} (USD per million tokens)")
    out = {}
    for name, entry in raw.items():
        try:
            out[str(name)] = Price.model_validate(entry)
        except ValidationError as e:
            first = e.errors()[0]
            raise PriceError(f"{path}: model {name!r}: {'.'.join(map(str, first['loc'])) or 'entry'}: {first['msg']} "
                             "(write `name: {input: USD per Mtok, output: USD per Mtok}`)") from None
    return out
