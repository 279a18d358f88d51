"""`backtest` (chapter 10) records the fees its metrics row paid, exactly, and the return gross of them."""
import numpy as np
import pytest

from ilmarket.core import get_config
from ilmarket.ddpg import LongOnly
from ilmarket.pipeline import backtest
from ilmarket.testing import toy_bars


def _churn(bar, account):
    "Buy with all the cash, then sell all the shares, then buy again: a fee on every bar."
    return 1.0 if account["cash"] > account["value"] / 2 else -1.0


@pytest.mark.parametrize("strategy,fee,impact", [(LongOnly(), None, "static"), (_churn, 0.001, "static"),
                                                 (_churn, 0.005, "sqrt")])
def test_the_metrics_row_has_the_fees_paid_and_the_gross_return(strategy, fee, impact):
    cfg = get_config("quick")
    bars = toy_bars(n_days=5, seed=3)
    frame, m = backtest(strategy, bars, impact=impact, fee=fee, cfg=cfg, halflife=20)
    rate = cfg.eval.fee if fee is None else fee
    assert np.isfinite(m["fee_paid"]) and m["fee_paid"] > 0
    assert m["fee_paid"] == pytest.approx(rate * frame["traded"].sum(), rel=1e-12)
    assert m["fee_paid"] == pytest.approx(m["fees"], rel=1e-12)
    assert m["gross_return"] - m["total_return"] == pytest.approx(m["fee_paid"] / cfg.eval.initial_cash, rel=1e-9)


def test_no_trade_no_fee():
    frame, m = backtest(lambda bar, account: 0.0, toy_bars(n_days=3), cfg=get_config("quick"))
    assert (m["fee_paid"], m["total_return"], m["gross_return"]) == (0.0, 0.0, 0.0)
