// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {IQEVRegistry} from "./interfaces/IQEVRegistry.sol";
import {IStakedUSDaiQueue} from "./interfaces/IStakedUSDaiQueue.sol";

/**
 * @title QEVRegistry
 * @notice `registry` settlement target: a model of USD.AI's draft QEV registry (queue-reorder auction),
 *         written from its public interface. After close T (= auctionId) the keeper posts the plain signed
 *         bids sorted by basisPoint desc then redemptionId asc (`postBids`, in batches), settles
 *         (`settleAuction(T)`), and the vault's `reorderRedemptions(T, count)` moves the bidders to the front of
 *         the queue, burning their discount.
 *
 * EIP-712 domain ("QEVRegistry", "1.0", chainId, this); bids are
 * `Bid(uint64 auctionId,uint256 redemptionId,uint256 redemptionShares,uint256 basisPoint,uint256 nonce)` signed by
 * the request's controller (plain ECDSA, 65-byte r||s||v).
 *
 * Roles: DEFAULT_ADMIN_ROLE (setAdminFee), KEEPER_ROLE (postBids, settleAuction). `processQueue` is callable
 * by the vault only.
 */
contract QEVRegistry is AccessControl, EIP712, IQEVRegistry {
    bytes32 public constant KEEPER_ROLE = keccak256("KEEPER_ROLE");
    bytes32 public constant BID_TYPEHASH = keccak256(
        "Bid(uint64 auctionId,uint256 redemptionId,uint256 redemptionShares,uint256 basisPoint,uint256 nonce)"
    );
    uint256 public constant MIN_BASIS_POINT = 10;
    uint256 public constant MAX_BASIS_POINT = 10_000;
    uint256 public constant MAX_ADMIN_FEE_RATE = 10_000;

    struct Auction {
        uint256 bidCount;
        uint256 processedBidCount;
        uint256 processedRedemptionId;
        bool settled;
        mapping(uint256 => uint256) nonces;
        mapping(uint256 => uint256) bidIndices; // redemptionId => index + 1
        mapping(uint256 => Bid) bid; // index => bid
    }

    IStakedUSDaiQueue public immutable vault;
    uint64 public previousAuctionId;
    uint256 public adminFeeRate;
    address public adminFeeRecipient;
    mapping(uint64 => Auction) internal _auctions;

    /**
     * @param vault_ Redemption-queue vault (its `reorderRedemptions` calls `processQueue`)
     * @param admin Receives DEFAULT_ADMIN_ROLE and KEEPER_ROLE
     * @param adminFeeRate_ Admin fee in basis points of the burnt shares (the draft uses 100)
     * @param adminFeeRecipient_ Fee recipient (may be 0 when the rate is 0)
     */
    constructor(address vault_, address admin, uint256 adminFeeRate_, address adminFeeRecipient_)
        EIP712("QEVRegistry", "1.0")
    {
        if (vault_ == address(0) || admin == address(0)) revert InvalidAddress();
        vault = IStakedUSDaiQueue(vault_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(KEEPER_ROLE, admin);
        _setAdminFee(adminFeeRate_, adminFeeRecipient_);
    }

    /*------------------------------------------------------------------------*/
    /* Getters */
    /*------------------------------------------------------------------------*/

    /// @notice The auction currently open for bids: the end of the current redemption window.
    function nextAuctionId() external view returns (uint64) {
        return vault.redemptionTimestamp();
    }

    function nonce(uint64 auctionId, uint256 redemptionId_) external view returns (uint256) {
        return _auctions[auctionId].nonces[redemptionId_];
    }

    function auction(uint64 auctionId)
        external
        view
        returns (uint256 bidCount, uint256 processedBidCount, uint256 processedRedemptionId)
    {
        Auction storage a = _auctions[auctionId];
        return (a.bidCount, a.processedBidCount, a.processedRedemptionId);
    }

    function isSettled(uint64 auctionId) external view returns (bool) {
        return _auctions[auctionId].settled;
    }

    function redemptionId(uint64 auctionId, uint256 bidIndex) external view returns (uint256) {
        return _auctions[auctionId].bid[bidIndex].redemptionId;
    }

    function bid(uint64 auctionId, uint256 redemptionId_) external view returns (Bid memory) {
        Auction storage a = _auctions[auctionId];
        uint256 idx = a.bidIndices[redemptionId_];
        if (idx == 0) return Bid(0, 0, 0, 0, 0);
        return a.bid[idx - 1];
    }

    function bids(uint64 auctionId, uint256 offset, uint256 count) external view returns (Bid[] memory out) {
        Auction storage a = _auctions[auctionId];
        if (offset >= a.bidCount) return new Bid[](0);
        if (count > a.bidCount - offset) count = a.bidCount - offset;
        out = new Bid[](count);
        for (uint256 i; i < count; i++) {
            out[i] = a.bid[offset + i];
        }
    }

    /// @notice EIP-712 digest a controller signs for `bid_`.
    function bidDigest(Bid calldata bid_) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    BID_TYPEHASH, bid_.auctionId, bid_.redemptionId, bid_.redemptionShares, bid_.basisPoint, bid_.nonce
                )
            )
        );
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /*------------------------------------------------------------------------*/
    /* Public API */
    /*------------------------------------------------------------------------*/

    /// @notice Cancel the controller's bids for (auctionId, redemptionId) on-chain; only before T.
    function incrementNonce(uint64 auctionId, uint256 redemptionId_) external returns (uint256) {
        if (block.timestamp >= auctionId) revert InvalidTimestamp();
        (address controller,,) = vault.qevRedemptionInfo(redemptionId_);
        if (controller != msg.sender) revert InvalidCaller();
        uint256 n = ++_auctions[auctionId].nonces[redemptionId_];
        emit NonceIncremented(auctionId, redemptionId_, n);
        return n;
    }

    /*------------------------------------------------------------------------*/
    /* Keeper API */
    /*------------------------------------------------------------------------*/

    /**
     * @notice Post signed bids after close, sorted by basisPoint desc then redemptionId asc, continuing the
     *         order of the bids already posted. Each bid must be for `auctionId`, have basisPoint in 10..10000,
     *         redemptionShares > 0, the current nonce, and be signed by the request's controller.
     */
    function postBids(uint64 auctionId, SignedBid[] calldata signedBids) external onlyRole(KEEPER_ROLE) {
        if (block.timestamp < auctionId) revert InvalidTimestamp();
        Auction storage a = _auctions[auctionId];
        if (a.settled) revert InvalidAuctionStatus();

        uint256 count = a.bidCount;
        uint256 prevBp;
        uint256 prevId;
        if (count > 0) {
            Bid storage last = a.bid[count - 1];
            prevBp = last.basisPoint;
            prevId = last.redemptionId;
        }
        for (uint256 i; i < signedBids.length; i++) {
            Bid calldata b = signedBids[i].bid;
            if (b.auctionId != auctionId) revert InvalidAuctionId(i);
            if (b.basisPoint < MIN_BASIS_POINT || b.basisPoint > MAX_BASIS_POINT) revert InvalidBasisPoint(i);
            if (b.redemptionShares == 0) revert InvalidRedemptionShares(i);
            if (a.bidIndices[b.redemptionId] != 0) revert DuplicateBid(i);
            if (count > 0 && !(b.basisPoint < prevBp || (b.basisPoint == prevBp && b.redemptionId > prevId))) {
                revert InvalidRedemptionOrder(i);
            }
            if (b.nonce != a.nonces[b.redemptionId]) revert InvalidNonce(i);
            (address controller,,) = vault.qevRedemptionInfo(b.redemptionId);
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(bidDigest(b), signedBids[i].signature);
            if (err != ECDSA.RecoverError.NoError || signer != controller || signer == address(0)) {
                revert InvalidSigner(i);
            }

            a.bid[count] = b;
            a.bidIndices[b.redemptionId] = ++count;
            prevBp = b.basisPoint;
            prevId = b.redemptionId;
        }
        a.bidCount = count;
        emit BidsPosted(auctionId, signedBids.length, count);
    }

    /// @notice Close the bid list of `auctionId` (after T, once); the vault may then reorder.
    function settleAuction(uint64 auctionId) external onlyRole(KEEPER_ROLE) {
        if (block.timestamp < auctionId) revert InvalidTimestamp();
        Auction storage a = _auctions[auctionId];
        if (a.settled) revert InvalidAuctionStatus();
        a.settled = true;
        if (auctionId > previousAuctionId) previousAuctionId = auctionId;
        emit AuctionSettled(auctionId);
    }

    /// @notice Reorder checkpoint, written by the vault's `reorderRedemptions`.
    function processQueue(uint64 auctionId, uint256 processedBidCount, uint256 processedRedemptionId)
        external
    {
        if (msg.sender != address(vault)) revert InvalidCaller();
        Auction storage a = _auctions[auctionId];
        if (!a.settled || processedBidCount > a.bidCount) revert InvalidAuctionStatus();
        a.processedBidCount = processedBidCount;
        a.processedRedemptionId = processedRedemptionId;
        emit AuctionCheckpointSet(auctionId, processedBidCount, processedRedemptionId);
    }

    /*------------------------------------------------------------------------*/
    /* Admin API */
    /*------------------------------------------------------------------------*/

    function setAdminFee(uint256 adminFeeRate_, address adminFeeRecipient_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setAdminFee(adminFeeRate_, adminFeeRecipient_);
    }

    function _setAdminFee(uint256 adminFeeRate_, address adminFeeRecipient_) internal {
        if (adminFeeRate_ > MAX_ADMIN_FEE_RATE) revert InvalidFeeRate();
        if (adminFeeRate_ > 0 && adminFeeRecipient_ == address(0)) revert InvalidAddress();
        adminFeeRate = adminFeeRate_;
        adminFeeRecipient = adminFeeRecipient_;
        emit AdminFeeSet(adminFeeRate_, adminFeeRecipient_);
    }
}
