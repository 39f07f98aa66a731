"""RunService.start checks the run's credential before recording anything (DESIGN §5 step 3).

Missing, disabled, or for another provider: a CredentialError (422 in the API), no
run row, no quota slot, nothing enqueued. The API never decrypts to check.
"""

from __future__ import annotations

from datetime import date

import pytest

from credentials.errors import CredentialError
from pipeline.bootstrap import Services
from pipeline.runs.service import RunRequest
from pipeline.storage import state
from tests.support.records import count_runs
from tests.support.registry import install_provider_registry

SECRET = {"api_key": "sk-run-cred-000000000"}


def request(**overrides: object) -> RunRequest:
    values: dict[str, object] = {
        "org_slug": "acme",
        "provider": "test",
        "domain": "unit",
        "pipeline": "fan_in",  # its YAML says provider: test
        "start_date": date(2026, 1, 1),
    }
    values.update(overrides)
    return RunRequest(**values)  # type: ignore[arg-type]


def test_a_stored_credential_of_the_pipelines_provider_is_accepted(
    services: Services, dispatcher
) -> None:
    services.credentials.add("acme", "test", "Main", SECRET, "main")  # type: ignore[attr-defined]

    run = services.runs.start(request(credential_id="main"))

    assert run.status == state.QUEUED and run.credential_id == "main"
    assert dispatcher.enqueued[0][1].steps["b"].config["credential"] == "main"


def test_default_with_nothing_stored_means_no_secret(services: Services) -> None:
    assert services.runs.start(request()).credential_id == "default"


@pytest.mark.parametrize(
    ("setup", "credential_id", "message"),
    [
        (None, "missing", "credential 'missing' not found for org 'acme'"),
        ("globex", "theirs", "credential 'theirs' not found for org 'acme'"),
        ("other_provider", "openai_key", "is for provider 'openai', but pipeline test_fan_in"),
        ("disabled", "off", "credential 'off' of org 'acme' is disabled"),
        ("stored_default", "default", "is for provider 'openai'"),
    ],
)
def test_an_unusable_credential_is_refused_before_recording(
    services: Services, dispatcher, setup: str | None, credential_id: str, message: str
) -> None:
    vault = services.credentials
    if setup == "globex":
        vault.add("globex", "test", "Theirs", SECRET, "theirs")  # type: ignore[attr-defined]
    elif setup == "other_provider":
        vault.add("acme", "openai", "OpenAI", SECRET, "openai_key")  # type: ignore[attr-defined]
    elif setup == "disabled":
        vault.add("acme", "test", "Off", SECRET, "off")  # type: ignore[attr-defined]
        vault.set_enabled("acme", "off", False)  # type: ignore[attr-defined]
    elif setup == "stored_default":
        vault.add("acme", "openai", "Default", SECRET, "default")  # type: ignore[attr-defined]

    with pytest.raises(CredentialError) as info:
        services.runs.start(request(credential_id=credential_id))

    assert message in str(info.value)
    assert count_runs(services.store) == 0
    assert dispatcher.enqueued == []


# -- providers that need a credential (configs/system/providers.yml: credential_required) ----

AWS_NOOP = """\
pipeline_id: aws_unit_noop
name: A pipeline of a provider that needs a credential
provider: aws
domain: cost
steps:
  - step_id: only
    ps_type: generic.noop
"""
DEMO_NOOP = AWS_NOOP.replace("aws_unit_noop", "demo_unit_noop").replace(
    "provider: aws\ndomain: cost", "provider: demo\ndomain: sample"
)
AWS_SECRET = {"access_key_id": "AKIAUNITTEST", "secret_access_key": "unit-secret-0000000000"}


@pytest.fixture
def registry(configs_dir, write_pipeline) -> None:  # type: ignore[no-untyped-def]
    """The shipped provider registry over the test configs, with an aws and a demo pipeline."""
    install_provider_registry(configs_dir)
    write_pipeline("aws/cost/noop", AWS_NOOP)
    write_pipeline("demo/sample/noop", DEMO_NOOP)


def aws_request(**overrides: object) -> RunRequest:
    return request(provider="aws", domain="cost", pipeline="noop", **overrides)


def test_a_provider_that_needs_a_credential_is_refused_without_one(
    services: Services, dispatcher, registry: None
) -> None:
    with pytest.raises(CredentialError) as info:
        services.runs.start(aws_request())

    assert str(info.value) == (
        "pipeline aws/cost/noop needs a credential of provider aws; add one with "
        "`pipeline-ops credentials add --org acme aws --name NAME --file key.json` and give its id "
        "as credential_id (or store it with --id default)"
    )
    assert count_runs(services.store) == 0
    assert dispatcher.enqueued == []
    ledger = services.gate.ledger.snapshot("acme", services.store.clock())  # type: ignore[attr-defined]
    assert (ledger.daily_runs, ledger.concurrent_running) == (0, 0)


def test_a_stored_credential_of_that_provider_is_usable_by_id_or_as_default(
    services: Services, registry: None
) -> None:
    vault = services.credentials
    vault.add("acme", "aws", "Payer", AWS_SECRET, "payer")  # type: ignore[attr-defined]
    assert services.runs.start(aws_request(credential_id="payer")).status == state.QUEUED

    vault.add("acme", "aws", "Default", AWS_SECRET, "default")  # type: ignore[attr-defined]
    assert services.runs.start(aws_request(start_date=date(2026, 1, 2))).credential_id == (
        "default"
    )


def test_a_provider_without_credentials_still_runs_on_the_implicit_default(
    services: Services, registry: None
) -> None:
    run = services.runs.start(request(provider="demo", domain="sample", pipeline="noop"))
    assert (run.status, run.credential_id) == (state.QUEUED, "default")
