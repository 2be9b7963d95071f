"""The Analyses tab: the ILAMB scorecard across products × variables (:mod:`app.scorecard_view`) and
Giovanni-style maps and diagrams of any product (:mod:`app.gridded_view`). Both submit worker jobs
and draw the cached results; each view is built when its sub-tab is first opened."""

from __future__ import annotations

import functools

import panel as pn

from app import ui
from app.gridded_view import GriddedView
from app.scorecard_view import ScorecardView
from models.jobs import JobService


class AnalysesTab:
    """The two views of one session's Analyses tab."""

    def __init__(self, state, service: JobService | None = None):
        self.state, self.service = state, service

    @functools.cached_property
    def scorecard(self) -> ScorecardView:
        return ScorecardView(self.state, self.service)

    @functools.cached_property
    def gridded(self) -> GriddedView:
        return GriddedView(self.state, self.service)

    def panel(self) -> pn.viewable.Viewable:
        sections = [("Scorecard", self.scorecard.panel), ("Maps and diagrams", lambda: self.gridded.panel())]
        return ui.lazy_tabs(sections, name="analyses_tabs")  # the second view is made when first opened


def panel(state) -> pn.viewable.Viewable:
    return AnalysesTab(state).panel()
