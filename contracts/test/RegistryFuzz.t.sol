// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RegistryBase} from "./RegistryBase.t.sol";
import {IQEVRegistry} from "../src/interfaces/IQEVRegistry.sol";

/// @notice Random books posted and reordered in random batches, against a reference of the draft's rules
///         written here: burns, the fee on each call's sum, new ids for partial bids, the queue order, and the
///         aggregate `pending` off by exactly the fees (hazard 3).
contract RegistryFuzzTest is RegistryBase {
    struct Expect {
        uint256 redemptionId; // the bid's request
        uint256 moved; // the id that goes to the front (the request, or a new one)
        uint256 pending; // pending shares of `moved` after the reorder
        uint256 rest; // pending shares left under the old id (partial bids)
        uint256 burnt;
    }

    uint256[] internal ids;
    uint256[] internal sizes;
    IQEVRegistry.SignedBid[] internal book;
    Expect[] internal expected;

    function _word(uint256 seed, uint256 i) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, i)));
    }

    function _build(uint256 seed, uint256 n) internal {
        uint256[] memory amounts = new uint256[](n);
        for (uint256 i; i < n; i++) {
            amounts[i] = bound(_word(seed, i), 1e18, 1_000e18);
        }
        ids = _requests(amounts);
        sizes = amounts;
        vm.warp(T1 + 1);
        // bids on a random subset: random shares (part, whole or more) and rates (with ties)
        uint256 m;
        uint256[] memory bidIds = new uint256[](n);
        uint256[] memory bps = new uint256[](n);
        uint256[] memory shares = new uint256[](n);
        for (uint256 i; i < n; i++) {
            uint256 w = _word(seed, 100 + i);
            if (w % 5 == 0) continue; // no bid
            bidIds[m] = ids[i];
            bps[m] = [uint256(10), 250, 250, 1_000, 10_000, 10 + (w >> 8) % 9_991][(w >> 4) % 6];
            uint256 kind = (w >> 32) % 3;
            shares[m] = kind == 0 ? sizes[i] : kind == 1 ? bound(w >> 64, 1, sizes[i] - 1) : sizes[i] + (w >> 128) % 1e18;
            m++;
        }
        // rule 2: basisPoint desc, then redemptionId asc (insertion sort)
        for (uint256 i = 1; i < m; i++) {
            for (uint256 j = i; j > 0; j--) {
                bool before = bps[j] > bps[j - 1] || (bps[j] == bps[j - 1] && bidIds[j] < bidIds[j - 1]);
                if (!before) break;
                (bps[j], bps[j - 1]) = (bps[j - 1], bps[j]);
                (bidIds[j], bidIds[j - 1]) = (bidIds[j - 1], bidIds[j]);
                (shares[j], shares[j - 1]) = (shares[j - 1], shares[j]);
            }
        }
        for (uint256 i; i < m; i++) {
            book.push(_signed(T1, bidIds[i], shares[i], bps[i], 0));
        }
    }

    function _postInBatches(uint256 seed) internal {
        uint256 i;
        uint256 k;
        while (i < book.length) {
            uint256 take = 1 + _word(seed, 500 + k++) % 3;
            if (take > book.length - i) take = book.length - i;
            IQEVRegistry.SignedBid[] memory batch = new IQEVRegistry.SignedBid[](take);
            for (uint256 j; j < take; j++) {
                batch[j] = book[i + j];
            }
            _post(T1, batch);
            i += take;
        }
    }

    /// @dev The draft's rules applied to the book, with no servicing in between.
    function _reference() internal {
        uint256 index = _index();
        for (uint256 i; i < book.length; i++) {
            IQEVRegistry.Bid memory b = book[i].bid;
            uint256 p = sizes[b.redemptionId - 1];
            uint256 size = b.redemptionShares < p ? b.redemptionShares : p;
            uint256 burnt = size * b.basisPoint / 10_000;
            if (size == p) expected.push(Expect(b.redemptionId, b.redemptionId, p - burnt, 0, burnt));
            else expected.push(Expect(b.redemptionId, ++index, size - burnt, p - size, burnt));
        }
    }

    function testFuzz_reorderMatchesTheDraftsRules(uint256 seed, uint256 n) public {
        n = bound(n, 1, 8);
        _build(seed, n);
        vm.assume(book.length > 0);
        _postInBatches(seed);
        _settleRegistry(T1);
        _reference();
        uint256 before = _aggregatePending();

        // reorder in random batches, each with exactly the count left at most (the keeper's rule)
        uint256 fees;
        uint256 burntTotal;
        uint256 k;
        uint256 done;
        while (done < book.length) {
            uint256 count = 1 + _word(seed, 900 + k++) % 3;
            if (count > book.length - done) count = book.length - done;
            uint256 sum;
            for (uint256 j = done; j < done + count; j++) {
                sum += expected[j].burnt;
            }
            (uint256 net, uint256 fee) = _reorder(T1, count);
            assertEq(fee, sum * FEE_RATE / 10_000, "fee on the call's sum");
            assertEq(net, sum - fee);
            fees += fee;
            burntTotal += sum;
            done += count;
        }

        // queue: the moved ids in bid order, then every other request in its old order
        uint256[] memory q = _queue(64);
        uint256 front = expected.length;
        for (uint256 i; i < front; i++) {
            assertEq(q[i], expected[i].moved, "moved to the front in bid order");
            assertEq(_pendingOf(expected[i].moved), expected[i].pending, "pending after the burn");
            if (expected[i].moved != expected[i].redemptionId) {
                assertEq(_pendingOf(expected[i].redemptionId), expected[i].rest, "rest keeps its id");
            }
        }
        uint256 rest = front;
        for (uint256 i; i < ids.length; i++) {
            if (_movedWhole(ids[i])) continue;
            assertEq(q[rest++], ids[i], "the others keep their order");
        }
        assertEq(q.length, rest);
        assertEq(_index(), ids.length + _partials());
        assertEq(vault.balanceOf(feeRecipient), fees);
        // hazard 3 as an identity: the aggregate is the walked sum plus every fee minted
        assertEq(_aggregatePending(), before - burntTotal + fees);
        assertEq(_aggregatePending(), _sumPending(q) + fees);
        (uint256 bidCount, uint256 processed,) = registry.auction(T1);
        assertEq(processed, bidCount);
    }

    /// @dev Posting accepts the book in rule-2 order, in any batching, and refuses it with two distinct
    ///      neighbours swapped (InvalidBasisPoint or InvalidRedemptionOrder), storing nothing of that batch.
    function testFuzz_postBids_onlyRule2Order(uint256 seed, uint256 n, uint256 at) public {
        n = bound(n, 2, 8);
        _build(seed, n);
        vm.assume(book.length > 1);
        at = bound(at, 0, book.length - 2);
        IQEVRegistry.SignedBid[] memory swapped = new IQEVRegistry.SignedBid[](book.length);
        for (uint256 i; i < book.length; i++) {
            swapped[i] = book[i];
        }
        (swapped[at], swapped[at + 1]) = (swapped[at + 1], swapped[at]);
        IQEVRegistry.Bid memory first = swapped[at].bid;
        IQEVRegistry.Bid memory second = swapped[at + 1].bid;
        bytes memory err = second.basisPoint > first.basisPoint
            ? abi.encodeWithSelector(IQEVRegistry.InvalidBasisPoint.selector, at + 1)
            : abi.encodeWithSelector(IQEVRegistry.InvalidRedemptionOrder.selector, second.redemptionId);
        _postReverts(err, T1, swapped);
        (uint256 bidCount,,) = registry.auction(T1);
        assertEq(bidCount, 0);
        _postInBatches(seed);
        (bidCount,,) = registry.auction(T1);
        assertEq(bidCount, book.length);
        for (uint256 i; i < book.length; i++) {
            assertEq(registry.redemptionId(T1, i + 1), book[i].bid.redemptionId);
        }
    }

    function _movedWhole(uint256 id) internal view returns (bool) {
        for (uint256 i; i < expected.length; i++) {
            if (expected[i].moved == id) return true;
        }
        return false;
    }

    function _partials() internal view returns (uint256 count) {
        for (uint256 i; i < expected.length; i++) {
            if (expected[i].moved != expected[i].redemptionId) count++;
        }
    }
}
