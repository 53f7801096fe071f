"""Fixtures several test modules share (helpers that are not fixtures: tests/support.py)."""

from __future__ import annotations

import pytest

import felboot.sim


@pytest.fixture
def boards(monkeypatch: pytest.MonkeyPatch) -> list[felboot.sim.SimTransport]:
    """Every model board the commands under test open (--device sim), in order."""
    opened: list[felboot.sim.SimTransport] = []
    real = felboot.sim.open_sim

    def open_sim(options: str = "") -> felboot.sim.SimTransport:
        opened.append(real(options))
        return opened[-1]

    monkeypatch.setattr(felboot.sim, "open_sim", open_sim)
    return opened
