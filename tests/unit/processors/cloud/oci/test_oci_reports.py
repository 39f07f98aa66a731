"""OCI report helpers: credential checks, folder range, SDK error mapping, re-delivery de-dup."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import oci
import pyarrow as pa
import pytest

from pipeline_ops_core.errors import TerminalError, TransientError
from processors.cloud.exports.focus import normalize_focus_export
from processors.cloud.oci.reports import (
    FolderRange,
    ReportLocation,
    day_folder,
    drop_redelivered,
    folder_date,
    lookahead_days,
    map_request_error,
    map_service_error,
    report_location,
    sdk_config,
)

TENANCY = "ocid1.tenancy.oc1..aaaaaaaatenancy"
USER = "ocid1.user.oc1..aaaaaaaauser"
FINGERPRINT = "12:34:56:78:9a:bc:de:f0:12:34:56:78:9a:bc:de:f0"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END"
WHERE = ReportLocation("bling", TENANCY)


def credential(**overrides: Any) -> dict[str, Any]:
    return {
        "user": USER,
        "fingerprint": FINGERPRINT,
        "tenancy": TENANCY,
        "region": "us-ashburn-1",
        "key_content": PEM,
    } | overrides


# -- credential ----------------------------------------------------------------------------


def test_sdk_config_carries_the_api_key_fields() -> None:
    config = sdk_config(credential(pass_phrase="pw"))
    assert config == {
        "user": USER,
        "fingerprint": FINGERPRINT,
        "tenancy": TENANCY,
        "region": "us-ashburn-1",
        "key_content": PEM,
        "pass_phrase": "pw",
    }


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"user": None}, "user missing"),
        ({"key_content": ""}, "key_content missing"),
        ({"fingerprint": "abc"}, "fingerprint malformed"),
        ({"tenancy": "not an ocid", "user": "nor this"}, "tenancy malformed, user malformed"),
        ({"region": None}, "region missing"),
        ({"key_content": 12345}, "key_content not a string"),
    ],
)
def test_sdk_config_names_bad_fields_never_values(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(TerminalError) as caught:
        sdk_config(credential(**overrides))
    assert str(caught.value) == f"OCI credential is invalid: {expected}"
    assert "MIIEvQ" not in str(caught.value)


def test_region_is_not_taken_from_the_workers_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OCI_REGION", "eu-frankfurt-1")
    with pytest.raises(TerminalError, match="region missing"):
        sdk_config(credential(region=None))


@pytest.mark.parametrize("endpoint", ["ftp://host", "http://user:pw@host", "not a url"])
def test_service_endpoint_must_be_an_http_url(endpoint: str) -> None:
    with pytest.raises(TerminalError, match="service_endpoint must be an http"):
        sdk_config(credential(service_endpoint=endpoint))


def test_report_location_defaults_and_overrides() -> None:
    assert report_location(credential(), {}) == ReportLocation("bling", TENANCY)
    assert report_location(credential(bucket="b1", namespace="n1"), {}) == ReportLocation(
        "n1", "b1"
    )
    assert report_location(credential(bucket="b1"), {"bucket": "b2"}).bucket == "b2"


def test_lookahead_days() -> None:
    assert lookahead_days({}) == 3
    assert lookahead_days({"lookahead_days": 0}) == 0
    for bad in (-1, 32, "3", True, 1.5):
        with pytest.raises(TerminalError, match="lookahead_days"):
            lookahead_days({"lookahead_days": bad})


# -- folders -------------------------------------------------------------------------------


def test_folder_range_covers_the_run_plus_lookahead() -> None:
    folders = FolderRange.for_run(date(2026, 10, 1), date(2026, 10, 31), 3)
    assert folders.list_start == "FOCUS Reports/2026/10/01/"
    # Exclusive end: the folder after the last one, so all of 2026/11/03 is listed.
    assert folders.list_end == "FOCUS Reports/2026/11/04/"
    assert folders.holds("FOCUS Reports/2026/11/03/0001000000000001.csv.gz")
    assert folders.holds("FOCUS Reports/2026/10/01/a.csv")
    assert not folders.holds("FOCUS Reports/2026/11/04/0001.csv.gz")
    assert not folders.holds("FOCUS Reports/2026/09/30/0001.csv.gz")
    assert not folders.holds("FOCUS Reports/2026/10/03/")  # a folder marker
    assert not folders.holds("FOCUS Reports/2026/10/03/readme.txt")
    assert not folders.holds("FOCUS Reports/2026/10/03/sub/0001.csv.gz")


def test_folder_range_crosses_the_year() -> None:
    folders = FolderRange.for_run(date(2026, 12, 30), date(2026, 12, 31), 2)
    assert (folders.list_start, folders.list_end) == (
        "FOCUS Reports/2026/12/30/",
        "FOCUS Reports/2027/01/03/",
    )
    assert folders.describe() == "'FOCUS Reports/2026/12/30/' .. 'FOCUS Reports/2027/01/02/'"


def test_folder_date() -> None:
    assert folder_date("FOCUS Reports/2026/02/28/x.csv.gz") == date(2026, 2, 28)
    assert folder_date("FOCUS Reports/2026/02/30/x.csv.gz") is None
    assert folder_date("reports/cost-csv/0001.csv.gz") is None
    assert day_folder(date(2026, 1, 5)) == "FOCUS Reports/2026/01/05/"


# -- SDK errors ----------------------------------------------------------------------------


def service_error(status: int, code: str, headers: dict[str, str] | None = None) -> Any:
    return oci.exceptions.ServiceError(status, code, headers or {}, "OCI's message")


@pytest.mark.parametrize("code", ["BucketNotFound", "NamespaceNotFound"])
def test_not_found_or_not_authorized_names_both_causes(code: str) -> None:
    error = map_service_error(service_error(404, code), WHERE)
    assert isinstance(error, TerminalError) and not isinstance(error, TransientError)
    text = str(error)
    assert text.startswith(f"OCI Object Storage namespace 'bling', bucket '{TENANCY}': {code}.")
    assert "does not exist and when the user is not authorized" in text
    assert "endorse group <group> to read objects in tenancy usage-report" in text


def test_401_is_about_the_api_key() -> None:
    error = map_service_error(service_error(401, "NotAuthenticated"), WHERE)
    assert isinstance(error, TerminalError)
    assert "rejected the API key" in str(error) and "401 NotAuthenticated" in str(error)


def test_missing_object_names_it() -> None:
    error = map_service_error(service_error(404, "ObjectNotFound"), WHERE, object_name="o.csv.gz")
    assert isinstance(error, TerminalError)
    assert str(error).startswith("OCI report object 'o.csv.gz' in namespace 'bling'")


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_throttling_and_5xx_are_transient(status: int) -> None:
    error = map_service_error(service_error(status, "X", {"retry-after": "7"}), WHERE)
    assert isinstance(error, TransientError)
    assert error.retry_after == 7.0


def test_other_client_errors_are_terminal() -> None:
    error = map_service_error(service_error(400, "InvalidParameter"), WHERE, object_name="o")
    assert isinstance(error, TerminalError) and not isinstance(error, TransientError)
    assert (
        str(error) == f"OCI Object Storage object 'o' in {WHERE.describe()}: 400 InvalidParameter"
    )


def test_connection_errors_are_transient() -> None:
    error = map_request_error(oci.exceptions.ConnectTimeout("boom"), "https://os.example")
    assert isinstance(error, TransientError)
    assert str(error) == (
        "cannot reach OCI Object Storage at https://os.example (ConnectTimeout); try again later"
    )


# -- re-delivered files --------------------------------------------------------------------


def normalized(rows: list[dict[str, str]], name: str) -> pa.Table:
    names = sorted({k for r in rows for k in r})
    table = pa.table({n: [r.get(n) for r in rows] for n in names})
    return normalize_focus_export(table, source_file=name)


def line(ref: str | None, cost: str = "1.50", hour: int = 0, key: str = "oci_ReferenceNumber"):
    start = datetime(2026, 10, 1, hour, tzinfo=UTC).isoformat()
    out = {
        "ChargePeriodStart": start,
        "ChargePeriodEnd": start,
        "BilledCost": cost,
        "EffectiveCost": cost,
    }
    return out | ({key: ref} if ref is not None else {})


def test_a_redelivered_line_is_kept_once_from_the_first_file() -> None:
    first = normalized([line("R1"), line("R2", "2.00")], "a.csv.gz")
    again = normalized([line("R1"), line("R2", "2.00"), line("R3", "3.00")], "b.csv.gz")
    kept, dropped = drop_redelivered(pa.concat_tables([first, again]))
    assert dropped == 2
    assert kept.column("x_source_file").to_pylist() == ["a.csv.gz", "a.csv.gz", "b.csv.gz"]
    assert sum(kept.column("billed_cost").to_pylist()) == 6.5


def test_same_reference_with_other_cost_or_period_is_not_a_copy() -> None:
    rows = normalized([line("R1"), line("R1", "9.99"), line("R1", hour=5)], "a.csv.gz")
    kept, dropped = drop_redelivered(rows)
    assert (kept.num_rows, dropped) == (3, 0)


def test_lines_without_reference_are_all_kept() -> None:
    rows = normalized([line(None), line(None), line("")], "a.csv.gz")
    assert drop_redelivered(rows) == (rows, 0)


def test_reference_column_matched_in_any_case() -> None:
    rows = normalized([line("R1", key="OCI_REFERENCENUMBER")] * 2, "a.csv.gz")
    assert json.loads(rows.column("x_extensions")[0].as_py()) == {"OCI_REFERENCENUMBER": "R1"}
    assert drop_redelivered(rows)[1] == 1


def test_empty_rows() -> None:
    empty = normalized([line("R1")], "a.csv.gz").slice(0, 0)
    assert drop_redelivered(empty) == (empty, 0)
