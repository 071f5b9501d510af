// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Base} from "./Base.t.sol";
import {IStakedUSDaiQueue} from "../src/interfaces/IStakedUSDaiQueue.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract StakedUSDaiQueueTest is Base {
    address internal alice = address(0xA1);
    address internal bob = address(0xB0B);

    event RedeemRequest(
        address indexed controller, address indexed owner, uint256 indexed requestId, address sender, uint256 shares
    );
    event RedemptionProcessed(
        uint256 indexed redemptionId, address indexed controller, uint256 fulfilledShares, uint256 amount, uint256 pendingShares
    );
    event RedemptionsServiced(uint256 shares, uint256 amount, bool allRedemptionsServiced);

    function setUp() public override {
        super.setUp();
        _deposit(alice, 1000e18);
        _deposit(bob, 1000e18);
    }

    function test_depositAndPrices() public {
        assertEq(vault.balanceOf(alice), 1000e18);
        assertEq(vault.redemptionSharePrice(), 1e18);
        vm.prank(admin);
        vault.setExternalAssets(200e18); // 10% yield on paper
        assertEq(vault.redemptionSharePrice(), 1.1e18);
        assertEq(vault.nav(), 2200e18);
        uint256 shares = _deposit(address(0xC), 110e18);
        assertEq(shares, 100e18);
    }

    function test_setExternalAssets_onlyNavAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, vault.NAV_ADMIN_ROLE()));
        vm.prank(alice);
        vault.setExternalAssets(1);
    }

    function test_redemptionTimestamp_windows() public {
        assertEq(vault.redemptionTimestamp(), T1); // at genesis
        vm.warp(T1 - 1);
        assertEq(vault.redemptionTimestamp(), T1);
        vm.warp(T1); // a request made at the boundary belongs to the next window
        assertEq(vault.redemptionTimestamp(), T2);
    }

    function test_requestRedeem() public {
        vm.warp(GENESIS + 5 days);
        vm.expectEmit();
        emit RedeemRequest(bob, alice, 1, alice, 10e18);
        vm.prank(alice);
        uint256 id = vault.requestRedeem(10e18, bob, alice);
        assertEq(id, 1);
        assertEq(vault.balanceOf(alice), 990e18);
        (IStakedUSDaiQueue.Redemption memory r, uint256 ahead) = vault.redemption(id);
        assertEq(r.pendingShares, 10e18);
        assertEq(r.controller, bob);
        assertEq(uint256(r.redemptionTimestamp), uint256(T1));
        assertEq(ahead, 0);
        uint256 id2 = _request(bob, 5e18);
        (, ahead) = vault.redemption(id2);
        assertEq(ahead, 10e18);
        (uint256 index, uint256 head, uint256 tail, uint256 pending, uint256 balance) = vault.redemptionQueueInfo();
        assertEq(index, 2);
        assertEq(head, 1);
        assertEq(tail, 2);
        assertEq(pending, 15e18);
        assertEq(balance, 0);
        // price unchanged: pending shares still count
        assertEq(vault.redemptionSharePrice(), 1e18);
        assertEq(vault.redemptionIds(bob).length, 2);
        assertEq(vault.pendingRedeemRequest(1, bob), 10e18);
        assertEq(vault.pendingRedeemRequest(1, alice), 0);
    }

    function test_requestRedeem_reverts() public {
        vm.expectRevert(IStakedUSDaiQueue.InvalidAmount.selector);
        vm.prank(alice);
        vault.requestRedeem(1e18 - 1, alice, alice);
        vm.expectRevert(IStakedUSDaiQueue.InvalidAddress.selector);
        vm.prank(alice);
        vault.requestRedeem(1e18, address(0), alice);
        vm.expectRevert(IStakedUSDaiQueue.InsufficientBalance.selector);
        vm.prank(alice);
        vault.requestRedeem(1001e18, alice, alice);
        // someone else's shares without allowance
        vm.expectRevert();
        vm.prank(bob);
        vault.requestRedeem(1e18, bob, alice);
        // with allowance
        vm.prank(alice);
        vault.approve(bob, 2e18);
        vm.prank(bob);
        vault.requestRedeem(2e18, bob, alice);
        assertEq(vault.balanceOf(alice), 998e18);
    }

    function test_serviceRedemptions_fifo_and_redeem() public {
        vm.warp(GENESIS + 1 days);
        uint256 a = _request(alice, 100e18);
        uint256 b = _request(bob, 50e18);
        vm.warp(T1 + 1);
        vm.expectEmit();
        emit RedemptionProcessed(a, alice, 100e18, 100e18, 0);
        vm.expectEmit();
        emit RedemptionProcessed(b, bob, 20e18, 20e18, 30e18);
        vm.expectEmit();
        emit RedemptionsServiced(120e18, 120e18, false);
        vm.prank(keeper);
        assertEq(vault.serviceRedemptions(120e18), 120e18);
        (, uint256 head,, uint256 pending, uint256 balance) = vault.redemptionQueueInfo();
        assertEq(head, b);
        assertEq(pending, 30e18);
        assertEq(balance, 120e18);
        (uint256 held, uint256 setAside) = vault.balances();
        assertEq(held, 2000e18);
        assertEq(setAside, 120e18);
        assertEq(vault.maxRedeem(alice), 100e18);

        vm.prank(alice);
        assertEq(vault.redeem(100e18, alice, alice), 100e18);
        assertEq(usdai.balanceOf(alice), 100e18);
        assertEq(vault.redemptionIds(alice).length, 0);

        vm.expectRevert(IStakedUSDaiQueue.InvalidCaller.selector);
        vm.prank(alice);
        vault.redeem(1e18, alice, bob);
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        vm.prank(bob);
        vault.redeem(21e18, bob, bob);

        vm.prank(keeper);
        vault.serviceRedemptions(30e18);
        (, head,, pending,) = vault.redemptionQueueInfo();
        assertEq(head, 0);
        assertEq(pending, 0);
    }

    function test_serviceRedemptions_unmatured_reverts() public {
        vm.warp(GENESIS + 1 days);
        _request(alice, 100e18);
        vm.warp(T1); // redemptionTimestamp == T1 is not yet matured at T1
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        vm.prank(keeper);
        vault.serviceRedemptions(1e18);
        vm.warp(T1 + 1);
        _request(bob, 10e18); // matures at T2
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        vm.prank(keeper);
        vault.serviceRedemptions(101e18); // would touch bob's unmatured request
        vm.prank(keeper);
        vault.serviceRedemptions(100e18);
    }

    function test_serviceRedemptions_misuse_reverts() public {
        vm.expectRevert(IStakedUSDaiQueue.InvalidAmount.selector);
        vm.prank(keeper);
        vault.serviceRedemptions(0);
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        vm.prank(keeper);
        vault.serviceRedemptions(1);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, vault.STRATEGY_ADMIN_ROLE()));
        vm.prank(alice);
        vault.serviceRedemptions(1);
    }

    function test_serviceRedemptions_boundedByFreeLiquidity() public {
        vm.warp(GENESIS + 1 days);
        _request(alice, 1000e18);
        _request(bob, 500e18);
        vm.prank(admin);
        vault.setExternalAssets(2000e18); // price 2.0, but only 2000 USDai liquid
        vm.warp(T1 + 1);
        vm.expectRevert(IStakedUSDaiQueue.InsufficientBalance.selector);
        vm.prank(keeper);
        vault.serviceRedemptions(1001e18);
        vm.prank(keeper);
        assertEq(vault.serviceRedemptions(1000e18), 2000e18);
    }

    function test_qevHooks_onlySettlementRole() public {
        bytes32 role = vault.QEV_SETTLEMENT_ROLE();
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role));
        vault.qevLock(0, 0);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role));
        vault.qevFill(1, alice, 0);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role));
        vault.qevMintFee(alice, 1);
        vm.stopPrank();
    }

    /// Requesting and servicing conserve value: price is unchanged, pending accounting adds up.
    function testFuzz_requestServiceConservesPrice(uint256 s1, uint256 s2, uint256 svc, uint256 yield_) public {
        s1 = bound(s1, 1e18, 1000e18);
        s2 = bound(s2, 1e18, 1000e18);
        yield_ = bound(yield_, 0, 1000e18);
        vm.prank(admin);
        vault.setExternalAssets(yield_);
        uint256 price = vault.redemptionSharePrice();
        vm.warp(GENESIS + 1 days);
        uint256 a = _request(alice, s1);
        uint256 b = _request(bob, s2);
        assertEq(vault.redemptionSharePrice(), price);
        vm.warp(T1 + 1);
        svc = bound(svc, 1, s1 + s2);
        vm.prank(keeper);
        uint256 amount = vault.serviceRedemptions(svc);
        assertLe(amount, svc * price / 1e18);
        assertGe(vault.redemptionSharePrice(), price); // rounding favours the vault
        (,,, uint256 pending,) = vault.redemptionQueueInfo();
        assertEq(pending, _pending(a) + _pending(b));
        assertEq(pending, s1 + s2 - svc);
    }
}
