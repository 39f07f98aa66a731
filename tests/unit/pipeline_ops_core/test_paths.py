"""Where relative paths of pipeline files resolve, and where the shipped files are."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_ops_core import extras, paths
from pipeline_ops_core.extras import MissingExtraError, require

CHECKOUT = Path(__file__).resolve().parents[3]


def test_from_a_checkout_the_shipped_files_are_the_repositorys() -> None:
    assert paths.shipped_root() == CHECKOUT
    assert paths.shipped("configs", "system", "providers.yml").is_file()
    assert paths.shipped("migrations", "env.py").is_file()


def test_a_relative_path_resolves_beside_the_configs_directory_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "configs" / "pricing").mkdir(parents=True)
    own = tmp_path / "configs" / "pricing" / "acme.csv"
    own.write_text("model,input\n")
    monkeypatch.setenv("PIPELINE_OPS_CONFIGS_DIR", str(tmp_path / "configs"))

    assert paths.project_path("configs/pricing/acme.csv") == own
    # Not there: the shipped copy (the demo's sample data runs from any configs dir).
    assert paths.project_path("sample_data/demo/usage.csv") == (
        CHECKOUT / "sample_data" / "demo" / "usage.csv"
    )
    # In neither: the operator's path, so the error names where they would put it.
    assert paths.project_path("configs/pricing/globex.csv") == (
        tmp_path / "configs" / "pricing" / "globex.csv"
    )
    assert paths.project_path("/abs/file.csv") == Path("/abs/file.csv")


def test_without_a_configs_dir_the_working_directory_is_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_OPS_CONFIGS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("x\n")

    assert paths.project_path("data.csv") == tmp_path / "data.csv"


def test_a_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # As on a host installed without [oci]: the SDK's module can't be found.
    monkeypatch.setitem(extras.EXTRAS, "oci", ("no_such_sdk_module.sub",))

    with pytest.raises(MissingExtraError) as caught:
        require("oci", "cloud.oci_cost_report")

    assert str(caught.value) == (
        "cloud.oci_cost_report needs the optional 'oci' dependencies, which are not "
        "installed: pip install 'pipeline-ops[oci]'"
    )
    assert isinstance(caught.value, ImportError)
    assert not extras.installed("oci")


def test_an_installed_extra_passes() -> None:
    require("aws", "cloud.aws_data_export")  # boto3 is in the dev environment
    assert extras.installed("aws")
