"""generic.noop: does nothing, optionally for a while. A placeholder or smoke-test step."""

from __future__ import annotations

import time
from typing import ClassVar

from pipeline_ops_core.errors import TerminalError
from processors.base import StepContext, StepResult


class NoopProcessor:
    ps_type: ClassVar[str] = "generic.noop"

    def run(self, ctx: StepContext) -> StepResult:
        seconds = ctx.config.get("sleep_seconds", 0)
        if not isinstance(seconds, int | float) or seconds < 0:
            raise TerminalError("sleep_seconds must be a non-negative number")
        # Slept in slices, so a cancelled run's step stops within about a second.
        until = time.monotonic() + float(seconds)
        while (left := until - time.monotonic()) > 0:
            ctx.check_cancelled()
            time.sleep(min(left, 0.5))
        return StepResult(metrics={"slept_seconds": seconds})
