"""The Validation tab: the site view (:mod:`app.validation_site_panel`) and the scoreboard
(:mod:`app.scoreboard_panel`) over one network, variable and set of matching options."""

from __future__ import annotations

import functools

import panel as pn

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
        board = pn.Column(sizing_mode="stretch_width")
        tabs = pn.Tabs(
            ("Site", self.site.panel()), ("Scoreboard", board), name="validation_tabs", dynamic=False
        )

        def open_board(event) -> None:
            if event.new == 1 and not len(board):
                board[:] = [self.board.panel()]

        tabs.param.watch(open_board, "active")
        return tabs


def panel(state) -> pn.viewable.Viewable:
    return ValidationTab(state).panel()
