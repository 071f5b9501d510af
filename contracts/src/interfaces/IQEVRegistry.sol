// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title IQEVRegistry
 * @notice Interface of the `registry` settlement target: a model of USD.AI's draft QEV registry
 *         (queue-reorder auction), written from its public interface.
 */
interface IQEVRegistry {
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

    error InvalidAuctionStatus();
    error InvalidRedemptionOrder(uint256 id);
    error InvalidCaller();
    error InvalidTimestamp();
    error InvalidAuctionId(uint256 id);
    error InvalidSigner(uint256 id);
    error InvalidNonce(uint256 id);
    error InvalidRedemptionShares(uint256 id);
    error InvalidBasisPoint(uint256 id);
    error DuplicateBid(uint256 id);
    error InvalidAddress();
    error InvalidFeeRate();

    event BidsPosted(uint64 indexed auctionId, uint256 count, uint256 bidCount);
    event AuctionSettled(uint64 auctionId);
    event AuctionCheckpointSet(uint64 auctionId, uint256 processedBidCount, uint256 processedRedemptionId);
    event NonceIncremented(uint64 indexed auctionId, uint256 indexed redemptionId, uint256 nonce);
    event AdminFeeSet(uint256 adminFeeRate, address adminFeeRecipient);

    function nextAuctionId() external view returns (uint64);
    function previousAuctionId() external view returns (uint64);
    function nonce(uint64 auctionId, uint256 redemptionId) external view returns (uint256);
    function auction(uint64 auctionId)
        external
        view
        returns (uint256 bidCount, uint256 processedBidCount, uint256 processedRedemptionId);
    function isSettled(uint64 auctionId) external view returns (bool);
    function redemptionId(uint64 auctionId, uint256 bidIndex) external view returns (uint256);
    function bid(uint64 auctionId, uint256 redemptionId) external view returns (Bid memory);
    function bids(uint64 auctionId, uint256 offset, uint256 count) external view returns (Bid[] memory);
    function adminFeeRate() external view returns (uint256);
    function adminFeeRecipient() external view returns (address);

    function incrementNonce(uint64 auctionId, uint256 redemptionId) external returns (uint256);
    function postBids(uint64 auctionId, SignedBid[] calldata signedBids) external;
    function settleAuction(uint64 auctionId) external;
    function processQueue(uint64 auctionId, uint256 processedBidCount, uint256 processedRedemptionId) external;
}
