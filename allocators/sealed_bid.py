"""Sealed-bid single-item auctions, first-price and second-price (Vickrey 1961), held in
parallel by the tasks' holders over several rounds (see ``allocators._market``).

Each round a bidder with room bids on the open task it values most; each holder awards one
winner per task and round, the highest bid; losers bid again on what is left. Bidders bid
their valuation by default (truthful); ``shade`` < 1 bids a fraction of it, the strategy a
first-price bidder would use. The price is the winner's bid (first-price) or the highest
other bid on that task in that round, at least the reserve (Vickrey). With one task of team
size 1 this is the textbook single-item auction, where bidding the valuation is a dominant
strategy under Vickrey and not under first-price; over several rounds and tasks the
harness's truthfulness check measures what misreporting gains.
"""

from __future__ import annotations

import numpy as np

from allocators._market import MISREPORT, RoundAuction
from allocators._routes import NEG
from harness.api import Param
from harness.numerics import best_index


class FirstPrice(RoundAuction):
    name = "first_price"
    summary = "sealed-bid first-price auctions of single tasks, in parallel rounds"
    paper = "Krishna, Auction Theory (2nd ed., 2010), ch. 2; multi-round form as in the FMMRA paper"
    families = ("assignment", "heterogeneous")
    params = (
        Param("reserve", 0.0, "holder's reserve price", low=0.0),
        Param("shade", 1.0, "fraction of its valuation a bidder bids", low=0.0, high=1.0),
        *MISREPORT,
    )
    price_rule = "first"

    def choose(self) -> tuple[int, float] | None:
        profit = np.where(self.open, self.valuer.profit(), NEG)
        j = best_index(profit)
        if not np.isfinite(profit[j]) or profit[j] <= 0.0:
            return None
        return j, float(profit[j]) * self.p["shade"]


class Vickrey(FirstPrice):
    name = "vickrey"
    summary = "sealed-bid second-price (Vickrey) auctions of single tasks, in parallel rounds"
    paper = (
        "Vickrey. Counterspeculation, auctions, and competitive sealed tenders. J. Finance 16, 1961"
    )
    price_rule = "second"
