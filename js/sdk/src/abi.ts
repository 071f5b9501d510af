/** The few contract functions a holder needs (QEVSettlement and the sUSDai vault, PROTOCOL 7). */
export const settlementAbi = [
  {
    type: "function",
    name: "auctionKey",
    stateMutability: "view",
    inputs: [{ name: "auctionId", type: "uint64" }],
    outputs: [
      { name: "publicKey", type: "bytes32" },
      { name: "commitment", type: "bytes32" },
      { name: "privateKey", type: "bytes32" },
      { name: "revealed", type: "bool" },
    ],
  },
  { type: "function", name: "receiptSigner", stateMutability: "view", inputs: [], outputs: [{ name: "", type: "address" }] },
  { type: "function", name: "vault", stateMutability: "view", inputs: [], outputs: [{ name: "", type: "address" }] },
  {
    type: "function",
    name: "nonce",
    stateMutability: "view",
    inputs: [
      { name: "auctionId", type: "uint64" },
      { name: "redemptionId", type: "uint256" },
    ],
    outputs: [{ name: "", type: "uint256" }],
  },
  {
    type: "function",
    name: "incrementNonce",
    stateMutability: "nonpayable",
    inputs: [
      { name: "auctionId", type: "uint64" },
      { name: "redemptionId", type: "uint256" },
    ],
    outputs: [{ name: "", type: "uint256" }],
  },
  {
    type: "function",
    name: "isClaimed",
    stateMutability: "view",
    inputs: [
      { name: "auctionId", type: "uint64" },
      { name: "redemptionId", type: "uint256" },
    ],
    outputs: [{ name: "", type: "bool" }],
  },
  {
    type: "function",
    name: "auction",
    stateMutability: "view",
    inputs: [{ name: "auctionId", type: "uint64" }],
    outputs: [
      { name: "allocationRoot", type: "bytes32" },
      { name: "bidBookRoot", type: "bytes32" },
      { name: "totalShares", type: "uint256" },
      { name: "totalBurnt", type: "uint256" },
      { name: "totalPayout", type: "uint256" },
      { name: "claimedShares", type: "uint256" },
      { name: "claimedPayout", type: "uint256" },
      { name: "feeShares", type: "uint256" },
      { name: "settledAt", type: "uint256" },
    ],
  },
  {
    type: "function",
    name: "claim",
    stateMutability: "nonpayable",
    inputs: [
      { name: "auctionId", type: "uint64" },
      { name: "redemptionId", type: "uint256" },
      { name: "controller", type: "address" },
      { name: "sharesFilled", type: "uint256" },
      { name: "sharesBurnt", type: "uint256" },
      { name: "payout", type: "uint256" },
      { name: "proof", type: "bytes32[]" },
    ],
    outputs: [],
  },
] as const;

export const vaultAbi = [
  {
    type: "function",
    name: "redemptionIds",
    stateMutability: "view",
    inputs: [{ name: "controller", type: "address" }],
    outputs: [{ name: "", type: "uint256[]" }],
  },
  {
    type: "function",
    name: "redemption",
    stateMutability: "view",
    inputs: [{ name: "redemptionId", type: "uint256" }],
    outputs: [
      {
        name: "",
        type: "tuple",
        components: [
          { name: "prev", type: "uint256" },
          { name: "next", type: "uint256" },
          { name: "pendingShares", type: "uint256" },
          { name: "redeemableShares", type: "uint256" },
          { name: "withdrawableAmount", type: "uint256" },
          { name: "controller", type: "address" },
          { name: "redemptionTimestamp", type: "uint64" },
        ],
      },
      { name: "", type: "uint256" },
    ],
  },
  {
    type: "function",
    name: "redemptionSharePrice",
    stateMutability: "view",
    inputs: [],
    outputs: [{ name: "", type: "uint256" }],
  },
] as const;
