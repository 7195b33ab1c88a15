"""The HMI's live hub on a real Runtime: values that are not numbers are a dash with the reason, and the
latest value is the last to arrive, even when its timestamp is older than the one shown."""

from __future__ import annotations

import numpy as np

from plantlink.display import value_text
from plantlink.hmi.data import PlantView
from plantlink.hmi.live import LiveHub
from plantlink.runtime import Runtime
from plantlink.samples import now_us, numeric_batch
from tests.api.conftest import runtime, settle  # noqa: F401  (the API tests' runtime fixture)

TEMP, SPEED, COUNT = "windsor/a1/l1/m1/temp", "windsor/a1/l1/m2/speed", "windsor/a1/l1/m1/count"


async def test_not_a_number_is_a_dash_with_the_reason(runtime: Runtime) -> None:  # noqa: F811
    hub = LiveHub(PlantView(runtime.services))
    ids = runtime.tag_ids
    runtime.bus.publish(numeric_batch([ids[TEMP], ids[SPEED], ids[COUNT]], now_us(), [np.inf, np.nan, 0.0],
                                      [192, 0, 0], missing=np.array([False, False, True])))
    await settle(runtime)
    hub.refresh()
    temp, speed, count = (hub.sample(ids[p]) for p in (TEMP, SPEED, COUNT))
    assert (temp.value, temp.reason, speed.value, speed.reason, count.value, count.reason) == (
        None, "+inf", None, "nan", None, "null")
    assert value_text(temp.value, "degC", "float", temp.reason) == "— (+inf)"


async def test_the_last_value_to_arrive_is_shown(runtime: Runtime) -> None:  # noqa: F811
    hub = LiveHub(PlantView(runtime.services))
    tid = runtime.tag_ids[SPEED]
    t = now_us()
    runtime.bus.publish(numeric_batch([tid], t, [5.0], 192))
    await settle(runtime)
    hub.refresh()
    assert hub.sample(tid).value == 5.0
    tick = hub.tick
    runtime.bus.publish(numeric_batch([tid], t - 10_000_000, [6.0], 192))  # older stamp, arrived later
    await settle(runtime)
    hub.refresh()
    assert hub.sample(tid).value == 6.0 and tid in hub.changed_tags(np.array([tid]), tick).tolist()
