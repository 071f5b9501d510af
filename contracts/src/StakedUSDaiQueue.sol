// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

import {IStakedUSDaiQueue} from "./interfaces/IStakedUSDaiQueue.sol";
import {IQEVRegistry} from "./interfaces/IQEVRegistry.sol";

/**
 * @title StakedUSDaiQueue
 * @notice Model of USD.AI's StakedUSDai (sUSDai) redemption queue, written from its public interface.
 *
 * Shares (18 decimals) are minted for USDai deposits at `depositSharePrice()`. `requestRedeem` burns the
 * owner's shares and appends a request to a doubly linked FIFO queue; the request matures at
 * `redemptionTimestamp` = the end of the 30-day window it was made in (windows counted from the immutable
 * `genesisTimestamp`). `serviceRedemptions(shares)` walks the queue from its head, requires every request it
 * touches to be matured (`redemptionTimestamp < block.timestamp`), prices the shares at
 * `redemptionSharePrice()` and sets the USDai aside (`redemptionBalance`), bounded by free liquidity; the
 * controller then collects it with `redeem`.
 *
 * NAV = USDai held - USDai set aside for serviced requests + `externalAssets` (admin-settable, so the demo
 * can show yield). Share prices = NAV / totalShares(), totalShares() = supply + pending - qevLockedShares.
 *
 * QEV hooks (QEV_SETTLEMENT_ROLE): `qevLock` (at settlement: lock the auction's filled shares and move its
 * payout into the settlement contract's escrow), `qevFill` (at claim: remove a leaf's filled shares from the
 * request's pending shares), `qevMintFee` (admin-fee shares).
 *
 * Registry target: `reorderRedemptions(T, count)` behaves as USD.AI's draft QEV vault (branch `qev`, 6d4044f0;
 * docs/PROTOCOL.md 11.3-11.4), hazards included, each marked "DRAFT HAZARD" below; while the registry's last
 * settled auction has bids not yet reordered, `serviceRedemptions` reverts. The draft vault has no
 * `balances()`, `genesisTimestamp()` or `qevRedemptionInfo()`: `hideModelViews(true)` makes them revert as a
 * missing function would, so the keeper can be run against the draft's surface.
 *
 * Roles: DEFAULT_ADMIN_ROLE (setQEVRegistry, hideModelViews), STRATEGY_ADMIN_ROLE (serviceRedemptions,
 * reorderRedemptions), NAV_ADMIN_ROLE (setExternalAssets), QEV_SETTLEMENT_ROLE (qevLock, qevFill, qevMintFee).
 */
contract StakedUSDaiQueue is ERC20, AccessControl, IStakedUSDaiQueue {
    using SafeERC20 for IERC20;
    using EnumerableSet for EnumerableSet.UintSet;

    /*------------------------------------------------------------------------*/
    /* Constants */
    /*------------------------------------------------------------------------*/

    bytes32 public constant STRATEGY_ADMIN_ROLE = keccak256("STRATEGY_ADMIN_ROLE");
    bytes32 public constant NAV_ADMIN_ROLE = keccak256("NAV_ADMIN_ROLE");
    bytes32 public constant QEV_SETTLEMENT_ROLE = keccak256("QEV_SETTLEMENT_ROLE");

    uint256 internal constant FIXED_POINT_SCALE = 1e18;
    uint256 public constant MIN_REDEMPTION_SHARES = 1e18;
    uint64 public constant REDEMPTION_WINDOW = 30 days;
    uint256 internal constant BASIS_POINTS_SCALE = 10_000;
    uint256 internal constant MAX_REDEMPTION_QUEUE_SCAN_COUNT = 150;

    /*------------------------------------------------------------------------*/
    /* State */
    /*------------------------------------------------------------------------*/

    IERC20 internal immutable _usdai;
    uint64 internal immutable _genesisTimestamp;

    /// @dev Queue state, as in the real vault.
    uint256 internal _index;
    uint256 internal _head;
    uint256 internal _tail;
    uint256 internal _pending;
    uint256 internal _redemptionBalance;
    mapping(uint256 => Redemption) internal _redemptions;
    mapping(address => EnumerableSet.UintSet) internal _redemptionIds;

    /// @notice Pending shares locked by QEV settlements and not yet claimed (excluded from totalShares()).
    uint256 public qevLockedShares;
    /// @notice Value of assets held outside the vault (admin-set NAV component).
    uint256 public externalAssets;
    /// @notice Registry-target QEV registry (optional).
    IQEVRegistry public qevRegistry;
    /// @notice Model only: whether the views the draft vault lacks revert (see hideModelViews).
    bool public modelViewsHidden;

    /*------------------------------------------------------------------------*/
    /* Constructor */
    /*------------------------------------------------------------------------*/

    /**
     * @param usdai_ USDai token
     * @param genesisTimestamp_ Genesis of the 30-day redemption windows (0 = deployment block time)
     * @param admin Receives DEFAULT_ADMIN_ROLE, STRATEGY_ADMIN_ROLE and NAV_ADMIN_ROLE
     */
    constructor(address usdai_, uint64 genesisTimestamp_, address admin) ERC20("Staked USDai", "sUSDai") {
        if (usdai_ == address(0) || admin == address(0)) revert InvalidAddress();
        _usdai = IERC20(usdai_);
        _genesisTimestamp = genesisTimestamp_ == 0 ? uint64(block.timestamp) : genesisTimestamp_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(STRATEGY_ADMIN_ROLE, admin);
        _grantRole(NAV_ADMIN_ROLE, admin);
    }

    /*------------------------------------------------------------------------*/
    /* Getters */
    /*------------------------------------------------------------------------*/

    /// @notice USDai token (ERC-4626 asset).
    function asset() public view returns (address) {
        return address(_usdai);
    }

    /// @inheritdoc IStakedUSDaiQueue
    function genesisTimestamp() external view returns (uint64) {
        _modelView();
        return _genesisTimestamp;
    }

    /// @inheritdoc IStakedUSDaiQueue
    function redemptionWindow() external pure returns (uint64) {
        return REDEMPTION_WINDOW;
    }

    /// @inheritdoc IStakedUSDaiQueue
    function redemptionQueueInfo()
        external
        view
        returns (uint256 index, uint256 head, uint256 tail, uint256 pending, uint256 balance)
    {
        return (_index, _head, _tail, _pending, _redemptionBalance);
    }

    /// @notice End of the current redemption window: the `redemptionTimestamp` a request made now gets.
    function redemptionTimestamp() public view returns (uint64) {
        if (block.timestamp < _genesisTimestamp) return _genesisTimestamp;
        uint64 count = uint64((block.timestamp - _genesisTimestamp) / REDEMPTION_WINDOW + 1);
        return _genesisTimestamp + count * REDEMPTION_WINDOW;
    }

    /**
     * @notice Redemption request and the pending shares ahead of it, as the real vault computes them: a walk
     *         back along `prev` that stops at a request with nothing pending or after 150 requests. (The real
     *         vault copies each request walked to memory; this model reads the two fields it uses, so the
     *         registry's postBids, which reads one request per bid, may cost less here than there.)
     */
    function redemption(uint256 redemptionId) external view returns (Redemption memory, uint256) {
        Redemption memory redemption_ = _redemptions[redemptionId];
        uint256 sharesAhead;
        uint256 count;
        uint256 prev = redemption_.prev;
        while (prev != 0 && count < MAX_REDEMPTION_QUEUE_SCAN_COUNT) {
            Redemption storage p = _redemptions[prev];
            if (p.pendingShares == 0) break;
            sharesAhead += p.pendingShares;
            prev = p.prev;
            count++;
        }
        return (redemption_, sharesAhead);
    }

    /// @notice Redemption ids of a controller that still hold pending or redeemable shares.
    function redemptionIds(address controller) external view returns (uint256[] memory) {
        return _redemptionIds[controller].values();
    }

    /// @notice (USDai held, USDai set aside for serviced requests).
    function balances() external view returns (uint256, uint256) {
        _modelView();
        return (_usdai.balanceOf(address(this)), _redemptionBalance);
    }

    /// @notice Free liquidity: USDai held less USDai set aside for serviced requests.
    function depositBalance() public view returns (uint256) {
        return _depositBalance();
    }

    /// @notice Net asset value.
    function nav() public view returns (uint256) {
        return _depositBalance() + externalAssets;
    }

    /// @notice ERC-4626 total assets (= nav()).
    function totalAssets() external view returns (uint256) {
        return nav();
    }

    /// @notice Shares outstanding: supply + pending redemptions - shares locked by QEV settlements.
    function totalShares() public view returns (uint256) {
        return totalSupply() + _pending - qevLockedShares;
    }

    /// @notice Deposit share price (1e18 fixed point).
    function depositSharePrice() public view returns (uint256) {
        return _sharePrice();
    }

    /// @notice Redemption share price (1e18 fixed point).
    function redemptionSharePrice() public view returns (uint256) {
        return _sharePrice();
    }

    /// @notice ERC-4626 preview.
    function convertToShares(uint256 assets) public view returns (uint256) {
        return Math.mulDiv(assets, FIXED_POINT_SCALE, depositSharePrice());
    }

    /// @notice ERC-4626 preview.
    function convertToAssets(uint256 shares) public view returns (uint256) {
        return Math.mulDiv(shares, depositSharePrice(), FIXED_POINT_SCALE);
    }

    /// @notice ERC-7540: pending shares of a request, 0 if `controller` is not its controller.
    function pendingRedeemRequest(uint256 redemptionId, address controller) external view returns (uint256) {
        Redemption storage r = _redemptions[redemptionId];
        return r.controller == controller ? r.pendingShares : 0;
    }

    /// @notice ERC-7540: serviced (redeemable) shares of a request, 0 if `controller` is not its controller.
    function claimableRedeemRequest(uint256 redemptionId, address controller) external view returns (uint256) {
        Redemption storage r = _redemptions[redemptionId];
        return r.controller == controller ? r.redeemableShares : 0;
    }

    /// @notice Shares a controller can `redeem` now.
    function maxRedeem(address controller) external view returns (uint256 shares) {
        uint256[] memory ids = _redemptionIds[controller].values();
        for (uint256 i; i < ids.length; i++) {
            shares += _redemptions[ids[i]].redeemableShares;
        }
    }

    /// @inheritdoc IStakedUSDaiQueue
    function qevRedemptionInfo(uint256 redemptionId)
        external
        view
        returns (address controller, uint64 redemptionTimestamp_, uint256 pendingShares)
    {
        _modelView();
        Redemption storage r = _redemptions[redemptionId];
        return (r.controller, r.redemptionTimestamp, r.pendingShares);
    }

    /*------------------------------------------------------------------------*/
    /* Deposits */
    /*------------------------------------------------------------------------*/

    /// @notice ERC-4626 deposit: `assets` USDai for shares at `depositSharePrice()` (rounded down).
    function deposit(uint256 assets, address receiver) external returns (uint256) {
        return _deposit(assets, receiver, 0);
    }

    /// @notice Deposit with a minimum number of shares.
    function deposit(uint256 assets, address receiver, uint256 minShares) external returns (uint256) {
        return _deposit(assets, receiver, minShares);
    }

    /*------------------------------------------------------------------------*/
    /* Redemptions */
    /*------------------------------------------------------------------------*/

    /**
     * @notice Request redemption of `shares` of `owner` (burned now); `controller` controls the request.
     * @dev Caller must be `owner` or hold an ERC-20 allowance over `owner`'s shares.
     * @return redemptionId Request id (1, 2, ...)
     */
    function requestRedeem(uint256 shares, address controller, address owner) external returns (uint256) {
        if (controller == address(0) || owner == address(0)) revert InvalidAddress();
        if (shares < MIN_REDEMPTION_SHARES) revert InvalidAmount();
        if (owner != msg.sender) _spendAllowance(owner, msg.sender, shares);
        if (balanceOf(owner) < shares) revert InsufficientBalance();

        _burn(owner, shares);

        uint256 redemptionId = ++_index;
        uint256 tail = _tail;
        if (tail != 0) _redemptions[tail].next = redemptionId;
        _redemptions[redemptionId] = Redemption({
            prev: tail,
            next: 0,
            pendingShares: shares,
            redeemableShares: 0,
            withdrawableAmount: 0,
            controller: controller,
            redemptionTimestamp: redemptionTimestamp()
        });
        _tail = redemptionId;
        if (_head == 0) _head = redemptionId;
        _pending += shares;
        _redemptionIds[controller].add(redemptionId);

        emit RedeemRequest(controller, owner, redemptionId, msg.sender, shares);
        return redemptionId;
    }

    /**
     * @notice Service `shares` of matured requests from the head of the queue at `redemptionSharePrice()`.
     * @dev Reverts if a request it touches is not matured, if more shares are asked than are pending and not
     *      locked by QEV settlements or than the queue holds, if the USDai due exceeds free liquidity, or (draft)
     *      while the registry's last settled auction still has bids not reordered.
     * @return amount USDai set aside for the serviced requests
     */
    function serviceRedemptions(uint256 shares) external onlyRole(STRATEGY_ADMIN_ROLE) returns (uint256) {
        if (shares == 0) revert InvalidAmount();
        _requireReorderDone();
        if (_pending - qevLockedShares < shares) revert InvalidRedemptionState();

        uint256 price = redemptionSharePrice();
        uint256 head = _head;
        if (head == 0) revert InvalidRedemptionState();

        uint256 remaining = shares;
        uint256 amountProcessed;
        while (remaining > 0 && head != 0) {
            Redemption storage r = _redemptions[head];
            uint256 pendingShares = r.pendingShares;
            if (pendingShares == 0) {
                // emptied by a QEV claim: drop from the queue
                head = _popHead(r);
                continue;
            }
            if (r.redemptionTimestamp >= block.timestamp) revert InvalidRedemptionState();

            uint256 fulfilledShares = Math.min(pendingShares, remaining);
            uint256 fulfilledAmount = Math.mulDiv(fulfilledShares, price, FIXED_POINT_SCALE);

            r.pendingShares = pendingShares - fulfilledShares;
            r.redeemableShares += fulfilledShares;
            r.withdrawableAmount += fulfilledAmount;
            remaining -= fulfilledShares;
            amountProcessed += fulfilledAmount;

            emit RedemptionProcessed(head, r.controller, fulfilledShares, fulfilledAmount, r.pendingShares);

            if (r.pendingShares == 0) head = _popHead(r);
        }
        if (remaining != 0) revert InvalidRedemptionState();

        // skip requests emptied by QEV claims
        while (head != 0 && _redemptions[head].pendingShares == 0) {
            head = _popHead(_redemptions[head]);
        }
        _setHead(head);
        _pending -= shares;

        if (amountProcessed > _depositBalance()) revert InsufficientBalance();
        _redemptionBalance += amountProcessed;

        bool allRedemptionsServiced = head == 0 || _redemptions[head].redemptionTimestamp >= block.timestamp;
        emit RedemptionsServiced(shares, amountProcessed, allRedemptionsServiced);
        return amountProcessed;
    }

    /**
     * @notice Collect USDai for `shares` of serviced requests of `controller` (caller must be `controller`).
     * @return amount USDai sent to `receiver`
     */
    function redeem(uint256 shares, address receiver, address controller) external returns (uint256) {
        if (shares == 0) revert InvalidAmount();
        if (receiver == address(0) || controller == address(0)) revert InvalidAddress();
        if (controller != msg.sender) revert InvalidCaller();

        EnumerableSet.UintSet storage ids = _redemptionIds[controller];
        uint256[] memory list = ids.values();
        uint256 remaining = shares;
        uint256 amount;
        for (uint256 i; i < list.length && remaining > 0; i++) {
            Redemption storage r = _redemptions[list[i]];
            if (r.redeemableShares == 0) continue;
            uint256 take = Math.min(remaining, r.redeemableShares);
            uint256 value = take == r.redeemableShares
                ? r.withdrawableAmount
                : Math.mulDiv(take, r.withdrawableAmount, r.redeemableShares);
            r.redeemableShares -= take;
            r.withdrawableAmount -= value;
            remaining -= take;
            amount += value;
            if (r.pendingShares == 0 && r.redeemableShares == 0) ids.remove(list[i]);
        }
        if (remaining != 0) revert InvalidRedemptionState();

        _redemptionBalance -= amount;
        if (amount > 0) _usdai.safeTransfer(receiver, amount);

        emit Withdraw(msg.sender, receiver, controller, amount, shares);
        return amount;
    }

    /*------------------------------------------------------------------------*/
    /* NAV admin */
    /*------------------------------------------------------------------------*/

    /// @notice Set the value of assets held outside the vault (NAV_ADMIN_ROLE); moves both share prices.
    function setExternalAssets(uint256 externalAssets_) external onlyRole(NAV_ADMIN_ROLE) {
        externalAssets = externalAssets_;
        emit ExternalAssetsSet(externalAssets_);
    }

    /*------------------------------------------------------------------------*/
    /* QEV settlement hooks (merkle target) */
    /*------------------------------------------------------------------------*/

    /**
     * @notice Lock `shares` of the queue for a QEV settlement and move `amount` USDai of free liquidity to
     *         the caller's escrow.
     * @dev Reverts InvalidRedemptionState if `shares` exceeds pending shares not already locked, and
     *      InsufficientBalance if `amount` exceeds free liquidity.
     */
    function qevLock(uint256 shares, uint256 amount) external onlyRole(QEV_SETTLEMENT_ROLE) {
        if (_pending - qevLockedShares < shares) revert InvalidRedemptionState();
        if (amount > _depositBalance()) revert InsufficientBalance();
        qevLockedShares += shares;
        if (amount > 0) _usdai.safeTransfer(msg.sender, amount);
        emit QEVSharesLocked(msg.sender, shares, amount);
    }

    /**
     * @notice Remove up to `shares` from request `redemptionId`'s pending shares and unlock `shares`.
     * @dev If FIFO servicing already took part of the request, only what is still pending is removed; the
     *      number actually removed is returned (the settlement pays pro rata and refunds the rest).
     */
    function qevFill(uint256 redemptionId, address controller, uint256 shares)
        external
        onlyRole(QEV_SETTLEMENT_ROLE)
        returns (uint256 applied)
    {
        Redemption storage r = _redemptions[redemptionId];
        if (r.controller != controller) revert ControllerMismatch(redemptionId);
        uint256 pendingShares = r.pendingShares;
        applied = shares < pendingShares ? shares : pendingShares;
        unchecked {
            pendingShares -= applied;
        }
        r.pendingShares = pendingShares;
        _pending -= applied;
        qevLockedShares -= shares;
        if (pendingShares == 0 && r.redeemableShares == 0) _redemptionIds[controller].remove(redemptionId);
        emit QEVRedemptionFilled(redemptionId, controller, applied, pendingShares);
    }

    /// @notice Mint admin-fee shares.
    function qevMintFee(address recipient, uint256 shares) external onlyRole(QEV_SETTLEMENT_ROLE) {
        if (recipient == address(0)) revert InvalidAddress();
        _mint(recipient, shares);
        emit QEVFeeMinted(recipient, shares);
    }

    /*------------------------------------------------------------------------*/
    /* QEV registry target: queue reorder */
    /*------------------------------------------------------------------------*/

    /// @notice Set the QEV registry used by `reorderRedemptions` (DEFAULT_ADMIN_ROLE).
    function setQEVRegistry(address registry) external onlyRole(DEFAULT_ADMIN_ROLE) {
        qevRegistry = IQEVRegistry(registry);
        emit QEVRegistrySet(registry);
    }

    /// @notice Model only (DEFAULT_ADMIN_ROLE): make `balances()`, `genesisTimestamp()` and
    ///         `qevRedemptionInfo()` revert with no data, as on the draft vault that lacks them.
    function hideModelViews(bool hidden) external onlyRole(DEFAULT_ADMIN_ROLE) {
        modelViewsHidden = hidden;
        emit ModelViewsHidden(hidden);
    }

    /**
     * @notice Process the next `count` posted bids of the registry's last settled auction `auctionId`, in posted
     *         order (the draft's rules): a bid on a request with nothing pending is passed over; otherwise
     *         `bidAmount = mulDiv(min(pending, redemptionShares), basisPoint, 10000)` shares are burnt and
     *         - a bid on the whole request moves the request (pending less the burn) to the front of the queue,
     *           behind the bidders already moved for this auction (`RedemptionUpdated`);
     *         - a bid on part of it leaves the rest under the old id in its old place and creates a new request
     *           of `shares - bidAmount` at the front (`RedemptionUpdated`, `RedemptionCreated`).
     *         The admin fee `mulDiv(sum of bidAmount, adminFeeRate, 10000)` is minted once per call to the
     *         registry's fee recipient; the registry's checkpoint (processed count, last moved id) is updated.
     * @return netBurnt Shares taken off the aggregate `pending` (sum of bidAmount less the fee)
     * @return fee Admin-fee shares minted
     *
     * @dev DRAFT HAZARD 1: `count` is not checked against the bids left: a count past them stores a processed
     *      count above bidCount, after which every reorder panics, servicing reverts and the registry refuses
     *      to post the next auction. DRAFT HAZARD 2: the queue head is moved only when the very first bid
     *      (index 1, in the first call) is processed; if that bid's request was emptied after posting, the
     *      requests moved afterwards are linked in front of the head without becoming it, unreachable by
     *      servicing. DRAFT HAZARD 3: `pending` is lowered by the burn less the fee, while the fee is minted as
     *      well: the aggregate stays above the sum of the requests' pending shares by the fee.
     */
    function reorderRedemptions(uint64 auctionId, uint256 count)
        external
        onlyRole(STRATEGY_ADMIN_ROLE)
        returns (uint256 netBurnt, uint256 fee)
    {
        IQEVRegistry registry = qevRegistry;
        if (address(registry) == address(0)) revert InvalidAddress();
        if (registry.previousAuctionId() != auctionId) revert InvalidAuctionStatus();
        if (count == 0) revert InvalidCount();
        (uint256 bidCount, uint256 processed, uint256 lastMoved) = registry.auction(auctionId);
        // DRAFT HAZARD 1: `processed > bidCount` is not refused here (bids() below panics on it)
        if (bidCount == 0 || processed == bidCount) revert InvalidCount();
        if (_head == 0 || _tail == 0) revert InvalidRedemptionState();

        Cursor memory c;
        c.index = _index;
        c.processed = processed;
        if (lastMoved == 0) {
            c.prev = _redemptions[_head].prev;
            c.next = _head;
        } else {
            c.prev = lastMoved;
            c.next = _redemptions[lastMoved].next;
        }
        c.lastMoved = lastMoved;

        IQEVRegistry.Bid[] memory list = registry.bids(auctionId, processed, count);
        uint256 burnt;
        for (uint256 i; i < list.length; i++) {
            burnt += _reorderBid(c, list[i], i);
        }

        fee = Math.mulDiv(burnt, registry.adminFeeRate(), BASIS_POINTS_SCALE);
        netBurnt = burnt - fee;
        _pending -= netBurnt; // DRAFT HAZARD 3: the fee shares stay counted in `pending` and are minted too
        _index = c.index;
        processed += count; // DRAFT HAZARD 1: `count`, not the bids there were
        registry.processQueue(auctionId, processed, c.lastMoved);
        if (fee > 0) _mint(registry.adminFeeRecipient(), fee);
        emit RedemptionsReordered(auctionId, count, netBurnt, fee, processed == bidCount);
    }

    /*------------------------------------------------------------------------*/
    /* Internal */
    /*------------------------------------------------------------------------*/

    function _depositBalance() internal view returns (uint256) {
        return _usdai.balanceOf(address(this)) - _redemptionBalance;
    }

    function _sharePrice() internal view returns (uint256) {
        uint256 shares = totalShares();
        return shares == 0 ? FIXED_POINT_SCALE : Math.mulDiv(nav(), FIXED_POINT_SCALE, shares);
    }

    function _deposit(uint256 assets, address receiver, uint256 minShares) internal returns (uint256 shares) {
        if (assets == 0) revert InvalidAmount();
        if (receiver == address(0)) revert InvalidAddress();
        shares = convertToShares(assets);
        if (shares == 0 || shares < minShares) revert InvalidAmount();
        _usdai.safeTransferFrom(msg.sender, address(this), assets);
        _mint(receiver, shares);
        emit Deposit(msg.sender, receiver, assets, shares);
    }

    /// @dev Remove the head request `r` (pending 0) from the queue; returns the new head (not stored).
    function _popHead(Redemption storage r) internal returns (uint256 next) {
        next = r.next;
        r.next = 0;
        r.prev = 0;
        if (next != 0) _redemptions[next].prev = 0;
        else _tail = 0;
    }

    function _setHead(uint256 head) internal {
        _head = head;
        if (head == 0) _tail = 0;
    }

    /// @dev Where the reorder is in the queue: insert between `prev` and `next`; `lastMoved` is the checkpoint.
    struct Cursor {
        uint256 prev;
        uint256 next;
        uint256 lastMoved;
        uint256 index;
        uint256 processed;
    }

    /// @dev One posted bid of `reorderRedemptions` (`i`: its position in this call); returns the shares burnt.
    function _reorderBid(Cursor memory c, IQEVRegistry.Bid memory b, uint256 i) internal returns (uint256 burnt) {
        Redemption storage r = _redemptions[b.redemptionId];
        uint256 pendingShares = r.pendingShares;
        if (pendingShares == 0) return 0; // DRAFT HAZARD 2: for bid 1 this also skips moving the head
        uint256 size = Math.min(pendingShares, b.redemptionShares);
        burnt = Math.mulDiv(size, b.basisPoint, BASIS_POINTS_SCALE);
        address controller = r.controller;
        uint256 moved = b.redemptionId;
        if (size == pendingShares) {
            r.pendingShares = pendingShares - burnt;
            if (c.next == moved) {
                c.next = r.next; // already where it goes
            } else {
                _draftRemove(moved);
                _draftInsert(moved, c.prev, c.next);
            }
            emit RedemptionUpdated(moved, controller, pendingShares - burnt, burnt);
        } else {
            r.pendingShares = pendingShares - size;
            moved = ++c.index;
            _redemptions[moved] = Redemption({
                prev: c.prev,
                next: c.next,
                pendingShares: size - burnt,
                redeemableShares: 0,
                withdrawableAmount: 0,
                controller: controller,
                redemptionTimestamp: r.redemptionTimestamp
            });
            _redemptionIds[controller].add(moved);
            _draftInsert(moved, c.prev, c.next);
            emit RedemptionUpdated(b.redemptionId, controller, pendingShares - size, 0);
            emit RedemptionCreated(moved, controller, size - burnt, burnt);
        }
        if (i == 0 && c.processed == 0) _head = moved; // DRAFT HAZARD 2: only here does the head move
        c.prev = moved;
        c.lastMoved = moved;
    }

    /// @dev The draft's unlink: neighbours and the tail are updated, the head never is.
    function _draftRemove(uint256 id) internal {
        Redemption storage r = _redemptions[id];
        if (id == _tail) _tail = r.prev;
        if (r.prev != 0) _redemptions[r.prev].next = r.next;
        if (r.next != 0) _redemptions[r.next].prev = r.prev;
    }

    /// @dev The draft's link between `prev` and `next` (neither the head nor the tail is updated).
    function _draftInsert(uint256 id, uint256 prev, uint256 next) internal {
        Redemption storage r = _redemptions[id];
        r.prev = prev;
        r.next = next;
        if (prev != 0) _redemptions[prev].next = id;
        if (next != 0) _redemptions[next].prev = id;
    }

    /// @dev Model views the draft vault lacks revert with no data when hidden, as a missing function does.
    function _modelView() internal view {
        if (modelViewsHidden) {
            assembly {
                revert(0, 0)
            }
        }
    }

    /// @dev Draft: no servicing while the registry's last settled auction has bids not yet reordered.
    function _requireReorderDone() internal view {
        IQEVRegistry registry = qevRegistry;
        if (address(registry) == address(0)) return;
        (uint256 bidCount, uint256 processed,) = registry.auction(registry.previousAuctionId());
        if (bidCount != processed) revert InvalidRedemptionState();
    }
}
