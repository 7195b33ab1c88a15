"""Saved trend views: a user keeps a machine trend's pens and range (relative, "the last 24 h", or absolute)
under a name, for themself or shared with the machine's site, and opens it again. Saving and deleting are
audited."""

from __future__ import annotations

from collections.abc import Sequence

from plantlink.errors import AccessDenied, InvalidValue, NotFound
from plantlink.identity import Caller
from plantlink.samples import now_us
from plantlink.services.annotations import Annotations
from plantlink.store.trends import TrendView

__all__ = ["TrendView", "TrendViews"]

MAX_NAME = 100
MAX_PENS = 8
MAX_SPAN_S = 400 * 86_400


class TrendViews(Annotations):
    """Over the same store and audit trail as the annotations."""

    def views(self, who: Caller, machine: str | None = None) -> list[TrendView]:
        """The caller's own views and those shared at the sites they may view (of ``machine`` when given)."""
        path = self.index.machine(who, machine).path if machine is not None else None
        sites = self.index.visible_sites(who)
        return [v for v in self.store().views(who.name, sites, path) if who.can(v.site, "viewer")]

    def save(self, who: Caller, machine: str, name: str, pens: Sequence[str], *, span_s: int | None = None,
             start_us: int | None = None, end_us: int | None = None, shared: bool = False) -> TrendView:
        """Save a view of ``machine`` (viewers may keep their own; sharing with the site takes an operator)."""
        ref = self.index.machine(who, machine, role="operator" if shared else "viewer")
        title = (name or "").strip()
        if not title or len(title) > MAX_NAME:
            raise InvalidValue(f"name must be 1 to {MAX_NAME} characters", "name")
        if not pens or len(pens) > MAX_PENS:
            raise InvalidValue(f"give 1 to {MAX_PENS} pens", "pens")
        paths = []
        for p in pens:
            full = p.strip("/") if "/" in p else f"{ref.path}/{p}"
            self.index.tag(who, full, field="pens")
            paths.append(full)
        if (span_s is None) == (start_us is None or end_us is None):
            raise InvalidValue("give either span_s (relative) or start and end (absolute)", "span_s")
        if span_s is not None and not 1 <= span_s <= MAX_SPAN_S:
            raise InvalidValue(f"span_s must be between 1 and {MAX_SPAN_S}", "span_s")
        if start_us is not None and end_us is not None and not start_us < end_us:
            raise InvalidValue("end must be after start", "end")
        v = self.store().add_view(TrendView(0, who.name, ref.site, ref.path, title, tuple(paths),
                                            span_s, start_us, end_us, shared, now_us()))
        self.record("trend.view.save", who, ref.site, ref.path, {"id": v.id, "name": title, "shared": shared})
        return v

    def view(self, who: Caller, view_id: int) -> TrendView:
        try:
            v = self.store().view(view_id)
        except NotFound:
            raise NotFound(f"no saved trend view with id {view_id}", field="view_id") from None
        if not who.can(v.site, "viewer") or (v.owner != who.name and not v.shared):
            raise NotFound(f"no saved trend view with id {view_id}", field="view_id")
        return v

    def delete_view(self, who: Caller, view_id: int) -> TrendView:
        """Its owner, or an admin of its site (for a shared view), deletes a view."""
        v = self.view(who, view_id)
        if v.owner != who.name and not who.can(v.site, "admin"):
            raise AccessDenied("only the owner of a view, or an admin of its site, may delete it", v.site)
        self.store().delete_view(v.id)
        self.record("trend.view.delete", who, v.site, v.machine, {"id": v.id, "name": v.name})
        return v
