"""OpenZeppelin ``StandardMerkleTree`` ("standard-v1"), byte-compatible with
``@openzeppelin/merkle-tree``: leaf = keccak256(keccak256(abi.encode(values))), leaves
sorted by hash, node = keccak256 of its two children sorted as bytes, the tree a flat
array with the root at 0 and children at 2i+1, 2i+2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from clearing.abi import parse_type, static_encoder
from clearing.errors import (
    HexError,
    InvalidTreeError,
    LeafNotFoundError,
    MalformedError,
    MerkleError,
)
from clearing.hashing import keccak_256
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex

FORMAT = "standard-v1"


def leaf_hasher(types: Sequence[str]) -> Callable[[Sequence[Any]], bytes]:
    """Return ``values -> keccak256(keccak256(abi.encode(types, values)))``."""
    encode = static_encoder(tuple(types))
    k = keccak_256

    def leaf_hash(values: Sequence[Any]) -> bytes:
        return k(k(encode(values)).digest()).digest()

    return leaf_hash


def node_hash(a: bytes, b: bytes) -> bytes:
    """Commutative node hash: keccak256 of the two children sorted as bytes."""
    return keccak_256(a + b if a < b else b + a).digest()


def build_nodes(sorted_leaves: Sequence[bytes]) -> list[bytes]:
    """OZ ``makeMerkleTree``: leaves go at the end in reverse order, parents above them."""
    n = len(sorted_leaves)
    if n == 0:
        raise MerkleError("a Merkle tree needs at least one leaf")
    size = 2 * n - 1
    tree: list[bytes] = [b""] * (size - n)
    tree.extend(reversed(sorted_leaves))
    k = keccak_256
    for i in range(size - n - 1, -1, -1):
        a, b = tree[2 * i + 1], tree[2 * i + 2]
        tree[i] = k(a + b if a < b else b + a).digest()
    return tree


def process_proof(leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """Fold a proof onto a leaf hash; equals the root for a valid proof."""
    node = leaf
    for sibling in proof:
        node = node_hash(node, sibling)
    return node


@dataclass(frozen=True, slots=True)
class MultiProof:
    """An OZ multiproof: leaves (values) in the order the verifier consumes them."""

    leaves: list[tuple[Any, ...]]
    proof: list[bytes]
    proof_flags: list[bool]


def process_multi_proof(
    leaf_hashes: Sequence[bytes], proof: Sequence[bytes], flags: Sequence[bool]
) -> bytes:
    """OZ ``processMultiProof``: rebuild the root from leaves, proof nodes and flags."""
    if len(proof) < flags.count(False) or len(leaf_hashes) + len(proof) != len(flags) + 1:
        raise MerkleError("leaves, proof and flags are not compatible")
    stack = list(leaf_hashes)
    queue = list(proof)
    head = 0
    qhead = 0
    for flag in flags:
        a = stack[head]
        head += 1
        if flag:
            b = stack[head]
            head += 1
        else:
            b = queue[qhead]
            qhead += 1
        stack.append(node_hash(a, b))
    if len(stack) - head + len(queue) - qhead != 1:
        raise MerkleError("multiproof does not reduce to one root")
    return stack[head] if head < len(stack) else queue[qhead]


class StandardMerkleTree:
    """A standard-v1 tree over ``values`` of static ABI ``leaf_encoding`` types."""

    __slots__ = ("_index", "_order", "_tree_indices", "leaf_encoding", "tree", "values")

    def __init__(
        self,
        tree: list[bytes],
        values: list[tuple[Any, ...]],
        tree_indices: list[int] | None,
        leaf_encoding: tuple[str, ...],
        order: list[int] | None = None,
    ) -> None:
        self.tree = tree
        self.values = values
        self.leaf_encoding = leaf_encoding
        self._tree_indices = tree_indices
        self._order = order  # value indices in leaf (sorted-hash) order, if built here
        self._index: dict[bytes, int] | None = None

    @property
    def tree_indices(self) -> list[int]:
        """Tree position of each value (computed on first use: the root does not need it)."""
        if self._tree_indices is None:
            assert self._order is not None
            last = len(self.tree) - 1
            indices = [0] * len(self._order)
            for leaf_pos, value_index in enumerate(self._order):
                indices[value_index] = last - leaf_pos
            self._tree_indices, self._order = indices, None
        return self._tree_indices

    @classmethod
    def of(
        cls,
        values: Sequence[Sequence[Any]],
        leaf_encoding: Sequence[str],
        leaf_hashes: Sequence[bytes] | None = None,
    ) -> StandardMerkleTree:
        """Build a tree. ``leaf_hashes`` may be precomputed (e.g. on several cores)."""
        types = tuple(leaf_encoding)
        vals = [v if type(v) is tuple else tuple(v) for v in values]
        if not vals:
            raise MerkleError("a Merkle tree needs at least one leaf")
        hashes = (
            list(leaf_hashes) if leaf_hashes is not None else list(map(leaf_hasher(types), vals))
        )
        if len(hashes) != len(vals):
            raise MerkleError("one leaf hash per value is needed")
        order = sorted(range(len(hashes)), key=hashes.__getitem__)
        tree = build_nodes(list(map(hashes.__getitem__, order)))
        return cls(tree, vals, None, types, order)

    @property
    def root(self) -> bytes:
        """The Merkle root."""
        return self.tree[0]

    def __len__(self) -> int:
        return len(self.values)

    def _lookup(self) -> dict[bytes, int]:
        if self._index is None:
            tree = self.tree
            self._index = {tree[t]: i for i, t in enumerate(self.tree_indices)}
        return self._index

    def index_of(self, values: Sequence[Any]) -> int:
        """The value index of a leaf given by its values."""
        found = self._lookup().get(leaf_hasher(self.leaf_encoding)(values))
        if found is None:
            raise LeafNotFoundError("leaf is not in the tree")
        return found

    def leaf_hash(self, index: int) -> bytes:
        """The hash of the value at ``index``."""
        return self.tree[self.tree_indices[index]]

    def proof(self, index: int) -> list[bytes]:
        """The proof for the value at ``index`` (siblings from the leaf up)."""
        if not 0 <= index < len(self.values):
            raise LeafNotFoundError(f"value index {index} is out of range")
        tree = self.tree
        i = self.tree_indices[index]
        out = []
        while i > 0:
            out.append(tree[i + 1 if i & 1 else i - 1])
            i = (i - 1) >> 1
        return out

    def multi_proof(self, indices: Iterable[int]) -> MultiProof:
        """OZ ``getMultiProof`` for the values at ``indices``."""
        wanted = list(indices)
        for v in wanted:
            if not 0 <= v < len(self.values):
                raise LeafNotFoundError(f"value index {v} is out of range")
        tree_idx = sorted((self.tree_indices[v] for v in wanted), reverse=True)
        if any(a == b for a, b in pairwise(tree_idx)):
            raise MerkleError("cannot prove a duplicated index")
        stack = list(tree_idx)
        head = 0
        proof: list[bytes] = []
        flags: list[bool] = []
        while head < len(stack) and stack[head] > 0:
            j = stack[head]
            head += 1
            s = j + 1 if j & 1 else j - 1
            p = (j - 1) >> 1
            if head < len(stack) and stack[head] == s:
                flags.append(True)
                head += 1
            else:
                flags.append(False)
                proof.append(self.tree[s])
            stack.append(p)
        if not tree_idx:
            proof.append(self.tree[0])
        by_tree_index = {t: v for v, t in enumerate(self.tree_indices)} if wanted else {}
        leaves = [self.values[by_tree_index[t]] for t in tree_idx]
        return MultiProof(leaves, proof, flags)

    def verify(self, values: Sequence[Any], proof: Sequence[bytes]) -> bool:
        """Whether ``proof`` proves ``values`` against this tree's root."""
        return verify(self.root, self.leaf_encoding, values, proof)

    # --- OZ JSON dump -----------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """The ``standard-v1`` dump that ``StandardMerkleTree.load`` in JS accepts."""
        to_json = [_json_codec(t)[0] for t in self.leaf_encoding]
        return {
            "format": FORMAT,
            "leafEncoding": list(self.leaf_encoding),
            "tree": [to_hex(n) for n in self.tree],
            "values": [
                {"value": [f(x) for f, x in zip(to_json, v, strict=True)], "treeIndex": t}
                for v, t in zip(self.values, self.tree_indices, strict=True)
            ],
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> StandardMerkleTree:
        """Load and fully validate a ``standard-v1`` dump (as OZ's ``load`` does)."""
        try:
            if data.get("format") != FORMAT:
                raise InvalidTreeError(f"unknown format {data.get('format')!r}")
            types = tuple(data["leafEncoding"])
            from_json = [_json_codec(t)[1] for t in types]
            tree = [from_hex(n, 32) for n in data["tree"]]
            values: list[tuple[Any, ...]] = []
            indices: list[int] = []
            for entry in data["values"]:
                raw = entry["value"]
                if len(raw) != len(types):
                    raise InvalidTreeError("a value has the wrong number of fields")
                values.append(tuple(f(x) for f, x in zip(from_json, raw, strict=True)))
                indices.append(int(entry["treeIndex"]))
        except (KeyError, TypeError, ValueError, HexError, MalformedError) as e:
            if isinstance(e, InvalidTreeError):
                raise
            raise InvalidTreeError(f"not a standard-v1 dump: {e}") from e
        self = cls(tree, values, indices, types)
        try:
            self.validate()
        except MalformedError as e:  # a value that does not fit its declared type
            raise InvalidTreeError(f"value does not fit the leaf encoding: {e}") from e
        return self

    def validate(self) -> None:
        """Check every value hashes to its node and every node to its children."""
        tree, n = self.tree, len(self.tree)
        if n == 0 or len(self.values) * 2 - 1 != n:
            raise InvalidTreeError("node count does not match value count")
        hasher = leaf_hasher(self.leaf_encoding)
        for v, t in zip(self.values, self.tree_indices, strict=True):
            if not n // 2 <= t < n or tree[t] != hasher(v):
                raise InvalidTreeError(f"value at tree index {t} does not match its leaf")
        if len(set(self.tree_indices)) != len(self.tree_indices):
            raise InvalidTreeError("two values share a tree index")
        for i in range(n // 2 - 1, -1, -1) if n > 1 else ():
            if tree[i] != node_hash(tree[2 * i + 1], tree[2 * i + 2]):
                raise InvalidTreeError(f"node {i} is not the hash of its children")


def verify(
    root: bytes, leaf_encoding: Sequence[str], values: Sequence[Any], proof: Sequence[bytes]
) -> bool:
    """Verify a single proof against ``root`` (no tree needed)."""
    return process_proof(leaf_hasher(leaf_encoding)(values), proof) == root


def verify_multi_proof(root: bytes, leaf_encoding: Sequence[str], mp: MultiProof) -> bool:
    """Verify a multiproof against ``root``."""
    h = leaf_hasher(leaf_encoding)
    return process_multi_proof([h(v) for v in mp.leaves], mp.proof, mp.proof_flags) == root


def _json_codec(type_name: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(to JSON, from JSON) for one leaf field: uints as decimal strings, addresses EIP-55."""
    t = parse_type(type_name)
    if t.kind in ("uint", "int"):
        return str, _int_from_json
    if t.kind == "address":
        return to_checksum_address, parse_address
    if t.kind == "fixed_bytes":
        size = t.size
        return to_hex, lambda x: from_hex(x, size)
    if t.kind == "bool":
        return bool, _bool_from_json
    raise InvalidTreeError(f"unsupported leaf type {type_name}")


def _int_from_json(x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, str)):
        raise InvalidTreeError(f"integer expected, got {x!r:.40}")
    return int(x, 0) if isinstance(x, str) and x.startswith(("0x", "-0x")) else int(x)


def _bool_from_json(x: Any) -> bool:
    if not isinstance(x, bool):
        raise InvalidTreeError(f"bool expected, got {x!r:.40}")
    return x


__all__ = [
    "FORMAT",
    "MultiProof",
    "StandardMerkleTree",
    "build_nodes",
    "leaf_hasher",
    "node_hash",
    "process_multi_proof",
    "process_proof",
    "verify",
    "verify_multi_proof",
]
