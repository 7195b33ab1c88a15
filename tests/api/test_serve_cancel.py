"""A signal while the web server starts (plantlink run/demo cancel ``serve``) stops it gracefully: the
application's lifespan ends, so nothing is left to be cancelled with a traceback as the process ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from plantlink.api.server import serve
from plantlink.runtime import Runtime
from tests.api.conftest import runtime  # noqa: F401  (the API tests' runtime fixture)


def _lifespans() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if not t.done() and "LifespanOn.main" in repr(t.get_coro())]


async def test_a_cancel_during_start_up_ends_the_lifespan(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    entered, release = asyncio.Event(), asyncio.Event()
    ended: list[str] = []

    def hook(app: FastAPI) -> None:
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(a: Any) -> AsyncIterator[Any]:
            entered.set()
            await release.wait()  # the application is still starting when the signal comes
            async with inner(a) as state:
                yield state
            ended.append("shutdown")

        app.router.lifespan_context = lifespan

    task = asyncio.create_task(serve(runtime, "127.0.0.1", 0, app_hook=hook))
    await asyncio.wait_for(entered.wait(), 30)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended == ["shutdown"]  # the lifespan ran its shutdown: nothing left for the loop's end to cancel
    assert _lifespans() == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "lifespan" in r.getMessage()]
