"""A small, explainable return-risk score from a customer's history."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CustomerHistory:
    orders: int
    rmas_last_365_days: int
    unauthorized_returns: int
    rejected_rmas: int


@dataclass(frozen=True, slots=True)
class Risk:
    score: int
    signals: tuple[str, ...]


def risk_score(history: CustomerHistory) -> Risk:
    """Score 0 (no concern) to 100; each signal adds a fixed weight and is named."""
    score = 0
    signals: list[str] = []
    if history.rmas_last_365_days >= 5:
        score += 40
        signals.append("FREQUENT_RETURNER")
    if history.orders and history.rmas_last_365_days / history.orders > 0.5:
        score += 30
        signals.append("HIGH_RETURN_RATE")
    if history.unauthorized_returns:
        score += 20
        signals.append("UNAUTHORIZED_RETURNS")
    if history.rejected_rmas >= 2:
        score += 10
        signals.append("REPEATED_REJECTIONS")
    return Risk(min(score, 100), tuple(signals))
