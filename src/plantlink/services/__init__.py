"""The service layer: what the API, the HMI, the CLI and (later) the Python API all call.

Every service is a class over narrow dependencies (the historian's reads, the store's records, the engines'
current states), takes the caller (``plantlink.identity``) and returns frozen dataclasses or Arrow tables,
never JSON: encoding is the API's business (``plantlink.api``), formatting the HMI's. ``Runtime`` builds one
frozen ``Services`` per model load (``runtime.services``) and hands it to the API app and the HMI; neither
touches the runtime, a store, an engine or the historian (an import contract checks it: ``make lint``).

=============  =======================================================================================
``tags``       ``TagDirectory``: path <-> id <-> spec, id arrays per machine and line
``plant``      ``PlantIndex``: the one index of sites, lines, machines and tags, and the access rules
``periods``    ``Periods``: today, shift, 8h, 24h, 7d in each site's time zone and shift calendar
``latest``     ``LatestValues``: the one bus-fed latest-value cache (control, live stream, HMI, REST)
``feed``       ``LiveFeed``: the machine state changes, for the live stream's hub
``history``    tags, latest values, raw / aggregated / downsampled history (Arrow tables)
``kpi``        OEE, losses, top loss and top reason, costs, overview
``states``     machine states now and state intervals
``downtime``   downtime events, reasons, Pareto
``alarms``     annunciated alarms, operator actions, journal, performance
``control``    setpoints, interlocks now, stage / confirm / approve
``audit``      the audit trail for admins
``health``     connectors, recorder, write-ahead log, historian, notifier: ok or degraded, and why
``trends``     what a trend marks on its time axis: alarm activations, downtime events
``annotations``  notes on a machine's trend; ``views``: saved trend views
``spc``        control charts, run rule violations and capability of a tag over a period
``energy``     kWh, kWh per good part, idle energy and its cost, per scope and shift
``reports``    shift, daily and weekly reports of a scope, assembled from the services above
``sql``        read-only SQL over the historian for admins of every site (row and time limits, audited)
``analytics``  anomaly detectors (train on a baseline, status, scores) and remaining useful life per machine
``model``      the running plant model's digest; plan and apply a changed model (docs/plan-apply.md)
=============  =======================================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plantlink.errors import Unavailable
from plantlink.services.alarms import Alarms
from plantlink.services.analytics import AnalyticsService
from plantlink.services.annotations import Annotations, TrendRecords
from plantlink.services.audit import AuditTrail
from plantlink.services.control import Control
from plantlink.services.downtime import DowntimeService
from plantlink.services.energy import EnergyService
from plantlink.services.feed import LiveFeed
from plantlink.services.handover import HandoverService
from plantlink.services.health import Health, HealthSources
from plantlink.services.history import HistoryService
from plantlink.services.kpi import KpiService
from plantlink.services.latest import LatestValues
from plantlink.services.model import ModelAdmin, ModelService
from plantlink.services.periods import Periods
from plantlink.services.plant import PlantIndex
from plantlink.services.reports import ReportService
from plantlink.services.spc import SpcService
from plantlink.services.sql import SqlService
from plantlink.services.states import StatesService
from plantlink.services.tags import TagDirectory
from plantlink.services.trends import TrendMarks
from plantlink.services.trendviews import TrendViews

if TYPE_CHECKING:
    from plantlink.audit import AuditLog
    from plantlink.bus import Bus
    from plantlink.control.service import ControlService
    from plantlink.engines.alarms.engine import AlarmEngine
    from plantlink.engines.alarms.service import AlarmService
    from plantlink.model import Plant
    from plantlink.services.deps import SampleReader, StateRecords, StateSource
    from plantlink.services.downtime import ReasonAssigner
    from plantlink.store.alarm_repo import AlarmStore

__all__ = ["Components", "Services", "services_of"]


@dataclass(frozen=True)
class Components:
    """Where the services find the running parts (each a getter: a part may not be running, or be replaced).
    Each is typed as what the services call of it (``services.deps`` and the services' own protocols)."""

    bus: Callable[[], Bus | None]
    historian: Callable[[], SampleReader | None]
    store: Callable[[], StateRecords | None]
    states: Callable[[], StateSource | None]
    downtime: Callable[[], ReasonAssigner | None]
    alarms: Callable[[], AlarmService | None]
    control: Callable[[], ControlService | None]
    audit: Callable[[], AuditLog | None]
    health: HealthSources = field(default_factory=HealthSources)
    trend_store: Callable[[], TrendRecords | None] = lambda: None
    anomaly: Callable[[], Any] = lambda: None
    rul: Callable[[], Any] = lambda: None
    model: Callable[[], ModelAdmin | None] = lambda: None
    #: the alarm journal and deliveries when no alarm system runs here (``plantlink serve``)
    alarm_records: Callable[[], AlarmStore | None] = lambda: None
    #: the alarms now when no alarm system runs here: an engine restored from the saved states (read only)
    alarm_mirror: Callable[[], AlarmEngine | None] = lambda: None


@dataclass(frozen=True)
class Services:
    tags: TagDirectory
    plant: PlantIndex
    periods: Periods
    latest: LatestValues
    feed: LiveFeed
    history: HistoryService
    kpi: KpiService
    states: StatesService
    downtime: DowntimeService
    alarms: Alarms
    control: Control
    audit: AuditTrail
    health: Health
    handover: HandoverService
    trends: TrendMarks
    annotations: Annotations
    views: TrendViews
    spc: SpcService
    energy: EnergyService
    sql: SqlService
    reports: ReportService
    analytics: AnalyticsService
    model: ModelService

    @classmethod
    def build(cls, plant: Plant, tag_ids: Mapping[str, int], latest: LatestValues, parts: Components) -> Services:
        directory = TagDirectory.build(plant, tag_ids)
        index = PlantIndex(plant, directory)
        periods = Periods({s.name: s.timezone for s in plant.sites}, index.planned)

        def current() -> dict[str, tuple[str, int]]:
            engine = parts.states()
            return {} if engine is None else dict(engine.current())

        alarms = Alarms(list(index.sites), parts.alarms, parts.alarm_records, parts.alarm_mirror)
        downtime = DowntimeService(index, parts.store, parts.downtime)
        kpi = KpiService(index, periods, parts.historian, parts.store, current)
        spc = SpcService(index, parts.historian)
        energy = EnergyService(index, kpi, parts.historian, parts.store)
        return cls(
            tags=directory, plant=index, periods=periods, latest=latest, feed=LiveFeed(parts.states),
            history=HistoryService(index, parts.historian, latest),
            kpi=kpi,
            states=StatesService(index, current, parts.store),
            downtime=downtime, alarms=alarms,
            control=Control(index, parts.control),
            audit=AuditTrail(parts.audit),
            health=Health(list(index.sites), _device_sites(plant), parts.health),
            handover=HandoverService(index, periods, lambda: getattr(parts.store(), "engine", None), parts.audit),
            trends=TrendMarks(index, alarms, downtime),
            annotations=Annotations(index, parts.trend_store, parts.audit),
            views=TrendViews(index, parts.trend_store, parts.audit),
            spc=spc, energy=energy,
            sql=SqlService(parts.historian, parts.audit),
            reports=ReportService(index, periods, kpi, downtime, alarms, spc, energy),
            analytics=AnalyticsService(index, parts.historian, parts.anomaly, parts.rul, parts.audit),
            model=ModelService(parts.model, parts.audit),
        )


def _device_sites(plant: Plant) -> dict[str, list[str]]:
    """Device id -> the sites of its tags."""
    out: dict[str, list[str]] = {}
    for t in plant.tags:
        out.setdefault(t.device, []).append(t.site)
    return out


def services_of(holder: Any) -> Services:
    """``holder`` itself when it is the ``Services``, else its ``services`` (a started runtime's)."""
    if isinstance(holder, Services):
        return holder
    found = getattr(holder, "services", None)
    if not isinstance(found, Services):
        raise Unavailable("the runtime is not started: no services yet")
    return found
