// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Base} from "./Base.t.sol";
import {QEVRegistry} from "../src/QEVRegistry.sol";
import {IQEVRegistry} from "../src/interfaces/IQEVRegistry.sol";
import {IStakedUSDaiQueue} from "../src/interfaces/IStakedUSDaiQueue.sol";

/// @notice The registry target deployed as the draft is (constructor + initialize, AUCTION_ADMIN_ROLE to the
///         keeper, the vault holding QUEUE_PROCESSOR_ADMIN_ROLE), plus helpers shared by the registry tests.
abstract contract RegistryBase is Base {
    bytes32 internal constant AUCTION_ADMIN_ROLE = keccak256("AUCTION_ADMIN_ROLE");
    bytes32 internal constant QUEUE_PROCESSOR_ADMIN_ROLE = keccak256("QUEUE_PROCESSOR_ADMIN_ROLE");
    uint256 internal constant FEE_RATE = 100; // the draft's 1%

    QEVRegistry internal registry;
    uint256[] internal keys;
    address[] internal users;

    event RedemptionUpdated(
        uint256 indexed redemptionId, address indexed controller, uint256 pendingShares, uint256 bidAmount
    );
    event RedemptionCreated(
        uint256 indexed redemptionId, address indexed controller, uint256 pendingShares, uint256 bidAmount
    );
    event RedemptionsReordered(uint64 auctionId, uint256 count, uint256 netBurnt, uint256 fee, bool done);
    event AuctionSettled(uint64 auctionId);
    event AuctionCheckpointSet(uint64 auctionId, uint256 processedBidCount, uint256 processedRedemptionId);

    function setUp() public virtual override {
        super.setUp();
        registry = new QEVRegistry(address(vault), FEE_RATE, feeRecipient);
        vm.startPrank(admin);
        registry.initialize();
        registry.grantRole(AUCTION_ADMIN_ROLE, keeper);
        vault.setQEVRegistry(address(registry));
        vm.stopPrank();
        vm.label(address(registry), "registry");
    }

    /// @dev `n` holders (keys 0x1001..), each with a deposit and one request of `shares[i]`, made at GENESIS + 1 day
    ///      (they mature at T1); returns the request ids (1..n, queue in that order).
    function _requests(uint256[] memory shares) internal returns (uint256[] memory ids) {
        vm.warp(GENESIS + 1 days);
        ids = new uint256[](shares.length);
        for (uint256 i; i < shares.length; i++) {
            uint256 k = 0x1001 + keys.length;
            keys.push(k);
            users.push(vm.addr(k));
            _deposit(users[users.length - 1], shares[i]);
            ids[i] = _request(users[users.length - 1], shares[i]);
        }
    }

    function _user(uint256 redemptionId_) internal view returns (uint256 key) {
        (IStakedUSDaiQueue.Redemption memory r,) = vault.redemption(redemptionId_);
        for (uint256 i; i < users.length; i++) {
            if (users[i] == r.controller) return keys[i];
        }
        revert("no such user");
    }

    function _signed(uint64 t, uint256 rid, uint256 shares, uint256 bp, uint256 n)
        internal
        view
        returns (IQEVRegistry.SignedBid memory)
    {
        return _signedBy(_user(rid), t, rid, shares, bp, n);
    }

    function _signedBy(uint256 key, uint64 t, uint256 rid, uint256 shares, uint256 bp, uint256 n)
        internal
        view
        returns (IQEVRegistry.SignedBid memory)
    {
        IQEVRegistry.Bid memory b = IQEVRegistry.Bid(t, rid, shares, bp, n);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, registry.bidDigest(b));
        return IQEVRegistry.SignedBid(b, abi.encodePacked(r, s, v));
    }

    function _one(IQEVRegistry.SignedBid memory sb) internal pure returns (IQEVRegistry.SignedBid[] memory a) {
        a = new IQEVRegistry.SignedBid[](1);
        a[0] = sb;
    }

    function _two(IQEVRegistry.SignedBid memory x, IQEVRegistry.SignedBid memory y)
        internal
        pure
        returns (IQEVRegistry.SignedBid[] memory a)
    {
        a = new IQEVRegistry.SignedBid[](2);
        a[0] = x;
        a[1] = y;
    }

    function _post(uint64 t, IQEVRegistry.SignedBid[] memory s) internal {
        vm.prank(keeper);
        registry.postBids(t, s);
    }

    /// @dev postBids expected to revert with `err` (the bids are built before expectRevert).
    function _postReverts(bytes memory err, uint64 t, IQEVRegistry.SignedBid[] memory s) internal {
        vm.expectRevert(err);
        vm.prank(keeper);
        registry.postBids(t, s);
    }

    function _settleRegistry(uint64 t) internal {
        vm.prank(keeper);
        registry.settleAuction(t);
    }

    function _reorder(uint64 t, uint256 count) internal returns (uint256 netBurnt, uint256 fee) {
        vm.prank(keeper);
        return vault.reorderRedemptions(t, count);
    }

    function _service(uint256 shares) internal returns (uint256) {
        vm.prank(keeper);
        return vault.serviceRedemptions(shares);
    }

    /// @dev The queue as servicing sees it: ids from the head along `next` (at most `max`).
    function _queue(uint256 max) internal view returns (uint256[] memory out) {
        (, uint256 id,,,) = vault.redemptionQueueInfo();
        uint256[] memory buf = new uint256[](max);
        uint256 n;
        while (id != 0 && n < max) {
            buf[n++] = id;
            (IStakedUSDaiQueue.Redemption memory r,) = vault.redemption(id);
            id = r.next;
        }
        out = new uint256[](n);
        for (uint256 i; i < n; i++) {
            out[i] = buf[i];
        }
    }

    function _sumPending(uint256[] memory ids) internal view returns (uint256 total) {
        for (uint256 i; i < ids.length; i++) {
            total += _pendingOf(ids[i]);
        }
    }

    /// @dev A request's pending shares through `redemption()` (works with the model views hidden).
    function _pendingOf(uint256 id) internal view returns (uint256) {
        (IStakedUSDaiQueue.Redemption memory r,) = vault.redemption(id);
        return r.pendingShares;
    }

    function _aggregatePending() internal view returns (uint256 pending) {
        (,,, pending,) = vault.redemptionQueueInfo();
    }

    function _index() internal view returns (uint256 index) {
        (index,,,,) = vault.redemptionQueueInfo();
    }

    function _amounts(uint256 a, uint256 b, uint256 c, uint256 d) internal pure returns (uint256[] memory x) {
        x = new uint256[](4);
        (x[0], x[1], x[2], x[3]) = (a, b, c, d);
    }
}
