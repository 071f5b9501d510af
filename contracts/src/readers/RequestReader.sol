// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IStakedUSDaiQueue} from "../interfaces/IStakedUSDaiQueue.sol";

interface IAuctionNonces {
    function nonce(uint64 auctionId, uint256 redemptionId) external view returns (uint256);
}

/**
 * @title RequestReader
 * @notice Reads many redemption requests and their auction nonces at one block in one `eth_call`.
 *
 * Never deployed: the keeper sends its creation code with the arguments as an `eth_call` without a `to`, the
 * constructor does the reads and returns raw 32-byte words instead of runtime code. Works on any chain and any
 * vault, with no contract to trust at a fixed address (docs/PROTOCOL.md, "Batched reads").
 *
 * Output words: `n` (ids read: the reader stops early when less than `reserve` gas is left beside the code-deposit
 * gas of what it returns), then per id read,
 * in order: `controller << 64 | redemptionTimestamp`, pendingShares, nonce. At most 255 ids per call: a creation
 * returns at most 24,576 bytes (EIP-170). `plain` reads `redemption(id)` (every vault
 * has it) instead of the model's O(1) `qevRedemptionInfo(id)`; `nonces` may be the zero address (nonce 0).
 */
contract RequestReader {
    uint256 internal constant DEPOSIT_PER_WORD = 32 * 200; // the code-deposit gas of each word returned

    constructor(
        IStakedUSDaiQueue vault,
        IAuctionNonces nonces,
        uint64 auctionId,
        bool plain,
        uint256 reserve,
        uint256[] memory ids
    ) {
        uint256[] memory out = new uint256[](1 + 3 * ids.length);
        uint256 n;
        for (; n < ids.length && gasleft() > reserve + (4 + 3 * n) * DEPOSIT_PER_WORD; ++n) {
            uint256 id = ids[n];
            address controller;
            uint64 timestamp;
            uint256 pending;
            if (plain) {
                (IStakedUSDaiQueue.Redemption memory r,) = vault.redemption(id);
                (controller, timestamp, pending) = (r.controller, r.redemptionTimestamp, r.pendingShares);
            } else {
                (controller, timestamp, pending) = vault.qevRedemptionInfo(id);
            }
            uint256 k = 1 + 3 * n;
            out[k] = (uint256(uint160(controller)) << 64) | timestamp;
            out[k + 1] = pending;
            out[k + 2] = address(nonces) == address(0) ? 0 : nonces.nonce(auctionId, id);
        }
        out[0] = n;
        assembly {
            return(add(out, 32), mul(add(1, mul(n, 3)), 32))
        }
    }
}
