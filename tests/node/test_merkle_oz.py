"""Our StandardMerkleTree against @openzeppelin/merkle-tree run in Node (real npm package)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from clearing.hexcodec import to_hex
from clearing.merkle import StandardMerkleTree, verify_multi_proof
from clearing.model import ALLOCATION_LEAF_TYPES, BID_BOOK_LEAF_TYPES

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("oz_merkle.js")

pytestmark = pytest.mark.node


def _node() -> str:
    node = shutil.which("node")
    pkg = ROOT / "node_modules" / "@openzeppelin" / "merkle-tree" / "package.json"
    if node is None or not pkg.exists():
        pytest.fail("Node and `npm ci` are required for the OpenZeppelin cross-check (see README)")
    return node


def _random_leaf(rng: random.Random, types):
    out = []
    for t in types:
        if t == "uint64":
            out.append(rng.choice([0, 1, 2**64 - 1, rng.getrandbits(64)]))
        elif t == "uint256":
            out.append(rng.choice([0, rng.getrandbits(256), rng.getrandbits(80), 10**18]))
        elif t == "address":
            out.append(rng.randbytes(20))
        else:
            out.append(rng.randbytes(32))
    return tuple(out)


def _cases(seed: int):
    rng = random.Random(seed)
    sizes = [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 64, 100, 127, 128, 129, 255, 256, 257, 300]
    cases = []
    for n in sizes:
        for types in (ALLOCATION_LEAF_TYPES, BID_BOOK_LEAF_TYPES):
            leaves = [_random_leaf(rng, types) for _ in range(n)]
            multi = sorted(rng.sample(range(n), rng.randint(1, min(n, 12))))
            cases.append((types, leaves, multi))
    return cases


def _run_oz(payload) -> list[dict]:
    proc = subprocess.run(
        [_node(), str(DRIVER)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("seed", [1, 2])
def test_roots_proofs_multiproofs_and_dumps_match_openzeppelin(seed):
    cases = _cases(seed)
    ours = [StandardMerkleTree.of(leaves, types) for types, leaves, _ in cases]
    payload = []
    for (types, _, multi), tree in zip(cases, ours, strict=True):
        dump = tree.dump()
        values = [v["value"] for v in dump["values"]]
        payload.append({"types": list(types), "values": values, "multi": multi, "ourDump": dump})
    results = _run_oz(payload)
    assert len(results) == len(cases) == 40
    for (types, leaves, multi), tree, oz in zip(cases, ours, results, strict=True):
        root = to_hex(tree.root)
        assert root == oz["root"]
        assert [[to_hex(p) for p in tree.proof(i)] for i in range(len(leaves))] == oz["proofs"]
        mp = tree.multi_proof(multi)
        assert [to_hex(p) for p in mp.proof] == oz["multi"]["proof"]
        assert mp.proof_flags == oz["multi"]["proofFlags"]
        as_json = {v: d["value"] for v, d in zip(tree.values, tree.dump()["values"], strict=True)}
        assert [as_json[v] for v in mp.leaves] == oz["multi"]["leaves"]
        assert oz["multiVerified"] is True
        assert verify_multi_proof(tree.root, types, mp)
        # OZ loads our dump; we load OZ's dump; both give the same root and proofs
        assert oz["ourDumpRoot"] == root
        assert oz["ourDumpProof0"] == [to_hex(p) for p in tree.proof(0)]
        loaded = StandardMerkleTree.load(oz["dump"])
        assert loaded.root == tree.root
        assert loaded.values == tree.values
        assert loaded.dump() == oz["dump"]
