// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IStakedUSDaiQueue} from "../interfaces/IStakedUSDaiQueue.sol";

/**
 * @title QueueReader
 * @notice Walks the vault's FIFO queue from `start` along `next` in one `eth_call` (never deployed: see
 *         RequestReader), through `redemption(id)`, which every vault has.
 *
 * Output words: `n` (requests read: at most `max`, fewer at the tail or when less than `reserve` gas was left),
 * the id to continue from (0 at the tail), then per request read: id, `controller << 64 |
 * redemptionTimestamp`, pendingShares. `max` is at most 255 (EIP-170 bounds what a creation returns).
 */
contract QueueReader {
    uint256 internal constant DEPOSIT_PER_WORD = 32 * 200; // the code-deposit gas of each word returned

    constructor(IStakedUSDaiQueue vault, uint256 start, uint256 max, uint256 reserve) {
        uint256[] memory out = new uint256[](2 + 3 * max);
        uint256 n;
        uint256 id = start;
        for (; id != 0 && n < max && gasleft() > reserve + (5 + 3 * n) * DEPOSIT_PER_WORD; ++n) {
            (IStakedUSDaiQueue.Redemption memory r,) = vault.redemption(id);
            uint256 k = 2 + 3 * n;
            out[k] = id;
            out[k + 1] = (uint256(uint160(r.controller)) << 64) | r.redemptionTimestamp;
            out[k + 2] = r.pendingShares;
            id = r.next;
        }
        out[0] = n;
        out[1] = id;
        assembly {
            return(add(out, 32), mul(add(2, mul(n, 3)), 32))
        }
    }
}
