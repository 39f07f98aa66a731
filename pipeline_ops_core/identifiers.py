"""The shapes of the identifiers every layer checks, defined once.

Each is a regular-expression body (`ORG_SLUG`) for composing and for the patterns the
OpenAPI document publishes, and a compiled whole-string match (`ORG_SLUG_RE`), anchored
with `\\Z` because `$` would also accept a trailing newline. The API, the CLI, the
services and the vault all refuse the same strings.
"""

from __future__ import annotations

import re

# A pipeline's address segments (provider, domain, pipeline file name) and the ids a
# pipeline file declares (pipeline_id, step_id): lower-case letters, digits and _.
IDENT = r"[a-z0-9_]+"
ORG_SLUG = r"[a-z0-9_]{2,64}"
# A provider key (providers.yml) or a SaaS vendor of a subscription.
PROVIDER = r"[a-z0-9_]{1,64}"
CREDENTIAL_ID = r"[a-z0-9_\-]{1,128}"
# A run id as the API takes it: a UUID, or a prefix of one.
RUN_ID = r"[a-z0-9\-]{1,64}"
# provider/domain/pipeline: where a pipeline file lives under the configs directory.
PIPELINE_PATH = rf"{IDENT}/{IDENT}/{IDENT}"
CURRENCY = r"[A-Z]{3}"
SUBSCRIPTION_ID = r"sub_[0-9a-f]{16}"


def whole(pattern: str) -> re.Pattern[str]:
    """`pattern` matching a whole string, with `match` as with `fullmatch`."""
    return re.compile(rf"^{pattern}\Z")


IDENT_RE = whole(IDENT)
ORG_SLUG_RE = whole(ORG_SLUG)
PROVIDER_RE = whole(PROVIDER)
CREDENTIAL_ID_RE = whole(CREDENTIAL_ID)
RUN_ID_RE = whole(RUN_ID)
PIPELINE_PATH_RE = whole(PIPELINE_PATH)
CURRENCY_RE = whole(CURRENCY)
SUBSCRIPTION_ID_RE = whole(SUBSCRIPTION_ID)
