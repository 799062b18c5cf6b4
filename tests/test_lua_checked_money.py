"""The checked arithmetic of lua/includes/money.lua against Python's integers, on real Redis:
sums, differences and products of big values at any size, and the store's range (2^63 - 1)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.store import Store
from app.store.scripts import expand_includes, lua_dir

INT64_MAX = 2**63 - 1
PROBE = """
--- @include "includes/money.lua"
local a, b = ARGV[1], ARGV[2]
local function text(x) if x == nil then return 'nil' end return x end
return {big_add(a, b), text(checked_sub(a, b)), text(stored_add(a, b)), big_mul(a, b),
        big_cmp(a, b)}
"""
values = st.one_of(
    st.integers(0, 10**6),
    st.integers(2**53 - 5, 2**53 + 5),
    st.integers(INT64_MAX - 10, INT64_MAX + 10),
    st.integers(0, 10**60),
)


@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=values, b=values)
async def test_checked_arithmetic_is_exact_at_any_size(store: Store, a: int, b: int) -> None:
    source = expand_includes(PROBE, lua_dir())
    added, left, stored, product, order = await store.client.eval(source, 0, str(a), str(b))
    assert int(added) == a + b
    assert left == ("nil" if b > a else str(a - b))
    assert stored == ("nil" if a + b > INT64_MAX else str(a + b))
    assert int(product) == a * b
    assert order == (a > b) - (a < b)
