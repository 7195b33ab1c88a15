"""Statistical process control of a tag over a period: its raw samples from the historian, grouped into
subgroups as the tag's ``spc:`` settings say (or as the caller overrides), the chart with its limits, the run
rule violations and, given specification limits, the capability indices.

The computation is ``plantlink.analytics`` (pure numpy); this service reads, checks access (a viewer of the
tag's site: ``PlantIndex.tag``, 403 for another site's path, 404 for its id) and names the tag and the period
in every ``AnalysisError`` (400 ``bad_data``: no samples, too few subgroups, no variation, no spec limits).
Only samples of good quality count; a sample whose value is not finite is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, get_args

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from plantlink.analytics import spc
from plantlink.analytics.capability import Capability, capability
from plantlink.analytics.spc_rules import evaluate, expand
from plantlink.errors import AnalysisError, QueryError, Unavailable
from plantlink.identity import Caller
from plantlink.model.spc import COUNTS, ChartType, SpcSettings
from plantlink.samples import Quality
from plantlink.services.deps import SampleReader
from plantlink.services.plant import PlantIndex, check_range

if TYPE_CHECKING:
    from plantlink.model.plant import TagInfo

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

#: The most samples one chart reads (beyond it: ask for a shorter period).
MAX_SAMPLES = 200_000
DAY_US = 86400 * 1_000_000
MAX_RANGE_US = 31 * DAY_US
CHARTS: tuple[str, ...] = get_args(ChartType)
#: The charts whose primary chart takes the zone and run rules (EWMA and CUSUM points are not independent).
SHEWHART = ("xbar_r", "xbar_s", "imr", "p", "u")


@dataclass(frozen=True)
class Violation:
    chart: str  # the chart's name: xbar, r, s, i, mr, p, u, ewma, cusum_hi, cusum_lo
    rule: str  # a rule name (we1.., n1..) or "limits" (beyond a control limit of a chart without zone rules)
    point: int  # index into the chart's points (of ``SpcChart.ts_us``)
    ts_us: int
    value: float


@dataclass(frozen=True)
class SpcChart:
    """A chart of a tag over ``[start_us, end_us)``: one point per subgroup (or sample) at ``ts_us`` (the time
    of its last sample), the charts with limits, the violations and the capability (when asked or when the tag
    has specification limits)."""

    tag_id: int
    tag: TagInfo
    start_us: int
    end_us: int
    kind: str
    samples: int
    ts_us: Ints
    charts: spc.ChartSet
    rules: tuple[str, ...]
    violations: tuple[Violation, ...]
    capability: Capability | None
    settings: SpcSettings = field(repr=False)


class SpcService:
    def __init__(self, index: PlantIndex, samples: Callable[[], SampleReader | None]):
        self.index, self._samples = index, samples

    def _hist(self) -> SampleReader:
        h = self._samples()
        if h is None:
            raise Unavailable("the historian is not open")
        return h

    def chart(self, who: Caller, ref: str | int, start_us: int, end_us: int, *, chart: str | None = None,
              subgroup_size: int | None = None, rules: Sequence[str] | None = None,
              with_capability: bool | None = None) -> SpcChart:
        """The chart of tag ``ref`` over ``[start_us, end_us)``. ``chart``, ``subgroup_size`` (every N samples)
        and ``rules`` override the tag's settings; ``with_capability``: ``True`` requires it (400 without
        specification limits), ``False`` skips it, ``None`` computes it when the tag has limits."""
        check_range(start_us, end_us, MAX_RANGE_US, "SPC range")
        tag_id, info = self.index.tag(who, ref)
        where = (info.path, (start_us, end_us))
        try:
            settings = _settings(info, chart, subgroup_size, rules)
            return self._chart(tag_id, info, start_us, end_us, settings, with_capability)
        except AnalysisError as exc:
            raise exc.at(*where) from None

    def _chart(self, tag_id: int, info: TagInfo, start_us: int, end_us: int, st: SpcSettings,
               with_capability: bool | None) -> SpcChart:
        ts, values = self._read(tag_id, start_us, end_us)
        if ts.size == 0:
            raise AnalysisError("no samples of good quality in the period", "start")
        kind = st.chart
        if kind in ("xbar_r", "xbar_s"):
            sg, point_ts = self._subgroups(info, ts, values, st, start_us, end_us)
            cs = spc.xbar_r(sg) if kind == "xbar_r" else spc.xbar_s(sg)
        else:
            point_ts = ts
            cs = _single(kind, values, st)
        names = expand(st.rules)
        found = _violations(cs, names, point_ts)
        cap = _capability(kind, values, cs, st, with_capability)
        return SpcChart(tag_id, info, start_us, end_us, kind, int(values.size), point_ts, cs, names, found, cap, st)

    def _read(self, tag_id: int, start_us: int, end_us: int) -> tuple[Ints, Floats]:
        t = self._hist().raw(tag_id, start_us, end_us, MAX_SAMPLES + 1)
        if t.num_rows > MAX_SAMPLES:
            raise QueryError(f"more than {MAX_SAMPLES} samples in the period: shorten it", field="end")
        ts = t.column("ts").to_numpy().astype(np.int64)
        v = t.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
        q = t.column("quality").to_numpy(zero_copy_only=False)
        keep = (q >= Quality.GOOD) & np.isfinite(v)
        return ts[keep], v[keep]

    def _subgroups(self, info: TagInfo, ts: Ints, values: Floats, st: SpcSettings, start_us: int, end_us: int
                   ) -> tuple[spc.Subgroups, Ints]:
        g = st.subgroup
        assert g is not None  # the model and _settings require one for X-bar charts
        idx = np.arange(ts.size, dtype=np.float64)
        if g.size is not None:
            groups = spc.every(idx, g.size)
        elif g.every is not None:
            groups = spc.by_key(idx, (ts - start_us) // max(1, int(g.every * 1e6)))
        else:
            groups = spc.by_key(idx, self._counter(info, str(g.part_counter), ts, start_us, end_us))
        kept = groups.values.astype(np.int64)
        last = kept[np.cumsum(groups.sizes) - 1] if groups.sizes.size else kept[:0]
        return spc.Subgroups(values[kept], groups.sizes), ts[last]

    def _counter(self, info: TagInfo, name: str, ts: Ints, start_us: int, end_us: int) -> Floats:
        """The part counter's value in force at each sample (as of its time; before its first value: nan, so
        each such sample stands alone and is left out)."""
        path = info.path.rsplit("/", 1)[0] + "/" + name
        cid = self.index.ids.get(path)
        if cid is None:
            raise AnalysisError(f"the part counter {path} is not recorded", "subgroup")
        t = self._hist().raw(cid, start_us - DAY_US, end_us, MAX_SAMPLES + 1)
        if t.num_rows > MAX_SAMPLES:
            raise QueryError(f"the part counter {path} has more than {MAX_SAMPLES} samples from a day before the "
                             "period to its end: shorten the period", field="end")
        cts = t.column("ts").to_numpy().astype(np.int64)
        cv = t.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
        at = np.searchsorted(cts, ts, side="right") - 1
        out = np.where(at >= 0, cv[np.maximum(at, 0)], np.nan)
        return np.where(np.isnan(out), -1.0 - np.arange(ts.size), out)  # no counter yet: one group each


def _settings(info: TagInfo, chart: str | None, size: int | None, rules: Sequence[str] | None) -> SpcSettings:
    base = info.tag.spc
    if chart is not None and chart not in CHARTS:
        raise QueryError(f"unknown chart {chart!r}; choose from {list(CHARTS)}", field="chart")
    if base is None and chart is None:
        chart = "imr"  # a tag without SPC settings: individuals, the chart that needs no settings
    if info.tag.type not in ("float", "int"):
        raise AnalysisError(f"SPC applies to numeric tags; this tag is {info.tag.type}", "tag")
    data = base.model_dump(by_alias=True, exclude_none=True) if base is not None else {}
    if chart is not None and chart != data.get("chart"):
        data["chart"] = chart
        if chart not in ("xbar_r", "xbar_s"):
            data.pop("subgroup", None)
        if chart not in COUNTS:
            data.pop("sample_size", None)
    if size is not None:
        data["subgroup"] = {"size": size}
    if data.get("chart") in ("xbar_r", "xbar_s") and "subgroup" not in data:
        raise AnalysisError(f"chart {data['chart']} needs a subgroup size: give n (2..25)", "n")
    if data.get("chart") in COUNTS and "sample_size" not in data:
        raise AnalysisError(f"a {data['chart']} chart needs the tag's spc.sample_size (units inspected per "
                            "sample) in the plant model", "chart")
    if rules is not None:
        data["rules"] = list(rules)
    try:
        return SpcSettings.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = [str(p) for p in e.get("loc", ())]
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        raise AnalysisError(f"{'.'.join(loc) or 'spc'}: {msg}", loc[0] if loc else "chart") from None


def _single(kind: str, values: Floats, st: SpcSettings) -> spc.ChartSet:
    if kind == "imr":
        return spc.imr(values)
    if kind == "ewma":
        return spc.ewma(values, st.ewma.lam, st.ewma.width, st.target)
    if kind == "cusum":
        return spc.cusum(values, st.cusum.k, st.cusum.h, st.target)
    size = float(st.sample_size or 0)
    fn = spc.p_chart if kind == "p" else spc.u_chart
    return fn(values, np.full(values.size, size))


def _violations(cs: spc.ChartSet, rules: tuple[str, ...], ts: Ints) -> tuple[Violation, ...]:
    out: list[Violation] = []
    for i, c in enumerate(cs.charts):
        zones = i == 0 and cs.kind in SHEWHART
        names = rules if zones else ("we1",)
        found = evaluate(c.values, c.center, c.sigma, c.lcl, c.ucl, names)
        for rule, points in found.items():
            for p in points.tolist():
                at = p + c.offset
                out.append(Violation(c.name, rule if zones else "limits", at, int(ts[at]), float(c.values[p])))
    return tuple(sorted(out, key=lambda v: (v.point, v.chart, v.rule)))


def _capability(kind: str, values: Floats, cs: spc.ChartSet, st: SpcSettings, wanted: bool | None
                ) -> Capability | None:
    if wanted is False or (wanted is None and (kind in COUNTS or (st.lsl is None and st.usl is None))):
        return None
    if kind in COUNTS:
        raise AnalysisError("capability applies to measured values, not to p or u charts", "capability")
    if st.lsl is None and st.usl is None:
        raise AnalysisError("no specification limits: set spc.lsl and/or spc.usl of the tag in the plant model",
                            "capability")
    return capability(values, cs.sigma_within, st.lsl, st.usl, st.target)
