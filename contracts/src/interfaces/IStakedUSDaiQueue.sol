// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title IStakedUSDaiQueue
 * @notice Redemption-queue subset of USD.AI's StakedUSDai (sUSDai), with the same function and event
 *         signatures as the real vault (requestRedeem, serviceRedemptions, redemptionQueueInfo,
 *         redemption, redemptionTimestamp, redemptionSharePrice, balances, redeem; events
 *         RedeemRequest, RedemptionProcessed, RedemptionsServiced), the draft QEV vault's reorder
 *         (`reorderRedemptions`, events RedemptionUpdated, RedemptionCreated, RedemptionsReordered), plus the hooks
 *         the QEV settlement contract uses. `balances()`, `genesisTimestamp()` and `qevRedemptionInfo()` are
 *         model views the draft vault lacks (PROTOCOL 11.3): `hideModelViews(true)` makes them revert like a
 *         missing function, so the keeper can be tested against the draft's surface.
 */
interface IStakedUSDaiQueue {
    /*------------------------------------------------------------------------*/
    /* Structures */
    /*------------------------------------------------------------------------*/

    /// @notice A redemption request (same layout as the real vault's `Redemption`).
    struct Redemption {
        uint256 prev;
        uint256 next;
        uint256 pendingShares;
        uint256 redeemableShares;
        uint256 withdrawableAmount;
        address controller;
        uint64 redemptionTimestamp;
    }

    /*------------------------------------------------------------------------*/
    /* Errors */
    /*------------------------------------------------------------------------*/

    error InvalidAddress();
    error InvalidCaller();
    error InvalidRedemptionState();
    error InvalidAmount();
    error InsufficientBalance();
    /// @notice A QEV leaf names a controller that is not the request's controller.
    error ControllerMismatch(uint256 redemptionId);
    /// @notice Registry target (draft): `reorderRedemptions` for an auction that is not the registry's last settled one.
    error InvalidAuctionStatus();
    /// @notice Registry target (draft): `reorderRedemptions` with count 0, or on an auction with no bids left.
    error InvalidCount();

    /*------------------------------------------------------------------------*/
    /* Events (real vault) */
    /*------------------------------------------------------------------------*/

    /// @notice ERC-7540 redeem request.
    event RedeemRequest(
        address indexed controller, address indexed owner, uint256 indexed requestId, address sender, uint256 shares
    );
    /// @notice One request (partly) serviced from the head of the queue.
    event RedemptionProcessed(
        uint256 indexed redemptionId,
        address indexed controller,
        uint256 fulfilledShares,
        uint256 amount,
        uint256 pendingShares
    );
    /// @notice One `serviceRedemptions` call.
    event RedemptionsServiced(uint256 shares, uint256 amount, bool allRedemptionsServiced);
    /// @notice ERC-4626 deposit.
    event Deposit(address indexed sender, address indexed owner, uint256 assets, uint256 shares);
    /// @notice ERC-4626 withdraw (emitted by `redeem`).
    event Withdraw(
        address indexed sender, address indexed receiver, address indexed owner, uint256 assets, uint256 shares
    );

    /*------------------------------------------------------------------------*/
    /* Events (model / QEV) */
    /*------------------------------------------------------------------------*/

    /// @notice NAV admin changed the value of assets held outside the vault.
    event ExternalAssetsSet(uint256 externalAssets);
    /// @notice QEV settlement locked `shares` of the queue and took `amount` USDai into escrow.
    event QEVSharesLocked(address indexed settlement, uint256 shares, uint256 amount);
    /// @notice A QEV allocation removed `shares` from a request's pending shares.
    event QEVRedemptionFilled(
        uint256 indexed redemptionId, address indexed controller, uint256 shares, uint256 pendingShares
    );
    /// @notice Admin-fee shares minted on a QEV settlement or reorder.
    event QEVFeeMinted(address indexed recipient, uint256 shares);
    /// @notice Registry target (draft): a bidder's request after its reorder. For a bid on the whole request,
    ///         its new pending shares and `bidAmount` = the shares burnt; for a bid on part of it, the old request's
    ///         remaining pending shares and `bidAmount` = 0 (the burn is in `RedemptionCreated`).
    event RedemptionUpdated(
        uint256 indexed redemptionId, address indexed controller, uint256 pendingShares, uint256 bidAmount
    );
    /// @notice Registry target (draft): the new request a bid on part of a request created at the queue front
    ///         (`pendingShares` = shares bid less `bidAmount` burnt). No `RedeemRequest` is emitted for it.
    event RedemptionCreated(
        uint256 indexed redemptionId, address indexed controller, uint256 pendingShares, uint256 bidAmount
    );
    /// @notice Registry target (draft): one `reorderRedemptions` call; `done` once every posted bid is processed.
    event RedemptionsReordered(uint64 auctionId, uint256 count, uint256 netBurnt, uint256 fee, bool done);
    /// @notice Registry target: QEV registry address set.
    event QEVRegistrySet(address registry);
    /// @notice Model only: the views the draft vault lacks (balances, genesisTimestamp, qevRedemptionInfo) were
    ///         hidden (they revert with no data, like a missing function) or shown again.
    event ModelViewsHidden(bool hidden);

    /*------------------------------------------------------------------------*/
    /* Real-vault subset */
    /*------------------------------------------------------------------------*/

    function requestRedeem(uint256 shares, address controller, address owner) external returns (uint256);
    function serviceRedemptions(uint256 shares) external returns (uint256);
    function redeem(uint256 shares, address receiver, address controller) external returns (uint256);
    function redemptionQueueInfo()
        external
        view
        returns (uint256 index, uint256 head, uint256 tail, uint256 pending, uint256 balance);
    function redemption(uint256 redemptionId) external view returns (Redemption memory, uint256);
    function redemptionTimestamp() external view returns (uint64);
    function redemptionSharePrice() external view returns (uint256);
    function balances() external view returns (uint256, uint256);
    /// @notice Registry target (STRATEGY_ADMIN_ROLE): process the next `count` posted bids of settled auction
    ///         `auctionId`; returns the pending shares taken off the aggregate and the admin-fee shares minted.
    function reorderRedemptions(uint64 auctionId, uint256 count) external returns (uint256 netBurnt, uint256 fee);

    /*------------------------------------------------------------------------*/
    /* QEV hooks */
    /*------------------------------------------------------------------------*/

    function genesisTimestamp() external view returns (uint64);
    function redemptionWindow() external pure returns (uint64);
    function qevRedemptionInfo(uint256 redemptionId)
        external
        view
        returns (address controller, uint64 redemptionTimestamp_, uint256 pendingShares);
    function qevLock(uint256 shares, uint256 amount) external;
    function qevFill(uint256 redemptionId, address controller, uint256 shares) external returns (uint256);
    function qevMintFee(address recipient, uint256 shares) external;
}
