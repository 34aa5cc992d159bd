"""The ansible provider's fragment of the spec (``spec.provider.ansible``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from hcops.spec.types import Matching

# Both end up in the rendered variables and in paths and commands on every host: plain names only.
User = Annotated[str, Matching(r"[a-z_][a-z0-9_-]{0,31}", "a system user name (lowercase letters, digits, "
                                                           '"_" and "-", at most 32)')]
Home = Annotated[str, Matching(r"(?!.*/\.\.?(?:/|$))/[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*/?",
                               'an absolute path of letters, digits, ".", "_" and "-" without "." or ".." '
                               'parts, such as "/var/lib/cometbft"')]


class AnsibleSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user: User = Field("cometbft", description="System user that runs the node on each host.")
    home: Home = Field("/var/lib/cometbft", description="CometBFT home directory on each host.")
