"""Provisional sample-size planning (replaced by the statistics branch at merge)."""

from __future__ import annotations

import math

from scipy import stats as sps


def _zz(alpha: float, power: float) -> float:
    return float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))


def paired_binary_n(margin: float, true_delta: float, discordance: float, *, alpha: float = 0.05,
                    power: float = 0.8) -> int:
    gap = true_delta + margin
    if gap <= 0:
        return 10**9
    return int(math.ceil(_zz(alpha, power) ** 2 * max(discordance - true_delta**2, 1e-9) / gap**2))


def paired_binary_mde(n: int, discordance: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    return _zz(alpha, power) * math.sqrt(discordance / n)


def bounded_n(margin: float, true_delta: float, sd: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    gap = true_delta + margin
    if gap <= 0:
        return 10**9
    return int(math.ceil((_zz(alpha, power) * sd / gap) ** 2))


def bounded_mde(n: int, sd: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    return _zz(alpha, power) * sd / math.sqrt(n)
