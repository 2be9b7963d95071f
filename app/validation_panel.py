"""The Validation tab: the site view (:mod:`app.validation_site_panel`) and the scoreboard
(:mod:`app.scoreboard_panel`) over one network, variable and set of matching options."""

from __future__ import annotations

import functools

import panel as pn

from app import ui
from app.scoreboard_panel import ScoreboardView
from app.validation_site_panel import SiteValidation
from models.jobs import JobService


class ValidationTab:
    """The two views of the Validation tab of one session; the scoreboard follows the site view's
    network, variable and options."""

    def __init__(self, state, service: JobService | None = None):
        self.state = state
        self.service = service
        self.site = SiteValidation(state)

    @functools.cached_property
    def board(self) -> ScoreboardView:
        """The scoreboard, made when first used (its sub-tab opened): not part of the tab's first open."""
        site = self.site
        return ScoreboardView(self.state, site.network, site.variable, site.options, self.service)

    def wait(self, timeout: float = 300) -> None:
        """Block until both views' background work has finished and is drawn (tests, scripts)."""
        self.site.wait(timeout)
        if "board" in self.__dict__:
            self.board.wait(timeout)

    def panel(self) -> pn.viewable.Viewable:
        """The Site and Scoreboard tabs; the scoreboard is made when first opened, so the tab's first
        open builds and draws only the site view."""
        return ui.lazy_tabs(
            [("Site", self.site.panel), ("Scoreboard", lambda: self.board.panel())], name="validation_tabs"
        )


def panel(state) -> pn.viewable.Viewable:
    return ValidationTab(state).panel()
