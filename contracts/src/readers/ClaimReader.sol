// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IClaims {
    function isClaimed(uint64 auctionId, uint256 redemptionId) external view returns (bool);
}

/**
 * @title ClaimReader
 * @notice `isClaimed(T, id)` for many leaves in one `eth_call` (never deployed: see RequestReader).
 *
 * Output words: `n` (ids read before less than `reserve` gas was left), then a bitmap: bit `i % 256` of word `1 + i / 256`
 * is set when the i-th id is claimed.
 */
contract ClaimReader {
    uint256 internal constant DEPOSIT_PER_WORD = 32 * 200; // the code-deposit gas of each word returned

    constructor(IClaims settlement, uint64 auctionId, uint256 reserve, uint256[] memory ids) {
        uint256[] memory out = new uint256[](1 + (ids.length + 255) / 256);
        uint256 n;
        for (; n < ids.length && gasleft() > reserve + (2 + n / 256) * DEPOSIT_PER_WORD; ++n) {
            if (settlement.isClaimed(auctionId, ids[n])) out[1 + n / 256] |= 1 << (n % 256);
        }
        out[0] = n;
        assembly {
            return(add(out, 32), mul(add(1, div(add(n, 255), 256)), 32))
        }
    }
}
