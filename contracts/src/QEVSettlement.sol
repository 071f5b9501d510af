// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {IStakedUSDaiQueue} from "./interfaces/IStakedUSDaiQueue.sol";

/**
 * @title QEVSettlement
 * @notice `merkle` settlement target of the sealed-bid QEV auction (DESIGN sections 2, 5, 6, 7).
 *
 * Auction ids are window boundaries T = genesis + k * 30 days of the vault. Per auction:
 *  1. `commitAuctionKey(T, publicKey, commitment)` (KEEPER_ROLE, before T): the X25519 public key bidders
 *     seal to, and `commitment = keccak256(abi.encodePacked(privateKey))` (keccak of the raw 32-byte key).
 *  2. Until T a controller can cancel its sealed bids on-chain with `incrementNonce(T, redemptionId)`.
 *  3. `settleAuction(T, allocationRoot, bidBookRoot, totalShares, totalBurnt, totalPayout)` (KEEPER_ROLE, at or
 *     after T, once): locks `totalShares` of the vault's pending shares, moves `totalPayout` USDai of the vault's
 *     free liquidity into this contract's escrow (reverts if there is not enough), and mints
 *     mulDiv(totalBurnt, adminFeeBps, 10000) fee shares.
 *  4. `claim` / `claimMultiple` (anyone; funds always go to the leaf's controller): each allocation leaf once.
 *     The leaf's `sharesFilled` leave the request's pending shares (its `sharesBurnt` part is given up) and
 *     `payout` USDai is paid to the controller. Claims never exceed the settled totals.
 *  5. `revealAuctionKey(T, privateKey)` (anyone, after settlement): checked against the commitment.
 *
 * Allocation leaf (OpenZeppelin StandardMerkleTree, "standard-v1"):
 *   keccak256(bytes.concat(keccak256(abi.encode(uint64 auctionId, uint256 redemptionId, address controller,
 *   uint256 sharesFilled, uint256 sharesBurnt, uint256 payout)))).
 *
 * EIP-712 domain ("QEVSettlement", "1", chainId, this) for the inner `Bid`, the `SealedBid` envelope and
 * `CancelBid` (the contract only exposes the digests; signatures are checked off-chain by the service/keeper).
 *
 * Roles: DEFAULT_ADMIN_ROLE (setAdminFee, setReceiptSigner, role admin), KEEPER_ROLE (commitAuctionKey,
 * settleAuction).
 *
 * `receiptSigner` is the address the off-chain service signs bid receipts with; clients pin it from here
 * (0 until the admin registers it). The contract itself never checks receipts.
 * The vault must grant this contract its QEV_SETTLEMENT_ROLE.
 */
contract QEVSettlement is AccessControl, EIP712 {
    using SafeERC20 for IERC20;

    /*------------------------------------------------------------------------*/
    /* Constants */
    /*------------------------------------------------------------------------*/

    bytes32 public constant KEEPER_ROLE = keccak256("KEEPER_ROLE");

    bytes32 public constant BID_TYPEHASH = keccak256(
        "Bid(uint64 auctionId,uint256 redemptionId,uint256 redemptionShares,uint256 basisPoint,uint256 nonce)"
    );
    bytes32 public constant SEALED_BID_TYPEHASH =
        keccak256("SealedBid(uint64 auctionId,uint256 redemptionId,bytes32 ciphertextHash)");
    bytes32 public constant CANCEL_BID_TYPEHASH =
        keccak256("CancelBid(uint64 auctionId,uint256 redemptionId,bytes32 ciphertextHash)");

    uint256 public constant BASIS_POINTS_SCALE = 10_000;
    uint256 public constant MAX_ADMIN_FEE_BPS = 10_000;
    uint256 internal constant FIXED_POINT_SCALE = 1e18;

    /*------------------------------------------------------------------------*/
    /* Types */
    /*------------------------------------------------------------------------*/

    /// @notice An allocation leaf without its auction id (the auction id is passed once per call).
    struct Allocation {
        uint256 redemptionId;
        address controller;
        uint256 sharesFilled;
        uint256 sharesBurnt;
        uint256 payout;
    }

    /// @dev Packed so that a claim touches three auction slots: root, totals (read), claimed (read+write).
    struct Auction {
        bytes32 allocationRoot;
        bytes32 bidBookRoot;
        uint112 totalShares;
        uint112 totalPayout;
        uint32 settledAt;
        uint128 claimedShares;
        uint128 claimedPayout;
        uint128 totalBurnt;
        uint128 feeShares;
    }

    struct AuctionKey {
        bytes32 publicKey;
        bytes32 commitment;
        bytes32 privateKey;
        bool revealed;
    }

    /*------------------------------------------------------------------------*/
    /* Errors */
    /*------------------------------------------------------------------------*/

    error InvalidAddress();
    error InvalidAuctionId(uint64 auctionId);
    error InvalidAmount();
    error InvalidFee();
    error InvalidCaller();
    error AuctionClosed(uint64 auctionId);
    error AuctionNotClosed(uint64 auctionId);
    error AuctionAlreadySettled(uint64 auctionId);
    error AuctionNotSettled(uint64 auctionId);
    error KeyAlreadyCommitted(uint64 auctionId);
    error KeyNotCommitted(uint64 auctionId);
    error KeyAlreadyRevealed(uint64 auctionId);
    error InvalidKeyReveal(uint64 auctionId);
    error PayoutExceedsValue(uint256 totalPayout, uint256 maxPayout);
    error InvalidProof();
    error AlreadyClaimed(uint64 auctionId, uint256 redemptionId);
    error ClaimExceedsSettlement(uint64 auctionId);

    /*------------------------------------------------------------------------*/
    /* Events */
    /*------------------------------------------------------------------------*/

    event AuctionKeyCommitted(uint64 indexed auctionId, bytes32 publicKey, bytes32 commitment);
    event NonceIncremented(uint64 indexed auctionId, uint256 indexed redemptionId, uint256 nonce);
    event AuctionSettled(
        uint64 indexed auctionId,
        bytes32 allocationRoot,
        bytes32 bidBookRoot,
        uint256 totalShares,
        uint256 totalBurnt,
        uint256 totalPayout,
        uint256 feeShares
    );
    /// @notice One allocation leaf claimed; amounts are those applied (equal to the leaf unless reduced).
    event AllocationClaimed(
        uint64 indexed auctionId,
        uint256 indexed redemptionId,
        address indexed controller,
        uint256 sharesFilled,
        uint256 sharesBurnt,
        uint256 payout
    );
    /// @notice The request had fewer pending shares than the leaf filled (FIFO servicing got there first):
    ///         the claim was applied pro rata and `refund` USDai went back to the vault.
    event AllocationReduced(
        uint64 indexed auctionId, uint256 indexed redemptionId, uint256 leafSharesFilled, uint256 refund
    );
    event AuctionKeyRevealed(uint64 indexed auctionId, bytes32 privateKey);
    event AdminFeeSet(uint256 adminFeeBps, address feeRecipient);
    event ReceiptSignerSet(address indexed previous, address indexed signer);

    /*------------------------------------------------------------------------*/
    /* State */
    /*------------------------------------------------------------------------*/

    IStakedUSDaiQueue public immutable vault;
    IERC20 public immutable usdai;
    uint64 internal immutable _genesis;
    uint64 internal immutable _window;

    uint256 public adminFeeBps;
    address public feeRecipient;

    mapping(uint64 => Auction) internal _auctions;
    mapping(uint64 => AuctionKey) internal _keys;
    mapping(uint64 => mapping(uint256 => uint256)) internal _nonces;
    /// @dev auctionId => redemptionId / 256 => bitmap of claimed leaves (one leaf per request per auction).
    mapping(uint64 => mapping(uint256 => uint256)) internal _claimed;

    /// @notice The service's receipt-signing address (set by DEFAULT_ADMIN_ROLE; 0 until set).
    /// @dev Declared last so the slots of the state above are unchanged.
    address public receiptSigner;

    /*------------------------------------------------------------------------*/
    /* Constructor */
    /*------------------------------------------------------------------------*/

    /**
     * @param vault_ The redemption-queue vault (StakedUSDaiQueue); its asset is the payout token
     * @param admin Receives DEFAULT_ADMIN_ROLE and KEEPER_ROLE
     * @param adminFeeBps_ Admin fee in basis points of the burnt shares (DESIGN default 0)
     * @param feeRecipient_ Receives the fee shares (may be 0 while the fee is 0)
     */
    constructor(address vault_, address admin, uint256 adminFeeBps_, address feeRecipient_)
        EIP712("QEVSettlement", "1")
    {
        if (vault_ == address(0) || admin == address(0)) revert InvalidAddress();
        vault = IStakedUSDaiQueue(vault_);
        usdai = IERC20(_asset(vault_));
        _genesis = IStakedUSDaiQueue(vault_).genesisTimestamp();
        _window = IStakedUSDaiQueue(vault_).redemptionWindow();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(KEEPER_ROLE, admin);
        _setAdminFee(adminFeeBps_, feeRecipient_);
    }

    /*------------------------------------------------------------------------*/
    /* Getters */
    /*------------------------------------------------------------------------*/

    /// @notice True if `auctionId` is a window boundary genesis + k * window, k >= 1.
    function isAuctionId(uint64 auctionId) public view returns (bool) {
        return auctionId > _genesis && (auctionId - _genesis) % _window == 0;
    }

    /// @notice The auction open for bids now (end of the current window).
    function currentAuctionId() external view returns (uint64) {
        return vault.redemptionTimestamp();
    }

    function nonce(uint64 auctionId, uint256 redemptionId) external view returns (uint256) {
        return _nonces[auctionId][redemptionId];
    }

    function auction(uint64 auctionId)
        external
        view
        returns (
            bytes32 allocationRoot,
            bytes32 bidBookRoot,
            uint256 totalShares,
            uint256 totalBurnt,
            uint256 totalPayout,
            uint256 claimedShares,
            uint256 claimedPayout,
            uint256 feeShares,
            uint256 settledAt
        )
    {
        Auction storage a = _auctions[auctionId];
        return (
            a.allocationRoot,
            a.bidBookRoot,
            a.totalShares,
            a.totalBurnt,
            a.totalPayout,
            a.claimedShares,
            a.claimedPayout,
            a.feeShares,
            a.settledAt
        );
    }

    function isSettled(uint64 auctionId) public view returns (bool) {
        return _auctions[auctionId].settledAt != 0;
    }

    function auctionKey(uint64 auctionId)
        external
        view
        returns (bytes32 publicKey, bytes32 commitment, bytes32 privateKey, bool revealed)
    {
        AuctionKey storage k = _keys[auctionId];
        return (k.publicKey, k.commitment, k.privateKey, k.revealed);
    }

    function isClaimed(uint64 auctionId, uint256 redemptionId) public view returns (bool) {
        return _claimed[auctionId][redemptionId >> 8] & (1 << (redemptionId & 0xff)) != 0;
    }

    /// @notice StandardMerkleTree leaf hash of an allocation.
    function allocationLeaf(
        uint64 auctionId,
        uint256 redemptionId,
        address controller,
        uint256 sharesFilled,
        uint256 sharesBurnt,
        uint256 payout
    ) public pure returns (bytes32) {
        return keccak256(
            bytes.concat(keccak256(abi.encode(auctionId, redemptionId, controller, sharesFilled, sharesBurnt, payout)))
        );
    }

    /// @notice The key commitment: keccak256 of the raw 32-byte X25519 private key.
    function keyCommitment(bytes32 privateKey) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(privateKey));
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice EIP-712 digest of the inner `Bid`.
    function bidDigest(
        uint64 auctionId,
        uint256 redemptionId,
        uint256 redemptionShares,
        uint256 basisPoint,
        uint256 nonce_
    ) external view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(BID_TYPEHASH, auctionId, redemptionId, redemptionShares, basisPoint, nonce_))
        );
    }

    /// @notice EIP-712 digest of the `SealedBid` envelope.
    function sealedBidDigest(uint64 auctionId, uint256 redemptionId, bytes32 ciphertextHash)
        external
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(SEALED_BID_TYPEHASH, auctionId, redemptionId, ciphertextHash)));
    }

    /// @notice EIP-712 digest of a `CancelBid`.
    function cancelBidDigest(uint64 auctionId, uint256 redemptionId, bytes32 ciphertextHash)
        external
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(CANCEL_BID_TYPEHASH, auctionId, redemptionId, ciphertextHash)));
    }

    /*------------------------------------------------------------------------*/
    /* Keeper API */
    /*------------------------------------------------------------------------*/

    /**
     * @notice Commit the auction's X25519 public key and `commitment = keccak256(abi.encodePacked(privateKey))`
     *         (keccak of the raw 32-byte private key). Once per auction, before it closes. X25519 cannot be
     *         checked on-chain cheaply, so the reveal is checked against the commitment; that the public key
     *         matches the private key is checked off-chain by anyone after the reveal.
     */
    function commitAuctionKey(uint64 auctionId, bytes32 publicKey, bytes32 commitment)
        external
        onlyRole(KEEPER_ROLE)
    {
        if (!isAuctionId(auctionId)) revert InvalidAuctionId(auctionId);
        if (block.timestamp >= auctionId) revert AuctionClosed(auctionId);
        if (publicKey == bytes32(0) || commitment == bytes32(0)) revert InvalidAmount();
        AuctionKey storage k = _keys[auctionId];
        if (k.commitment != bytes32(0)) revert KeyAlreadyCommitted(auctionId);
        k.publicKey = publicKey;
        k.commitment = commitment;
        emit AuctionKeyCommitted(auctionId, publicKey, commitment);
    }

    /**
     * @notice Settle auction `auctionId` with its allocation and bid-book Merkle roots and totals.
     * @dev KEEPER_ROLE; once; at or after T; the key must be committed; totalBurnt <= totalShares;
     *      totalPayout <= (totalShares - totalBurnt) * redemptionSharePrice / 1e18; locks totalShares of the
     *      vault's pending shares and escrows totalPayout of its free liquidity (reverts InsufficientBalance
     *      from the vault if short). Gas is independent of the number of bids.
     */
    function settleAuction(
        uint64 auctionId,
        bytes32 allocationRoot,
        bytes32 bidBookRoot,
        uint256 totalShares,
        uint256 totalBurnt,
        uint256 totalPayout
    ) external onlyRole(KEEPER_ROLE) {
        if (!isAuctionId(auctionId)) revert InvalidAuctionId(auctionId);
        if (block.timestamp < auctionId) revert AuctionNotClosed(auctionId);
        Auction storage a = _auctions[auctionId];
        if (a.settledAt != 0) revert AuctionAlreadySettled(auctionId);
        if (_keys[auctionId].commitment == bytes32(0)) revert KeyNotCommitted(auctionId);
        if (totalBurnt > totalShares || totalShares > type(uint112).max || totalPayout > type(uint112).max) {
            revert InvalidAmount();
        }
        uint256 maxPayout =
            Math.mulDiv(totalShares - totalBurnt, vault.redemptionSharePrice(), FIXED_POINT_SCALE);
        if (totalPayout > maxPayout) revert PayoutExceedsValue(totalPayout, maxPayout);

        uint256 feeShares = Math.mulDiv(totalBurnt, adminFeeBps, BASIS_POINTS_SCALE);

        a.allocationRoot = allocationRoot;
        a.bidBookRoot = bidBookRoot;
        a.totalShares = uint112(totalShares);
        a.totalPayout = uint112(totalPayout);
        a.settledAt = uint32(block.timestamp);
        a.totalBurnt = uint128(totalBurnt);
        a.feeShares = uint128(feeShares);

        if (totalShares > 0 || totalPayout > 0) vault.qevLock(totalShares, totalPayout);
        if (feeShares > 0) vault.qevMintFee(feeRecipient, feeShares);

        emit AuctionSettled(auctionId, allocationRoot, bidBookRoot, totalShares, totalBurnt, totalPayout, feeShares);
    }

    /*------------------------------------------------------------------------*/
    /* Public API */
    /*------------------------------------------------------------------------*/

    /// @notice Cancel the caller's sealed bid(s) for (auctionId, redemptionId) on-chain; controller only, before T.
    function incrementNonce(uint64 auctionId, uint256 redemptionId) external returns (uint256) {
        if (block.timestamp >= auctionId) revert AuctionClosed(auctionId);
        (address controller,,) = vault.qevRedemptionInfo(redemptionId);
        if (controller != msg.sender) revert InvalidCaller();
        uint256 n = ++_nonces[auctionId][redemptionId];
        emit NonceIncremented(auctionId, redemptionId, n);
        return n;
    }

    /**
     * @notice Claim one allocation leaf with its Merkle proof. Anyone may call; the payout goes to `controller`.
     * @dev Reverts AuctionNotSettled, InvalidProof, AlreadyClaimed, ClaimExceedsSettlement, or the vault's
     *      ControllerMismatch.
     */
    function claim(
        uint64 auctionId,
        uint256 redemptionId,
        address controller,
        uint256 sharesFilled,
        uint256 sharesBurnt,
        uint256 payout,
        bytes32[] calldata proof
    ) external {
        Auction storage a = _auctions[auctionId];
        if (a.settledAt == 0) revert AuctionNotSettled(auctionId);
        bytes32 leaf = allocationLeaf(auctionId, redemptionId, controller, sharesFilled, sharesBurnt, payout);
        if (!MerkleProof.verifyCalldata(proof, a.allocationRoot, leaf)) revert InvalidProof();
        if (!_setClaimed(auctionId, redemptionId)) revert AlreadyClaimed(auctionId, redemptionId);

        uint256 newShares = uint256(a.claimedShares) + sharesFilled;
        uint256 newPayout = uint256(a.claimedPayout) + payout;
        if (sharesBurnt > sharesFilled || newShares > a.totalShares || newPayout > a.totalPayout) {
            revert ClaimExceedsSettlement(auctionId);
        }
        a.claimedShares = uint128(newShares);
        a.claimedPayout = uint128(newPayout);

        _apply(auctionId, redemptionId, controller, sharesFilled, sharesBurnt, payout);
    }

    /**
     * @notice Claim several leaves of one auction with an OpenZeppelin multiproof (the npm merkle-tree
     *         library's `getMultiProof`: leaves in its order, `proof`, `proofFlags`). Anyone may call.
     *         Leaves already claimed are skipped (so a keeper can push-claim a batch some of whose
     *         controllers claimed themselves); a leaf appearing twice is applied once.
     */
    function claimMultiple(
        uint64 auctionId,
        Allocation[] calldata allocations,
        bytes32[] calldata proof,
        bool[] calldata proofFlags
    ) external {
        Auction storage a = _auctions[auctionId];
        if (a.settledAt == 0) revert AuctionNotSettled(auctionId);
        uint256 n = allocations.length;
        if (n == 0) revert InvalidAmount();

        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i; i < n; i++) {
            Allocation calldata x = allocations[i];
            leaves[i] =
                allocationLeaf(auctionId, x.redemptionId, x.controller, x.sharesFilled, x.sharesBurnt, x.payout);
        }
        if (!MerkleProof.multiProofVerifyCalldata(proof, proofFlags, a.allocationRoot, leaves)) {
            revert InvalidProof();
        }

        uint256 claimedShares = a.claimedShares;
        uint256 claimedPayout = a.claimedPayout;
        for (uint256 i; i < n; i++) {
            Allocation calldata x = allocations[i];
            if (!_setClaimed(auctionId, x.redemptionId)) continue;
            if (x.sharesBurnt > x.sharesFilled) revert ClaimExceedsSettlement(auctionId);
            claimedShares += x.sharesFilled;
            claimedPayout += x.payout;
            _apply(auctionId, x.redemptionId, x.controller, x.sharesFilled, x.sharesBurnt, x.payout);
        }
        if (claimedShares > a.totalShares || claimedPayout > a.totalPayout) revert ClaimExceedsSettlement(auctionId);
        a.claimedShares = uint128(claimedShares);
        a.claimedPayout = uint128(claimedPayout);
    }

    /**
     * @notice Publish the auction's private key after settlement (anyone). Reverts InvalidKeyReveal unless
     *         keccak256(abi.encodePacked(privateKey)) equals the commitment.
     */
    function revealAuctionKey(uint64 auctionId, bytes32 privateKey) external {
        AuctionKey storage k = _keys[auctionId];
        if (k.commitment == bytes32(0)) revert KeyNotCommitted(auctionId);
        if (_auctions[auctionId].settledAt == 0) revert AuctionNotSettled(auctionId);
        if (k.revealed) revert KeyAlreadyRevealed(auctionId);
        if (keyCommitment(privateKey) != k.commitment) revert InvalidKeyReveal(auctionId);
        k.privateKey = privateKey;
        k.revealed = true;
        emit AuctionKeyRevealed(auctionId, privateKey);
    }

    /*------------------------------------------------------------------------*/
    /* Admin API */
    /*------------------------------------------------------------------------*/

    /// @notice Set the admin fee (basis points of burnt shares) and its recipient (DEFAULT_ADMIN_ROLE).
    function setAdminFee(uint256 adminFeeBps_, address feeRecipient_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setAdminFee(adminFeeBps_, feeRecipient_);
    }

    /// @notice Register (or rotate) the service's receipt-signing address (DEFAULT_ADMIN_ROLE; not 0).
    function setReceiptSigner(address signer) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (signer == address(0)) revert InvalidAddress();
        address previous = receiptSigner;
        receiptSigner = signer;
        emit ReceiptSignerSet(previous, signer);
    }

    /*------------------------------------------------------------------------*/
    /* Internal */
    /*------------------------------------------------------------------------*/

    function _setAdminFee(uint256 adminFeeBps_, address feeRecipient_) internal {
        if (adminFeeBps_ > MAX_ADMIN_FEE_BPS) revert InvalidFee();
        if (adminFeeBps_ > 0 && feeRecipient_ == address(0)) revert InvalidAddress();
        adminFeeBps = adminFeeBps_;
        feeRecipient = feeRecipient_;
        emit AdminFeeSet(adminFeeBps_, feeRecipient_);
    }

    /// @dev Marks (auctionId, redemptionId) claimed; false if it already was.
    function _setClaimed(uint64 auctionId, uint256 redemptionId) internal returns (bool) {
        uint256 bit = 1 << (redemptionId & 0xff);
        uint256 word = _claimed[auctionId][redemptionId >> 8];
        if (word & bit != 0) return false;
        _claimed[auctionId][redemptionId >> 8] = word | bit;
        return true;
    }

    /// @dev Removes the filled shares from the request and pays the controller (pro rata if reduced).
    function _apply(
        uint64 auctionId,
        uint256 redemptionId,
        address controller,
        uint256 sharesFilled,
        uint256 sharesBurnt,
        uint256 payout
    ) internal {
        uint256 applied = vault.qevFill(redemptionId, controller, sharesFilled);
        uint256 paid = payout;
        uint256 burnt = sharesBurnt;
        if (applied != sharesFilled) {
            paid = Math.mulDiv(payout, applied, sharesFilled);
            burnt = Math.mulDiv(sharesBurnt, applied, sharesFilled);
            uint256 refund = payout - paid;
            if (refund > 0) usdai.safeTransfer(address(vault), refund);
            emit AllocationReduced(auctionId, redemptionId, sharesFilled, refund);
        }
        if (paid > 0) usdai.safeTransfer(controller, paid);
        emit AllocationClaimed(auctionId, redemptionId, controller, applied, burnt, paid);
    }

    function _asset(address vault_) private view returns (address) {
        (bool ok, bytes memory ret) = vault_.staticcall(abi.encodeWithSignature("asset()"));
        if (!ok || ret.length < 32) revert InvalidAddress();
        return abi.decode(ret, (address));
    }
}
