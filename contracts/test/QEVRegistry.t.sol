// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Base} from "./Base.t.sol";
import {QEVRegistry} from "../src/QEVRegistry.sol";
import {IQEVRegistry} from "../src/interfaces/IQEVRegistry.sol";
import {IStakedUSDaiQueue} from "../src/interfaces/IStakedUSDaiQueue.sol";

contract QEVRegistryTest is Base {
    QEVRegistry internal registry;
    uint256[4] internal keys = [uint256(0xA11), 0xB22, 0xC33, 0xD44];
    address[4] internal users;
    uint256[4] internal ids;

    function setUp() public override {
        super.setUp();
        registry = new QEVRegistry(address(vault), admin, 100, feeRecipient);
        vm.startPrank(admin);
        vault.setQEVRegistry(address(registry));
        registry.grantRole(registry.KEEPER_ROLE(), keeper);
        vm.stopPrank();
        vm.warp(GENESIS + 1 days);
        for (uint256 i; i < 4; i++) {
            users[i] = vm.addr(keys[i]);
            _deposit(users[i], 1000e18);
            ids[i] = _request(users[i], 100e18); // ids 1..4, queue 1,2,3,4
        }
    }

    function _signed(uint256 i, uint256 shares, uint256 bp, uint256 n) internal view returns (IQEVRegistry.SignedBid memory sb) {
        IQEVRegistry.Bid memory b = IQEVRegistry.Bid(T1, ids[i], shares, bp, n);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[i], registry.bidDigest(b));
        sb = IQEVRegistry.SignedBid(b, abi.encodePacked(r, s, v));
    }

    function _one(IQEVRegistry.SignedBid memory sb) internal pure returns (IQEVRegistry.SignedBid[] memory a) {
        a = new IQEVRegistry.SignedBid[](1);
        a[0] = sb;
    }

    function _post(uint64 t, IQEVRegistry.SignedBid[] memory s) internal {
        vm.prank(keeper);
        registry.postBids(t, s);
    }

    function test_bidDigest_isEip712ByteForByte() public view {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("QEVRegistry"),
                keccak256("1.0"),
                block.chainid,
                address(registry)
            )
        );
        assertEq(registry.domainSeparator(), domain);
        IQEVRegistry.Bid memory b = IQEVRegistry.Bid(T1, 7, 5e18, 250, 3);
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Bid(uint64 auctionId,uint256 redemptionId,uint256 redemptionShares,uint256 basisPoint,uint256 nonce)"),
                b.auctionId, b.redemptionId, b.redemptionShares, b.basisPoint, b.nonce
            )
        );
        assertEq(registry.bidDigest(b), keccak256(abi.encodePacked("\x19\x01", domain, structHash)));
    }

    function test_fullFlow_reorderBurnsAndMovesToFront() public {
        vm.warp(T1);
        IQEVRegistry.SignedBid[] memory s = new IQEVRegistry.SignedBid[](2);
        s[0] = _signed(3, 100e18, 500, 0); // request 4 bids 5%
        s[1] = _signed(2, 40e18, 100, 0); // request 3 bids 1% on 40 shares
        _post(T1, s);
        _post(T1, _one(_signed(0, 100e18, 50, 0))); // request 1, lower rate: next in order
        vm.prank(keeper);
        registry.settleAuction(T1);
        (uint256 bidCount,,) = registry.auction(T1);
        assertEq(bidCount, 3);

        vm.prank(keeper);
        vault.reorderRedemptions(T1, 2);
        vm.prank(keeper);
        vault.reorderRedemptions(T1, 1);
        (uint256 count, uint256 processed, uint256 last) = registry.auction(T1);
        assertEq(processed, count);
        assertEq(last, ids[0]);

        // queue: 4, 3, 1, 2
        (, uint256 head, uint256 tail, uint256 pending,) = vault.redemptionQueueInfo();
        assertEq(head, ids[3]);
        (IStakedUSDaiQueue.Redemption memory r,) = vault.redemption(ids[3]);
        assertEq(r.pendingShares, 95e18);
        assertEq(r.next, ids[2]);
        (r,) = vault.redemption(ids[2]);
        assertEq(r.pendingShares, 100e18 - 0.4e18);
        assertEq(r.next, ids[0]);
        (r,) = vault.redemption(ids[0]);
        assertEq(r.pendingShares, 99.5e18);
        assertEq(r.next, ids[1]);
        assertEq(tail, ids[1]);
        assertEq(pending, 400e18 - 5e18 - 0.4e18 - 0.5e18);
        assertEq(vault.balanceOf(feeRecipient), (5e18 + 0.4e18 + 0.5e18) / 100);

        vm.warp(T1 + 1);
        vm.prank(keeper);
        vault.serviceRedemptions(95e18);
        (r,) = vault.redemption(ids[3]);
        assertEq(r.redeemableShares, 95e18);
    }

    function test_postBids_reverts() public {
        IQEVRegistry.SignedBid memory good = _signed(0, 1e18, 100, 0);
        // before close
        vm.expectRevert(IQEVRegistry.InvalidTimestamp.selector);
        _post(T1, _one(good));
        vm.warp(T1);
        // not keeper
        vm.expectRevert();
        vm.prank(users[0]);
        registry.postBids(T1, _one(good));
        // wrong auction
        IQEVRegistry.SignedBid memory bad = _signed(0, 1e18, 100, 0);
        bad.bid.auctionId = T2;
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.InvalidAuctionId.selector, 0));
        _post(T1, _one(bad));
        // basis point out of range
        bad = _signed(0, 1e18, 9, 0);
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.InvalidBasisPoint.selector, 0));
        _post(T1, _one(bad));
        bad = _signed(0, 1e18, 10_001, 0);
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.InvalidBasisPoint.selector, 0));
        _post(T1, _one(bad));
        // zero shares
        bad = _signed(0, 0, 100, 0);
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.InvalidRedemptionShares.selector, 0));
        _post(T1, _one(bad));
        // stale nonce
        bad = _signed(0, 1e18, 100, 1);
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.InvalidNonce.selector, 0));
        _post(T1, _one(bad));
        // signed by someone else than the controller
        bad = _signed(0, 1e18, 100, 0);
        bad.bid.redemptionId = ids[1];
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.InvalidSigner.selector, 0));
        _post(T1, _one(bad));
        // order: basisPoint desc then redemptionId asc
        IQEVRegistry.SignedBid[] memory s = new IQEVRegistry.SignedBid[](2);
        s[0] = _signed(1, 1e18, 100, 0);
        s[1] = _signed(0, 1e18, 100, 0);
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.InvalidRedemptionOrder.selector, 1));
        _post(T1, s);
        s[1] = _signed(0, 1e18, 200, 0);
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.InvalidRedemptionOrder.selector, 1));
        _post(T1, s);
        // duplicate
        _post(T1, _one(good));
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.DuplicateBid.selector, 0));
        _post(T1, _one(good));
        // after settle
        vm.prank(keeper);
        registry.settleAuction(T1);
        IQEVRegistry.SignedBid memory late = _signed(1, 1e18, 50, 0);
        vm.expectRevert(IQEVRegistry.InvalidAuctionStatus.selector);
        _post(T1, _one(late));
        vm.expectRevert(IQEVRegistry.InvalidAuctionStatus.selector);
        vm.prank(keeper);
        registry.settleAuction(T1);
    }

    function test_incrementNonce() public {
        vm.prank(users[0]);
        assertEq(registry.incrementNonce(T1, ids[0]), 1);
        assertEq(registry.nonce(T1, ids[0]), 1);
        vm.expectRevert(IQEVRegistry.InvalidCaller.selector);
        vm.prank(users[1]);
        registry.incrementNonce(T1, ids[0]);
        vm.warp(T1);
        vm.expectRevert(IQEVRegistry.InvalidTimestamp.selector);
        vm.prank(users[0]);
        registry.incrementNonce(T1, ids[0]);
        // a bid at the old nonce is now stale
        IQEVRegistry.SignedBid memory stale = _signed(0, 1e18, 100, 0);
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.InvalidNonce.selector, 0));
        _post(T1, _one(stale));
    }

    function test_reorder_reverts() public {
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        vm.prank(keeper);
        vault.reorderRedemptions(T1, 1);
        vm.warp(T1);
        _post(T1, _one(_signed(0, 1e18, 100, 0)));
        vm.prank(keeper);
        registry.settleAuction(T1);
        vm.expectRevert(IStakedUSDaiQueue.InvalidAmount.selector);
        vm.prank(keeper);
        vault.reorderRedemptions(T1, 2);
        vm.expectRevert(IQEVRegistry.InvalidCaller.selector);
        registry.processQueue(T1, 1, 0);
    }
}
