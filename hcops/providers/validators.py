"""Validator-set changes on a live chain, for every provider: submit the update, wait until it is in force.

CometBFT changes its validator set only when the application returns validator updates from a block, so
how an update is *requested* belongs to the application: ``ValidatorUpdater`` is that seam. hcops ships
the one for CometBFT's built-in ``kvstore`` app (a ``val=`` transaction); an external ABCI application
implements the same protocol with its own transaction (or governance) format.

An update committed at height H is in force from H+2. ``ValidatorChanger.apply`` submits one change, waits
until ``/validators`` shows the new power and, for a validator that joins or keeps power, until its
signature is in the commits; it reports the height the change was committed at, for the lock file.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from hcops.clock import format_time, now
from hcops.errors import EnvironmentProblem, HcopsError
from hcops.plan.lock import ValidatorChange
from hcops.plan.membership import PowerChange
from hcops.progress import Reporter
from hcops.providers.rpc import RpcClient, RpcUnavailable

POLL = 0.25
SUBMIT_TIMEOUT = 15.0  # above CometBFT's timeout_broadcast_tx_commit (10 s)
UPDATE_DELAY = 2  # blocks between the block carrying an update and the first one it applies to
T = TypeVar("T")


@dataclass(frozen=True)
class TxCommit:
    """The outcome of ``broadcast_tx_commit``: the mempool check and, once in a block, its execution."""

    hash: str
    height: int  # the block that carries the transaction (0 when it was not committed)
    check_code: int
    check_log: str
    exec_code: int
    exec_log: str

    @property
    def ok(self) -> bool:
        return self.check_code == 0 and self.exec_code == 0 and self.height > 0


def broadcast_tx_commit(client: RpcClient, tx: bytes) -> TxCommit:
    """Submit ``tx`` and wait until it is committed in a block (CometBFT waits up to its
    ``timeout_broadcast_tx_commit``, 10 s by default: ``client`` needs a longer timeout, and no retries,
    since a retried submission could be committed twice)."""
    r = client.call("broadcast_tx_commit", tx="0x" + tx.hex())
    try:
        check, result = r.get("check_tx") or {}, r.get("tx_result") or r.get("deliver_tx") or {}
        return TxCommit(hash=str(r.get("hash", "")), height=int(r.get("height") or 0),
                        check_code=int(check.get("code") or 0), check_log=str(check.get("log") or ""),
                        exec_code=int(result.get("code") or 0), exec_log=str(result.get("log") or ""))
    except (TypeError, ValueError, AttributeError) as exc:
        raise RpcUnavailable(f"{client.base_url}/broadcast_tx_commit: unexpected reply ({exc})") from None


class ValidatorUpdateFailed(HcopsError):
    """The chain did not accept or apply a validator update. Exit 1: nothing was left half-done on chain."""

    exit_code = 1


@runtime_checkable
class ValidatorUpdater(Protocol):
    """How the chain's application is asked to change one validator's power."""

    name: str

    def transaction(self, pub_key_b64: str, power: int) -> bytes:
        """The transaction that sets the validator with this ed25519 public key to ``power`` (0 removes it)."""
        ...


class KvstoreValidatorUpdater:
    """CometBFT's built-in kvstore: ``val=<key type>!<base64 public key>!<power>``.

    (Its README writes ``val:pubkeytype!pubkey!power``; the code, abci/example/kvstore ``ValidatorPrefix``
    and ``parseValidatorTx``, takes ``val=``: a ``:`` would be rewritten to ``=`` by PrepareProposal
    anyway, but ``CheckTx`` only recognises the ``val=`` prefix as a validator update.)"""

    name = "kvstore"
    KEY_TYPE = "ed25519"

    def transaction(self, pub_key_b64: str, power: int) -> bytes:
        raw = base64.b64decode(pub_key_b64, validate=True)
        if len(raw) != 32:
            raise ValueError("an ed25519 public key has 32 bytes")
        if power < 0:
            raise ValueError("power cannot be negative")
        return f"val={self.KEY_TYPE}!{base64.b64encode(raw).decode()}!{power}".encode()


UPDATERS: dict[str, Callable[[], ValidatorUpdater]] = {"kvstore": KvstoreValidatorUpdater}


def updater_for(app: str) -> ValidatorUpdater:
    try:
        return UPDATERS[app]()
    except KeyError:
        raise EnvironmentProblem(f"no validator updater for the application {app!r}",
                                 hint="register one in hcops.providers.validators.UPDATERS") from None


@dataclass
class ValidatorChanger:
    """Applies validator-set changes through any node's RPC (``rpcs``: every reachable node, tried in turn)."""

    rpcs: Sequence[RpcClient]
    updater: ValidatorUpdater
    reporter: Reporter
    timeout: float
    clock: Callable[[], float] = time.monotonic

    def _first(self, what: Callable[[RpcClient], T]) -> T:
        last: Exception | None = None
        for rpc in self.rpcs:
            try:
                return what(rpc)
            except RpcUnavailable as exc:
                last = exc
        raise EnvironmentProblem(f"no node answered RPC ({last})")

    def height(self) -> int:
        return self._first(lambda r: r.status().height)

    def powers(self) -> dict[str, int]:
        vals = self._first(lambda r: r.validators())
        return {v.address.upper(): v.power for v in vals}

    def apply(self, change: PowerChange) -> ValidatorChange:
        """Submit ``change``, wait until it is in force (and signing, unless it removes the validator)."""
        address = change.validator_address.upper()
        current = self.powers().get(address, 0)
        if current == change.new_power:  # committed by an earlier, interrupted apply: only record it
            h = self.height()
            return self._record(change, current_old=change.old_power, height=h, effective=h)
        tx = self.updater.transaction(change.validator_pub_key, change.new_power)
        self.reporter.step(f"validator update: {change.describe()}")
        first = self.rpcs[0]
        submit = RpcClient(first.base_url, timeout=SUBMIT_TIMEOUT, attempts=1, ssl_context=first.ssl_context)
        try:
            result = broadcast_tx_commit(submit, tx)
        except RpcUnavailable as exc:
            raise ValidatorUpdateFailed(f"submitting the validator update for {change.node} failed ({exc})",
                                        hint="run apply again: it finds whether the update was committed") from None
        finally:
            submit.close()
        if not result.ok:
            why = result.check_log or result.exec_log or f"code {result.check_code or result.exec_code}"
            raise ValidatorUpdateFailed(f"the chain refused the validator update for {change.node}: {why}")
        effective = result.height + UPDATE_DELAY
        self._wait(f"{change.node} at power {change.new_power}",
                   lambda: self.powers().get(address, 0) == change.new_power)
        if change.new_power > 0:
            self.wait_signing(address, change.node, since=effective)
        return self._record(change, current_old=current, height=result.height, effective=effective)

    def wait_signing(self, address: str, node: str, *, since: int, blocks: int = 1) -> int:
        """Wait until ``blocks`` commits at heights >= ``since`` carry the validator's signature; returns the
        first such height."""
        seen: list[int] = []
        next_h = since

        def signed() -> bool:
            nonlocal next_h
            latest = self.height()
            for h in range(next_h, latest + 1):
                commit = self._first(lambda r, h=h: r.commit(h))  # type: ignore[misc]
                if address in commit.signers:
                    seen.append(h)
                next_h = h + 1
            return len(seen) >= blocks

        self._wait(f"blocks signed by {node}", signed)
        return seen[0]

    def _wait(self, what: str, done: Callable[[], bool]) -> None:
        deadline = self.clock() + self.timeout
        while True:
            try:
                if done():
                    return
            except (RpcUnavailable, EnvironmentProblem):
                pass
            if self.clock() > deadline:
                raise ValidatorUpdateFailed(f"timed out after {self.timeout:g} s waiting for {what}",
                                            hint="check the node's logs; run apply again to resume")
            time.sleep(POLL)

    @staticmethod
    def _record(change: PowerChange, *, current_old: int, height: int, effective: int) -> ValidatorChange:
        return ValidatorChange(node=change.node, organization=change.organization,
                               validator_address=change.validator_address.upper(),
                               validator_pub_key=change.validator_pub_key, old_power=current_old,
                               new_power=change.new_power, height=height, effective_height=effective,
                               at=format_time(now()))
