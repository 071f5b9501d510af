// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Base} from "./Base.t.sol";
import {QEVSettlement} from "../src/QEVSettlement.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// commitBook (both key modes), the keyper committee, the key mode and the threshold-mode reveal
/// (docs/PROTOCOL.md 7.2, 7.4 and 10).
contract QEVSettlementThresholdTest is Base {
    address internal k1 = address(0x1001);
    address internal k2 = address(0x1002);
    address internal k3 = address(0x1003);
    address internal stranger = address(0xBAD);

    event BookCommitted(uint64 indexed auctionId, bytes32 bidBookRoot, uint256 count);
    event KeyperCommitteeSet(
        uint32 indexed committeeId, address[] keypers, bytes32[] identityKeys, uint16 threshold, uint32 phaseSeconds
    );
    event KeyModeSet(uint8 mode);
    event AuctionKeyRevealed(uint64 indexed auctionId, bytes32 privateKey);

    function _keypers() internal view returns (address[] memory a, bytes32[] memory ids) {
        a = new address[](3);
        a[0] = k1;
        a[1] = k2;
        a[2] = k3;
        ids = new bytes32[](3);
        ids[0] = keccak256("id1");
        ids[1] = keccak256("id2");
        ids[2] = keccak256("id3");
    }

    function _register() internal {
        (address[] memory a, bytes32[] memory ids) = _keypers();
        vm.prank(admin);
        settlement.setKeyperCommittee(a, ids, 2, 2 hours);
    }

    function _threshold() internal {
        _register();
        vm.prank(admin);
        settlement.setKeyMode(1);
    }

    /* --------------------------------------------------------- commitBook */

    function test_commitBook() public {
        _commit(T1);
        vm.warp(T1);
        vm.expectEmit();
        emit BookCommitted(T1, keccak256("root"), 7);
        vm.prank(keeper);
        settlement.commitBook(T1, keccak256("root"), 7);
        (bytes32 root, uint256 count, uint256 at) = settlement.bookCommitment(T1);
        assertEq(root, keccak256("root"));
        assertEq(count, 7);
        assertEq(at, T1);
        (root, count, at) = settlement.bookCommitment(T2);
        assertEq(at, 0);
    }

    function test_commitBook_emptyBook() public {
        _commit(T1);
        vm.warp(T1 + 5);
        _commitBook(T1, bytes32(0));
        (bytes32 root, uint256 count, uint256 at) = settlement.bookCommitment(T1);
        assertEq(root, bytes32(0));
        assertEq(count, 0);
        assertEq(at, T1 + 5);
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), bytes32(0), 0, 0, 0);
        assertTrue(settlement.isSettled(T1));
    }

    function test_commitBook_reverts() public {
        vm.warp(T1 - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, settlement.KEEPER_ROLE()
            )
        );
        vm.prank(stranger);
        settlement.commitBook(T1, keccak256("root"), 1);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.InvalidAuctionId.selector, T1 + 1));
        vm.prank(keeper);
        settlement.commitBook(T1 + 1, keccak256("root"), 1);
        // before T: the book is still open
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.AuctionNotClosed.selector, T1));
        vm.prank(keeper);
        settlement.commitBook(T1, keccak256("root"), 1);
        vm.warp(T1);
        // no key committed for T1
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.KeyNotCommitted.selector, T1));
        vm.prank(keeper);
        settlement.commitBook(T1, keccak256("root"), 1);
        vm.warp(T1 - 10);
        _commit(T1);
        vm.warp(T1);
        // root and count disagree about an empty book
        vm.expectRevert(QEVSettlement.InvalidAmount.selector);
        vm.prank(keeper);
        settlement.commitBook(T1, bytes32(0), 1);
        vm.expectRevert(QEVSettlement.InvalidAmount.selector);
        vm.prank(keeper);
        settlement.commitBook(T1, keccak256("root"), 0);
        vm.expectRevert(QEVSettlement.InvalidAmount.selector);
        vm.prank(keeper);
        settlement.commitBook(T1, keccak256("root"), uint256(type(uint64).max) + 1);
        // once
        vm.prank(keeper);
        settlement.commitBook(T1, keccak256("root"), 1);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.BookAlreadyCommitted.selector, T1));
        vm.prank(keeper);
        settlement.commitBook(T1, keccak256("root"), 1);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.BookAlreadyCommitted.selector, T1));
        vm.prank(keeper);
        settlement.commitBook(T1, keccak256("other"), 2);
    }

    function test_settle_requiresTheCommittedRoot() public {
        _commit(T1);
        vm.warp(T1);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.BookNotCommitted.selector, T1));
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), keccak256("root"), 0, 0, 0);
        _commitBook(T1, keccak256("root"));
        vm.expectRevert(
            abi.encodeWithSelector(QEVSettlement.BookRootMismatch.selector, keccak256("root"), keccak256("swapped"))
        );
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), keccak256("swapped"), 0, 0, 0);
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), keccak256("root"), 0, 0, 0);
        (, bytes32 book,,,,,,,) = settlement.auction(T1);
        assertEq(book, keccak256("root"));
    }

    function testFuzz_commitBook_rootAndCount(bytes32 root, uint64 count) public {
        _commit(T1);
        vm.warp(T1);
        bool ok = (root == bytes32(0)) == (count == 0);
        if (!ok) vm.expectRevert(QEVSettlement.InvalidAmount.selector);
        vm.prank(keeper);
        settlement.commitBook(T1, root, count);
        if (ok) {
            (bytes32 r, uint256 c,) = settlement.bookCommitment(T1);
            assertEq(r, root);
            assertEq(c, count);
        }
    }

    /* ---------------------------------------------------------- committee */

    function test_setKeyperCommittee() public {
        (address[] memory a, bytes32[] memory ids) = _keypers();
        assertEq(settlement.committeeId(), 0);
        vm.expectEmit();
        emit KeyperCommitteeSet(1, a, ids, 2, 2 hours);
        vm.prank(admin);
        settlement.setKeyperCommittee(a, ids, 2, 2 hours);
        assertEq(settlement.committeeId(), 1);
        (address[] memory got, bytes32[] memory gotIds, uint16 t, uint32 phase) = settlement.keyperCommittee(1);
        assertEq(got.length, 3);
        assertEq(got[1], k2);
        assertEq(gotIds[2], keccak256("id3"));
        assertEq(t, 2);
        assertEq(phase, 2 hours);
        // a new committee gets a new id; the old one stays readable
        a[2] = address(0x1004);
        ids[2] = keccak256("id4");
        vm.prank(admin);
        settlement.setKeyperCommittee(a, ids, 3, 1 hours);
        assertEq(settlement.committeeId(), 2);
        (got,,,) = settlement.keyperCommittee(1);
        assertEq(got[2], k3);
        (got,, t,) = settlement.keyperCommittee(2);
        assertEq(got[2], address(0x1004));
        assertEq(t, 3);
        (got,,,) = settlement.keyperCommittee(9);
        assertEq(got.length, 0);
    }

    function test_setKeyperCommittee_reverts() public {
        (address[] memory a, bytes32[] memory ids) = _keypers();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, keeper, bytes32(0))
        );
        vm.prank(keeper);
        settlement.setKeyperCommittee(a, ids, 2, 2 hours);

        vm.startPrank(admin);
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(new address[](0), new bytes32[](0), 1, 2 hours);
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(a, ids, 0, 2 hours); // t = 0
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(a, ids, 4, 2 hours); // t > n
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(a, new bytes32[](2), 2, 2 hours); // lengths differ
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(a, ids, 2, 0); // no DKG time
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(a, ids, 2, 10 days); // the DKG would not end before T
        a[1] = k1;
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(a, ids, 2, 2 hours); // duplicate keyper
        a[1] = address(0);
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(a, ids, 2, 2 hours); // zero address
        a[1] = k2;
        ids[2] = ids[0];
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(a, ids, 2, 2 hours); // duplicate identity key
        ids[2] = bytes32(0);
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(a, ids, 2, 2 hours); // zero identity key
        address[] memory many = new address[](65);
        bytes32[] memory manyIds = new bytes32[](65);
        for (uint256 i; i < 65; i++) {
            many[i] = address(uint160(0x2000 + i));
            manyIds[i] = keccak256(abi.encode(i));
        }
        vm.expectRevert(QEVSettlement.InvalidCommittee.selector);
        settlement.setKeyperCommittee(many, manyIds, 3, 2 hours); // over MAX_KEYPERS
        vm.stopPrank();
        assertEq(settlement.committeeId(), 0);
    }

    function test_setKeyMode() public {
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.InvalidKeyMode.selector, 1));
        vm.prank(admin);
        settlement.setKeyMode(1); // no committee yet
        _register();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, keeper, bytes32(0))
        );
        vm.prank(keeper);
        settlement.setKeyMode(1);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.InvalidKeyMode.selector, 2));
        vm.prank(admin);
        settlement.setKeyMode(2);
        vm.expectEmit();
        emit KeyModeSet(1);
        vm.prank(admin);
        settlement.setKeyMode(1);
        assertEq(settlement.keyMode(), 1);
        vm.prank(admin);
        settlement.setKeyMode(0);
        assertEq(settlement.keyMode(), 0);
    }

    /* ------------------------------------------------ threshold-mode keys */

    function test_thresholdCommitRecordsModeAndCommittee() public {
        _commit(T1); // single mode
        _threshold();
        bytes32 transcript = keccak256("transcript");
        vm.prank(keeper);
        settlement.commitAuctionKey(T2, PK, transcript);
        (uint8 mode, uint32 committee) = settlement.auctionKeyMode(T2);
        assertEq(mode, 1);
        assertEq(committee, 1);
        (bytes32 pk, bytes32 c,,) = settlement.auctionKey(T2);
        assertEq(pk, PK);
        assertEq(c, transcript);
        (mode, committee) = settlement.auctionKeyMode(T1);
        assertEq(mode, 0);
        assertEq(committee, 0);
        // a later mode change or committee does not change an auction already committed
        _register();
        vm.prank(admin);
        settlement.setKeyMode(0);
        (mode, committee) = settlement.auctionKeyMode(T2);
        assertEq(mode, 1);
        assertEq(committee, 1);
    }

    function test_thresholdRevealFromTheKeeperOnly_unchecked() public {
        _threshold();
        vm.prank(keeper);
        settlement.commitAuctionKey(T1, PK, keccak256("transcript"));
        vm.warp(T1);
        _commitBook(T1, keccak256("book"));
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), keccak256("book"), 0, 0, 0);
        bytes32 k = keccak256("combined key");
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, settlement.KEEPER_ROLE()
            )
        );
        vm.prank(stranger);
        settlement.revealAuctionKey(T1, k);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.InvalidKeyReveal.selector, T1));
        vm.prank(keeper);
        settlement.revealAuctionKey(T1, bytes32(0));
        vm.expectEmit();
        emit AuctionKeyRevealed(T1, k);
        vm.prank(keeper);
        settlement.revealAuctionKey(T1, k); // not keccak-checked against the transcript hash
        (,, bytes32 sk, bool revealed) = settlement.auctionKey(T1);
        assertEq(sk, k);
        assertTrue(revealed);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.KeyAlreadyRevealed.selector, T1));
        vm.prank(keeper);
        settlement.revealAuctionKey(T1, k);
    }

    function test_singleModeRevealStaysCheckedAndOpenToAnyone() public {
        _register(); // a committee alone does not change the mode
        _commit(T1);
        vm.warp(T1);
        _commitBook(T1, keccak256("book"));
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), keccak256("book"), 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.InvalidKeyReveal.selector, T1));
        vm.prank(keeper);
        settlement.revealAuctionKey(T1, PK);
        vm.prank(stranger);
        settlement.revealAuctionKey(T1, SK);
        (,,, bool revealed) = settlement.auctionKey(T1);
        assertTrue(revealed);
    }
}
