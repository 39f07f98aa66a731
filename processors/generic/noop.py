"""generic.noop: does nothing, optionally for a while. A placeholder or smoke-test step."""

from __future__ import annotations

import time
from typing import ClassVar

from errors import TerminalError
from processors.base import StepContext, StepResult


class NoopProcessor:
    ps_type: ClassVar[str] = "generic.noop"

    def run(self, ctx: StepContext) -> StepResult:
        seconds = ctx.config.get("sleep_seconds", 0)
        if not isinstance(seconds, int | float) or seconds < 0:
            raise TerminalError("sleep_seconds must be a non-negative number")
        if seconds:
            time.sleep(float(seconds))
        return StepResult(metrics={"slept_seconds": seconds})
