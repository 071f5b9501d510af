// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RegistryBase} from "./RegistryBase.t.sol";
import {QEVRegistry} from "../src/QEVRegistry.sol";
import {IQEVRegistry} from "../src/interfaces/IQEVRegistry.sol";
import {IStakedUSDaiQueue} from "../src/interfaces/IStakedUSDaiQueue.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";

/// @notice Log recording (not in test/utils/Test.sol's cheatcode subset); signatures as in forge's Vm.sol.
interface VmLogs {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
}

/// @notice The registry model and the vault's reorder against the draft's behaviour, PROTOCOL 11.3 point by point.
contract QEVRegistryTest is RegistryBase {
    VmLogs internal constant logs = VmLogs(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256[] internal ids;

    function setUp() public override {
        super.setUp();
        ids = _requests(_amounts(100e18, 100e18, 100e18, 100e18)); // ids 1..4, queue 1,2,3,4
        uint256[] memory fifth = new uint256[](1);
        fifth[0] = 100e18;
        ids.push(_requests(fifth)[0]); // id 5
    }

    /*--------------------------------------------------------------------------------------------------------*/
    /* EIP-712, deployment, roles, getters */
    /*--------------------------------------------------------------------------------------------------------*/

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
                keccak256(
                    "Bid(uint64 auctionId,uint256 redemptionId,uint256 redemptionShares,uint256 basisPoint,uint256 nonce)"
                ),
                b.auctionId,
                b.redemptionId,
                b.redemptionShares,
                b.basisPoint,
                b.nonce
            )
        );
        assertEq(registry.bidDigest(b), keccak256(abi.encodePacked("\x19\x01", domain, structHash)));
    }

    function test_deployment_initializeOnce_rolesAndFixedFee() public {
        assertTrue(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), admin));
        assertTrue(registry.hasRole(QUEUE_PROCESSOR_ADMIN_ROLE, address(vault)));
        assertTrue(registry.hasRole(AUCTION_ADMIN_ROLE, keeper));
        assertFalse(registry.hasRole(AUCTION_ADMIN_ROLE, admin)); // initialize grants only the admin role
        assertEq(registry.adminFeeRate(), FEE_RATE);
        assertEq(registry.adminFeeRecipient(), feeRecipient);
        assertEq(keccak256(bytes(registry.DOMAIN_VERSION())), keccak256("1.0"));
        assertEq(keccak256(bytes(registry.IMPLEMENTATION_VERSION())), keccak256("1.0"));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        registry.initialize();
        // a fresh deployment has no roles until initialize()
        QEVRegistry fresh = new QEVRegistry(address(vault), 0, address(0));
        assertFalse(fresh.hasRole(QUEUE_PROCESSOR_ADMIN_ROLE, address(vault)));
    }

    function test_roles_postSettleNeedAuctionAdmin_processQueueNeedsVault() public {
        vm.warp(T1 + 1);
        IQEVRegistry.SignedBid[] memory s = _one(_signed(T1, ids[0], 1e18, 100, 0));
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, admin, AUCTION_ADMIN_ROLE)
        );
        vm.prank(admin);
        registry.postBids(T1, s);
        _post(T1, s);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, admin, AUCTION_ADMIN_ROLE)
        );
        vm.prank(admin);
        registry.settleAuction(T1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, keeper, QUEUE_PROCESSOR_ADMIN_ROLE
            )
        );
        vm.prank(keeper);
        registry.processQueue(T1, 1, 0);
        // the auction-admin modifier runs after the auction check, as in the draft
        vm.expectRevert(abi.encodeWithSelector(IQEVRegistry.InvalidAuctionId.selector, uint256(T2)));
        vm.prank(admin);
        registry.postBids(T2, s);
    }

    function test_getters_indicesStartAtOne() public {
        vm.warp(T1 + 1);
        _post(T1, _two(_signed(T1, ids[3], 100e18, 500, 0), _signed(T1, ids[1], 40e18, 300, 0)));
        assertEq(registry.redemptionId(T1, 1), ids[3]);
        assertEq(registry.redemptionId(T1, 2), ids[1]);
        assertEq(registry.redemptionId(T1, 3), 0); // past the end: 0, no revert
        vm.expectRevert(IQEVRegistry.InvalidBidIndex.selector);
        registry.redemptionId(T1, 0);
        IQEVRegistry.Bid memory b = registry.bid(T1, ids[1]);
        assertEq(b.redemptionShares, 40e18);
        assertEq(b.basisPoint, 300);
        vm.expectRevert(IQEVRegistry.InvalidBidIndex.selector);
        registry.bid(T1, ids[0]);
        IQEVRegistry.Bid[] memory all = registry.bids(T1, 0, 10); // clamped
        assertEq(all.length, 2);
        assertEq(all[0].redemptionId, ids[3]);
        assertEq(all[1].redemptionId, ids[1]);
        IQEVRegistry.Bid[] memory second = registry.bids(T1, 1, 1);
        assertEq(second.length, 1);
        assertEq(second[0].redemptionId, ids[1]);
        assertEq(registry.bids(T1, 2, 5).length, 0);
        (uint256 bidCount, uint256 processed, uint256 last) = registry.auction(T1);
        assertEq(bidCount, 2);
        assertEq(processed, 0);
        assertEq(last, 0);
        assertEq(registry.previousAuctionId(), 0);
        assertEq(registry.nextAuctionId(), T2);
    }

    /*--------------------------------------------------------------------------------------------------------*/
    /* Timing: the boundary second, nonces */
    /*--------------------------------------------------------------------------------------------------------*/

    function test_atT_nonceMovesButNothingPosts() public {
        vm.warp(T1);
        vm.prank(users[0]);
        assertEq(registry.incrementNonce(T1, ids[0]), 1);
        assertEq(registry.nonce(T1, ids[0]), 1);
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidAuctionId.selector, uint256(T1)), T1, _one(_signed(T1, ids[1], 1e18, 100, 0)));
        vm.warp(T1 + 1);
        vm.expectRevert(IQEVRegistry.InvalidTimestamp.selector);
        vm.prank(users[0]);
        registry.incrementNonce(T1, ids[0]);
        vm.expectRevert(IQEVRegistry.InvalidCaller.selector);
        vm.prank(users[1]);
        registry.incrementNonce(T2, ids[0]);
        // the old nonce is stale; the new one posts
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidNonce.selector, 0), T1, _one(_signed(T1, ids[0], 1e18, 100, 0)));
        _post(T1, _one(_signed(T1, ids[0], 1e18, 100, 1)));
    }

    /*--------------------------------------------------------------------------------------------------------*/
    /* postBids: errors and filtering */
    /*--------------------------------------------------------------------------------------------------------*/

    function test_postBids_errors() public {
        vm.warp(T1 + 1);
        // a bid signed by someone other than the controller
        IQEVRegistry.SignedBid memory bad = _signedBy(keys[1], T1, ids[0], 1e18, 100, 0);
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidSigner.selector, 1), T1, _two(_signed(T1, ids[1], 1e18, 200, 0), bad));
        // a bid for another auction (index in the batch)
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidAuctionId.selector, 0), T1, _one(_signed(T2, ids[0], 1e18, 100, 0)));
        // basis points above the previous bid's: InvalidBasisPoint(index)
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidBasisPoint.selector, 1), T1, _two(_signed(T1, ids[0], 1e18, 100, 0), _signed(T1, ids[1], 1e18, 200, 0)));
        // out of 10..10000
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidBasisPoint.selector, 0), T1, _one(_signed(T1, ids[0], 1e18, 9, 0)));
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidBasisPoint.selector, 0), T1, _one(_signed(T1, ids[0], 1e18, 10_001, 0)));
        // equal basis points, redemption ids descending: InvalidRedemptionOrder(redemptionId)
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidRedemptionOrder.selector, ids[0]), T1, _two(_signed(T1, ids[1], 1e18, 100, 0), _signed(T1, ids[0], 1e18, 100, 0)));
        // zero shares
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidRedemptionShares.selector, 0), T1, _one(_signed(T1, ids[0], 0, 100, 0)));
        // stale nonce
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidNonce.selector, 0), T1, _one(_signed(T1, ids[0], 1e18, 100, 7)));
        // the bounds are inclusive
        _post(T1, _two(_signed(T1, ids[0], 1e18, 10_000, 0), _signed(T1, ids[1], 1e18, 10, 0)));
        // duplicate (already stored)
        _postReverts(abi.encodeWithSelector(IQEVRegistry.DuplicateBid.selector, 0), T1, _one(_signed(T1, ids[1], 1e18, 10, 0)));
        // the order continues across batches: nothing above 10 bp any more
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidBasisPoint.selector, 0), T1, _one(_signed(T1, ids[2], 1e18, 11, 0)));
        // equal bp and a lower id than the last stored one
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidRedemptionOrder.selector, ids[0]), T1, _one(_signed(T1, ids[0], 2e18, 10, 0)));
        (uint256 bidCount,,) = registry.auction(T1);
        assertEq(bidCount, 2);
        // after settlement the auction is closed for posting: InvalidAuctionId(T)
        _settleRegistry(T1);
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidAuctionId.selector, uint256(T1)), T1, _one(_signed(T1, ids[2], 1e18, 10, 0)));
    }

    function test_postBids_unmaturedRequestRevertsTheWholeBatch() public {
        vm.warp(T1 + 1);
        _deposit(users[0], 10e18);
        uint256 young = _request(users[0], 10e18); // matures at T2
        vm.warp(T1 + 2);
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidAuctionId.selector, 1), T1, _two(_signed(T1, ids[0], 1e18, 500, 0), _signed(T1, young, 1e18, 100, 0)));
        (uint256 bidCount,,) = registry.auction(T1);
        assertEq(bidCount, 0); // nothing of the batch was stored
    }

    function test_postBids_skipsRequestsWithNothingPending() public {
        vm.warp(T1 + 1);
        _service(100e18); // request 1 (the head) fully serviced
        assertEq(_pending(ids[0]), 0);
        // the skipped bid takes no part in the order checks: 100 bp after it is fine
        IQEVRegistry.SignedBid[] memory s = new IQEVRegistry.SignedBid[](3);
        s[0] = _signed(T1, ids[1], 1e18, 50, 0);
        s[1] = _signed(T1, ids[0], 1e18, 50, 0); // id below the previous one: would be out of order...
        s[2] = _signed(T1, ids[2], 1e18, 50, 0);
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidRedemptionOrder.selector, ids[0]), T1, s); // ...and the order is checked before the skip
        s[0] = _signed(T1, ids[0], 1e18, 500, 0); // skipped (nothing pending)
        s[1] = _signed(T1, ids[1], 1e18, 600, 0); // fine: the skipped bid's 500 bp is not "the previous bid"
        s[2] = _signed(T1, ids[2], 1e18, 50, 0);
        _post(T1, s);
        (uint256 bidCount,,) = registry.auction(T1);
        assertEq(bidCount, 2);
        assertEq(registry.redemptionId(T1, 1), ids[1]);
        assertEq(registry.redemptionId(T1, 2), ids[2]);
        vm.expectRevert(IQEVRegistry.InvalidBidIndex.selector);
        registry.bid(T1, ids[0]);
        // being skipped is not "posted": it can be sent again and is skipped again (no DuplicateBid)
        _post(T1, _one(_signed(T1, ids[0], 1e18, 10, 0)));
        (bidCount,,) = registry.auction(T1);
        assertEq(bidCount, 2);
    }

    /*--------------------------------------------------------------------------------------------------------*/
    /* settleAuction */
    /*--------------------------------------------------------------------------------------------------------*/

    function test_settleAuction_needsBids_once_anyTime() public {
        vm.expectRevert(IQEVRegistry.InvalidAuctionStatus.selector);
        _settleRegistry(T1); // before T, no bids
        vm.warp(T1 + 1);
        vm.expectRevert(IQEVRegistry.InvalidAuctionStatus.selector);
        _settleRegistry(T1); // after T, still no bids
        _post(T1, _one(_signed(T1, ids[0], 1e18, 100, 0)));
        vm.expectEmit();
        emit AuctionSettled(T1);
        _settleRegistry(T1);
        assertEq(registry.previousAuctionId(), T1);
        vm.expectRevert(IQEVRegistry.InvalidAuctionStatus.selector);
        _settleRegistry(T1);
    }

    /*--------------------------------------------------------------------------------------------------------*/
    /* The reorder: whole and partial bids, new ids, events, the fee on the sum */
    /*--------------------------------------------------------------------------------------------------------*/

    function _flow() internal {
        vm.warp(T1 + 1);
        _post(T1, _two(_signed(T1, ids[3], 100e18, 500, 0), _signed(T1, ids[1], 40e18, 300, 0)));
        _post(T1, _two(_signed(T1, ids[4], 300e18, 300, 0), _signed(T1, ids[0], 100e18, 50, 0)));
        _settleRegistry(T1);
    }

    function test_reorder_wholeAndPartialBids() public {
        _flow();
        logs.recordLogs();
        (uint256 net, uint256 fee) = _reorder(T1, 2);
        VmLogs.Log[] memory got = logs.getRecordedLogs();
        // request 4 whole: burnt 5, moved to the head; request 2 in part: 40 bid, 1.2 burnt, new id 6 of 38.8
        assertEq(fee, 6.2e18 / 100);
        assertEq(net, 6.2e18 - fee);
        uint256[] memory q = _queue(10);
        assertEq(q.length, 6);
        assertEq(q[0], ids[3]);
        assertEq(q[1], 6);
        assertEq(q[2], ids[0]);
        assertEq(q[3], ids[1]);
        assertEq(q[4], ids[2]);
        assertEq(q[5], ids[4]);
        assertEq(_pending(ids[3]), 95e18);
        assertEq(_pending(6), 38.8e18);
        assertEq(_pending(ids[1]), 60e18);
        assertEq(_index(), 6);
        (IStakedUSDaiQueue.Redemption memory created,) = vault.redemption(6);
        assertEq(created.controller, users[1]);
        assertEq(uint256(created.redemptionTimestamp), uint256(T1));
        assertEq(vault.redemptionIds(users[1]).length, 2);
        // events: exactly Updated(4), Updated(2), Created(6), the fee mint, the checkpoint, RedemptionsReordered
        bytes32[] memory want = new bytes32[](6);
        want[0] = RedemptionUpdated.selector;
        want[1] = RedemptionUpdated.selector;
        want[2] = RedemptionCreated.selector;
        want[3] = AuctionCheckpointSet.selector;
        want[4] = keccak256("Transfer(address,address,uint256)");
        want[5] = RedemptionsReordered.selector;
        assertEq(got.length, want.length);
        for (uint256 i; i < got.length; i++) {
            assertEq(got[i].topics[0], want[i]);
            assertTrue(got[i].topics[0] != IStakedUSDaiQueue.RedeemRequest.selector);
        }
        assertEq(got[0].topics[1], bytes32(ids[3]));
        assertEq(keccak256(got[0].data), keccak256(abi.encode(uint256(95e18), uint256(5e18))));
        assertEq(got[1].topics[1], bytes32(ids[1]));
        assertEq(keccak256(got[1].data), keccak256(abi.encode(uint256(60e18), uint256(0))));
        assertEq(got[2].topics[1], bytes32(uint256(6)));
        assertEq(keccak256(got[2].data), keccak256(abi.encode(uint256(38.8e18), uint256(1.2e18))));
        assertEq(keccak256(got[3].data), keccak256(abi.encode(T1, uint256(2), uint256(6))));
        assertEq(keccak256(got[5].data), keccak256(abi.encode(T1, uint256(2), net, fee, false)));
        (uint256 bidCount, uint256 processed, uint256 last) = registry.auction(T1);
        assertEq(bidCount, 4);
        assertEq(processed, 2);
        assertEq(last, 6);

        // second batch: request 5 whole (bid 300 > pending 100: clipped), request 1 (already next in line)
        vm.expectEmit();
        emit RedemptionsReordered(T1, 2, 3.5e18 - 3.5e18 / 100, 3.5e18 / 100, true);
        _reorder(T1, 2);
        q = _queue(10);
        assertEq(q.length, 6);
        assertEq(q[0], ids[3]);
        assertEq(q[1], 6);
        assertEq(q[2], ids[4]);
        assertEq(q[3], ids[0]);
        assertEq(q[4], ids[1]);
        assertEq(q[5], ids[2]);
        (, uint256 head, uint256 tail,,) = vault.redemptionQueueInfo();
        assertEq(head, ids[3]);
        assertEq(tail, ids[2]);
        assertEq(_pending(ids[4]), 97e18);
        assertEq(_pending(ids[0]), 99.5e18);
        assertEq(vault.balanceOf(feeRecipient), 6.2e18 / 100 + 3.5e18 / 100);
        (, processed, last) = registry.auction(T1);
        assertEq(processed, 4);
        assertEq(last, ids[0]);

        // servicing works again and follows the new order
        vm.warp(T1 + 2);
        _service(95e18 + 38.8e18 + 1e18);
        (IStakedUSDaiQueue.Redemption memory r,) = vault.redemption(ids[3]);
        assertEq(r.redeemableShares, 95e18);
        (r,) = vault.redemption(6);
        assertEq(r.redeemableShares, 38.8e18);
        (r,) = vault.redemption(ids[4]);
        assertEq(r.redeemableShares, 1e18);
    }

    function test_reorder_feeChargedOnceOnTheSum() public {
        vm.warp(T1 + 1);
        // two bids that each burn 150 wei: per bid the 1% fee would round to 1 + 1; on the sum it is 3
        _post(T1, _two(_signed(T1, ids[0], 15_000, 100, 0), _signed(T1, ids[1], 15_000, 100, 0)));
        _settleRegistry(T1);
        (uint256 net, uint256 fee) = _reorder(T1, 2);
        assertEq(fee, 3);
        assertEq(net, 297);
        assertEq(vault.balanceOf(feeRecipient), 3);
        assertEq(_pending(7), 14_850); // the two new requests: 6 and 7
        assertEq(_pending(6), 14_850);
    }

    function test_reorder_returnsAndErrors() public {
        vm.warp(T1 + 1);
        vm.expectRevert(IStakedUSDaiQueue.InvalidAuctionStatus.selector);
        _reorder(T1, 1); // not settled
        _flow();
        vm.expectRevert(IStakedUSDaiQueue.InvalidCount.selector);
        _reorder(T1, 0);
        vm.expectRevert(IStakedUSDaiQueue.InvalidAuctionStatus.selector);
        _reorder(T2, 1); // another auction than the last settled one
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, users[0], vault.STRATEGY_ADMIN_ROLE()
            )
        );
        vm.prank(users[0]);
        vault.reorderRedemptions(T1, 1);
        _reorder(T1, 4);
        vm.expectRevert(IStakedUSDaiQueue.InvalidCount.selector);
        _reorder(T1, 1); // completed
    }

    function test_unfinishedReorder_blocksServicingAndTheNextAuction() public {
        _flow();
        vm.warp(T1 + 2);
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        _service(1e18);
        _reorder(T1, 3);
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        _service(1e18);
        // next auction: requests of window 2 and a bid, after T2
        vm.warp(T2 + 1);
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidAuctionStatus.selector), T2, _one(_signed(T2, ids[2], 1e18, 100, 0)));
        _reorder(T1, 1);
        _service(1e18);
        _post(T2, _one(_signed(T2, ids[2], 1e18, 100, 0)));
    }

    function test_servicingBeforeSettle_isNotBlocked() public {
        // only the last *settled* auction blocks servicing: posting alone does not
        vm.warp(T1 + 1);
        _post(T1, _one(_signed(T1, ids[3], 1e18, 100, 0)));
        _service(1e18);
    }

    /*--------------------------------------------------------------------------------------------------------*/
    /* The draft vault's views */
    /*--------------------------------------------------------------------------------------------------------*/

    function test_hiddenModelViews_revertLikeMissingFunctions_flowStillWorks() public {
        vm.expectRevert();
        vm.prank(users[0]);
        vault.hideModelViews(true);
        vm.prank(admin);
        vault.hideModelViews(true);
        bytes[3] memory calls = [
            abi.encodeWithSignature("balances()"),
            abi.encodeWithSignature("genesisTimestamp()"),
            abi.encodeWithSignature("qevRedemptionInfo(uint256)", uint256(1))
        ];
        for (uint256 i; i < calls.length; i++) {
            (bool ok, bytes memory ret) = address(vault).staticcall(calls[i]);
            assertFalse(ok);
            assertEq(ret.length, 0);
        }
        // the same as a function the vault does not have at all
        (bool ok2, bytes memory ret2) = address(vault).staticcall(abi.encodeWithSignature("noSuchView()"));
        assertFalse(ok2);
        assertEq(ret2.length, 0);
        // the registry flow uses only the draft's views
        _flow();
        _reorder(T1, 4);
        (IStakedUSDaiQueue.Redemption memory r,) = vault.redemption(ids[3]);
        assertEq(r.pendingShares, 95e18);
        vm.prank(admin);
        vault.hideModelViews(false);
        (uint256 held,) = vault.balances();
        assertGt(held, 0);
    }
}
