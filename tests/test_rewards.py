"""MnasNet/TuNAS rewards against hand-computed values at, below and above the target."""

import pytest

from hwnas.search.base import SearchError
from hwnas.search.mnasnet.rewards import absolute, get_reward, hard, mnas, soft

T = 10.0


def test_soft_below_at_above():
    # 0.8 · (5/10)^−0.07 = 0.8 · 2^0.07 = 0.8 · 1.049717 = 0.839773
    assert soft(0.8, 5.0, T) == pytest.approx(0.8 * 2**0.07, rel=1e-12)
    assert soft(0.8, 5.0, T) == pytest.approx(0.839773, abs=1e-6)
    assert soft(0.8, 10.0, T) == pytest.approx(0.8)
    # 0.8 · 2^−0.07 = 0.8 · 0.952638 = 0.762110
    assert soft(0.8, 20.0, T) == pytest.approx(0.762110, abs=1e-6)


def test_hard_below_at_above():
    assert hard(0.8, 5.0, T) == pytest.approx(0.8)  # α = 0: accuracy alone under T
    assert hard(0.8, 10.0, T) == pytest.approx(0.8)
    assert hard(0.8, 20.0, T) == pytest.approx(0.4)  # β = −1: 0.8 · (20/10)^−1
    assert hard(0.8, 12.5, T) == pytest.approx(0.64)


def test_abs_below_at_above():
    assert absolute(0.8, 5.0, T) == pytest.approx(0.8 - 0.07 * 0.5)  # 0.765
    assert absolute(0.8, 10.0, T) == pytest.approx(0.8)
    assert absolute(0.8, 20.0, T) == pytest.approx(0.8 - 0.07 * 1.0)  # 0.73
    assert absolute(0.8, 15.0, T, beta=-0.5) == pytest.approx(0.55)


def test_general_formula_and_lookup():
    assert mnas(0.5, 20.0, T, alpha=0.0, beta=-2.0) == pytest.approx(0.125)
    assert get_reward("soft") is soft and get_reward("hard") is hard
    assert get_reward("abs")(0.8, 20.0, T) == pytest.approx(0.73)
    assert get_reward("soft", alpha=-0.5)(0.8, 2.5, T) == pytest.approx(0.8 * 2.0)
    with pytest.raises(ValueError):
        soft(0.8, 0.0, T)


def test_unknown_reward_one_line():
    with pytest.raises(SearchError) as e:
        get_reward("pareto")
    assert str(e.value) == "unknown reward 'pareto'; choose one of soft, hard, abs"
