"""Merkle tree behaviour that needs no Node: proofs, multiproofs, tamper detection."""

from __future__ import annotations

import copy

import pytest

from clearing.errors import InvalidTreeError, LeafNotFoundError, MerkleError
from clearing.hashing import keccak256
from clearing.merkle import StandardMerkleTree, leaf_hasher, node_hash, verify, verify_multi_proof
from clearing.model import ALLOCATION_LEAF_TYPES

CTRL = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")
E18 = 10**18


def _leaves(n):
    return [(1_767_225_600, i, CTRL, i * E18 + 1, i, i * 10**17) for i in range(n)]


def test_single_leaf_tree_root_is_the_leaf_hash():
    (leaf,) = _leaves(1)
    tree = StandardMerkleTree.of([leaf], ALLOCATION_LEAF_TYPES)
    from clearing.abi import encode

    assert tree.root == keccak256(keccak256(encode(ALLOCATION_LEAF_TYPES, leaf)))
    assert tree.proof(0) == []
    assert tree.verify(leaf, [])


def test_two_leaves_root_is_the_sorted_pair_hash():
    a, b = _leaves(2)
    h = leaf_hasher(ALLOCATION_LEAF_TYPES)
    lo, hi = sorted([h(a), h(b)])
    assert StandardMerkleTree.of([a, b], ALLOCATION_LEAF_TYPES).root == keccak256(lo + hi)
    assert node_hash(lo, hi) == node_hash(hi, lo)


def test_every_proof_verifies_and_a_wrong_leaf_does_not():
    leaves = _leaves(37)
    tree = StandardMerkleTree.of(leaves, ALLOCATION_LEAF_TYPES)
    for i, leaf in enumerate(leaves):
        assert verify(tree.root, ALLOCATION_LEAF_TYPES, leaf, tree.proof(i))
        assert tree.index_of(leaf) == i
    forged = (*leaves[3][:5], leaves[3][5] + 1)
    assert not verify(tree.root, ALLOCATION_LEAF_TYPES, forged, tree.proof(3))
    with pytest.raises(LeafNotFoundError):
        tree.index_of(forged)
    with pytest.raises(LeafNotFoundError):
        tree.proof(37)


def test_root_does_not_depend_on_input_order():
    leaves = _leaves(20)
    assert (
        StandardMerkleTree.of(leaves, ALLOCATION_LEAF_TYPES).root
        == StandardMerkleTree.of(leaves[::-1], ALLOCATION_LEAF_TYPES).root
    )


def test_multiproofs_verify_and_refuse_duplicates():
    leaves = _leaves(50)
    tree = StandardMerkleTree.of(leaves, ALLOCATION_LEAF_TYPES)
    for picks in ([0], [1, 2], list(range(50)), [49, 3, 17, 8]):
        mp = tree.multi_proof(picks)
        assert sorted(mp.leaves) == sorted(leaves[i] for i in picks)
        assert verify_multi_proof(tree.root, ALLOCATION_LEAF_TYPES, mp)
    with pytest.raises(MerkleError):
        tree.multi_proof([4, 4])
    empty = tree.multi_proof([])
    assert empty.proof == [tree.root] and verify_multi_proof(
        tree.root, ALLOCATION_LEAF_TYPES, empty
    )


def test_empty_tree_is_refused():
    with pytest.raises(MerkleError):
        StandardMerkleTree.of([], ALLOCATION_LEAF_TYPES)


def test_dump_round_trips():
    tree = StandardMerkleTree.of(_leaves(9), ALLOCATION_LEAF_TYPES)
    dump = tree.dump()
    assert dump["format"] == "standard-v1"
    assert dump["values"][0]["value"][2] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert StandardMerkleTree.load(dump).root == tree.root


def _tamper(dump, how):
    d = copy.deepcopy(dump)
    if how == "format":
        d["format"] = "simple-v1"
    elif how == "value":
        d["values"][2]["value"][3] = str(int(d["values"][2]["value"][3]) + 1)
    elif how == "node":
        d["tree"][1] = "0x" + "00" * 32
    elif how == "root":
        d["tree"][0] = "0x" + "11" * 32
    elif how == "index":
        d["values"][0]["treeIndex"] = d["values"][1]["treeIndex"]
    elif how == "drop":
        d["values"].pop()
    elif how == "encoding":
        d["leafEncoding"][0] = "uint8"
    elif how == "hex":
        d["tree"][3] = "0xzz"
    return d


@pytest.mark.parametrize(
    "how", ["format", "value", "node", "root", "index", "drop", "encoding", "hex"]
)
def test_tampered_dumps_are_refused(how):
    dump = StandardMerkleTree.of(_leaves(9), ALLOCATION_LEAF_TYPES).dump()
    with pytest.raises(InvalidTreeError):
        StandardMerkleTree.load(_tamper(dump, how))
