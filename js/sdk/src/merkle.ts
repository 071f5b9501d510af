/** OpenZeppelin StandardMerkleTree leaves and proofs (PROTOCOL 6), and allocation leaves. */
import { type Address, type Hex, concat, encodeAbiParameters, getAddress, keccak256 } from "viem";

export const ALLOCATION_LEAF_TYPES = ["uint64", "uint256", "address", "uint256", "uint256", "uint256"] as const;
export const BID_BOOK_LEAF_TYPES = ["uint64", "uint256", "address", "bytes32"] as const;

/** `keccak256(keccak256(abi.encode(values...)))`. */
export function leafHash(types: readonly string[], values: readonly unknown[]): Hex {
  const params = types.map((type) => ({ type }));
  return keccak256(keccak256(encodeAbiParameters(params, values as unknown[])));
}

function hashPair(a: Hex, b: Hex): Hex {
  return BigInt(a) < BigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]));
}

/** Fold `proof` from `leaf` with the sorted-pair hash; true when it reaches `root`. */
export function verifyProof(root: Hex, leaf: Hex, proof: readonly Hex[]): boolean {
  let node = leaf;
  for (const sibling of proof) node = hashPair(node, sibling);
  return node.toLowerCase() === root.toLowerCase();
}

/** An allocation leaf as the service publishes it (4.7.4). */
export interface AllocationLeaf {
  auction_id: number;
  redemption_id: string;
  controller: Address;
  shares_filled: string;
  shares_burnt: string;
  payout: string;
}

export interface Allocation {
  auction_id: number;
  allocation_root: Hex;
  leaf: AllocationLeaf;
  proof: Hex[];
}

export function allocationLeafValues(leaf: AllocationLeaf): [bigint, bigint, Address, bigint, bigint, bigint] {
  return [
    BigInt(leaf.auction_id),
    BigInt(leaf.redemption_id),
    getAddress(leaf.controller),
    BigInt(leaf.shares_filled),
    BigInt(leaf.shares_burnt),
    BigInt(leaf.payout),
  ];
}

export function allocationLeafHash(leaf: AllocationLeaf): Hex {
  return leafHash(ALLOCATION_LEAF_TYPES, allocationLeafValues(leaf));
}
