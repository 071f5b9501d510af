"""Human amounts for holders: sUSDai and USDai (18 decimals) and discounts, exact both ways.

Parsing never rounds: ``12.5`` is exactly 12.5e18 wei, a nineteenth decimal is refused, and
a discount that is not a whole number of basis points is refused. Every parse error is a
``ConfigError`` (a usage error, exit 2) naming the value and what would be accepted.
"""

from __future__ import annotations

import re

from clearing.config import ConfigError
from clearing.model import MAX_BASIS_POINT, MIN_BASIS_POINT  # PROTOCOL 3.2: 10..10000

DECIMALS = 18
E18 = 10**DECIMALS
BPS = 10_000

_AMOUNT = re.compile(r"(?P<whole>\d+)(?:\.(?P<frac>\d+))?", re.ASCII)
_WEI = re.compile(r"(?P<wei>\d+)\s*wei", re.IGNORECASE | re.ASCII)
_PERCENT = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*%", re.ASCII)
_BASIS_POINTS = re.compile(r"(?P<number>\d+)\s*(?:bp|bps)", re.IGNORECASE | re.ASCII)


def parse_amount(text: str, *, unit: str = "sUSDai", decimals: int = DECIMALS) -> int:
    """``12.5`` (or ``12.5 sUSDai``) -> 12500000000000000000; ``123wei`` -> 123 (exact wei).

    Refuses signs, exponents, thousands separators, a comma as decimal mark and more than
    ``decimals`` significant decimals.
    """
    raw = text.strip()
    if raw.lower().endswith(unit.lower()):
        raw = raw[: -len(unit)].strip()
    wei = _WEI.fullmatch(raw)
    if wei:
        return int(wei["wei"])
    match = _AMOUNT.fullmatch(raw)
    if match is None:
        hint = " (use a dot as the decimal mark)" if "," in raw else ""
        raise ConfigError(
            f"{text!r} is not an amount of {unit}{hint}: write e.g. 12.5 "
            "(or 12500000000000000000wei)"
        )
    frac = (match["frac"] or "").rstrip("0")
    if len(frac) > decimals:
        raise ConfigError(f"{text!r} has more than {decimals} decimals ({unit} has {decimals})")
    return int(match["whole"]) * 10**decimals + int(frac.ljust(decimals, "0") or "0")


def parse_discount(text: str) -> int:
    """``1.5%`` -> 150 basis points; ``150bp`` -> 150. A bare number is refused (ambiguous)."""
    raw = text.strip()
    percent = _PERCENT.fullmatch(raw)
    if percent:
        whole, _, frac = percent["number"].partition(".")
        frac = frac.rstrip("0")
        if len(frac) > 2:
            raise ConfigError(
                f"discount {text!r} is not a whole number of basis points (0.01% steps)"
            )
        return int(whole) * 100 + int(frac.ljust(2, "0") or "0")
    bps = _BASIS_POINTS.fullmatch(raw)
    if bps:
        return int(bps["number"])
    raise ConfigError(
        f"discount {text!r} needs a unit: a percentage such as 1.5% or basis points such as "
        "150bp (or use --bp 150)"
    )


def check_basis_point(bp: int) -> int:
    """``bp`` if the protocol allows it (10..10000, PROTOCOL 3.2 and 4.8 reason 6)."""
    if not MIN_BASIS_POINT <= bp <= MAX_BASIS_POINT:
        raise ConfigError(
            f"discount {format_discount(bp) if bp >= 0 else bp} ({bp} bp) is outside the "
            f"protocol's range {format_discount(MIN_BASIS_POINT)}..{format_discount(BPS)} "
            f"({MIN_BASIS_POINT}..{MAX_BASIS_POINT} bp): such a bid would be excluded"
        )
    return bp


def format_amount(wei: int, decimals: int = DECIMALS) -> str:
    """``wei`` exactly, with thousands separators and no trailing zeros: ``1,234.5``."""
    sign = "-" if wei < 0 else ""
    whole, frac = divmod(abs(wei), 10**decimals)
    text = f"{sign}{whole:,}"
    digits = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{text}.{digits}" if digits else text


def shares_text(wei: int) -> str:
    """``12.5 sUSDai``."""
    return f"{format_amount(wei)} sUSDai"


def usdai_text(wei: int) -> str:
    """``12.3125 USDai``."""
    return f"{format_amount(wei)} USDai"


def format_discount(bp: int) -> str:
    """``150`` -> ``1.5%``; ``10000`` -> ``100%``."""
    whole, frac = divmod(bp, 100)
    return f"{whole}.{str(frac).rjust(2, '0').rstrip('0')}%" if frac else f"{whole}%"


def burnt_of(shares: int, bp: int) -> int:
    """Shares given up when ``shares`` are filled at ``bp`` (PROTOCOL 5, rule 3; rounds down)."""
    return shares * bp // BPS


def payout_of(shares: int, bp: int, price: int) -> int:
    """USDai paid for ``shares`` filled at ``bp`` and share price ``price`` (rule 3)."""
    return (shares - burnt_of(shares, bp)) * price // E18


__all__ = [
    "BPS",
    "DECIMALS",
    "E18",
    "MAX_BASIS_POINT",
    "MIN_BASIS_POINT",
    "burnt_of",
    "check_basis_point",
    "format_amount",
    "format_discount",
    "parse_amount",
    "parse_discount",
    "payout_of",
    "shares_text",
    "usdai_text",
]
