// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title IQEVRegistry
 * @notice Public interface of USD.AI's draft QEV registry (metastreet-usdai-contracts, branch `qev`, 6d4044f0):
 *         the `registry` settlement target (docs/PROTOCOL.md section 11). Same function, struct, error and event
 *         signatures as the draft, so the keeper drives this model and the draft alike.
 *
 * Bid indices are 1-based: the first posted bid of an auction has index 1 (`redemptionId(T, 1)`), and
 * `bids(T, offset, count)` returns the bids with indices offset+1 .. offset+count.
 */
interface IQEVRegistry {
    /*------------------------------------------------------------------------*/
    /* Structures */
    /*------------------------------------------------------------------------*/

    /// @notice Inner bid, EIP-712 `Bid(uint64 auctionId,uint256 redemptionId,uint256 redemptionShares,uint256 basisPoint,uint256 nonce)`.
    struct Bid {
        uint64 auctionId;
        uint256 redemptionId;
        uint256 redemptionShares;
        uint256 basisPoint;
        uint256 nonce;
    }

    /// @notice Bid with the controller's 65-byte ECDSA signature (r || s || v).
    struct SignedBid {
        Bid bid;
        bytes signature;
    }

    /*------------------------------------------------------------------------*/
    /* Errors (the draft's; `id` is the index of the bid in the posted batch unless noted) */
    /*------------------------------------------------------------------------*/

    /// @notice Previous auction not fully reordered (postBids), or no bids / already settled (settleAuction).
    error InvalidAuctionStatus();
    /// @notice Equal basis points with a redemption id below the previous one; `id` is that redemption id.
    error InvalidRedemptionOrder(uint256 id);
    /// @notice `bid()` of a redemption without a posted bid, or `redemptionId()` of index 0.
    error InvalidBidIndex();
    /// @notice `incrementNonce` by someone other than the request's controller.
    error InvalidCaller();
    /// @notice `incrementNonce` after the auction's close.
    error InvalidTimestamp();
    /// @notice postBids: `id` = the auction id when the auction is not open for posting (not yet past T, or
    ///         at or before the last settled auction); otherwise the index of a bid for another auction or for a
    ///         request maturing after the auction.
    error InvalidAuctionId(uint256 id);
    error InvalidSigner(uint256 id);
    error InvalidNonce(uint256 id);
    error InvalidRedemptionShares(uint256 id);
    /// @notice Basis points out of 10..10000, or above the previous bid's (bids go in descending order).
    error InvalidBasisPoint(uint256 id);
    error DuplicateBid(uint256 id);

    /*------------------------------------------------------------------------*/
    /* Events */
    /*------------------------------------------------------------------------*/

    event AuctionSettled(uint64 auctionId);
    event AuctionCheckpointSet(uint64 auctionId, uint256 processedBidCount, uint256 processedRedemptionId);

    /*------------------------------------------------------------------------*/
    /* Getters */
    /*------------------------------------------------------------------------*/

    /// @notice The auction open for bids now: the vault's `redemptionTimestamp()`.
    function nextAuctionId() external view returns (uint64);
    /// @notice The last settled auction (0 before the first).
    function previousAuctionId() external view returns (uint64);
    function nonce(uint64 auctionId, uint256 redemptionId) external view returns (uint256);
    function auction(uint64 auctionId)
        external
        view
        returns (uint256 bidCount, uint256 processedBidCount, uint256 processedRedemptionId);
    /// @notice Redemption id of posted bid `bidIndex` (1-based; 0 reverts, past the end gives 0).
    function redemptionId(uint64 auctionId, uint256 bidIndex) external view returns (uint256);
    /// @notice The posted bid for `redemptionId` (reverts InvalidBidIndex if none was stored).
    function bid(uint64 auctionId, uint256 redemptionId) external view returns (Bid memory);
    /// @notice Posted bids offset+1 .. offset+count (count clamped to the bids there are).
    function bids(uint64 auctionId, uint256 offset, uint256 count) external view returns (Bid[] memory);
    function adminFeeRate() external view returns (uint256);
    function adminFeeRecipient() external view returns (address);

    /*------------------------------------------------------------------------*/
    /* Public API */
    /*------------------------------------------------------------------------*/

    function incrementNonce(uint64 auctionId, uint256 redemptionId) external returns (uint256);

    /*------------------------------------------------------------------------*/
    /* Permissioned API */
    /*------------------------------------------------------------------------*/

    /// @notice AUCTION_ADMIN_ROLE.
    function postBids(uint64 auctionId, SignedBid[] calldata signedBids) external;
    /// @notice AUCTION_ADMIN_ROLE.
    function settleAuction(uint64 auctionId) external;
    /// @notice QUEUE_PROCESSOR_ADMIN_ROLE (the vault).
    function processQueue(uint64 auctionId, uint256 processedBidCount, uint256 processedRedemptionId) external;
}
