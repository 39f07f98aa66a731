"""generic.procedure_executor: CALL a named procedure from warehouse/sql/ in the org dataset.

Config:
  procedure: name of a file in warehouse/sql/ (without .sql)
  args: {param: value}; values go as query parameters, never into the SQL text
  destination_table: optional table the procedure fills; its rows stamped with
                     this run's id are reported as the step's rows_written

Parameters named p_org_slug, p_pipeline_id, p_credential_id, p_run_id,
p_start_date and p_end_date are filled from the run when the procedure
declares them and `args` does not, so procedures can stamp lineage.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline_ops_core.errors import TerminalError
from processors.base import StepContext, StepResult


def lineage_args(ctx: StepContext) -> dict[str, Any]:
    return {
        "p_org_slug": ctx.org_slug,
        "p_pipeline_id": ctx.pipeline_id,
        "p_credential_id": ctx.credential_id,
        "p_run_id": ctx.run_id,
        "p_start_date": ctx.start_date,
        "p_end_date": ctx.end_date,
    }


class ProcedureExecutor:
    ps_type: ClassVar[str] = "generic.procedure_executor"

    def run(self, ctx: StepContext) -> StepResult:
        name = ctx.config.get("procedure")
        if not name or not isinstance(name, str):
            raise TerminalError("procedure_executor needs a procedure name")
        args = ctx.config.get("args") or {}
        if not isinstance(args, dict):
            raise TerminalError("args must be a mapping of parameter names to values")
        from warehouse.procedures import load_procedure

        declared = {param for param, _type in load_procedure(name).params}
        merged = {k: v for k, v in lineage_args(ctx).items() if k in declared}
        merged.update(args)
        ctx.log.info(f"CALL {ctx.dataset}.{name}({', '.join(sorted(merged))})")
        ctx.warehouse.call_procedure(ctx.dataset, name, merged)
        table = ctx.config.get("destination_table")
        if not table:
            return StepResult(metrics={"procedure": name})
        ref = ctx.table(str(table))
        counted = ctx.warehouse.query(
            f"SELECT COUNT(*) AS n FROM `{ref}` WHERE x_run_id = @run_id", {"run_id": ctx.run_id}
        )
        rows = int(counted.column("n")[0].as_py())
        ctx.log.info(f"{name} wrote {rows} rows to {ref}")
        return StepResult(rows_written=rows, tables=[str(ref)], metrics={"procedure": name})
