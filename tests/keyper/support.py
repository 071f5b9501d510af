"""A 3-of-5 keyper committee on py-evm with the real service (uvicorn, SQLite) in a thread.

``build_world`` deploys the stack once per session (holders with requests in the auction's
window, liquidity, the committee registered, key mode threshold) at a time just before the
DKG of auction T opens; each test rewinds the chain to that snapshot and gets a fresh store
and service (``Net``), whose clock is chain time.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr
from web3 import Web3

from clearing.api.server import build_app
from clearing.api.settings import ServiceSettings
from clearing.calendar import REDEMPTION_WINDOW, AuctionCalendar
from clearing.dkg import DkgSchedule
from clearing.eip712 import Eip712Domain
from clearing.engine import Mode
from clearing.hexcodec import parse_address, to_checksum_address
from clearing.sealing import public_key_of
from clearing.signing import Signer
from clearing.store import open_store
from clearing.store.base import BidStore
from keeper.chain import Chain
from keeper.deploy import Deployment, deploy_stack, transact
from keeper.jobs import Keeper, KeeperConfig
from keeper.keyper import HttpBoard, Keyper
from keeper.redemptions import Web3Redemptions
from keeper.senders import make_sender
from keeper.threshold_key import ChainCommittees, ThresholdKeys
from qev.demo import LockedTesterProvider

E18 = 10**18
W = REDEMPTION_WINDOW
N, T_OF_N, PHASE = 5, 3, 3_600
N_HOLDERS = 6


def key(label: str) -> bytes:
    """A deterministic 32-byte test key (never a real one)."""
    return hashlib.sha256(b"qev-keyper-test:" + label.encode()).digest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    """The session's chain, deployed and set up; ``snapshot`` is where each test starts."""

    w3: Any
    tester: Any
    admin: str
    deployment: Deployment
    chain: Chain
    genesis: int
    auction_id: int
    domain: Eip712Domain
    calendar: AuctionCalendar
    keyper_accounts: list[Signer]
    identities: list[bytes]
    holders: list[Signer]
    rids: list[int]
    urgent: LocalAccount
    house: LocalAccount
    snapshot: Any = None

    @property
    def schedule(self) -> DkgSchedule:
        return DkgSchedule.of(self.calendar, self.auction_id, PHASE)

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance_to(self, timestamp: int) -> None:
        """Mine a block at ``timestamp`` (chain time, and so the service's clock, moves)."""
        if timestamp > self.now():
            self.tester.time_travel(timestamp)
        self.tester.mine_blocks(1)


def build_world() -> World:
    provider = LockedTesterProvider()
    w3 = Web3(provider)
    tester: Any = provider.ethereum_tester
    from tests.keeper.conftest import one_shot_gas_estimate

    tester.backend.chain.gas_estimator = one_shot_gas_estimate
    accounts = list(w3.eth.accounts)
    admin = accounts[0]
    keys = tester.backend.account_keys
    urgent = Account.from_key(keys[1].to_bytes())
    house = Account.from_key(keys[2].to_bytes())
    dep = deploy_stack(
        w3,
        admin,
        [urgent.address, house.address],
        receipt_signer=to_checksum_address(Signer(key("service")).address),
    )
    chain = Chain(w3, dep.vault, dep.settlement)
    genesis = chain.genesis()
    auction_id = genesis + 2 * W
    domain = Eip712Domain("QEVSettlement", "1", int(w3.eth.chain_id), parse_address(dep.settlement))
    keypers = [Signer(key(f"keyper-account-{j}")) for j in range(1, N + 1)]
    identities = [key(f"keyper-identity-{j}") for j in range(1, N + 1)]
    settlement = chain.settlement
    transact(
        w3,
        settlement.functions.setKeyperCommittee(
            [to_checksum_address(k.address) for k in keypers],
            [public_key_of(i) for i in identities],
            T_OF_N,
            PHASE,
        ),
        admin,
    )
    transact(w3, settlement.functions.setKeyMode(1), admin)
    # holders: requests in the auction's own window (matured at T), liquidity in the vault
    holders = [Signer(key(f"holder-{i}")) for i in range(N_HOLDERS)]
    vault, usdai = chain.vault, chain.usdai
    total = sum((100 + 10 * i) * E18 for i in range(N_HOLDERS))
    transact(w3, usdai.functions.mint(admin, 3 * total), admin)
    transact(w3, usdai.functions.approve(vault.address, 3 * total), admin)
    transact(w3, vault.functions.deposit(3 * total, admin), admin)
    tester.time_travel(genesis + W - 600)
    tester.mine_blocks(1)
    rids = []
    for i, h in enumerate(holders):
        fn = vault.functions.requestRedeem(
            (100 + 10 * i) * E18, to_checksum_address(h.address), admin
        )
        receipt = transact(w3, fn, admin)
        rids.append(int(receipt["logs"][-1]["topics"][3].hex(), 16))
    world = World(
        w3,
        tester,
        admin,
        dep,
        chain,
        genesis,
        auction_id,
        domain,
        AuctionCalendar(genesis, W),
        keypers,
        identities,
        holders,
        rids,
        urgent,
        house,
    )
    world.snapshot = tester.take_snapshot()
    return world


@dataclass
class Net:
    """One test's service (real HTTP), store and keypers on the rewound world."""

    world: World
    url: str
    store: BidStore
    server: uvicorn.Server
    thread: threading.Thread
    boards: list[HttpBoard] = field(default_factory=list)
    keypers: dict[int, Keyper] = field(default_factory=dict)

    def keyper(self, j: int, cls: type[Keyper] = Keyper, **kwargs: Any) -> Keyper:
        """Keyper ``j`` (1-based), a new process's worth: its own board client and caches."""
        w = self.world
        board = HttpBoard(self.url, timeout=30)
        self.boards.append(board)
        k = cls(
            Chain(w.w3, w.deployment.vault, w.deployment.settlement),
            board,
            w.identities[j - 1],
            w.keyper_accounts[j - 1],
            domain=w.domain,
            calendar=w.calendar,
            **kwargs,
        )
        self.keypers[j] = k
        return k

    def committee(self, overrides: dict[int, Keyper] | None = None) -> list[Keyper]:
        """All five keypers, honest unless ``overrides`` says otherwise."""
        overrides = overrides or {}
        return [overrides.get(j) or self.keyper(j) for j in range(1, N + 1)]

    def run_dkg(self, keypers: Iterable[Keyper], *, finish: bool = True) -> None:
        """Each phase once for every keyper; then past the transcript's finality (+ grace)."""
        s = self.world.schedule
        keypers = list(keypers)
        for start in (s.opens_at, s.deals_end, s.complaints_end):
            self.world.advance_to(start + 10)
            for k in keypers:
                k.run_dkg(self.world.auction_id, self.world.now())
        if finish:
            self.world.advance_to(s.final_at + 60)

    def threshold_keys(self, **kwargs: Any) -> ThresholdKeys:
        w = self.world
        chain = Chain(w.w3, w.deployment.vault, w.deployment.settlement)
        return ThresholdKeys(chain, self.store, w.domain, w.calendar, service_clock=w.now, **kwargs)

    def keeper(self, keys: ThresholdKeys | None = None) -> Keeper:
        """The merkle keeper in threshold mode on this net's store."""
        w = self.world
        chain = Chain(w.w3, w.deployment.vault, w.deployment.settlement)
        return Keeper(
            chain,
            self.store,
            make_sender(w.w3, w.urgent, poll_interval=0.01, deadline=60),
            make_sender(w.w3, w.house, poll_interval=0.01, deadline=60),
            KeeperConfig(
                b"",
                w.domain,
                Mode.PAY_AS_BID,
                min_fill=E18,
                key_source=keys or self.threshold_keys(),
            ),
            service_clock=w.now,
        )

    def close(self) -> None:
        for b in self.boards:
            b.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.close()


def start_net(world: World, tmp: Path) -> Net:
    """A fresh store and the real service with the board mounted, on a free port."""
    (tmp / "service.key").write_text(key("service").hex())
    (tmp / "service.key").chmod(0o600)
    store_url = f"sqlite:///{tmp / 'qev.db'}"
    store = open_store(store_url)
    settings = ServiceSettings(
        store_url=SecretStr(store_url),
        chain_id=world.domain.chain_id,
        settlement=world.deployment.settlement,
        genesis=world.genesis,
        service_key_file=tmp / "service.key",
        client_rate=1e6,
        client_burst=10**6,
        controller_rate=1e6,
        controller_burst=10**6,
    )
    chain = Chain(world.w3, world.deployment.vault, world.deployment.settlement)
    app = build_app(
        settings,
        Web3Redemptions(chain),
        store=store,
        clock=world.now,
        committees=ChainCommittees(chain, ttl=0),
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "service did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return Net(world, f"http://127.0.0.1:{port}", store, server, thread)


def problem(response: Any) -> tuple[int, str]:
    """(status, problem code) of an httpx response that must be a problem+json."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.status_code, response.json()["code"]


Callback = Callable[..., Any]

__all__ = [
    "E18",
    "PHASE",
    "T_OF_N",
    "N",
    "Net",
    "W",
    "World",
    "build_world",
    "key",
    "problem",
    "start_net",
]
