// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {IQEVRegistry} from "./interfaces/IQEVRegistry.sol";
import {IStakedUSDaiQueue} from "./interfaces/IStakedUSDaiQueue.sol";

/**
 * @title QEVRegistry
 * @notice `registry` settlement target: a model of USD.AI's draft QEV registry (branch `qev`, 6d4044f0),
 *         written from its public interface and from the behaviour observed on anvil (docs/PROTOCOL.md 11.3),
 *         so that the keeper is tested against what it will meet. After close T (= auctionId) the auction admin
 *         posts the plain signed bids sorted by basisPoint desc then redemptionId asc (`postBids`, in batches),
 *         settles (`settleAuction(T)`), and the vault's `reorderRedemptions(T, count)` moves the bidders to the
 *         front of the queue, burning their discount.
 *
 * EIP-712 domain ("QEVRegistry", "1.0", chainId, this); bids are
 * `Bid(uint64 auctionId,uint256 redemptionId,uint256 redemptionShares,uint256 basisPoint,uint256 nonce)` signed by
 * the request's controller.
 *
 * Deployment, as the draft: constructor(vault, adminFeeRate, adminFeeRecipient) fixes the fee settings (there is
 * no setter), then `initialize()` (once) grants DEFAULT_ADMIN_ROLE to its caller and QUEUE_PROCESSOR_ADMIN_ROLE
 * to the vault. The draft sits behind a proxy; this model is deployed directly, so `initialize()` runs on the
 * contract itself. Roles: AUCTION_ADMIN_ROLE (postBids, settleAuction), QUEUE_PROCESSOR_ADMIN_ROLE
 * (processQueue). Role ids are keccak256 of their names (not exposed as getters, as in the draft).
 *
 * Draft behaviour reproduced here on purpose (PROTOCOL 11.3/11.4), marked "DRAFT" below: bids for requests with
 * nothing pending are skipped without error and not stored; one bid maturing after T reverts the whole batch;
 * `settleAuction` does not check the reorder of the previous auction; `processQueue` stores whatever checkpoint
 * the vault gives it, including a processed count past `bidCount` (hazard 1).
 */
contract QEVRegistry is Initializable, ReentrancyGuardTransient, AccessControl, EIP712, IQEVRegistry {
    /*------------------------------------------------------------------------*/
    /* Constants */
    /*------------------------------------------------------------------------*/

    bytes32 public constant BID_TYPEHASH = keccak256(
        "Bid(uint64 auctionId,uint256 redemptionId,uint256 redemptionShares,uint256 basisPoint,uint256 nonce)"
    );
    bytes32 internal constant AUCTION_ADMIN_ROLE = keccak256("AUCTION_ADMIN_ROLE");
    bytes32 internal constant QUEUE_PROCESSOR_ADMIN_ROLE = keccak256("QUEUE_PROCESSOR_ADMIN_ROLE");
    uint256 internal constant MIN_BASIS_POINT = 10;
    uint256 internal constant MAX_BASIS_POINT = 10_000;

    /*------------------------------------------------------------------------*/
    /* State */
    /*------------------------------------------------------------------------*/

    struct AuctionState {
        uint256 bidCount;
        uint256 processedBidCount;
        uint256 processedRedemptionId;
        mapping(uint256 => uint256) nonces; // redemptionId => nonce
        mapping(uint256 => uint256) indexOf; // redemptionId => 1-based bid index (0: not posted)
        mapping(uint256 => Bid) posted; // 1-based bid index => bid
    }

    IStakedUSDaiQueue internal immutable _vault;
    uint256 internal immutable _adminFeeRate;
    address internal immutable _adminFeeRecipient;

    uint64 internal _previousAuctionId;
    mapping(uint64 => AuctionState) internal _auctions;

    /*------------------------------------------------------------------------*/
    /* Deployment */
    /*------------------------------------------------------------------------*/

    /**
     * @param vault_ Redemption-queue vault (its `reorderRedemptions` calls `processQueue`)
     * @param adminFeeRate_ Admin fee in basis points of the burnt shares (the draft uses 100)
     * @param adminFeeRecipient_ Receives the admin-fee shares the vault mints
     */
    constructor(address vault_, uint256 adminFeeRate_, address adminFeeRecipient_) EIP712("QEVRegistry", "1.0") {
        _vault = IStakedUSDaiQueue(vault_);
        _adminFeeRate = adminFeeRate_;
        _adminFeeRecipient = adminFeeRecipient_;
    }

    /// @notice Grant DEFAULT_ADMIN_ROLE to the caller and QUEUE_PROCESSOR_ADMIN_ROLE to the vault (once).
    function initialize() external initializer {
        _grantRole(DEFAULT_ADMIN_ROLE, msg.sender);
        _grantRole(QUEUE_PROCESSOR_ADMIN_ROLE, address(_vault));
    }

    /*------------------------------------------------------------------------*/
    /* Modifiers */
    /*------------------------------------------------------------------------*/

    /// @dev Posting is open strictly after T, for an auction later than the last settled one, and only once the
    ///      last settled auction is fully reordered.
    modifier openForPosting(uint64 auctionId) {
        uint64 previous = _previousAuctionId;
        if (auctionId >= block.timestamp || auctionId <= previous) revert InvalidAuctionId(auctionId);
        AuctionState storage p = _auctions[previous];
        if (p.bidCount != p.processedBidCount) revert InvalidAuctionStatus();
        _;
    }

    /*------------------------------------------------------------------------*/
    /* Getters */
    /*------------------------------------------------------------------------*/

    function IMPLEMENTATION_VERSION() external pure returns (string memory) {
        return "1.0";
    }

    function DOMAIN_VERSION() external pure returns (string memory) {
        return "1.0";
    }

    /// @inheritdoc IQEVRegistry
    function nextAuctionId() external view returns (uint64) {
        return _vault.redemptionTimestamp();
    }

    /// @inheritdoc IQEVRegistry
    function previousAuctionId() external view returns (uint64) {
        return _previousAuctionId;
    }

    /// @inheritdoc IQEVRegistry
    function nonce(uint64 auctionId, uint256 redemptionId_) external view returns (uint256) {
        return _auctions[auctionId].nonces[redemptionId_];
    }

    /// @inheritdoc IQEVRegistry
    function auction(uint64 auctionId)
        external
        view
        returns (uint256 bidCount, uint256 processedBidCount, uint256 processedRedemptionId)
    {
        AuctionState storage a = _auctions[auctionId];
        return (a.bidCount, a.processedBidCount, a.processedRedemptionId);
    }

    /// @inheritdoc IQEVRegistry
    function redemptionId(uint64 auctionId, uint256 bidIndex) external view returns (uint256) {
        if (bidIndex == 0) revert InvalidBidIndex();
        return _auctions[auctionId].posted[bidIndex].redemptionId;
    }

    /// @inheritdoc IQEVRegistry
    function bid(uint64 auctionId, uint256 redemptionId_) external view returns (Bid memory) {
        AuctionState storage a = _auctions[auctionId];
        uint256 index = a.indexOf[redemptionId_];
        if (index == 0) revert InvalidBidIndex();
        return a.posted[index];
    }

    /// @inheritdoc IQEVRegistry
    /// @dev DRAFT: `bidCount - offset` underflows (panic 0x11) when offset > bidCount, which is what makes every
    ///      reorder after an over-long one fail (hazard 1).
    function bids(uint64 auctionId, uint256 offset, uint256 count) external view returns (Bid[] memory out) {
        AuctionState storage a = _auctions[auctionId];
        count = Math.min(count, a.bidCount - offset);
        out = new Bid[](count);
        for (uint256 i; i < count; i++) {
            out[i] = a.posted[offset + 1 + i];
        }
    }

    /// @inheritdoc IQEVRegistry
    function adminFeeRate() external view returns (uint256) {
        return _adminFeeRate;
    }

    /// @inheritdoc IQEVRegistry
    function adminFeeRecipient() external view returns (address) {
        return _adminFeeRecipient;
    }

    /// @notice (model only) EIP-712 digest a controller signs for `bid_`, for cross-checks in tests.
    function bidDigest(Bid calldata bid_) public view returns (bytes32) {
        return _hashTypedDataV4(_structHash(bid_));
    }

    /// @notice (model only) The EIP-712 domain separator.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /*------------------------------------------------------------------------*/
    /* Public API */
    /*------------------------------------------------------------------------*/

    /// @notice Cancel the controller's bids for (auctionId, redemptionId): allowed up to and including second T.
    function incrementNonce(uint64 auctionId, uint256 redemptionId_) external nonReentrant returns (uint256) {
        if (block.timestamp > auctionId) revert InvalidTimestamp();
        (IStakedUSDaiQueue.Redemption memory r,) = _vault.redemption(redemptionId_);
        if (r.controller != msg.sender) revert InvalidCaller();
        return ++_auctions[auctionId].nonces[redemptionId_];
    }

    /*------------------------------------------------------------------------*/
    /* Auction admin API */
    /*------------------------------------------------------------------------*/

    /**
     * @notice Post signed bids after close, sorted by basisPoint desc then redemptionId asc, continuing the order
     *         of the bids already stored. Checks per bid, in this order: signer is the request's controller, bid for
     *         this auction, request matured by T, basis points not above the previous bid's and in 10..10000,
     *         redemption ids ascending among equal basis points, shares > 0, not already posted, current nonce.
     * @dev DRAFT: a bid whose request has nothing pending passes the checks and is then skipped without error
     *      (not stored, does not take part in the order checks).
     */
    function postBids(uint64 auctionId, SignedBid[] calldata signedBids)
        external
        nonReentrant
        openForPosting(auctionId)
        onlyRole(AUCTION_ADMIN_ROLE)
    {
        AuctionState storage a = _auctions[auctionId];
        uint256 count = a.bidCount;
        uint256 lastBp = type(uint256).max;
        uint256 lastId;
        if (count != 0) {
            Bid storage last = a.posted[count];
            lastBp = last.basisPoint;
            lastId = last.redemptionId;
        }
        for (uint256 i; i < signedBids.length; i++) {
            Bid calldata b = signedBids[i].bid;
            uint256 pendingShares = _check(auctionId, a, signedBids[i], lastBp, lastId, i);
            if (pendingShares == 0) continue; // DRAFT: skipped silently
            a.indexOf[b.redemptionId] = ++count;
            a.posted[count] = b;
            lastBp = b.basisPoint;
            lastId = b.redemptionId;
        }
        a.bidCount = count;
    }

    /// @notice Close the bid list of `auctionId` so the vault can reorder; needs at least one stored bid.
    function settleAuction(uint64 auctionId) external nonReentrant onlyRole(AUCTION_ADMIN_ROLE) {
        if (_auctions[auctionId].bidCount == 0) revert InvalidAuctionStatus();
        if (auctionId <= _previousAuctionId) revert InvalidAuctionStatus();
        _previousAuctionId = auctionId;
        emit AuctionSettled(auctionId);
    }

    /*------------------------------------------------------------------------*/
    /* Queue processor API */
    /*------------------------------------------------------------------------*/

    /// @notice Reorder checkpoint, written by the vault's `reorderRedemptions`.
    /// @dev DRAFT: stored as given, unchecked (a processed count past bidCount is accepted: hazard 1).
    function processQueue(uint64 auctionId, uint256 processedBidCount, uint256 processedRedemptionId)
        external
        nonReentrant
        onlyRole(QUEUE_PROCESSOR_ADMIN_ROLE)
    {
        AuctionState storage a = _auctions[auctionId];
        a.processedBidCount = processedBidCount;
        a.processedRedemptionId = processedRedemptionId;
        emit AuctionCheckpointSet(auctionId, processedBidCount, processedRedemptionId);
    }

    /*------------------------------------------------------------------------*/
    /* Internal */
    /*------------------------------------------------------------------------*/

    function _structHash(Bid calldata b) internal pure returns (bytes32) {
        return keccak256(abi.encode(BID_TYPEHASH, b.auctionId, b.redemptionId, b.redemptionShares, b.basisPoint, b.nonce));
    }

    /// @dev One bid's checks (see postBids); returns the request's pending shares (0: skip the bid).
    function _check(
        uint64 auctionId,
        AuctionState storage a,
        SignedBid calldata sb,
        uint256 lastBp,
        uint256 lastId,
        uint256 i
    ) internal view returns (uint256) {
        Bid calldata b = sb.bid;
        (IStakedUSDaiQueue.Redemption memory r,) = _vault.redemption(b.redemptionId);
        address signer = ECDSA.recover(_hashTypedDataV4(_structHash(b)), sb.signature);
        if (signer != r.controller) revert InvalidSigner(i);
        if (b.auctionId != auctionId) revert InvalidAuctionId(i);
        if (b.auctionId < r.redemptionTimestamp) revert InvalidAuctionId(i); // DRAFT: the whole batch reverts
        if (b.basisPoint > lastBp) revert InvalidBasisPoint(i);
        if (b.basisPoint < MIN_BASIS_POINT || b.basisPoint > MAX_BASIS_POINT) revert InvalidBasisPoint(i);
        if (b.basisPoint == lastBp && b.redemptionId < lastId) revert InvalidRedemptionOrder(b.redemptionId);
        if (b.redemptionShares == 0) revert InvalidRedemptionShares(i);
        if (a.indexOf[b.redemptionId] != 0) revert DuplicateBid(i);
        if (a.nonces[b.redemptionId] != b.nonce) revert InvalidNonce(i);
        return r.pendingShares;
    }
}
