// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RegistryBase} from "./RegistryBase.t.sol";
import {IQEVRegistry} from "../src/interfaces/IQEVRegistry.sol";
import {IStakedUSDaiQueue} from "../src/interfaces/IStakedUSDaiQueue.sol";

/// @notice The draft's three hazards (PROTOCOL 11.4), reproduced by the model as the draft behaves, and the
///         keeper's rule for each shown to avoid it.
contract RegistryHazardsTest is RegistryBase {
    uint256[] internal ids;

    function setUp() public override {
        super.setUp();
        ids = _requests(_amounts(100e18, 100e18, 100e18, 100e18)); // ids 1..4, queue 1,2,3,4
    }

    function _postThree() internal {
        vm.warp(T1 + 1);
        IQEVRegistry.SignedBid[] memory s = new IQEVRegistry.SignedBid[](3);
        s[0] = _signed(T1, ids[0], 100e18, 500, 0); // bid 1: the head's request
        s[1] = _signed(T1, ids[2], 100e18, 300, 0);
        s[2] = _signed(T1, ids[3], 100e18, 100, 0);
        _post(T1, s);
    }

    /*--------------------------------------------------------------------------------------------------------*/
    /* Hazard 1: a reorder count past the bids left freezes the queue */
    /*--------------------------------------------------------------------------------------------------------*/

    function test_hazard1_overLongReorder_freezesQueueAndRegistry() public {
        _postThree();
        _settleRegistry(T1);
        _reorder(T1, 2);
        (uint256 net, uint256 fee) = _reorder(T1, 5); // DRAFT: accepted although 1 bid is left
        assertEq(net + fee, 1e18); // the one bid left was processed
        (uint256 bidCount, uint256 processed,) = registry.auction(T1);
        assertEq(bidCount, 3);
        assertEq(processed, 7); // past bidCount for good
        // every further reorder panics (arithmetic underflow in bids())
        vm.expectRevert(abi.encodeWithSignature("Panic(uint256)", uint256(0x11)));
        _reorder(T1, 1);
        // servicing reverts
        vm.warp(T1 + 2);
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        _service(1e18);
        // and no later auction can be posted
        vm.warp(T2 + 1);
        _postReverts(abi.encodeWithSelector(IQEVRegistry.InvalidAuctionStatus.selector), T2, _one(_signed(T2, ids[1], 1e18, 100, 0)));
    }

    function test_hazard1_keeperRule_exactRemainingCount() public {
        _postThree();
        _settleRegistry(T1);
        // the keeper's rule: count = min(batch, bidCount - processedBidCount), both read at one block
        uint256 batch = 2;
        while (true) {
            (uint256 bidCount, uint256 processed,) = registry.auction(T1);
            if (processed == bidCount) break;
            uint256 left = bidCount - processed;
            _reorder(T1, left < batch ? left : batch);
        }
        (uint256 b, uint256 p,) = registry.auction(T1);
        assertEq(p, b);
        vm.warp(T1 + 2);
        _service(1e18);
    }

    /*--------------------------------------------------------------------------------------------------------*/
    /* Hazard 2: bid 1's request serviced between posting and the reorder strands the requests moved */
    /*--------------------------------------------------------------------------------------------------------*/

    function test_hazard2_headServicedBeforeReorder_strandsMovedRequests() public {
        _postThree();
        _service(100e18); // possible: posting alone does not block servicing; request 1 is emptied
        _settleRegistry(T1);
        uint256 aggregate = _aggregatePending();
        _reorder(T1, 3);
        // the head did not move: it is still request 2; requests 3 and 4 were linked in front of it
        (, uint256 head, uint256 tail,,) = vault.redemptionQueueInfo();
        assertEq(head, ids[1]);
        uint256[] memory q = _queue(10);
        assertEq(q.length, 1); // from the head, servicing reaches request 2 only
        assertEq(q[0], ids[1]);
        assertEq(tail, ids[1]);
        assertEq(_pendingOf(ids[2]), 97e18); // burnt, moved ... and unreachable
        assertEq(_pendingOf(ids[3]), 99e18);
        (IStakedUSDaiQueue.Redemption memory r3,) = vault.redemption(ids[2]);
        assertEq(r3.next, ids[3]);
        (IStakedUSDaiQueue.Redemption memory r4,) = vault.redemption(ids[3]);
        assertEq(r4.next, ids[1]); // the detached chain 3 -> 4 -> 2 never joins the head
        assertEq(_aggregatePending(), aggregate - 4e18 + 4e18 / 100);
        // servicing everything reachable works; the stranded shares can never be serviced
        vm.warp(T1 + 2);
        _service(100e18);
        (, head,,,) = vault.redemptionQueueInfo();
        assertEq(head, 0);
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        _service(1e18);
        // a new request goes behind the tail the vault knows, still not reaching them
        _deposit(users[0], 10e18);
        uint256 fresh = _request(users[0], 5e18);
        q = _queue(10);
        assertEq(q.length, 1);
        assertEq(q[0], fresh);
        assertEq(_pendingOf(ids[2]), 97e18);
    }

    function test_hazard2_keeperRule_checkBidOneBeforeTheFirstReorder() public {
        _postThree();
        _service(100e18);
        _settleRegistry(T1);
        // the keeper reads bid 1's request right before the first reorder batch and aborts on zero pending
        uint256 first = registry.redemptionId(T1, 1);
        assertEq(first, ids[0]);
        assertEq(_pendingOf(first), 0); // => fatal, nothing is reordered
        (, uint256 processed,) = registry.auction(T1);
        assertEq(processed, 0);
    }

    function test_hazard2_notTriggeredWithoutServicing() public {
        _postThree();
        _settleRegistry(T1);
        _reorder(T1, 3);
        uint256[] memory q = _queue(10);
        assertEq(q.length, 4);
        assertEq(q[0], ids[0]);
        assertEq(q[1], ids[2]);
        assertEq(q[2], ids[3]);
        assertEq(q[3], ids[1]);
    }

    /*--------------------------------------------------------------------------------------------------------*/
    /* Hazard 3: the fee is counted twice in `pending` */
    /*--------------------------------------------------------------------------------------------------------*/

    function test_hazard3_feeCountedTwice_aggregateServiceReverts_walkWorks() public {
        _postThree();
        _settleRegistry(T1);
        uint256 supply = vault.totalSupply();
        (, uint256 fee) = _reorder(T1, 3);
        assertEq(fee, (5e18 + 3e18 + 1e18) / 100);
        assertEq(vault.totalSupply(), supply + fee); // minted
        uint256[] memory q = _queue(10);
        uint256 walked = _sumPending(q);
        assertEq(_aggregatePending(), walked + fee); // and still counted in pending
        vm.warp(T1 + 2);
        // servicing the aggregate runs off the end of the queue
        uint256 aggregate = _aggregatePending();
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        _service(aggregate);
        // the keeper's rule: walk the queue from its head
        _service(walked);
        (, uint256 head,, uint256 pending,) = vault.redemptionQueueInfo();
        assertEq(head, 0);
        assertEq(pending, fee); // left over for good
    }
}
